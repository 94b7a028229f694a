"""Schema migrations (consumers/store/migrations): the loader, the plan, the runner on the real
engine (chDB), retention TTLs and their legal floor, and ``aigc-audit migrate`` end to end.

chDB allows one session per process: the runner tests share one module-scoped store and give
each test a database of its own; the CLI tests run the command in child processes.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.app.settings import SettingsError, load_settings, migration_context
from aigc_audit.consumers.errors import PlatformError
from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.base import QueryResult, Store
from aigc_audit.consumers.store.checksums import table_checksums
from aigc_audit.consumers.store.migrations import (
    Migration,
    MigrationContext,
    MigrationError,
    StoreNewerThanCodeError,
    load_migrations,
    migrate,
    plan,
    validate,
)
from aigc_audit.consumers.store.migrations.m0001_initial import forwards as initial_forwards
from aigc_audit.consumers.store.migrations.m0006_agreement_acceptance import (
    backwards as agreement_acceptance_backwards,
)
from aigc_audit.consumers.store.retention import (
    TTL_COLUMNS,
    RetentionError,
    RetentionPolicy,
    ttl_clause,
)
from aigc_audit.consumers.store.tables import (
    AGREEMENT_ACCEPTANCE_COLUMNS,
    ALL_TABLES,
    DATA_HANDLING,
    GENERATIONS,
    SCHEMA_MIGRATIONS,
    Table,
)
from tests.store_contract import rows as contract_rows

FLOOR_MESSAGE = (
    "retention_days must be at least 180 (Cybersecurity Law art. 21 requires network logs be "
    "kept no less than six months)"
)
LATEST = len(load_migrations())


def fake(number: int, name: str = "step", *, blocking: bool = False) -> Migration:
    return Migration(number, name, blocking, lambda ctx: [], lambda ctx: [])


def fresh(retention: RetentionPolicy | None = None) -> MigrationContext:
    """A context for a database no other test uses."""
    return MigrationContext(f"m_{uuid.uuid4().hex[:12]}", retention=retention)


# --- the loader and the plan -------------------------------------------------------------------


def test_the_packaged_migrations_run_one_to_n() -> None:
    migrations = load_migrations()
    assert [m.number for m in migrations] == list(range(1, LATEST + 1))
    assert [m.label for m in migrations[:2]] == ["0001_initial", "0002_subject_indexes"]
    assert not any(m.blocking for m in migrations)


def test_validate_refuses_duplicate_numbers() -> None:
    with pytest.raises(MigrationError, match="duplicate migration number 2: a and b"):
        validate([fake(1), fake(2, "a"), fake(2, "b")])


@pytest.mark.parametrize(("numbers", "missing"), [([1, 3], 2), ([2, 3], 1)])
def test_validate_refuses_missing_numbers(numbers: list[int], missing: int) -> None:
    with pytest.raises(MigrationError, match=f"migration {missing} is missing"):
        validate([fake(n) for n in numbers])


def test_validate_sorts() -> None:
    assert [m.number for m in validate([fake(2), fake(1), fake(3)])] == [1, 2, 3]


def _package(root: Path, modules: Mapping[str, tuple[int, str]]) -> str:
    """A package of migration modules ``{module name: (number, name)}`` under ``root``."""
    package = f"fake_migrations_{uuid.uuid4().hex[:8]}"
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    for module, (number, name) in modules.items():
        (root / package / f"{module}.py").write_text(
            "from aigc_audit.consumers.store.migrations import Migration\n"
            f"MIGRATION = Migration({number}, {name!r}, False, lambda c: [], lambda c: [])\n"
        )
    return package


def test_loader_refuses_two_modules_with_one_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    package = _package(tmp_path, {"m0001_a": (1, "a"), "m0002_b": (2, "b"), "m0002_c": (2, "c")})
    with pytest.raises(MigrationError, match="duplicate migration number 2"):
        load_migrations(package)


def test_loader_refuses_a_gap_and_a_misnamed_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    gap = _package(tmp_path, {"m0001_a": (1, "a"), "m0003_c": (3, "c")})
    with pytest.raises(MigrationError, match="migration 2 is missing"):
        load_migrations(gap)
    misnamed = _package(tmp_path, {"m0001_a": (1, "a"), "m0002_b": (3, "b")})
    with pytest.raises(MigrationError, match="must be named m0003_b"):
        load_migrations(misnamed)
    assert [m.name for m in load_migrations(_package(tmp_path, {"m0001_a": (1, "a")}))] == ["a"]


def test_plan() -> None:
    migrations = validate([fake(1), fake(2), fake(3)])
    assert [m.number for m in plan(set(), migrations)] == [1, 2, 3]
    assert [m.number for m in plan({1}, migrations)] == [2, 3]
    assert [m.number for m in plan({1}, migrations, target=2)] == [2]
    assert plan({1, 2, 3}, migrations) == []
    with pytest.raises(StoreNewerThanCodeError, match="999, newer than this aigc-audit"):
        plan({1, 2, 3, 999}, migrations)
    with pytest.raises(MigrationError, match="does not run migrations backwards"):
        plan({1, 2}, migrations, target=1)
    with pytest.raises(MigrationError, match="there is no migration 4"):
        plan(set(), migrations, target=4)


# --- the runner on the real engine -------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    opened = EmbeddedStore(tmp_path_factory.mktemp("migrations") / "store")
    try:
        yield opened
    finally:
        opened.close()


def in_database(store: Store, database: str) -> Store:
    """The same store (the same chDB session) reading and writing ``database``."""
    other = copy.copy(store)
    other.database = database
    return other


def recorded(store: Store, database: str) -> list[tuple[int, str]]:
    sql = f"SELECT version, name FROM {database}.schema_migrations ORDER BY version"
    return [(int(v), str(n)) for v, n in store.query(sql).rows]


def tables(store: Store, database: str) -> list[str]:
    """The store's tables, not counting the legal-holds dictionary (it has no rows of its own)."""
    sql = (
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine != 'Dictionary' "
        "ORDER BY name"
    )
    return [r[0] for r in store.query(sql, {"db": database}).rows]


