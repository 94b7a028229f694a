"""Back-pressure in the client (issue 12, deliverable 7): what ``emit`` holds in memory is
bounded, and a full spool disk is reported by ``emit``, not at ``close``.

Attacks (or accidents) and what must hold:

* the bus is down and there is no spool: the queue stops at ``max_queue_events``; ``emit``
  waits ``emit_timeout_s`` and raises BackPressureError; what was accepted is published once
  the bus is back;
* the byte bound does the same on estimated encoded size;
* fail-closed (or ``emit_timeout_s=0``), a full queue refuses at once;
* the spool's disk fills up for real (a 512 KiB tmpfs, mounted by the test: we are root) or the
  spool reaches ``spool_max_bytes``: the next ``emit`` raises SpoolFullError, and every event
  accepted before is kept and reaches the bus, in chain order, once there is room or a bus.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.producers import AuditClient, BackPressureError, SpoolFullError
from aigc_audit.producers.errors import AuditTrailDownError, BusUnavailableError
from aigc_audit.producers.transports.embedded_log import EmbeddedLog, EmbeddedLogWriter
from tests.test_spool import FAST, KEY, SwitchableBus, assert_chain, event_ids, gen, on_bus


class HeldBus:
    """A BusWriter over a real embedded-log writer whose publishes wait until released: a bus
    that is up but slower than the callers."""

    def __init__(self, inner: EmbeddedLogWriter) -> None:
        self.inner = inner
        self.released = threading.Event()

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.publish_many(topic, [(key, value)])

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        if not self.released.wait(timeout=20):
            raise BusUnavailableError("test bus was never released")
        self.inner.publish_many(topic, items)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    with EmbeddedLog(tmp_path / "bus.sqlite3") as opened:
        yield opened


def client(bus: Any, state: Path | None, **kw: Any) -> AuditClient:
    settings: dict[str, Any] = {**FAST, "batch_size": 5, **kw}
    return AuditClient(
        service_id="svc", producer_id="svc-1", key=KEY, bus=bus, state_dir=state, **settings
    )


def test_a_down_bus_without_spool_fills_the_queue_then_emit_waits_and_refuses(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    bus = SwitchableBus(log.writer(), up=False)
    audit = client(bus, tmp_path / "state", spool=False, max_queue_events=12, emit_timeout_s=0.3)
    try:
        accepted = [audit.generation(gen(n)) for n in range(12)]
        started = time.monotonic()
        with pytest.raises(BackPressureError, match="max_queue_events=12") as refused:
            audit.generation(gen(12))
        waited = time.monotonic() - started
        assert 0.25 <= waited < 3, waited
        assert refused.value.queued_events == 12
        assert "BusUnavailableError" in str(refused.value)  # says why it is not draining
        bus.up = True
        audit.flush(timeout=10)
        accepted.append(audit.generation(gen(13)))  # room again
    finally:
        bus.up = True
        audit.close(timeout=10)
    batches = on_bus(log)
    assert event_ids(batches) == accepted
    assert_chain(batches)


def test_emit_that_waits_for_room_succeeds_when_the_bus_catches_up(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    bus = HeldBus(log.writer())
    audit = client(bus, tmp_path / "state", max_queue_events=10, emit_timeout_s=10)
    try:
        ids = [audit.generation(gen(n)) for n in range(10)]
        threading.Timer(0.3, bus.released.set).start()
        started = time.monotonic()
        ids.append(audit.generation(gen(10)))  # blocks until the bus takes a batch
        assert time.monotonic() - started >= 0.25
        audit.flush(timeout=10)
    finally:
        bus.released.set()
        audit.close(timeout=10)
    assert event_ids(on_bus(log)) == ids


def test_the_byte_bound_counts_estimated_encoded_bytes(log: EmbeddedLog, tmp_path: Path) -> None:
    bus = HeldBus(log.writer())
    # Before the worker has measured anything an event counts 1 KiB: 4 fit in 4 KiB.
    audit = client(
        bus, tmp_path / "state", max_queue_events=1000, max_queue_bytes=4096, emit_timeout_s=0
    )
    try:
        ids = [audit.generation(gen(n)) for n in range(4)]
        started = time.monotonic()
        with pytest.raises(BackPressureError, match="max_queue_bytes=4096"):
            audit.generation(gen(4))
        assert time.monotonic() - started < 0.1  # emit_timeout_s=0: at once
        bus.released.set()
        audit.flush(timeout=10)
        # Measured now (a generation here encodes to ~250 bytes): more of them fit.
        ids += [audit.generation(gen(n)) for n in range(5, 15)]
    finally:
        bus.released.set()
        audit.close(timeout=10)
    assert event_ids(on_bus(log)) == ids


def test_fail_closed_refuses_at_once_when_the_queue_is_full(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    bus = HeldBus(log.writer())
    audit = client(bus, None, fail_closed=True, max_queue_events=6, emit_timeout_s=5)
    try:
        ids = [audit.generation(gen(n)) for n in range(6)]
        started = time.monotonic()
        with pytest.raises(BackPressureError, match="fail-closed"):
            audit.generation(gen(6))
        assert time.monotonic() - started < 0.2  # not the 5 s emit_timeout_s
        bus.released.set()
        audit.flush(timeout=10)
    finally:
        bus.released.set()
        audit.close(timeout=10)
    assert event_ids(on_bus(log)) == ids


def test_the_spool_cap_is_reported_at_emit_and_nothing_accepted_is_lost(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    bus = SwitchableBus(log.writer(), up=False)
    audit = client(bus, tmp_path / "state", spool_max_bytes=6000, emit_timeout_s=0.5)
    accepted: list[uuid.UUID] = []
    try:
        refused = _emit_until_refused(audit, accepted, limit=500)
        assert isinstance(refused, SpoolFullError)
        assert "spool_max_bytes" in str(refused) and "not accepted" in str(refused)
        assert refused.queued_events > 0  # kept in memory, and said so
        assert 0 < audit.spool_depth.bytes <= 6000
        bus.up = True
        audit.flush(timeout=10)  # the spool drains, then the batches held in memory follow
        audit.drain(timeout=10)
        accepted.append(audit.generation(gen(10_000)))  # accepted again
    finally:
        bus.up = True
        audit.close(timeout=10)
    batches = on_bus(log)
    assert event_ids(batches) == accepted
    assert_chain(batches)


@contextlib.contextmanager
def tiny_disk(path: Path, size: str) -> Iterator[Path]:
    """A real, small file system (tmpfs) at ``path``: writes past ``size`` fail with ENOSPC."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, (
        f"this test mounts a tmpfs to fill a disk for real and needs root: {mounted.stderr}"
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_spool_disk_is_reported_at_emit_not_at_close(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    accepted: list[uuid.UUID] = []
    with tiny_disk(tmp_path / "disk", "512k") as disk:
        filler = disk / "filler"
        # Leave room for the spool's database to open and take a few batches, no more.
        filler.write_bytes(b"\0" * (512 - 160) * 1024)
        bus = SwitchableBus(log.writer(), up=False)
        audit = client(bus, disk / "state", emit_timeout_s=0.5)
        try:
            refused = _emit_until_refused(audit, accepted, limit=5000)
            assert isinstance(refused, SpoolFullError), refused
            text = str(refused)
            assert "full" in text and "not accepted" in text, text
            assert audit.spool_depth.messages > 0
            # Still refused: nothing was silently dropped to make room.
            with pytest.raises(SpoolFullError):
                audit.generation(gen(99_999))
            # The operator frees the disk and the bus comes back: everything accepted arrives.
            filler.unlink()
            bus.up = True
            audit.flush(timeout=15)
            audit.drain(timeout=15)
            accepted.append(audit.generation(gen(10_000)))
        finally:
            bus.up = True
            with contextlib.suppress(FileNotFoundError):
                filler.unlink()
            audit.close(timeout=15)
    batches = on_bus(log)
    assert event_ids(batches) == accepted
    assert_chain(batches)


def test_a_full_disk_under_the_chain_state_is_reported_at_emit_even_with_the_bus_up(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    # Write-ahead: a batch must be saved before it is sent, so a full state disk stops the
    # client even while the bus is up, and says so at emit rather than losing the chain.
    accepted: list[uuid.UUID] = []
    with tiny_disk(tmp_path / "disk", "256k") as disk:
        audit = client(log.writer(), disk / "state", spool=False, emit_timeout_s=0.5)
        try:
            accepted.append(audit.generation(gen(0)))
            audit.flush(timeout=5)
            filler = disk / "filler"
            # Fill it to the last byte.
            with contextlib.suppress(OSError), open(filler, "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            refused = _emit_until_refused(audit, accepted, limit=500)
            assert isinstance(refused, SpoolFullError), refused
            assert "chain state" in str(refused) and "No space left" in str(refused)
            filler.unlink()
            audit.flush(timeout=10)
            accepted.append(audit.generation(gen(10_000)))
        finally:
            with contextlib.suppress(FileNotFoundError):
                (disk / "filler").unlink()
            audit.close(timeout=10)
    batches = on_bus(log)
    assert event_ids(batches) == accepted
    assert_chain(batches)


def test_fail_closed_with_a_full_state_disk_refuses_at_emit_and_recovers(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    accepted: list[uuid.UUID] = []
    with tiny_disk(tmp_path / "disk", "256k") as disk:
        audit = client(log.writer(), disk / "state", fail_closed=True)
        filler = disk / "filler"
        try:
            accepted.append(audit.generation(gen(0)))
            audit.flush(timeout=5)
            with contextlib.suppress(OSError), open(filler, "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            lost: list[uuid.UUID] = []
            refused = _emit_until_refused(audit, lost, limit=500)
            assert isinstance(refused, SpoolFullError), refused
            # Fail-closed loses the batch it could not save, and flush says how many events.
            with pytest.raises(AuditTrailDownError) as down:
                audit.flush(timeout=5)
            assert 0 < down.value.events_not_written <= len(lost)
            filler.unlink()
            time.sleep(0.1)  # past availability_interval: the next emit tries again
            accepted.append(audit.generation(gen(10_000)))
            audit.flush(timeout=5)
        finally:
            with contextlib.suppress(FileNotFoundError):
                filler.unlink()
            with contextlib.suppress(AuditTrailDownError):
                audit.close(timeout=10)
    batches = on_bus(log)
    on_bus_ids = event_ids(batches)
    # Every event accepted is accounted for: on the bus, or counted by flush as not written.
    assert set(accepted) <= set(on_bus_ids)
    assert len(set(lost) - set(on_bus_ids)) == down.value.events_not_written
    assert_chain(batches)


def _emit_until_refused(
    audit: AuditClient, accepted: list[uuid.UUID], *, limit: int
) -> BackPressureError:
    """Emit until emit refuses (the worker needs a moment per batch to find the spool full,
    so the events go in at a pace); return the error."""
    for n in range(limit):
        try:
            accepted.append(audit.generation(gen(n)))
        except BackPressureError as exc:
            return exc
        if n % 5 == 4:
            time.sleep(0.01)
    raise AssertionError(f"emit accepted {limit} events without refusing ({audit.spool_depth})")


def test_the_spool_raises_spool_full_for_its_cap_and_leaves_itself_intact(tmp_path: Path) -> None:
    from aigc_audit.producers.spool import DiskSpool

    with DiskSpool(tmp_path / "spool", max_bytes=100) as spool:
        spool.append("t", b"k", b"x" * 60)
        with pytest.raises(SpoolFullError, match="cap of 100 bytes"):
            spool.append("t", b"k", b"y" * 60)
        assert spool.depth.messages == 1 and [m.value for m in spool.peek(5)] == [b"x" * 60]
    assert os.path.exists(tmp_path / "spool" / "spool.sqlite3")
