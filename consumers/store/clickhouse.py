"""The store on a ClickHouse server, through clickhouse-connect over HTTP(S).

The server is a real ClickHouse in production, or a :class:`consumers.store.server.StoreServer`
serving the embedded store to the other processes of one machine. The tables are created by the
same DDL as the embedded store's (``tables.py``), and results come back in the same shapes
(``results.py``), so that callers cannot tell the two stores apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from aigc_audit.consumers.store.base import QueryResult, StoreError
from aigc_audit.consumers.store.embedded import param_text
from aigc_audit.consumers.store.migrations import MigrationContext
from aigc_audit.consumers.store.migrations import migrate as run_migrations
from aigc_audit.consumers.store.results import one_line, parse_json_compact
from aigc_audit.consumers.store.tables import Table

T = TypeVar("T")

DEFAULT_PORTS = {"http": 8123, "https": 8443}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATETIME64 = re.compile(r"DateTime64\((\d)")
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")


class ClickHouseStore:
    """A store in ``database`` on the ClickHouse server at ``host:port``.

    The client is made without a session and without compression: it is safe to share between
    threads, and its requests are plain ones every ClickHouse HTTP endpoint serves. Raises
    StoreError (``cannot reach ClickHouse at host:port: ...``) if the server does not answer, or
    with the server's refusal (``Code: 516. ...``) for bad credentials.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str = "default",
        password: str = "",
        database: str = "audit",
        *,
        secure: bool = False,
        connect_timeout: int = 10,
        send_receive_timeout: int = 300,
    ) -> None:
        import clickhouse_connect  # the platform extra; imported late so the CLI starts fast

        if not _DATABASE.fullmatch(database):
            raise StoreError(f"bad database name {database!r}: letters, digits and _ only")
        self.database = database
        self.address = f"{host}:{port}"
        self._client = self._call(
            lambda: clickhouse_connect.get_client(
                host=host,
                port=port,
                username=username,
                password=password,
                secure=secure,
                compress=False,
                autogenerate_session_id=False,
                connect_timeout=connect_timeout,
                send_receive_timeout=send_receive_timeout,
            )
        )

    @classmethod
    def from_url(cls, url: str) -> ClickHouseStore:
        """A store from ``http[s]://user:password@host[:port]/database`` (user and password
        percent-encoded; port 8123 or 8443 by default; database ``audit`` by default)."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise StoreError(f"not a ClickHouse URL (http[s]://user:password@host:port/db): {url}")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise StoreError(f"bad port in ClickHouse URL: {exc}") from None
        return cls(
            parts.hostname,
            port,
            unquote(parts.username or "default"),
            unquote(parts.password or ""),
            parts.path.strip("/") or "audit",
            secure=parts.scheme == "https",
        )

    def migrate(self) -> None:
        """Bring the schema up to date (``consumers.store.migrations``), with the embedded
        store's DDL; safe to run twice, and only reads when there is nothing to do. TTLs are left
        as they are: the configured retention is applied by ``aigc-audit migrate``.

        On a cluster store (created by ``aigc-audit migrate`` with ``clickhouse_cluster`` set)
        this migrates every node ``ON CLUSTER``, found from the store itself. The tables this
        store writes are Distributed ones there: give its user a profile with
        ``insert_distributed_sync = 1`` (``infra/clickhouse/users.d/aigc-audit.xml``), so an
        insert returns only once every shard holds its rows and the materialiser's offset
        commit after it stays safe; replicated tables deduplicate the insert tokens.
        """
        run_migrations(self, MigrationContext(self.database))

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]], *, token: str) -> None:
        """Insert rows (dicts by column name) as one Native block carrying ``token`` as its
        insert deduplication token, so the server absorbs a retried insert."""
        if not rows:
            return
        names = table.column_names
        converters = [_converter(ctype) for _, ctype in table.columns]
        data = [
            [conv(row.get(n)) for n, conv in zip(names, converters, strict=True)] for row in rows
        ]
        self._call(
            lambda: self._client.insert(
                table.name,
                data,
                column_names=list(names),
                database=self.database,
                column_type_names=[ctype for _, ctype in table.columns],
                settings={"insert_deduplication_token": token},
            )
        )

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a read query; params bind ``{name:Type}`` placeholders as server-side parameters,
        scalars in the text form the embedded store gives them (:func:`param_text`)."""
        used = set(_PLACEHOLDER.findall(sql))
        text = {k: _param(v) for k, v in (params or {}).items() if k in used}
        # A trailing semicolon would end the statement before the FORMAT clause the client adds.
        sql = sql.strip().rstrip(";").rstrip()
        raw = self._call(
            lambda: self._client.raw_query(
                sql,
                parameters=text or None,
                fmt="JSONCompact",
                settings={"output_format_json_quote_64bit_integers": 0},
            )
        )
        return parse_json_compact(raw)

    def command(self, sql: str) -> None:
        self._call(lambda: self._client.command(sql))

    def close(self) -> None:
        self._call(self._client.close)

    def _call(self, action: Callable[[], T]) -> T:
        """Run ``action``; any failure becomes a one-line StoreError."""
        try:
            return action()
        except Exception as exc:
            raise StoreError(self._message(exc)) from exc

    def _message(self, exc: BaseException) -> str:
        from clickhouse_connect.driver.exceptions import OperationalError

        text = str(exc)
        if getattr(exc, "code", None) is not None and "Code:" in text:
            # "Received ClickHouse exception, code: N, server response: Code: N. DB::Exception:
            # ... (for url ...)": the server's own words are the part from "Code:".
            return one_line(re.sub(r" \(for url [^)]*\)\s*$", "", text[text.index("Code:") :]))
        cause = _os_error(exc)
        if cause is not None or isinstance(exc, OperationalError):
            reason = str(cause) if cause is not None else one_line(text)
            return f"cannot reach ClickHouse at {self.address}: {reason}"
        return one_line(f"{type(exc).__name__}: {text}")


class _Literal:
    """A parameter value clickhouse-connect must send as it is: it escapes a ``str`` once more,
    which an array's literal must not be (the server parses it as a literal, unescaped)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _param(value: Any) -> Any:
    if not isinstance(value, (list, tuple)):
        return param_text(value)  # clickhouse-connect escapes it; the server unescapes it
    return _Literal(_literal(value))


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, (bool, int, float)):
        return param_text(value)
    return "'" + param_text(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _converter(ctype: str) -> Callable[[Any], Any]:
    """How a value of that column type is handed to clickhouse-connect."""
    match = _DATETIME64.search(ctype)
    if match is None:
        return lambda value: value
    scale = int(match.group(1))

    def ticks(value: Any) -> Any:
        # Whole ticks from the exact difference. A naive time is read as UTC, as the embedded
        # store reads it (clickhouse-connect would read it in the local time zone).
        if isinstance(value, int):  # microseconds since the epoch, as rows carry them
            return value * 10 ** (scale - 6) if scale >= 6 else value // 10 ** (6 - scale)
        if not isinstance(value, datetime):
            return value
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        micros = (aware - _EPOCH) // timedelta(microseconds=1)
        return micros * 10 ** (scale - 6) if scale >= 6 else micros // 10 ** (6 - scale)

    return ticks


def _os_error(exc: BaseException) -> OSError | None:
    """The socket error under a transport failure (connection refused, unknown host...)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        reason = getattr(current, "reason", None)
        todo += [current.__cause__, current.__context__]
        if isinstance(reason, BaseException):
            todo.append(reason)
    return None
