"""The store's DDL on a cluster and on one node, generated from the one migration list and
checked statement by statement; the example cluster's configuration files (infra/clickhouse/).

The cluster DDL is what ``aigc-audit migrate --dry-run`` prints for a new store, taken from the
runner itself (a dry run against a store with no tables). No cluster runs here: chDB parses each
statement (a syntax check) and runs the single-node DDL for real.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.store import ddl
from aigc_audit.consumers.store.base import QueryResult, Store
from aigc_audit.consumers.store.migrations import (
    Migration,
    MigrationContext,
    MigrationError,
    load_migrations,
    migrate,
    validate,
)
from aigc_audit.consumers.store.migrations.m0001_initial import forwards as initial_forwards
from aigc_audit.consumers.store.retention import (
    HELD_TABLES,
    TTL_COLUMNS,
    RetentionPolicy,
    hold_condition,
    ttl_clause,
)
from aigc_audit.consumers.store.tables import ALL_TABLES, Table

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra" / "clickhouse"
CLUSTER = "audit_cluster"
ON_CLUSTER = f" ON CLUSTER '{CLUSTER}'"

SHARD_KEYS = {
    "batches": "cityHash64(producer_id)",
    "events": "cityHash64(event_id)",
    "generations": "cityHash64(subject)",
    "moderation_actions": "cityHash64(ifNull(subject, toString(event_id)))",
    "user_sanctions": "cityHash64(subject)",
    "data_handling": "cityHash64(ifNull(subject, toString(event_id)))",
    "quarantine": "cityHash64(topic, partition, offset)",
    "chain_findings": "cityHash64(topic, partition, offset)",
    "keys": "cityHash64(key_id)",
    "legal_holds": "cityHash64(hold_key)",
    "checkpoints": "cityHash64(topic, partition)",
    "schema_migrations": "version",
}
"""The shard key each table must have; a new table must be added here on purpose."""


class NoTables:
    """A store with no tables at all, which executes nothing: a dry run against it gives the
    whole DDL of a new store."""

    def __init__(self, database: str = "audit") -> None:
        self.database = database

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        return QueryResult(("name", "engine_full"), ("String", "String"), [])

    def command(self, sql: str) -> None:
        raise AssertionError(f"a dry run executed {sql}")

    def insert(self, table: Table, rows: Any, *, token: str) -> None:
        raise AssertionError("a dry run inserted")

    def migrate(self) -> None: ...

    def close(self) -> None: ...


def script(cluster: str | None, database: str = "audit") -> list[str]:
    ctx = MigrationContext(database, cluster, RetentionPolicy.of(365))
    return migrate(NoTables(database), ctx, dry_run=True).statements  # type: ignore[arg-type]


def ddl_only(statements: list[str]) -> list[str]:
    """The statements without the INSERTs that record each migration."""
    return [s for s in statements if not s.startswith("INSERT")]


def creates(statements: list[str]) -> dict[str, tuple[int, str]]:
    """``{table created: (position, statement)}``."""
    found = {}
    for i, sql in enumerate(statements):
        match = re.match(r"CREATE TABLE IF NOT EXISTS audit\.(\w+)[ (]", sql)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} created twice"
            found[match.group(1)] = (i, sql)
    return found


def engine(sql: str) -> str:
    match = re.search(r"^ENGINE = (.+?)$", sql, re.MULTILINE)
    assert match, sql
    return match.group(1)


# --- the cluster DDL, statement by statement ---------------------------------------------------


def test_every_cluster_statement_runs_on_the_whole_cluster() -> None:
    statements = script(CLUSTER)
    assert statements[0] == f"CREATE DATABASE IF NOT EXISTS audit{ON_CLUSTER}"
    for sql in ddl_only(statements):
        assert ON_CLUSTER in sql, sql
        assert sql.count("ON CLUSTER") == 1, sql
    records = [s for s in statements if s.startswith("INSERT")]
    assert len(records) == len(load_migrations())
    for sql in records:  # through the Distributed table, returning once the shard has it
        assert sql.startswith("INSERT INTO audit.schema_migrations (version, name, applied_at)")
        assert "SETTINGS insert_distributed_sync = 1" in sql


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_each_table_is_replicated_locally_and_distributed_over_the_shards(table: Table) -> None:
    made = creates(script(CLUSTER))
    local_at, local = made[f"{table.name}_local"]
    dist_at, dist = made[table.name]
    assert local_at < dist_at  # the Distributed table is made over an existing local one

    version = f", {table.version}" if table.version else ""
    assert engine(local) == (
        f"ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/audit/{table.name}', "
        f"'{{replica}}'{version})"
    )
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS audit.{table.name}_local{ON_CLUSTER} (")
    assert f"\nORDER BY {table.order_by}\n" in local
    if table.partition_by:
        assert f"\nPARTITION BY {table.partition_by}\n" in local
    assert "replicated_deduplication_window = 100000" in local
    assert "non_replicated" not in local

    assert engine(dist) == (
        f"Distributed('{CLUSTER}', 'audit', '{table.name}_local', {SHARD_KEYS[table.name]})"
    )
    assert dist.startswith(f"CREATE TABLE IF NOT EXISTS audit.{table.name}{ON_CLUSTER} (")
    # Both tables have exactly the columns of tables.py, in its order.
    columns = [f"`{name}` {ctype}" for name, ctype in table.columns]
    for sql in (local, dist):
        body = sql[sql.index("(\n") + 2 : sql.index("\n)")]
        assert [c.strip().rstrip(",") for c in body.splitlines()] == columns


def test_the_keys_table_keeps_the_latest_registration() -> None:
    (_, local) = creates(script(CLUSTER))["keys_local"]
    assert engine(local).endswith("'{replica}', registered_at)")


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_shard_keys_keep_duplicates_and_subjects_together(table: Table) -> None:
    """A key uses only the table's columns, and only those of its sorting key (so the rows
    ReplacingMergeTree collapses meet on one shard) or ``subject``, which one event's copies
    share too."""
    key = ddl.shard_key(table)
    assert key == SHARD_KEYS[table.name]
    used = set(re.findall(r"\b([a-z_]+)\b(?!\()", key))
    sorting = set(re.findall(r"\b([a-z_]+)\b(?!\()", table.order_by))
    assert used <= set(table.column_names)
    assert used <= sorting | {"subject"}
    assert "rand" not in key


def test_storage_changes_go_to_the_local_tables() -> None:
    alters = [s for s in script(CLUSTER) if s.startswith("ALTER")]
    assert alters
    for sql in alters:
        if "COLUMN" in sql:
            continue  # a column changes both the local table and the Distributed one over it
        assert re.match(rf"ALTER TABLE audit\.\w+_local{ON_CLUSTER} ", sql), sql
    columns = [s.split(" ADD COLUMN ")[0] for s in alters if " ADD COLUMN " in s]
    # six legal-hold columns (0003), hold_keys (0004) and four agreement-acceptance columns
    # (0006), on both tables
    assert columns.count(f"ALTER TABLE audit.data_handling_local{ON_CLUSTER}") == 11
    assert columns.count(f"ALTER TABLE audit.data_handling{ON_CLUSTER}") == 11
    indexed = {s.split()[2] for s in alters if "ADD INDEX IF NOT EXISTS subject_idx" in s}
    assert indexed == {
        f"audit.{t}_local"
        for t in ("generations", "moderation_actions", "user_sanctions", "data_handling")
    }
    ttls = {s.split()[2]: s for s in alters if "MODIFY TTL" in s}
    assert set(ttls) == {f"audit.{t}_local" for t in TTL_COLUMNS}
    for table, column in TTL_COLUMNS.items():
        hold = hold_condition("audit") if table in HELD_TABLES else None
        assert ttls[f"audit.{table}_local"].endswith(f"MODIFY TTL {ttl_clause(column, 365, hold)}")
    assert ttls["audit.generations_local"].endswith(
        "INTERVAL 365 DAY DELETE WHERE NOT "
        "(arrayExists(k -> dictHas('audit.active_holds', tuple(k)), hold_keys))"
    )
    assert ttls["audit.quarantine_local"].endswith("INTERVAL 365 DAY")


def test_cluster_backwards_drops_the_distributed_table_first() -> None:
    ctx = MigrationContext("audit", CLUSTER)
    for migration in load_migrations():
        statements = migration.backwards(ctx)
        assert statements and not ddl.problems(ctx, statements)
    drops = load_migrations()[0].backwards(ctx)
    assert drops[:2] == [
        f"DROP TABLE IF EXISTS audit.keys{ON_CLUSTER} SYNC",
        f"DROP TABLE IF EXISTS audit.keys_local{ON_CLUSTER} SYNC",
    ]


def test_a_migration_without_on_cluster_is_refused_on_a_cluster() -> None:
    careless = validate(
        [
            Migration(1, "initial", False, initial_forwards, lambda c: []),
            Migration(2, "careless", False, lambda c: ["ALTER TABLE audit.x"], lambda c: []),
        ]
    )
    ctx = MigrationContext("audit", CLUSTER)
    with pytest.raises(MigrationError, match="0002_careless: a statement lacks ON CLUSTER"):
        migrate(NoTables(), ctx, dry_run=True, migrations=careless)  # type: ignore[arg-type]


def test_a_cluster_store_is_migrated_on_its_cluster_without_being_told() -> None:
    """``Store.migrate()`` names no cluster; the store's own Distributed schema_migrations does."""

    class ClusterStore(NoTables):
        def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
            if "system.tables" in sql:
                engine = f"Distributed('{CLUSTER}', 'audit', 'schema_migrations_local', version)"
                return QueryResult((), (), [("schema_migrations", engine)])
            return QueryResult(("version",), ("UInt32",), [(1,)])

    report = migrate(ClusterStore(), MigrationContext("audit"), dry_run=True)  # type: ignore[arg-type]
    assert report.cluster == CLUSTER and report.version_before == 1
    assert report.statements and all(ON_CLUSTER in s for s in ddl_only(report.statements))
    with pytest.raises(MigrationError, match="created on cluster 'audit_cluster'"):
        migrate(ClusterStore(), MigrationContext("audit", "other"), dry_run=True)  # type: ignore[arg-type]