def indexes(store: Store, database: str) -> list[tuple[str, str]]:
    sql = (
        "SELECT table, name FROM system.data_skipping_indices WHERE database = {db:String} "
        "ORDER BY table"
    )
    return [tuple(r) for r in store.query(sql, {"db": database}).rows]  # type: ignore[misc]


def create_sql(store: Store, database: str, table: str) -> str:
    return str(store.query(f"SHOW CREATE TABLE {database}.{table}").rows[0][0])


class ReadOnly:
    """A store that fails any statement but reads: what a no-op migration may touch."""

    def __init__(self, store: Store) -> None:
        self.database = store.database
        self._store = store

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        return self._store.query(sql, params)

    def command(self, sql: str) -> None:
        raise AssertionError(f"an up-to-date store was written to: {sql}")

    def insert(self, table: Table, rows: Any, *, token: str) -> None:
        raise AssertionError("an up-to-date store was written to")


SUBJECT_INDEXES = [
    ("data_handling", "subject_idx"),
    ("generations", "subject_idx"),
    ("moderation_actions", "subject_idx"),
    ("user_sanctions", "subject_idx"),
]


@pytest.mark.chdb
def test_a_new_store_gets_every_migration_and_a_second_run_does_nothing(store: Store) -> None:
    ctx = fresh()
    report = migrate(store, ctx)
    assert (report.version_before, report.version_after) == (0, LATEST)
    assert [m.number for m in report.migrations] == list(range(1, LATEST + 1))
    assert recorded(store, ctx.database) == [(m.number, m.name) for m in load_migrations()]
    assert tables(store, ctx.database) == sorted(t.name for t in ALL_TABLES)
    assert indexes(store, ctx.database) == SUBJECT_INDEXES

    again = migrate(ReadOnly(store), ctx)  # type: ignore[arg-type]
    assert again.up_to_date and again.migrations == [] and again.version_after == LATEST
    assert recorded(store, ctx.database) == [(m.number, m.name) for m in load_migrations()]


