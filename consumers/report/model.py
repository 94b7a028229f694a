"""What a report is made of: sections, their figures (a chart and its numbers), key facts.

The model holds aggregated numbers only, never raw events; it is what the page renders and what
a program (or a test) reads back. A chart is not data of its own: it names columns of its
figure's table, so every chart drawn has exactly the numbers printed beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ColumnKind = Literal[
    "text", "int", "float", "percent", "seconds", "hours", "days", "datetime", "bool", "bytes"
]
"""How a column's values are printed: ``percent`` is a share in [0, 1]; ``seconds``, ``hours``
and ``days`` are durations in that unit; ``bool`` prints ✓ / ✗."""

Tone = Literal["good", "warn", "bad", "neutral"]
"""The colour a series (or a fact) takes: compliant, doubtful, a breach, or plain."""

ChartKind = Literal["bar", "stacked", "columns"]
"""``bar``: horizontal bars, one per row (side by side when several value columns);
``stacked``: horizontal bars with the value columns stacked; ``columns``: vertical stacked
columns over time (one per row, in row order)."""

NO_DATA = "本次选取无数据 · No data in this selection"
NONE_FOUND = "未发现 · None found"


@dataclass(frozen=True)
class Column:
    """One column of a figure's table: a stable ``key`` for programs, a bilingual ``label`` for
    people, the ``kind`` of its values and, for a charted column, the ``tone`` of its series."""

    key: str
    label: str
    kind: ColumnKind = "text"
    tone: Tone | None = None


@dataclass(frozen=True)
class Chart:
    """A chart over a figure's own table: row labels from column ``label``, values from the
    columns in ``values`` (all of the figure's columns, by key). At most ``limit`` rows are
    drawn (the table always has them all)."""

    kind: ChartKind
    label: str
    values: tuple[str, ...]
    limit: int = 30


@dataclass
class Figure:
    """A table of aggregated numbers and, optionally, the chart drawn from it.

    ``empty`` is what the page says instead when there are no rows: "no data" by default, or
    "none found" for a list of breaches where no row is good news.
    """

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    chart: Chart | None = None
    note: str | None = None
    empty: str = NO_DATA

    def __post_init__(self) -> None:
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"figure {self.key}: duplicate column keys {keys}")
        for row in self.rows:
            if len(row) != len(keys):
                raise ValueError(f"figure {self.key}: row {row!r} does not match columns {keys}")
        if self.chart is not None:
            for name in (self.chart.label, *self.chart.values):
                if name not in keys:
                    raise ValueError(f"figure {self.key}: chart column {name!r} not in {keys}")

    def index(self, key: str) -> int:
        """The position of column ``key``."""
        return [c.key for c in self.columns].index(key)

    def column(self, key: str) -> Column:
        return self.columns[self.index(key)]

    def values(self, key: str) -> list[Any]:
        """Every row's value in column ``key``."""
        i = self.index(key)
        return [row[i] for row in self.rows]

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows keyed by column key."""
        keys = [c.key for c in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]

    def lookup(self, key: str, value: Any) -> dict[str, Any]:
        """The one row whose column ``key`` equals ``value``; KeyError if there is none."""
        for row in self.as_dicts():
            if row[key] == value:
                return row
        raise KeyError(f"figure {self.key}: no row with {key} = {value!r}")


@dataclass(frozen=True)
class Fact:
    """A headline number of a section (total, share, count of breaches); ``tone`` marks a
    breach (``bad``) or a clean result (``good``)."""

    key: str
    label: str
    value: Any
    kind: ColumnKind = "int"
    tone: Tone | None = None


@dataclass
class Section:
    """One duty of the Measures, as the report shows it."""

    key: str
    number: int
    title_zh: str
    title_en: str
    articles: str
    """The article(s) it serves, e.g. ``Art. 14 ¶1; Draft 13, 15``."""
    figures: list[Figure] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    """Plain sentences naming what needs attention (bilingual)."""
    scope_note: str | None = None
    """How the section is scoped when it is not by the selection (the trail's health)."""

    @property
    def title(self) -> str:
        return f"{self.title_zh} · {self.title_en}"

    @property
    def empty(self) -> bool:
        """True when no figure has a row: the page then says so instead of drawing charts."""
        return not any(f.rows for f in self.figures)

    def figure(self, key: str) -> Figure:
        for fig in self.figures:
            if fig.key == key:
                return fig
        raise KeyError(f"section {self.key}: no figure {key!r}")

    def fact(self, key: str) -> Any:
        """The value of fact ``key``."""
        for fact in self.facts:
            if fact.key == key:
                return fact.value
        raise KeyError(f"section {self.key}: no fact {key!r}")


@dataclass
class Report:
    """A rendered inspection report and the numbers behind it."""

    html: str
    sections: list[Section]
    event_count: int
    """Events in the selection (rows of ``events`` that it matches)."""
    family_counts: dict[str, int]
    title: str
    database: str
    selection: dict[str, Any]
    generated_at: datetime
    as_of: datetime
    """When deadlines are judged: the selection's ``until`` if earlier than ``generated_at``."""
    seconds: float = 0.0
    """How long the queries and rendering took."""

    def section(self, key: str) -> Section:
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(f"no section {key!r}; have {[s.key for s in self.sections]}")
