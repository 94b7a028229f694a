"""Numbered schema migrations of the store, recorded in ``schema_migrations``.

Each module ``mNNNN_name.py`` defines one :class:`Migration` whose ``forwards(ctx)`` and
``backwards(ctx)`` return the statements for a :class:`MigrationContext`: the same list serves a
single node and a cluster (``ddl.py`` adds ``ON CLUSTER``, the replicated engines and the
Distributed tables), so the two layouts cannot drift apart. The loader refuses duplicate or
missing numbers; the runner (:func:`migrate`) applies what a store lacks, in order, refuses a
store newer than the code, and then applies the configured retention TTLs.

Adding a migration: a new module with the next number, statements that are idempotent
(``IF NOT EXISTS``) and that leave the rows unchanged unless the migration says why (replaying
the bus must give the same tables), and ``blocking=True`` if it must not run beside live
materialisers. ``aigc-audit migrate --dry-run`` shows its SQL.
"""

from __future__ import annotations

from aigc_audit.consumers.store.migrations.loader import load_migrations, plan, validate
from aigc_audit.consumers.store.migrations.model import (
    AppliedMigration,
    Migration,
    MigrationContext,
    MigrationError,
    MigrationReport,
    StoreNewerThanCodeError,
)
from aigc_audit.consumers.store.migrations.runner import migrate

__all__ = [
    "AppliedMigration",
    "Migration",
    "MigrationContext",
    "MigrationError",
    "MigrationReport",
    "StoreNewerThanCodeError",
    "load_migrations",
    "migrate",
    "plan",
    "validate",
]
