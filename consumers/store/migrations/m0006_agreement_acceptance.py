"""The agreement-acceptance columns of ``data_handling`` (Art. 9): which version of which service
agreement a subject accepted, when and where. Nullable and empty for every other kind, so existing
rows (and a replayed store's checksums) are unchanged; events written before the schema had the
kind decode with it unset.
"""

from __future__ import annotations

from consumers.store import ddl
from consumers.store.migrations.model import Migration, MigrationContext
from consumers.store.tables import AGREEMENT_ACCEPTANCE_COLUMNS, DATA_HANDLING


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
        for name, ctype in AGREEMENT_ACCEPTANCE_COLUMNS
        for sql in _alter(ctx, f"ADD COLUMN IF NOT EXISTS `{name}` {ctype}")
    ]


def backwards(ctx: MigrationContext) -> list[str]:
    return [
        sql
        for name, _ in reversed(AGREEMENT_ACCEPTANCE_COLUMNS)
        for sql in _alter(ctx, f"DROP COLUMN IF EXISTS `{name}`")
    ]


MIGRATION = Migration(6, "agreement_acceptance", False, forwards, backwards)
