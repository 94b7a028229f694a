"""What an inspection asks for: a selection of events, by time, subject, family or named query.

One selection drives an export bundle and the report written beside it, so both describe exactly
the same events. A selection becomes a SQL condition on ``events`` (and, through ``event_id IN``,
on every typed table); its values travel as query parameters, never inside the SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aigc_audit.consumers.query.errors import QueryError
from aigc_audit.consumers.query.pack import bind_params, get_query
from aigc_audit.consumers.store.tables import FAMILY_TABLES

FAMILIES: Mapping[str, str] = {
    table.name: fullname for fullname, table in FAMILY_TABLES.items()
} | {fullname.rsplit(".", 1)[1]: fullname for fullname in FAMILY_TABLES}
"""Names a user may give for an event family (``generations`` or ``Generation``) → Avro name."""


class SelectionError(QueryError):
    """A selection that cannot be run: an unknown family, a query without event ids."""


@dataclass(frozen=True)
class Selection:
    """The events an inspection asks for. Every given criterion must hold (they combine with
    AND); an empty selection means every event in the store.

    Example::

        Selection(since=datetime(2026, 11, 1, tzinfo=UTC), families=("Generation",))
    """

    since: datetime | None = None
    """Events that occurred at or after this time."""
    until: datetime | None = None
    """Events that occurred before this time."""
    subject: str | None = None
    families: tuple[str, ...] = ()
    """Avro full names (``aigc.audit.Generation``) or the names in :data:`FAMILIES`."""
    query: str | None = None
    """A named query whose rows have an ``event_id`` column: its events are selected."""
    query_params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        resolved = []
        for name in self.families:
            if name in FAMILY_TABLES:
                resolved.append(name)
            elif name in FAMILIES:
                resolved.append(FAMILIES[name])
            else:
                known = ", ".join(sorted(FAMILIES))
                raise SelectionError(f"unknown event family {name!r}; known: {known}")
        object.__setattr__(self, "families", tuple(sorted(set(resolved))))
        if self.since and self.until and self.since >= self.until:
            raise SelectionError(f"since ({self.since}) must be before until ({self.until})")

    def event_condition(self, database: str) -> tuple[str, dict[str, Any]]:
        """A condition on the columns of ``{database}.events`` (usable as ``WHERE <it>``), and
        its query parameters (all prefixed ``sel_`` so they cannot clash with a caller's)."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.since is not None:
            parts.append("occurred_at >= {sel_since:DateTime64(6, 'UTC')}")
            params["sel_since"] = self.since
        if self.until is not None:
            parts.append("occurred_at < {sel_until:DateTime64(6, 'UTC')}")
            params["sel_until"] = self.until
        if self.subject is not None:
            parts.append("has(hold_keys, {sel_subject_key:String})")
            params["sel_subject_key"] = f"subject:{self.subject}"
        if self.families:
            parts.append("family IN {sel_families:Array(String)}")
            params["sel_families"] = list(self.families)
        if self.query is not None:
            named = get_query(self.query)
            bound = bind_params(named, dict(self.query_params))
            # The pack names its tables ``audit.<table>``, as ``run_query`` runs it.
            sql = named.sql.strip().rstrip(";")
            parts.append(f"event_id IN (SELECT toUUID(event_id) FROM ({sql}))")
            params.update(bound)
        return (" AND ".join(parts) or "1"), params

    def event_ids_sql(self, database: str) -> tuple[str, dict[str, Any]]:
        """``SELECT event_id FROM events WHERE <selection>``: for ``event_id IN (...)``."""
        condition, params = self.event_condition(database)
        return f"SELECT event_id FROM {database}.events WHERE {condition}", params

    def describe(self) -> dict[str, Any]:
        """The selection as plain JSON values, for a manifest or a report header."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "subject": self.subject,
            "families": list(self.families),
            "query": self.query,
            "query_params": dict(self.query_params),
        }
