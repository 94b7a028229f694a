"""A bloom-filter index on ``subject`` in every typed table that has one.

An inspector's first question about a person ("everything about this subject") filters the typed
tables by subject, while their sorting key is the event id; the index lets ClickHouse skip the
granules that cannot hold the subject. An index changes no row, so a replayed store still gives
the same checksums. ``MATERIALIZE INDEX`` builds it for the parts written before this migration,
as a background mutation: the migration returns at once and the materialiser may keep writing,
so it is not blocking.
"""

from __future__ import annotations

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.migrations.model import Migration, MigrationContext
from aigc_audit.consumers.store.tables import (
    DATA_HANDLING,
    GENERATIONS,
    MODERATION_ACTIONS,
    USER_SANCTIONS,
)

INDEX = "subject_idx"
TABLES = (GENERATIONS, MODERATION_ACTIONS, USER_SANCTIONS, DATA_HANDLING)
# GRANULARITY 4: one filter per four 8192-row granules; a subject has few rows per table, so
# coarser blocks keep the filters small while still skipping most of the data.
DEFINITION = f"{INDEX} subject TYPE bloom_filter GRANULARITY 4"


def forwards(ctx: MigrationContext) -> list[str]:
    statements = []
    for table in TABLES:
        statements.append(ddl.alter_storage(table, ctx, f"ADD INDEX IF NOT EXISTS {DEFINITION}"))
        statements.append(ddl.alter_storage(table, ctx, f"MATERIALIZE INDEX {INDEX}"))
    return statements


def backwards(ctx: MigrationContext) -> list[str]:
    return [ddl.alter_storage(t, ctx, f"DROP INDEX IF EXISTS {INDEX}") for t in TABLES]


MIGRATION = Migration(2, "subject_indexes", False, forwards, backwards)
