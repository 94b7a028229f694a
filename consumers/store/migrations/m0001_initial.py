"""Every table of ``tables.py`` except ``schema_migrations`` (the runner's bootstrap makes it).

The tables are created as ``tables.py`` describes them now, so a later migration that changes a
table must be a no-op on a table this one has just created (``ADD COLUMN IF NOT EXISTS`` after
adding the column to ``tables.py``). A store made before migrations existed records this
migration as version 1, ``initial``, and continues from there.
"""

from __future__ import annotations

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.migrations.model import Migration, MigrationContext
from aigc_audit.consumers.store.tables import (
    ALL_TABLES,
    CHECKPOINTS,
    LEGAL_HOLDS,
    SCHEMA_MIGRATIONS,
)

CREATED_LATER = (SCHEMA_MIGRATIONS, LEGAL_HOLDS, CHECKPOINTS)
"""The runner's bootstrap makes ``schema_migrations``; migration 0004 makes ``legal_holds`` and
0005 ``checkpoints``."""

TABLES = tuple(t for t in ALL_TABLES if t not in CREATED_LATER)


def forwards(ctx: MigrationContext) -> list[str]:
    return [sql for table in TABLES for sql in ddl.create_table(table, ctx)]


def backwards(ctx: MigrationContext) -> list[str]:
    return [sql for table in reversed(TABLES) for sql in ddl.drop_table(table, ctx)]


MIGRATION = Migration(1, "initial", False, forwards, backwards)
