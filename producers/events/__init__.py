"""Typed audit events: one pydantic model per event kind, written as its family's Avro record."""

from __future__ import annotations

from aigc_audit.producers.events.base import (
    SCHEMA_VERSION,
    AuditEvent,
    AuthorityReport,
    utc_now,
    uuid7,
)
from aigc_audit.producers.events.data_handling import (
    AgreementAcceptance,
    AnnotationQualityCheck,
    AuthorityDisclosure,
    DataHandlingEvent,
    DataSourceKind,
    HoldAction,
    HoldScope,
    IdentityVerification,
    LegalHold,
    PersonalInformationRequest,
    PersonalInformationRequestKind,
    RequestStatus,
    RetentionPurge,
    SafetyEvaluation,
    TrainingDataIntake,
    VerificationMethod,
)
from aigc_audit.producers.events.generation import (
    Channel,
    Generation,
    ImplicitLabel,
    Modality,
    SafetyVerdict,
)
from aigc_audit.producers.events.moderation import (
    Complaint,
    DetectionSource,
    ModerationAction,
    ModerationOutcome,
    ModerationTarget,
    Rectification,
)
from aigc_audit.producers.events.sanction import SanctionAction, UserSanction

EVENT_KINDS: dict[str, type[AuditEvent]] = {
    kind.EVENT_TYPE: kind
    for kind in (
        Generation,
        ModerationAction,
        Complaint,
        UserSanction,
        PersonalInformationRequest,
        TrainingDataIntake,
        AnnotationQualityCheck,
        SafetyEvaluation,
        IdentityVerification,
        RetentionPurge,
        AuthorityDisclosure,
        LegalHold,
        AgreementAcceptance,
    )
}
"""Every event kind by its ``head.event_type``."""

FAMILY_SCHEMAS: tuple[str, ...] = (
    "aigc.audit.Generation",
    "aigc.audit.ModerationAction",
    "aigc.audit.UserSanction",
    "aigc.audit.DataHandling",
)

__all__ = [
    "EVENT_KINDS",
    "FAMILY_SCHEMAS",
    "SCHEMA_VERSION",
    "AgreementAcceptance",
    "AnnotationQualityCheck",
    "AuditEvent",
    "AuthorityDisclosure",
    "AuthorityReport",
    "Channel",
    "Complaint",
    "DataHandlingEvent",
    "DataSourceKind",
    "DetectionSource",
    "Generation",
    "HoldAction",
    "HoldScope",
    "IdentityVerification",
    "ImplicitLabel",
    "LegalHold",
    "Modality",
    "ModerationAction",
    "ModerationOutcome",
    "ModerationTarget",
    "PersonalInformationRequest",
    "PersonalInformationRequestKind",
    "Rectification",
    "RequestStatus",
    "RetentionPurge",
    "SafetyEvaluation",
    "SafetyVerdict",
    "SanctionAction",
    "TrainingDataIntake",
    "UserSanction",
    "VerificationMethod",
    "utc_now",
    "uuid7",
]
