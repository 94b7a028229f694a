"""Runs the migrations against a store, records them, then applies the retention TTLs.

The one bootstrap step is creating the database and ``schema_migrations`` if they are missing;
everything else is a numbered migration, recorded in ``schema_migrations`` once all its
statements succeeded. A store that is up to date costs two reads and no write, so ``migrate``
is safe to call on every open, even as a read-only user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.migrations.loader import load_migrations, plan
from aigc_audit.consumers.store.migrations.model import (
    AppliedMigration,
    Migration,
    MigrationContext,
    MigrationError,
    MigrationReport,
)
from aigc_audit.consumers.store.retention import (
    HELD_TABLES,
    TTL_COLUMNS,
    hold_condition,
    ttl_as_shown,
    ttl_clause,
)
from aigc_audit.consumers.store.tables import ALL_TABLES, SCHEMA_MIGRATIONS

_TTL = re.compile(r"\sTTL\s(.+?)(?:\sSETTINGS\s|$)")
_DISTRIBUTED_CLUSTER = re.compile(r"^Distributed\('([^']*)'")

Engines = dict[str, str]
"""``{table name: engine_full}`` of one database, as ``system.tables`` has it."""


def migrate(
    store: Store,
    ctx: MigrationContext,
    *,
    dry_run: bool = False,
    target: int | None = None,
    force: bool = False,
    migrations: Sequence[Migration] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Bring ``ctx.database`` on ``store`` up to migration ``target`` (default: the latest),
    then, if ``ctx.retention`` is set, set every table's TTL to it.

    Refuses (MigrationError) a store that records a migration this code does not know
    (StoreNewerThanCodeError), a blocking migration unless ``force``, a cluster that does not
    match the store's, and a store missing a table its migrations created. With ``dry_run``
    nothing is executed and the report holds the statements that would be. ``on_step`` hears a
    line before each migration and TTL change, for progress.
    """
    packaged = migrations is None
    migrations = load_migrations() if migrations is None else migrations
    step = on_step or (lambda _: None)
    engines = _engines(store, ctx.database)
    ctx = replace(ctx, cluster=_cluster(ctx, engines))
    report = MigrationReport(ctx.database, ctx.cluster, dry_run, 0, 0)

    def run(statements: Sequence[str]) -> None:
        for sql in statements:
            if not dry_run:
                store.command(sql)
            report.statements.append(sql)

    bootstrapped = SCHEMA_MIGRATIONS.name in engines
    applied = _applied(store, ctx.database) if bootstrapped else set()
    report.version_before = report.version_after = max(applied, default=0)

    # Every refusal comes before the first statement: a refused run changes nothing.
    pending = plan(applied, migrations, target)
    blocking = [m.label for m in pending if m.blocking]
    if blocking and not force:
        raise MigrationError(
            f"migration {', '.join(blocking)} is blocking: stop the materialisers, then run "
            "`aigc-audit migrate --force`"
        )
    statements = {m.number: m.forwards(ctx) for m in pending}
    for migration in pending:
        wrong = ddl.problems(ctx, statements[migration.number])
        if wrong:
            raise MigrationError(f"migration {migration.label}: a statement {wrong[0]}")

    if not bootstrapped:
        # The one step that is not a numbered migration, since it makes their record.
        run([ddl.create_database(ctx), *ddl.create_table(SCHEMA_MIGRATIONS, ctx)])
    for migration in pending:
        step(f"applying {migration.label}")
        run(statements[migration.number])
        run([_record(ctx, migration)])
        report.migrations.append(
            AppliedMigration(migration.number, migration.name, tuple(statements[migration.number]))
        )
        report.version_after = migration.number

    if not dry_run and pending:
        engines = _engines(store, ctx.database)  # the migrations made or changed tables
    if packaged and not dry_run and report.version_after == len(migrations):
        _check_tables(ctx, engines)  # tables.py describes the latest packaged schema
    if ctx.retention is not None:
        for table, days, sql in _ttl_changes(ctx, engines):
            step(f"retention of {table}: {days} days")
            run([sql])
            report.retention[table] = days
    return report


def _engines(store: Store, database: str) -> Engines:
    rows = store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        {"db": database},
    ).rows
    return {str(name): str(engine) for name, engine in rows}


def _applied(store: Store, database: str) -> set[int]:
    rows = store.query(f"SELECT DISTINCT version FROM {database}.{SCHEMA_MIGRATIONS.name}").rows
    return {int(row[0]) for row in rows}


def _cluster(ctx: MigrationContext, engines: Engines) -> str | None:
    """The cluster to migrate on: the store's own if it has one (its ``schema_migrations`` is a
    Distributed table), which ``ctx`` may not contradict. So ``store.migrate()``, which names no
    cluster, still migrates a cluster store on every node."""
    engine = engines.get(SCHEMA_MIGRATIONS.name)
    if engine is None:
        return ctx.cluster  # a new store: laid out as the settings say
    match = _DISTRIBUTED_CLUSTER.match(engine)
    found = match.group(1) if match else None
    if ctx.cluster is not None and found != ctx.cluster:
        where = f"on cluster {found!r}" if found else "on a single node"
        raise MigrationError(
            f"the store {ctx.database} was created {where}, but the settings name cluster "
            f"{ctx.cluster!r}"
        )
    return found


def _record(ctx: MigrationContext, migration: Migration) -> str:
    # Plain SQL rather than Store.insert: the row must reach the shards before the next read of
    # schema_migrations (a synchronous Distributed insert), and a dry run can show it.
    applied_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    sync = " SETTINGS insert_distributed_sync = 1" if ctx.cluster else ""
    return (
        f"INSERT INTO {ctx.database}.{SCHEMA_MIGRATIONS.name} (version, name, applied_at){sync} "
        f"VALUES ({migration.number}, '{migration.name}', '{applied_at}')"
    )


def _ttl_changes(ctx: MigrationContext, engines: Engines) -> list[tuple[str, int, str]]:
    """``(table, days, ALTER ... MODIFY TTL)`` for each table whose TTL differs from the policy.

    MODIFY TTL also rewrites the TTL of existing parts (``materialize_ttl_after_modify``), so a
    shorter retention deletes old rows soon after; a longer one keeps rows a shorter one had not
    yet deleted.
    """
    assert ctx.retention is not None
    by_name = {t.name: t for t in ALL_TABLES}
    changes = []
    for name, column in TTL_COLUMNS.items():
        table = by_name[name]
        days = ctx.retention.days[name]
        hold = hold_condition(ctx.database) if name in HELD_TABLES else None
        shown = _TTL.search(engines.get(ddl.storage_name(table, ctx), ""))
        if shown is not None and shown.group(1) == ttl_as_shown(column, days, hold):
            continue
        sql = ddl.alter_storage(table, ctx, f"MODIFY TTL {ttl_clause(column, days, hold)}")
        changes.append((name, days, sql))
    return changes


def _check_tables(ctx: MigrationContext, engines: Engines) -> None:
    """Every table the migrations create exists: a store altered by hand is reported, not
    silently re-created empty (which would hide the loss of its rows)."""
    expected = {t.name for t in ALL_TABLES} | {ddl.storage_name(t, ctx) for t in ALL_TABLES}
    missing = sorted(expected - set(engines))
    if missing:
        raise MigrationError(
            f"the store {ctx.database} is at the latest migration but lacks table "
            f"{', '.join(missing)}: it was changed outside aigc-audit; restore it or replay "
            "the bus into a new store"
        )