# --- the single-node DDL -----------------------------------------------------------------------


def test_single_node_ddl_has_no_cluster_parts() -> None:
    statements = script(None)
    assert not ddl.problems(MigrationContext("audit"), ddl_only(statements))
    made = creates(statements)
    assert set(made) == {t.name for t in ALL_TABLES}
    for table in ALL_TABLES:
        _, sql = made[table.name]
        expected = f"ReplacingMergeTree({table.version})" if table.version else "ReplacingMergeTree"
        assert engine(sql) == expected
        assert "non_replicated_deduplication_window = 100000" in sql
    for sql in statements:
        assert "ON CLUSTER" not in sql and "Distributed" not in sql and "_local" not in sql


@pytest.fixture(scope="module")
def chdb_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path_factory.mktemp("ddl") / "store", database="ddl_check")
    try:
        yield store
    finally:
        store.close()


@pytest.mark.chdb
def test_the_engine_parses_every_cluster_statement(chdb_store: Store) -> None:
    for sql in script(CLUSTER):
        # formatQuery parses the statement without running it: chDB has no cluster to run on.
        (formatted,) = chdb_store.query("SELECT formatQuery({sql:String})", {"sql": sql}).rows[0]
        assert formatted.split()[:2] == sql.split()[:2]


@pytest.mark.chdb
def test_the_single_node_ddl_makes_the_tables_the_code_expects(chdb_store: Store) -> None:
    for sql in script(None, database="ddl_check"):
        chdb_store.command(sql)
    found = chdb_store.query(
        "SELECT table, groupArray((name, type)) FROM "
        "(SELECT table, name, type FROM system.columns WHERE database = 'ddl_check' "
        "ORDER BY table, position) GROUP BY table"
    ).rows
    columns = {table: [tuple(c) for c in cols] for table, cols in found}
    holds = columns.pop("active_holds")  # the legal-holds dictionary the TTLs consult
    assert holds == [("hold_key", "String"), ("active", "UInt8")]
    assert columns == {t.name: list(t.columns) for t in ALL_TABLES}
    engines = dict(
        chdb_store.query("SELECT name, engine FROM system.tables WHERE database = 'ddl_check'").rows
    )
    assert set(engines.values()) == {"ReplacingMergeTree", "Dictionary"}


