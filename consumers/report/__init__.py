"""The self-contained HTML inspection report (Art. 19: "a readable report").

``build_report(store, selection)`` runs one set of aggregate queries per duty of the Measures
over the selected events (the same :class:`~consumers.query.selection.Selection` that drives an
export bundle, so the report describes exactly the bundle's events) and renders one HTML5 file with
inline CSS and SVG charts, every chart beside the table of its numbers. ``write_report`` also
writes it to a file.

Example::

    report = write_report(store, Selection(subject="u-1f3a"), Path("report.html"))
    report.section("incidents").figure("by_risk").as_dicts()

May import ``query``, ``store`` and the client library.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from aigc_audit.consumers.query.selection import Selection
from aigc_audit.consumers.report.model import Chart, Column, Fact, Figure, Report, Section
from aigc_audit.consumers.report.page import Header, render
from aigc_audit.consumers.report.scope import Scope
from aigc_audit.consumers.report.sections import SECTIONS, build_sections
from aigc_audit.consumers.store.base import Store

__all__ = [
    "SECTIONS",
    "Chart",
    "Column",
    "Fact",
    "Figure",
    "Report",
    "Section",
    "build_report",
    "write_report",
]

DEFAULT_TITLE = "生成式人工智能服务合规审计报告 · Generative AI service compliance audit report"


def _header(scope: Scope, title: str) -> Header:
    """The selection's size and reach, from ``events``: counts per family, services, period."""
    rows = scope.rows(
        f"SELECT toString(family) AS family, count() AS events, min(occurred_at), "
        f"max(occurred_at), arraySort(groupUniqArray(toString(service_id))) "
        f"FROM {scope.table('events')} WHERE {scope.events_where} GROUP BY family ORDER BY family"
    )
    counts = {family: int(n) for family, n, *_ in rows}
    return Header(
        title=title,
        database=scope.db,
        selection=scope.selection.describe(),
        generated_at=scope.now,
        as_of=scope.as_of,
        event_count=sum(counts.values()),
        family_counts=counts,
        services=sorted({s for *_, services in rows for s in services}),
        first_event=min((r[2] for r in rows), default=None),
        last_event=max((r[3] for r in rows), default=None),
    )


def build_report(
    store: Store,
    selection: Selection,
    *,
    now: datetime | None = None,
    title: str | None = None,
) -> Report:
    """The report on the events ``selection`` picks from ``store``.

    ``now`` is the generation time printed in the header (default: the current UTC time);
    deadlines are judged at ``now``, or at the selection's ``until`` when that is earlier. Every
    section is restricted to the selected events (``event_id IN (<selection>)``) except the
    trail's integrity, which only the selection's time range restricts.
    """
    started = time.perf_counter()
    scope = Scope(store, selection, now or datetime.now(UTC))
    header = _header(scope, title or DEFAULT_TITLE)
    sections = build_sections(scope)
    html = render(header, sections)
    return Report(
        html=html,
        sections=sections,
        event_count=header.event_count,
        family_counts=header.family_counts,
        title=header.title,
        database=header.database,
        selection=header.selection,
        generated_at=scope.now,
        as_of=scope.as_of,
        seconds=time.perf_counter() - started,
    )


def write_report(
    store: Store,
    selection: Selection,
    path: Path,
    *,
    now: datetime | None = None,
    title: str | None = None,
) -> Report:
    """:func:`build_report`, written to ``path`` as UTF-8 (parent directories created)."""
    report = build_report(store, selection, now=now, title=title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.html, encoding="utf-8")
    return report
