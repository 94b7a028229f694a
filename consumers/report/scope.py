"""What every section's queries share: the store, the selection as SQL, the time deadlines are
judged at.

Sections never format a value into SQL. The selection's condition and its parameters come from
:class:`consumers.query.selection.Selection` (``sel_*``, and a named query's own); the report's own
parameters are all prefixed ``rep_`` so they cannot clash with those: the judging time travels
as ``{rep_as_of:...}``, a section's values as further ``rep_*`` parameters. Only the database
name (configuration, not input) and table names (constants) are written into the SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aigc_audit.consumers.query.selection import Selection
from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.tables import FAMILY_TABLES

FAMILY_OF: dict[str, str] = {table.name: family for family, table in FAMILY_TABLES.items()}
"""The event family (Avro full name) whose rows each typed table holds."""

DT = "DateTime64(6, 'UTC')"
AS_OF = "{rep_as_of:DateTime64(6, 'UTC')}"
"""The placeholder of the time deadlines are judged at (bound by :meth:`Scope.rows`)."""


BUCKETS = (
    # (longest span in days, bucket function, fill step, Chinese, English)
    (400, "toDate", "toIntervalDay(1)", "每日", "per day"),
    (2800, "toMonday", "toIntervalWeek(1)", "每周", "per week"),
    (None, "toStartOfMonth", "toIntervalMonth(1)", "每月", "per month"),
)


def period_bucket(span_days: int | None, column: str) -> tuple[str, str, str, str]:
    """How to count a time series over ``span_days``: the bucket expression on ``column``, its
    ``WITH FILL`` step, and the Chinese and English words for it (days up to 400 days, weeks up
    to 2,800, months beyond), so that no chart has thousands of columns."""
    for longest, function, step, zh, en in BUCKETS:
        if longest is None or (span_days or 0) <= longest:
            return f"{function}({column})", step, zh, en
    raise AssertionError("unreachable")  # pragma: no cover


def judging_time(selection: Selection, now: datetime) -> datetime:
    """When "past due" is judged: ``now``, or the selection's end if it ends earlier, so that a
    report on a past quarter does not count as overdue what was answered after the quarter."""
    if selection.until is not None and selection.until < now:
        return selection.until
    return now


@dataclass
class Scope:
    """The selection and the store, as the section queries use them.

    ``selected(table)`` is the condition for a typed table (``event_id IN (<selected
    events>)``); ``events_where`` the same condition on the ``events`` table itself.
    ``window(column)`` is the selection's time range alone, on another time column, for the
    trail's own tables.
    """

    store: Store
    selection: Selection
    now: datetime
    as_of: datetime = field(init=False)
    db: str = field(init=False)
    events_where: str = field(init=False)
    params: dict[str, Any] = field(init=False)
    queries: int = field(default=0, init=False)
    cache: dict[str, Any] = field(default_factory=dict, init=False)
    """Results that several sections share (one pass over ``generations`` serves three)."""

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=UTC)
        self.as_of = judging_time(self.selection, self.now)
        self.db = self.store.database
        self.events_where, sel_params = self.selection.event_condition(self.db)
        self.params = {**sel_params, "rep_as_of": self.as_of}

    def table(self, name: str) -> str:
        """The qualified name of one of the store's tables."""
        return f"{self.db}.{name}"

    def selected(self, table: str) -> str:
        """``event_id IN (<the selection's event ids>)`` for the typed ``table``.

        The ids are those of :meth:`Selection.event_ids_sql`, narrowed to the table's own family: an
        event id names one event of one family, so the answer is the same, and the set the
        engine builds holds only the ids that can match (a report on a million events runs
        each query against its own family's ids, not all of them)."""
        events = self.table("events")
        family = FAMILY_OF[table]
        return (
            f"event_id IN (SELECT event_id FROM {events} "
            f"WHERE ({self.events_where}) AND family = '{family}')"
        )

    def window(self, column: str) -> str:
        """The selection's time range (only since/until) as a condition on ``column``: the
        trail's tables (batches, checkpoints, quarantine, findings) are not events and are
        judged over the whole log."""
        parts = []
        if self.selection.since is not None:
            parts.append(f"{column} >= {{rep_since:{DT}}}")
        if self.selection.until is not None:
            parts.append(f"{column} < {{rep_until:{DT}}}")
        return " AND ".join(parts) or "1"

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run an aggregate query with the selection's, the judging time's and the window's
        parameters, and ``params``; the rows as tuples."""
        merged = self._params(params)
        self.queries += 1
        return [tuple(r) for r in self.store.query(sql, merged).rows]

    def _params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        merged: dict[str, Any] = dict(self.params)
        if self.selection.since is not None:
            merged["rep_since"] = self.selection.since
        if self.selection.until is not None:
            merged["rep_until"] = self.selection.until
        merged.update(params or {})
        return merged

    def records(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """:meth:`rows`, each as a dict keyed by the query's column names."""
        merged = self._params(params)
        self.queries += 1
        return self.store.query(sql, merged).as_dicts()

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """The single row of an aggregate query without GROUP BY."""
        rows = self.rows(sql, params)
        if len(rows) != 1:
            raise ValueError(f"expected one row, got {len(rows)}")
        return rows[0]

    def latest(self, table: str, key: str, where: str, columns: str) -> str:
        """SQL for the latest recorded state of each ``key`` (case, complaint, request, ticket)
        among the selected rows of ``table`` that satisfy ``where``: a case is emitted again at
        each change, and counts once, as it last stood in the selection."""
        return (
            f"SELECT {columns} FROM {self.table(table)} "
            f"WHERE ({where}) AND {self.selected(table)} "
            f"ORDER BY {key}, occurred_at DESC, event_id DESC LIMIT 1 BY {key}"
        )