# --- the example cluster's configuration -------------------------------------------------------


def xml(relative: str) -> ET.Element:
    return ET.parse(INFRA / relative).getroot()


def test_every_configuration_file_is_valid_xml() -> None:
    files = sorted(INFRA.rglob("*.xml"))
    assert {f.relative_to(INFRA).as_posix() for f in files} >= {
        "config.d/cluster.xml",
        "config.d/keeper.xml",
        "users.d/aigc-audit.xml",
        "keeper/keeper_config.xml",
    }
    for path in files:
        assert ET.parse(path).getroot().tag == "clickhouse", path


def test_the_example_cluster_has_two_shards_of_two_replicas() -> None:
    root = xml("config.d/cluster.xml")
    (cluster,) = root.find("remote_servers")  # type: ignore[union-attr]
    assert cluster.tag == CLUSTER
    shards = cluster.findall("shard")
    assert len(shards) == 2
    hosts = []
    for shard in shards:
        assert shard.findtext("internal_replication") == "true"
        replicas = shard.findall("replica")
        assert len(replicas) == 2
        hosts += [r.findtext("host") for r in replicas]
    assert len(set(hosts)) == 4
    macros = root.find("macros")
    assert macros is not None
    # The macros the replicated tables' Keeper paths use (ddl.py) are defined on every node.
    assert {"shard", "replica"} <= {m.tag for m in macros}
    assert "{shard}" in ddl.ZOOKEEPER_PREFIX


