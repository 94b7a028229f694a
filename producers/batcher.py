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

**Crash safety** (write-ahead, see :mod:`producers.chain_state`): a sealed batch's new chain
position is saved to disk *together with the signed batch* (fsynced) before the batch can reach
the bus or the spool, and confirmed (a cheap marker) once it has. A batch is sealed once, and
every retry, drain or re-send after a restart sends the same bytes. So a process killed at any
point (``kill -9`` included) neither reuses a sequence (a fork) nor skips one (a gap): the next
start re-sends the batches that may not have arrived before sealing anything new; if one had
arrived, its copy is a replay the materialiser drops. The cost is one save (an fsync of the
file and one of its directory) per batch, on the worker thread; when the worker is behind the
callers it seals up to ``_GROUP_MAX`` full batches and saves them together, so the fsync does
not cap its throughput. Callers never wait for it.

**Back-pressure**: accepted events stay in memory until they are durable on the bus or in the
spool. At most ``max_queue_events`` of them, and at most ``max_queue_bytes`` of their
*estimated encoded* size: events are encoded on the worker, so the caller's thread cannot
measure them, and the estimate is the running average encoded size of the events the worker
encoded (:data:`_INITIAL_EVENT_BYTES` before the first batch); the Python objects themselves
take several times that. When the queue is full, :meth:`BatchAssembler.add` waits up to
``emit_timeout`` seconds for room and then raises
:class:`~producers.errors.BackPressureError`; fail-closed (or with ``emit_timeout=0``) it
raises at once. While the spool (or the chain state) cannot be written, ``add`` raises
:class:`~producers.errors.SpoolFullError` at once: the events accepted before stay in memory,
and the worker keeps trying the spool and the bus.
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

from aigc_audit.producers.batch import SignedBatch, seal_batch
from aigc_audit.producers.chain_state import ChainPosition, ChainStateFile, DurableChain
from aigc_audit.producers.codec import SchemaCatalogue
from aigc_audit.producers.errors import (
    AuditError,
    AuditTrailDownError,
    BackPressureError,
    BusError,
    ClientClosedError,
    DecodeError,
    EventValidationError,
    SpoolError,
    SpoolFullError,
)
from aigc_audit.producers.signing import SigningKey
from aigc_audit.producers.spool import DiskSpool, SpoolDepth
from aigc_audit.producers.transports.base import BusWriter, availability_check

# Messages read from the spool per peek while draining; each is still published and removed
# one at a time, so a failure mid-chunk re-sends at most the one message being published.
_DRAIN_CHUNK = 32

# Rejected events named in one error message; the log names every one.
_REJECTIONS_NAMED = 3

# The encoded size assumed for an event before the worker has measured any: generous (a typical
# generation event encodes to ~300 bytes), so that an early burst errs towards the byte bound.
_INITIAL_EVENT_BYTES = 1024
# Weight of the newest batch in the running average of encoded event sizes.
_SIZE_WEIGHT = 0.2

# Full batches the worker seals and saves at once when it is behind (one fsync for all of them).
_GROUP_MAX = 8

