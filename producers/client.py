"""The client library's front door: :class:`AuditClient`, one typed method per event kind."""

from __future__ import annotations

import atexit
import uuid
import weakref
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from aigc_audit.producers.batcher import (
    DEFAULT_EMIT_TIMEOUT,
    DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_MAX_QUEUE_EVENTS,
    BatchAssembler,
    BatcherStats,
)
from aigc_audit.producers.chain_state import ChainStateFile
from aigc_audit.producers.closing import Closing
from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.errors import AuditTrailDownError, EventValidationError
from aigc_audit.producers.events import (
    AgreementAcceptance,
    AnnotationQualityCheck,
    AuditEvent,
    AuthorityDisclosure,
    Complaint,
    Generation,
    IdentityVerification,
    LegalHold,
    ModerationAction,
    PersonalInformationRequest,
    RetentionPurge,
    SafetyEvaluation,
    TrainingDataIntake,
    UserSanction,
)
from aigc_audit.producers.record_encoder import RecordEncoder
from aigc_audit.producers.signing import SigningKey
from aigc_audit.producers.spool import DB_FILENAME as SPOOL_DB_FILENAME
from aigc_audit.producers.spool import DiskSpool, SpoolDepth
from aigc_audit.producers.transports.base import BusWriter

TOPIC_PREFIX = "aigc-audit"
EVENTS_TOPIC = f"{TOPIC_PREFIX}.events"

T = TypeVar("T")
E = TypeVar("E", bound=AuditEvent)

_open_clients: weakref.WeakSet[AuditClient] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    # Events accepted by emit() must reach the bus even if the service forgets to close.
    for client in list(_open_clients):
        client.close()


