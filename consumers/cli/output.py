"""Renders query results for people (rich tables) and for programs (CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
import re
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table as RichTable

from aigc_audit.consumers.store.base import QueryResult

FORMATS = ("table", "csv", "json")


class CommandProgress(Progress):
    """A command's progress display that a failure takes with it: a failed command ends as one
    line on stderr (consumers/cli/main.py), and the last frame of a bar printed beside it (in a log,
    or on a base install, where a platform command fails as soon as it opens the store) would be
    a second."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_type is None or self.disable:
            super().__exit__(exc_type, exc_val, exc_tb)
            return
        # Live.stop, not Progress.stop: the latter ends a log's display with an empty line.
        self.live.transient = True
        self.live.stop()


def result_table(
    result: QueryResult, title: str | None = None, limit: int | None = None, compact: bool = False
) -> RichTable:
    """A rich table of ``result``; ``compact`` shortens times to the minute and long ids, for an
    overview (the CSV and JSON formats always carry the full values)."""
    table = RichTable(title=title, title_justify="left", show_lines=False, header_style="bold")
    for name, ctype in zip(result.columns, result.types, strict=True):
        numeric = any(t in ctype for t in ("Int", "Float", "Decimal"))
        table.add_column(
            name,
            justify="right" if numeric else "left",
            overflow="ellipsis" if compact else "fold",
            max_width=28 if compact else None,
            no_wrap=compact,
        )
    rows = result.rows if limit is None else result.rows[:limit]
    for row in rows:
        table.add_row(*(_short(_cell(v)) if compact else _cell(v) for v in row))
    if limit is not None and len(result.rows) > limit:
        table.caption = f"{limit} of {len(result.rows)} rows shown"
    return table


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d):\d\d(\.\d+)?$")
_HEX_ID = re.compile(r"^[0-9a-f]{24,}$")


def _short(text: str) -> str:
    if match := _TIMESTAMP.match(text):
        return match.group(1)
    if _HEX_ID.match(text):
        return text[:10] + "…"
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def render(result: QueryResult, fmt: str, console: Console, title: str | None = None) -> None:
    if fmt == "table":
        console.print(result_table(result, title))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(
            [json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for v in row]
            for row in result.rows
        )
        console.file.write(buf.getvalue())
    elif fmt == "json":
        console.file.write(json.dumps(result.as_dicts(), ensure_ascii=False, default=str) + "\n")
    else:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
