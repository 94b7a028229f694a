"""Inline SVG charts in pure Python: horizontal bars (single, grouped or stacked) and vertical
stacked columns over time. No script, no external font or stylesheet, no network.

Every text is escaped with :func:`html.escape`. Labels use a font list that includes the common
CJK fonts, so Chinese labels render on Linux, macOS and Windows; label widths are estimated
with CJK characters one em wide, and a label too long for its column is shortened with an
ellipsis (the full text stays in the element's ``<title>``, shown on hover). The SVG is meant
to sit inline in an HTML5 page, so it carries no namespace declaration (and no URL at all).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from aigc_audit.consumers.report import fmt
from aigc_audit.consumers.report.model import ColumnKind, Figure, Tone

FONT = (
    "'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Hiragino Sans GB', "
    "'Microsoft YaHei', 'WenQuanYi Micro Hei', 'Helvetica Neue', Arial, sans-serif"
)
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7")
TONES: dict[str, str] = {
    "good": "#3f8f4f",
    "warn": "#e3a33b",
    "bad": "#c8453c",
    "neutral": "#9aa3ad",
}
GRID = "#e3e6ea"
INK = "#222"
MUTED = "#5f6b76"
FONT_SIZE = 12
WIDTH = 680


@dataclass(frozen=True)
class Series:
    """One set of values across the chart's rows, with its legend name and colour."""

    name: str
    values: tuple[object, ...]
    colour: str


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """An estimate of the rendered width: wide (CJK) characters one em, others 0.6 em."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else size * 0.6 for ch in text)


def clip(text: str, width: float, size: float = FONT_SIZE) -> str:
    """``text`` shortened with an ellipsis to fit ``width``."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top`` (``0, 250, 500, 750, 1000``)."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _number(value: object) -> float:
    if value is None or isinstance(value, bool):
        return 0.0
    try:
        number = float(value)  # type: ignore[arg-type]  # what float() refuses is caught
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _t(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: int = FONT_SIZE,
    fill: str = INK,
    extra: str = "",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{extra}>{escape(text)}</text>'
    )


def _open(width: float, height: float, label: str) -> str:
    return (
        f'<svg class="chart" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="{escape(FONT)}" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    )


def _legend(series: Sequence[Series], x0: float, width: float) -> tuple[list[str], float]:
    """The legend as SVG elements, and the height it takes (none for a single series)."""
    if len(series) < 2:
        return [], 0.0
    parts: list[str] = []
    x, y = x0, 14.0
    for s in series:
        item = text_width(s.name, 11) + 26
        if x + item > x0 + width and x > x0:
            x, y = x0, y + 18
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{s.colour}"/>'
        )
        parts.append(_t(x + 14, y, s.name, size=11, fill=MUTED))
        x += item
    return parts, y + 10


