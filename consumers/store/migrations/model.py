"""What a migration is, what it is given, what a run reports, and how a run can be refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aigc_audit.consumers.store.base import StoreError
from aigc_audit.consumers.store.retention import RetentionPolicy

if TYPE_CHECKING:
    pass

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLUSTER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class MigrationError(StoreError):
    """The migrations cannot run: a broken migration list, a refused step, a store that does
    not match the settings."""


class StoreNewerThanCodeError(MigrationError):
    """The store records a migration this code does not have: a newer aigc-audit migrated it.
    Running older code against it could write rows the newer schema does not expect."""


@dataclass(frozen=True)
class MigrationContext:
    """What a migration's SQL depends on: the database, the cluster (None: a single node) and
    the retention to apply after the migrations (None: leave the TTLs as they are)."""

    database: str
    cluster: str | None = None
    retention: RetentionPolicy | None = None

    def __post_init__(self) -> None:
        # Both names are spliced into DDL; refuse anything that could end an identifier or quote.
        if not _DATABASE.fullmatch(self.database):
            raise MigrationError(f"bad database name {self.database!r}")
        if self.cluster is not None and not _CLUSTER.fullmatch(self.cluster):
            raise MigrationError(f"bad cluster name {self.cluster!r}")


SqlFor = Callable[[MigrationContext], list[str]]


@dataclass(frozen=True)
class Migration:
    """One numbered step of the schema. ``forwards`` and ``backwards`` give the statements for a
    context, single node and cluster alike, so there is one ordered list for both.

    Every forwards statement must be idempotent (``IF NOT EXISTS``, ``IF EXISTS``): a migration
    is recorded only after all its statements succeeded, so a crash in between runs it again.
    ``blocking`` marks a migration that must not run beside live materialisers (one that
    rewrites or moves data); the runner applies one only when forced.
    """

    number: int
    name: str
    blocking: bool
    forwards: SqlFor
    backwards: SqlFor

    def __post_init__(self) -> None:
        if self.number < 1:
            raise MigrationError(f"migration {self.name!r}: numbers start at 1")
        if not _NAME.fullmatch(self.name):
            raise MigrationError(f"migration {self.number}: bad name {self.name!r} ([a-z0-9_])")

    @property
    def label(self) -> str:
        """``0002_subject_indexes``: how the CLI names it."""
        return f"{self.number:04d}_{self.name}"


@dataclass(frozen=True)
class AppliedMigration:
    number: int
    name: str
    statements: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.number:04d}_{self.name}"


@dataclass
class MigrationReport:
    """What a run did, or in a dry run would do. ``statements`` is every statement in order
    (bootstrap, migrations with their records, TTL changes): empty when up to date."""

    database: str
    cluster: str | None
    dry_run: bool
    version_before: int
    version_after: int
    migrations: list[AppliedMigration] = field(default_factory=list)
    retention: dict[str, int] = field(default_factory=dict)
    """Tables whose TTL changed (or would), with their new days."""
    statements: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.statements
