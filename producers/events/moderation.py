"""Moderation actions on content (Art. 4, 14 para 1) and complaints from the public (Art. 15).

Both are written as ``aigc.audit.ModerationAction``: a complaint is a moderation case opened by a
member of the public. A case evolves by appending events with the same ``case_id`` (acted on,
reported, rectified); queries read the latest state of each case.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, model_validator

from aigc_audit.producers.events.base import (
    MODEL_CONFIG,
    Attr,
    AuditEvent,
    AuthorityReport,
    Const,
    Identifier,
    Nested,
    RecordLayout,
    RiskCode,
    UtcTime,
)


class ModerationTarget(StrEnum):
    GENERATION = "generation"
    USER_INPUT = "user_input"
    PUBLISHED_CONTENT = "published_content"


class DetectionSource(StrEnum):
    INPUT_FILTER = "input_filter"
    OUTPUT_FILTER = "output_filter"
    USER_REPORT = "user_report"
    MANUAL_REVIEW = "manual_review"
    AUTHORITY_NOTICE = "authority_notice"


class ModerationOutcome(StrEnum):
    BLOCK_GENERATION = "block_generation"
    STOP_TRANSMISSION = "stop_transmission"
    DELETE = "delete"
    LABEL = "label"
    ESCALATE = "escalate"
    NO_ACTION = "no_action"


class Rectification(BaseModel):
    """A ticket to rectify the model by optimisation training (Art. 14 para 1)."""

    model_config = MODEL_CONFIG

    ticket_id: Identifier
    opened_at: UtcTime
    due_at: UtcTime
    closed_at: UtcTime | None = None


class ModerationAction(AuditEvent):
    """A moderation decision about one piece of content.

    Example::

        ModerationAction(case_id="case-9", target="generation", target_ref="req-1",
                         subject=subject, model_name="qwen-chat", model_version="2.1",
                         detection_source="output_filter", risk_category="A.1.6",
                         action="block_generation", detected_at=t0, acted_at=t0,
                         reviewer="output-filter-v3")
    """

    EVENT_TYPE: ClassVar[str] = "moderation_action"
    SCHEMA: ClassVar[str] = "aigc.audit.ModerationAction"

    case_id: Identifier
    target: ModerationTarget
    target_ref: Identifier
    subject: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    detection_source: DetectionSource
    risk_category: RiskCode | None = None
    action: ModerationOutcome
    detected_at: UtcTime
    acted_at: UtcTime | None = None
    reviewer: str | None = None
    rectification: Rectification | None = None
    authority_report: AuthorityReport = AuthorityReport()
    sealed_evidence: bytes | None = None

    @model_validator(mode="after")
    def _acted_after_detected(self) -> ModerationAction:
        if self.acted_at is not None and self.acted_at < self.detected_at:
            raise ValueError("acted_at is before detected_at")
        if self.action is not ModerationOutcome.NO_ACTION and self.risk_category is None:
            raise ValueError(f"action {self.action.value} needs a risk_category")
        return self

    def body(self) -> dict[str, Any]:
        return {**super().body(), "complaint": None}

    @classmethod
    def record_layout(cls) -> RecordLayout:
        return {**super().record_layout(), "complaint": Const(None)}


class Complaint(AuditEvent):
    """A complaint or report from the public, and its handling (Art. 15).

    Emit it when received, and again (same ``complaint_id`` and ``case_id``) when handled and
    when feedback is given.

    Example::

        Complaint(case_id="cmp-7", complaint_id="cmp-7", subject=subject, channel="in_app",
                  target="generation", target_ref="req-1", received_at=t0, due_by=t0 + 15 days)
    """

    EVENT_TYPE: ClassVar[str] = "complaint"
    SCHEMA: ClassVar[str] = "aigc.audit.ModerationAction"

    case_id: Identifier
    complaint_id: Identifier
    channel: Identifier
    target: ModerationTarget = ModerationTarget.PUBLISHED_CONTENT
    target_ref: Identifier
    subject: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    risk_category: RiskCode | None = None
    action: ModerationOutcome = ModerationOutcome.NO_ACTION
    received_at: UtcTime
    due_by: UtcTime
    handled_at: UtcTime | None = None
    feedback_at: UtcTime | None = None
    reviewer: str | None = None
    authority_report: AuthorityReport = AuthorityReport()

    @model_validator(mode="after")
    def _order(self) -> Complaint:
        if self.due_by < self.received_at:
            raise ValueError("due_by is before received_at")
        return self

    def body(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "target": self.target,
            "target_ref": self.target_ref,
            "subject": self.subject,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "detection_source": DetectionSource.USER_REPORT,
            "risk_category": self.risk_category,
            "action": self.action,
            "detected_at": self.received_at,
            "acted_at": self.handled_at,
            "reviewer": self.reviewer,
            "rectification": None,
            "authority_report": self.authority_report.model_dump(),
            "complaint": {
                "complaint_id": self.complaint_id,
                "channel": self.channel,
                "received_at": self.received_at,
                "due_by": self.due_by,
                "handled_at": self.handled_at,
                "feedback_at": self.feedback_at,
            },
            "sealed_evidence": None,
        }

    @classmethod
    def record_layout(cls) -> RecordLayout:
        return {
            "head": Nested(cls.head_layout()),
            "case_id": Attr("case_id"),
            "target": Attr("target"),
            "target_ref": Attr("target_ref"),
            "subject": Attr("subject"),
            "model_name": Attr("model_name"),
            "model_version": Attr("model_version"),
            "detection_source": Const(DetectionSource.USER_REPORT),
            "risk_category": Attr("risk_category"),
            "action": Attr("action"),
            "detected_at": Attr("received_at"),
            "acted_at": Attr("handled_at"),
            "reviewer": Attr("reviewer"),
            "rectification": Const(None),
            "authority_report": Attr("authority_report"),
            "complaint": Nested(
                {
                    "complaint_id": Attr("complaint_id"),
                    "channel": Attr("channel"),
                    "received_at": Attr("received_at"),
                    "due_by": Attr("due_by"),
                    "handled_at": Attr("handled_at"),
                    "feedback_at": Attr("feedback_at"),
                }
            ),
            "sealed_evidence": Const(None),
        }
