"""Moderation cases (Art. 4, Art. 14 para 1): detection, action, report, rectification.

A case is one piece of content found to carry a TC260-003 risk. It is emitted again, under the
same ``case_id``, each time its state changes: escalated, acted on, reported to the authority,
its rectification ticket closed. Queries read the latest state of each case, so updates that fall
after the end of the period leave the case open, unreported or overdue at ``as_of``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aigc_audit.consumers.demo.simulation.catalogue import ModelVersion
from aigc_audit.consumers.demo.simulation.population import User
from aigc_audit.consumers.demo.simulation.runtime import Action, Runtime
from aigc_audit.consumers.demo.simulation.sanctions import AUTHORITY, Sanctions
from aigc_audit.producers.events import (
    AuthorityReport,
    DetectionSource,
    Generation,
    Modality,
    ModerationAction,
    ModerationOutcome,
    ModerationTarget,
    Rectification,
    SafetyVerdict,
)

# Realistic mixes per modality: obscenity and rumours dominate text and images, portraits and IP
# dominate images, IP and leaked secrets dominate code; the gravest A.1 risks stay rare.
_TEXT_RISKS = {
    "A.1.6": 14, "A.1.7": 16, "A.1.2": 2, "A.1.4": 1, "A.1.5": 1, "A.1.8": 2, "A.1.1": 0.5,
    "A.1.3": 0.5, "A.2.1": 3, "A.2.4": 3, "A.2.5": 5, "A.2.6": 1.5, "A.2.7": 2, "A.2.8": 1.5,
    "A.3.1": 4, "A.3.2": 1, "A.4.1": 4, "A.4.3": 6, "A.4.5": 4, "A.4.6": 5, "A.5.1": 2,
}  # fmt: skip
_VISUAL_RISKS = {
    "A.1.6": 35, "A.1.7": 5, "A.1.2": 2, "A.1.4": 1, "A.4.2": 14, "A.4.3": 4, "A.4.4": 2,
    "A.3.1": 7, "A.2.5": 3, "A.2.1": 1,
}  # fmt: skip
_AUDIO_RISKS = {"A.1.6": 10, "A.1.7": 10, "A.4.7": 10, "A.4.3": 5, "A.3.1": 8}
_CODE_RISKS = {"A.3.1": 15, "A.3.3": 8, "A.4.6": 12, "A.1.8": 4, "A.4.5": 5}

_RISK_MIX: dict[Modality, Mapping[str, float]] = {
    Modality.TEXT: _TEXT_RISKS,
    Modality.IMAGE: _VISUAL_RISKS,
    Modality.VIDEO: _VISUAL_RISKS,
    Modality.AUDIO: _AUDIO_RISKS,
    Modality.CODE: _CODE_RISKS,
}

# How a filter-flagged generation ends: refused at the input, blocked at the output, cut off
# mid-stream, or delivered and escalated to a human reviewer.
_PATHS = ("refuse", "block", "stop", "review")

_REVIEW_OUTCOMES: tuple[tuple[ModerationOutcome, float], ...] = (
    (ModerationOutcome.DELETE, 0.5),
    (ModerationOutcome.LABEL, 0.25),
    (ModerationOutcome.STOP_TRANSMISSION, 0.1),
    (ModerationOutcome.NO_ACTION, 0.15),
)

INPUT_FILTER = "input-filter-v7"
OUTPUT_FILTER = "output-filter-v5"


@dataclass(slots=True, frozen=True)
class Triage:
    """What the filters decided about a generation before it is recorded."""

    path: str
    verdict: SafetyVerdict
    risk: str


@dataclass(slots=True, eq=False)
class Ticket:
    """A rectification ticket: optimisation training of one model version, possibly many cases."""

    ticket_id: str
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None = None
    cases: list[Case] = field(default_factory=list)

    def record(self) -> Rectification:
        return Rectification(
            ticket_id=self.ticket_id,
            opened_at=self.opened_at,
            due_at=self.due_at,
            closed_at=self.closed_at,
        )


@dataclass(slots=True, eq=False)
class Case:
    """The current state of one moderation case; each change is emitted as a new event."""

    service_id: str
    user: User | None
    model: tuple[str, str]
    fields: dict[str, Any]
    ticket: Ticket | None = None
    report: AuthorityReport = field(default_factory=AuthorityReport)


class Moderation:
    """Opens cases for flagged content and plays out what happens to them."""

    def __init__(self, rt: Runtime, sanctions: Sanctions) -> None:
        self._rt = rt
        self._sanctions = sanctions
        self._open_tickets: dict[tuple[str, str], Ticket] = {}
        self._risks = {
            modality: (tuple(mix), list(itertools.accumulate(mix.values())))
            for modality, mix in _RISK_MIX.items()
        }
        plan = rt.plan
        blocked = plan.blocked_share
        review = (1.0 - blocked) * plan.review_share
        self._path_weights = list(
            itertools.accumulate((blocked * 0.55, blocked * 0.45, 1.0 - blocked - review, review))
        )

    # -- entry points ------------------------------------------------------------------------

    def risk(self, modality: Modality) -> str:
        codes, cumulative = self._risks[modality]
        return self._rt.rng.choices(codes, cum_weights=cumulative)[0]

    def triage(self, modality: Modality) -> Triage:
        """How the filters handle a generation that they flag."""
        (path,) = self._rt.rng.choices(_PATHS, cum_weights=self._path_weights)
        verdict = {
            "refuse": SafetyVerdict.REFUSED,
            "block": SafetyVerdict.BLOCKED,
        }.get(path, SafetyVerdict.FLAGGED)
        return Triage(path=path, verdict=verdict, risk=self.risk(modality))

    def open_case(self, triage: Triage, service_id: str, user: User, gen: Generation) -> None:
        """Schedule the moderation events that follow a flagged generation."""
        rt, rng = self._rt, self._rt.rng
        t0 = gen.occurred_at
        latency = gen.latency_ms / 1000
        fields: dict[str, Any] = {
            "case_id": rt.serial(f"MOD-{t0.year}", 6),
            "target": ModerationTarget.GENERATION,
            "target_ref": gen.request_id,
            "subject": user.subject,
            "model_name": gen.model_name,
            "model_version": gen.model_version,
            "detection_source": DetectionSource.OUTPUT_FILTER,
            "risk_category": triage.risk,
            "reviewer": OUTPUT_FILTER,
        }
        case = Case(service_id, user, (gen.model_name, gen.model_version), fields)
        if triage.path == "review":
            detected = rt.after(t0, seconds=latency + rng.uniform(0.1, 2.0))
            fields.update(action=ModerationOutcome.ESCALATE, detected_at=detected, acted_at=None)
            rt.at(detected, self._escalater(case))
            return
        if triage.path == "refuse":
            detected = rt.after(t0, seconds=rng.uniform(0.02, 0.3))
            acted = rt.after(detected, seconds=rng.uniform(0.01, 0.5))
            fields.update(
                target=ModerationTarget.USER_INPUT,
                detection_source=DetectionSource.INPUT_FILTER,
                action=ModerationOutcome.BLOCK_GENERATION,
                reviewer=INPUT_FILTER,
            )
        elif triage.path == "block":
            detected = rt.after(t0, seconds=latency)
            acted = rt.after(detected, seconds=rng.uniform(0.05, 1.0))
            fields["action"] = ModerationOutcome.BLOCK_GENERATION
        else:
            # Streaming output: the filter catches it part-way, after some of it was shown.
            detected = rt.after(t0, seconds=latency * rng.uniform(0.2, 0.9))
            acted = rt.after(detected, seconds=rng.uniform(0.5, 20.0))
            fields["action"] = ModerationOutcome.STOP_TRANSMISSION
        fields.update(detected_at=detected, acted_at=acted)
        rt.at(acted, self._acter(case))

    def patrol(self, service_id: str, user: User, gen: Generation, modality: Modality) -> None:
        """A human patrol finds delivered content the filters passed, hours or days later."""
        rt = self._rt
        delay = rt.lognormal_seconds(6 * 3600, 1.0, low=1800, high=5 * 86400)
        detected = rt.after(gen.occurred_at, seconds=delay)
        acted = rt.after(detected, seconds=rt.lognormal_seconds(900, 1.0, low=60, high=4 * 3600))
        fields: dict[str, Any] = {
            "case_id": rt.serial(f"MOD-{detected.year}", 6),
            "target": ModerationTarget.GENERATION,
            "target_ref": gen.request_id,
            "subject": user.subject,
            "model_name": gen.model_name,
            "model_version": gen.model_version,
            "detection_source": DetectionSource.MANUAL_REVIEW,
            "risk_category": self.risk(modality),
            "action": ModerationOutcome.DELETE,
            "detected_at": detected,
            "acted_at": acted,
            "reviewer": f"patrol-{rt.rng.randint(1, 12):02d}",
        }
        case = Case(service_id, user, (gen.model_name, gen.model_version), fields)
        rt.at(acted, self._acter(case))

    def backlog(self, service_id: str, user: User, model: ModelVersion, *, oldest: bool) -> None:
        """An illegal-content case from before the period, with its rectification ticket.

        Tickets run for months (Draft 15: three), longer than a simulated period; cases carried
        over from earlier quarters are what make rectifications overdue at ``as_of``.
        """
        rt, rng, plan = self._rt, self._rt.rng, self._rt.plan
        if oldest or rng.random() < 0.5:
            detected = rt.start - timedelta(days=rng.uniform(100, plan.backlog_days))
        else:
            # Due inside the period: overdue at as_of unless closed in time.
            detected = rt.start - timedelta(days=rng.uniform(62, 88))
        source = rng.choice((DetectionSource.AUTHORITY_NOTICE, DetectionSource.MANUAL_REVIEW))
        acted = rt.after(detected, seconds=rt.lognormal_seconds(3600, 0.8, low=600, high=86400))
        fields: dict[str, Any] = {
            "case_id": rt.serial(f"MOD-{detected.year}", 6),
            "target": ModerationTarget.PUBLISHED_CONTENT,
            "target_ref": f"share-{rng.getrandbits(48):012x}",
            "subject": user.subject,
            "model_name": model.name,
            "model_version": model.version,
            "detection_source": source,
            "risk_category": rng.choice(("A.1.6", "A.1.7", "A.1.7", "A.1.8")),
            "action": ModerationOutcome.DELETE,
            "detected_at": detected,
            "acted_at": acted,
            "reviewer": f"patrol-{rng.randint(1, 12):02d}",
        }
        case = Case(service_id, user, (model.name, model.version), fields)
        ticket = self._ticket_for(case, acted, force_new=True, may_close=not oldest)
        case.ticket = ticket
        ticket.cases.append(case)
        rt.at(acted, self._acter(case, ticket_decided=True))

    # -- what happens to a case --------------------------------------------------------------

    def _escalater(self, case: Case) -> Action:
        return lambda when: self._escalate(case, when)

    def _escalate(self, case: Case, when: datetime) -> None:
        rt = self._rt
        self._emit(case, when)
        wait = rt.lognormal_seconds(3 * 3600, 1.0, low=600, high=4 * 86400)
        rt.at(rt.after(when, seconds=wait), self._decider(case))

    def _decider(self, case: Case) -> Action:
        return lambda when: self._decide(case, when)

    def _decide(self, case: Case, when: datetime) -> None:
        rng = self._rt.rng
        outcomes, weights = zip(*_REVIEW_OUTCOMES, strict=True)
        (outcome,) = rng.choices(outcomes, weights=weights)
        case.fields.update(
            action=outcome, acted_at=when, reviewer=f"reviewer-{rng.randint(1, 40):03d}"
        )
        if outcome is ModerationOutcome.NO_ACTION:
            # A reviewer who finds nothing wrong clears the filter's risk code.
            case.fields["risk_category"] = None
        self._act(case, when, ticket_decided=False)

    def _acter(self, case: Case, *, ticket_decided: bool = False) -> Action:
        return lambda when: self._act(case, when, ticket_decided=ticket_decided)

    def _act(self, case: Case, when: datetime, *, ticket_decided: bool) -> None:
        rt, rng, plan = self._rt, self._rt.rng, self._rt.plan
        risk: str | None = case.fields["risk_category"]
        acted = case.fields["action"] is not ModerationOutcome.NO_ACTION
        illegal = acted and risk is not None and risk.startswith("A.1.")
        if illegal and not ticket_decided and rng.random() < plan.rectification_share:
            ticket = self._ticket_for(case, when, force_new=False, may_close=True)
            case.ticket = ticket
            ticket.cases.append(case)
        action_id = self._emit(case, when)
        if not acted or risk is None:
            return
        if case.user is not None:
            self._sanctions.incident(case.service_id, case.user, risk, str(action_id), when)
        if illegal and rng.random() < plan.a1_report_share:
            delay = rt.lognormal_seconds(3 * 3600, 1.2, low=900, high=4 * 86400)
            rt.at(rt.after(when, seconds=delay), self._reporter(case))

    def _reporter(self, case: Case) -> Action:
        return lambda when: self._report(case, when)

    def _report(self, case: Case, when: datetime) -> None:
        rt = self._rt
        case.report = AuthorityReport(
            reported=True,
            authority=AUTHORITY,
            reference=rt.serial(f"BJWX-{when.year}"),
            reported_at=when,
        )
        self._emit(case, when)

    def _ticket_for(
        self, case: Case, when: datetime, *, force_new: bool, may_close: bool
    ) -> Ticket:
        """The model version's open ticket, or a new one (due after ``rectification_days``)."""
        rt, plan = self._rt, self._rt.plan
        ticket = None if force_new else self._open_tickets.get(case.model)
        if ticket is not None:
            return ticket
        ticket = Ticket(
            ticket_id=rt.serial(f"RECT-{when.year}", 4),
            opened_at=when,
            due_at=when + timedelta(days=plan.rectification_days),
        )
        self._open_tickets[case.model] = ticket
        if may_close and rt.rng.random() < plan.rectification_close_share:
            took = rt.lognormal_seconds(30 * 86400, 0.5, low=7 * 86400, high=130 * 86400)
            rt.at(rt.after(when, seconds=took), self._closer(case.model, ticket))
        return ticket

    def _closer(self, model: tuple[str, str], ticket: Ticket) -> Action:
        return lambda when: self._close(model, ticket, when)

    def _close(self, model: tuple[str, str], ticket: Ticket, when: datetime) -> None:
        ticket.closed_at = when
        if self._open_tickets.get(model) is ticket:
            del self._open_tickets[model]
        # Every case on the ticket gets its new state, so no case shows a stale open ticket.
        for case in ticket.cases:
            self._emit(case, when)

    def _emit(self, case: Case, when: datetime) -> uuid.UUID:
        rt = self._rt
        return rt.emit(
            case.service_id,
            ModerationAction(
                event_id=rt.event_id(when),
                occurred_at=when,
                rectification=case.ticket.record() if case.ticket is not None else None,
                authority_report=case.report,
                **case.fields,
            ),
        )
