"""Signed checkpoints: the ``checkpoints`` table, one row per signed note of a bus partition's
tree of accepted batches. A store made before this migration has no checkpoint; the
materialiser writes the first one for each partition's whole history at its next idle moment."""

from __future__ import annotations

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.migrations.model import Migration, MigrationContext
from aigc_audit.consumers.store.tables import CHECKPOINTS


def forwards(ctx: MigrationContext) -> list[str]:
    return ddl.create_table(CHECKPOINTS, ctx)


def backwards(ctx: MigrationContext) -> list[str]:
    return ddl.drop_table(CHECKPOINTS, ctx)


MIGRATION = Migration(5, "checkpoints", False, forwards, backwards)