@pytest.mark.chdb
def test_an_old_store_is_brought_up_to_date(store: Store) -> None:
    ctx = fresh()
    first = migrate(store, ctx, target=1)
    assert [m.label for m in first.migrations] == ["0001_initial"]
    assert recorded(store, ctx.database) == [(1, "initial")]
    assert indexes(store, ctx.database) == []

    rest = migrate(store, ctx)
    assert (rest.version_before, rest.version_after) == (1, LATEST)
    assert [m.number for m in rest.migrations] == list(range(2, LATEST + 1))
    assert [v for v, _ in recorded(store, ctx.database)] == list(range(1, LATEST + 1))
    assert indexes(store, ctx.database) == SUBJECT_INDEXES
    assert migrate(store, ctx).up_to_date


@pytest.mark.chdb
def test_the_agreement_acceptance_columns_reach_a_store_made_before_them(store: Store) -> None:
    """Migration 0006 on a ``data_handling`` without the columns: they are appended in the
    order ``tables.py`` gives them, empty on the rows already there."""
    ctx = fresh()
    migrate(store, ctx, target=5)
    for sql in agreement_acceptance_backwards(ctx):  # the table as migration 0005 left it
        store.command(sql)
    added = [name for name, _ in AGREEMENT_ACCEPTANCE_COLUMNS]
    old_columns = [n for n in DATA_HANDLING.column_names if n not in added]
    describe = f"SELECT name FROM system.columns WHERE database = '{ctx.database}' AND table = "
    describe += "'data_handling' ORDER BY position"
    assert [r[0] for r in store.query(describe).rows] == old_columns
    event_id = uuid.uuid4()
    store.command(
        f"INSERT INTO {ctx.database}.data_handling (event_id, occurred_at, service_id, "
        f"producer_id, event_type, subject, method, verified) VALUES ('{event_id}', "
        "'2026-03-01 09:00:00', 'svc', 'svc-1', 'identity_verification', 's', 'other', true)"
    )

    report = migrate(store, ctx)
    assert [m.label for m in report.migrations] == ["0006_agreement_acceptance"]
    assert report.migrations[0].statements == tuple(
        f"ALTER TABLE {ctx.database}.data_handling ADD COLUMN IF NOT EXISTS `{name}` {ctype}"
        for name, ctype in AGREEMENT_ACCEPTANCE_COLUMNS
    )
    assert [r[0] for r in store.query(describe).rows] == list(DATA_HANDLING.column_names)
    rows = store.query(f"SELECT {', '.join(added)} FROM {ctx.database}.data_handling").rows
    assert rows == [(None, None, None, None)]
    assert migrate(store, ctx).up_to_date


@pytest.mark.chdb
def test_store_migrate_continues_a_store_made_before_migrations(store: Store) -> None:
    """The store as the code before migrations left it: every table, version 1 recorded with the
    token it used. ``Store.migrate()`` adds the rest without changing a row."""
    db = store.database
    store.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    for table in ALL_TABLES:
        for sql in ddl.create_table(table, MigrationContext(db)):
            store.command(sql)
    store.insert(
        SCHEMA_MIGRATIONS,
        [{"version": 1, "name": "initial", "applied_at": datetime.now(UTC)}],
        token="migration-1",
    )
    for table in ALL_TABLES:
        if table is not SCHEMA_MIGRATIONS:
            store.insert(table, contract_rows(table), token=f"old-{table.name}")
    before = table_checksums(store)

    store.migrate()
    store.migrate()
    assert [v for v, _ in recorded(store, db)] == list(range(1, LATEST + 1))
    assert indexes(store, db) == SUBJECT_INDEXES
    assert table_checksums(store) == before  # an index changes no row: replays still agree
    assert migrate(ReadOnly(store), MigrationContext(db)).up_to_date  # type: ignore[arg-type]


@pytest.mark.chdb
def test_a_store_newer_than_the_code_is_refused(store: Store) -> None:
    ctx = fresh()
    migrate(store, ctx)
    store.command(
        f"INSERT INTO {ctx.database}.schema_migrations (version, name, applied_at) "
        "VALUES (999, 'from_the_future', now64(6))"
    )
    with pytest.raises(StoreNewerThanCodeError, match="999") as refused:
        migrate(store, ctx)
    assert isinstance(refused.value, PlatformError)
    assert "upgrade aigc-audit" in str(refused.value)


