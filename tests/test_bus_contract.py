"""The bus contract: what every BusWriter/BusReader pair promises (producers/transports/base.py),
run against both buses, the embedded SQLite log and the session's real Kafka broker (secured,
tests/kafka_broker.py; the ``kafka`` param is marked ``kafka``).

Each test gets a :class:`Bus`: writers, readers of a consumer group and fresh topics, all its
own (on Kafka, topic and group names carry a per-test prefix, as the broker is shared). The
tests assert only what both implementations really promise. Where they differ by design, the
test's docstring says so instead of asserting it; the bus-specific behaviour stays in
tests/test_embedded_log.py and tests/test_kafka_*.py.

Waiting: a Kafka reader gets its partitions only after it has joined its group, which takes a
few polls, so the tests poll until what they expect has arrived (:func:`drain`) or until the
reader holds the partitions it will read (:func:`settle`) instead of trusting one poll.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.producers.transports.base import (
    BusMessage,
    BusReader,
    BusWriter,
    TopicPartition,
    positions_after,
)
from aigc_audit.producers.transports.embedded_log import EmbeddedLog, partition_for_key

#: How long one poll of a helper waits for something new.
POLL_S = 0.3
#: How long a helper keeps polling before the test fails.
DEADLINE_S = 60.0


@dataclass
class Bus:
    """One bus for one test: everything it hands out is closed at the end of the test."""

    name: str
    _writer: Callable[[], BusWriter]
    _reader: Callable[[str, Sequence[str]], BusReader]
    _topic: Callable[[str, int], None]
    prefix: str = field(default_factory=lambda: f"c-{uuid.uuid4().hex[:10]}")
    _opened: list[Any] = field(default_factory=list)

    def writer(self) -> BusWriter:
        writer = self._writer()
        self._opened.append(writer)
        return writer

    def reader(self, group: str, topics: Sequence[str]) -> BusReader:
        """A reader of ``group`` (a name of this test's own) over ``topics``."""
        reader = self._reader(f"{self.prefix}-{group}", list(topics))
        self._opened.append(reader)
        return reader

    def topic(self, name: str = "t", partitions: int = 1) -> str:
        """Create a fresh topic of ``partitions`` and return its full name."""
        full = f"{self.prefix}.{name}"
        self._topic(full, partitions)
        return full

    def close(self) -> None:
        for opened in reversed(self._opened):
            opened.close()


def _embedded(tmp_path: Path) -> Iterator[Bus]:
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:

        def create(topic: str, partitions: int) -> None:
            log.create_topic(topic, partitions)

        bus = Bus("embedded", log.writer, log.reader, create)
        try:
            yield bus
        finally:
            bus.close()


def _kafka(state: Any) -> Iterator[Bus]:
    from kafka.admin import NewTopic

    from aigc_audit.producers.transports.kafka_reader import KafkaGroupReader
    from aigc_audit.producers.transports.kafka_security import PLAINTEXT, KafkaSecurity
    from aigc_audit.producers.transports.kafka_topics import admin_client
    from aigc_audit.producers.transports.kafka_writer import KafkaLogWriter, KafkaWriterConfig

    # As the admin principal (a super user): the topics and groups are the test's own, no ACLs.
    security = PLAINTEXT
    if state.secure:
        admin = state.credentials()["admin"]
        security = KafkaSecurity(
            protocol=state.security_protocol,
            sasl_mechanism=state.sasl_mechanism,
            username=admin["username"],
            password=admin["password"],
            ssl_cafile=state.ca_file,
        )
    bootstrap = state.bootstrap

    def create(topic: str, partitions: int) -> None:
        client = admin_client(bootstrap, security)
        try:
            client.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=30_000)
            deadline = time.monotonic() + DEADLINE_S
            while True:  # a topic is usable once each of its partitions has a leader
                (described,) = client.describe_topics([topic])
                parts = described.get("partitions") or []
                if len(parts) == partitions and all(
                    p.get("leader_id", p.get("leader", -1)) >= 0 for p in parts
                ):
                    return
                assert time.monotonic() < deadline, f"{topic} has no leaders"
                time.sleep(0.1)
        finally:
            client.close()

    bus = Bus(
        "kafka",
        lambda: KafkaLogWriter(KafkaWriterConfig(bootstrap=bootstrap, security=security)),
        lambda group, topics: KafkaGroupReader(bootstrap, group, topics, security=security),
        create,
    )
    try:
        yield bus
    finally:
        bus.close()


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    if request.param == "kafka":
        yield from _kafka(request.getfixturevalue("kafka_broker"))
    else:
        yield from _embedded(tmp_path)


