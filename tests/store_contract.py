"""The contract every Store must keep, whichever engine is behind it (see test_store_contract.py).

:class:`StoreContract` holds the tests; a module subclasses it and provides a module-scoped
``backend`` fixture giving a migrated :class:`Backend`. Rows are made from the table definitions
themselves (every column of every table, with awkward values: bytes that are not UTF-8, NUL
and 0xFF, quotes, backslashes, newlines, Chinese text, extreme integers, microseconds), so a
column added to ``tables.py`` is covered without touching this file.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from aigc_audit.consumers.store.base import Store, StoreError
from aigc_audit.consumers.store.checksums import table_checksums
from aigc_audit.consumers.store.tables import (
    ALL_TABLES,
    BINARY_STRINGS,
    GENERATIONS,
    SCHEMA_MIGRATIONS,
    Table,
)

Row = dict[str, Any]

TEXTS = ("plain", "it's a \\ back'slash\n\ttab", '中文 ‘quotes’ "dq" `bt` 🙂')
BYTES = (b"\x00\xff\x00", bytes(range(256)), b"\xc3(\xa0\xa1'\\\n")
TIMES = (
    datetime(2026, 3, 1, 10, 0, 0, 999999, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    # An aware time in another zone is stored as the same instant in UTC.
    datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
)
INTS = {"UInt16": (0, 65535, 7), "UInt32": (0, 2**32 - 1, 7), "UInt64": (0, 2**64 - 1, 12345)}
FLOATS = (0.1, 1 / 3, -2.5e-300)
NAMESPACE = uuid.UUID("6f1f8f5e-4a7b-4c55-9d0a-1f8f5e4a7b4c")
CHECKSUMS: dict[str, dict[str, tuple[int, int]]] = {}
"""table_checksums per backend, to compare backends run one after another in one session."""


@dataclass
class Backend:
    """The store under test; ``twin`` (if any) is another store on the same engine whose inserts
    take the other path (the embedded store's own, beside the served one), compared row by row."""

    name: str
    store: Store
    twin: Store | None = None


def value(table: Table, column: str, ctype: str, i: int) -> Any:
    """Row ``i``'s value for a column: deterministic, awkward, None in odd rows if Nullable."""
    if ctype.startswith("Nullable(") and i % 2:
        return None
    inner = ctype.removeprefix("Nullable(").removesuffix(")") if "Nullable" in ctype else ctype
    if inner == "UUID":
        return uuid.uuid5(NAMESPACE, f"{table.name}.{column}.{i}")
    if inner.startswith("DateTime64"):
        return TIMES[i % 3] + timedelta(days=len(column))
    if inner.startswith("FixedString("):
        size = int(inner[len("FixedString(") : -1])
        return (bytes([255 - i]) + b"\x00" * size)[: size - 1] + bytes([i])
    if column in BINARY_STRINGS:
        return BYTES[i % 3] + column.encode()
    if inner == "Array(String)":
        return [[], ["", TEXTS[1], TEXTS[2]], [column]][i % 3]
    if inner in INTS:
        return INTS[inner][i % 3]
    if inner == "Float64":
        return FLOATS[i % 3]
    if inner == "Bool":
        return i % 2 == 0
    return f"{TEXTS[i % 3]} {table.name}.{column}.{i}"  # String and LowCardinality(String)


def rows(table: Table, count: int = 3) -> list[Row]:
    return [{n: value(table, n, t, i) for n, t in table.columns} for i in range(count)]


def expected(table: Table, row: Row) -> tuple[Any, ...]:
    """The row as a store's query returns it, binary columns read through ``hex()``."""
    out: list[Any] = []
    for name, _ in table.columns:
        v = row[name]
        if v is None or isinstance(v, (bool, int, float, str, list)):
            out.append(v)
        elif isinstance(v, bytes):
            out.append(v.hex().upper())
        elif isinstance(v, datetime):
            out.append(v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
        else:
            out.append(str(v))
    return tuple(out)


def select_all(store: Store, table: Table, where: str = "") -> list[tuple[Any, ...]]:
    binary = table.binary_columns
    cols = ", ".join(f"hex(`{n}`)" if n in binary else f"`{n}`" for n in table.column_names)
    found = store.query(f"SELECT {cols} FROM {store.database}.{table.name} {where}").rows
    return sorted(found, key=repr)


DATA_TABLES = tuple(t for t in ALL_TABLES if t is not SCHEMA_MIGRATIONS)
"""The tables a test may empty: schema_migrations records the migration, which tests check."""


def empty_all(store: Store) -> None:
    for table in DATA_TABLES:
        store.command(f"TRUNCATE TABLE {store.database}.{table.name}")


def token() -> str:
    return f"contract-{uuid.uuid4()}"


class StoreContract:
    """The Store protocol's promises (base.py), tested through the protocol only."""

    def test_migrate_twice_is_a_no_op(self, backend: Backend) -> None:
        store = backend.store
        db = store.database
        store.insert(GENERATIONS, rows(GENERATIONS, 1), token=token())
        counts = " UNION ALL ".join(
            f"SELECT '{t.name}', count() FROM {db}.{t.name}" for t in ALL_TABLES
        )
        before = sorted(store.query(counts).rows)
        store.migrate()
        store.migrate()
        tables = store.query(
            "SELECT name FROM system.tables WHERE database = {db:String} "
            "AND engine != 'Dictionary' ORDER BY name",
            {"db": db},
        ).rows
        assert [t[0] for t in tables] == sorted(t.name for t in ALL_TABLES)
        assert sorted(store.query(counts).rows) == before
        # Other tests write schema_migrations rows of their own; a migration is there if no
        # test emptied the table since the fixture migrated.
        assert dict(before)["schema_migrations"] > 0

    @pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
    def test_every_column_round_trips_exactly(self, backend: Backend, table: Table) -> None:
        store = backend.store
        store.command(f"TRUNCATE TABLE {store.database}.{table.name}")
        written = rows(table)
        store.insert(table, written, token=token())
        assert select_all(store, table) == sorted((expected(table, r) for r in written), key=repr)

    def test_result_shapes(self, backend: Backend) -> None:
        store = backend.store
        store.command(f"TRUNCATE TABLE {store.database}.generations")
        row = rows(GENERATIONS, 1)[0]
        store.insert(GENERATIONS, [row], token=token())
        result = store.query(
            "SELECT event_id, occurred_at, output_tokens, explicit_label, input_sha256, "
            f"label_value, toDate(occurred_at) AS day FROM {store.database}.generations"
        )
        assert result.columns[:2] == ("event_id", "occurred_at")
        assert result.types == (
            "UUID",
            "DateTime64(6, 'UTC')",
            "Nullable(UInt64)",
            "Bool",
            "FixedString(32)",
            "Nullable(String)",
            "Date",
        )
        (got,) = result.rows
        assert got[0] == str(row["event_id"]) and isinstance(got[2], int) and got[3] is True
        assert got[1] == expected(GENERATIONS, row)[1] and got[6] == got[1][:10]
        assert result.as_dicts()[0]["label_value"] == row["label_value"]

    def test_dedup_token_absorbs_a_retried_insert(self, backend: Backend) -> None:
        store = backend.store
        table = GENERATIONS
        batch = [
            {**r, "event_id": uuid.uuid4(), "request_id": f"dedup-{uuid.uuid4()}"}
            for r in rows(table, 2)
        ]
        ids = "', '".join(str(r["event_id"]) for r in batch)
        count = f"SELECT count() FROM {store.database}.{table.name} WHERE event_id IN ('{ids}')"
        same = token()
        store.insert(table, batch, token=same)
        store.insert(table, batch, token=same)  # a retry after a crash: absorbed
        assert store.query(count).rows == [(2,)]
        store.insert(table, batch, token=token())  # another position: not a retry
        assert store.query(count).rows == [(4,)]
        store.insert(table, [], token=token())

    def test_query_params_of_every_pack_type(self, backend: Backend) -> None:
        awkward = 'it\'s \\ a "test"\n\t\r中文 {x:String} %s ?'
        params: dict[str, Any] = {
            "s": awkward,
            "u32": 2**32 - 1,
            "u64": 2**64 - 1,
            "i64": -(2**63),
            "f": 0.95,
            "d": date(2149, 6, 6),
            "t": datetime(2026, 11, 1, 16, 0, 0, 7, tzinfo=timezone(timedelta(hours=8))),
            "b": True,
            "empty": "",
        }
        result = backend.store.query(
            "SELECT {s:String}, {u32:UInt32}, {u64:UInt64}, {i64:Int64}, {f:Float64}, "
            "{d:Date}, {t:DateTime64(6, 'UTC')}, {b:Bool}, {empty:String} = ''",
            params,
        )
        want = (awkward, 2**32 - 1, 2**64 - 1, -(2**63), 0.95, "2149-06-06")
        assert result.rows == [(*want, "2026-11-01 08:00:00.000007", True, 1)]

    def test_params_select_stored_rows(self, backend: Backend) -> None:
        store = backend.store
        store.command(f"TRUNCATE TABLE {store.database}.generations")
        written = rows(GENERATIONS)
        store.insert(GENERATIONS, written, token=token())
        for row in written:
            found = store.query(
                f"SELECT event_id FROM {store.database}.generations WHERE subject = {{s:String}} "
                "AND occurred_at = {t:DateTime64(6, 'UTC')} AND explicit_label = {b:Bool}",
                {"s": row["subject"], "t": row["occurred_at"], "b": row["explicit_label"]},
            )
            assert found.rows == [(str(row["event_id"]),)]

    @pytest.mark.parametrize(
        ("call", "code"),
        [
            (lambda s: s.query("SELEC 1"), "Code: 62."),
            (lambda s: s.query(f"SELECT * FROM {s.database}.no_such_table"), "Code: 60."),
            (lambda s: s.query("SELECT {n:UInt32}", {"n": "x\ny"}), "Code: 457."),
            (lambda s: s.command("CREATE TABLE broken (x Nope) ENGINE = Memory"), "Code: 50."),
        ],
        ids=["syntax", "unknown-table", "bad-param", "bad-type"],
    )
    def test_a_refused_statement_is_one_line(
        self, backend: Backend, call: Callable[[Store], object], code: str
    ) -> None:
        with pytest.raises(StoreError) as caught:
            call(backend.store)
        message = str(caught.value)
        assert message.startswith(code) and "DB::Exception" in message
        assert "\n" not in message and "(version" not in message and "for url" not in message

    def test_checksums_agree_across_stores(self, backend: Backend) -> None:
        stores = [backend.store, *([backend.twin] if backend.twin else [])]
        sums = []
        for store in stores:
            empty_all(store)
            for table in DATA_TABLES:
                store.insert(table, rows(table), token=token())
            sums.append(table_checksums(store))
        assert all(s == sums[0] for s in sums)
        assert all(rows_ == 3 for rows_, _ in sums[0].values())
        for other, recorded in CHECKSUMS.items():
            assert sums[0] == recorded, f"{backend.name} and {other} hold different rows"
        CHECKSUMS[backend.name] = sums[0]
