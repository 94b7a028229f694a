"""What the demo shows a person at the end, and the one JSON line it gives a program."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table as RichTable

from aigc_audit.consumers.cli.output import result_table
from aigc_audit.consumers.demo.run import DemoResult
from aigc_audit.consumers.query.pack import load_query_pack

ROWS_SHOWN = 8


def summary_json(result: DemoResult, data_dir: Path) -> dict[str, Any]:
    return {
        "emitted": result.emitted,
        "materialised": result.materialised,
        "quarantined": result.quarantined,
        "emitted_by_type": result.summary.counts,
        "chain_findings": result.stats.chain_findings,
        "queries": {name: len(r.rows) for name, r in result.queries.items()},
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "data_dir": str(data_dir),
        **_inspection_json(result),
    }


def _inspection_json(result: DemoResult) -> dict[str, Any]:
    inspection = result.inspection
    if inspection is None:
        return {}
    return {
        "bundle": str(inspection.bundle),
        "report": str(inspection.report),
        "trust": str(inspection.trust),
        "bundle_verified": inspection.verified,
        "exported_events": inspection.exported_events,
        "bundle_bytes": inspection.bundle_bytes,
    }


def print_demo(result: DemoResult, console: Console, data_dir: Path) -> None:
    summary = result.summary
    ok = result.materialised == result.emitted and result.quarantined == 0
    verdict = "[green]every event verified and stored[/]" if ok else "[red]events missing[/]"
    console.print(
        Panel.fit(
            f"Simulated provider {summary.describe()}\n"
            f"Emitted [bold]{result.emitted}[/] signed events in "
            f"{result.stats.batches_accepted} batches in {result.seconds['emit']:.1f}s; "
            f"materialised [bold]{result.materialised}[/] in "
            f"{result.seconds['materialise']:.1f}s; quarantined [bold]{result.quarantined}[/] — "
            f"{verdict}.",
            title="aigc-audit demo",
        )
    )
    families = RichTable(title="Events by kind", title_justify="left", header_style="bold")
    families.add_column("event kind")
    families.add_column("emitted", justify="right")
    families.add_column("", justify="left")
    top = max(summary.counts.values(), default=1)
    for kind, count in sorted(summary.counts.items(), key=lambda kv: -kv[1]):
        bar = "█" * max(1, round(24 * count / top))
        families.add_row(kind, f"{count:,}", f"[cyan]{bar}[/]")
    console.print(families)

    pack = load_query_pack()
    for name, res in result.queries.items():
        query = pack[name]
        articles = "; ".join(query.articles)
        title = f"{query.title} — {articles} · {name} · {len(res.rows)} rows"
        if res.rows:
            console.print(result_table(res, title, limit=ROWS_SHOWN, compact=True))
        else:
            console.print(f"[bold]{title}[/]\n  (no rows)")
    _print_inspection(result, console)
    console.print(
        f"\nData directory: {data_dir}. Try `aigc-audit query list` and "
        "`aigc-audit query run NAME --param k=v`."
    )


def _print_inspection(result: DemoResult, console: Console) -> None:
    inspection = result.inspection
    if inspection is None:
        return
    console.print("\n[bold]Inspection: the bundle verified offline with only the root key[/]")
    for line in inspection.checks:
        style = "green" if line.startswith("✓") else "red"
        console.print(f"  [{style}]{line[:1]}[/]{line[1:]}", highlight=False)
    verdict = "[green]verified[/]" if inspection.verified else "[red]FAILED[/]"
    console.print(
        Panel.fit(
            f"Export bundle ({inspection.exported_events:,} events, "
            f"{inspection.bundle_bytes / 1e6:.1f} MB): {inspection.bundle} — {verdict}\n"
            f"Report: {inspection.report}\n"
            f"Root public key: {inspection.trust}\n"
            f"Check it yourself: aigc-audit verify {inspection.bundle} --trust {inspection.trust}",
            title="Handed to the inspector",
        )
    )