def drain(reader: BusReader, expected: int, max_messages: int = 500) -> list[BusMessage]:
    """Poll until ``expected`` messages have arrived (and then for nothing more); all of them,
    in poll order."""
    out: list[BusMessage] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(out) < expected:
        assert time.monotonic() < deadline, f"got {len(out)} of {expected} messages"
        out += reader.poll(max_messages, timeout_s=POLL_S)
    out += reader.poll(max_messages)
    return out


def take(reader: BusReader, n: int) -> list[BusMessage]:
    """Poll exactly ``n`` messages (each poll asks for no more than are still missing)."""
    out: list[BusMessage] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(out) < n:
        assert time.monotonic() < deadline, f"got {len(out)} of {n} messages"
        out += reader.poll(max_messages=n - len(out), timeout_s=POLL_S)
    return out


def settle(reader: BusReader, partitions: set[TopicPartition]) -> list[BusMessage]:
    """Poll until the reader holds ``partitions`` (a Kafka reader gets them when it has joined
    its group; an embedded reader has them at once); what those polls returned."""
    out: list[BusMessage] = []
    deadline = time.monotonic() + DEADLINE_S
    while not partitions <= set(reader.end_offsets()):
        assert time.monotonic() < deadline, f"never assigned {sorted(partitions)}"
        out += reader.poll(timeout_s=POLL_S)
    return out


# -- basics -----------------------------------------------------------------------------------


def test_implements_the_bus_protocols(bus: Bus) -> None:
    topic = bus.topic()
    assert isinstance(bus.writer(), BusWriter)
    assert isinstance(bus.reader("g", [topic]), BusReader)


