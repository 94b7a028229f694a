"""The producer's disk spool and the client's behaviour when the bus is down.

The client tests run against a real :class:`EmbeddedLog` behind a switchable test double, so they
check our logic (spool, drain, fail-closed), not a broker's; the same scenarios run later against
a real Kafka broker.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.producers import AuditClient, BusError, BusUnavailableError, Generation, SigningKey
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.errors import AuditTrailDownError, SpoolError
from aigc_audit.producers.signing import GENESIS_DIGEST
from aigc_audit.producers.spool import DiskSpool, SpoolDepth
from aigc_audit.producers.transports.base import AvailabilityCheck, BusWriter
from aigc_audit.producers.transports.embedded_log import EmbeddedLog, EmbeddedLogWriter

TOPIC = "aigc-audit.events"
ROOT = Path(__file__).resolve().parents[1]


# --- DiskSpool ------------------------------------------------------------------------------


def test_spool_is_a_fifo_with_depth(tmp_path: Path) -> None:
    with DiskSpool(tmp_path / "spool") as spool:
        assert spool.depth == SpoolDepth(0, 0) and spool.peek(5) == []
        seqs = [spool.append(TOPIC, b"k", b"v" * n) for n in (1, 2, 3)]
        spool.append("other", None, b"xyz")
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        assert spool.depth == SpoolDepth(4, (1 + 1) + (1 + 2) + (1 + 3) + 3)
        head = spool.peek(2)
        assert [(m.topic, m.key, m.value) for m in head] == [
            (TOPIC, b"k", b"v"),
            (TOPIC, b"k", b"vv"),
        ]
        spool.remove_through(head[-1].seq)
        assert spool.depth == SpoolDepth(2, 4 + 3)
        assert [m.value for m in spool.peek(10)] == [b"vvv", b"xyz"]
        assert spool.peek(10)[1].key is None
        spool.remove_through(head[-1].seq)  # already gone: a no-op
        assert len(spool) == 2


def test_spool_survives_reopen_and_never_reuses_a_seq(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with DiskSpool(directory) as spool:
        for n in range(5):
            spool.append(TOPIC, b"k", str(n).encode())
        spool.remove_through(spool.peek(2)[-1].seq)
    with DiskSpool(directory) as spool:
        assert spool.depth == SpoolDepth(3, 3 * 2)
        messages = spool.peek(10)
        assert [m.value for m in messages] == [b"2", b"3", b"4"]
        spool.remove_through(messages[-1].seq)
        assert spool.depth == SpoolDepth(0, 0)
        last = messages[-1].seq
    with DiskSpool(directory) as spool:
        # Emptied and reopened: seq still rises, so a stale remove_through cannot hit new data.
        assert spool.append(TOPIC, b"k", b"new") > last


def test_spool_refuses_a_second_opener_and_foreign_files(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with DiskSpool(directory), pytest.raises(SpoolError, match="in use"):
        DiskSpool(directory)
    DiskSpool(directory).close()  # released on close

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    sqlite3.connect(foreign / "spool.sqlite3").execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(SpoolError, match="not a spool"):
        DiskSpool(foreign)

    spool = DiskSpool(tmp_path / "closed")
    spool.close()
    spool.close()  # idempotent
    with pytest.raises(SpoolError, match="after close"):
        spool.append(TOPIC, None, b"x")


_APPEND_FOREVER = """
import sys
from aigc_audit.producers.spool import DiskSpool

spool = DiskSpool(sys.argv[1])
n = 0
while True:
    # Values of varied length so a torn write would show as a wrong value, not just a gap.
    spool.append("t", str(n).encode(), str(n).encode() * (1 + n % 13) * 50)
    print(n, flush=True)
    n += 1
