"""The legal-hold columns of ``data_handling``: who placed or released a hold on which subject or
case, and why. Nullable and empty for every other kind, so existing rows (and a replayed store's
checksums) are unchanged.
"""

from __future__ import annotations

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.migrations.model import Migration, MigrationContext
from aigc_audit.consumers.store.tables import DATA_HANDLING, LEGAL_HOLD_COLUMNS


def forwards(ctx: MigrationContext) -> list[str]:
    return ddl.add_columns(DATA_HANDLING, LEGAL_HOLD_COLUMNS, ctx)


def backwards(ctx: MigrationContext) -> list[str]:
    return ddl.drop_columns(DATA_HANDLING, LEGAL_HOLD_COLUMNS, ctx)


MIGRATION = Migration(3, "legal_hold_columns", False, forwards, backwards)
