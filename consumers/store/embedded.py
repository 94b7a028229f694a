"""The embedded store: the ClickHouse engine in-process (chDB) over a local directory."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from consumers.store.base import QueryResult, StoreError
from consumers.store.migrations import MigrationContext
from consumers.store.migrations import migrate as run_migrations
from consumers.store.results import parse_json_compact
from consumers.store.tables import Table


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


def _json_value(value: Any, binary: bool) -> Any:
    if value is None:
        return None
    if binary:
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, (uuid.UUID, date)):
        return str(value)
    return value


def _select_expr(name: str, ctype: str, binary: bool) -> str:
    if not binary:
        return name
    if ctype.startswith("Nullable"):
        return f"if(isNull({name}), NULL, base64Decode(assumeNotNull({name})))"
    return f"base64Decode({name})"


class EmbeddedStore:
    """A store in a local directory, run by chDB. One process at a time owns the directory."""

    def __init__(self, path: Path, database: str = "audit") -> None:
        import chdb.session  # the platform extra; imported late so the CLI starts fast

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.database = database
        try:
            self._session = chdb.session.Session(str(path))
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
        binary = table.binary_columns
        names = table.column_names
        lines = "\n".join(
            json.dumps(
                {n: _json_value(row.get(n), n in binary) for n in names},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            for row in rows
        )
        # Binary columns travel as base64 text and are decoded by the engine: JSON cannot carry
        # arbitrary bytes exactly.
        input_types = ", ".join(
            f"{n} {'Nullable(String)' if n in binary else t}" for n, t in table.columns
        ).replace("'", "\\'")
        select = ", ".join(_select_expr(n, t, n in binary) for n, t in table.columns)
        sql = (
            f"INSERT INTO {self.database}.{table.name} ({', '.join(names)}) "
            f"SELECT {select} FROM format(JSONEachRow, '{input_types}', {{rows:String}}) "
            f"SETTINGS insert_deduplication_token = {_quote(token)}"
        )
        self._run(sql, "CSV", {"rows": _escape_param(lines)})

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

    def _run(self, sql: str, fmt: str, params: Mapping[str, str] | None) -> str:
        try:
            result = self._session.query(sql, fmt, params=dict(params) if params else None)
        except Exception as exc:
            raise StoreError(str(exc).strip().splitlines()[0]) from exc
        return result.bytes().decode("utf-8", errors="replace")
