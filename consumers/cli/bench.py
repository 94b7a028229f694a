"""The ``aigc-audit bench`` command: run the benchmark, print one table, write the JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from aigc_audit.consumers.bench.run import TARGETS, BenchPlan, run_bench, target_met


def _eps(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _mark(key: str, value: float | None) -> str:
    met = target_met(key, value)
    return "" if met is None else ("[green]✓[/]" if met else "[red]✗[/]")


def figures_table(result: dict[str, Any]) -> Table:
    """Every figure of one run in one table: section, what, ours, the reference, the ratio."""
    table = Table(title="aigc-audit bench", header_style="bold", title_justify="left")
    for column in ("section", "figure", "ours", "reference", "ratio / target"):
        table.add_column(column, overflow="fold")
    summary = result["summary"]
    for stage in result["stages"]["stages"]:
        # escaped: rich would take "[kafka]" in "bus produce [kafka]" for a style and drop it
        name = escape(stage.get("label") or stage["name"])
        table.add_row(
            "stage (ev/s)",
            name,
            _eps(stage["ours_eps"]),
            escape(f"{_eps(stage['library_eps'])} {stage['library']}"),
            f"{stage['ratio']:.2f}",
        )
    client = result["client"]
    table.add_row(
        "client", "events/s, one core", _eps(client["eps"]), "", _goal("client_eps", summary)
    )
    table.add_row(
        "client",
        "emit cost on the caller (µs) p50 / p99 / max",
        f"{client['emit_p50_us']:.1f} / {client['emit_p99_us']:.1f} / {client['emit_max_us']:.0f}",
        "",
        _goal("emit_p99_us", summary),
    )
    naive = result["naive"]
    for key, label in (("e2e_embedded", "embedded"), ("e2e_kafka", "Kafka")):
        part = result.get(key)
        if not part:
            continue
        pipeline = part["pipeline"]
        reference = (
            f"naive {_eps(naive['eps'])} ({naive['bus']})"
            if naive["bus"] in ("kafka" if key == "e2e_kafka" else "embedded",)
            else ""
        )
        table.add_row(
            "end to end",
            f"emit → queryable, {label}, {pipeline['events']:,} events (ev/s)",
            _eps(pipeline["eps"]),
            reference,
            _goal("e2e_kafka_eps", summary) if key == "e2e_kafka" else "",
        )
        if pipeline.get("producer_cpu_us"):
            table.add_row(
                "cpu",
                f"CPU µs per event: producer / materialiser process ({label})",
                f"{pipeline['producer_cpu_us']:.1f} / {pipeline['materialiser_cpu_us']:.1f}",
                "2 cores: 20 µs an event in all is 100,000 events/s",
                "",
            )
        table.add_row(
            "size",
            f"bytes per event: bus / store on disk ({label})",
            f"{pipeline['bus_bytes_per_event']:.0f} / {pipeline['store_bytes_per_event']:.0f}",
            "",
            "",
        )
    table.add_row("end to end", "ours ÷ naive", f"{summary['naive_ratio']:.2f}", "", "")
    lat = result["latency"]
    table.add_row(
        "latency",
        f"emit → queryable at {lat['offered_eps']:,.0f} ev/s (s) p50 / p99 / max",
        f"{lat['p50_s']:.2f} / {lat['p99_s']:.2f} / {lat['max_s']:.2f}",
        "",
        _goal("latency_p99_s", summary),
    )
    queries = result["queries"]
    for name, seconds in sorted(queries["seconds"].items(), key=lambda kv: -kv[1]):
        table.add_row(
            "query (s)",
            f"{name} over {queries['events']:,} events",
            f"{seconds:.2f}",
            "",
            "[green]✓[/]" if seconds < 1 else "[red]✗[/]",
        )
    export = result["e2e_embedded"].get("export")
    if export:
        table.add_row(
            "export",
            f"{export['events']:,} events: export s / bundle MB",
            f"{export['export_s']:.1f} / {export['bundle_bytes'] / 1e6:.0f}",
            "",
            "",
        )
        table.add_row(
            "verify",
            "offline bundle verification (ev/s)",
            _eps(export["verify_eps"]),
            "verified" if export["verified"] else "[red]FAILED[/]",
            _goal("verify_eps", summary),
        )
    return table


def _goal(key: str, summary: dict[str, Any]) -> str:
    goal, sense = TARGETS[key]
    return f"{_mark(key, summary.get(key))} {sense} {goal:,}"


@click.command("bench")
@click.option(
    "--events",
    type=click.IntRange(min=1000),
    default=500_000,
    show_default=True,
    help="Events of the end-to-end run on Kafka.",
)
@click.option(
    "--bus",
    type=click.Choice(["embedded", "kafka"]),
    default="kafka",
    show_default=True,
    help="The bus of the stage, latency and naive runs (embedded always runs end to end too).",
)
@click.option("--bootstrap", help="A Kafka to use (default: start one for the benchmark).")
@click.option(
    "--query-events", type=click.IntRange(min=5000), default=10_000_000, show_default=True
)
@click.option(
    "--export-events",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Events of the embedded end-to-end run that is then exported and verified offline.",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench.json"))
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of the headline.")
def bench(
    events: int,
    bus: str,
    bootstrap: str | None,
    query_events: int,
    export_events: int,
    out: Path,
    as_json: bool,
) -> None:
    """Measure every stage, end to end on both buses, latency, queries, export and verify."""
    err = Console(stderr=True)
    plan = BenchPlan(
        events=events,
        stage_events=min(events, 100_000),
        naive_events=min(events, 50_000),
        bus=bus,
        bootstrap=bootstrap,
        query_events=query_events,
        export_events=export_events,
    )
    with err.status("benchmarking") as status:

        def say(text: str) -> None:
            status.update(text)
            err.log(text)

        result = run_bench(plan, say=say)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    console.print(figures_table(result))
    console.print(f"figures written to {out}")
    if as_json:
        sys.stdout.write(json.dumps(result["summary"]) + "\n")
