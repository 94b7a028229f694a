"""Issue 12, deliverable 8: `serve` takes every body encoding ClickHouse's HTTP interface takes
(gzip, deflate, br, xz, zstd, lz4, bz2) and refuses another with ClickHouse's own error
(NOT_IMPLEMENTED, 48, as the engine itself says for an unknown compression method). The body
limit applies after decompression, and a bomb is stopped there, not after inflating it."""

from __future__ import annotations

import bz2
import gzip
import lzma
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest

from tests.security.serve_harness import Target, served

pytestmark = pytest.mark.chdb

BODY_LIMIT = 1 << 20


def _brotli(data: bytes) -> bytes:
    import brotli

    return bytes(brotli.compress(data))


def _zstd(data: bytes) -> bytes:
    from backports import zstd

    return bytes(zstd.compress(data))


def _lz4(data: bytes) -> bytes:
    import lz4.frame

    return bytes(lz4.frame.compress(data))


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": _brotli,
    "xz": lzma.compress,
    "zstd": _zstd,
    "lz4": _lz4,
    "bz2": bz2.compress,
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with served(tmp_path_factory.mktemp("encodings")) as t:
        # The body limit (StoreServer's max_body_bytes), set on the running server so that this
        # module also runs against the old server, whose limit was a fixed 1 GiB.
        t.server._httpd.max_body_bytes = BODY_LIMIT
        yield t


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_every_clickhouse_encoding_is_read(target: Target, encoding: str) -> None:
    body = ENCODERS[encoding](b"SELECT 40 + 2")
    status, _, reply = target.request(None, body, headers={"Content-Encoding": encoding})
    assert (status, reply) == (200, b"42\n"), reply


def test_an_insert_body_in_brotli(target: Target) -> None:
    target.request(
        "CREATE TABLE audit.enc (n UInt32, s String) ENGINE = MergeTree ORDER BY n", user="writer"
    )
    rows = b"".join(b"%d,row %d\n" % (n, n) for n in range(1000))
    body = _brotli(b"INSERT INTO audit.enc FORMAT CSV\n" + rows)
    status, _, reply = target.request(None, body, user="writer", headers={"Content-Encoding": "br"})
    assert status == 200, reply
    assert target.code("SELECT count() FROM audit.enc") == (0, b"1000\n")


def test_encodings_apply_in_the_order_listed(target: Target) -> None:
    body = _brotli(gzip.compress(b"SELECT 7"))  # gzip first, then br: "gzip, br"
    status, _, reply = target.request(None, body, headers={"Content-Encoding": "gzip, br"})
    assert (status, reply) == (200, b"7\n")


@pytest.mark.parametrize("encoding", ["compress", "foo", "snappy", "lzw"])
def test_an_unknown_encoding_gets_clickhouses_code(target: Target, encoding: str) -> None:
    status, headers, reply = target.request(
        None, b"\x00\x01garbage", headers={"Content-Encoding": encoding}
    )
    assert headers["X-ClickHouse-Exception-Code"] == "48", reply
    assert status == 501 and b"NOT_IMPLEMENTED" in reply


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_a_corrupt_body_is_refused(target: Target, encoding: str) -> None:
    good = ENCODERS[encoding](b"SELECT 1" * 100)
    for body in (good[: len(good) // 2], b"\xff" * 64):
        _, headers, reply = target.request(None, body, headers={"Content-Encoding": encoding})
        assert headers["X-ClickHouse-Exception-Code"] == "271", (encoding, reply)
    assert target.code("SELECT 1") == (0, b"1\n")


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_a_decompression_bomb_stops_at_the_limit(target: Target, encoding: str) -> None:
    bomb = ENCODERS[encoding](b"SELECT 1 -- " + b"\0" * (64 << 20))
    assert len(bomb) < BODY_LIMIT  # the compressed body passes the limit; its content must not
    tracemalloc.start()
    started = time.monotonic()
    try:
        status, headers, reply = target.request(None, bomb, headers={"Content-Encoding": encoding})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert headers["X-ClickHouse-Exception-Code"] == "229", reply  # QUERY_IS_TOO_LARGE
    assert status == 413
    assert peak < 16 * BODY_LIMIT  # the server (in this process) never inflated it whole
    assert time.monotonic() - started < 10