def hbar(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    kind: ColumnKind = "int",
    stacked: bool = False,
) -> str:
    """Horizontal bars, one row per label: side by side for several series, or stacked."""
    groups = 1 if stacked or len(series) == 1 else len(series)
    row_h = max(22.0, 9.0 * groups + 8)
    label_w = min(max((text_width(lb) for lb in labels), default=40) + 10, 280.0)
    x0, x1 = label_w + 8, WIDTH - 70
    legend, top = _legend(series, x0, x1 - x0)
    top += 6
    totals = [
        sum(_number(s.values[i]) for s in series)
        if stacked
        else max((_number(s.values[i]) for s in series), default=0)
        for i in range(len(labels))
    ]
    ticks = nice_ticks(max(totals, default=0))
    scale = (x1 - x0) / ticks[-1]
    height = top + row_h * len(labels) + 24
    parts = [_open(WIDTH, height, title), *legend]
    for tick in ticks:
        x = x0 + tick * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" '
            f'y2="{height - 20:.1f}" stroke="{GRID}"/>'
        )
        parts.append(_t(x, height - 6, fmt.axis(tick, kind), anchor="middle", size=10, fill=MUTED))
    bar_h = (row_h - 8) if groups == 1 else (row_h - 8) / groups
    for i, label in enumerate(labels):
        y = top + i * row_h
        shown = clip(label, label_w - 10)
        title_el = f"<title>{escape(label)}</title>" if shown != label else ""
        parts.append(f"<g>{title_el}{_t(label_w, y + row_h / 2 + 4, shown, anchor='end')}</g>")
        x = x0
        for j, s in enumerate(series):
            value = _number(s.values[i])
            w = value * scale
            by = y + 4 + (0 if stacked or groups == 1 else j * bar_h)
            bx = x if stacked else x0
            tip = f"{label} · {s.name}: {fmt.cell(s.values[i], kind)}"
            parts.append(
                f'<rect x="{bx:.1f}" y="{by:.1f}" width="{w:.1f}" height="{max(bar_h - 1, 2):.1f}"'
                f' fill="{s.colour}"><title>{escape(tip)}</title></rect>'
            )
            if stacked:
                x += w
            elif groups > 1:
                parts.append(
                    _t(x0 + w + 4, by + bar_h / 2 + 3, fmt.cell(s.values[i], kind), size=10)
                )
        if stacked or groups == 1:
            end = x0 + totals[i] * scale
            parts.append(_t(end + 4, y + row_h / 2 + 4, fmt.cell(totals[i], kind), size=11))
    parts.append("</svg>")
    return "".join(parts)


def columns(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    kind: ColumnKind = "int",
) -> str:
    """Vertical stacked columns, one per label in order (days of a time series)."""
    width, plot_h, left = 720.0, 200.0, 52.0
    legend, top = _legend(series, left, width - left - 10)
    top += 8
    height = top + plot_h + 34
    totals = [sum(_number(s.values[i]) for s in series) for i in range(len(labels))]
    ticks = nice_ticks(max(totals, default=0))
    scale = plot_h / ticks[-1]
    base = top + plot_h
    parts = [_open(width, height, title), *legend]
    for tick in ticks:
        y = base - tick * scale
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{width - 8:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(_t(left - 6, y + 4, fmt.axis(tick, kind), anchor="end", size=10, fill=MUTED))
    slot = (width - 8 - left) / max(len(labels), 1)
    bar_w = max(slot * 0.8, 1.0)
    every = max(1, math.ceil(len(labels) / 8))
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = base
        for s in series:
            h = _number(s.values[i]) * scale
            if h <= 0:
                continue
            y -= h
            tip = f"{label} · {s.name}: {fmt.cell(s.values[i], kind)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{s.colour}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0:
            parts.append(
                _t(
                    left + i * slot + slot / 2,
                    base + 16,
                    label,
                    anchor="middle",
                    size=10,
                    fill=MUTED,
                )
            )
    parts.append(
        f'<line x1="{left:.1f}" y1="{base:.1f}" x2="{width - 8:.1f}" y2="{base:.1f}" '
        f'stroke="{MUTED}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def colour(tone: Tone | None, index: int) -> str:
    """A series' colour: its tone's, or the palette's ``index``-th."""
    return TONES[tone] if tone else PALETTE[index % len(PALETTE)]


def chart_svg(figure: Figure) -> str | None:
    """The SVG of a figure's chart, drawn from its own table; None without chart or rows."""
    chart = figure.chart
    if chart is None or not figure.rows:
        return None
    shown = figure.rows if chart.kind == "columns" else figure.rows[: chart.limit]
    label_i = figure.index(chart.label)
    labels = [fmt.cell(row[label_i], figure.columns[label_i].kind) for row in shown]
    series = []
    for n, key in enumerate(chart.values):
        col = figure.column(key)
        i = figure.index(key)
        series.append(Series(col.label, tuple(row[i] for row in shown), colour(col.tone, n)))
    kind = figure.column(chart.values[0]).kind
    if chart.kind == "columns":
        return columns(figure.title, labels, series, kind=kind)
    return hbar(figure.title, labels, series, kind=kind, stacked=chart.kind == "stacked")
