"""Where a running ``aigc-audit serve`` of a data directory is found: ``<data_dir>/serve.json``
(mode 0600) holds its address and a read-only user's credentials, and the server must answer."""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SERVE_FILE = "serve.json"


@dataclass(frozen=True)
class ServedStore:
    url: str
    """For clickhouse-connect and ``AIGC_AUDIT_CLICKHOUSE_URL``: read-only."""
    pid: int

    @property
    def ping_url(self) -> str:
        scheme = self.url.split("://", 1)[0]
        host = self.url.split("@", 1)[1].split("/", 1)[0]
        return f"{scheme}://{host}/ping"


def served_store(data_dir: Path) -> ServedStore | None:
    """The running ``serve`` of ``data_dir``, if its file is there and the server answers."""
    path = data_dir / SERVE_FILE
    try:
        doc = json.loads(path.read_text())
        served = ServedStore(doc["url"], int(doc["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        # The ping only asks whether the server is up; a self-signed certificate is verified
        # by the client that then reads through it.
        context = None
        if served.url.startswith("https"):
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(served.ping_url, timeout=2, context=context) as answer:
            return served if answer.read().strip() == b"Ok." else None
    except OSError:
        return None
