"""Issue 12, deliverable 9 (the HTTP part): property-based fuzzing of requests to `serve`.

Two generators: SQL for the reader, composed from the pieces an attacker would combine (tables
outside the audit database, file and network table functions, functions that read the host, CTE
names that shadow tables, SETTINGS clauses, URL settings, quoting, comments and case), and raw
HTTP (request lines, headers, chunked and compressed bodies, lengths that lie). Whatever comes
in, the server answers (or closes) within a bounded time, keeps serving, never connects out, and
no reply carries the secret file's text or the row outside the audit database.
"""

from __future__ import annotations

import bz2
import gzip
import socket
import time
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.serve_harness import USERS, Target, leaked, served

pytestmark = pytest.mark.chdb

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANSWER_S = 15.0
"""Longest any request may go unanswered: the reader's time limit plus a wide margin."""


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with served(tmp_path_factory.mktemp("fuzz")) as t:
        # Set on the running server rather than passed to it, so that the fuzzer also runs
        # against the old server (which has neither) and shows what got through there.
        try:
            from aigc_audit.consumers.store.reader_policy import ReaderLimits
        except ImportError:  # the old server
            pass
        else:
            t.server.api.limits = ReaderLimits(max_execution_time_s=2, max_memory_bytes=256 << 20)
        t.server._httpd.max_body_bytes = 1 << 20
        yield t


def alive(target: Target) -> None:
    assert target.server._thread is not None and target.server._thread.is_alive()
    assert target.code("SELECT 1", timeout=ANSWER_S) == (0, b"1\n")
    assert target.listener.hits == []


# -- SQL for the reader --------------------------------------------------------------------


def _tables(target: Target) -> list[str]:
    secret, directory, port = target.secret, target.data_dir, target.listener.port
    return [
        "audit.generations",
        "audit.batches",
        "generations",
        "system.one",
        "numbers(3)",
        "values('a UInt8', 1)",
        "t",
        "secrets",
        "processes",
        "default.secrets",
        "system.processes",
        "system.tables",
        "system.server_settings",
        "information_schema.tables",
        f"file('{secret}', 'LineAsString')",
        f"filesystem('{directory}')",
        f"url('http://127.0.0.1:{port}/', 'LineAsString', 's String')",
        f"cosn('http://127.0.0.1:{port}/b/k', 'LineAsString', 's String')",
        "eval('SELECT * FROM default.secrets')",
        "merge('default', '.*')",
        "view(SELECT * FROM default.secrets)",
        f"remote('127.0.0.1:{port}', default.secrets)",
        "{t:Identifier}",
    ]


EXPRESSIONS = [
    "1",
    "*",
    "count()",
    "s",
    "name",
    "'x'",
    "{p:String}",
    "arrayJoin([1, 2])",
    "sumIf(1, 1)",
    "toString(now())",
    "(SELECT any(s) FROM default.secrets)",
    "(SELECT 1)",
    "1 IN default.secrets",
    "1 IN (SELECT 1 FROM system.processes)",
    "getServerSetting('path')",
    "getSetting('max_execution_time')",
    "hostName()",
    "dictGet('d', 'a', 1)",
    "joinGet('default.secrets', 's', 1)",
    "arrayMap(x -> x, [1])",
    "CAST(1 AS String)",
]
CTE_NAMES = ["secrets", "processes", "t", "tables", "x"]
SETTINGS_CLAUSES = [
    "",
    "",
    " SETTINGS max_execution_time = 0",
    " SETTINGS allow_experimental_eval_table_function = 1",
    " SETTINGS readonly = 0",
    " FORMAT JSONCompact",
    " FORMAT TSVWithNames",
]
URL_SETTINGS = [
    {},
    {},
    {"database": "default"},
    {"database": "system"},
    {"database": "audit"},
    {"allow_experimental_eval_table_function": "1"},
    {"max_execution_time": "0"},
    {"readonly": "0"},
    {"output_format_json_quote_64bit_integers": "1"},
]


def _spell(draw: st.DrawFn, word: str) -> str:
    """A table or column name as the lexer may meet it: bare, `quoted`, "quoted", commented."""
    if "(" in word or "{" in word or "'" in word:
        return word
    parts = word.split(".")
    style = draw(st.sampled_from(["bare", "backtick", "double", "comment", "upper"]))
    if style == "backtick":
        parts = [f"`{p}`" for p in parts]
    elif style == "double":
        parts = [f'"{p}"' for p in parts]
    elif style == "comment":
        return "/* c */".join(parts[:1]) + "".join(f"/**/.{p}" for p in parts[1:])
    elif style == "upper":
        parts = [p.upper() for p in parts]
    return ".".join(parts)


