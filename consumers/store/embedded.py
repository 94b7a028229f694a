"""The embedded store: the ClickHouse engine in-process (chDB) over a local directory."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aigc_audit.consumers.store.base import QueryResult, StoreError
from aigc_audit.consumers.store.migrations import MigrationContext
from aigc_audit.consumers.store.migrations import migrate as run_migrations
from aigc_audit.consumers.store.results import parse_json_compact
from aigc_audit.consumers.store.tables import Table


def _escape_param(value: str) -> str:
    # chDB parses parameter values in ClickHouse's escaped (TSV) form.
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _utc_text(value: datetime) -> str:
    # Columns and parameters are UTC; an aware time from another zone is converted, not relabelled.
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def param_text(value: Any) -> str:
    """A query parameter value as ClickHouse's text form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quote(v) if isinstance(v, str) else str(v) for v in value) + "]"
    return str(value)


def _arrow_type(ctype: str, binary: bool) -> Any:
    import pyarrow as pa

    inner = (
        ctype.removeprefix("Nullable(").removesuffix(")")
        if ctype.startswith("Nullable(")
        else ctype
    )
    if binary:
        return pa.binary()
    if inner.startswith("Array("):
        return pa.list_(pa.string())
    if inner.startswith("DateTime64"):
        return pa.timestamp("us", tz="UTC")
    if inner == "Bool":
        return pa.bool_()
    if inner.startswith("Float"):
        return pa.float64()
    if inner.startswith("UInt"):
        return pa.uint64()
    if inner.startswith("Int"):
        return pa.int64()
    return pa.string()  # String, LowCardinality(String), UUID (the engine parses the text)


@functools.cache
def _row_type(table: Table) -> Any:
    import pyarrow as pa

    binary = table.binary_columns
    return pa.struct([(name, _arrow_type(ctype, name in binary)) for name, ctype in table.columns])


def arrow_columns(table: Table, rows: Sequence[Mapping[str, Any]]) -> Any:
    """``rows`` as an Arrow table with ``table``'s columns, typed for the engine to read.

    Values go in as they are (pyarrow converts datetimes, naive ones read as UTC, integer
    microseconds for times, and bytes); UUIDs go in as text, which the engine parses into its
    UUID column.
    """
    import pyarrow as pa

    try:
        # pyarrow reads the dicts in one pass of its own, a seventh of the cost of a Python
        # loop per column; keys that are not columns are ignored, missing ones are null.
        return pa.Table.from_struct_array(pa.array(rows, type=_row_type(table)))
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass  # a value pyarrow does not take as it is (a uuid.UUID): convert column by column
    binary = table.binary_columns
    arrays = {}
    for name, ctype in table.columns:
        values = [row.get(name) for row in rows]
        if "UUID" in ctype:
            values = [None if v is None else str(v) for v in values]
        arrays[name] = pa.array(values, type=_arrow_type(ctype, name in binary))
    return pa.table(arrays)


class ChdbResult(Protocol):
    def bytes(self) -> bytes: ...


class ChdbSession(Protocol):
    """What the platform uses of ``chdb.session.Session``, whose methods chDB ships without
    annotations (so every call of them would be an untyped call)."""

    def query(
        self, sql: str, fmt: str = "CSV", udf_path: str = "", params: dict[str, str] | None = None
    ) -> ChdbResult: ...

    def close(self) -> None: ...


class EmbeddedStore:
    """A store in a local directory, run by chDB. One process at a time owns the directory."""

    def __init__(self, path: Path, database: str = "audit") -> None:
        import chdb.session  # the platform extra; imported late so the CLI starts fast

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.database = database
        # Typed through ChdbSession: the class itself, unannotated, fits it.
        open_session: Callable[[str], ChdbSession] = chdb.session.Session
        try:
            self._session = open_session(str(path))
        except Exception as exc:  # chDB reports a held directory as a bare RuntimeError
            raise StoreError(f"cannot open the embedded store at {path}: {exc}") from exc

    def migrate(self) -> None:
        """Bring the schema up to date (``consumers.store.migrations``); safe to run twice, and
        only reads when there is nothing to do. TTLs are left as they are: the configured
        retention is applied by ``aigc-audit migrate``."""
        run_migrations(self, MigrationContext(self.database))

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]], *, token: str) -> None:
        if not rows:
            return
        # Columns travel as one Arrow table that the engine reads in place (chDB's Python()
        # table function): no text round trip, so bytes stay exact and a poll's rows go in
        # one statement whatever their number.
        columns = arrow_columns(table, rows)  # noqa: F841 - read by name by Python(columns)
        names = ", ".join(f"`{n}`" for n in table.column_names)
        sql = (
            f"INSERT INTO {self.database}.{table.name} ({names}) SELECT {names} "
            f"FROM Python(columns) SETTINGS insert_deduplication_token = {_quote(token)}"
        )
        self._run(sql, "CSV", None)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        # An array is read as a literal, not as escaped text: escaping it would double it.
        text = {
            k: param_text(v) if isinstance(v, (list, tuple)) else _escape_param(param_text(v))
            for k, v in (params or {}).items()
        }
        # A trailing semicolon would end the statement before the SETTINGS clause below.
        sql = sql.strip().rstrip(";").rstrip()
        raw = self._run(
            sql + "\nSETTINGS output_format_json_quote_64bit_integers = 0",
            "JSONCompact",
            text,
        )
        return parse_json_compact(raw)

    def command(self, sql: str) -> None:
        self._run(sql, "CSV", None)

    def close(self) -> None:
        self._session.close()

    def _absorb_partial_output(self) -> None:
        # chDB keeps what a query had written before it failed (a JSON head with no rows) and
        # hands it out in front of the next query's result; a throwaway query takes it.
        # A session broken beyond that fails this too; the next real query will say so.
        with contextlib.suppress(Exception):
            self._session.query("SELECT 1", "CSV")

    def _run(self, sql: str, fmt: str, params: Mapping[str, str] | None) -> str:
        try:
            result = self._session.query(sql, fmt, params=dict(params) if params else None)
        except Exception as exc:
            self._absorb_partial_output()
            raise StoreError(str(exc).strip().splitlines()[0]) from exc
        return result.bytes().decode("utf-8", errors="replace")
