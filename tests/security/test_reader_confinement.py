"""Issue 12, deliverable 1: the `serve` reader is confined by allow-list as ClickHouse's own
parser sees the query. One test per attack class the issue lists; each ran against the old
deny-list (sqlscan's DENIED_FUNCTIONS, chdb_http's PINNED_SETTINGS) and got through there.

Every reply is also searched for the secret file's text and for a row outside the audit
database (``serve_harness.leaked``): a refusal must not carry what it refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.serve_harness import Target, leaked, served

pytestmark = pytest.mark.chdb


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with served(tmp_path_factory.mktemp("confinement")) as t:
        yield t


def refused(target: Target, queries: list[str], **params: str) -> list[str]:
    """The queries of ``queries`` that were not refused, or whose reply leaked."""
    through = []
    for query in queries:
        code, body = target.code(query, **params)
        if code == 0 or leaked(body):
            through.append(f"{query!r} -> {code} {body[:120]!r}")
    return through


def test_files_cannot_be_read(target: Target) -> None:
    secret, directory = str(target.secret), str(target.data_dir)
    queries = [
        f"SELECT * FROM file('{secret}', 'LineAsString')",
        f"SELECT file('{secret}')",
        f"SELECT * FROM filesystem('{directory}')",
        f"SELECT content FROM filesystem('{directory}') WHERE is_regular_file",
        f"SELECT * FROM fileCluster('default', '{secret}', 'LineAsString')",
        f"DESCRIBE file('{secret}', 'LineAsString')",
        f"SELECT * FROM `file`('{secret}', 'LineAsString')",
        f"SELECT * FROM \"filesystem\"('{directory}')",
        f"SELECT * FROM FILE('{secret}', 'LineAsString')",
        f"SELECT * FROM view(SELECT * FROM file('{secret}', 'LineAsString'))",
        f"WITH (SELECT file('{secret}')) AS s SELECT s",
        f"SELECT 1 WHERE 1 IN (SELECT length(file('{secret}')))",
        "SELECT * FROM input('s String')",
        f"SELECT * FROM sqlite('{secret}', 't')",
        f"SELECT * FROM python('{secret}')",
    ]
    assert refused(target, queries) == []


def test_eval_cannot_be_switched_on(target: Target) -> None:
    # An experimental setting as a URL parameter, to run file() inside eval()'s string.
    inner = f"SELECT * FROM file(\\'{target.secret}\\', \\'LineAsString\\')"
    through = refused(
        target,
        [f"SELECT * FROM eval('{inner}')"],
        allow_experimental_eval_table_function="1",
    )
    through += refused(
        target,
        [f"SELECT * FROM eval('{inner}') SETTINGS allow_experimental_eval_table_function = 1"],
    )
    assert through == []


def test_no_connection_leaves_the_engine(target: Target) -> None:
    port = target.listener.port
    http = f"http://127.0.0.1:{port}"
    queries = [
        f"SELECT * FROM cosn('{http}/bucket/key', 'LineAsString', 's String')",
        f"SELECT * FROM url('{http}/x', 'LineAsString', 's String')",
        f"SELECT * FROM urlCluster('default', '{http}/x', 'LineAsString', 's String')",
        f"SELECT * FROM s3('{http}/bucket/key', 'LineAsString', 's String')",
        f"SELECT * FROM oss('{http}/bucket/key', 'LineAsString', 's String')",
        f"SELECT * FROM gcs('{http}/bucket/key', 'LineAsString', 's String')",
        f"SELECT * FROM iceberg('{http}/bucket/table')",
        f"SELECT * FROM deltaLake('{http}/bucket/table')",
        f"SELECT * FROM remote('127.0.0.1:{port}', system.one)",
        f"SELECT * FROM mysql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
        f"SELECT * FROM postgresql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
        f"SELECT * FROM mongodb('127.0.0.1:{port}', 'db', 't', 'u', 'p', 's String')",
        f"SELECT * FROM redis('127.0.0.1:{port}', 'k', 'k String')",
        f"SELECT * FROM prometheusQuery('{http}', 'up', 0)",
        f"SELECT * FROM arrowflight('127.0.0.1:{port}', 'x')",
        f"SELECT aiGenerate('{http}')",
    ]
    through = refused(target, queries)
    assert through == []
    assert target.listener.hits == []


def test_limits_cannot_be_lifted(target: Target) -> None:
    # The limits are the server's: not by URL parameter, nor by a SETTINGS clause.
    # (A higher limit by URL is held to the server's: test_serve_limits runs into it.)
    through = []
    for name, value in [
        ("max_execution_time", "0"),
        ("max_execution_time", "100000"),
        ("max_memory_usage", "0"),
        ("max_result_rows", "0"),
        ("max_result_bytes", "0"),
        ("timeout_overflow_mode", "break"),
        ("result_overflow_mode", "break"),
        ("readonly", "0"),  # as a setting: ignored as an HTTP parameter, the user stays readonly
        ("allow_ddl", "1"),
        ("max_threads", "1000"),
    ]:
        code, _ = target.code("SELECT 1 FROM system.one", **{name: value})
        if code == 0 and name != "readonly" and not name.startswith("max_"):
            through.append(f"URL {name}={value} accepted")
        code, _ = target.code(f"SELECT 1 FROM system.one SETTINGS {name} = {value!r}")
        if code == 0:
            through.append(f"SETTINGS {name}={value} accepted")
    code, _ = target.code("INSERT INTO audit.quarantine (reason) VALUES ('x')", readonly="0")
    if code != 164:
        through.append(f"readonly=0 let a reader insert ({code})")
    assert through == []


def test_engine_settings_are_refused_as_clickhouse_does(target: Target) -> None:
    code, body = target.code("SELECT 1", allow_experimental_eval_table_function="1")
    assert code == 164
    assert (
        b"Cannot modify 'allow_experimental_eval_table_function' setting in readonly mode" in body
    )
    code, body = target.code("SELECT 1", max_threads="1")
    assert code == 164 and b"Cannot modify 'max_threads' setting in readonly mode" in body


def test_system_tables_that_show_the_host_are_refused(target: Target) -> None:
    path = str(target.data_dir).encode()
    queries = [
        "SELECT * FROM system.tables",
        "SELECT name, data_paths, metadata_path FROM system.tables",
        "SELECT * FROM system.processes",
        "SELECT query FROM system.processes",
        "SELECT * FROM system.server_settings",
        "SELECT value FROM system.server_settings WHERE name = 'path'",
        "SELECT * FROM system.databases",
        "SELECT * FROM system.columns",
        "SELECT * FROM system.disks",
        "SELECT * FROM system.query_log",
        "SELECT * FROM system.users",
        "SELECT * FROM system.parts",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM INFORMATION_SCHEMA.COLUMNS",
        "SELECT getServerSetting('path')",
        "SELECT hostName(), currentUser(), uptime()",
        "SELECT filesystemAvailable()",
        "SHOW PROCESSLIST",
        "SHOW CREATE TABLE system.processes",
        "SHOW SETTINGS LIKE '%'",
        "SHOW USERS",
        "SHOW GRANTS",
        "SELECT * FROM default.secrets",
        "SELECT * FROM secrets",
        "EXPLAIN SELECT * FROM system.processes",
    ]
    through = refused(target, queries)
    for query in queries:
        _, body = target.code(query)
        if path in body:
            through.append(f"{query!r} showed the data directory")
    assert through == []


def test_the_confinement_cannot_be_talked_round(target: Target) -> None:
    """Names that are not what they look like to a word scan, and places a table can hide."""
    queries = [
        'SELECT * FROM "system"."processes"',
        "SELECT * FROM `system`.`tables`",
        "SELECT * FROM system/* a comment */.processes",
        "SELECT * FROM system\n.\nprocesses",
        "SELECT 1 WHERE 1 IN system.processes",
        "SELECT 1 WHERE 'x' NOT IN default.secrets",
        "SELECT * FROM {t:Identifier}",
        "SELECT * FROM audit.generations WHERE 1 IN (SELECT 1 FROM {t:Identifier})",
        "SELECT * FROM view(SELECT * FROM default.secrets)",
        "SELECT * FROM merge('default', '.*')",
        "SELECT * FROM loop(default.secrets) LIMIT 1",
        "SELECT * FROM clusterAllReplicas('default', default.secrets)",
        "SELECT dictGet('default.d', 's', 1)",
        "SELECT joinGet('default.secrets', 's', 1)",
        "SELECT * APPLY(hostName) FROM system.one",
        "SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets), secrets",
        "DESCRIBE (SELECT * FROM default.secrets)",
        "DESCRIBE default.secrets",
        "SHOW COLUMNS FROM default.secrets",
        "SELECT * FROM audit.generations UNION ALL SELECT * FROM default.secrets",
        "SELECT * FROM audit.generations AS g JOIN default.secrets AS s ON 1",
        "SELECT * FROM system.one ARRAY JOIN (SELECT groupArray(s) FROM default.secrets) AS a",
        "SELECT (SELECT any(s) FROM default.secrets)",
        "SELECT 1 INTO OUTFILE '/tmp/aigc-audit-escape'",
        "SELECT sleep(3)",
    ]
    through = refused(target, queries, param_t="default.secrets")
    # Unqualified names resolve to the request's database: with database=default, or system.
    through += refused(target, ["SELECT * FROM secrets"], database="default")
    through += refused(target, ["SELECT * FROM processes"], database="system")
    assert through == []


def test_ctes_and_ordinary_reads_still_work(target: Target) -> None:
    """What the confinement must let through: the query pack's constructs, and Grafana's."""
    ok = [
        ("SELECT count() FROM audit.generations", {}),
        ("SELECT count() FROM generations", {"database": "audit"}),
        ("WITH processes AS (SELECT 1 AS x) SELECT x FROM processes", {"database": "system"}),
        ("WITH t AS (SELECT number AS n FROM numbers(5)) SELECT sum(n) FROM t", {}),
        ("SELECT countIf(number > 2), sumIf(number, number > 1) FROM numbers(10)", {}),
        ("SELECT uniqExactIf(number, number > 1), quantile(0.5)(number) FROM numbers(10)", {}),
        ("SELECT arrayMap(x -> x * 2, [1, 2]), CAST(1 AS String), 1::UInt8", {}),
        ("SELECT number, row_number() OVER (ORDER BY number) FROM numbers(3)", {}),
        ("SELECT a FROM (SELECT 1 AS a UNION ALL SELECT 2) ORDER BY a", {}),
        ("SELECT x FROM system.one ARRAY JOIN [1, 2] AS x", {}),
        ("SELECT 1 WHERE 1 IN (SELECT 1 FROM audit.generations LIMIT 1) OR 1", {}),
        ("SELECT count() FROM audit.generations AS g JOIN audit.batches AS b ON 1", {}),
        ("SELECT * FROM values('a UInt8', 1, 2)", {}),
        ("SELECT {p:String}, length({p:String})", {"param_p": "x"}),
        ("SELECT CASE WHEN 1 THEN 'a' ELSE 'b' END, if(1, 2, 3), multiIf(0, 1, 2)", {}),
        ("SELECT toStartOfHour(now()), formatDateTime(now(), '%F'), today() - 1", {}),
        ("SELECT count() FROM system.functions WHERE name = 'sum'", {}),
        ("SELECT name FROM system.settings WHERE name = 'max_threads'", {}),
        ("SHOW TABLES FROM audit", {}),
        ("SHOW DATABASES", {}),
        ("SHOW COLUMNS FROM generations FROM audit", {}),
        ("DESCRIBE TABLE audit.generations", {}),
        ("EXISTS TABLE audit.generations", {}),
        ("SELECT 1 FORMAT JSONCompact", {}),
    ]
    failed = []
    for query, params in ok:
        code, body = target.code(query, **params)
        if code != 0:
            failed.append(f"{query!r} -> {body[:200]!r}")
    assert failed == []


def test_results_of_an_allowed_read(target: Target) -> None:
    code, body = target.code("WITH processes AS (SELECT 7 AS x) SELECT x FROM processes")
    assert (code, body) == (0, b"7\n")
    code, body = target.code("SELECT {v:String}", param_v="中文 'q'")
    assert (code, body) == (0, "中文 \\'q\\'\n".encode())


def test_store_path_is_not_in_session_settings(target: Target) -> None:
    # system.settings stays readable (clickhouse-connect reads it on connect): it must not
    # name the data directory.
    code, body = target.code("SELECT name, value FROM system.settings")
    assert code == 0 and body
    assert str(target.data_dir).encode() not in body
    assert str(Path(target.store.path)).encode() not in body
