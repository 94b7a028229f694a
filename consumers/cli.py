"""The ``aigc-audit`` command: a thin layer over the platform's modules.

Every failure a user can cause (a bad config, an unknown query, a held data directory, a broken
bus) ends as one line on stderr and exit code 2; a traceback means a bug in aigc-audit.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aigc_audit.consumers import inspection_commands as inspection
from aigc_audit.consumers.bench.command import bench as bench_command
from aigc_audit.consumers.deployment import Deployment
from aigc_audit.consumers.errors import (
    PLATFORM_INSTALL,
    PlatformError,
    missing_platform_module,
)
from aigc_audit.consumers.materialiser import MaterialiseStats
from aigc_audit.consumers.migrate_command import migrate as migrate_command
from aigc_audit.consumers.output import FORMATS, CommandProgress, render, result_table
from aigc_audit.consumers.settings import Settings, load_settings
from aigc_audit.infra.kafka.commands import kafka as kafka_commands
from aigc_audit.producers.errors import AuditError

# Piped output (CI logs, `make demo | less`) gets room for the query tables rather than 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class CliError(PlatformError):
    """A user-facing failure; its message is the one line the user sees."""


class _State:
    config: Path | None = None
    data_dir: Path | None = None
    settings: Settings | None = None
    command: str | None = None
    """The command being run (``query run``), for the line that says it needs the platform."""


state = _State()


def settings(**overrides: Any) -> Settings:
    """The settings, with command-line overrides (None means: not given) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if state.settings is None or given:
        state.settings = load_settings(state.config, data_dir=state.data_dir, **given)
    return state.settings


def bus_options(command: Any) -> Any:
    """``--bus`` and ``--bootstrap``, shared by the commands that touch the bus."""
    command = click.option(
        "--bootstrap", help="Kafka bootstrap servers HOST:PORT[,HOST:PORT] (implies --bus kafka)."
    )(command)
    return click.option(
        "--bus", type=click.Choice(["embedded", "kafka"]), help="The bus (default: embedded)."
    )(command)


def bus_settings(bus: str | None, bootstrap: str | None) -> Settings:
    if bootstrap and bus is None:
        bus = "kafka"
    return settings(bus=bus, bootstrap=bootstrap)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=True),
    help="TOML config file (default: $AIGC_AUDIT_CONFIG, else ./aigc-audit.toml if present).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Data directory (default: $AIGC_AUDIT_DATA_DIR or ./.aigc-audit).",
)
def app(config: Path | None, data_dir: Path | None) -> None:
    """aigc-audit: a signed, replayable compliance audit log for generative-AI services."""
    # Read the configuration before any command, so a bad file fails every command the same way.
    state.config, state.data_dir = config, data_dir
    state.command = click.get_current_context().invoked_subcommand
    state.settings = load_settings(config, data_dir=data_dir)
    click.get_current_context().obj = settings


@app.group("query")
def query_app() -> None:
    """Named inspection queries."""
    state.command = f"query {click.get_current_context().invoked_subcommand}"


@app.group("infra")
def infra_app() -> None:
    """Start and stop the real parts on this machine (Kafka in KRaft mode)."""


infra_app.add_command(kafka_commands, "kafka")
app.add_command(migrate_command)
for _command in (inspection.verify, inspection.export, inspection.report):
    app.add_command(_command)
app.add_command(bench_command)


def _flood_note(stats: MaterialiseStats) -> str:
    """What the progress line adds once the materialiser has raised reject-flood alerts: a
    flood does not stop it, so the operator must see it here."""
    if not stats.reject_floods:
        return ""
    return (
        f" [bold red](reject flood: {stats.reject_floods} alert(s); quarantining goes on, "
        "see trail_integrity)[/]"
    )


def _progress(console: Console) -> Progress:
    return CommandProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
