"""The store's DDL, for one node or a cluster, generated from one source: ``tables.py``.

Single node (chDB, or one ClickHouse server): each table is a ``ReplacingMergeTree`` under its
own name, remembering insert tokens in ``non_replicated_deduplication_window``.

Cluster (a cluster name from the servers' ``remote_servers``): every statement carries
``ON CLUSTER '<name>'``. A table's rows live in ``<table>_local``, a
``ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/<db>/<table>', '{replica}')`` on every
node (``{shard}`` and ``{replica}`` are each node's macros), and ``<table>`` is a ``Distributed``
table over the shards' local tables. Readers and writers use the plain names in both layouts, so
the queries and the materialiser do not change. Replicated tables deduplicate inserts by token
across replicas; a write through the Distributed table must be synchronous
(``insert_distributed_sync = 1``, the writer profile in ``infra/clickhouse/``) so that an insert
returns only once the shards hold the rows, as the materialiser's offset commit assumes.

Shard keys (:func:`shard_key`). Every key is a function of the row's identity, never ``rand()``:
a retried insert (same token, same rows) must split across the shards exactly as the first try
did, or a shard would drop as "already seen" a sub-block holding rows it never received. And the
rows ReplacingMergeTree collapses (same sorting key) must meet on one shard. So:

- tables with a ``subject`` (generations, user_sanctions; nullable in moderation_actions and
  data_handling): ``cityHash64(subject)``, keeping one subject's history on one shard for the
  subject queries; a row without a subject falls back to its ``event_id``. An event's subject
  never changes, so its duplicates still meet.
- ``events`` has no subject (it is family-neutral, the exact bytes of every event):
  ``cityHash64(event_id)`` spreads it evenly; joins to a typed table go through
  ``distributed_product_mode = 'global'`` (the profiles in ``infra/clickhouse/``).
- ``batches``: ``cityHash64(producer_id)``, one producer's hash chain on one shard.
- ``quarantine`` and ``chain_findings``: their bus position ``(topic, partition, offset)``.
- ``keys``: ``key_id``; ``schema_migrations``: ``version``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

from aigc_audit.consumers.store.tables import DEDUP_WINDOW, Table

ZOOKEEPER_PREFIX = "/clickhouse/tables/{shard}"
"""Where replicated tables keep their metadata in Keeper; ``{shard}`` is each node's macro."""

REPLICATED_DEDUP_SECONDS = 7 * 24 * 3600
"""How long a replicated table remembers an insert token. ClickHouse's default (an hour on recent
releases) would let a materialiser that restarts after a longer outage insert twice; a week
bounds the Keeper entries while covering any realistic outage. The count bound is DEDUP_WINDOW,
as for a single node."""

SHARD_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "batches": "cityHash64(producer_id)",
        "events": "cityHash64(event_id)",
        "quarantine": "cityHash64(topic, partition, offset)",
        "chain_findings": "cityHash64(topic, partition, offset)",
        "keys": "cityHash64(key_id)",
        "legal_holds": "cityHash64(hold_key)",
        "checkpoints": "cityHash64(topic, partition)",
        "schema_migrations": "version",
    }
)
"""Shard keys of the tables without a ``subject`` column (see the module docstring)."""


class Placement(Protocol):
    """Where DDL goes: a database, on one node (``cluster`` None) or on every node of a
    cluster. ``MigrationContext`` is one."""

    @property
    def database(self) -> str: ...

    @property
    def cluster(self) -> str | None: ...


def on_cluster(place: Placement) -> str:
    """`` ON CLUSTER '<name>'`` in a cluster, else ''."""
    return f" ON CLUSTER '{place.cluster}'" if place.cluster else ""


def storage_name(table: Table, place: Placement) -> str:
    """The name of the table that stores the rows: ``<table>_local`` in a cluster (the plain
    name is the Distributed table there), else the plain name. ALTERs that change storage
    (indexes, TTLs) go to this table."""
    return f"{table.name}_local" if place.cluster else table.name


def shard_key(table: Table) -> str:
    """The Distributed table's sharding expression for ``table`` (module docstring)."""
    types = dict(table.columns)
    if "subject" in types:
        if types["subject"].startswith("Nullable"):
            return "cityHash64(ifNull(subject, toString(event_id)))"
        return "cityHash64(subject)"
    try:
        return SHARD_KEYS[table.name]
    except KeyError:
        raise KeyError(f"table {table.name} has no shard key: add one to ddl.SHARD_KEYS") from None


