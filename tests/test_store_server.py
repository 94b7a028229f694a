"""The store server: ClickHouse's HTTP interface over the embedded store, for other processes.

Everything goes through real sockets: clickhouse-connect with its defaults (as analysts and
Grafana connect), the platform's ClickHouseStore, and plain HTTP requests for the parts of the
interface a client library hides (formats, settings, auth headers, insert bodies).
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from aigc_audit.consumers.query.pack import load_query_pack, run_query
from aigc_audit.consumers.store.base import Store, StoreError
from aigc_audit.consumers.store.clickhouse import ClickHouseStore
from aigc_audit.consumers.store.embedded import EmbeddedStore
from aigc_audit.consumers.store.server import StoreServer
from aigc_audit.consumers.store.tables import GENERATIONS
from tests import store_rows as R

pytestmark = pytest.mark.chdb

USERS = {"writer": "w-p@ss:wörd/1", "reader": "r p'ss\\2"}
AWKWARD = [
    "it's",
    'say "hi"',
    "back\\slash \\N \\t",
    "new\nline\r\n",
    "tab\tbed",
    "中文：标识 🙂",
    "'; DROP TABLE audit.generations; --",
    "{x:String} %s ?",
    "",
]
SCRATCH = (
    "CREATE TABLE IF NOT EXISTS audit.scratch (n UInt32, s String) ENGINE = MergeTree "
    "ORDER BY n SETTINGS non_replicated_deduplication_window = 1000"
)


@dataclass
class Served:
    server: StoreServer
    local: Store
    writer: ClickHouseStore
    reader: ClickHouseStore
    generation: dict[str, Any]

    def client(self, user: str = "reader", **kwargs: Any) -> Any:
        """A clickhouse-connect client with the library's defaults, as an analyst makes one."""
        return clickhouse_connect.get_client(
            host=self.server.host,
            port=self.server.port,
            username=user,
            password=USERS[user],
            **kwargs,
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    embedded = EmbeddedStore(tmp_path_factory.mktemp("served") / "store")
    try:
        with StoreServer(embedded, users=USERS) as server:
            writer = ClickHouseStore.from_url(server.url("writer"))
            writer.migrate()
            gen = R.generation(subject="subj-1")
            R.insert(writer, GENERATIONS, [gen, R.generation(filing_number=None)])
            case = R.moderation(detected_at=R.ts("2026-03-01 09:00"))
            R.insert(writer, R.MODERATION_ACTIONS, [case, R.complaint()])
            R.insert(writer, R.USER_SANCTIONS, [R.sanction()])
            handling = [R.pi_request(), R.training_intake(), R.annotation_check()]
            handling += [R.safety_evaluation(), R.identity_verification()]
            R.insert(writer, R.DATA_HANDLING, handling)
            R.insert(writer, R.BATCHES, [R.batch(), R.batch(sequence=1)])
            R.insert(writer, R.QUARANTINE, [R.quarantined()])
            R.insert(writer, R.CHAIN_FINDINGS, [R.finding()])
            writer.command(SCRATCH)
            reader = ClickHouseStore.from_url(server.url("reader"))
            yield Served(server, server.local_store(), writer, reader, gen)
            reader.close()
            writer.close()
    finally:
        embedded.close()


def request(
    served: Served,
    query: str | None = None,
    body: bytes | Iterable[bytes] = b"",
    *,
    method: str = "POST",
    user: str | None = "reader",
    headers: dict[str, str] | None = None,
    **params: str,
) -> tuple[int, Message, bytes]:
    """A plain HTTP request; credentials as URL parameters unless ``user`` is None."""
    if user is not None:
        params = {"user": user, "password": USERS[user], **params}
    if query is not None:
        params["query"] = query
    conn = http.client.HTTPConnection(served.server.host, served.server.port, timeout=30)
    try:
        chunked = not isinstance(body, bytes)
        conn.request(method, "/?" + urlencode(params), body, headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def scratch_count(served: Served) -> int:
    return served.local.query("SELECT count() FROM audit.scratch").rows[0][0]


# -- clickhouse-connect with its defaults ------------------------------------------------------


def test_default_client_reads(served: Served) -> None:
    client = served.client()
    assert client.ping()
    assert client.command("SELECT 1") == 1
    assert client.command("SELECT 'a', 2") == ["a", "2"]
    result = client.query(
        "SELECT event_id, occurred_at, model_name, input_sha256, explicit_label "
        "FROM audit.generations WHERE request_id = {r:String}",
        parameters={"r": served.generation["request_id"]},
    )
    ((event_id, occurred_at, model_name, digest, label),) = result.result_rows
    assert event_id == served.generation["event_id"] and model_name == "chat-model"
    assert occurred_at == served.generation["occurred_at"].replace(tzinfo=None)
    assert digest == served.generation["input_sha256"] and label is True
    # system.tables would show every database and the store's paths: a reader lists by SHOW.
    tables = client.query("SHOW TABLES FROM audit")
    assert ("generations",) in tables.result_rows


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
def test_awkward_parameter_values(served: Served, value: str) -> None:
    client = served.client()
    sql = "SELECT {v:String}, length({v:String}), {a:Array(String)}"
    want = [(value, len(value.encode()), [value, "x"])]
    assert client.query(sql, parameters={"v": value, "a": [value, "x"]}).result_rows == want
    assert served.reader.query(sql, {"v": value, "a": [value, "x"]}).rows == want


def test_large_parameters_travel_as_a_form(served: Served) -> None:
    client = served.client(form_encode_query_params=True)
    big = "中" * 5000
    assert client.query("SELECT length({v:String})", parameters={"v": big}).result_rows == [
        (len(big.encode()),)
    ]


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        ("INSERT INTO audit.scratch VALUES (1, 'x')", 164),
        ("INSERT INTO audit.scratch SELECT 1, 'x'", 164),
        ("CREATE TABLE audit.evil (x UInt8) ENGINE = Memory", 164),
        ("DROP TABLE audit.generations", 164),
        ("ALTER TABLE audit.generations DELETE WHERE 1", 164),
        ("TRUNCATE TABLE audit.generations", 164),
        ("OPTIMIZE TABLE audit.generations FINAL", 164),
        ("SYSTEM STOP MERGES", 164),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", 164),
        ("SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", 164),
        ("SELECT 1; DROP TABLE audit.generations", 62),
        ("SELECT 1 INTO OUTFILE '/tmp/aigc-audit-outfile'", 344),
    ],
)
def test_reader_cannot_write(served: Served, statement: str, code: int) -> None:
    before = served.local.query("SELECT count() FROM audit.generations").rows
    with pytest.raises(DatabaseError) as caught:
        served.client().command(statement)
    assert caught.value.code == code
    with pytest.raises(StoreError, match=rf"^Code: {code}\."):
        served.reader.command(statement)
    assert served.local.query("SELECT count() FROM audit.generations").rows == before
    assert served.local.query("EXISTS TABLE audit.evil").rows == [(0,)]


