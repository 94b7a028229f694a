"""The legal-hold columns of ``data_handling``: who placed or released a hold on which subject or
case, and why. Nullable and empty for every other kind, so existing rows (and a replayed store's
checksums) are unchanged.
"""

from __future__ import annotations

from consumers.store import ddl
from consumers.store.migrations.model import Migration, MigrationContext
from consumers.store.tables import DATA_HANDLING, LEGAL_HOLD_COLUMNS


def _alter(ctx: MigrationContext, action: str) -> list[str]:
    statements = [ddl.alter_storage(DATA_HANDLING, ctx, action)]
    if ctx.cluster:  # the Distributed table over the local ones needs the column too
        statements.append(
            f"ALTER TABLE {ctx.database}.{DATA_HANDLING.name}{ddl.on_cluster(ctx)} {action}"
        )
    return statements


def forwards(ctx: MigrationContext) -> list[str]:
    return [
        sql
        for name, ctype in LEGAL_HOLD_COLUMNS
        for sql in _alter(ctx, f"ADD COLUMN IF NOT EXISTS `{name}` {ctype}")
    ]


def backwards(ctx: MigrationContext) -> list[str]:
    return [
        sql
        for name, _ in reversed(LEGAL_HOLD_COLUMNS)
        for sql in _alter(ctx, f"DROP COLUMN IF EXISTS `{name}`")
    ]


MIGRATION = Migration(3, "legal_hold_columns", False, forwards, backwards)