@pytest.mark.chdb
def test_a_dry_run_executes_nothing_and_returns_the_sql(store: Store) -> None:
    ctx = fresh(RetentionPolicy.of(365))
    report = migrate(store, ctx, dry_run=True)
    assert tables(store, ctx.database) == []
    assert store.query(
        "SELECT count() FROM system.databases WHERE name = {db:String}", {"db": ctx.database}
    ).rows == [(0,)]
    assert report.dry_run and report.version_after == LATEST
    sql = report.statements
    assert sql[0] == f"CREATE DATABASE IF NOT EXISTS {ctx.database}"
    created = [s.split()[5] for s in sql if s.startswith("CREATE TABLE")]
    assert sorted(created) == sorted(f"{ctx.database}.{t.name}" for t in ALL_TABLES)
    assert sum("ADD INDEX IF NOT EXISTS subject_idx" in s for s in sql) == 4
    assert sum("MODIFY TTL" in s for s in sql) == len(TTL_COLUMNS)
    assert sum(s.startswith(f"INSERT INTO {ctx.database}.schema_migrations") for s in sql) == LATEST

    # The statements it printed are the ones a real run executes.
    real = migrate(store, ctx)
    strip = [s for s in sql if not s.startswith("INSERT")]
    assert [s for s in real.statements if not s.startswith("INSERT")] == strip
    assert migrate(store, ctx, dry_run=True).statements == []


@pytest.mark.chdb
def test_a_blocking_migration_needs_force(store: Store) -> None:
    ctx = fresh()
    migrations = validate(
        [
            Migration(1, "initial", False, initial_forwards, lambda c: []),
            Migration(2, "rewrite", True, lambda c: [], lambda c: []),
        ]
    )
    with pytest.raises(MigrationError, match="0002_rewrite is blocking"):
        migrate(store, ctx, migrations=migrations)
    assert tables(store, ctx.database) == []  # refused before the first statement
    assert migrate(store, ctx, migrations=migrations, force=True).version_after == 2


@pytest.mark.chdb
def test_an_unknown_target_is_refused_before_anything_runs(store: Store) -> None:
    ctx = fresh()
    with pytest.raises(MigrationError, match=f"there is no migration {LATEST + 1}"):
        migrate(store, ctx, target=LATEST + 1)
    assert tables(store, ctx.database) == []


@pytest.mark.chdb
def test_a_missing_table_is_reported_not_recreated(store: Store) -> None:
    ctx = fresh()
    migrate(store, ctx)
    store.command(f"DROP TABLE {ctx.database}.quarantine")
    with pytest.raises(MigrationError, match="lacks table quarantine"):
        migrate(store, ctx)
    with pytest.raises(MigrationError, match="lacks table quarantine"):  # before any TTL change
        migrate(store, MigrationContext(ctx.database, retention=RetentionPolicy.of(365)))


@pytest.mark.chdb
def test_cluster_settings_on_a_single_node_store_are_refused(store: Store) -> None:
    ctx = fresh()
    migrate(store, ctx)
    clustered = MigrationContext(ctx.database, "audit_cluster")
    with pytest.raises(MigrationError, match="created on a single node"):
        migrate(store, clustered)


# --- retention ---------------------------------------------------------------------------------


@pytest.mark.chdb
def test_retention_becomes_a_ttl_per_table_and_follows_the_settings(store: Store) -> None:
    ctx = fresh(RetentionPolicy.of(365))
    report = migrate(store, ctx)
    assert report.retention == dict.fromkeys(TTL_COLUMNS, 365)
    for table, column in TTL_COLUMNS.items():
        assert f"TTL toDateTime({column}) + toIntervalDay(365)" in create_sql(
            store, ctx.database, table
        )
    for table in ("keys", "schema_migrations"):
        assert "TTL" not in create_sql(store, ctx.database, table)
    assert migrate(store, ctx).up_to_date  # unchanged TTLs are not re-applied

    longer = MigrationContext(ctx.database, retention=RetentionPolicy.of(400, {"generations": 730}))
    changed = migrate(store, longer)
    assert changed.migrations == []
    assert changed.retention == {**dict.fromkeys(TTL_COLUMNS, 400), "generations": 730}
    assert all("MODIFY TTL" in s for s in changed.statements)
    assert "toIntervalDay(730)" in create_sql(store, ctx.database, "generations")
    assert "toIntervalDay(400)" in create_sql(store, ctx.database, "events")
    assert migrate(store, longer).up_to_date


