"""A real store server for the `serve` security tests: an embedded store with audit rows, a
secret file where the root private key lives in a data directory, a table outside the audit
database, and a listener that records any connection the engine is made to open (SSRF).

Only the StoreServer API that predates the confinement is used here (plaintext users and
``url(user)``), so the attack tests run against the old code too and show what it let through.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aigc_audit.consumers.store.embedded import EmbeddedStore
from aigc_audit.consumers.store.server import StoreServer

USERS = {"reader": "reader-pw-1", "writer": "writer-pw-2"}
CANARY = "CANARY-7f3a9c1e-the-root-private-key"
"""Text of the secret file and of the row outside the audit database: no reader reply may hold
it."""
OUTSIDE = "CANARY-outside-db-5b2d"


@dataclass
class Listener:
    """A TCP port that counts connections: the engine reaching it is SSRF."""

    sock: socket.socket
    hits: list[bytes] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(1)
            try:
                self.hits.append(conn.recv(256))
            except OSError:
                self.hits.append(b"")
            conn.close()


@dataclass
class Target:
    server: StoreServer
    store: EmbeddedStore
    data_dir: Path
    secret: Path
    listener: Listener

    def request(
        self,
        query: str | None = None,
        body: bytes = b"",
        *,
        user: str | None = "reader",
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        timeout: float = 30,
        **params: str,
    ) -> tuple[int, Message, bytes]:
        """One HTTP request; credentials as URL parameters unless ``user`` is None."""
        if user is not None:
            params = {"user": user, "password": USERS[user], **params}
        if query is not None:
            params["query"] = query
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=timeout)
        try:
            conn.request(method, "/?" + urlencode(params), body, dict(headers or {}))
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def code(self, query: str, *, timeout: float = 30, **params: str) -> tuple[int, bytes]:
        """(ClickHouse error code or 0, body) of a reader's query."""
        _, headers, body = self.request(query, timeout=timeout, **params)
        return int(headers.get("X-ClickHouse-Exception-Code") or 0), body


@contextmanager
def served(tmp: Path, **server_options: Any) -> Iterator[Target]:
    data_dir = tmp / "data"
    secret = data_dir / "keys" / "root.key"
    secret.parent.mkdir(parents=True)
    secret.write_text(CANARY + "\n")
    store = EmbeddedStore(data_dir / "store")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    listener = Listener(sock)
    threading.Thread(target=listener.serve, daemon=True).start()
    try:
        store.migrate()
        store.command("CREATE TABLE default.secrets (s String) ENGINE = MergeTree ORDER BY s")
        store.command(f"INSERT INTO default.secrets VALUES ('{OUTSIDE}')")
        with StoreServer(store, users=dict(USERS), **server_options) as server:
            yield Target(server, store, data_dir, secret, listener)
    finally:
        sock.close()
        store.close()


def leaked(body: bytes) -> bool:
    """Whether a reply holds the secret file's text or the row outside the audit database."""
    return CANARY.encode() in body or OUTSIDE.encode() in body
