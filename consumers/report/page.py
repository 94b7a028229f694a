"""The report as one self-contained HTML5 file: inline CSS and SVG only.

The page refers to nothing outside itself: no script, stylesheet, image, font or link to fetch
(a Content-Security-Policy meta tag forbids it too), so an inspector can open it offline and
it looks the same years later. Headings are in Chinese with the English beside them. Every
text from the store is escaped with :func:`html.escape`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from aigc_audit.consumers.report import fmt, svg
from aigc_audit.consumers.report.model import NO_DATA, Fact, Figure, Section
from aigc_audit.consumers.report.names import family_name

CSS = """
:root { --ink: #222; --muted: #5f6b76; --line: #d9dee3; --good: #3f8f4f; --warn: #b7791f;
  --bad: #c8453c; --paper: #fff; --band: #f5f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--paper); color: var(--ink); line-height: 1.45;
  font: 14px/1.45 FONTS; }
header.cover, nav.toc, main, footer { max-width: 1280px; margin: 0 auto; padding: 0 24px; }
header.cover { padding-top: 28px; border-bottom: 3px solid var(--ink); padding-bottom: 16px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 6px; }
h2 .num { display: inline-block; min-width: 1.6em; color: var(--muted); }
h3 { font-size: 15px; margin: 0 0 8px; }
.sub, .articles, .scope, .note, footer { color: var(--muted); }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 14px 0; }
.meta dt { font-weight: 600; }
.meta dd { margin: 0; }
nav.toc ol { columns: 2; margin: 8px 0 0; }
section.duty { border-top: 1px solid var(--line); padding: 22px 0 10px; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.fact { background: var(--band); border-left: 4px solid var(--line); padding: 6px 12px;
  min-width: 150px; }
.fact .v { display: block; font-size: 20px; font-weight: 600; }
.fact .l { display: block; font-size: 12px; color: var(--muted); }
.fact.good { border-color: var(--good); } .fact.bad { border-color: var(--bad); }
.fact.warn { border-color: var(--warn); }
.fact.bad .v { color: var(--bad); }
ul.findings { margin: 8px 0 12px; padding-left: 20px; color: var(--bad); }
p.empty { background: var(--band); padding: 10px 14px; font-weight: 600; }
figure.fig { margin: 16px 0 22px; break-inside: avoid; }
.pair { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.chart-box { flex: 0 1 auto; max-width: 100%; overflow-x: auto; }
svg.chart { max-width: 100%; height: auto; }
.numbers { flex: 1 1 380px; max-height: 460px; overflow: auto; }
table { border-collapse: collapse; font-size: 12.5px; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left;
  vertical-align: top; }
th { background: var(--band); position: sticky; top: 0; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.bad { color: var(--bad); font-weight: 600; }
td.hex { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px;
  word-break: break-all; }
p.figempty { color: var(--muted); font-style: italic; }
footer { border-top: 1px solid var(--line); padding: 14px 24px 30px; font-size: 12px; }
@media print { .numbers { max-height: none; overflow: visible; }
  section.duty { break-before: page; } }
""".replace("FONTS", svg.FONT)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
NUMERIC = frozenset({"int", "float", "percent", "seconds", "hours", "days", "bytes"})


@dataclass
class Header:
    """What the report is about: the store, the selection, when, and how many events."""

    title: str
    database: str
    selection: dict[str, Any]
    generated_at: datetime
    as_of: datetime
    event_count: int
    family_counts: dict[str, int]
    services: list[str] = field(default_factory=list)
    first_event: Any = None
    last_event: Any = None


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def describe_selection(selection: dict[str, Any]) -> str:
    """The selection in one line, e.g. ``subject = u-1; since = 2026-03-01T00:00:00+00:00``."""
    parts = []
    for key, value in selection.items():
        if value in (None, [], {}, ""):
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        parts.append(f"{key} = {value}")
    return "; ".join(parts) or "全部事件 · every event in the store"


def _header(h: Header) -> str:
    when = h.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    judged = h.as_of.strftime("%Y-%m-%d %H:%M:%S UTC")
    period = (
        f"{fmt.timestamp(h.first_event)} — {fmt.timestamp(h.last_event)}"
        if h.first_event
        else fmt.MISSING
    )
    meta = [
        ("部署数据库 · Deployment database", h.database),
        ("服务 · Services", ", ".join(h.services) or fmt.MISSING),
        ("选取范围 · Selection", describe_selection(h.selection)),
        ("事件时间 · Events between", period),
        ("生成时间 · Generated at", when),
        ("期限判定时间 · Deadlines judged at", judged),
        ("事件总数 · Events selected", fmt.integer(h.event_count)),
    ]
    rows = "".join(
        f'<tr><td>{_e(family_name(name))}</td><td class="n">{fmt.integer(count)}</td></tr>'
        for name, count in sorted(h.family_counts.items())
    )
    families = (
        "<table class='families'><thead><tr><th>事件类别 · Event family</th>"
        f"<th>事件数 · Events</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else f'<p class="empty">{_e(NO_DATA)}</p>'
    )
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    return (
        f'<header class="cover"><h1>{_e(h.title)}</h1>'
        '<p class="sub">生成式人工智能服务管理暂行办法 合规审计报告 · Inspection report under '
        "the Interim Measures for the Management of Generative AI Services</p>"
        f'<dl class="meta">{dl}</dl>{families}</header>'
    )


def _fact(fact: Fact) -> str:
    tone = f" {fact.tone}" if fact.tone else ""
    return (
        f'<div class="fact{tone}" data-key="{_e(fact.key)}"><span class="v">'
        f'{_e(fmt.cell(fact.value, fact.kind))}</span><span class="l">{_e(fact.label)}</span></div>'
    )


def numbers_table(figure: Figure) -> str:
    """The figure's numbers as an HTML table (every row, every column)."""
    head = "".join(f"<th>{_e(c.label)}</th>" for c in figure.columns)
    body = []
    for row in figure.rows:
        cells = []
        for col, value in zip(figure.columns, row, strict=True):
            classes = []
            if col.kind in NUMERIC:
                classes.append("n")
            if col.key.endswith("_hex"):
                classes.append("hex")
            if col.tone == "bad" and isinstance(value, (int, float)) and value > 0:
                classes.append("bad")
            if col.kind == "bool" and value is False:
                classes.append("bad")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{cls}>{_e(fmt.cell(value, col.kind))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="numbers-table" data-figure="{_e(figure.key)}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table>"
    )


def _figure(figure: Figure) -> str:
    title = f"<figcaption><h3>{_e(figure.title)}</h3></figcaption>"
    if not figure.rows:
        return (
            f'<figure class="fig" id="fig-{_e(figure.key)}">{title}'
            f'<p class="figempty">{_e(figure.empty)}</p></figure>'
        )
    chart = svg.chart_svg(figure)
    notes = [figure.note] if figure.note else []
    if chart and figure.chart and figure.chart.kind != "columns":
        total = len(figure.rows)
        if total > figure.chart.limit:
            notes.append(
                f"图中仅显示前 {figure.chart.limit} 行，表中为全部 {total} 行 · The chart shows "
                f"the first {figure.chart.limit} rows; the table has all {total}."
            )
    box = f'<div class="chart-box">{chart}</div>' if chart else ""
    note = "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    return (
        f'<figure class="fig" id="fig-{_e(figure.key)}">{title}<div class="pair">{box}'
        f'<div class="numbers">{numbers_table(figure)}</div></div>{note}</figure>'
    )


def section_html(section: Section) -> str:
    """One duty: heading, articles served, then either "no data" or facts, findings, figures."""
    parts = [
        f'<section class="duty" id="sec-{_e(section.key)}" data-key="{_e(section.key)}">',
        f'<h2><span class="num">{section.number}</span>{_e(section.title)}</h2>',
        f'<p class="articles">依据 · Serves: {_e(section.articles)}</p>',
    ]
    if section.scope_note:
        parts.append(f'<p class="scope">{_e(section.scope_note)}</p>')
    if section.empty:
        parts.append(f'<p class="empty">{_e(NO_DATA)}</p></section>')
        return "".join(parts)
    if section.facts:
        parts.append(f'<div class="facts">{"".join(_fact(f) for f in section.facts)}</div>')
    if section.findings:
        items = "".join(f"<li>{_e(f)}</li>" for f in section.findings)
        parts.append(f'<ul class="findings">{items}</ul>')
    parts.extend(_figure(f) for f in section.figures)
    parts.append("</section>")
    return "".join(parts)


def render(header: Header, sections: Sequence[Section]) -> str:
    """The whole page."""
    toc = "".join(f'<li><a href="#sec-{_e(s.key)}">{_e(s.title)}</a></li>' for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        f'<meta name="generator" content="aigc-audit report">'
        f"<title>{_e(header.title)}</title><style>{CSS}</style></head><body>"
        f"{_header(header)}"
        f'<nav class="toc"><h2>目录 · Contents</h2><ol>{toc}</ol></nav>'
        f"<main>{''.join(section_html(s) for s in sections)}</main>"
        "<footer>本报告由审计日志存储中的聚合数据生成；逐条证据与签名校验见导出包。 · This report "
        "aggregates the audit store; the events themselves and the proofs of their signatures "
        "are in the export bundle.</footer></body></html>\n"
    )