@pytest.mark.chdb
def test_the_ttl_counts_from_the_event_time(store: Store) -> None:
    ctx = fresh(RetentionPolicy.of(365))
    migrate(store, ctx)
    now = datetime.now(UTC)
    recent, expired = contract_rows(GENERATIONS, 2)
    recent["occurred_at"] = now - timedelta(days=10)
    expired["occurred_at"] = now - timedelta(days=500)
    own = in_database(store, ctx.database)
    own.insert(GENERATIONS, [recent, expired], token=f"ttl-{uuid.uuid4()}")
    store.command(f"OPTIMIZE TABLE {ctx.database}.generations FINAL")  # a merge applies TTLs
    left = store.query(f"SELECT event_id FROM {ctx.database}.generations").rows
    assert left == [(str(recent["event_id"]),)]


@pytest.mark.chdb
def test_the_ttl_clause_takes_a_legal_hold_condition(store: Store) -> None:
    """The seam for legal holds: a hold condition makes the TTL spare the rows it matches."""
    assert ttl_clause("occurred_at", 365) == "toDateTime(occurred_at) + INTERVAL 365 DAY"
    held = ttl_clause("occurred_at", 365, hold="subject = 'held'")
    assert held == "toDateTime(occurred_at) + INTERVAL 365 DAY DELETE WHERE NOT (subject = 'held')"
    ctx = fresh()
    migrate(store, ctx)
    store.command(f"ALTER TABLE {ctx.database}.generations MODIFY TTL {held}")
    old = contract_rows(GENERATIONS, 2)
    for row, subject in zip(old, ("held", "free"), strict=True):
        row.update(occurred_at=datetime.now(UTC) - timedelta(days=500), subject=subject)
    in_database(store, ctx.database).insert(GENERATIONS, old, token=f"hold-{uuid.uuid4()}")
    store.command(f"OPTIMIZE TABLE {ctx.database}.generations FINAL")
    assert store.query(f"SELECT subject FROM {ctx.database}.generations").rows == [("held",)]


# --- retention settings ------------------------------------------------------------------------


def test_settings_refuse_a_retention_under_180_days() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"AIGC_AUDIT_RETENTION_DAYS": "90"})
    assert str(refused.value) == f"invalid setting retention_days: {FLOOR_MESSAGE}"
    with pytest.raises(SettingsError, match="at least 180"):
        load_settings(environ={"AIGC_AUDIT_RETENTION_DAYS": "179"})
    assert load_settings(environ={"AIGC_AUDIT_RETENTION_DAYS": "180"}).retention_days == 180
    assert load_settings(environ={}).retention_days == 365


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("generations=90", "retention_overrides.generations must be at least 180"),
        ("quarantine=30", "retention_overrides.quarantine must be at least 180"),
        ("chain_findings=179", "retention_overrides.chain_findings must be at least 180"),
        ("keys=400", "'keys' has no retention"),
        ("nosuch=400", "'nosuch' has no retention"),
        ("generations", "expected table=days pairs"),
        ("generations=40000", "must be at most 10950"),
    ],
)
def test_settings_refuse_bad_retention_overrides(overrides: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ={"AIGC_AUDIT_RETENTION_OVERRIDES": overrides})


