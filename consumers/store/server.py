"""Serve one embedded (chDB) store over ClickHouse's HTTP interface, for other processes.

chDB allows one session per process and one process per data directory, yet two materialisers,
analysts and Grafana must share the store. So one process owns the :class:`EmbeddedStore` and
runs a :class:`StoreServer`; every other process connects with clickhouse-connect (for the
platform: :class:`consumers.store.clickhouse.ClickHouseStore`), exactly as it would to a
ClickHouse server in production. The owner process itself uses :meth:`StoreServer.local_store`,
which shares the server's lock. What of the HTTP interface is served: see ``chdb_http.py``.

The server listens on loopback by default and speaks plain HTTP, or HTTPS given a certificate
and key (``serve_tls_cert``/``serve_tls_key``). It holds its users' passwords as salted hashes
only. Request bodies may come in every encoding ClickHouse's HTTP interface takes (gzip, deflate,
br, xz, zstd, lz4, bz2); they are decompressed incrementally, so a bomb stops at the body limit.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import logging
import lzma
import re
import shutil
import socket
import ssl
import tempfile
import threading
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlsplit

from aigc_audit.consumers.store.base import QueryResult, Store
from aigc_audit.consumers.store.chdb_http import ChdbHttp, ClickHouseError, Reply, Request
from aigc_audit.consumers.store.embedded import EmbeddedStore
from aigc_audit.consumers.store.passwords import hash_password, is_password_hash
from aigc_audit.consumers.store.reader_policy import ReaderLimits
from aigc_audit.consumers.store.tables import Table

logger = logging.getLogger(__name__)

_PASSWORD = re.compile(r"((?:^|[?&])password=)[^&\s]*")

MAX_BODY_BYTES = 1 << 30
"""The largest request body accepted (after decompression), against a runaway client."""


class StoreServer:
    """ClickHouse's HTTP interface for one EmbeddedStore, on ``host:port`` (0: any free port).

    ``users`` maps user names to password hashes (``passwords.hash_password``); a value that is
    not a hash is taken as a password, hashed at once and remembered only for :meth:`url` (a
    convenience for tests and for an owner that made the password itself; ``serve`` passes
    hashes). Users in ``readonly_users`` (by default ``reader``) may only read, confined to the
    store's database under ``limits``; the others may also write and run DDL. With
    ``tls_cert`` and ``tls_key`` it speaks HTTPS. The server does not own the store:
    :meth:`stop` leaves it open for its owner to close.
    """

    def __init__(
        self,
        store: EmbeddedStore,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        readonly_users: Collection[str] = ("reader",),
        *,
        limits: ReaderLimits | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        max_body_bytes: int = 0,
    ) -> None:
        if not users:
            raise ValueError("a store server needs at least one user with a password")
        self.store = store
        self._given = {name: pw for name, pw in users.items() if not is_password_hash(pw)}
        hashes = {
            name: pw if is_password_hash(pw) else hash_password(pw) for name, pw in users.items()
        }
        self._lock = threading.RLock()
        self._workdir = Path(tempfile.mkdtemp(prefix="aigc-audit-store-server-"))
        session = store._session  # the store's one chDB session; its lock is ours from now on
        self.api = ChdbHttp(
            lambda sql, fmt, params: session.query(sql, fmt, params=params),
            self._lock,
            hashes,
            readonly_users,
            self._workdir,
            databases=(store.database,),
            limits=limits,
        )
        self._httpd = _HttpServer((host, port), _Handler)
        self._httpd.api = self.api
        self._httpd.max_body_bytes = max_body_bytes or MAX_BODY_BYTES
        self.scheme = "http"
        if tls_cert is not None or tls_key is not None:
            if tls_cert is None or tls_key is None:
                raise ValueError("HTTPS needs both a certificate and its key")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                context.load_cert_chain(str(tls_cert), str(tls_key))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load the TLS certificate {tls_cert}: {exc}") from exc
            self._httpd.tls = context
            self.scheme = "https"
        # An IP socket's address: (host text, port), and two more items for IPv6.
        self.host, self.port = cast("tuple[str, int]", self._httpd.server_address[:2])
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    def start(self) -> StoreServer:
        """Serve in a background (daemon) thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, name=f"store-server-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` is called from another."""
        self._serving.set()
        try:
            self._httpd.serve_forever()
        finally:
            self._serving.clear()

    def stop(self) -> None:
        """Stop serving and close every connection; idempotent. When it returns no request runs
        on the store and none will, so the owner may close the store."""
        if self._serving.is_set():
            self._httpd.shutdown()  # returns once serve_forever has returned
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        self._httpd.close_connections()
        self.api.close()  # waits for a statement under way; none starts after this
        shutil.rmtree(self._workdir, ignore_errors=True)

    def url(self, user: str, password: str | None = None) -> str:
        """``http[s]://user:password@host:port/database`` for :meth:`ClickHouseStore.from_url`;
        ``password`` may be left out for a user whose password was given (not its hash)."""
        if password is None:
            if user not in self._given:
                raise KeyError(f"the server holds only a hash of {user}'s password")
            password = self._given[user]
        return (
            f"{self.scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:"
            f"{self.port}/{self.store.database}"
        )

    def local_store(self) -> Store:
        """The served store for the owner process, taking the server's lock around each call,
        so that its statements never interleave with a request's settings."""
        return LockedStore(self.store, self._lock)

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LockedStore:
    """A Store that runs each call on ``store`` under ``lock``; :meth:`close` leaves it open."""

    def __init__(self, store: Store, lock: threading.RLock) -> None:
        self._store = store
        self._lock = lock
        self.database = store.database

    def migrate(self) -> None:
        with self._lock:
            self._store.migrate()

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]], *, token: str) -> None:
        with self._lock:
            self._store.insert(table, rows, token=token)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        with self._lock:
            return self._store.query(sql, params)

    def command(self, sql: str) -> None:
        with self._lock:
            self._store.command(sql)

    def close(self) -> None:
        """The server's owner closes the store itself, after stopping the server."""


