"""The agreement-acceptance columns of ``data_handling`` (Art. 9): which version of which service
agreement a subject accepted, when and where. Nullable and empty for every other kind, so existing
rows (and a replayed store's checksums) are unchanged; events written before the schema had the
kind decode with it unset.
"""

from __future__ import annotations

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.migrations.model import Migration, MigrationContext
from aigc_audit.consumers.store.tables import AGREEMENT_ACCEPTANCE_COLUMNS, DATA_HANDLING


def forwards(ctx: MigrationContext) -> list[str]:
    return ddl.add_columns(DATA_HANDLING, AGREEMENT_ACCEPTANCE_COLUMNS, ctx)


def backwards(ctx: MigrationContext) -> list[str]:
    return ddl.drop_columns(DATA_HANDLING, AGREEMENT_ACCEPTANCE_COLUMNS, ctx)


MIGRATION = Migration(6, "agreement_acceptance", False, forwards, backwards)