@st.composite
def reader_queries(draw: st.DrawFn, tables: list[str]) -> tuple[str, dict[str, str]]:
    keyword = draw(st.sampled_from(["SELECT", "select", "SeLeCt"]))
    exprs = draw(st.lists(st.sampled_from(EXPRESSIONS), min_size=1, max_size=3))
    table = _spell(draw, draw(st.sampled_from(tables)))
    sql = f"{keyword} {', '.join(exprs)} FROM {table}"
    if draw(st.booleans()):
        sql += f" AS a JOIN {_spell(draw, draw(st.sampled_from(tables)))} AS b ON 1"
    if draw(st.booleans()):
        sql += f" WHERE {draw(st.sampled_from(EXPRESSIONS))} IS NOT NULL"
    if draw(st.booleans()):
        sql += f" UNION ALL SELECT {draw(st.sampled_from(EXPRESSIONS))}"
    if draw(st.booleans()):
        name = draw(st.sampled_from(CTE_NAMES))
        inner = draw(
            st.sampled_from(["SELECT 1", f"SELECT * FROM {draw(st.sampled_from(tables))}"])
        )
        where = draw(st.sampled_from(["outer", "inner"]))
        if where == "outer":
            sql = f"WITH {name} AS ({inner}) {sql}"
        else:  # a CTE in a sibling scope does not cover the outer FROM
            sql = f"SELECT * FROM (WITH {name} AS ({inner}) SELECT 1), ({sql})"
    sql += draw(st.sampled_from(SETTINGS_CLAUSES))
    if draw(st.integers(0, 9)) == 0:  # noise anywhere
        at = draw(st.integers(0, len(sql)))
        noise = draw(st.text(alphabet="();,'`\"/*-#\n\\ {}:x$", max_size=6))
        sql = sql[:at] + noise + sql[at:]
    params = dict(draw(st.sampled_from(URL_SETTINGS)))
    params["param_p"] = "v"
    params["param_t"] = draw(st.sampled_from(["default.secrets", "system.processes", "t"]))
    return sql, params


def test_fuzzed_reader_sql_never_gets_out(target: Target) -> None:
    tables = _tables(target)

    @FUZZ
    @given(reader_queries(tables))
    def check(case: tuple[str, dict[str, str]]) -> None:
        sql, params = case
        started = time.monotonic()
        status, headers, body = target.request(sql, timeout=ANSWER_S, **params)
        assert time.monotonic() - started < ANSWER_S
        assert not leaked(body), (sql, params, body[:300])
        if status != 200:
            assert headers.get("X-ClickHouse-Exception-Code"), (sql, status, body[:200])
        assert target.listener.hits == [], sql

    check()
    alive(target)


# -- raw HTTP ------------------------------------------------------------------------------

_COMPRESS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "bz2": bz2.compress,
    "identity": lambda b: b,
}


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["POST", "GET", "PUT", "HEAD", "OPTIONS", "P\x00ST", ""]))
    auth = draw(
        st.sampled_from(
            [
                f"user=reader&password={USERS['reader']}",
                f"user=writer&password={USERS['writer']}&readonly=1",
                "user=nobody",
                "",
            ]
        )
    )
    query = draw(
        st.sampled_from(
            ["", "&query=SELECT%201", "&query=SELECT", "&query=%00", "&database=system"]
        )
    )
    path = draw(st.sampled_from(["/", "/ping", "/play", "//", "/?", "*", "/%zz"]))
    target_path = f"{path}?{auth}{query}" if "?" not in path else f"{path}{auth}{query}"
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/9", "JUNK"]))
    sql = draw(
        st.sampled_from(
            [
                b"SELECT 1",
                b"SELECT * FROM default.secrets",
                b"INSERT INTO audit.batches FORMAT CSV\n1,2,3",
                b"",
            ]
        )
    )
    garbage = draw(st.binary(max_size=64))
    encoding = draw(st.sampled_from([*sorted(_COMPRESS), "br", "zstd", "lz4", "xz", "snap"]))
    body = _COMPRESS[encoding](sql) if encoding in _COMPRESS else garbage
    if draw(st.booleans()):
        body = body + garbage
    headers = ["Host: x", f"Content-Encoding: {encoding}"]
    framing = draw(st.sampled_from(["length", "short", "long", "chunked", "bad-chunk", "none"]))
    if framing == "length":
        headers.append(f"Content-Length: {len(body)}")
    elif framing == "short":
        headers.append(f"Content-Length: {max(len(body) - 3, 0)}")
    elif framing == "long":
        headers.append(f"Content-Length: {len(body) + draw(st.integers(1, 10**12))}")
    elif framing in ("chunked", "bad-chunk"):
        headers.append("Transfer-Encoding: chunked")
        if framing == "chunked":
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        else:
            body = draw(st.sampled_from([b"zz\r\n", b"-5\r\nabc", b"fffffffffff\r\n", b"1;x\r\n"]))
    if draw(st.booleans()):
        headers.append(
            draw(
                st.sampled_from(
                    [
                        "Authorization: Basic !!!",
                        "Authorization: Bearer x",
                        "Content-Type: multipart/form-data; boundary=zz",
                        "X-ClickHouse-User: reader",
                        "X-ClickHouse-Format: Debug",
                        "Content-Length: -1",
                        "Content-Length: abc",
                    ]
                )
            )
        )
    head = f"{method} {target_path} {version}\r\n" + "".join(f"{h}\r\n" for h in headers)
    return head.encode("latin-1", "replace") + b"\r\n" + body


def _exchange(target: Target, raw: bytes) -> bytes:
    with socket.create_connection((target.server.host, target.server.port), timeout=ANSWER_S) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)  # a body shorter than announced ends here, not at a timeout
        reply = b""
        started = time.monotonic()
        while chunk := s.recv(65536):
            reply += chunk
            assert time.monotonic() - started < ANSWER_S
        return reply


def test_fuzzed_http_requests_are_answered_and_harmless(target: Target) -> None:
    @FUZZ
    @given(raw_requests())
    def check(raw: bytes) -> None:
        reply = _exchange(target, raw)
        # An answer in HTTP, or a closed connection for what is not HTTP at all (an unknown
        # HTTP version gets the bare error page HTTP/0.9 allows).
        http_answer = reply.startswith(b"HTTP/") or b"Error code: 400" in reply
        assert reply == b"" or http_answer, reply[:200]
        assert not leaked(reply), (raw[:300], reply[:300])

    check()
    alive(target)
