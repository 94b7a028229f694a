"""The embedded bus against real SQLite files: what only it does (its inspection methods, topic
creation, commit checks, concurrency across threads and processes, bad files). What every bus
promises (offsets, keys and partitions, commits, seeking, polling) is in
tests/test_bus_contract.py, run against this log and Kafka alike."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_audit.producers.errors import AuditError, BusError, BusUnavailableError
from aigc_audit.producers.transports.base import BusMessage
from aigc_audit.producers.transports.embedded_log import (
    DEFAULT_FILENAME,
    EmbeddedLog,
    EmbeddedLogReader,
    murmur2,
    partition_for_key,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _drain(reader: EmbeddedLogReader, max_messages: int = 500) -> list[BusMessage]:
    """Poll until nothing new is left; returns everything read, in poll order."""
    out: list[BusMessage] = []
    while batch := reader.poll(max_messages):
        out.extend(batch)
    return out


def _run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    with EmbeddedLog(tmp_path / "bus.sqlite3") as opened:
        yield opened


# -- basics -----------------------------------------------------------------------------------


def test_inspection_of_topics_partitions_and_counts(log: EmbeddedLog) -> None:
    with log.writer() as writer:
        writer.publish_many("audit", [(None, b"%d" % i) for i in range(110)])
    assert log.topics() == ["audit"]
    assert log.partitions_for("audit") == [0]
    assert log.partitions_for("nope") == []
    assert log.message_count("audit") == 110
    assert log.end_offsets("audit") == {0: 110}


def test_directory_path_uses_default_file_name(tmp_path: Path) -> None:
    with EmbeddedLog(tmp_path) as opened:
        assert opened.path == tmp_path / DEFAULT_FILENAME
    assert (tmp_path / DEFAULT_FILENAME).is_file()


# -- partitions -------------------------------------------------------------------------------


def test_murmur2_matches_kafka() -> None:
    # Vectors from Kafka's UtilsTest: the same key goes to the same partition on either bus.
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107


def test_murmur2_agrees_with_kafka_python() -> None:
    kafka_default = pytest.importorskip("kafka.partitioner.default")
    for n in range(40):
        key = bytes(range(n))
        assert murmur2(key) & 0xFFFFFFFF == kafka_default.murmur2(key) & 0xFFFFFFFF


def test_topic_keeps_its_partition_count(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    with EmbeddedLog(path, partitions=3) as log:
        assert log.create_topic("keys", partitions=1) == 1
        with log.writer() as writer:
            writer.publish("auto", b"k", b"v")
    with EmbeddedLog(path, partitions=8) as log:
        assert log.partitions_for("auto") == [0, 1, 2]
        assert log.partitions_for("keys") == [0]
        assert log.create_topic("auto", partitions=8) == 3


def test_unkeyed_messages_rotate_over_partitions(tmp_path: Path) -> None:
    with EmbeddedLog(tmp_path / "bus.sqlite3", partitions=3) as log, log.writer() as writer:
        for i in range(6):
            writer.publish_many("t", [(None, b"%d-a" % i), (None, b"%d-b" % i)])
        # A batch of one publish_many call stays together in one partition.
        ends = log.end_offsets("t")
        assert ends == {0: 4, 1: 4, 2: 4}


# -- consumer positions -----------------------------------------------------------------------


def test_position_is_the_next_offset_to_poll(log: EmbeddedLog) -> None:
    with log.writer() as writer:
        writer.publish_many("t", [(None, b"%d" % i) for i in range(8)])
    with log.reader("g", ["t"]) as reader:
        assert reader.position("t", 0) == 0
        reader.poll(max_messages=3)
        assert reader.position("t", 0) == 3
        reader.commit()
        assert reader.position("t", 0) == 3
        assert reader.position("t", 1) is None


def test_commit_rejects_impossible_positions(log: EmbeddedLog) -> None:
    with log.writer() as writer:
        writer.publish_many("t", [(None, b"x"), (None, b"y")])
    with log.reader("g", ["t"]) as reader:
        with pytest.raises(ValueError, match="end offset is 2"):
            reader.commit({("t", 0): 3})
        with pytest.raises(ValueError, match=">= 0"):
            reader.commit({("t", 0): -1})
        assert reader.committed("t", 0) is None
        reader.commit({("t", 0): 2})  # the end offset itself is fine: "read everything"
        assert reader.committed("t", 0) == 2


def test_reader_discovers_topics_created_later(log: EmbeddedLog) -> None:
    with log.reader("g", ["late"]) as reader:
        assert reader.poll() == []
        assert reader.end_offsets() == {}
        with log.writer() as writer:
            writer.publish("late", None, b"hello")
        assert [m.value for m in reader.poll()] == [b"hello"]
        assert reader.end_offsets() == {("late", 0): 1}


# -- compaction view --------------------------------------------------------------------------


def test_latest_by_key_keeps_last_value_per_key(tmp_path: Path) -> None:
    with EmbeddedLog(tmp_path / "bus.sqlite3", partitions=3) as log, log.writer() as writer:
        writer.publish("keys", b"k1", b"v1")
        writer.publish("keys", b"k2", b"v1")
        writer.publish("keys", None, b"unkeyed")
        writer.publish_many("keys", [(b"k1", b"v2"), (b"k3", b"v1"), (b"k1", b"v3")])
        writer.publish("other", b"k1", b"not this topic")
        latest = log.latest_by_key("keys")
        assert {k: m.value for k, m in latest.items()} == {b"k1": b"v3", b"k2": b"v1", b"k3": b"v1"}
        assert latest[b"k1"].partition == partition_for_key(b"k1", 3)
        assert log.latest_by_key("missing") == {}


# -- concurrency and durability ---------------------------------------------------------------


@pytest.mark.parametrize("shared_writer", [True, False], ids=["shared-writer", "writer-each"])
def test_two_threads_get_dense_distinct_offsets(log: EmbeddedLog, shared_writer: bool) -> None:
    n = 200
    shared = log.writer()
    errors: list[BaseException] = []

    def publish(name: str) -> None:
        writer = shared if shared_writer else log.writer()
        try:
            for i in range(n):
                if i % 20 == 0:
                    writer.publish_many("t", [(None, f"{name}:{i}:{j}".encode()) for j in range(3)])
                else:
                    writer.publish("t", None, f"{name}:{i}".encode())
        except BaseException as exc:
            errors.append(exc)
        finally:
            if not shared_writer:
                writer.close()

    threads = [threading.Thread(target=publish, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    assert errors == []
    per_thread = n + (n // 20) * 2  # every 20th step publishes three messages
    with log.reader("g", ["t"]) as reader:
        messages = _drain(reader)
    assert [m.offset for m in messages] == list(range(2 * per_thread))
    assert len({m.value for m in messages}) == 2 * per_thread


_PROCESS_PUBLISHER = """
import sys, time
from pathlib import Path
from aigc_audit.producers.transports.embedded_log import EmbeddedLog

path, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
log = EmbeddedLog(path, partitions=1)
writer = log.writer()
(go.parent / f"ready-{name}").touch()
while not go.exists():
    time.sleep(0.001)
seq = 0
for i in range(n):
    if i % 10 == 0:
        writer.publish_many("t", [(None, f"{name}:{seq + j}".encode()) for j in range(4)])
        seq += 4
    else:
        writer.publish("t", None, f"{name}:{seq}".encode())
        seq += 1
print(seq)
"""


def test_processes_publishing_concurrently_get_dense_offsets(tmp_path: Path) -> None:
    # The file does not exist yet: the children also race to create it.
    path = tmp_path / "bus.sqlite3"
    go = tmp_path / "go"
    names = ["p0", "p1", "p2"]
    children = [_run_python(_PROCESS_PUBLISHER, str(path), name, "150", str(go)) for name in names]
    # Release them together once all are ready, so their publishes really overlap.
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{name}").exists() for name in names):
        assert all(child.poll() is None for child in children), "a publisher died early"
        assert time.monotonic() < deadline, "publishers never got ready"
        time.sleep(0.01)
    go.touch()
    sent: dict[str, int] = {}
    for name, child in zip(names, children, strict=True):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        sent[name] = int(out)
    with EmbeddedLog(path) as log, log.reader("g", ["t"]) as reader:
        messages = _drain(reader)
    assert [m.offset for m in messages] == list(range(sum(sent.values())))
    seqs: dict[str, list[int]] = defaultdict(list)
    for message in messages:
        name, seq = message.value.decode().split(":")
        seqs[name].append(int(seq))
    # Nothing lost, nothing duplicated, and each process's messages in the order it sent them.
    assert {name: seqs[name] for name in names} == {name: list(range(sent[name])) for name in names}
    # The processes really did interleave, or this test proved little.
    assert len({m.value.split(b":")[0] for m in messages[: len(messages) // 2]}) > 1


_CRASHING_PUBLISHER = """
import sys, time
from aigc_audit.producers.transports.embedded_log import EmbeddedLog