def test_reader_cannot_insert_rows(served: Served) -> None:
    with pytest.raises(DatabaseError) as caught:
        served.client().insert("scratch", [[1, "x"]], ["n", "s"], database="audit")
    assert caught.value.code == 164
    # The reader's system.settings says every setting is read-only (readonly = 1, as on a
    # ClickHouse server), so clickhouse-connect refuses the insert's token before sending it.
    with pytest.raises(StoreError, match=r"^(Code: 164\..*READONLY|.*Setting \w+ is readonly)"):
        served.reader.insert(GENERATIONS, [R.generation()], token="t")


def test_wrong_password_is_refused(served: Served) -> None:
    host, port = served.server.host, served.server.port
    for user, password in (("reader", "wrong"), ("writer", USERS["reader"]), ("nobody", "")):
        with pytest.raises(DatabaseError) as caught:
            clickhouse_connect.get_client(host=host, port=port, username=user, password=password)
        assert caught.value.code == 516
    with pytest.raises(StoreError, match=r"^Code: 516\. .*AUTHENTICATION_FAILED"):
        ClickHouseStore.from_url(f"http://reader:wrong@{host}:{port}/audit")
    status, headers, body = request(served, "SELECT 1", user=None)
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")
    assert body.startswith(b"Code: 516. DB::Exception: default: Authentication failed")


def test_ping_and_bare_get(served: Served) -> None:
    assert request(served, method="GET", user=None)[::2] == (200, b"Ok.\n")
    conn = http.client.HTTPConnection(served.server.host, served.server.port, timeout=10)
    conn.request("GET", "/ping")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"Ok.\n")
    conn.close()


# -- the platform's store and query pack through the server ------------------------------------


