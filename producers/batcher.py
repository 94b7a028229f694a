"""Turns events into encoded, sealed, chained batches on the bus, off the caller's thread.

A batch is closed when it holds ``batch_size`` events or its first event has waited ``linger``
seconds, whichever comes first. Closing a batch encodes its events (with the ``encode`` the
assembler was given; events that do not encode are left out and reported, see
:meth:`BatchAssembler.flush`), computes its Merkle root, links it to the producer's previous
batch and signs it. What happens next depends on the mode:

* **Spool** (a :class:`~producers.spool.DiskSpool` is given): the batch is published; if the bus
  raises :class:`~producers.errors.BusError`, it is appended to the spool instead and the worker
  moves on. While the spool holds anything, every new batch goes in behind it, so the bus always
  receives the chain in order. The worker drains the spool oldest first, with capped exponential
  backoff between attempts, removing each message only once the bus has it.
* **No spool**: the worker retries the batch with the same backoff until the bus takes it (new
  events wait in memory meanwhile).
* **Fail-closed**: at most one attempt per batch, none while the trail is known to be down. A
  batch the bus refuses is dropped whole, its events are reported by the next
  :meth:`BatchAssembler.flush`, and :meth:`BatchAssembler.add` refuses events while the trail is
  down (see :class:`_TrailMonitor` for the exact rule).

The chain position moves as soon as a batch is durable on the bus or in the spool, and only
then: a batch is sealed once, and every retry or drain sends the same bytes, so the chain never
forks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from producers.batch import SignedBatch, seal_batch
from producers.chain_state import ChainPosition, ChainStateFile
from producers.codec import SchemaCatalogue
from producers.errors import (
    AuditError,
    AuditTrailDownError,
    BusError,
    ClientClosedError,
    DecodeError,
    EventValidationError,
    SpoolError,
)
from producers.signing import SigningKey
from producers.spool import DiskSpool, SpoolDepth
from producers.transports.base import BusWriter, availability_check

# Messages read from the spool per peek while draining; each is still published and removed
# one at a time, so a failure mid-chunk re-sends at most the one message being published.
_DRAIN_CHUNK = 32

# Rejected events named in one error message; the log names every one.
_REJECTIONS_NAMED = 3

_log = logging.getLogger(__name__)


@dataclass
class BatcherStats:
    """Counters since the client started; ``spool_*`` is the current spool depth."""

    events_emitted: int = 0
    batches_published: int = 0
    """Batches the bus acknowledged, directly or drained from the spool."""
    events_published: int = 0
    publish_failures: int = 0
    """Failed attempts to reach the bus (every retry and every failed drain attempt counts)."""
    batches_spooled: int = 0
    events_spooled: int = 0
    events_lost: int = 0
    """Fail-closed only: accepted events whose batch the bus refused (reported by flush)."""
    events_rejected: int = 0
    """Accepted events that did not encode on the worker and were not written (reported by
    flush and logged)."""
    spool_messages: int = 0
    spool_bytes: int = 0


class _TrailMonitor:
    """Fail-closed mode's answer to "is the audit trail down?", cheap enough for every emit.

    The trail is **down** when the most recent *observation* of the bus failed. Observations
    are the worker's publish attempts (one per batch) and the writer's optional
    ``check_available()``, which :meth:`require_up` calls on the caller's thread only when the
    newest observation is older than ``interval`` (one caller probes, the others use the cached
    answer meanwhile). Before any publish the probe is the only observation; the constructor
    makes the first one. A writer without ``check_available`` is observed by publishing only:
    after a failed publish it stays down for ``interval``, then one more event is let through as
    a trial (otherwise it could never come back up, since no events means no publishes).

    The trail is also down while batches of an earlier run wait in the spool (:meth:`block`):
    new events would otherwise overtake them in the chain.
    """

    def __init__(self, probe: Callable[[], None] | None, interval: float) -> None:
        self._probe = probe
        self._interval = interval
        self._state = threading.Lock()
        self._probing = threading.Lock()
        self._down: str | None = None
        self._observed_at = -math.inf
        self._blocked: str | None = None

    def observe(self, error: BaseException | None, at: float | None = None) -> None:
        """Record a publish or probe outcome made at ``at`` (default: now); older ones lose."""
        at = time.monotonic() if at is None else at
        with self._state:
            if at >= self._observed_at:
                self._observed_at = at
                self._down = None if error is None else f"{type(error).__name__}: {error}"

    def block(self, reason: str | None) -> None:
        with self._state:
            self._blocked = reason

    def refresh(self) -> None:
        """Ask the writer now (if it can answer) and record what it says."""
        if self._probe is None:
            return
        started = time.monotonic()
        try:
            self._probe()
        except Exception as exc:  # fail closed: an unexplained probe failure counts as down
            self.observe(exc, started)
        else:
            self.observe(None, started)

    def down_reason(self) -> str | None:
        """Why the trail is down by what is known now (no probe); None when it is up."""
        with self._state:
            if self._blocked is not None:
                return self._blocked
            stale = time.monotonic() - self._observed_at >= self._interval
            if self._down is not None and stale and self._probe is None:
                return None  # the trial described in the class docstring
            return self._down

    def require_up(self) -> None:
        """Return if the trail is up; raise AuditTrailDownError if it is down."""
        with self._state:
            stale = time.monotonic() - self._observed_at >= self._interval
        if stale and self._probe is not None and self._probing.acquire(blocking=False):
            try:
                self.refresh()
            finally:
                self._probing.release()
        reason = self.down_reason()
        if reason is None:
            return
        raise AuditTrailDownError(
            f"the audit trail is down ({reason}); the client is fail-closed, so the event was "
            "not accepted"
        )


@dataclass
class _Delivery:
    """One sealed batch on its way, with the span of accepted events it settles."""

    batch: SignedBatch
    value: bytes
    start: int
    """Index (in order of acceptance) of the first event taken for this batch."""
    taken: int
    """Events taken for this batch: those in it, and those rejected."""
    rejected: list[tuple[int, str]]
    """(index, why) of each taken event that did not encode."""


class BatchAssembler:
    """Thread-safe: any number of threads may call :meth:`add`; one worker encodes, seals and
    publishes.

    ``encode`` turns an added item into its encoded bytes on the worker thread (by default items
    are already bytes); ``encode_many``, if given, does a whole batch at once (cheaper), raising
    if any item does not encode, and ``encode`` then finds which. ``spool`` enables spooling
    (the assembler owns it from then on and closes it when the worker stops). With
    ``fail_closed`` the spool, if given, only holds batches of an earlier run: they are drained
    first, and events are refused until they are. ``retry_backoff`` is the first pause after a
    failed attempt; it doubles per failure up to ``max_retry_backoff``.
    ``availability_interval`` is how long a fail-closed answer is cached.
    """

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
        spool: DiskSpool | None = None,
        fail_closed: bool = False,
        retry_backoff: float = 0.2,
        max_retry_backoff: float = 5.0,
        availability_interval: float = 0.5,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        encode: Callable[[Any], bytes] | None = None,
        encode_many: Callable[[list[Any]], list[bytes]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if retry_backoff <= 0 or max_retry_backoff < retry_backoff:
            raise ValueError("need 0 < retry_backoff <= max_retry_backoff")
        self.producer_id = producer_id
        self._key = key
        self._bus = bus
        self._topic = topic
        self._catalogue = catalogue
        self._chain_state = chain_state
        self._batch_size = batch_size
        self._linger = linger
        self._retry_backoff = retry_backoff
        self._max_retry_backoff = max_retry_backoff
        self._clock_us = clock_us
        self._encode = encode
        self._encode_many = encode_many
        self._probe = availability_check(bus)
        self._spool = spool
        self._fail_closed = fail_closed
        self.stats = BatcherStats()

        self._position = chain_state.load() if chain_state else ChainPosition.genesis()
        if spool is not None:
            self._position = self._reconcile_with_spool(self._position)
        self._monitor: _TrailMonitor | None = None
        if fail_closed:
            self._monitor = _TrailMonitor(self._probe, availability_interval)
            if spool is not None and spool.depth.messages:
                self._monitor.block(
                    f"{spool.depth.messages} batches of an earlier run are still waiting in "
                    f"the spool at {spool.directory}"
                )
            self._monitor.refresh()

        # add() takes the bare lock: a Condition's own __enter__ is Python code, on every emit.
        self._mutex = threading.Lock()
        self._lock = threading.Condition(self._mutex)
        # Accepted events wait in batch-size pages so the worker takes a batch in O(1),
        # however far behind the callers it is.
        self._full: deque[list[Any]] = deque()
        self._tail: list[Any] = []  # the page being filled
        self._first_at = 0.0  # when the tail's first event arrived
        self._added = 0  # events accepted so far
        self._taken = 0  # events handed to the worker so far
        self._settled = 0  # events durable on the bus or in the spool, lost, or rejected
        self._lost: list[tuple[int, int]] = []  # [start, end) event indexes lost, unreported
        self._rejected: list[tuple[int, str]] = []  # (index, why) not encoded, unreported
        self._loss_reported_through = 0
        self._loss_reason = ""
        self._flush_requested = False
        self._closed = False
        self._error: BaseException | None = None  # the last failure to reach the bus or spool
        self._crash: BaseException | None = None  # what killed the worker, if anything did
        self._next_drain_at = 0.0  # a spool left by an earlier run is tried at once
        self._drain_backoff = retry_backoff
        self._sync_spool_stats()
        self._worker = threading.Thread(
            target=self._run, name=f"aigc-audit-batcher-{producer_id}", daemon=True
        )
        self._worker.start()

    @property
    def position(self) -> ChainPosition:
        return self._position

    @property
    def spool_depth(self) -> SpoolDepth:
        return self._spool.depth if self._spool is not None else SpoolDepth()

    def add(self, event: Any) -> None:
        """Accept one event (encoded on the worker); raises AuditTrailDownError when
        fail-closed and down."""
        if self._monitor is not None:
            if self._closed:  # checked again under the lock; this only orders the errors
                raise ClientClosedError("the audit client is closed")
            self._monitor.require_up()
        with self._mutex:
            if self._closed:
                raise ClientClosedError("the audit client is closed")
            tail = self._tail
            if not tail:
                self._first_at = time.monotonic()
            tail.append(event)
            self._added += 1
            self.stats.events_emitted += 1
            if len(tail) >= self._batch_size:
                self._full.append(tail)
                self._tail = []
                self._lock.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event added before this call is durable on the bus or in the spool.

        Raises BusError on timeout, AuditTrailDownError (fail-closed) when some of those events
        were lost, and EventValidationError when some did not encode; either names only events
        no earlier flush reported. Losses win when there are both (the message names the
        rejected events too, and both are reported).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._added
            self._flush_requested = True
            self._lock.notify_all()
            while self._settled < target:
                self._raise_if_crashed()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    where = "the bus or the spool" if self._spools_new_batches else "the bus"
                    raise BusError(
                        f"flush timed out with {target - self._settled} events not yet durable "
                        f"on {where} (last error: {self._error})"
                    )
                self._lock.wait(0.05 if remaining is None else min(0.05, remaining))
            lost = self._take_unreported_losses(target)
            reason = self._loss_reason
            rejected = self._take_unreported_rejections(target)
        if lost:
            also = f"; besides, {_rejections(rejected)}" if rejected else ""
            raise AuditTrailDownError(
                f"{lost} events accepted before the audit trail went down were not written; "
                f"none of their batches reached the bus (fail-closed; last error: {reason})"
                f"{also}",
                events_not_written=lost,
            )
        if rejected:
            raise EventValidationError(_rejections(rejected))

    def drain(self, timeout: float | None = None) -> None:
        """Flush, then block until the spool is empty (a no-op beyond flush without a spool).

        Asks the worker to try the bus now rather than at the end of its current backoff.
        Raises BusError naming the spool depth on timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.flush(timeout)
        if self._spool is None:
            return
        with self._lock:
            self._next_drain_at = 0.0
            self._lock.notify_all()
            # The stats mirror, not spool.depth: the worker updates it under this lock after
            # everything else that follows a drain (a fail-closed client accepts events again).
            while self.stats.spool_messages:
                self._raise_if_crashed()
                if self._closed:
                    raise ClientClosedError(
                        f"the audit client is closed; {self._spool.depth.messages} batches stay "
                        f"in the spool at {self._spool.directory} for the next start"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    depth = self._spool.depth
                    raise BusError(
                        f"drain timed out with {depth.messages} batches ({depth.bytes} bytes) "
                        f"still in the spool at {self._spool.directory} "
                        f"(last error: {self._error})"
                    )
                self._lock.wait(0.05 if remaining is None else min(0.05, remaining))

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the worker. Spooled batches stay on disk for the next start.

        If the flush times out the assembler stays open (call close again); if it reports lost
        (fail-closed) or rejected events the assembler is closed first and the error raised
        after.
        """
        with self._lock:
            if self._closed:
                return
        try:
            self.flush(timeout)
        except (AuditTrailDownError, EventValidationError):
            self._stop(timeout)
            raise
        self._stop(timeout)

    def _stop(self, timeout: float | None) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._worker.join(timeout)

    @property
    def _spools_new_batches(self) -> bool:
        return self._spool is not None and not self._fail_closed

    def _raise_if_crashed(self) -> None:
        if self._crash is not None:
            raise AuditError(f"the batcher stopped: {self._crash}") from self._crash

    def _take_unreported_losses(self, target: int) -> int:
        """Count lost events with index below ``target`` not reported yet; mark them reported."""
        start = self._loss_reported_through
        lost = sum(max(0, min(end, target) - max(begin, start)) for begin, end in self._lost)
        self._loss_reported_through = max(start, target)
        self._lost = [(b, e) for b, e in self._lost if e > self._loss_reported_through]
        return lost

    def _take_unreported_rejections(self, target: int) -> list[tuple[int, str]]:
        """The rejected events with index below ``target`` not reported yet; now they are."""
        taken = [r for r in self._rejected if r[0] < target]
        if taken:
            self._rejected = [r for r in self._rejected if r[0] >= target]
        return taken

    def _reconcile_with_spool(self, position: ChainPosition) -> ChainPosition:
        """Move past a batch that was spooled but whose chain position was never saved.

        A crash between the spool's fsync and the chain-state write would otherwise make the
        next run seal a second batch with the same sequence: a fork.
        """
        assert self._spool is not None
        last = self._spool.peek_last()
        if last is None:
            return position
        try:
            batch = SignedBatch.decode(last.value, self._catalogue)
        except DecodeError:
            return position
        if batch.producer_id != self.producer_id or batch.sequence < position.next_sequence:
            return position
        recovered = ChainPosition(batch.sequence + 1, batch.digest)
        if self._chain_state is not None:
            self._chain_state.save(recovered)
        return recovered

    def _sync_spool_stats(self) -> None:
        depth = self.spool_depth
        self.stats.spool_messages = depth.messages
        self.stats.spool_bytes = depth.bytes

    # --- the worker ---------------------------------------------------------------------

    def _next_work(self) -> tuple[list[Any] | None, int, bool] | None:
        """Wait until a batch is due or a drain attempt is; None when closed and drained.

        Returns ``(events or None, index of the first event, drain_due)``.
        """
        with self._lock:
            while True:
                now = time.monotonic()
                spool_waiting = (
                    self._spool is not None and self._spool.depth.messages > 0 and not self._closed
                )
                drain_due = spool_waiting and now >= self._next_drain_at
                events = None
                if self._full:
                    events = self._full.popleft()
                elif self._tail and (
                    len(self._tail) >= self._batch_size
                    or self._flush_requested
                    or self._closed
                    or now - self._first_at >= self._linger
                ):
                    events, self._tail = self._tail, []
                start = self._taken
                if events is not None:
                    self._taken += len(events)
                    if not self._full and not self._tail:
                        self._flush_requested = False
                if events is not None or drain_due:
                    return events, start, drain_due
                if self._closed:
                    return None
                if self._tail:
                    wait = max(0.0, self._linger - (now - self._first_at))
                else:
                    self._flush_requested = False
                    wait = self._linger
                if spool_waiting:
                    wait = min(wait, max(0.0, self._next_drain_at - now))
                self._lock.wait(wait)

    def _run(self) -> None:
        try:
            while True:
                work = self._next_work()
                if work is None:
                    return
                events, start, drain_due = work
                if drain_due:
                    self._drain_spool()
                if events:
                    self._deliver(events, start)
        except BaseException as exc:
            with self._lock:
                self._crash = exc
                self._lock.notify_all()
            raise
        finally:
            if self._spool is not None:
                self._spool.close()

    def _deliver(self, events: list[Any], start: int) -> None:
        encoded, rejected = self._encode_all(events, start)
        if not encoded:
            with self._lock:
                self._settle(start, len(events), rejected)
            return
        batch = seal_batch(
            encoded,
            producer_id=self.producer_id,
            key=self._key,
            sequence=self._position.next_sequence,
            prev_digest=self._position.prev_digest,
            created_at_us=self._clock_us(),
        )
        delivery = _Delivery(batch, batch.encode(self._catalogue), start, len(events), rejected)
        if self._fail_closed:
            self._publish_or_lose(delivery)
        elif self._spool is not None:
            self._publish_or_spool(delivery)
        else:
            self._publish_until_done(delivery)

    def _encode_all(
        self, events: list[Any], start: int
    ) -> tuple[Sequence[bytes], list[tuple[int, str]]]:
        """The encodings of ``events``, and (index, why) of each one that does not encode."""
        encode = self._encode
        if encode is None:
            return events, []
        try:
            if self._encode_many is not None:
                return self._encode_many(events), []
            return list(map(encode, events)), []
        except Exception:  # rare: find which ones, one by one
            pass
        encoded: list[bytes] = []
        rejected: list[tuple[int, str]] = []
        for offset, event in enumerate(events):
            try:
                encoded.append(encode(event))
            except Exception as exc:  # whatever it is, the event must not vanish silently
                rejected.append((start + offset, f"{type(exc).__name__}: {exc}"))
        return encoded, rejected

    def _settle(self, start: int, taken: int, rejected: list[tuple[int, str]]) -> None:
        """Under the lock: the events ``start`` to ``start + taken`` are done with; record the
        rejected ones among them for the next flush."""
        self._settled = start + taken
        if rejected:
            self._rejected.extend(rejected)
            self.stats.events_rejected += len(rejected)
            for index, why in rejected:
                _log.error("audit event #%d was not written: it does not encode: %s", index, why)
        self._lock.notify_all()

    @property
    def _message_key(self) -> bytes:
        return self.producer_id.encode("utf-8")

    def _publish_until_done(self, delivery: _Delivery) -> None:
        """No spool: retry the same bytes until the bus takes them (new events wait)."""
        backoff = self._retry_backoff
        while True:
            try:
                self._bus.publish(self._topic, self._message_key, delivery.value)
                break
            except BusError as exc:
                self._note_failure(exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, self._max_retry_backoff)
        self._advance(delivery, "bus")

    def _publish_or_lose(self, delivery: _Delivery) -> None:
        """Fail-closed: at most one attempt; a refused batch is lost whole, the trail down."""
        assert self._monitor is not None
        reason = self._monitor.down_reason()
        if reason is not None:
            # Events accepted just before the trail went down: fail them now rather than
            # spend the writer's whole delivery timeout on each of their batches in turn.
            self._lose(delivery, reason)
            return
        try:
            self._bus.publish(self._topic, self._message_key, delivery.value)
        except BusError as exc:
            self._monitor.observe(exc)
            with self._lock:
                self.stats.publish_failures += 1
                self._error = exc
            self._lose(delivery, f"{type(exc).__name__}: {exc}")
            return
        self._monitor.observe(None)
        self._advance(delivery, "bus")

    def _lose(self, delivery: _Delivery, reason: str) -> None:
        # The position stays put: the bus never saw this sequence, so the next batch takes it
        # and the chain has neither a gap nor a fork.
        with self._lock:
            self.stats.events_lost += len(delivery.batch.events)
            self._lost.extend(
                _spans_without(
                    delivery.start,
                    delivery.start + delivery.taken,
                    [index for index, _ in delivery.rejected],
                )
            )
            self._loss_reason = reason
            self._settle(delivery.start, delivery.taken, delivery.rejected)

    def _publish_or_spool(self, delivery: _Delivery) -> None:
        assert self._spool is not None
        if self._spool.depth.messages:
            # Older batches wait in the spool; this one must queue behind them (chain order).
            self._spool_batch(delivery)
            return
        try:
            self._bus.publish(self._topic, self._message_key, delivery.value)
        except BusError as exc:
            self._note_failure(exc)
            self._schedule_drain()
            self._spool_batch(delivery)
            return
        self._advance(delivery, "bus")

    def _spool_batch(self, delivery: _Delivery) -> None:
        """Append to the spool; if the spool itself fails, keep trying it and the bus."""
        assert self._spool is not None
        value = delivery.value
        backoff = self._retry_backoff
        while True:
            try:
                self._spool.append(self._topic, self._message_key, value)
                break
            except SpoolError as exc:
                with self._lock:
                    self._error = exc
            time.sleep(backoff)
            backoff = min(backoff * 2, self._max_retry_backoff)
            # With nothing older in the spool the bus is a fine place too, if it is back.
            if not self._spool.depth.messages:
                try:
                    self._bus.publish(self._topic, self._message_key, value)
                except BusError as exc:
                    self._note_failure(exc)
                else:
                    self._advance(delivery, "bus")
                    return
        self._advance(delivery, "spool")

    def _advance(self, delivery: _Delivery, where: Literal["bus", "spool"]) -> None:
        """Record that a batch is durable on the bus or in the spool: the chain moves on."""
        batch = delivery.batch
        self._position = ChainPosition(batch.sequence + 1, batch.digest)
        if self._chain_state is not None:
            self._chain_state.save(self._position)
        count = len(batch.events)
        with self._lock:
            self._settle(delivery.start, delivery.taken, delivery.rejected)
            if where == "bus":
                self.stats.batches_published += 1
                self.stats.events_published += count
                self._error = None
            else:
                self.stats.batches_spooled += 1
                self.stats.events_spooled += count
            self._sync_spool_stats()

    def _note_failure(self, exc: BaseException) -> None:
        with self._lock:
            self._error = exc
            self.stats.publish_failures += 1

    def _schedule_drain(self) -> None:
        """Set the next drain attempt one backoff from now, and double the backoff."""
        with self._lock:
            self._next_drain_at = time.monotonic() + self._drain_backoff
            self._drain_backoff = min(self._drain_backoff * 2, self._max_retry_backoff)

    def _drain_spool(self) -> None:
        """Publish spooled messages oldest first until the spool is empty or the bus fails."""
        spool = self._spool
        assert spool is not None
        if self._probe is not None:
            # A cheap "is it back?" before a publish that could block for the writer's whole
            # delivery timeout against a bus that is still down.
            try:
                self._probe()
            except Exception as exc:
                self._note_failure(exc)
                self._schedule_drain()
                return
        try:
            while not self._closed:
                chunk = spool.peek(_DRAIN_CHUNK)
                if not chunk:
                    break
                for message in chunk:
                    self._bus.publish(message.topic, message.key, message.value)
                    # A crash right here re-sends this message on the next start: the same
                    # signed bytes, which the materialiser records as a replay, not twice.
                    spool.remove_through(message.seq)
                    count = self._count_events(message.value)
                    if self._monitor is not None and not spool.depth.messages:
                        self._monitor.observe(None)
                        self._monitor.block(None)
                    with self._lock:
                        self.stats.batches_published += 1
                        self.stats.events_published += count
                        self._sync_spool_stats()
                        self._lock.notify_all()
        except (BusError, SpoolError) as exc:
            self._note_failure(exc)
            self._schedule_drain()
            return
        if spool.depth.messages:
            return  # stopped by close(); what is left drains on the next start
        with self._lock:
            self._drain_backoff = self._retry_backoff
            self._error = None
            self._lock.notify_all()

    def _count_events(self, value: bytes) -> int:
        try:
            return len(SignedBatch.decode(value, self._catalogue).events)
        except DecodeError:
            return 0


def _spans_without(start: int, end: int, holes: list[int]) -> list[tuple[int, int]]:
    """``[start, end)`` as ``[begin, end)`` spans leaving out the sorted indexes ``holes``."""
    spans = []
    for hole in holes:
        if hole > start:
            spans.append((start, hole))
        start = hole + 1
    if end > start:
        spans.append((start, end))
    return spans


def _rejections(rejected: list[tuple[int, str]]) -> str:
    named = "; ".join(why for _, why in rejected[:_REJECTIONS_NAMED])
    more = len(rejected) - _REJECTIONS_NAMED
    return (
        f"{len(rejected)} events accepted earlier did not encode and were not written: {named}"
        + (f"; and {more} more (see the log)" if more > 0 else "")
    )
