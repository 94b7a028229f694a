"""Legal holds keep rows past their retention: ``hold_keys`` on every held table, the
``legal_holds`` table of each key's latest state, and the ``active_holds`` dictionary over it
that the TTLs consult (the TTLs themselves are set by the retention step of ``migrate``).

A new column is empty on rows written before this migration, so those rows answer to no hold;
replaying the bus into a fresh store fills it.
"""

from __future__ import annotations

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.migrations.model import Migration, MigrationContext
from aigc_audit.consumers.store.retention import ACTIVE_HOLDS, HELD_TABLES
from aigc_audit.consumers.store.tables import ALL_TABLES, HOLD_KEYS, LEGAL_HOLDS

_HELD = tuple(t for t in ALL_TABLES if t.name in HELD_TABLES)


def _dictionary(ctx: MigrationContext) -> str:
    # FINAL: the latest place or release of each key wins. Reloaded by the materialiser after
    # every hold it writes, and every minute in case a reload was missed.
    source = (
        f"SELECT hold_key, toUInt8(active) AS active FROM {ctx.database}.{LEGAL_HOLDS.name} "
        "FINAL WHERE active"
    )
    return (
        f"CREATE DICTIONARY IF NOT EXISTS {ctx.database}.{ACTIVE_HOLDS}{ddl.on_cluster(ctx)} "
        "(hold_key String, active UInt8) PRIMARY KEY hold_key "
        f"SOURCE(CLICKHOUSE(QUERY '{source}')) LIFETIME(MIN 30 MAX 60) "
        "LAYOUT(COMPLEX_KEY_HASHED())"
    )


def _add_hold_keys(ctx: MigrationContext) -> list[str]:
    return [sql for table in _HELD for sql in ddl.add_columns(table, [HOLD_KEYS], ctx)]


def forwards(ctx: MigrationContext) -> list[str]:
    return [*ddl.create_table(LEGAL_HOLDS, ctx), *_add_hold_keys(ctx), _dictionary(ctx)]


def backwards(ctx: MigrationContext) -> list[str]:
    drop = [f"DROP DICTIONARY IF EXISTS {ctx.database}.{ACTIVE_HOLDS}{ddl.on_cluster(ctx)}"]
    return drop + ddl.drop_table(LEGAL_HOLDS, ctx)


MIGRATION = Migration(4, "legal_holds", False, forwards, backwards)
