"""ClickHouse's HTTP interface, request by request, over one chDB session.

:class:`ChdbHttp` turns a parsed HTTP request (URL parameters, headers, body) into the reply a
ClickHouse server would give, running the statement on a chDB session under a lock. Sockets,
chunked bodies and compression are the caller's business (``server.py``).

What ClickHouse does and this does too: the query in the ``query`` parameter and/or the body
(the two joined by a newline); ``param_<name>`` query parameters; settings as URL parameters;
``database`` and ``default_format`` (TabSeparated unless set); a ``FORMAT`` clause chooses the
output; ``INSERT ... FORMAT f`` with the data after the statement; users with passwords (held
as salted hashes only, ``passwords.py``), and read-only users, confined by allow-list
(``reader_policy.py``: ClickHouse's parser decides what a statement reads; the server's limits
and ``readonly = 1`` run with every statement); GET requests are read-only; errors as
``Code: N. DB::Exception: ...`` with ``X-ClickHouse-Exception-Code``. What it does not:
sessions (``session_id`` is accepted and ignored, so ``SET`` and ``USE`` statements are no-ops,
as they are on a server without a session), ClickHouse's own ``compress``/``decompress``
framing, external data, progress headers, and more than one statement per request.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_audit.consumers.store.passwords import hash_password, verify_password
from aigc_audit.consumers.store.reader_policy import ReaderLimits, ReaderPolicy, ReaderRefusal
from aigc_audit.consumers.store.sqlscan import SqlScanError, Statement, analyse

HTTP_ONLY_PARAMS = frozenset(
    {"query", "user", "password", "database", "default_format", "query_id", "quota_key"}
    | {"session_id", "session_timeout", "session_check", "close_session", "role", "readonly"}
    | {"compress", "decompress", "buffer_size", "wait_end_of_query", "client_protocol_version"}
    | {"send_progress_in_http_headers", "http_headers_progress_interval_ms", "stacktrace"}
    | {"enable_http_compression", "http_zlib_compression_level", "add_http_cors_header"}
    | {"cancel_http_readonly_queries_on_client_close", "http_response_buffer_size"}
)
"""URL parameters that steer the HTTP exchange rather than the query: interpreted here or
ignored, never passed to the engine as settings."""

PINNED_SETTINGS = frozenset(
    {"dialect", "implicit_select", "max_query_size", "max_parser_depth", "max_parser_backtracks"}
    | {"max_ast_depth", "max_ast_elements", "max_expanded_ast_elements", "compatibility"}
    | {"max_memory_usage", "max_memory_usage_for_user", "max_untracked_memory", "profile"}
)
"""Settings a request may not change. A request's settings are SET on the shared session and
put back afterwards; these would stop the statement that puts them back from being parsed or
run (a PRQL dialect, a 1-byte query limit, a 1-byte memory limit), breaking the store for all."""

logger = logging.getLogger(__name__)

_PYTHON_ONLY_FORMATS = frozenset({"dataframe", "arrowtable", "datastore", "debug"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE = re.compile(r"Code: (\d+)")
_WRAPPER_SCOPE = re.compile(r": In scope SELECT parseQueryToJSON\(.*\)(?=\. \(\w+\)$)", re.S)
_STATUS = {  # ClickHouse's src/Server/HTTP/exceptionCodeToHTTPStatus.cpp; the rest are 500
    194: 401,  # REQUIRED_PASSWORD
    **dict.fromkeys((192, 193, 497, 512, 516), 403),  # bad credentials, ACCESS_DENIED
    **dict.fromkeys((6, 8, 15, 25, 26, 27, 36, 37, 38, 41, 44, 53, 62, 72, 117, 123), 400),
    **dict.fromkeys((167, 168, 223, 321, 376, 427, 441, 675, 676), 400),  # parse errors and AST
    **dict.fromkeys((46, 47, 50, 56, 60, 63, 73, 78, 81, 115, 152, 336, 511), 404),  # UNKNOWN_*
    229: 413,  # QUERY_IS_TOO_LARGE
    48: 501,  # NOT_IMPLEMENTED
    **dict.fromkeys((76, 209, 439), 503),  # CANNOT_OPEN_FILE, SOCKET_TIMEOUT, CANNOT_SCHEDULE_TASK
    381: 411,  # HTTP_LENGTH_REQUIRED
    159: 408,  # TIMEOUT_EXCEEDED
    779: 415,  # UNSUPPORTED_MEDIA_TYPE
}
_CONTENT_TYPES = (
    ("json", "application/json; charset=UTF-8"),
    ("tabseparated", "text/tab-separated-values; charset=UTF-8"),
    ("tsv", "text/tab-separated-values; charset=UTF-8"),
    ("csv", "text/csv; charset=UTF-8; header=absent"),
    ("pretty", "text/plain; charset=UTF-8"),
    ("vertical", "text/plain; charset=UTF-8"),
    ("markdown", "text/markdown; charset=UTF-8"),
)


class ClickHouseError(Exception):
    """A refusal in ClickHouse's words: ``text`` starts ``Code: N. DB::Exception:``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text

    @classmethod
    def of(cls, code: int, name: str, message: str) -> ClickHouseError:
        return cls(code, f"Code: {code}. DB::Exception: {message}. ({name})")

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        text = str(exc).strip() or type(exc).__name__
        match = _CODE.search(text)
        if match is None:
            return cls.of(1001, "STD_EXCEPTION", text)
        return cls(int(match.group(1)), text[match.start() :])


