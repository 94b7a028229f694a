"""How long the store keeps each table: a TTL per table, never under the legal floor.

Cybersecurity Law art. 21 requires network operators to keep network logs no less than six
months; the store reads that as 180 days, for every table that is audit evidence (the events,
their typed tables and batches, and the quarantine and chain findings, which record what was
refused and why). ``keys`` and ``schema_migrations`` have no TTL: a key must outlive every batch
it signed for an export to verify offline, and the migration record is the store's own.

A TTL counts from a time column of the row (``toDateTime(col) + INTERVAL N DAY``), never from the
time of materialisation, so replaying the bus into an empty store deletes the same rows.

Legal holds: rows carry ``hold_keys`` and the TTL of their tables reads ``... DELETE WHERE NOT
<a key is in the active_holds dictionary>`` (:func:`hold_condition`), so a held subject's or
case's rows stay past their retention until the hold is released.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aigc_audit.consumers.errors import PlatformError

RETENTION_FLOOR_DAYS = 180
FLOOR_REASON = "Cybersecurity Law art. 21 requires network logs be kept no less than six months"
RETENTION_CEILING_DAYS = 10_950
"""Thirty years. A TTL is a DateTime, which wraps around after 2106-02-07: a row whose expiry
fell past that would expire at once (``2026 + 30000 days`` is 1972), so longer is refused."""

TTL_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "batches": "created_at",
        "events": "occurred_at",
        "generations": "occurred_at",
        "moderation_actions": "occurred_at",
        "user_sanctions": "occurred_at",
        "data_handling": "occurred_at",
        "quarantine": "received_at",
        "chain_findings": "received_at",
    }
)
"""Every table with a TTL, and the time column its rows expire from. All are audit evidence,
so all share the 180-day floor."""


class RetentionError(PlatformError, ValueError):
    """A retention setting the law or the store does not allow. A ValueError too, so that a
    settings validator can raise it and pydantic reports its message."""


def floor_message(setting: str) -> str:
    """The one-line refusal of a retention under the floor, naming the setting."""
    return f"{setting} must be at least {RETENTION_FLOOR_DAYS} ({FLOOR_REASON})"


def check_days(setting: str, days: int) -> int:
    """``days`` if it lies between the floor and the ceiling; else RetentionError naming
    ``setting``."""
    if days < RETENTION_FLOOR_DAYS:
        raise RetentionError(floor_message(setting))
    if days > RETENTION_CEILING_DAYS:
        raise RetentionError(
            f"{setting} must be at most {RETENTION_CEILING_DAYS} (ClickHouse TTL times end in "
            "2106; a longer TTL would wrap around and expire rows at once)"
        )
    return days


def check_overrides(overrides: Mapping[str, int]) -> dict[str, int]:
    """Per-table retentions, each for a table with a TTL and each meeting the floor."""
    for table, days in overrides.items():
        if table not in TTL_COLUMNS:
            known = ", ".join(TTL_COLUMNS)
            raise RetentionError(f"{table!r} has no retention (tables with one: {known})")
        check_days(f"retention_overrides.{table}", days)
    return dict(overrides)


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep, for every table in :data:`TTL_COLUMNS`; refused under the floor, so a
    policy that exists is one the store may apply."""

    days: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = sorted(set(TTL_COLUMNS) - set(self.days))
        if missing:
            raise RetentionError(f"retention policy names no days for {', '.join(missing)}")
        check_overrides(self.days)
        object.__setattr__(self, "days", MappingProxyType(dict(self.days)))

    @classmethod
    def of(cls, days: int, overrides: Mapping[str, int] | None = None) -> RetentionPolicy:
        """``days`` for every table, except those ``overrides`` names."""
        check_days("retention_days", days)
        chosen = check_overrides(overrides or {})
        return cls({table: chosen.get(table, days) for table in TTL_COLUMNS})


HELD_TABLES = frozenset(
    {"batches", "events", "generations", "moderation_actions", "user_sanctions", "data_handling"}
)
"""Tables whose rows carry ``hold_keys``: a legal hold on any of a row's keys keeps it."""

ACTIVE_HOLDS = "active_holds"
"""The dictionary of hold keys in force, loaded from ``legal_holds``."""


def hold_condition(database: str) -> str:
    """True for a row one of whose ``hold_keys`` is under a legal hold now."""
    return f"arrayExists(k -> dictHas('{database}.{ACTIVE_HOLDS}', tuple(k)), hold_keys)"


def ttl_clause(column: str, days: int, hold: str | None = None) -> str:
    """The TTL expression for rows that expire ``days`` after ``column``.

    ``hold`` is a boolean SQL condition over the row (:func:`hold_condition`), true for rows
    under a legal hold, which the TTL then does not delete. A released hold lets the next TTL
    merge (or ``ALTER TABLE ... MATERIALIZE TTL``) delete the rows it kept.
    """
    clause = f"toDateTime({column}) + INTERVAL {days} DAY"
    return f"{clause} DELETE WHERE NOT ({hold})" if hold else clause


def ttl_as_shown(column: str, days: int, hold: str | None = None) -> str:
    """The clause as ClickHouse shows it back in ``system.tables.engine_full`` (it normalises
    ``INTERVAL N DAY`` and leaves out the default ``DELETE``), so the runner can tell an unchanged
    TTL from a new one."""
    shown = f"toDateTime({column}) + toIntervalDay({days})"
    return f"{shown} WHERE NOT ({hold})" if hold else shown