def test_the_keeper_ensemble_has_three_nodes() -> None:
    clients = xml("config.d/keeper.xml").find("zookeeper")
    assert clients is not None
    nodes = [(n.findtext("host"), n.findtext("port")) for n in clients.findall("node")]
    assert len(nodes) == 3
    raft = xml("keeper/keeper_config.xml").find("keeper_server/raft_configuration")
    assert raft is not None
    servers = raft.findall("server")
    assert [s.findtext("id") for s in servers] == ["1", "2", "3"]
    assert sorted(s.findtext("hostname") for s in servers) == sorted(h for h, _ in nodes)


def test_the_users_are_a_synchronous_writer_and_a_reader() -> None:
    root = xml("users.d/aigc-audit.xml")
    writer = root.find("profiles/aigc_writer")
    reader = root.find("profiles/aigc_reader")
    assert writer is not None and reader is not None
    assert writer.findtext("insert_distributed_sync") == "1"
    assert reader.findtext("readonly") in {"1", "2"}
    for user, profile in (("aigc_writer", "aigc_writer"), ("aigc_reader", "aigc_reader")):
        assert root.findtext(f"users/{user}/profile") == profile
        grants = [q.text or "" for q in root.findall(f"users/{user}/grants/query")]
        assert grants and all("DROP" not in g for g in grants)
    reader_grants = " ".join(q.text or "" for q in root.findall("users/aigc_reader/grants/query"))
    assert "INSERT" not in reader_grants and "ALTER" not in reader_grants


def test_the_readme_names_the_cluster_and_the_settings() -> None:
    text = (INFRA / "README.md").read_text()
    assert f"AIGC_AUDIT_CLICKHOUSE_CLUSTER={CLUSTER}" in text
    assert "AIGC_AUDIT_CLICKHOUSE_URL" in text and "aigc-audit migrate" in text