@click.option("--json", "as_json", is_flag=True, help="End with one JSON summary line.")
@click.option("--generations", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--users", type=click.IntRange(min=10), default=5_000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the simulation.")
@bus_options
def demo(
    as_json: bool, generations: int, users: int, seed: int, bus: str | None, bootstrap: str | None
) -> None:
    """Simulate a provider's month, materialise it, and run the inspection queries."""
    from aigc_audit.consumers.demo import run_demo
    from aigc_audit.consumers.demo_report import print_demo, summary_json
    from aigc_audit.consumers.simulation import SimulationPlan

    plan = SimulationPlan(seed=seed, generations=generations, users=users, start=_month_ago())
    s = bus_settings(bus, bootstrap)
    console = err if as_json else out
    with _progress(console) as progress:
        emitting = progress.add_task("Emitting signed events", total=None)
        storing = progress.add_task("Verifying and materialising", total=None, visible=False)
        querying = progress.add_task("Running inspection queries", total=None, visible=False)
        emitted = 0

        def on_emit(n: int) -> None:
            nonlocal emitted
            emitted = n
            progress.update(emitting, completed=n)

        def on_materialise(stats: Any) -> None:
            progress.update(emitting, total=emitted, completed=emitted)
            progress.update(
                storing,
                visible=True,
                total=emitted,
                completed=stats.events_materialised + stats.events_quarantined,
            )

        def on_query(query: Any) -> None:
            progress.update(querying, visible=True, advance=1)

        result = run_demo(
            s, plan, on_emit=on_emit, on_materialise=on_materialise, on_query=on_query
        )
        progress.update(querying, total=len(result.queries), completed=len(result.queries))
    if as_json:
        print_demo(result, err, s.data_dir)
        out.file.write(json.dumps(summary_json(result, s.data_dir)) + "\n")
    else:
        print_demo(result, out, s.data_dir)
    if result.inspection is not None and not result.inspection.verified:
        raise CliError("the demo's export bundle did not verify: see the checks above")


@app.command()
@click.option("--generations", type=click.IntRange(min=1), default=2_000, show_default=True)
@click.option("--users", type=click.IntRange(min=1), default=500, show_default=True)
@click.option(
    "--seed", type=int, default=None, help="Seed (default: random, so runs add new events)."
)
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
@bus_options
def emit(
    generations: int,
    users: int,
    seed: int | None,
    as_json: bool,
    bus: str | None,
    bootstrap: str | None,
) -> None:
    """Emit realistic synthetic traffic onto the bus (it is materialised by `consume`)."""
    import secrets

    from aigc_audit.consumers.demo import emit_traffic
    from aigc_audit.consumers.simulation import SimulationPlan

    plan = SimulationPlan(
        seed=secrets.randbits(32) if seed is None else seed,
        generations=generations,
        users=users,
        start=_month_ago(),
    )
    with Deployment(bus_settings(bus, bootstrap)) as deployment, _progress(err) as progress:
        task = progress.add_task("Emitting signed events", total=None)
        summary = emit_traffic(deployment, plan, lambda n: progress.update(task, completed=n))
        progress.update(task, total=summary.total, completed=summary.total)
    if as_json:
        out.file.write(json.dumps({"emitted": summary.total, "by_type": summary.counts}) + "\n")
    else:
        out.print(
            f"emitted {summary.total} events: "
            + ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
        )


@app.command()
@click.option("--follow", is_flag=True, help="Keep waiting for new batches.")
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
@bus_options
def consume(follow: bool, as_json: bool, bus: str | None, bootstrap: str | None) -> None:
    """Verify and materialise everything on the bus into the store."""
    with Deployment(bus_settings(bus, bootstrap)) as deployment:
        materialiser = deployment.materialiser()
        with _progress(err) as progress:
            task = progress.add_task("Verifying and materialising events", total=None)

            def show(stats: Any) -> None:
                progress.update(
                    task,
                    completed=stats.events_materialised + stats.events_quarantined,
                    description="Verifying and materialising events" + _flood_note(stats),
                )

            # SIGTERM ends --follow after the poll in hand is settled and committed.
            stopping = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            total = materialiser.run_until_idle(show) if not follow else MaterialiseStats()
            while follow and not stopping.is_set():
                step = materialiser.run_once(timeout_s=1.0)
                total.add(step)
                show(total)
    counts = total.__dict__
    if as_json:
        out.file.write(json.dumps(counts) + "\n")
    else:
        out.print(
            f"materialised {total.events_materialised} events in {total.batches_accepted} "
            f"batches; quarantined {total.messages_quarantined} messages; "
            f"{total.chain_findings} chain findings"
            + (f"; {total.reject_floods} reject-flood alerts" if total.reject_floods else "")
        )