"""


def test_spool_after_kill_9_is_a_clean_prefix(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    proc = subprocess.Popen(
        [sys.executable, "-c", _APPEND_FOREVER, str(directory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = -1
    try:
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 150:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    acknowledged = max([acknowledged, *(int(x) for x in rest.split())])
    assert proc.returncode == -signal.SIGKILL

    with DiskSpool(directory) as spool:
        messages = spool.peek(1_000_000)
        assert spool.depth.messages == len(messages)
    keys = [int(m.key or b"-1") for m in messages]
    # Everything acknowledged is there; at most the append in flight at the kill is extra.
    assert keys == list(range(len(keys)))
    assert acknowledged + 1 <= len(keys) <= acknowledged + 2
    for m in messages:
        n = int(m.key or b"")
        assert m.value == str(n).encode() * (1 + n % 13) * 50
    assert [m.seq for m in messages] == sorted({m.seq for m in messages})


def test_spool_is_thread_safe(tmp_path: Path) -> None:
    writers, per_writer = 4, 100
    received: list[tuple[int, bytes]] = []
    done = threading.Event()
    with DiskSpool(tmp_path / "spool") as spool:

        def produce(w: int) -> None:
            for n in range(per_writer):
                spool.append(TOPIC, f"{w}".encode(), f"{w}:{n}".encode())

        def consume() -> None:
            while len(received) < writers * per_writer and not done.is_set():
                chunk = spool.peek(7)
                if chunk:
                    received.extend((m.seq, m.value) for m in chunk)
                    spool.remove_through(chunk[-1].seq)

        threads = [threading.Thread(target=produce, args=(w,)) for w in range(writers)]
        consumer = threading.Thread(target=consume)
        consumer.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        consumer.join(timeout=30)
        done.set()
        assert spool.depth == SpoolDepth(0, 0)
    assert [seq for seq, _ in received] == sorted(seq for seq, _ in received)
    values = [value.decode() for _, value in received]
    assert len(values) == len(set(values)) == writers * per_writer
    for w in range(writers):  # each writer's messages kept their order
        mine = [int(v.split(":")[1]) for v in values if v.startswith(f"{w}:")]
        assert mine == list(range(per_writer))


# --- the client over a switchable bus ---------------------------------------------------------


class SwitchableBus:
    """A BusWriter over a real embedded-log writer that raises BusUnavailableError while down.

    Has no ``check_available``: the client must cope with writers that cannot be asked.
    """

    def __init__(self, inner: EmbeddedLogWriter, *, up: bool = True) -> None:
        self.inner = inner
        self.up = up
        self.attempts = 0

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.publish_many(topic, [(key, value)])

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.attempts += 1
        if not self.up:
            raise BusUnavailableError("test bus is down")
        self.inner.publish_many(topic, items)

    def close(self) -> None:
        self.inner.close()


class CheckableBus(SwitchableBus):
    """The same, with the optional availability check a Kafka writer has."""

    def check_available(self) -> None:
        if not self.up:
            raise BusUnavailableError("test bus is down")


def test_the_doubles_are_bus_writers(tmp_path: Path) -> None:
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        plain, checkable = SwitchableBus(log.writer()), CheckableBus(log.writer())
        assert isinstance(plain, BusWriter) and not isinstance(plain, AvailabilityCheck)
        assert isinstance(checkable, BusWriter) and isinstance(checkable, AvailabilityCheck)
        assert isinstance(log.writer(), AvailabilityCheck)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    with EmbeddedLog(tmp_path / "bus.sqlite3") as opened:
        yield opened


KEY = SigningKey.generate()
FAST: dict[str, Any] = {
    "batch_size": 2,
    "linger": 0.01,
    "retry_backoff": 0.01,
    "max_retry_backoff": 0.05,
    "availability_interval": 0.05,
}


def client(
    bus: BusWriter, state: Path | None, producer_id: str = "svc-1", **kw: Any
) -> AuditClient:
    return AuditClient(
        service_id="svc",
        producer_id=producer_id,
        key=KEY,
        bus=bus,
        state_dir=state,
        **{**FAST, **kw},
    )


def gen(n: int) -> Generation:
    return Generation(
        request_id=f"r{n}",
        model_name="m",
        model_version="1",
        filing_number="F-1",
        modality="text",
        channel="api",
        subject="s1",
        input_sha256=hashlib.sha256(b"in").digest(),
        output_sha256=hashlib.sha256(b"out").digest(),
        output_bytes=10,
        explicit_label=True,
        safety_verdict="passed",
        latency_ms=5,
        occurred_at=datetime(2026, 9, 1, 12, tzinfo=UTC),
    )


def on_bus(log: EmbeddedLog, producer_id: str | None = None) -> list[SignedBatch]:
    reader = log.reader(f"test-{uuid.uuid4()}", [TOPIC])
    try:
        batches = [SignedBatch.decode(m.value) for m in reader.poll(max_messages=100_000)]
    finally:
        reader.close()
    return [b for b in batches if producer_id is None or b.producer_id == producer_id]


def event_ids(batches: list[SignedBatch]) -> list[uuid.UUID]:
    catalogue = default_catalogue()
    return [catalogue.decode(e)[1]["head"]["event_id"] for b in batches for e in b.events]


def assert_chain(batches: list[SignedBatch]) -> None:
    """Sequences 0..n-1 in bus order, each batch linked to the one before."""
    assert [b.sequence for b in batches] == list(range(len(batches)))
    prev = GENESIS_DIGEST
    for batch in batches:
        assert batch.prev_digest == prev
        batch.verify(KEY.public_key)
        prev = batch.digest


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_down_bus_spools_then_drains_in_order(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = SwitchableBus(log.writer(), up=False)
    audit = client(bus, tmp_path / "state")
    ids = [audit.generation(gen(n)) for n in range(10)]
    audit.flush(timeout=5)  # durable in the spool: flush does not wait for the bus
    assert audit.spool_depth.messages == 5 and audit.spool_depth.bytes > 0
    assert audit.stats.batches_spooled == 5 and audit.stats.spool_messages == 5
    assert on_bus(log) == []
    assert (tmp_path / "state" / "spool" / "svc-1" / "spool.sqlite3").exists()

    bus.up = True
    audit.drain(timeout=5)
    assert audit.spool_depth == SpoolDepth(0, 0) and audit.stats.spool_messages == 0
    ids += [audit.generation(gen(n)) for n in range(10, 12)]  # straight to the bus again
    audit.close()
    batches = on_bus(log)
    assert_chain(batches)
    assert event_ids(batches) == ids  # every event exactly once, in emission order
    assert audit.stats.batches_published == 6 and audit.stats.events_published == 12


def test_new_batches_queue_behind_the_spool(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = SwitchableBus(log.writer(), up=False)
    # A long backoff: once the first attempt fails, nothing retries until drain() asks.
    audit = client(bus, tmp_path / "state", retry_backoff=30, max_retry_backoff=30)
    ids = [audit.generation(gen(n)) for n in range(4)]
    audit.flush(timeout=5)
    assert audit.spool_depth.messages == 2
    bus.up = True
    attempts = bus.attempts
    ids += [audit.generation(gen(n)) for n in range(4, 8)]
    audit.flush(timeout=5)
    assert bus.attempts == attempts  # the bus is up, but these must not overtake the spool
    assert audit.spool_depth.messages == 4 and on_bus(log) == []
    audit.drain(timeout=5)
    audit.close()
    batches = on_bus(log)
    assert_chain(batches)
    assert event_ids(batches) == ids


def test_a_restart_drains_the_old_spool_first(log: EmbeddedLog, tmp_path: Path) -> None:
    state = tmp_path / "state"
    bus = SwitchableBus(log.writer(), up=False)
    first = client(bus, state)
    ids = [first.generation(gen(n)) for n in range(6)]
    first.close()  # spooled batches stay on disk
    assert on_bus(log) == []

    # Still down at start: new batches must queue behind the old ones, not jump ahead.
    second = client(bus, state)
    assert second.spool_depth.messages == 3
    ids += [second.generation(gen(n)) for n in range(6, 10)]
    second.flush(timeout=5)
    assert second.spool_depth.messages == 5
    bus.up = True
    second.drain(timeout=5)
    second.close()
    batches = on_bus(log)
    assert_chain(batches)
    assert event_ids(batches) == ids


def test_a_restart_with_the_bus_up_drains_before_anything_new(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    bus = SwitchableBus(log.writer(), up=False)
    with client(bus, state) as first:
        ids = [first.generation(gen(n)) for n in range(3)]
    bus.up = True
    with client(bus, state) as second:
        ids += [second.generation(gen(n)) for n in range(3, 5)]
        second.drain(timeout=5)
    batches = on_bus(log)
    assert_chain(batches)
    assert event_ids(batches) == ids


def test_a_spooled_batch_whose_position_was_not_saved_does_not_fork(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    bus = SwitchableBus(log.writer())
    chain_file = state / "svc-1.chain.json"
    with client(bus, state) as first:
        first.generation(gen(0))
        first.generation(gen(1))
        first.flush(timeout=5)
        saved = chain_file.read_bytes()
        bus.up = False
        first.generation(gen(2))
        first.generation(gen(3))
    # A chain state older than the spool (restored from a backup, or written by a client from
    # before write-ahead, which saved it after spooling): the spool's newest batch wins.
    chain_file.write_bytes(saved)
    bus.up = True
    with client(bus, state) as second:
        second.generation(gen(4))
        second.drain(timeout=5)
    batches = on_bus(log)
    assert [len(b.events) for b in batches] == [2, 2, 1]
    assert_chain(batches)


def test_each_producer_keeps_its_own_chain_order(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = SwitchableBus(log.writer(), up=False)
    producers = [client(bus, tmp_path / "state", producer_id=f"svc-{p}") for p in range(3)]
    ids: dict[str, list[uuid.UUID]] = {p.producer_id: [] for p in producers}
    for n in range(9):
        for p in producers:
            ids[p.producer_id].append(p.generation(gen(n)))
    for p in producers:
        p.flush(timeout=5)
    bus.up = True
    for p in producers:
        p.drain(timeout=5)
        p.close()
    for producer_id, emitted in ids.items():
        batches = on_bus(log, producer_id)
        assert_chain(batches)
        assert event_ids(batches) == emitted


def test_drain_times_out_naming_the_depth(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = SwitchableBus(log.writer(), up=False)
    audit = client(bus, tmp_path / "state")
    for n in range(4):
        audit.generation(gen(n))
    with pytest.raises(BusError, match=r"drain timed out with 2 batches \(\d+ bytes\)"):
        audit.drain(timeout=0.3)
    assert audit.stats.publish_failures >= 2  # it kept trying, with backoff
    audit.close()


def test_without_a_spool_flush_times_out_and_the_worker_retries(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    for state, spool in ((tmp_path / "state", False), (None, True)):
        bus = SwitchableBus(log.writer(), up=False)
        audit = client(bus, state, spool=spool, producer_id=f"svc-{spool}")
        audit.generation(gen(0))
        with pytest.raises(BusError, match="1 events not yet durable on the bus"):
            audit.flush(timeout=0.3)
        assert audit.spool_depth == SpoolDepth(0, 0)
        bus.up = True
        audit.flush(timeout=5)
        audit.close()
        assert len(on_bus(log, f"svc-{spool}")) == 1
    assert not (tmp_path / "state" / "spool").exists()


def test_fail_closed_with_the_bus_down_refuses_and_emits_nothing(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    bus = CheckableBus(log.writer(), up=False)
    audit = client(bus, tmp_path / "state", fail_closed=True)
    for n in range(3):
        with pytest.raises(AuditTrailDownError, match="fail-closed"):
            audit.generation(gen(n))
    audit.flush(timeout=5)  # nothing was accepted, so nothing was lost
    assert bus.attempts == 0 and on_bus(log) == []
    assert audit.stats.events_emitted == 0
    assert not (tmp_path / "state" / "spool").exists()  # fail-closed never spools

    bus.up = True
    wait_for(lambda: _accepts(audit, 100))
    audit.close()
    batches = on_bus(log)
    assert len(batches) == 1
    assert_chain(batches)


def _accepts(audit: AuditClient, n: int) -> bool:
    try:
        audit.generation(gen(n))
    except AuditTrailDownError:
        return False
    return True


def test_fail_closed_bus_going_down_mid_stream(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = CheckableBus(log.writer())
    # A long cache: the bus goes down between two checks, so these events are accepted.
    audit = client(
        bus, tmp_path / "state", fail_closed=True, availability_interval=60, batch_size=10
    )
    kept = [audit.generation(gen(n)) for n in range(2)]
    audit.flush(timeout=5)
    bus.up = False
    for n in range(2, 5):
        audit.generation(gen(n))
    with pytest.raises(AuditTrailDownError, match="3 events") as info:
        audit.flush(timeout=5)
    assert info.value.events_not_written == 3 and audit.stats.events_lost == 3
    audit.flush(timeout=5)  # reported once
    with pytest.raises(AuditTrailDownError, match="down"):
        audit.generation(gen(9))  # the last publish failed
    audit.close()
    assert event_ids(on_bus(log)) == kept  # nothing of the failed batches reached the bus


class GatedBus(CheckableBus):
    """Holds each publish until ``gate`` opens, like a broker that takes its time to fail."""

    def __init__(self, inner: EmbeddedLogWriter) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.publishing = threading.Event()

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.publishing.set()
        assert self.gate.wait(10)
        super().publish_many(topic, items)


def test_fail_closed_fails_queued_batches_fast(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = GatedBus(log.writer())
    audit = client(bus, tmp_path / "state", fail_closed=True, availability_interval=60)
    audit.generation(gen(0))
    audit.generation(gen(1))  # a full batch: the worker starts publishing it
    assert bus.publishing.wait(5)
    audit.generation(gen(2))
    audit.generation(gen(3))  # the next batch queues behind the slow attempt
    bus.up = False
    bus.gate.set()
    with pytest.raises(AuditTrailDownError) as info:
        audit.flush(timeout=5)
    assert info.value.events_not_written == 4
    assert bus.attempts == 1  # the queued batch was failed without another slow attempt
    audit.close()
    assert on_bus(log) == []


def test_fail_closed_recovers_and_continues_the_chain(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = CheckableBus(log.writer())
    audit = client(bus, tmp_path / "state", fail_closed=True, availability_interval=0.05)
    kept = [audit.generation(gen(n)) for n in range(2)]
    audit.flush(timeout=5)
    bus.up = False
    wait_for(lambda: not _accepts(audit, 99))
    # Events accepted before the client noticed were lost whole; flush says so.
    with contextlib.suppress(AuditTrailDownError):
        audit.flush(timeout=5)
    bus.up = True
    wait_for(lambda: _accepts(audit, 3))
    kept.append(audit.generation(gen(4)))
    audit.flush(timeout=5)
    audit.close()
    batches = on_bus(log)
    assert_chain(batches)  # the lost batch's sequence was never on the bus: no gap, no fork
    assert event_ids(batches)[:2] == kept[:2] and event_ids(batches)[-1] == kept[-1]


def test_fail_closed_without_a_check_learns_from_publishing(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    bus = SwitchableBus(log.writer(), up=False)  # cannot be asked: presumed up at start
    audit = client(bus, tmp_path / "state", fail_closed=True, availability_interval=0.2)
    audit.generation(gen(0))
    with pytest.raises(AuditTrailDownError, match="1 events"):
        audit.flush(timeout=5)
    with pytest.raises(AuditTrailDownError):
        audit.generation(gen(1))
    bus.up = True
    time.sleep(0.25)  # after one interval, an event is let through as a trial
    audit.generation(gen(2))
    audit.close()
    assert_chain(on_bus(log))
    assert len(on_bus(log)) == 1


def test_fail_closed_close_reports_unreported_losses(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = CheckableBus(log.writer())
    audit = client(bus, tmp_path / "state", fail_closed=True, availability_interval=60)
    bus.up = False
    audit.generation(gen(0))
    with pytest.raises(AuditTrailDownError) as info:
        audit.close()
    assert info.value.events_not_written == 1
    audit.close()  # closed despite the error
    assert on_bus(log) == []


def test_fail_closed_publishes_an_earlier_spool_before_accepting_events(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    bus = CheckableBus(log.writer(), up=False)
    with client(bus, state) as spooling:
        ids = [spooling.generation(gen(n)) for n in range(4)]
    audit = client(bus, state, fail_closed=True)
    assert audit.spool_depth.messages == 2
    with pytest.raises(AuditTrailDownError, match="earlier run"):
        audit.generation(gen(4))
    bus.up = True
    with pytest.raises(AuditTrailDownError, match="earlier run"):
        audit.generation(gen(4))  # up, but the old batches come first
    audit.drain(timeout=5)
    ids.append(audit.generation(gen(4)))
    audit.close()
    batches = on_bus(log)
    assert_chain(batches)
    assert event_ids(batches) == ids
