"""``aigc-audit serve``: one process owns the embedded store, runs the materialiser on it, and
answers ClickHouse's HTTP interface on loopback, so analysts, other commands and Grafana reach the
store while it is being written.

The running server leaves ``<data_dir>/serve.json`` (mode 0600) with its address and the reader's
credentials; other commands on the same data directory find it there and read through
clickhouse-connect instead of trying (and failing) to open the store themselves.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers.deployment import Deployment
from consumers.errors import PlatformError
from consumers.materialiser import MaterialiseStats
from consumers.settings import Settings

SERVE_FILE = "serve.json"


class ServeError(PlatformError):
    """The store cannot be served."""


@dataclass(frozen=True)
class ServedStore:
    url: str
    """For clickhouse-connect and ``AIGC_AUDIT_CLICKHOUSE_URL``: read-only."""
    writer_url: str
    pid: int

    @property
    def ping_url(self) -> str:
        host = self.url.split("@", 1)[1].split("/", 1)[0]
        return f"http://{host}/ping"


def served_store(data_dir: Path) -> ServedStore | None:
    """The running ``serve`` of ``data_dir``, if its file is there and the server answers."""
    path = data_dir / SERVE_FILE
    try:
        doc = json.loads(path.read_text())
        served = ServedStore(doc["url"], doc["writer_url"], int(doc["pid"]))
    except (OSError, ValueError, KeyError):
        return None
    try:
        with urllib.request.urlopen(served.ping_url, timeout=2) as answer:
            return served if answer.read().strip() == b"Ok." else None
    except OSError:
        return None


def serve(
    settings: Settings,
    *,
    port: int = 0,
    materialise: bool = True,
    stop: threading.Event,
    on_ready: Any = None,
    on_progress: Any = None,
) -> MaterialiseStats:
    """Serve the embedded store until ``stop`` is set; materialise from the bus meanwhile."""
    from consumers.store.embedded import EmbeddedStore
    from consumers.store.server import StoreServer

    if settings.clickhouse_url:
        raise ServeError("serve owns an embedded store; with clickhouse_url set there is none")
    reader_pw = os.environ.get("AIGC_AUDIT_SERVE_READER_PASSWORD") or secrets.token_urlsafe(18)
    writer_pw = os.environ.get("AIGC_AUDIT_SERVE_WRITER_PASSWORD") or secrets.token_urlsafe(18)
    total = MaterialiseStats()
    with Deployment(settings) as deployment:
        store = deployment.store()
        if not isinstance(store, EmbeddedStore):
            raise ServeError("serve needs the embedded store")
        server = StoreServer(
            store, port=port, users={"reader": reader_pw, "writer": writer_pw}
        ).start()
        state = settings.data_dir / SERVE_FILE
        try:
            served = ServedStore(server.url("reader"), server.url("writer"), os.getpid())
            fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(served.__dict__, fh)
            if on_ready is not None:
                on_ready(served)
            materialiser = (
                deployment.materialiser(store=server.local_store()) if materialise else None
            )
            while not stop.is_set():
                if materialiser is None:
                    stop.wait(1.0)
                    continue
                total.add(materialiser.run_once(timeout_s=1.0))
                if on_progress is not None:
                    on_progress(total)
        finally:
            state.unlink(missing_ok=True)
            server.stop()
    return total
