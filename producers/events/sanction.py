"""User sanctions: measures against a user's illegal activity (Art. 14 para 2)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import model_validator

from aigc_audit.producers.events.base import (
    AuditEvent,
    AuthorityReport,
    Identifier,
    RiskCode,
    UtcTime,
)


class SanctionAction(StrEnum):
    WARNING = "warning"
    FUNCTION_RESTRICTION = "function_restriction"
    SUSPENSION = "suspension"
    TERMINATION = "termination"
    REINSTATEMENT = "reinstatement"


class UserSanction(AuditEvent):
    """One step against a subject, with the moderation actions that justify it.

    A ``reinstatement`` with the same ``sanction_id`` lifts the sanction from its
    ``effective_from``.

    Example::

        UserSanction(sanction_id="s-1", subject=subject, action="suspension",
                     reason_category="A.1.6", evidence=[str(moderation_event_id)],
                     effective_from=t0, effective_until=t0 + timedelta(days=7),
                     records_preserved=True)
    """

    EVENT_TYPE: ClassVar[str] = "user_sanction"
    SCHEMA: ClassVar[str] = "aigc.audit.UserSanction"

    sanction_id: Identifier
    subject: Identifier
    action: SanctionAction
    reason_category: RiskCode
    # Tuples, not lists: an emitted event is encoded later, on the client's worker thread.
    restricted_functions: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    effective_from: UtcTime
    effective_until: UtcTime | None = None
    records_preserved: bool = True
    authority_report: AuthorityReport = AuthorityReport()

    @model_validator(mode="after")
    def _consistent(self) -> UserSanction:
        if self.effective_until is not None and self.effective_until <= self.effective_from:
            raise ValueError("effective_until is not after effective_from")
        if self.action is not SanctionAction.REINSTATEMENT and not self.evidence:
            raise ValueError("a sanction needs evidence: the moderation action ids behind it")
        return self