@app.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0: any free port.")
@click.option(
    "--materialise/--no-materialise", default=True, help="Also run the materialiser (default)."
)
@click.option(
    "--hash-password",
    is_flag=True,
    help="Read a password on stdin, print its hash for serve_*_password_hash, and exit.",
)
@bus_options
def serve(
    port: int, materialise: bool, hash_password: bool, bus: str | None, bootstrap: str | None
) -> None:
    """Own the embedded store, materialise into it, and serve ClickHouse's HTTP interface.

    Prints the read-only URL; `aigc-audit query`, any ClickHouse client and Grafana can use it
    (other commands on this data directory find it by themselves). Readers are confined to the
    audit tables under the server's limits (reader_max_* settings); HTTPS with serve_tls_cert
    and serve_tls_key. Stops on Ctrl-C or SIGTERM.
    """
    if hash_password:
        from aigc_audit.consumers.store.passwords import hash_password as make_hash

        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on stdin")
        out.file.write(make_hash(password) + "\n")
        return
    from aigc_audit.consumers.serve import serve as run_serve

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    def ready(served: Any) -> None:
        err.print(f"serving the store (pid {served.pid}); stop with Ctrl-C")
        out.file.write(served.url + "\n")
        out.file.flush()

    alerts = [0]

    def progress(stats: MaterialiseStats) -> None:
        # serve has no progress bar: one line per new reject-flood alert, as it does not stop.
        if stats.reject_floods > alerts[0]:
            alerts[0] = stats.reject_floods
            err.print(
                f"[bold red]reject flood[/]: {stats.reject_floods} alert(s) so far, "
                f"{stats.messages_quarantined} messages quarantined; quarantining goes on "
                "(see trail_integrity)"
            )

    total = run_serve(
        bus_settings(bus, bootstrap),
        port=port,
        materialise=materialise,
        stop=stopping,
        on_ready=ready,
        on_progress=progress,
    )
    err.print(
        f"stopped: materialised {total.events_materialised} events, "
        f"quarantined {total.messages_quarantined} messages"
        + (f", {total.reject_floods} reject-flood alerts" if total.reject_floods else "")
    )


@query_app.command("list")
def query_list() -> None:
    """List the inspection queries with the articles they serve and their parameters."""
    from rich.table import Table as RichTable

    from aigc_audit.consumers.query_pack import load_query_pack

    table = RichTable(header_style="bold")
    table.add_column("name", no_wrap=True)
    for column in ("title", "articles", "parameters"):
        table.add_column(column, overflow="fold")
    for name, query in sorted(load_query_pack().items()):
        params = ", ".join(
            f"{p.name}: {p.type}" + (f" = {p.default}" if p.default is not None else "")
            for p in query.params
        )
        table.add_row(name, query.title, _articles(query.articles), params)
    out.print(table)


@query_app.command("run")
@click.argument("name")
@click.option("--param", "-p", "param", multiple=True, help="A parameter as NAME=VALUE.")
@click.option(
    "--format", "-f", "fmt", default="table", show_default=True, help="table, csv or json."
)
def query_run(name: str, param: tuple[str, ...], fmt: str) -> None:
    """Run one named inspection query against the store."""
    from aigc_audit.consumers.query_pack import bind_params, get_query, parse_param_args, run_query

    if fmt not in FORMATS:
        raise CliError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    query = get_query(name)
    values = bind_params(query, parse_param_args(param))
    with Deployment(settings()) as deployment:
        result = run_query(deployment.read_store(), query, values)
    if fmt == "table":
        out.print(result_table(result, f"{query.title} ({_articles(query.articles)})"))
        out.print(f"[dim]{len(result.rows)} rows at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC[/]")
    else:
        render(result, fmt, out)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user-facing failures into one line and exit code 2."""
    from aigc_audit.consumers.query_pack import QueryPackError

    try:
        code = app.main(args=argv, prog_name="aigc-audit", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        err.print("aigc-audit: aborted")
        sys.exit(130)
    except (PlatformError, QueryPackError, AuditError, OSError) as exc:
        _fail(exc)
    except ImportError as exc:
        # A base install (client library and offline verifier) has no platform libraries:
        # a command that needs one says which extra to install. Any other missing module is
        # a broken install or a bug, and its traceback is what helps.
        if missing_platform_module(exc) is None:
            raise
        _fail(exc)


def _month_ago() -> datetime:
    """The simulated month ends at today's midnight (UTC): recent data, well inside any
    retention period, and the same events for a seed all day long."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=30)


def _articles(articles: tuple[str, ...]) -> str:
    return "; ".join(articles)


def _fail(exc: BaseException) -> None:
    # Plain stderr, not rich: one line must stay one line whatever the terminal's width.
    missing = missing_platform_module(exc)
    if missing is not None:
        command = " ".join(filter(None, ("aigc-audit", state.command)))
        text = f"{command} needs the platform: {PLATFORM_INSTALL} (missing: {missing})"
    else:
        text = _one_line(exc)
    sys.stderr.write(f"aigc-audit: error: {text}\n")
    sys.exit(2)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


if __name__ == "__main__":
    main()