class AuditClient(Closing):
    """Emits signed audit events for one producer (one running instance of a service).

    Every method checks its event's kind and hands the (immutable) event to a background worker
    that encodes it (Avro single-object encoding), batches, chains, signs and publishes. The
    client is thread-safe, flushes on :meth:`close`, on leaving a ``with`` block and at interpreter
    exit. Each method returns the event id, which later events cite as evidence.

    What happens when the bus cannot be reached depends on three settings:

    * ``state_dir`` given and ``spool=True`` (the default): a batch the bus refuses goes to a
      durable on-disk spool, ``<state_dir>/spool/<producer_id>/``, and later batches queue
      behind it; the worker drains it oldest first when the bus is back, with exponential
      backoff from ``retry_backoff`` to ``max_retry_backoff`` seconds between attempts.
      :meth:`flush` returns once events are on the bus *or* in the spool; :meth:`drain` waits
      for the bus. A client started later with the same ``state_dir`` publishes what an
      earlier run left in the spool before anything new.
    * ``state_dir=None`` or ``spool=False``: no spool (a spool needs somewhere durable to live,
      next to the chain state). The worker retries each batch until the bus takes it; new
      events wait in memory and :meth:`flush` raises BusError when its timeout runs out.
    * ``fail_closed=True`` (the spool setting is ignored: nothing is spooled): the client refuses
      events while the audit trail is down, so a provider can block generation instead of
      generating unaudited. *Down* means the newest observation of the bus failed: either the
      last publish attempt, or the writer's optional ``check_available()``, which :meth:`emit`
      consults at most every ``availability_interval`` seconds (caching the answer); before
      any publish only the check counts. Then :meth:`emit` raises AuditTrailDownError. Each batch
      gets at most one publish attempt (none while the trail is down); if it fails, the whole
      batch is dropped (nothing of it reaches the bus) and the next :meth:`flush` or
      :meth:`close` raises AuditTrailDownError naming how many events were not written.

    **Crash safety.** With a ``state_dir``, each batch's sequence, chain digest and signed bytes
    are saved there (fsynced) before the batch can reach the bus, so a client killed at any
    point (even ``kill -9``) and started again with the same ``state_dir`` and
    ``producer_id`` continues the chain: it never reuses a sequence (the materialiser would
    quarantine the batch as a fork) and never skips one; the batches that may not have
    arrived are sent again first (a harmless replay if they had). An event whose :meth:`flush`
    returned is on the bus or in the spool, and reaches the bus after any restart. Without a
    ``state_dir`` nothing is kept: a restarted client starts a new chain at sequence 0.

    **Back-pressure.** Accepted events are held in memory until they are durable on the bus or
    in the spool: at most ``max_queue_events`` of them and ``max_queue_bytes`` of their
    encoded size (estimated from the running average of what the worker encoded; the Python
    objects take a few times more). When the queue is full, :meth:`emit` waits up to
    ``emit_timeout_s`` seconds for room, then raises BackPressureError; fail-closed (or with
    ``emit_timeout_s=0``) it raises at once. While the spool cannot take batches (its disk is
    full, or it holds ``spool_max_bytes``; None: only the disk limits it) or the chain state
    cannot be written, :meth:`emit` raises SpoolFullError at once; the events accepted before
    stay in memory and reach the spool or the bus when either has room again.

    Example::

        from aigc_audit.producers import AuditClient, Generation, SigningKey
        from aigc_audit.producers.transports.embedded_log import EmbeddedLog

        bus = EmbeddedLog(Path(".aigc-audit/bus.sqlite3")).writer()
        with AuditClient(service_id="chat", producer_id="chat-1",
                         key=SigningKey.from_file(Path("chat-1.key")), bus=bus,
                         state_dir=Path(".aigc-audit/state")) as audit:
            event_id = audit.generation(Generation(request_id="r1", model_name="m", ...))
            print(audit.spool_depth)  # SpoolDepth(messages=0, bytes=0) while the bus is up

    With explicit bounds: at most 20,000 events or 8 MiB in memory, a caller waits at most
    50 ms for room, and the spool may hold 1 GiB of batches::

        audit = AuditClient(service_id="chat", producer_id="chat-1", key=key, bus=bus,
                            state_dir=Path(".aigc-audit/state"),
                            max_queue_events=20_000, max_queue_bytes=8 * 1024 * 1024,
                            emit_timeout_s=0.05, spool_max_bytes=1024**3)
        try:
            audit.generation(event)
        except BackPressureError:   # SpoolFullError is one too
            return refuse("the audit trail is not keeping up; try again")
    """

    def __init__(
        self,
        *,
        service_id: str,
        producer_id: str,
        key: SigningKey,
        bus: BusWriter,
        topic: str = EVENTS_TOPIC,
        state_dir: Path | None = None,
        batch_size: int = 500,
        linger: float = 0.2,
        catalogue: SchemaCatalogue | None = None,
        spool: bool = True,
        fail_closed: bool = False,
        retry_backoff: float = 0.2,
        max_retry_backoff: float = 5.0,
        availability_interval: float = 0.5,
        max_queue_events: int = DEFAULT_MAX_QUEUE_EVENTS,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        emit_timeout_s: float = DEFAULT_EMIT_TIMEOUT,
        spool_max_bytes: int | None = None,
    ) -> None:
        if not service_id or not producer_id:
            raise EventValidationError("service_id and producer_id must not be empty")
        self.service_id = service_id
        self.producer_id = producer_id
        self.fail_closed = fail_closed
        self._catalogue = catalogue or default_catalogue()
        self._encoder = RecordEncoder(
            self._catalogue, service_id=service_id, producer_id=producer_id
        )
        self._kinds: set[type] = set()  # event classes emit() has checked once
        state = Path(state_dir) if state_dir is not None else None
        chain_state = ChainStateFile(state / f"{producer_id}.chain.json") if state else None
        disk_spool = _open_spool(
            state, producer_id, spool=spool, fail_closed=fail_closed, max_bytes=spool_max_bytes
        )
        try:
            self._batcher = BatchAssembler(
                producer_id=producer_id,
                key=key,
                bus=bus,
                topic=topic,
                catalogue=self._catalogue,
                chain_state=chain_state,
                batch_size=batch_size,
                linger=linger,
                spool=disk_spool,
                fail_closed=fail_closed,
                retry_backoff=retry_backoff,
                max_retry_backoff=max_retry_backoff,
                availability_interval=availability_interval,
                encode=self._encoder.encode,
                encode_many=self._encoder.encode_many,
                max_queue_events=max_queue_events,
                max_queue_bytes=max_queue_bytes,
                emit_timeout=emit_timeout_s,
            )
        except BaseException:
            if disk_spool is not None:
                disk_spool.close()
            raise
        _open_clients.add(self)

    @property
    def stats(self) -> BatcherStats:
        """Counters since start, including the current spool depth (``spool_messages``,
        ``spool_bytes``), ``events_rejected`` (see :meth:`emit`) and, fail-closed,
        ``events_lost``."""
        return self._batcher.stats

    @property
    def spool_depth(self) -> SpoolDepth:
        """Batches (``messages``) and bytes waiting in the spool; zero without a spool.

        Reading it does no I/O. Example::

            if audit.spool_depth.messages:
                log.warning("audit bus unreachable; %d batches spooled", audit.spool_depth.messages)
        """
        return self._batcher.spool_depth

    def emit(self, event: AuditEvent) -> uuid.UUID:
        """Emit any event model; returns its event id.

        The event was validated when its model was built; this only checks its kind and hands
        it to the worker thread, which encodes, batches, signs and publishes it. So this does no
        I/O and costs the caller a few microseconds, except that a fail-closed client asks the
        bus writer whether the bus is up when its cached answer is older than
        ``availability_interval``.

        Raises EventValidationError for an object that is not an event kind, SchemaError for a
        kind whose schema is missing, ClientClosedError after :meth:`close`, and (fail-closed
        only) AuditTrailDownError when the audit trail is down: the event was not accepted, and
        the service should not go on with the generation. Raises BackPressureError when the
        in-memory queue stayed full for ``emit_timeout_s`` (at once when fail-closed), and
        SpoolFullError (a BackPressureError) at once while the spool or the chain state cannot
        be written; in both cases the event was not accepted and those accepted before are
        kept (see the class docstring).

        An event model that validated always encodes: the models bound every value to what
        its Avro schema holds. One that does not encode anyway (built with
        ``model_construct``, say) is left out of its batch and never written, but never
        silently: it is logged at once (logger ``producers.batcher``), counted in
        ``stats.events_rejected``, and the next :meth:`flush` (or :meth:`close`, :meth:`drain`)
        raises EventValidationError naming it, once.

        Example::

            try:
                audit.emit(Generation(request_id="r1", ...))
            except AuditTrailDownError:
                return refuse("generation is unavailable while the audit trail is down")
        """
        if event.__class__ not in self._kinds:
            self._check_kind(event)
        self._batcher.add(event)
        return event.event_id

    def _check_kind(self, event: object) -> None:
        if not isinstance(event, AuditEvent):
            raise EventValidationError(f"not an audit event: {type(event).__name__}")
        self._encoder.prepare(type(event))  # compiled once, so the worker never waits for it
        self._kinds.add(type(event))

    def generation(self, event: Generation) -> uuid.UUID:
        """Record a generation: which model answered whom, with digests of input and output."""
        return self.emit(_expect(event, Generation))

    def moderation_action(self, event: ModerationAction) -> uuid.UUID:
        """Record a moderation decision on content (Art. 14 para 1)."""
        return self.emit(_expect(event, ModerationAction))

    def complaint(self, event: Complaint) -> uuid.UUID:
        """Record a complaint and its handling (Art. 15)."""
        return self.emit(_expect(event, Complaint))

    def user_sanction(self, event: UserSanction) -> uuid.UUID:
        """Record a warning, restriction, suspension, termination or reinstatement (Art. 14)."""
        return self.emit(_expect(event, UserSanction))

    def personal_information_request(self, event: PersonalInformationRequest) -> uuid.UUID:
        """Record a personal-information request or a change of its status (Art. 11)."""
        return self.emit(_expect(event, PersonalInformationRequest))

    def training_data_intake(self, event: TrainingDataIntake) -> uuid.UUID:
        """Record a training data set taken in (Art. 7)."""
        return self.emit(_expect(event, TrainingDataIntake))

    def annotation_quality_check(self, event: AnnotationQualityCheck) -> uuid.UUID:
        """Record a sampled annotation quality check (Art. 8)."""
        return self.emit(_expect(event, AnnotationQualityCheck))

    def safety_evaluation(self, event: SafetyEvaluation) -> uuid.UUID:
        """Record a TC260-003 safety evaluation of a model version."""
        return self.emit(_expect(event, SafetyEvaluation))

    def identity_verification(self, event: IdentityVerification) -> uuid.UUID:
        """Record that (and how) a subject was verified, never the identity."""
        return self.emit(_expect(event, IdentityVerification))

    def retention_purge(self, event: RetentionPurge) -> uuid.UUID:
        """Record a purge of records whose retention period ended."""
        return self.emit(_expect(event, RetentionPurge))

    def authority_disclosure(self, event: AuthorityDisclosure) -> uuid.UUID:
        """Record data disclosed to an authority in an inspection (Art. 19)."""
        return self.emit(_expect(event, AuthorityDisclosure))

    def legal_hold(self, event: LegalHold) -> uuid.UUID:
        """Record a legal hold placed on, or released from, a subject's or a case's records."""
        return self.emit(_expect(event, LegalHold))

    def agreement_acceptance(self, event: AgreementAcceptance) -> uuid.UUID:
        """Record that a subject accepted a version of the service agreement (Art. 9).

        Emit one at sign-up, before the subject's first generation, and one each time the
        subject accepts a newly published version; the agreement in force for a subject at a
        given time is the latest version accepted by then (query ``agreement_in_force``).

        Example::

            audit.agreement_acceptance(AgreementAcceptance(
                subject=pseudonymise(secret, user_id), agreement_id="user-agreement",
                agreement_version="4.3", accepted_at=clicked_at, channel="app"))
        """
        return self.emit(_expect(event, AgreementAcceptance))

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event emitted before this call is durable: on the bus, or (when
        the bus is unreachable and the client spools) in the on-disk spool.

        Raises BusError after ``timeout`` seconds (without a spool, while the bus is down),
        and, fail-closed, AuditTrailDownError when some of those events were not written
        (``events_not_written`` says how many; none of them reached the bus). Raises
        EventValidationError naming the events among them that did not encode (see
        :meth:`emit`). Each loss and each rejection is reported once.

        Example::

            audit.flush(timeout=5)   # the events are safe from a crash of this process now
        """
        self._batcher.flush(timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Flush, then block until the spool is empty: everything emitted so far is on the bus.

        Asks for a publish attempt now rather than at the end of the current backoff. Raises
        BusError naming the spool depth after ``timeout`` seconds. Without a spool it is
        :meth:`flush`.

        Example::

            audit.drain(timeout=30)  # before a planned shutdown, to leave nothing spooled
            audit.close()
        """
        self._batcher.drain(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the worker; emitting afterwards raises ClientClosedError.

        Batches still in the spool stay on disk; a client started later with the same
        ``state_dir`` and ``producer_id`` publishes them before anything new. Call
        :meth:`drain` first to leave nothing behind. Fail-closed, raises AuditTrailDownError
        (after closing) if events were lost and not yet reported; raises EventValidationError
        (after closing) if events did not encode and were not yet reported.
        """
        try:
            self._batcher.close(timeout)
        except (AuditTrailDownError, EventValidationError):
            _open_clients.discard(self)
            raise
        _open_clients.discard(self)


def _open_spool(
    state_dir: Path | None,
    producer_id: str,
    *,
    spool: bool,
    fail_closed: bool,
    max_bytes: int | None,
) -> DiskSpool | None:
    """The producer's spool, ``<state_dir>/spool/<producer_id>/``, if this client has one.

    Fail-closed clients spool nothing, but open a spool an earlier (spooling) run left behind,
    so that its batches reach the bus before any new one.
    """
    if state_dir is None:
        return None
    directory = state_dir / "spool" / producer_id
    if not fail_closed:
        return DiskSpool(directory, max_bytes=max_bytes) if spool else None
    if not (directory / SPOOL_DB_FILENAME).exists():
        return None
    leftover = DiskSpool(directory)
    if leftover.depth.messages:
        return leftover
    leftover.close()
    return None


def _expect(event: object, kind: type[T]) -> T:
    if not isinstance(event, kind):
        raise EventValidationError(f"expected a {kind.__name__}, got {type(event).__name__}")
    return event


def build_event(kind: type[E], **fields: Any) -> E:
    """Validate ``fields`` into an event of ``kind``, raising EventValidationError on bad input."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind.__name__
        raise EventValidationError(f"{kind.EVENT_TYPE}.{where}: {first['msg']}") from exc
