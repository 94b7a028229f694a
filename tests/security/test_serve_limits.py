"""Issue 12, deliverable 1: a reader's statement runs under the server's limits, enforced by the
engine, so it holds the one chDB session (and the lock the materialiser shares) no longer than
its time limit; passwords are held as salted hashes and serve.json keeps no writer password;
HTTPS from a certificate path."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_audit.consumers.store.tables import GENERATIONS
from tests import store_rows as R
from tests.security.serve_harness import USERS, Target, served

pytestmark = pytest.mark.chdb

LIMIT_S = 1.0
MARGIN_S = 1.5


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    from aigc_audit.consumers.store.reader_policy import ReaderLimits

    limits = ReaderLimits(
        max_execution_time_s=LIMIT_S,
        max_memory_bytes=64 << 20,
        max_result_rows=1000,
        max_result_bytes=1 << 20,
    )
    with served(tmp_path_factory.mktemp("limits"), limits=limits) as t:
        yield t


def test_a_long_read_holds_the_store_no_longer_than_its_limit(target: Target) -> None:
    outcome: dict[str, object] = {}

    def long_read() -> None:
        started = time.monotonic()
        outcome["long"] = target.code(
            "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1",
            timeout=60,
        )
        outcome["long_s"] = time.monotonic() - started

    reader = threading.Thread(target=long_read)
    reader.start()
    time.sleep(0.2)  # the long read now holds the session
    started = time.monotonic()
    assert target.code("SELECT 1")[1] == b"1\n"  # another reader
    other_reader_s = time.monotonic() - started
    started = time.monotonic()
    # The materialiser's path: the owner's store, under the same lock.
    target.server.local_store().insert(GENERATIONS, [R.generation()], token="limits-1")
    insert_s = time.monotonic() - started
    reader.join(timeout=30)
    assert not reader.is_alive()
    code, body = outcome["long"]  # type: ignore[misc]
    assert code == 159, body  # TIMEOUT_EXCEEDED, from the engine
    assert outcome["long_s"] < LIMIT_S + MARGIN_S  # type: ignore[operator]
    assert other_reader_s < LIMIT_S + MARGIN_S
    assert insert_s < LIMIT_S + MARGIN_S


def test_a_reader_may_lower_a_limit_but_never_raise_it(target: Target) -> None:
    started = time.monotonic()
    code, _ = target.code(
        "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1",
        max_execution_time="0.3",
    )
    assert code == 159 and time.monotonic() - started < 0.3 + MARGIN_S
    # Higher or unlimited (Grafana sends its query timeout each time) is held to the server's.
    for value in ("100000", "0"):
        started = time.monotonic()
        code, _ = target.code(
            "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1",
            max_execution_time=value,
        )
        assert code == 159 and time.monotonic() - started < LIMIT_S + MARGIN_S
    for name in ("max_result_rows", "max_result_bytes", "max_memory_usage"):
        code, _ = target.code("SELECT number FROM numbers(100000)", **{name: "0"})
        assert code in (241, 396), name
    assert target.code("SELECT 1", max_execution_time="-1")[0] == 452


def test_memory_and_result_limits_are_the_engines(target: Target) -> None:
    code, body = target.code("SELECT groupArray(number) FROM numbers(100000000)")
    assert code == 241, body  # MEMORY_LIMIT_EXCEEDED
    code, body = target.code("SELECT number FROM numbers(100000)")
    assert code == 396, body  # TOO_MANY_ROWS_OR_BYTES
    code, body = target.code("SELECT toString(number) || repeat('x', 2000) FROM numbers(900)")
    assert code == 396, body  # result bytes
    code, body = target.code("SELECT number FROM numbers(10)")
    assert code == 0 and body.count(b"\n") == 10


def test_the_server_holds_only_password_hashes(target: Target) -> None:
    from aigc_audit.consumers.store.passwords import is_password_hash

    api = target.server.api
    held = json.dumps({k: str(v) for k, v in vars(api).items()}, default=str)
    for password in USERS.values():
        assert password not in held
    assert all(is_password_hash(h) for h in api._users.values())


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "serve.crt", directory / "serve.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_from_a_certificate_path(target: Target, tmp_path: Path) -> None:
    from aigc_audit.consumers.store.server import StoreServer

    cert, key = _self_signed(tmp_path)
    # A second server on the same store (chDB opens one store a process), speaking HTTPS.
    with StoreServer(target.store, users=dict(USERS), tls_cert=cert, tls_key=key) as t:
        assert t.url("reader").startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection(t.host, t.port, context=context)
        conn.request("POST", f"/?user=reader&password={USERS['reader']}", b"SELECT 40 + 2")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"42\n")
        conn.close()
        # Plain HTTP to the TLS port gets no answer in clear.
        plain = http.client.HTTPConnection(t.host, t.port, timeout=5)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("POST", "/", b"SELECT 1")
            plain.getresponse().read()
        plain.close()
        # clickhouse-connect over HTTPS, trusting the certificate.
        import clickhouse_connect

        client = clickhouse_connect.get_client(
            host="127.0.0.1",
            port=t.port,
            username="reader",
            password=USERS["reader"],
            secure=True,
            ca_cert=str(cert),
        )
        assert client.command("SELECT 7") == 7
        client.close()
