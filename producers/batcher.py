"""Turns encoded events into sealed, chained batches on the bus, off the caller's thread.

A batch is closed when it holds ``batch_size`` events or its first event has waited ``linger``
seconds, whichever comes first. Closing a batch computes its Merkle root, links it to the
producer's previous batch, signs it, publishes it and only then records the new chain position.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from producers.batch import SignedBatch, seal_batch
from producers.chain_state import ChainPosition, ChainStateFile
from producers.codec import SchemaCatalogue
from producers.errors import AuditError, BusError, ClientClosedError
from producers.signing import SigningKey
from producers.transports.base import BusWriter


@dataclass
class BatcherStats:
    events_emitted: int = 0
    batches_published: int = 0
    events_published: int = 0
    publish_failures: int = 0


class BatchAssembler:
    """Thread-safe: any number of threads may call :meth:`add`; one worker seals and publishes."""

    def __init__(
        self,
        *,
        producer_id: str,
        key: SigningKey,
        bus: BusWriter,
        topic: str,
        catalogue: SchemaCatalogue,
        chain_state: ChainStateFile | None,
        batch_size: int = 500,
        linger: float = 0.2,
        retry_backoff: float = 0.5,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.producer_id = producer_id
        self._key = key
        self._bus = bus
        self._topic = topic
        self._catalogue = catalogue
        self._chain_state = chain_state
        self._position = chain_state.load() if chain_state else ChainPosition.genesis()
        self._batch_size = batch_size
        self._linger = linger
        self._retry_backoff = retry_backoff
        self._clock_us = clock_us
        self.stats = BatcherStats()

        self._lock = threading.Condition()
        self._buffer: list[bytes] = []
        self._first_at = 0.0
        self._added = 0  # events accepted so far
        self._published = 0  # events durable on the bus so far
        self._flush_requested = False
        self._closed = False
        self._error: BaseException | None = None
        self._worker = threading.Thread(
            target=self._run, name=f"aigc-audit-batcher-{producer_id}", daemon=True
        )
        self._worker.start()

    @property
    def position(self) -> ChainPosition:
        return self._position

    def add(self, encoded_event: bytes) -> None:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the audit client is closed")
            if not self._buffer:
                self._first_at = time.monotonic()
            self._buffer.append(encoded_event)
            self._added += 1
            self.stats.events_emitted += 1
            if len(self._buffer) >= self._batch_size:
                self._lock.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event added before this call is on the bus."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._added
            self._flush_requested = True
            self._lock.notify_all()
            while self._published < target:
                if self._error is not None and not self._worker.is_alive():
                    raise AuditError(f"the batcher stopped: {self._error}") from self._error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise BusError(
                        f"flush timed out with {target - self._published} events not yet on "
                        f"the bus (last error: {self._error})"
                    )
                self._lock.wait(0.05 if remaining is None else min(0.05, remaining))

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            if self._closed:
                return
        self.flush(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._worker.join(timeout)

    def _take_batch(self) -> list[bytes] | None:
        """Wait for a batch to be due; return its events, or None when closed and drained."""
        with self._lock:
            while True:
                if self._buffer:
                    due = (
                        len(self._buffer) >= self._batch_size
                        or self._flush_requested
                        or self._closed
                        or time.monotonic() - self._first_at >= self._linger
                    )
                    if due:
                        events = self._buffer[: self._batch_size]
                        del self._buffer[: self._batch_size]
                        if self._buffer:
                            self._first_at = time.monotonic()
                        else:
                            self._flush_requested = False
                        return events
                    self._lock.wait(max(0.0, self._linger - (time.monotonic() - self._first_at)))
                elif self._closed:
                    return None
                else:
                    self._flush_requested = False
                    self._lock.wait(self._linger)

    def _run(self) -> None:
        while True:
            events = self._take_batch()
            if events is None:
                return
            batch = seal_batch(
                events,
                producer_id=self.producer_id,
                key=self._key,
                sequence=self._position.next_sequence,
                prev_digest=self._position.prev_digest,
                created_at_us=self._clock_us(),
            )
            self._publish(batch)

    def _publish(self, batch: SignedBatch) -> None:
        value = batch.encode(self._catalogue)
        key = self.producer_id.encode("utf-8")
        # The batch is sealed once; a retry sends the same bytes, so the chain never forks.
        while True:
            try:
                self._bus.publish(self._topic, key, value)
                break
            except BusError as exc:
                with self._lock:
                    self._error = exc
                    self.stats.publish_failures += 1
                time.sleep(self._retry_backoff)
        self._position = ChainPosition(batch.sequence + 1, batch.digest)
        if self._chain_state is not None:
            self._chain_state.save(self._position)
        with self._lock:
            self._published += len(batch.events)
            self.stats.batches_published += 1
            self.stats.events_published += len(batch.events)
            self._error = None
            self._lock.notify_all()
