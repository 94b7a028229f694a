"""``aigc-audit consume`` and ``serve``: the materialiser, alone or beside the store's server."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.cli.context import bus_options, bus_settings, err, out
from aigc_audit.consumers.cli.progress import progress_bars
from aigc_audit.consumers.ingest.materialiser import MaterialiseStats


def _flood_note(stats: MaterialiseStats) -> str:
    """What the progress line adds once the materialiser has raised reject-flood alerts: a
    flood does not stop it, so the operator must see it here."""
    if not stats.reject_floods:
        return ""
    return (
        f" [bold red](reject flood: {stats.reject_floods} alert(s); quarantining goes on, "
        "see trail_integrity)[/]"
    )


@click.command()
@click.option("--follow", is_flag=True, help="Keep waiting for new batches.")
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
@bus_options
def consume(follow: bool, as_json: bool, bus: str | None, bootstrap: str | None) -> None:
    """Verify and materialise everything on the bus into the store."""
    with Deployment(bus_settings(bus, bootstrap)) as deployment:
        materialiser = deployment.materialiser()
        with progress_bars(err) as progress:
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


@click.command()
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
    from aigc_audit.consumers.app.serve import serve as run_serve

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