def test_query_pack_runs_through_the_server(served: Served) -> None:
    gen, found = served.generation, 0
    for name, query in sorted(load_query_pack().items()):
        params: dict[str, str] = {}
        for param in query.params:
            if param.type == "DateTime64(6)":
                # Explicit times, not "now", so both runs judge the same instant.
                params[param.name] = "2020-01-01" if param.name == "from" else "2027-01-01T00:00Z"
            elif param.required:
                params[param.name] = str(gen.get(param.name, "subj-1"))
        via_server = run_query(served.reader, query, params)
        assert via_server.columns, name
        assert via_server == run_query(served.local, query, params), name
        found += len(via_server.rows)
    assert found > 10


def test_concurrent_writers_land_exactly(served: Served) -> None:
    served.writer.command("TRUNCATE TABLE audit.generations")
    written: list[list[dict[str, Any]]] = [[], []]

    def write(slot: int) -> None:
        store = served.writer  # one client shared by both threads, as a materialiser may
        for i in range(15):
            batch = [R.generation(request_id=f"w{slot}-{i}-{j}") for j in range(4)]
            token = f"writer-{slot}-{i}"
            store.insert(GENERATIONS, batch, token=token)
            if i % 5 == 0:
                store.insert(GENERATIONS, batch, token=token)  # a retry: absorbed
            written[slot] += batch

    threads = [threading.Thread(target=write, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = sorted(str(r["event_id"]) for batch in written for r in batch)
    stored = served.reader.query("SELECT toString(event_id) FROM audit.generations").rows
    assert sorted(r[0] for r in stored) == ids and len(ids) == 120
    R.insert(served.writer, GENERATIONS, [served.generation])


def test_default_writer_client_inserts_compressed(served: Served) -> None:
    served.writer.command("TRUNCATE TABLE audit.scratch")
    client = served.client("writer")  # compress=True: an lz4 body, the statement in the URL
    rows = [[n, f"row {n} 中文\n"] for n in range(1000)]
    client.insert("scratch", rows, ["n", "s"], database="audit")
    client.insert(
        "scratch",
        rows[:2],
        ["n", "s"],
        database="audit",
        settings={"insert_deduplication_token": "t1"},
    )
    client.insert(
        "scratch",
        rows[:2],
        ["n", "s"],
        database="audit",
        settings={"insert_deduplication_token": "t1"},
    )
    assert scratch_count(served) == 1002
    assert served.reader.query("SELECT s FROM audit.scratch WHERE n = 7 LIMIT 1").rows == [
        ("row 7 中文\n",)
    ]


# -- the HTTP interface itself -----------------------------------------------------------------


def test_formats_and_headers(served: Served) -> None:
    status, headers, body = request(served, "SELECT 1 AS one, 'x' AS s")
    assert (status, body) == (200, b"1\tx\n")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Timezone"] == served.server.api.timezone
    assert headers["X-ClickHouse-Query-Id"] and headers["X-ClickHouse-Server-Display-Name"]
    assert set(json.loads(headers["X-ClickHouse-Summary"])) >= {"read_rows", "written_rows"}
    assert request(served, "SELECT 1 AS one FORMAT CSVWithNames")[2] == b'"one"\n1\n'
    doc = json.loads(request(served, "SELECT 1 AS one", default_format="JSONCompact")[2])
    assert doc["data"] == [[1]]
    headers_only = {"X-ClickHouse-User": "reader", "X-ClickHouse-Key": USERS["reader"]}
    assert request(served, "SELECT 2", user=None, headers=headers_only)[2] == b"2\n"
    assert request(served, method="GET", query="SELECT 3")[2] == b"3\n"
    assert request(served, "SELECT", b" 4")[2] == b"4\n"  # the URL's query, then the body
    gzipped = {"Content-Encoding": "gzip"}
    assert request(served, None, gzip.compress(b"SELECT 5"), headers=gzipped)[2] == b"5\n"


def test_errors_carry_clickhouse_codes(served: Served) -> None:
    status, headers, body = request(served, "SELECT * FROM audit.nowhere")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "60")
    assert body.startswith(b"Code: 60. DB::Exception: ")
    status, headers, _ = request(served, "SELECT {n:UInt8}", param_n="300x")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "457")
    status, headers, _ = request(served, "SELECT 1", no_such_setting="1", user="writer")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "115")
    # A reader may not change settings at all, known or not (ClickHouse's readonly = 1).
    status, headers, body = request(served, "SELECT 1", no_such_setting="1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    assert b"Cannot modify 'no_such_setting' setting in readonly mode" in body
    # Nor may a writer hide a second statement in front of an insert's data.
    smuggled = "INSERT INTO audit.scratch; DROP TABLE audit.scratch; INSERT INTO audit.scratch"
    status, headers, _ = request(served, f"{smuggled} FORMAT CSV", b"1,x\n", user="writer")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62")
    assert served.local.query("EXISTS TABLE audit.scratch").rows == [(1,)]
    # A setting that would break the shared session for every later request is refused.
    status, headers, _ = request(served, "SELECT 1", dialect="prql", user="writer")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "452")
    assert request(served, "SELECT 1")[2] == b"1\n"


