"""Data handling: personal-information requests, training data, annotation, safety evaluations,
identity verification, retention purges, disclosures to an authority, legal holds and
acceptances of the service agreement (Art. 7, 8, 9, 11, 19).

All are written as ``aigc.audit.DataHandling`` with exactly one detail field set, the one named
after the event type.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, model_validator

from aigc_audit.producers.events.base import (
    AVRO_LONG_MAX,
    Attr,
    AuditEvent,
    Const,
    Identifier,
    Nested,
    RecordLayout,
    UtcTime,
)

DETAIL_FIELDS = (
    "personal_information_request",
    "training_data_intake",
    "annotation_quality_check",
    "safety_evaluation",
    "identity_verification",
    "retention_purge",
    "authority_disclosure",
    "legal_hold",
    "agreement_acceptance",
)

Rate = float


class DataHandlingEvent(AuditEvent):
    """Base of the data-handling kinds: ``subject`` is the head-level field, the rest is detail."""

    SCHEMA: ClassVar[str] = "aigc.audit.DataHandling"

    subject: str | None = None

    def body(self) -> dict[str, Any]:
        detail = self.model_dump(exclude={"event_id", "occurred_at", "subject"})
        record: dict[str, Any] = dict.fromkeys(DETAIL_FIELDS)
        record[self.EVENT_TYPE] = detail
        return {"subject": self.subject, **record}

    @classmethod
    def record_layout(cls) -> RecordLayout:
        detail = {
            name: Attr(name)
            for name in cls.model_fields
            if name not in ("event_id", "occurred_at", "subject")
        }
        return {
            "head": Nested(cls.head_layout()),
            "subject": Attr("subject"),
            **{name: Const(None) for name in DETAIL_FIELDS},
            cls.EVENT_TYPE: Nested(detail),
        }


class PersonalInformationRequestKind(StrEnum):
    ACCESS = "access"
    COPY = "copy"
    CORRECT = "correct"
    SUPPLEMENT = "supplement"
    DELETE = "delete"


class RequestStatus(StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REFUSED = "refused"


class PersonalInformationRequest(DataHandlingEvent):
    """A subject's request to access, copy, correct, supplement or delete their data (Art. 11).

    Emit it when received and again (same ``request_id``) as its status changes.

    Example::

        PersonalInformationRequest(subject=subject, request_id="pir-3", request_kind="delete",
                                   received_at=t0, due_at=t0 + timedelta(days=21),
                                   status="received")
    """

    EVENT_TYPE: ClassVar[str] = "personal_information_request"

    request_id: Identifier
    request_kind: PersonalInformationRequestKind
    received_at: UtcTime
    due_at: UtcTime
    status: RequestStatus
    completed_at: UtcTime | None = None
    outcome: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PersonalInformationRequest:
        if self.subject is None:
            raise ValueError("a personal-information request needs its subject")
        done = self.status in (RequestStatus.COMPLETED, RequestStatus.REFUSED)
        if done != (self.completed_at is not None):
            raise ValueError("completed_at is set exactly when status is completed or refused")
        return self


class DataSourceKind(StrEnum):
    PUBLIC_WEB = "public_web"
    LICENSED = "licensed"
    USER_GENERATED = "user_generated"
    SYNTHETIC = "synthetic"
    PROPRIETARY = "proprietary"


class TrainingDataIntake(DataHandlingEvent):
    """A training data set taken in, with its provenance and legal basis (Art. 7).

    Example::

        TrainingDataIntake(dataset_id="ds-news-2026q3", source="licensed news archive",
                           source_kind="licensed", legal_basis="licence L-2026-118",
                           contains_personal_information=False, size_bytes=8_000_000_000,
                           record_count=2_400_000, model_name="qwen-chat", model_version="2.1")
    """

    EVENT_TYPE: ClassVar[str] = "training_data_intake"

    dataset_id: Identifier
    source: Identifier
    source_kind: DataSourceKind
    legal_basis: Identifier
    contains_personal_information: bool
    consent_basis: str | None = None
    size_bytes: int = Field(ge=0, le=AVRO_LONG_MAX)
    record_count: int = Field(ge=0, le=AVRO_LONG_MAX)
    model_name: str | None = None
    model_version: str | None = None

    @model_validator(mode="after")
    def _consent(self) -> TrainingDataIntake:
        if self.contains_personal_information and not self.consent_basis:
            raise ValueError("personal information in training data needs a consent_basis")
        return self


class AnnotationQualityCheck(DataHandlingEvent):
    """A sampled check of annotation quality against a rules version (Art. 8).

    Example::

        AnnotationQualityCheck(dataset_id="ds-1", rules_version="rules-4.2", sample_size=500,
                               sampled_accuracy=0.97)
    """

    EVENT_TYPE: ClassVar[str] = "annotation_quality_check"

    dataset_id: Identifier
    rules_version: Identifier
    sample_size: int = Field(gt=0, le=AVRO_LONG_MAX)
    sampled_accuracy: Rate = Field(ge=0.0, le=1.0)
    model_name: str | None = None
    model_version: str | None = None


class SafetyEvaluation(DataHandlingEvent):
    """A safety evaluation of a model version in TC260-003 terms.

    Example::

        SafetyEvaluation(model_name="qwen-chat", model_version="2.1", generated_test_size=2000,
                         qualified_rate=0.96, should_refuse_test_size=1000, refusal_rate=0.97,
                         should_answer_test_size=1000, false_refusal_rate=0.02)
    """

    EVENT_TYPE: ClassVar[str] = "safety_evaluation"

    model_name: Identifier
    model_version: Identifier
    generated_test_size: int = Field(ge=0, le=AVRO_LONG_MAX)
    qualified_rate: Rate = Field(ge=0.0, le=1.0)
    should_refuse_test_size: int = Field(ge=0, le=AVRO_LONG_MAX)
    refusal_rate: Rate = Field(ge=0.0, le=1.0)
    should_answer_test_size: int = Field(ge=0, le=AVRO_LONG_MAX)
    false_refusal_rate: Rate = Field(ge=0.0, le=1.0)


class VerificationMethod(StrEnum):
    MOBILE_NUMBER = "mobile_number"
    ID_DOCUMENT = "id_document"
    BANK_CARD = "bank_card"
    FACE_MATCH = "face_match"
    OTHER = "other"


class IdentityVerification(DataHandlingEvent):
    """That, and how, a subject's identity was verified; never the identity itself.

    Example::

        IdentityVerification(subject=subject, method="mobile_number", verified=True)
    """

    EVENT_TYPE: ClassVar[str] = "identity_verification"

    method: VerificationMethod
    verified: bool

    @model_validator(mode="after")
    def _subject(self) -> IdentityVerification:
        if self.subject is None:
            raise ValueError("an identity verification needs its subject")
        return self


class RetentionPurge(DataHandlingEvent):
    """Records removed at the end of their retention period.

    Example::

        RetentionPurge(scope="app_logs", cutoff=t0 - timedelta(days=400), records_purged=12000,
                       reason="retention period of 365 days ended")
    """

    EVENT_TYPE: ClassVar[str] = "retention_purge"

    scope: Identifier
    cutoff: UtcTime
    records_purged: int = Field(ge=0, le=AVRO_LONG_MAX)
    reason: Identifier


class AuthorityDisclosure(DataHandlingEvent):
    """Data handed to an authority during an inspection (Art. 19).

    Example::

        AuthorityDisclosure(authority="Beijing CAC", reference="insp-2026-04",
                            scope="moderation actions 2026-Q3", records_disclosed=5200,
                            legal_basis="Interim Measures art. 19")
    """

    EVENT_TYPE: ClassVar[str] = "authority_disclosure"

    authority: Identifier
    reference: Identifier
    scope: Identifier
    records_disclosed: int = Field(ge=0, le=AVRO_LONG_MAX)
    legal_basis: Identifier


class HoldScope(StrEnum):
    SUBJECT = "subject"
    CASE = "case"


class HoldAction(StrEnum):
    PLACE = "place"
    RELEASE = "release"


class LegalHold(DataHandlingEvent):
    """A legal hold placed on (or released from) a subject's or a moderation case's records.

    While a hold is in place the held records outlive their retention period; the hold and its
    release are themselves evidence, so both are events in the log.

    Example::

        LegalHold(hold_id="hold-7", hold_scope="subject", hold_target=subject,
                  hold_action="place", hold_reason="authority inquiry 2026-118",
                  requested_by="Beijing CAC")
    """

    EVENT_TYPE: ClassVar[str] = "legal_hold"

    hold_id: Identifier
    hold_scope: HoldScope
    hold_target: Identifier
    hold_action: HoldAction
    hold_reason: Identifier
    requested_by: str | None = None

    @model_validator(mode="after")
    def _subject(self) -> LegalHold:
        if self.hold_scope is HoldScope.SUBJECT and self.subject not in (None, self.hold_target):
            raise ValueError("a hold on a subject names that subject as its target")
        return self


class AgreementAcceptance(DataHandlingEvent):
    """A subject accepted a version of the service agreement (Art. 9, Draft 5).

    The provider is the personal-information handler and must have a service agreement with
    each user; this records which version a subject accepted, when and where, so that the
    agreement in force for a subject at any time can be shown. Emit it at sign-up and again
    whenever the subject accepts a new version.

    Example::

        AgreementAcceptance(subject=subject, agreement_id="user-agreement",
                            agreement_version="4.3", accepted_at=now, channel="app")
    """

    EVENT_TYPE: ClassVar[str] = "agreement_acceptance"

    agreement_id: Identifier
    agreement_version: Identifier
    accepted_at: UtcTime
    channel: Identifier
    """Where the subject accepted it: ``app``, ``web``, ``api``, ..."""

    @model_validator(mode="after")
    def _subject(self) -> AgreementAcceptance:
        if self.subject is None:
            raise ValueError("an agreement acceptance needs its subject")
        return self