DEFAULT_MAX_QUEUE_EVENTS = 100_000
DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024
DEFAULT_EMIT_TIMEOUT = 1.0

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
    before: ChainPosition
    """The chain position before this batch (fail-closed goes back to it if the batch is lost)."""
    resend: bool = False
    """A batch an earlier run sealed and saved but did not confirm, sent again at start-up."""


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
    ``max_queue_events``, ``max_queue_bytes`` and ``emit_timeout`` bound what :meth:`add` keeps
    in memory (see the module docstring).
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
        max_queue_events: int = DEFAULT_MAX_QUEUE_EVENTS,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        emit_timeout: float = DEFAULT_EMIT_TIMEOUT,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if retry_backoff <= 0 or max_retry_backoff < retry_backoff:
            raise ValueError("need 0 < retry_backoff <= max_retry_backoff")
        if max_queue_events < 1 or max_queue_bytes < 1:
            raise ValueError("max_queue_events and max_queue_bytes must be at least 1")
        if not emit_timeout >= 0:  # also refuses NaN
            raise ValueError("emit_timeout must be >= 0")
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
        self._max_queue_events = max_queue_events
        self._max_queue_bytes = max_queue_bytes
        self._emit_timeout = emit_timeout
        self._event_bytes = float(_INITIAL_EVENT_BYTES)  # running average, set by the worker
        self._measured = False
        self._capacity = self._capacity_for(self._event_bytes)
        self.stats = BatcherStats()

        durable = chain_state.load_durable() if chain_state else None
        durable = durable or DurableChain(ChainPosition.genesis())
        if spool is not None:
            durable = self._reconcile_with_spool(durable)
        self._position = durable.position
        # Sent before anything new, by the worker (see _resend_unconfirmed).
        self._resend = deque(self._unconfirmed_deliveries(durable))
        self._monitor: _TrailMonitor | None = None
        if fail_closed:
            self._monitor = _TrailMonitor(self._probe, availability_interval)
            if spool is not None and spool.depth.messages:
                self._monitor.block(
                    f"{spool.depth.messages} batches of an earlier run are still waiting in "
                    f"the spool at {spool.directory}"
                )
            elif self._resend:
                self._monitor.block(
                    f"{len(self._resend)} batches of an earlier run are not known to have "
                    "reached the bus; they are being sent again"
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
        # Why batches cannot be made durable on this machine right now, if they cannot: emit
        # refuses events meanwhile (SpoolFullError). Set and cleared by the worker only.
        self._spool_refusal: BaseException | None = None
        self._state_refusal: BaseException | None = None
        self._state_retry_at = 0.0  # fail-closed: when an emit may try the state again
        self._availability_interval = availability_interval
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
        """Accept one event (encoded on the worker).

        Raises AuditTrailDownError when fail-closed and down, SpoolFullError while batches
        cannot be made durable on disk, and BackPressureError when the queue stays full (see
        the module docstring); in each case the event was not accepted.
        """
        if self._monitor is not None:
            if self._closed:  # checked again under the lock; this only orders the errors
                raise ClientClosedError("the audit client is closed")
            self._monitor.require_up()
        if self._spool_refusal is not None or self._state_refusal is not None:
            self._raise_refused()
        with self._mutex:
            if self._closed:
                raise ClientClosedError("the audit client is closed")
            if self._added - self._settled >= self._capacity:
                self._wait_for_room()
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

    def _capacity_for(self, event_bytes: float) -> int:
        """Events the queue may hold when an event encodes to ``event_bytes`` on average."""
        return max(1, min(self._max_queue_events, int(self._max_queue_bytes // event_bytes)))

    def _queue_description(self, queued: int) -> str:
        where = "the bus or the spool" if self._spools_new_batches else "the bus"
        return (
            f"{queued} events accepted earlier are not yet durable on {where} (limits: "
            f"max_queue_events={self._max_queue_events}, max_queue_bytes="
            f"{self._max_queue_bytes} at ~{self._event_bytes:.0f} encoded bytes an event); "
            f"last error: {_describe(self._error)}"
        )

    def _wait_for_room(self) -> None:
        """Under the lock, with the queue full: wait up to ``emit_timeout`` for the worker to
        settle events, or raise BackPressureError (at once when fail-closed)."""
        started = time.monotonic()
        if not self._fail_closed and self._emit_timeout > 0:
            # The worker would otherwise wait out the linger on a tail shorter than a batch.
            self._flush_requested = True
            self._lock.notify_all()
            deadline = started + self._emit_timeout
            while self._added - self._settled >= self._capacity:
                if self._closed:
                    raise ClientClosedError("the audit client is closed")
                self._raise_if_crashed()
                if self._spool_refusal is not None or self._state_refusal is not None:
                    self._raise_refused()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            else:
                return
        queued = self._added - self._settled
        why = "fail-closed" if self._fail_closed else f"emit_timeout_s={self._emit_timeout}"
        raise BackPressureError(
            f"the audit client's queue is full: {self._queue_description(queued)}; the event "
            f"was not accepted (waited {time.monotonic() - started:.3g} s, {why})",
            queued_events=queued,
        )

    def _raise_refused(self) -> None:
        if (
            self._spool_refusal is None
            and self._state_refusal is not None
            and self._fail_closed
            and time.monotonic() >= self._state_retry_at
        ):
            # Fail-closed loses a batch whose state cannot be saved instead of retrying it, so
            # only a new batch can find out that the disk has room again: let this one try.
            self._state_refusal = None
        refusal = self._spool_refusal or self._state_refusal
        if refusal is None:  # cleared by the worker since the caller looked
            return
        queued = self._added - self._settled
        raise SpoolFullError(
            f"the audit client cannot make batches durable on disk ({refusal}); the event was "
            f"not accepted. {queued} events accepted earlier are kept in memory until the spool "
            "or the bus takes them",
            queued_events=queued,
        )

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
        """Flush, then block until the spool is empty and the batches an earlier run left
        unconfirmed, if any, were re-sent (a no-op beyond flush without either).

        Asks the worker to try the bus now rather than at the end of its current backoff.
        Raises BusError naming the spool depth on timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.flush(timeout)
        if self._spool is None and not self._resend:
            return
        with self._lock:
            self._next_drain_at = 0.0
            self._lock.notify_all()
            # The stats mirror, not spool.depth: the worker updates it under this lock after
            # everything else that follows a drain (a fail-closed client accepts events again).
            while self.stats.spool_messages or self._resend:
                self._raise_if_crashed()
                if self._closed:
                    raise ClientClosedError(
                        f"the audit client is closed; {self._waiting()} stay on disk for the "
                        "next start"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise BusError(
                        f"drain timed out with {self._waiting()} (last error: {self._error})"
                    )
                self._lock.wait(0.05 if remaining is None else min(0.05, remaining))

    def _waiting(self) -> str:
        """What drain() waits for, in words."""
        parts = []
        if self._spool is not None and self._spool.depth.messages:
            depth = self._spool.depth
            parts.append(
                f"{depth.messages} batches ({depth.bytes} bytes) in the spool at "
                f"{self._spool.directory}"
            )
        if self._resend:
            parts.append(
                f"{len(self._resend)} batches of an earlier run not yet re-sent (kept in "
                f"{self._chain_state.path if self._chain_state else 'memory'})"
            )
        return " and ".join(parts) or "nothing"

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

    def _reconcile_with_spool(self, durable: DurableChain) -> DurableChain:
        """Take what the spool's newest batch says about the chain into account.

        If it is one of the unconfirmed batches, that one and those before it did arrive (in
        the spool): they are not re-sent. If the spool holds a batch *beyond* the saved
        position (a state file from before write-ahead, or one restored from a backup), the
        chain moves past it: sealing that sequence again would be a fork.
        """
        assert self._spool is not None
        position = durable.position
        last = self._spool.peek_last()
        if last is None:
            return durable
        try:
            batch = SignedBatch.decode(last.value, self._catalogue)
        except DecodeError:
            return durable
        if batch.producer_id != self.producer_id:
            return durable
        if batch.sequence < position.next_sequence:
            for index, value in enumerate(durable.unconfirmed):
                if value == last.value:
                    if self._chain_state is not None:
                        self._chain_state.confirm(batch.digest)
                    return DurableChain(position, durable.unconfirmed[index + 1 :])
            return durable
        recovered = ChainPosition(batch.sequence + 1, batch.digest)
        if self._chain_state is not None:
            self._chain_state.save(recovered)
        return DurableChain(recovered)

    def _unconfirmed_deliveries(self, durable: DurableChain) -> list[_Delivery]:
        """The batches to re-send at start-up, checked against the position saved with them:
        consecutive, linked, and ending where the position does."""
        position = durable.position
        where = self._chain_state.path if self._chain_state else "the chain state"
        deliveries: list[_Delivery] = []
        expected = position.next_sequence - len(durable.unconfirmed)
        prev: bytes | None = None
        for value in durable.unconfirmed:
            try:
                batch = SignedBatch.decode(value, self._catalogue)
            except DecodeError as exc:
                raise AuditError(
                    f"chain state file {where}: a saved batch is invalid: {exc}"
                ) from exc
            if (
                batch.producer_id != self.producer_id
                or batch.sequence != expected
                or (prev is not None and batch.prev_digest != prev)
            ):
                raise AuditError(
                    f"chain state file {where}: the saved batch {batch.producer_id} sequence "
                    f"{batch.sequence} does not continue the chain it is saved in "
                    f"({self.producer_id}, sequence {expected} expected)"
                )
            before = ChainPosition(batch.sequence, batch.prev_digest)
            deliveries.append(_Delivery(batch, value, 0, 0, [], before, resend=True))
            expected += 1
            prev = batch.digest
        if prev is not None and prev != position.prev_digest:
            raise AuditError(
                f"chain state file {where}: its last saved batch is not the one its position "
                "ends with"
            )
        return deliveries

    def _sync_spool_stats(self) -> None:
        depth = self.spool_depth
        self.stats.spool_messages = depth.messages
        self.stats.spool_bytes = depth.bytes

    # --- the worker ---------------------------------------------------------------------

    def _next_work(self) -> tuple[list[list[Any]], int, bool] | None:
        """Wait until batches are due or a drain attempt is; None when closed and drained.

        Returns ``(pages of events, index of the first event, drain_due)``: up to
        ``_GROUP_MAX`` full pages when the worker is behind (one when fail-closed, where a lost
        batch must not have successors sealed on top of it), else the due tail, else none.
        """
        group_max = 1 if self._fail_closed else _GROUP_MAX
        with self._lock:
            while True:
                now = time.monotonic()
                spool_waiting = (
                    self._spool is not None and self._spool.depth.messages > 0 and not self._closed
                )
                drain_due = spool_waiting and now >= self._next_drain_at
                pages: list[list[Any]] = []
                while self._full and len(pages) < group_max:
                    pages.append(self._full.popleft())
                if (
                    not pages
                    and self._tail
                    and (
                        len(self._tail) >= self._batch_size
                        or self._flush_requested
                        or self._closed
                        or now - self._first_at >= self._linger
                    )
                ):
                    pages.append(self._tail)
                    self._tail = []
                start = self._taken
                if pages:
                    self._taken += sum(map(len, pages))
                    if not self._full and not self._tail:
                        self._flush_requested = False
                if pages or drain_due:
                    return pages, start, drain_due
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
            self._resend_unconfirmed()
            while True:
                work = self._next_work()
                if work is None:
                    return
                pages, start, drain_due = work
                if drain_due:
                    self._drain_spool()
                if pages:
                    self._deliver(pages, start)
        except BaseException as exc:
            with self._lock:
                self._crash = exc
                self._lock.notify_all()
            raise
        finally:
            if self._spool is not None:
                self._spool.close()

    def _pause(self, seconds: float) -> None:
        """Sleep between attempts, cut short by close() so that it need not wait a backoff."""
        with self._lock:
            if not self._closed:
                self._lock.wait(seconds)
                return
        # Closed already: the loops that may still run stop on their own; never spin.
        time.sleep(min(seconds, 0.05))

    def _resend_unconfirmed(self) -> None:
        """Before anything new: send again the batches an earlier run saved and did not confirm.

        Each may have reached the bus (then its copy is a replay, which the materialiser drops)
        or not (then its copy is what keeps the chain without a gap). They go the way any batch
        goes, in order, behind whatever waits in the spool. Given up only when the assembler is
        closed first; they stay saved for the next start.
        """
        if not self._resend:
            return
        _log.info(
            "re-sending batches %d to %d of producer %s: an earlier run saved them and may have "
            "stopped before they reached the bus",
            self._resend[0].batch.sequence,
            self._resend[-1].batch.sequence,
            self.producer_id,
        )
        for delivery in list(self._resend):
            if self._fail_closed:
                self._resend_fail_closed(delivery)
            elif self._spool is not None:
                self._publish_or_spool(delivery)
            else:
                self._publish_until_done(delivery)
            if self._resend and self._resend[0] is delivery:
                return  # closed before it went; the rest wait for the next start too
        if self._monitor is not None and not (self._spool and self._spool.depth.messages):
            self._monitor.block(None)

    def _resend_fail_closed(self, delivery: _Delivery) -> None:
        """Events are refused until this is on the bus (it must precede them); a leftover
        spool drains first, since it holds older batches."""
        assert self._monitor is not None
        backoff = self._retry_backoff
        spool = self._spool
        while not self._closed:
            if spool is not None and spool.depth.messages:
                self._drain_spool()
            if spool is None or not spool.depth.messages:
                try:
                    self._bus.publish(self._topic, self._message_key, delivery.value)
                except BusError as exc:
                    self._monitor.observe(exc)
                    self._note_failure(exc)
                else:
                    self._monitor.observe(None)
                    self._advance(delivery, "bus")
                    return
            self._pause(backoff)
            backoff = min(backoff * 2, self._max_retry_backoff)

    def _deliver(self, pages: list[list[Any]], start: int) -> None:
        """Encode and seal each page, save them all (one fsync), then send them in order."""
        steps: list[tuple[int, int, list[tuple[int, str]], _Delivery | None]] = []
        position = self._position
        for events in pages:
            encoded, rejected = self._encode_all(events, start)
            delivery = None
            if encoded:
                self._measure(encoded)
                batch = seal_batch(
                    encoded,
                    producer_id=self.producer_id,
                    key=self._key,
                    sequence=position.next_sequence,
                    prev_digest=position.prev_digest,
                    created_at_us=self._clock_us(),
                )
                value = batch.encode(self._catalogue)
                delivery = _Delivery(batch, value, start, len(events), rejected, position)
                position = ChainPosition(batch.sequence + 1, batch.digest)
            steps.append((start, len(events), rejected, delivery))
            start += len(events)
        deliveries = [d for *_, d in steps if d is not None]
        if self._fail_closed and deliveries:
            assert self._monitor is not None and len(deliveries) == 1
            reason = self._monitor.down_reason()
            if reason is not None:
                # Events accepted just before the trail went down: fail them now rather than
                # spend the writer's whole delivery timeout on each of their batches in turn.
                self._lose(deliveries[0], reason)
                return
        if deliveries and not self._make_durable(deliveries):
            return
        for first, taken, rejected, delivery in steps:
            if delivery is None:  # every event of the page was rejected: settle it in order
                with self._lock:
                    self._settle(first, taken, rejected)
            elif self._fail_closed:
                self._publish_or_lose(delivery)
            elif self._spool is not None:
                self._publish_or_spool(delivery)
            else:
                self._publish_until_done(delivery)

    def _measure(self, encoded: Sequence[bytes]) -> None:
        """Fold this batch's encoded sizes into the estimate the queue's byte bound uses."""
        size = sum(map(len, encoded)) / len(encoded)
        if self._measured:
            size = (1 - _SIZE_WEIGHT) * self._event_bytes + _SIZE_WEIGHT * size
        self._measured = True
        self._event_bytes = max(1.0, size)
        self._capacity = self._capacity_for(self._event_bytes)

    def _make_durable(self, deliveries: list[_Delivery]) -> bool:
        """Write-ahead: save the position after these batches, and the batches, before any of
        them is sent.

        Retries (with backoff) while the state cannot be written, refusing new events
        meanwhile (SpoolFullError); fail-closed, loses the batch instead (False).
        """
        last = deliveries[-1].batch
        after = ChainPosition(last.sequence + 1, last.digest)
        state = self._chain_state
        if state is not None:
            saved = [(d.batch.digest, d.value) for d in deliveries]
            backoff = self._retry_backoff
            while True:
                try:
                    state.save(after, saved)
                    break
                except OSError as exc:
                    refusal = SpoolFullError(f"chain state {state.path} cannot be written: {exc}")
                    with self._lock:
                        self._state_refusal = refusal
                        self._state_retry_at = time.monotonic() + self._availability_interval
                        self._error = refusal
                    if self._fail_closed:
                        # What the disk holds is still the position before this batch (the
                        # rename did not happen) or this batch, saved but unsent; either way
                        # the next batch saves over it before it can be sent.
                        self._lose(deliveries[0], str(refusal))
                        return False
                self._pause(backoff)
                backoff = min(backoff * 2, self._max_retry_backoff)
            if self._state_refusal is not None:
                with self._lock:
                    self._state_refusal = None
        self._position = after
        return True

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
        # max: a re-sent batch of an earlier run settles no event of this one.
        self._settled = max(self._settled, start + taken)
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
                if delivery.resend and self._closed:
                    return  # saved on disk; the next start sends it
                self._pause(backoff)
                backoff = min(backoff * 2, self._max_retry_backoff)
        self._advance(delivery, "bus")

    def _publish_or_lose(self, delivery: _Delivery) -> None:
        """Fail-closed: one attempt; a refused batch is lost whole, the trail down."""
        assert self._monitor is not None
        try:
            self._bus.publish(self._topic, self._message_key, delivery.value)
        except BusError as exc:
            self._monitor.observe(exc)
            with self._lock:
                self.stats.publish_failures += 1
                self._error = exc
            self._step_back(delivery)
            self._lose(delivery, f"{type(exc).__name__}: {exc}")
            return
        self._monitor.observe(None)
        self._advance(delivery, "bus")

    def _step_back(self, delivery: _Delivery) -> None:
        """Fail-closed, after a refused publish: the next batch takes this one's sequence (the
        bus never saw it), so the saved state goes back too, or a restart would re-send a
        batch whose events flush reported as not written."""
        self._position = delivery.before
        if self._chain_state is None:
            return
        try:
            self._chain_state.save(delivery.before)
        except OSError as exc:
            # No fork either way: the next batch's save replaces the state before it is sent.
            _log.warning(
                "chain state %s could not be stepped back after a lost batch (%s); if the "
                "process stops before the next batch, the next start sends the lost batch",
                self._chain_state.path,
                exc,
            )

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
        """Append to the spool; while the spool refuses (full disk, its cap), refuse new events
        and keep trying: the bus takes what waits in the spool (which makes room), then this
        batch, or the spool takes it."""
        spool = self._spool
        assert spool is not None
        value = delivery.value
        backoff = self._retry_backoff
        while True:
            try:
                spool.append(self._topic, self._message_key, value)
                break
            except SpoolError as exc:
                refusal = exc if isinstance(exc, SpoolFullError) else SpoolFullError(str(exc))
                with self._lock:
                    self._spool_refusal = refusal
                    self._error = exc
                if delivery.resend and self._closed:
                    return  # saved on disk; the next start sends it
            self._pause(backoff)
            backoff = min(backoff * 2, self._max_retry_backoff)
            if spool.depth.messages:
                self._drain_spool()
            # With nothing older in the spool the bus is a fine place too, if it is back.
            if not spool.depth.messages:
                try:
                    self._bus.publish(self._topic, self._message_key, value)
                except BusError as exc:
                    self._note_failure(exc)
                else:
                    self._advance(delivery, "bus")
                    return
        self._advance(delivery, "spool")

    def _advance(self, delivery: _Delivery, where: Literal["bus", "spool"]) -> None:
        """Record that a batch is durable on the bus or in the spool: confirm it on disk, settle
        its events."""
        batch = delivery.batch
        if self._chain_state is not None:
            self._chain_state.confirm(batch.digest)
        count = len(batch.events)
        with self._lock:
            self._spool_refusal = None
            if delivery.resend and self._resend and self._resend[0] is delivery:
                self._resend.popleft()
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
                        if not self._resend:  # else the re-send unblocks, after it
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


def _describe(error: BaseException | None) -> str:
    return "none" if error is None else f"{type(error).__name__}: {error}"


def _rejections(rejected: list[tuple[int, str]]) -> str:
    named = "; ".join(why for _, why in rejected[:_REJECTIONS_NAMED])
    more = len(rejected) - _REJECTIONS_NAMED
    return (
        f"{len(rejected)} events accepted earlier did not encode and were not written: {named}"
        + (f"; and {more} more (see the log)" if more > 0 else "")
    )