writer = EmbeddedLog(sys.argv[1]).writer()
for i in range(50):
    writer.publish("t", b"producer-1", b"event-%d" % i)
print("published", flush=True)
time.sleep(120)  # killed here: no close(), no checkpoint, no clean exit
"""

_READER = """
import sys
from aigc_audit.producers.transports.embedded_log import EmbeddedLog

reader = EmbeddedLog(sys.argv[1]).reader("other-process", ["t"])
for message in reader.poll(1000, timeout_s=10):
    print(message.offset, message.value.decode())
reader.commit()
"""


def test_messages_survive_a_killed_writer_process(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    child = _run_python(_CRASHING_PUBLISHER, str(path))
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "published", child.stderr.read() if child.stderr else ""
    finally:
        child.kill()
        child.communicate(timeout=30)
    with EmbeddedLog(path) as log, log.reader("g", ["t"]) as reader:
        messages = _drain(reader)
    assert [m.value for m in messages] == [b"event-%d" % i for i in range(50)]


def test_messages_written_here_are_read_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    with EmbeddedLog(path) as log, log.writer() as writer:
        writer.publish_many("t", [(None, b"from-parent-%d" % i) for i in range(3)])
    child = _run_python(_READER, str(path))
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.splitlines() == [f"{i} from-parent-{i}" for i in range(3)]
    # The child's commit is visible here too.
    with EmbeddedLog(path) as log, log.reader("other-process", ["t"]) as reader:
        assert reader.committed("t", 0) == 3


def test_busy_file_raises_bus_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    with EmbeddedLog(path, busy_timeout_s=0.1) as log, log.writer() as writer:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
            with pytest.raises(BusUnavailableError, match="held by another process"):
                writer.publish("t", None, b"x")
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        writer.publish("t", None, b"x")  # the failed publish left nothing behind
        assert log.end_offsets("t") == {0: 1}


# -- bad input --------------------------------------------------------------------------------


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 20)
    with pytest.raises(BusUnavailableError) as info:
        EmbeddedLog(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert isinstance(info.value, AuditError)


def test_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "bus.sqlite3"
    with pytest.raises(BusUnavailableError, match="does not exist") as info:
        EmbeddedLog(path)
    assert str(path.parent) in str(info.value)
    assert not path.parent.exists()


def test_foreign_sqlite_database_is_not_adopted(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE users (id INTEGER)")
    other.close()
    with pytest.raises(BusUnavailableError, match="not an aigc-audit bus log"):
        EmbeddedLog(path)
    with sqlite3.connect(path) as other:
        tables = {r[0] for r in other.execute("SELECT name FROM sqlite_master")}
    other.close()
    assert tables == {"users"}


def test_oversized_message_is_refused_whole(tmp_path: Path) -> None:
    with EmbeddedLog(tmp_path / "bus.sqlite3", max_message_bytes=100) as log:
        with log.writer() as writer:
            writer.publish("t", None, b"ok")
            with pytest.raises(BusError, match="over the bus limit"):
                writer.publish_many("t", [(None, b"fine"), (None, b"x" * 101)])
        assert log.message_count("t") == 1


@pytest.mark.parametrize("topic", ["", "has space", "a/b", "..", "x" * 250])
def test_invalid_topic_names(log: EmbeddedLog, topic: str) -> None:
    with log.writer() as writer, pytest.raises(BusError, match="invalid topic name"):
        writer.publish(topic, None, b"x")


def test_wrong_types_and_use_after_close(log: EmbeddedLog) -> None:
    writer = log.writer()
    with pytest.raises(TypeError, match="value #0 must be bytes"):
        writer.publish("t", None, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key #0"):
        writer.publish("t", "key", b"x")  # type: ignore[arg-type]
    writer.close()
    writer.close()
    with pytest.raises(BusError, match="after close"):
        writer.publish("t", None, b"x")
    with pytest.raises(TypeError):
        log.reader("g", "t")
    with pytest.raises(ValueError):
        log.reader("", ["t"])
    with log.reader("g", ["t"]) as reader, pytest.raises(ValueError):
        reader.poll(max_messages=0)