@dataclass
class Request:
    method: str
    params: dict[str, str]
    """URL parameters, and the fields of a multipart/form-data body."""
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes
    user: str
    password: str


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _User:
    name: str
    readonly: bool


class ChdbHttp:
    """ClickHouse HTTP semantics over one chDB session; thread-safe (the session is locked).

    ``run(sql, fmt, params)`` runs one statement on the session and returns chDB's result;
    ``users`` maps names to password hashes (``passwords.hash_password``); users in
    ``readonly_users`` may only read, and only what :class:`ReaderPolicy` allows of
    ``databases``, under ``limits``. ``workdir`` is a private directory for insert data (chDB
    reads an insert's data from a file).
    """

    def __init__(
        self,
        run: Callable[[str, str, dict[str, str] | None], Any],
        lock: threading.RLock,
        users: Mapping[str, str],
        readonly_users: Collection[str],
        workdir: Path,
        display_name: str = "aigc-audit",
        *,
        databases: Collection[str] = ("audit",),
        limits: ReaderLimits | None = None,
    ) -> None:
        self._run = run
        self._lock = lock
        self._users = dict(users)
        self._readonly = frozenset(readonly_users)
        self._workdir = workdir
        self.display_name = display_name
        self.limits = limits or ReaderLimits()
        self._closed = False
        # Verifying a scrypt hash costs ~30 ms; a client sends many requests with the same
        # credentials, so a success is remembered as a keyed digest (never the password).
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, str] = {}
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))
        with lock:
            self.timezone = self._engine("SELECT timezone()").bytes().decode().strip()
            raw = self._engine("SELECT name, value, changed FROM system.settings", "JSONCompact")
            self.policy = ReaderPolicy.from_engine(
                lambda sql: bytes(self._engine(sql).bytes()), databases
            )
        # The session's own values, to skip a SET that changes nothing and to restore after one:
        # a setting chDB itself changed is put back to its value, any other to DEFAULT.
        rows = json.loads(raw.bytes())["data"]
        self._values: dict[str, str] = {name: value for name, value, _ in rows}
        self._restore: dict[str, str] = {
            name: _quote(value) if changed else "DEFAULT" for name, value, changed in rows
        }

    # -- the request ----------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """The reply a ClickHouse server would give (errors included; never raises)."""
        started = time.monotonic_ns()
        query_id = request.params.get("query_id") or str(uuid.uuid4())
        try:
            reply, stats = self._execute(request, self._authenticate(request))
        except ClickHouseError as exc:
            reply, stats = self.error(exc), {}
        keys = ("read_rows", "read_bytes", "written_rows", "written_bytes", "total_rows_to_read")
        summary = {key: str(stats.get(key, 0)) for key in keys}
        summary.update(result_rows="0", elapsed_ns=str(time.monotonic_ns() - started))
        reply.headers.update(
            {
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Timezone": request.params.get("session_timezone") or self.timezone,
                "X-ClickHouse-Server-Display-Name": self.display_name,
                "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
            }
        )
        return reply

    def close(self) -> None:
        """Refuse every request from now on; returns once no statement is under way."""
        with self._lock:
            self._closed = True

    def error(self, exc: ClickHouseError) -> Reply:
        """The reply for a refused request: ClickHouse's status, code header and body."""
        return Reply(
            _STATUS.get(exc.code, 500),
            exc.text.encode("utf-8", errors="replace") + b"\n",
            {
                "X-ClickHouse-Exception-Code": str(exc.code),
                "Content-Type": "text/plain; charset=UTF-8",
            },
        )

    def _authenticate(self, request: Request) -> _User:
        name, stored = request.user, self._users.get(request.user)
        key = hmac.digest(
            self._cache_key,
            name.encode("utf-8", "surrogatepass")
            + b"\0"
            + request.password.encode("utf-8", "surrogatepass"),
            "sha256",
        )
        if self._verified.get(key) == name and stored is not None:
            return _User(name, name in self._readonly)
        # An unknown user costs as much as a wrong password, so names cannot be probed.
        good = verify_password(request.password, stored or self._dummy_hash)
        if stored is None or not good:
            raise ClickHouseError.of(
                516,
                "AUTHENTICATION_FAILED",
                f"{name}: Authentication failed: password is incorrect, or there is no user "
                "with such name",
            )
        if len(self._verified) > 256:
            self._verified.clear()
        self._verified[key] = name
        return _User(name, name in self._readonly)

    def _execute(self, request: Request, user: _User) -> tuple[Reply, dict[str, int]]:
        params = request.params
        for name in ("compress", "decompress"):
            if params.get(name, "0") not in ("", "0"):
                raise _unsupported(f"the {name} parameter (ClickHouse's compressed framing)")
        query, body = params.get("query", ""), request.body
        text = (query.encode() + b"\n" + body if body else query.encode()) if query else body
        try:
            stmt = analyse(text.decode("latin-1"))
        except SqlScanError as exc:
            raise ClickHouseError.of(62, "SYNTAX_ERROR", str(exc)) from None
        if not stmt.keyword:
            raise ClickHouseError.of(62, "SYNTAX_ERROR", "Empty query")
        try:
            sql = text[: stmt.sql_end].decode("utf-8")
        except UnicodeDecodeError:
            raise ClickHouseError.of(36, "BAD_ARGUMENTS", "The query is not UTF-8") from None
        self._police(stmt, user, request)
        if stmt.keyword in ("SET", "USE"):
            return Reply(200, b""), {}  # without a session they change nothing, as on a server
        # A reader's settings never reach the shared session (reader_policy judges them).
        settings, query_params = _split_params(params, pinned=not user.readonly)
        fmt = params.get("default_format") or request.headers.get("x-clickhouse-format")
        fmt = _format_name(fmt or "TabSeparated")
        database = params.get("database") or request.headers.get("x-clickhouse-database", "")
        if user.readonly:
            return self._read(sql, stmt, user, settings, query_params, fmt, database)
        data_file = None
        if stmt.data_start is not None:
            # chDB cannot read an HTTP body: the data goes to a file the insert reads back.
            data_file = self._workdir / f"insert-{uuid.uuid4().hex}.data"
            data_file.write_bytes(text[stmt.data_start :])
        try:
            with self._lock:
                if self._closed:
                    raise ClickHouseError.of(236, "ABORTED", "The store server is stopping")
                with self._context(settings, database):
                    if data_file is not None:
                        result = self._insert(sql, stmt, data_file)
                    else:
                        result = self._engine(sql, fmt, query_params)
        finally:
            if data_file is not None:
                data_file.unlink(missing_ok=True)
        return _reply(result, stmt, fmt), _stats(result)

    def _read(
        self,
        sql: str,
        stmt: Statement,
        user: _User,
        settings: dict[str, str],
        query_params: dict[str, str],
        fmt: str,
        database: str,
    ) -> tuple[Reply, dict[str, int]]:
        """A read-only user's statement: its settings and what it reads judged first, then run
        with the server's limits and ``readonly = 1`` appended as its own SETTINGS clause. The
        request's settings never touch the shared session."""
        try:
            requested = self.limits.request_settings(user.name, settings)
        except ReaderRefusal as exc:
            raise ClickHouseError.of(exc.code, exc.name, exc.message) from None
        if "\x00" in sql:
            raise ClickHouseError.of(62, "SYNTAX_ERROR", "A NUL byte in the query")
        if stmt.keyword not in ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS"):
            raise ClickHouseError.of(
                164,
                "READONLY",
                f"{user.name}: Cannot execute query in readonly mode: {stmt.keyword} is not "
                "allowed",
            )
        body = sql.rstrip()
        limited = body + self.limits.clause(requested)
        current = database or "default"
        with self._lock:
            if self._closed:
                raise ClickHouseError.of(236, "ABORTED", "The store server is stopping")
            try:
                if stmt.keyword in ("DESCRIBE", "DESC", "EXISTS"):
                    explained = self._engine("EXPLAIN AST " + body, "TabSeparatedRaw", query_params)
                    lines = bytes(explained.bytes()).decode("utf-8", "replace").split("\n")
                    self.policy.check_explained(lines, current)
                else:
                    self.policy.check_tree(self._parse(body, user), current)
            except ReaderRefusal as exc:
                raise ClickHouseError.of(exc.code, exc.name, exc.message) from None
            with self._context({}, database):
                result = self._engine(limited, fmt, query_params)
        return _reply(result, stmt, fmt), _stats(result)

    def _parse(self, sql: str, user: _User) -> Any:
        """ClickHouse's parse of ``sql`` as a tree (``parseQueryToJSON`` only parses). Its
        errors are the statement's own, without the wrapper's scope."""
        try:
            parsed = self._engine(f"SELECT parseQueryToJSON({_quote(sql)})", "TabSeparatedRaw")
        except ClickHouseError as exc:
            if exc.code == 36 and "does not support JSON serialization" in exc.text:
                # A statement kind the function cannot show (SHOW PROCESSLIST, SHOW GRANTS):
                # none of them is on the allow-list.
                raise ClickHouseError.of(
                    164,
                    "READONLY",
                    f"{user.name}: Cannot execute query in readonly mode: this statement is "
                    "not allowed",
                ) from None
            text = _WRAPPER_SCOPE.sub("", exc.text)
            raise ClickHouseError(exc.code, text) from None
        return json.loads(bytes(parsed.bytes()))

    def _police(self, stmt: Statement, user: _User, request: Request) -> None:
        if stmt.file_io:
            raise _unsupported("INTO OUTFILE and FROM INFILE (they would touch the server's files)")
        readonly = (
            user.readonly
            or request.method == "GET"
            or request.params.get("readonly", "0") not in ("", "0")
        )
        refusal = stmt.read_only_refusal() if readonly else None
        if refusal:
            raise ClickHouseError.of(
                164, "READONLY", f"{user.name}: Cannot execute query in readonly mode: {refusal}"
            )

    # -- on the session (the lock held) ---------------------------------------------------

    @contextmanager
    def _context(self, settings: dict[str, str], database: str) -> Iterator[None]:
        """The request's settings and database for the duration, then the session put back: it
        is shared by every request and by the owner process."""
        changed = {k: v for k, v in settings.items() if self._values.get(k) != v}
        use = bool(database) and database != "default"
        try:
            if changed:
                self._engine("SET " + ", ".join(f"{k} = {_quote(v)}" for k, v in changed.items()))
            if use:
                self._engine(f"USE {_quote_ident(database)}")
            yield
        finally:
            if use:
                self._engine("USE default")
            self._put_back([k for k in changed if k in self._restore])

    def _put_back(self, names: list[str]) -> None:
        if not names:
            return
        try:
            self._engine("SET " + ", ".join(f"{k} = {self._restore[k]}" for k in names))
        except ClickHouseError:
            for name in names:  # one at a time, so one bad setting cannot keep the others
                try:
                    self._engine(f"SET {name} = {self._restore[name]}")
                except ClickHouseError as exc:
                    logger.warning("cannot restore setting %s: %s", name, exc.text)

    def _insert(self, sql: str, stmt: Statement, data_file: Path) -> Any:
        if stmt.insert_function:
            raise _unsupported("INSERT INTO FUNCTION with data")
        if not stmt.insert_table:
            raise ClickHouseError.of(62, "SYNTAX_ERROR", "INSERT needs a [database.]table target")
        described = json.loads(
            self._engine(f"DESCRIBE TABLE {stmt.insert_table}", "JSONCompact", None).bytes()
        )
        types = {
            row[0]: row[1] for row in described["data"] if row[2] not in ("ALIAS", "MATERIALIZED")
        }
        columns = stmt.insert_columns or tuple(types)
        missing = [c for c in columns if c not in types]
        if missing:
            raise ClickHouseError.of(
                16,
                "NO_SUCH_COLUMN_IN_TABLE",
                f"No such column {missing[0]} in table {stmt.insert_table}",
            )
        structure = ", ".join(f"{_quote_ident(c)} {types[c]}" for c in columns)
        return self._engine(
            f"{sql.rstrip()} SELECT * FROM file({_quote(str(data_file))}, "
            f"{_quote(stmt.insert_format)}, {_quote(structure)})"
        )

    def _engine(
        self, sql: str, fmt: str = "TabSeparated", params: dict[str, str] | None = None
    ) -> Any:
        try:
            return self._run(sql, fmt, params)
        except Exception as exc:  # chDB raises RuntimeError subclasses carrying ClickHouse's text
            error = ClickHouseError.from_engine(exc)
        # chDB hands what a failed query had written (a JSON head) out in front of the next
        # query's result; a throwaway query takes it.
        with suppress(Exception):  # a broken session fails the next real query anyway
            self._run("SELECT 1", "CSV", None)
        raise error


