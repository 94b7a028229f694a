"""``aigc-audit demo`` and ``emit``: the simulated traffic, end to end or onto the bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.cli.context import CliError, bus_options, bus_settings, err, out
from aigc_audit.consumers.cli.progress import progress_bars


@click.command()
@click.option("--json", "as_json", is_flag=True, help="End with one JSON summary line.")
@click.option("--generations", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--users", type=click.IntRange(min=10), default=5_000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the simulation.")
@bus_options
def demo(
    as_json: bool, generations: int, users: int, seed: int, bus: str | None, bootstrap: str | None
) -> None:
    """Simulate a provider's month, materialise it, and run the inspection queries."""
    from aigc_audit.consumers.cli.demo_summary import print_demo, summary_json
    from aigc_audit.consumers.demo.run import run_demo
    from aigc_audit.consumers.demo.simulation import SimulationPlan

    plan = SimulationPlan(seed=seed, generations=generations, users=users, start=_month_ago())
    s = bus_settings(bus, bootstrap)
    console = err if as_json else out
    with progress_bars(console) as progress:
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


@click.command()
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

    from aigc_audit.consumers.demo.run import emit_traffic
    from aigc_audit.consumers.demo.simulation import SimulationPlan

    plan = SimulationPlan(
        seed=secrets.randbits(32) if seed is None else seed,
        generations=generations,
        users=users,
        start=_month_ago(),
    )
    with Deployment(bus_settings(bus, bootstrap)) as deployment, progress_bars(err) as progress:
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


def _month_ago() -> datetime:
    """The simulated month ends at today's midnight (UTC): recent data, well inside any
    retention period, and the same events for a seed all day long."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=30)
