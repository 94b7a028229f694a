"""The client library alone: how many events per second it takes in and seals, and what one
``emit`` costs the calling thread, with a bus that takes every message at once."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aigc_audit.consumers.bench.pipeline import generation
from aigc_audit.producers.client import AuditClient
from aigc_audit.producers.signing import SigningKey


class DiscardingBus:
    """A bus writer that accepts everything instantly: only the client's own work is timed."""

    def __init__(self) -> None:
        self.messages = 0

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.messages += 1

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.messages += len(items)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ClientFigures:
    events: int
    eps: float
    """Events in, sealed and handed to the bus, per second (first emit to the end of close)."""
    emit_p50_us: float
    emit_p99_us: float
    emit_max_us: float


def client_speed(events: int = 200_000) -> ClientFigures:
    prepared = [generation(n) for n in range(events)]
    bus = DiscardingBus()
    costs = [0] * events
    with tempfile.TemporaryDirectory() as state:
        client = AuditClient(
            service_id="chat",
            producer_id="chat-1",
            key=SigningKey.generate(),
            bus=bus,
            state_dir=Path(state),
            batch_size=500,
            linger=0.05,
            spool=False,
            # The bench measures the caller's cost of a burst, not the back-pressure bound.
            max_queue_events=events,
            max_queue_bytes=1 << 40,
        )
        clock = time.perf_counter_ns
        began = time.perf_counter()
        for n, event in enumerate(prepared):
            t0 = clock()
            client.emit(event)
            costs[n] = clock() - t0
        client.close()
        seconds = time.perf_counter() - began
    costs.sort()
    return ClientFigures(
        events=events,
        eps=events / seconds,
        emit_p50_us=costs[events // 2] / 1000,
        emit_p99_us=costs[int(0.99 * (events - 1))] / 1000,
        emit_max_us=costs[-1] / 1000,
    )