def _reply(result: Any, stmt: Statement, fmt: str) -> Reply:
    """A statement's answer: its result in the format it asked for (its own ``FORMAT`` clause,
    else the request's), with ClickHouse's format headers when it produces a result."""
    reply = Reply(200, result.bytes() if result is not None else b"")
    if stmt.produces_result:
        out = stmt.output_format or fmt
        reply.headers["X-ClickHouse-Format"] = out
        reply.headers["Content-Type"] = _content_type(out)
    return reply


def _split_params(
    params: Mapping[str, str], *, pinned: bool = True
) -> tuple[dict[str, str], dict[str, str]]:
    """(settings, query parameters) of a request's URL parameters."""
    settings: dict[str, str] = {}
    query_params: dict[str, str] = {}
    for key, value in params.items():
        if key.startswith("param_"):
            query_params[key[len("param_") :]] = value
        elif key in HTTP_ONLY_PARAMS or key.startswith("http_"):
            continue
        elif pinned and key in PINNED_SETTINGS:
            raise ClickHouseError.of(
                452, "SETTING_CONSTRAINT_VIOLATION", f"Setting {key} should not be changed"
            )
        elif _NAME.fullmatch(key):
            settings[key] = value
        else:
            raise ClickHouseError.of(115, "UNKNOWN_SETTING", f"Unknown setting '{key}'")
    return settings, query_params


def _format_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.lower() in _PYTHON_ONLY_FORMATS:
        raise ClickHouseError.of(73, "UNKNOWN_FORMAT", f"Unknown format {name}")
    return name


def _content_type(fmt: str) -> str:
    lower = fmt.lower()
    for prefix, content_type in _CONTENT_TYPES:
        if lower.startswith(prefix):
            return content_type
    return "application/octet-stream"


# X-ClickHouse-Summary's counters and the chDB result methods giving them: read_rows: rows_read...
_STATS = {f"{a}_{b}": f"{b}_{a}" for a in ("read", "written") for b in ("rows", "bytes")}


def _stats(result: Any) -> dict[str, int]:
    """The summary counters of a chDB result (none for a statement that returned early)."""
    getters = {key: getattr(result, method, None) for key, method in _STATS.items()}
    return {key: int(getter()) for key, getter in getters.items() if callable(getter)}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _unsupported(what: str) -> ClickHouseError:
    return ClickHouseError.of(344, "SUPPORT_IS_DISABLED", f"{what} is not supported here")
