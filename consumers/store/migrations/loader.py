"""Finds the migrations (modules ``mNNNN_name.py`` of this package) and checks their order."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Collection, Iterable, Sequence

from aigc_audit.consumers.store.migrations.model import (
    Migration,
    MigrationError,
    StoreNewerThanCodeError,
)

_MODULE = re.compile(r"m(\d{4})_([a-z0-9_]+)")


def load_migrations(
    package: str = "aigc_audit.consumers.store.migrations",
) -> tuple[Migration, ...]:
    """Every migration of ``package``, in order. Each module ``mNNNN_name`` defines
    ``MIGRATION``, whose number and name match the module's; the numbers must run 1..N with no
    duplicate and no gap (:func:`validate`). Raises MigrationError otherwise."""
    root = importlib.import_module(package)
    found: list[Migration] = []
    for info in pkgutil.iter_modules(root.__path__):
        match = _MODULE.fullmatch(info.name)
        if match is None:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        migration = getattr(module, "MIGRATION", None)
        if not isinstance(migration, Migration):
            raise MigrationError(f"{info.name} defines no MIGRATION")
        if (migration.number, migration.name) != (int(match.group(1)), match.group(2)):
            raise MigrationError(
                f"{info.name} defines migration {migration.label}: the module must be named "
                f"m{migration.label}"
            )
        found.append(migration)
    return validate(found)


def validate(migrations: Iterable[Migration]) -> tuple[Migration, ...]:
    """The migrations sorted by number; MigrationError if two share a number or one of 1..N is
    missing (a store's version must name exactly one set of statements)."""
    ordered = sorted(migrations, key=lambda m: m.number)
    seen: dict[int, Migration] = {}
    for migration in ordered:
        if migration.number in seen:
            raise MigrationError(
                f"duplicate migration number {migration.number}: "
                f"{seen[migration.number].name} and {migration.name}"
            )
        seen[migration.number] = migration
    for expected, migration in enumerate(ordered, start=1):
        if migration.number != expected:
            raise MigrationError(
                f"migration {expected} is missing (the numbers must run 1..N without gaps; "
                f"next is {migration.label})"
            )
    return tuple(ordered)


def plan(
    applied: Collection[int], migrations: Sequence[Migration], target: int | None = None
) -> list[Migration]:
    """The migrations still to run, in order, to bring a store that has ``applied`` up to
    ``target`` (default: the latest). Refuses a store that records a migration the code does
    not know (StoreNewerThanCodeError), and a target the code does not have or that the store
    has passed (migrate never runs backwards)."""
    known = {m.number for m in migrations}
    latest = max(known, default=0)
    unknown = sorted(set(applied) - known)
    if unknown:
        listed = ", ".join(str(v) for v in unknown)
        if unknown[-1] > latest:
            raise StoreNewerThanCodeError(
                f"the store records schema migration {listed}, newer than this aigc-audit "
                f"(which knows 1..{latest}): upgrade aigc-audit before using this store"
            )
        raise MigrationError(f"the store records unknown schema migration {listed}")
    stop = latest if target is None else target
    if stop not in known and stop != 0:
        raise MigrationError(f"there is no migration {stop} (the latest is {latest})")
    if applied and stop < max(applied):
        raise MigrationError(
            f"the store is at migration {max(applied)}, past {stop}: migrate does not run "
            "migrations backwards"
        )
    return [m for m in migrations if m.number not in applied and m.number <= stop]
