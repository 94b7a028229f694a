"""The client library's front door: :class:`AuditClient`, one typed method per event kind."""

from __future__ import annotations

import atexit
import uuid
import weakref
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from pydantic import ValidationError

from producers.batcher import BatchAssembler, BatcherStats
from producers.chain_state import ChainStateFile
from producers.codec import SchemaCatalogue, default_catalogue
from producers.errors import EventValidationError
from producers.events import (
    AnnotationQualityCheck,
    AuditEvent,
    AuthorityDisclosure,
    Complaint,
    Generation,
    IdentityVerification,
    ModerationAction,
    PersonalInformationRequest,
    RetentionPurge,
    SafetyEvaluation,
    TrainingDataIntake,
    UserSanction,
)
from producers.signing import SigningKey
from producers.transports.base import BusWriter

EVENTS_TOPIC = "aigc-audit.events"

T = TypeVar("T")
E = TypeVar("E", bound=AuditEvent)

_open_clients: weakref.WeakSet[AuditClient] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    # Events accepted by emit() must reach the bus even if the service forgets to close.
    for client in list(_open_clients):
        client.close()


class AuditClient:
    """Emits signed audit events for one producer (one running instance of a service).

    Every method validates its event, encodes it (Avro single-object encoding) on the calling
    thread, and hands it to a background worker that batches, chains, signs and publishes. The
    client is thread-safe, flushes on :meth:`close`, on leaving a ``with`` block and at interpreter
    exit. Each method returns the event id, which later events cite as evidence.

    Example::

        from producers import AuditClient, Generation, SigningKey
        from producers.transports.embedded_log import EmbeddedLog

        bus = EmbeddedLog(Path(".aigc-audit/bus.sqlite3")).writer()
        with AuditClient(service_id="chat", producer_id="chat-1",
                         key=SigningKey.from_file(Path("chat-1.key")), bus=bus) as audit:
            event_id = audit.generation(Generation(request_id="r1", model_name="m", ...))
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
    ) -> None:
        if not service_id or not producer_id:
            raise EventValidationError("service_id and producer_id must not be empty")
        self.service_id = service_id
        self.producer_id = producer_id
        self._catalogue = catalogue or default_catalogue()
        chain_state = ChainStateFile(state_dir / f"{producer_id}.chain.json") if state_dir else None
        self._batcher = BatchAssembler(
            producer_id=producer_id,
            key=key,
            bus=bus,
            topic=topic,
            catalogue=self._catalogue,
            chain_state=chain_state,
            batch_size=batch_size,
            linger=linger,
        )
        _open_clients.add(self)

    @property
    def stats(self) -> BatcherStats:
        return self._batcher.stats

    def emit(self, event: AuditEvent) -> uuid.UUID:
        """Emit any event model; returns its event id."""
        if not isinstance(event, AuditEvent):
            raise EventValidationError(f"not an audit event: {type(event).__name__}")
        record = event.to_record(service_id=self.service_id, producer_id=self.producer_id)
        try:
            encoded = self._catalogue.encode(event.SCHEMA, record)
        except (ValueError, TypeError) as exc:
            raise EventValidationError(f"{event.EVENT_TYPE}: cannot encode: {exc}") from exc
        self._batcher.add(encoded)
        return event.event_id

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

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event emitted so far is durable on the bus."""
        self._batcher.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the worker; emitting afterwards raises ClientClosedError."""
        self._batcher.close(timeout)
        _open_clients.discard(self)

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _expect(event: object, kind: type[T]) -> T:
    if not isinstance(event, kind):
        raise EventValidationError(f"expected a {kind.__name__}, got {type(event).__name__}")
    return event


def build_event(kind: type[E], **fields: object) -> E:
    """Validate ``fields`` into an event of ``kind``, raising EventValidationError on bad input."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind.__name__
        raise EventValidationError(f"{kind.EVENT_TYPE}.{where}: {first['msg']}") from exc