class _HttpServer(ThreadingHTTPServer):
    """Tracks its open connections: stopping must end keep-alive connections too, or a pooled
    client would go on being served by their threads."""

    daemon_threads = True
    api: ChdbHttp
    max_body_bytes: int = MAX_BODY_BYTES
    tls: ssl.SSLContext | None = None
    request_timeout_s: float = 60.0
    """A connection idle (or trickling a request) this long is closed: a slow client must not
    hold a thread forever."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # In the connection's own thread: the TLS handshake must not stall the accept loop.
        request.settimeout(self.request_timeout_s)
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                logger.debug("TLS handshake failed: %s", exc)
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection (keep-alive): reads a request, asks the API, writes the reply."""

    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        # The request line may carry a password as a URL parameter.
        line = _PASSWORD.sub(r"\1***", format % args)
        logger.debug("%s %s", self.address_string(), line)

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            body = self._body()
            if url.path in ("/ping", "/replicas_status"):
                reply = Reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            elif url.path not in ("", "/"):
                reply = Reply(404, f"There is no handle {url.path}\n".encode())
            else:
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                content_type = self.headers.get("Content-Type", "")
                if content_type.lower().startswith("multipart/form-data"):
                    params.update(_form_fields(body, content_type))
                    body = b""
                if method == "GET" and not params.get("query"):
                    reply = Reply(200, b"Ok.\n")  # ClickHouse's answer to a bare GET /
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    user, password = _credentials(headers, params)
                    request = Request(method, params, headers, body, user, password)
                    reply = self.server.api.handle(request)
        except ClickHouseError as exc:
            reply = self.server.api.error(exc)
            self.close_connection = True  # the body may not have been read to its end
        except Exception as exc:  # a fault here must still answer, or the client hangs
            logger.exception("store server: request failed")
            reply = self.server.api.error(ClickHouseError.of(1001, "STD_EXCEPTION", repr(exc)))
            self.close_connection = True
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _body(self) -> bytes:
        """The request body: de-chunked, bounded and decompressed per Content-Encoding."""
        limit = self.server.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, size = [], 0
            while chunk_size := _chunk_size(self.rfile.readline(65537)):
                size += chunk_size
                if size > limit:
                    raise _too_large(limit)
                parts.append(self.rfile.read(chunk_size))
                self.rfile.readline(65537)
            while self.rfile.readline(65537).strip():  # trailers, up to the blank line
                pass
            raw = b"".join(parts)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise _bad_request("Content-Length is not a number") from None
            if length < 0:
                raise _bad_request("Content-Length is negative")
            if length > limit:
                raise _too_large(limit)
            raw = self.rfile.read(length) if length else b""
        return decompress(raw, self.headers.get("Content-Encoding", ""), limit)


