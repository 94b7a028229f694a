"""How numbers, durations and times are printed in tables, facts and chart axes.

Every function returns plain text (not HTML): the page and the charts escape it. ``None`` (a
NULL from the store, e.g. a quantile over no values) prints as an em dash.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from aigc_audit.consumers.report.model import ColumnKind

MISSING = "—"


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def integer(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else f"{round(number):,}"


def decimal(value: Any, places: int = 2) -> str:
    number = _number(value)
    if number is None:
        return MISSING
    if number == int(number) and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:,.{places}f}"


def percent(value: Any) -> str:
    """A share in [0, 1] as ``97.5%`` (one decimal when not whole)."""
    number = _number(value)
    if number is None:
        return MISSING
    pct = number * 100
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 0.05 else f"{pct:.1f}%"


def duration(seconds: Any) -> str:
    """A duration given in seconds, in the unit that reads best: ``850 ms``, ``42 s``,
    ``17.5 min``, ``3.2 h``, ``4.1 d``."""
    number = _number(seconds)
    if number is None:
        return MISSING
    size = abs(number)
    if size == 0:
        return "0 s"
    if size < 1:
        return f"{number * 1000:.0f} ms"
    if size < 120:
        return f"{number:.1f} s" if size < 10 else f"{number:.0f} s"
    if size < 7200:
        return f"{number / 60:.1f} min"
    if size < 172800:
        return f"{number / 3600:.1f} h"
    return f"{number / 86400:.1f} d"


def byte_size(value: Any) -> str:
    number = _number(value)
    if number is None:
        return MISSING
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(number) < 1024 or unit == "TB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return MISSING  # pragma: no cover


def timestamp(value: Any) -> str:
    """A store timestamp (``YYYY-MM-DD HH:MM:SS.ffffff``) or datetime to the second, in UTC."""
    if value is None:
        return MISSING
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)[:19]


def cell(value: Any, kind: ColumnKind) -> str:
    """One table cell or fact value in the form its column kind asks for."""
    if kind == "text":
        return MISSING if value is None or value == "" else str(value)
    if kind == "int":
        return integer(value)
    if kind == "float":
        return decimal(value)
    if kind == "percent":
        return percent(value)
    if kind == "seconds":
        return duration(value)
    if kind == "hours":
        return MISSING if _number(value) is None else duration(float(value) * 3600)
    if kind == "days":
        return MISSING if _number(value) is None else duration(float(value) * 86400)
    if kind == "datetime":
        return timestamp(value)
    if kind == "bool":
        return MISSING if value is None else ("✓" if value else "✗")
    if kind == "bytes":
        return byte_size(value)
    raise ValueError(f"unknown column kind {kind!r}")


def axis(value: float, kind: ColumnKind) -> str:
    """A tick label on a chart's value axis: compact (``1.2k``, ``3M``) for counts."""
    if value == 0:
        return "0"
    if kind in ("percent", "seconds", "hours", "days", "bytes"):
        return cell(value, kind)
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e3:
        return f"{value / 1e3:.3g}k"
    return decimal(value, 2 if size < 10 else 0)
