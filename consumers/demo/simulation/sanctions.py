"""User sanctions: the escalation ladder against a subject's repeated incidents (Art. 14 para 2).

Each step cites, as evidence, the ids that ``emit`` returned for the moderation actions gathered
since the previous step, so every sanction can be traced to actions already in the log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aigc_audit.consumers.demo.simulation.catalogue import ProviderProfile
from aigc_audit.consumers.demo.simulation.population import User
from aigc_audit.consumers.demo.simulation.runtime import Action, Runtime
from aigc_audit.producers.events import AuthorityReport, SanctionAction, UserSanction

LADDER = (
    SanctionAction.WARNING,
    SanctionAction.FUNCTION_RESTRICTION,
    SanctionAction.SUSPENSION,
    SanctionAction.TERMINATION,
)

SEVERE_RISKS = frozenset({"A.1.1", "A.1.2", "A.1.3", "A.1.4", "A.1.5"})
"""Risks for which a first incident is enough for a warning, whatever the count."""

AUTHORITY = "Beijing Municipal Cyberspace Administration"

_WARNING_ON_RECORD = timedelta(days=30)
_RESTRICTION = timedelta(days=14)


@dataclass(slots=True)
class _Record:
    """Where one subject stands on the ladder, and the evidence not yet acted on."""

    incidents: int = 0
    level: int = 0
    evidence: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    step_due: bool = False


class Sanctions:
    """Turns acted-on incidents into warnings, restrictions, suspensions and terminations."""

    def __init__(self, rt: Runtime, profile: ProviderProfile) -> None:
        self._rt = rt
        self._profile = profile
        self._records: dict[str, _Record] = {}

    def incident(
        self, service_id: str, user: User, risk: str, action_id: str, when: datetime
    ) -> None:
        """Count an acted-on moderation action (its emitted id) against ``user``."""
        if user.terminated:
            return
        record = self._records.setdefault(user.subject, _Record())
        record.incidents += 1
        record.evidence.append(action_id)
        record.reasons[risk] += 1
        if record.step_due or record.level >= len(LADDER):
            return
        threshold = self._rt.plan.sanction_thresholds[record.level]
        if record.incidents >= threshold or (record.level == 0 and risk in SEVERE_RISKS):
            # Trust-and-safety staff decide within minutes to hours of the triggering action.
            delay = self._rt.lognormal_seconds(2400, 1.0, low=120, high=12 * 3600)
            if self._rt.at(when + timedelta(seconds=delay), self._stepper(service_id, user)):
                record.step_due = True

    def _stepper(self, service_id: str, user: User) -> Action:
        return lambda when: self._step(service_id, user, when)

    def _step(self, service_id: str, user: User, when: datetime) -> None:
        rt, plan = self._rt, self._rt.plan
        record = self._records[user.subject]
        record.step_due = False
        if user.terminated or not record.evidence:
            return
        action = LADDER[record.level]
        record.level += 1
        reason = record.reasons.most_common(1)[0][0]
        evidence, record.evidence = record.evidence, []
        record.reasons.clear()

        until: datetime | None = None
        restricted: list[str] = []
        report = AuthorityReport()
        if action is SanctionAction.WARNING:
            until = when + _WARNING_ON_RECORD
        elif action is SanctionAction.FUNCTION_RESTRICTION:
            until = when + _RESTRICTION
            restricted = list(self._profile.service(service_id).restricted_functions)
        elif action is SanctionAction.SUSPENSION:
            until = when + timedelta(days=plan.suspension_days)
            user.suspended_until = until
        else:
            user.terminated = True
            if reason.startswith("A.1."):
                # Terminating an account for illegal content is reported with the decision.
                report = AuthorityReport(
                    reported=True,
                    authority=AUTHORITY,
                    reference=rt.serial(f"BJWX-{when.year}-S"),
                    reported_at=when,
                )

        sanction_id = rt.serial(f"SAN-{when.year}")
        rt.emit(
            service_id,
            UserSanction(
                event_id=rt.event_id(when),
                occurred_at=when,
                sanction_id=sanction_id,
                subject=user.subject,
                action=action,
                reason_category=reason,
                restricted_functions=tuple(restricted),
                evidence=tuple(evidence),
                effective_from=when,
                effective_until=until,
                records_preserved=True,
                authority_report=report,
            ),
        )
        if (
            action in (SanctionAction.FUNCTION_RESTRICTION, SanctionAction.SUSPENSION)
            and until is not None
            and rt.rng.random() < plan.reinstatement_share
        ):
            # An upheld appeal lifts the measure early; the original step stays on record.
            lifted = rt.between(when + timedelta(hours=20), until - timedelta(hours=12))
            rt.at(lifted, self._reinstater(service_id, user, sanction_id, reason))

    def _reinstater(self, service_id: str, user: User, sanction_id: str, reason: str) -> Action:
        return lambda when: self._reinstate(service_id, user, sanction_id, reason, when)

    def _reinstate(
        self, service_id: str, user: User, sanction_id: str, reason: str, when: datetime
    ) -> None:
        if user.terminated:
            return
        if user.suspended_until is not None and user.suspended_until > when:
            user.suspended_until = when
        rt = self._rt
        rt.emit(
            service_id,
            UserSanction(
                event_id=rt.event_id(when),
                occurred_at=when,
                sanction_id=sanction_id,
                subject=user.subject,
                action=SanctionAction.REINSTATEMENT,
                reason_category=reason,
                effective_from=when,
            ),
        )