def _credentials(headers: Mapping[str, str], params: Mapping[str, str]) -> tuple[str, str]:
    """The user and password, from Basic auth, X-ClickHouse-User/Key headers or URL parameters
    (ClickHouse's three ways); none at all means the ``default`` user without a password."""
    authorization = headers.get("authorization", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return f"({scheme} token)", ""  # no such user: refused as bad credentials
        try:
            name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "(malformed Basic auth)", ""
        return name, password
    if "x-clickhouse-user" in headers:
        return headers["x-clickhouse-user"], headers.get("x-clickhouse-key", "")
    return params.get("user", "default"), params.get("password", "")


_STEP = 1 << 20
"""Decompressed bytes produced per step, so the limit is checked before memory is spent."""


def decompress(raw: bytes, encoding: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """``raw`` decoded per a Content-Encoding header (a comma-separated list, applied last
    first), never more than ``limit`` bytes: decompression stops there (QUERY_IS_TOO_LARGE).
    An encoding ClickHouse does not know is refused as ClickHouse refuses it (NOT_IMPLEMENTED)."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("identity", "none") or not raw:
            continue
        step = _DECODERS.get(coding)
        if step is None:
            if coding == "snappy":  # ClickHouse's is Hadoop's framing; no library here reads it
                raise ClickHouseError.of(
                    48, "NOT_IMPLEMENTED", "Content-Encoding snappy is not supported here"
                )
            raise ClickHouseError.of(
                48,
                "NOT_IMPLEMENTED",
                f"Unknown compression method '{coding}'. Only 'auto', 'none', 'gzip', "
                "'deflate', 'br', 'xz', 'zstd', 'lz4', 'bz2', 'snappy' are supported as "
                "compression methods",
            )
        try:
            raw = step(raw, limit)
        except ClickHouseError:
            raise
        except Exception as exc:
            raise ClickHouseError.of(
                271, "CANNOT_DECOMPRESS", f"Cannot decompress the {coding} body: {exc}"
            ) from None
    return raw


class _Output:
    """What a decoder has produced so far, refused the moment it passes ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise _too_large(self.limit)
        self.parts.append(chunk)

    def joined(self) -> bytes:
        return b"".join(self.parts)


def _bounded(make: Callable[[], Any], raw: bytes, limit: int) -> bytes:
    """Decompress with an object of the ``decompress(data, max_length)`` family (lzma, bz2,
    zstd, lz4), member after member, stopping at ``limit``."""
    out = _Output(limit)
    data = raw
    while data:
        decoder = make()
        out.add(decoder.decompress(data, _STEP))
        # needs_input: every byte given is consumed and no output is pending.
        while not (decoder.eof or decoder.needs_input):
            out.add(decoder.decompress(b"", _STEP))
        if not decoder.eof:
            raise ValueError("the compressed body ends early")
        data = decoder.unused_data or b""  # lz4 says None
        if data.strip(b"\0") == b"":  # zero padding after the last member, as xz allows
            break
    return out.joined()


def _inflate(wbits: int) -> Callable[[bytes, int], bytes]:
    def run(raw: bytes, limit: int) -> bytes:
        out = _Output(limit)
        data = raw
        while data:
            decoder = zlib.decompressobj(wbits)
            chunk = decoder.decompress(data, _STEP)
            out.add(chunk)
            while not (decoder.eof or (not decoder.unconsumed_tail and not chunk)):
                chunk = decoder.decompress(decoder.unconsumed_tail, _STEP)
                out.add(chunk)
            if not decoder.eof:
                raise ValueError("the compressed body ends early")
            data = decoder.unused_data  # gzip: the next member
        return out.joined()

    return run


def _brotli(raw: bytes, limit: int) -> bytes:
    import brotli

    decoder = brotli.Decompressor()
    out = _Output(limit)
    chunk = decoder.process(raw, output_buffer_limit=_STEP)
    out.add(chunk)
    while not (decoder.is_finished() or not chunk):
        chunk = decoder.process(b"", output_buffer_limit=_STEP)
        out.add(chunk)
    if not decoder.is_finished():
        raise ValueError("the compressed body ends early")
    return out.joined()


def _zstd_decoder() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+; mypy checks 3.11
    except ImportError:
        from backports import zstd
    return zstd.ZstdDecompressor()


def _lz4_decoder() -> Any:
    import lz4.frame

    return lz4.frame.LZ4FrameDecompressor()


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _inflate(16 + zlib.MAX_WBITS),
    "x-gzip": _inflate(16 + zlib.MAX_WBITS),
    "deflate": _inflate(zlib.MAX_WBITS),  # HTTP's deflate is zlib-wrapped, as ClickHouse reads it
    "br": _brotli,
    "xz": lambda raw, limit: _bounded(lzma.LZMADecompressor, raw, limit),
    "zstd": lambda raw, limit: _bounded(_zstd_decoder, raw, limit),
    "zst": lambda raw, limit: _bounded(_zstd_decoder, raw, limit),
    "lz4": lambda raw, limit: _bounded(_lz4_decoder, raw, limit),  # clickhouse-connect's default
    "bz2": lambda raw, limit: _bounded(bz2.BZ2Decompressor, raw, limit),
}


def _chunk_size(line: bytes) -> int:
    try:
        size = int(line.split(b";")[0].strip() or b"0", 16)
    except ValueError:
        raise _bad_request("a chunk size is not hexadecimal") from None
    if size < 0:
        raise _bad_request("a chunk size is negative")
    return size


def _bad_request(what: str) -> ClickHouseError:
    return ClickHouseError.of(1001, "STD_EXCEPTION", f"The request is malformed: {what}")


def _form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body (``query``, ``param_*``), as ClickHouse
    reads them; a file field is external data, which this server does not take."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        if part.get_filename() is not None:
            raise ClickHouseError.of(
                344, "SUPPORT_IS_DISABLED", "external data is not supported here"
            )
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8")
    return fields


def _too_large(limit: int = MAX_BODY_BYTES) -> ClickHouseError:
    return ClickHouseError.of(229, "QUERY_IS_TOO_LARGE", f"The request body exceeds {limit} bytes")