def test_offsets_are_dense_and_ordered(bus: Bus) -> None:
    """Timestamps: the embedded log stamps the append time, Kafka (CreateTime, the topic's
    default) the producer's send time; either way they rise for one writer publishing in
    sequence and are close to now."""
    topic = bus.topic("audit")
    writer = bus.writer()
    for i in range(10):
        writer.publish(topic, None, f"single-{i}".encode())
    writer.publish_many(topic, [(None, f"many-{i}".encode()) for i in range(100)])
    writer.publish_many(topic, [])  # a no-op, not an error
    reader = bus.reader("g", [topic])
    messages = drain(reader, 110, max_messages=7)
    assert [m.offset for m in messages] == list(range(110))
    assert [m.value for m in messages] == [f"single-{i}".encode() for i in range(10)] + [
        f"many-{i}".encode() for i in range(100)
    ]
    assert {(m.topic, m.partition) for m in messages} == {(topic, 0)}
    assert reader.end_offsets() == {(topic, 0): 110}
    timestamps = [m.timestamp_us for m in messages]
    assert timestamps == sorted(timestamps)
    assert abs(timestamps[-1] - time.time_ns() // 1000) < 60_000_000


def test_topics_are_separate_logs(bus: Bus) -> None:
    a, b = bus.topic("a"), bus.topic("b")
    writer = bus.writer()
    writer.publish(a, None, b"a0")
    writer.publish(b, None, b"b0")
    writer.publish(a, None, b"a1")
    got = {(m.topic, m.offset): m.value for m in drain(bus.reader("g", [a, b]), 3)}
    assert got == {(a, 0): b"a0", (a, 1): b"a1", (b, 0): b"b0"}


def test_empty_poll_returns_nothing(bus: Bus) -> None:
    topic = bus.topic(partitions=2)
    reader = bus.reader("g", [topic])
    assert settle(reader, {(topic, 0), (topic, 1)}) == []
    assert reader.poll() == []
    started = time.monotonic()
    assert reader.poll(timeout_s=0.2) == []
    assert time.monotonic() - started >= 0.2
    assert reader.end_offsets() == {(topic, 0): 0, (topic, 1): 0}


def test_large_message_within_the_limits_round_trips(bus: Bus) -> None:
    """700 KB of incompressible bytes: under the embedded log's 1 MiB default and the broker's
    default message.max.bytes (about 1 MiB). What happens over a limit differs: the embedded
    log raises BusError naming the limit (tests/test_embedded_log.py); the Kafka writer gets
    kafka-python's MessageSizeTooLargeError, which it reports as a BusUnavailableError."""
    topic = bus.topic()
    big = os.urandom(700_000)
    writer = bus.writer()
    writer.publish(topic, b"big", big)
    writer.publish_many(topic, [(b"big", big[::-1]), (b"small", b"x")])
    messages = drain(bus.reader("g", [topic]), 3)
    assert {m.value for m in messages} == {big, big[::-1], b"x"}
    assert [m.value for m in messages if m.key == b"big"] == [big, big[::-1]]


def test_close_is_idempotent_and_what_was_published_stays(bus: Bus) -> None:
    """Publishing after close: the embedded writer raises BusError, as the protocol says; the
    Kafka writer makes a new producer on the next publish instead, so it is not asserted."""
    topic = bus.topic()
    writer = bus.writer()
    writer.publish_many(topic, [(b"k", b"%d" % i) for i in range(3)])
    writer.close()
    writer.close()
    reader = bus.reader("g", [topic])
    assert [m.value for m in drain(reader, 3)] == [b"0", b"1", b"2"]
    reader.close()
    reader.close()


# -- partitions -------------------------------------------------------------------------------


def test_keyed_messages_land_in_one_stable_partition(bus: Bus) -> None:
    """Both buses place a key as Kafka's default partitioner does (murmur2), so a key's
    partition is the same on either. Unkeyed messages are spread differently (the embedded
    log rotates per publish call, kafka-python's sticky partitioner per record batch): not
    part of the contract."""
    topic = bus.topic("batches", partitions=4)
    keys = [f"producer-{i}".encode() for i in range(12)]
    writer = bus.writer()
    for seq in range(5):
        for key in keys:
            writer.publish(topic, key, key + b":%d" % seq)
    writer.publish_many(topic, [(key, key + b":5") for key in keys])
    # Another writer (a new process would do the same): the partition of a key does not move.
    again = bus.writer()
    for key in keys:
        again.publish(topic, key, key + b":6")
    messages = drain(bus.reader("g", [topic]), 7 * len(keys))
    partitions: dict[bytes, set[int]] = defaultdict(set)
    values: dict[bytes, list[bytes]] = defaultdict(list)
    for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
        assert message.key is not None
        partitions[message.key].add(message.partition)
        values[message.key].append(message.value)
    for key in keys:
        assert partitions[key] == {partition_for_key(key, 4)}
        assert values[key] == [key + b":%d" % seq for seq in range(7)]
    assert len({p for ps in partitions.values() for p in ps}) > 1  # keys do spread out
    per_partition: dict[int, list[int]] = defaultdict(list)
    for message in messages:
        per_partition[message.partition].append(message.offset)
    for offsets in per_partition.values():
        assert offsets == list(range(len(offsets)))


# -- consumer positions -----------------------------------------------------------------------


def test_reopened_reader_resumes_at_committed_next_offset(bus: Bus) -> None:
    """Committing beyond the end offset is refused by the embedded log (ValueError, see
    tests/test_embedded_log.py); Kafka takes any offset, so that is not part of the contract."""
    topic = bus.topic()
    bus.writer().publish_many(topic, [(None, b"%d" % i) for i in range(10)])
    reader = bus.reader("materialiser", [topic])
    assert reader.committed(topic, 0) is None
    polled = drain(reader, 10, max_messages=100)
    assert [m.offset for m in polled] == list(range(10))
    reader.commit({(topic, 0): 4})  # only the first four made it into the store
    assert reader.committed(topic, 0) == 4
    assert reader.poll(timeout_s=POLL_S) == []  # committing does not rewind the position
    reader.close()
    reader = bus.reader("materialiser", [topic])
    assert [m.offset for m in drain(reader, 6, max_messages=100)] == list(range(4, 10))
    reader.close()
    other = bus.reader("another-group", [topic])
    assert [m.offset for m in drain(other, 10, max_messages=100)] == list(range(10))


def test_uncommitted_messages_are_redelivered(bus: Bus) -> None:
    topic = bus.topic()
    bus.writer().publish_many(topic, [(None, b"%d" % i) for i in range(5)])
    reader = bus.reader("g", [topic])
    assert len(drain(reader, 5)) == 5
    reader.close()
    reader = bus.reader("g", [topic])
    again = drain(reader, 5)
    assert [m.offset for m in again] == list(range(5))
    reader.commit(positions_after(again))
    reader.close()
    reader = bus.reader("g", [topic])
    assert settle(reader, {(topic, 0)}) == []
    assert reader.poll(timeout_s=POLL_S) == []
    assert reader.committed(topic, 0) == 5


def test_commit_without_argument_commits_current_positions(bus: Bus) -> None:
    """The embedded reader also tells its in-memory position (``position()``, tested in
    tests/test_embedded_log.py); the Kafka reader does not, so only the commit is compared."""
    topic = bus.topic()
    bus.writer().publish_many(topic, [(None, b"%d" % i) for i in range(8)])
    reader = bus.reader("g", [topic])
    assert [m.offset for m in take(reader, 3)] == [0, 1, 2]
    reader.commit()
    assert reader.committed(topic, 0) == 3
    reader.close()
    reader = bus.reader("g", [topic])
    assert reader.committed(topic, 0) == 3
    assert take(reader, 1)[0].offset == 3


def test_seek_to_beginning_replays_everything(bus: Bus) -> None:
    topic = bus.topic()
    bus.writer().publish_many(topic, [(None, b"%d" % i) for i in range(6)])
    reader = bus.reader("g", [topic])
    reader.commit(positions_after(drain(reader, 6)))
    reader.close()
    reader = bus.reader("g", [topic])
    assert settle(reader, {(topic, 0)}) == []
    assert reader.poll() == []
    reader.seek_to_beginning()
    assert [m.offset for m in drain(reader, 6)] == list(range(6))
    assert reader.committed(topic, 0) == 6  # seeking does not touch the committed position


def test_positions_after() -> None:
    messages = [
        BusMessage("t", 0, 4, None, b"", 0),
        BusMessage("t", 0, 2, None, b"", 0),
        BusMessage("t", 1, 0, None, b"", 0),
    ]
    assert positions_after(messages) == {("t", 0): 5, ("t", 1): 1}


def test_poll_with_timeout_wakes_up_on_new_data(bus: Bus) -> None:
    """A Kafka reader's wake-up is bounded by the broker's fetch wait (0.5 s by default), the
    embedded one's by its 50 ms back-off; both well inside the bound asserted here."""
    topic = bus.topic()
    writer = bus.writer()
    writer.publish(bus.topic("warm-up"), None, b"")  # a Kafka writer connects on first use
    reader = bus.reader("g", [topic])
    assert settle(reader, {(topic, 0)}) == []
    started = time.monotonic()
    assert reader.poll(timeout_s=0.2) == []
    assert time.monotonic() - started >= 0.2

    timer = threading.Timer(0.3, writer.publish, args=(topic, None, b"late"))
    timer.start()
    started = time.monotonic()
    try:
        messages = reader.poll(timeout_s=20)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert [m.value for m in messages] == [b"late"]
    assert 0.25 <= elapsed < 5