def test_settings_and_database_apply_to_one_request_only(served: Served) -> None:
    probe = "SELECT getSetting('max_block_size'), currentDatabase()"
    before = request(served, probe, user="writer")[2]
    changed = request(served, probe, max_block_size="777", database="audit", user="writer")
    assert changed[2] == b"777\taudit\n"
    assert request(served, probe, user="writer")[2] == before
    assert before.endswith(b"\tdefault\n")
    # A reader's database applies to its request only too (and its unqualified tables).
    assert request(served, "SELECT currentDatabase()", database="audit")[2] == b"audit\n"
    assert request(served, "SELECT count() > 0 FROM generations", database="audit")[2] == b"1\n"
    assert served.local.query("SELECT currentDatabase()").rows == [("default",)]


def test_readonly_requests(served: Served) -> None:
    # READONLY is a 500 on a ClickHouse server too: its status map does not list the code.
    insert = "INSERT INTO audit.scratch FORMAT CSV"
    status, headers, _ = request(served, insert, b"1,x\n", user="writer", readonly="1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    status, headers, _ = request(served, method="GET", query="DROP TABLE x", user="writer")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "164")


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("CSV", b'1,"a,b"\n2,"c""d"\n'),
        ("TabSeparated", b"1\ta\\tb\n2\tc\\nd\n"),
        ("JSONEachRow", b'{"n": 1, "s": "\\u4e2d"}\n{"n": 2, "s": "x"}\n'),
        ("Values", b"(1, 'a'), (2, 'b')"),
        ("RowBinary", b"\x01\x00\x00\x00\x01a\x02\x00\x00\x00\x02\xff\x00"),
    ],
)
def test_inserts_with_a_data_body_are_deduplicated(served: Served, fmt: str, body: bytes) -> None:
    served.writer.command("TRUNCATE TABLE audit.scratch")
    token = f"raw-{uuid.uuid4()}"
    statement = f"INSERT INTO audit.scratch (n, s) FORMAT {fmt}"
    for _ in range(2):
        status, _, reply = request(
            served, statement, body, user="writer", insert_deduplication_token=token
        )
        assert status == 200, reply
    assert scratch_count(served) == 2
    # The same rows again under another token, chunked, with the statement in the body.
    chunks = (statement.encode() + b"\n", body[:3], body[3:])
    status, _, reply = request(
        served, None, chunks, user="writer", insert_deduplication_token=f"{token}-2"
    )
    assert status == 200, reply
    assert scratch_count(served) == 4


def test_a_stopped_server_cannot_be_reached(served: Served) -> None:
    other = StoreServer(served.server.store, users=USERS)
    thread = threading.Thread(target=other.serve_forever)
    thread.start()
    store = ClickHouseStore.from_url(other.url("reader"))
    assert store.query("SELECT 1").rows == [(1,)]
    other.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    with pytest.raises(StoreError, match=r"^cannot reach ClickHouse at 127\.0\.0\.1:\d+: "):
        store.query("SELECT 1")
    store.close()


def test_passwords_stay_out_of_the_log(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="aigc_audit.consumers.store.server"):
        assert request(served, "SELECT 1")[0] == 200
    assert "SELECT" in caplog.text or "POST" in caplog.text
    assert USERS["reader"] not in caplog.text and "password=***" in caplog.text


def test_users_given_as_hashes(served: Served) -> None:
    from aigc_audit.consumers.store.passwords import hash_password

    hashed = {name: hash_password(pw) for name, pw in USERS.items()}
    other = StoreServer(served.server.store, users=hashed).start()
    try:
        with pytest.raises(KeyError, match="only a hash"):
            other.url("reader")  # the server cannot make a URL: it never had the password
        store = ClickHouseStore.from_url(other.url("reader", USERS["reader"]))
        assert store.query("SELECT 1").rows == [(1,)]
        store.close()
        with pytest.raises(StoreError, match=r"^Code: 516\."):
            ClickHouseStore.from_url(other.url("reader", hashed["reader"]))  # not the password
    finally:
        other.stop()
