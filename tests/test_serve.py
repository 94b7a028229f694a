"""`aigc-audit serve` owns the embedded store and materialises into it, while other processes
query it through ClickHouse's HTTP interface (clickhouse-connect), read-only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.chdb


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    return subprocess.run(
        [sys.executable, "-m", "aigc_audit.consumers.cli.main", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def events_seen(data_dir: Path) -> int:
    result = run("query", "run", "trail_integrity", "-f", "json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return sum(row["events"] for row in json.loads(result.stdout))


@pytest.mark.slow
def test_serve_materialises_while_others_query(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run(
        "emit", "--generations", "200", "--users", "30", "--seed", "1", "--json", data_dir=data
    )
    assert first.returncode == 0, first.stderr
    emitted = json.loads(first.stdout.strip().splitlines()[-1])["emitted"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "aigc_audit.consumers.cli.main", "--data-dir", str(data), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://reader:"), server.stderr.read() if server.stderr else ""

        deadline = time.monotonic() + 60
        while events_seen(data) < emitted:  # the server's materialiser catches up
            assert time.monotonic() < deadline
            time.sleep(0.3)

        more = run(
            "emit", "--generations", "100", "--users", "10", "--seed", "2", "--json", data_dir=data
        )
        assert more.returncode == 0, more.stderr
        emitted += json.loads(more.stdout.strip().splitlines()[-1])["emitted"]
        deadline = time.monotonic() + 60
        while events_seen(data) < emitted:  # and follows new traffic
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert events_seen(data) == emitted

        # The served URL is read-only.
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import DatabaseError

        user_pw, host_port = url.removeprefix("http://").split("@")
        host, port = host_port.split("/")[0].split(":")
        user, password = user_pw.split(":")
        client = clickhouse_connect.get_client(
            host=host, port=int(port), username=user, password=password
        )
        assert client.command("SELECT count() FROM audit.events") == emitted
        with pytest.raises(DatabaseError):
            client.command("DROP TABLE audit.events")
        client.close()

        # The store is the server's: a second owner is refused with one clear line.
        consume = run("consume", data_dir=data)
        assert consume.returncode == 2
        assert "in use by process" in consume.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert not (data / "serve.json").exists()
    assert events_seen(data) == emitted  # and afterwards the store opens directly again