def test_retention_overrides_from_the_environment_and_a_file(tmp_path: Path) -> None:
    env = {"AIGC_AUDIT_RETENTION_OVERRIDES": "generations=730, quarantine=180"}
    assert load_settings(environ=env).retention_overrides == {"generations": 730, "quarantine": 180}
    config = tmp_path / "aigc-audit.toml"
    config.write_text("retention_days = 400\n[retention_overrides]\nuser_sanctions = 1095\n")
    s = load_settings(config, environ={})
    policy = migration_context(s, "audit").retention
    assert policy is not None and policy.days["user_sanctions"] == 1095
    assert policy.days["events"] == 400
    config.write_text("[retention_overrides]\nuser_sanctions = 100\n")
    with pytest.raises(SettingsError) as refused:
        load_settings(config, environ={})
    assert f"(from {config})" in str(refused.value)
    assert "retention_overrides.user_sanctions must be at least 180" in str(refused.value)


def test_a_policy_under_the_floor_cannot_be_built() -> None:
    with pytest.raises(RetentionError, match="retention_days must be at least 180"):
        RetentionPolicy.of(90)
    with pytest.raises(RetentionError, match="at least 180"):
        RetentionPolicy(dict.fromkeys(TTL_COLUMNS, 100))
    with pytest.raises(RetentionError, match="no days for"):
        RetentionPolicy({"events": 365})


def test_a_cluster_needs_a_clickhouse_server() -> None:
    with pytest.raises(SettingsError, match="clickhouse_cluster needs clickhouse_url"):
        load_settings(environ={"AIGC_AUDIT_CLICKHOUSE_CLUSTER": "audit_cluster"})


# --- aigc-audit migrate, end to end ------------------------------------------------------------


def run_cli(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    command = ["-m", "aigc_audit.consumers.cli.main"]
    return subprocess.run(
        [sys.executable, *command, "--data-dir", str(cwd / "data"), "migrate", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_refuses_a_short_retention_in_one_line(tmp_path: Path) -> None:
    done = run_cli(tmp_path, env={"AIGC_AUDIT_RETENTION_DAYS": "90"})
    assert done.returncode == 2
    assert done.stderr == f"aigc-audit: error: invalid setting retention_days: {FLOOR_MESSAGE}\n"
    assert done.stdout == ""
    assert not (tmp_path / "data" / "store").exists()  # refused before the store was opened


@pytest.mark.chdb
@pytest.mark.slow
def test_cli_migrates_an_old_store_and_then_does_nothing(tmp_path: Path) -> None:
    dry = run_cli(tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("-- audit: schema version 0 -> ")
    assert "CREATE TABLE IF NOT EXISTS audit.generations (" in dry.stdout
    ttl = "ALTER TABLE audit.quarantine MODIFY TTL toDateTime(received_at) + INTERVAL 365 DAY;"
    assert ttl in dry.stdout
    assert "dry run: nothing was executed" in dry.stdout

    old = run_cli(tmp_path, "--to", "1")  # nothing was created by the dry run: starts at 0
    assert old.returncode == 0, old.stderr
    tables_made = len(initial_forwards(MigrationContext("audit")))
    assert old.stdout.splitlines()[0] == f"applied 0001_initial ({tables_made} statements)"
    assert "retention of events: 365 days" in old.stdout.splitlines()
    assert "audit: schema version 0 -> 1" in old.stdout

    up = run_cli(tmp_path)
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    assert lines[0] == "applied 0002_subject_indexes (8 statements)"
    assert lines[-1] == f"audit: schema version 1 -> {LATEST}"
    assert not any(line.startswith("retention") for line in lines)  # already in place
    assert "applying 0002_subject_indexes ..." in up.stderr  # progress, on stderr

    again = run_cli(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"audit: already up to date (schema version {LATEST}, retention unchanged)"
    )

    longer = run_cli(tmp_path, env={"AIGC_AUDIT_RETENTION_OVERRIDES": "generations=730"})
    assert longer.returncode == 0, longer.stderr
    assert longer.stdout.splitlines() == [
        "retention of generations: 730 days",
        f"audit: schema version {LATEST} -> {LATEST}",
    ]


def test_the_installed_cli_refuses_a_short_retention(tmp_path: Path) -> None:
    done = run_cli(tmp_path, env={"AIGC_AUDIT_RETENTION_DAYS": "90"})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "at least 180" in done.stderr
