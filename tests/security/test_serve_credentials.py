"""Issue 12, deliverable 1: `aigc-audit serve` keeps salted password hashes only, and its
serve.json (what other local commands read) holds a read-only user's URL, never the writer's
password."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.chdb


def test_serve_json_keeps_no_writer_password(tmp_path: Path) -> None:
    from aigc_audit.consumers.app.serve import serve
    from aigc_audit.consumers.app.settings import Settings
    from aigc_audit.consumers.store.passwords import hash_password
    from aigc_audit.consumers.store.served import SERVE_FILE

    writer_pw = "configured-writer-pw"
    settings = Settings(
        data_dir=tmp_path / "data",
        serve_writer_password_hash=hash_password(writer_pw),
        reader_max_execution_time_s=2,
    )
    stop = threading.Event()
    ready: list[object] = []
    thread = threading.Thread(
        target=lambda: serve(settings, materialise=False, stop=stop, on_ready=ready.append)
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not ready and thread.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        text = (settings.data_dir / SERVE_FILE).read_text()
        assert writer_pw not in text and "writer" not in text
        doc = json.loads(text)
        assert set(doc) == {"url", "pid"}
        assert (settings.data_dir / SERVE_FILE).stat().st_mode & 0o077 == 0
        # The configured writer works with its password; the server never saw it in clear.
        from aigc_audit.consumers.store.clickhouse import ClickHouseStore

        host_port = doc["url"].split("@", 1)[1].split("/", 1)[0]
        writer = ClickHouseStore.from_url(f"http://writer:{writer_pw}@{host_port}/audit")
        writer.command("CREATE TABLE audit.serve_probe (n UInt8) ENGINE = Memory")
        writer.close()
        reader = ClickHouseStore.from_url(doc["url"])
        assert reader.query("EXISTS TABLE audit.serve_probe").rows == [(1,)]
        reader.close()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