def zookeeper_path(table: Table, place: Placement) -> str:
    """The replicated table's Keeper path: one per shard, database and table."""
    return f"{ZOOKEEPER_PREFIX}/{place.database}/{table.name}"


def create_database(place: Placement) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {place.database}{on_cluster(place)}"


def create_table(table: Table, place: Placement) -> list[str]:
    """The statements that create ``table`` if missing: one on a node; in a cluster the local
    replicated table, then the Distributed table over it."""
    cols = ",\n  ".join(f"`{name}` {ctype}" for name, ctype in table.columns)
    partition = f"\nPARTITION BY {table.partition_by}" if table.partition_by else ""
    head = f"CREATE TABLE IF NOT EXISTS {place.database}.{storage_name(table, place)}"
    if not place.cluster:
        engine = f"ReplacingMergeTree({table.version})" if table.version else "ReplacingMergeTree"
        return [
            f"{head} (\n  {cols}\n)\n"
            f"ENGINE = {engine}{partition}\nORDER BY {table.order_by}\n"
            f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
        ]
    args = [f"'{zookeeper_path(table, place)}'", "'{replica}'"]
    if table.version:
        args.append(table.version)
    local = (
        f"{head}{on_cluster(place)} (\n  {cols}\n)\n"
        f"ENGINE = ReplicatedReplacingMergeTree({', '.join(args)}){partition}\n"
        f"ORDER BY {table.order_by}\n"
        f"SETTINGS replicated_deduplication_window = {DEDUP_WINDOW}, "
        f"replicated_deduplication_window_seconds = {REPLICATED_DEDUP_SECONDS}"
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {place.database}.{table.name}{on_cluster(place)} (\n"
        f"  {cols}\n)\n"
        f"ENGINE = Distributed('{place.cluster}', '{place.database}', "
        f"'{storage_name(table, place)}', {shard_key(table)})"
    )
    return [local, distributed]


def drop_table(table: Table, place: Placement) -> list[str]:
    """The statements that drop ``table`` if present: in a cluster the Distributed table first,
    then the local one, ``SYNC`` so that its Keeper path is free for a later re-creation."""
    if not place.cluster:
        return [f"DROP TABLE IF EXISTS {place.database}.{table.name}"]
    return [
        f"DROP TABLE IF EXISTS {place.database}.{name}{on_cluster(place)} SYNC"
        for name in (table.name, storage_name(table, place))
    ]


def alter_storage(table: Table, place: Placement, action: str) -> str:
    """``ALTER TABLE`` of the table that stores ``table``'s rows (see :func:`storage_name`)."""
    return f"ALTER TABLE {place.database}.{storage_name(table, place)}{on_cluster(place)} {action}"


def alter_columns(table: Table, place: Placement, action: str) -> list[str]:
    """``ALTER TABLE ... <action>`` of a column change: of the storage table, and on a cluster of
    the Distributed table over it too, which needs the same columns to read them."""
    statements = [alter_storage(table, place, action)]
    if place.cluster:
        statements.append(f"ALTER TABLE {place.database}.{table.name}{on_cluster(place)} {action}")
    return statements


def add_columns(table: Table, columns: Iterable[tuple[str, str]], place: Placement) -> list[str]:
    """Add ``columns`` (name, type) to ``table`` if missing: the forwards of a column migration."""
    return [
        sql
        for name, ctype in columns
        for sql in alter_columns(table, place, f"ADD COLUMN IF NOT EXISTS `{name}` {ctype}")
    ]


def drop_columns(table: Table, columns: Iterable[tuple[str, str]], place: Placement) -> list[str]:
    """Drop ``columns`` from ``table`` in reverse order: the backwards of :func:`add_columns`."""
    return [
        sql
        for name, _ in reversed(list(columns))
        for sql in alter_columns(table, place, f"DROP COLUMN IF EXISTS `{name}`")
    ]


def problems(place: Placement, statements: Iterable[str]) -> list[str]:
    """What is wrong with ``statements`` for ``place`` (empty if nothing): in a cluster each must
    carry ``ON CLUSTER '<name>'`` (a statement without it would change one node only); on one
    node none may name a cluster, a replicated engine or a Distributed table."""
    found = []
    for sql in statements:
        first = " ".join(sql.split())[:80]
        if place.cluster and on_cluster(place) not in sql:
            found.append(f"lacks ON CLUSTER '{place.cluster}': {first}")
        if not place.cluster and any(w in sql for w in ("ON CLUSTER", "Replicated", "Distributed")):
            found.append(f"is cluster DDL on a single node: {first}")
    return found
