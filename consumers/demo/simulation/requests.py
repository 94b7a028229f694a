"""Requests from people: complaints (Art. 15) and personal-information requests (Art. 11).

Both have a deadline. Most are answered in time; a share is answered late; a share is still open
at ``as_of``. The first request received early enough to be overdue at ``as_of`` is always left
open, so even a small plan has an overdue complaint and an overdue request to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aigc_audit.consumers.demo.simulation.population import Population, User
from aigc_audit.consumers.demo.simulation.runtime import Action, Runtime
from aigc_audit.producers.events import (
    Complaint,
    Generation,
    ModerationOutcome,
    ModerationTarget,
    PersonalInformationRequest,
    PersonalInformationRequestKind,
    RequestStatus,
)

_CHANNELS = ("in_app", "hotline", "email", "web_form")
_CHANNEL_WEIGHTS = (55, 10, 15, 20)

_NO_RISK = None
_Grounds = tuple[tuple[str | None, ModerationOutcome, int], ...]
# (risk code found on handling, action taken, weight): about one's own generation...
_OWN: _Grounds = (
    ("A.5.1", ModerationOutcome.LABEL, 30),  # an inaccurate answer gets a correction notice
    (_NO_RISK, ModerationOutcome.NO_ACTION, 30),  # a refusal the user thought wrong
    ("A.4.6", ModerationOutcome.DELETE, 10),
    ("A.2.5", ModerationOutcome.LABEL, 8),
    ("A.1.7", ModerationOutcome.DELETE, 6),
)
# ... and a third party's complaint about content someone published.
_THIRD_PARTY: _Grounds = (
    ("A.4.2", ModerationOutcome.DELETE, 25),
    ("A.4.3", ModerationOutcome.DELETE, 25),
    ("A.3.1", ModerationOutcome.DELETE, 20),
    ("A.1.7", ModerationOutcome.DELETE, 10),
    (_NO_RISK, ModerationOutcome.NO_ACTION, 20),
)

_PI_KINDS = tuple(PersonalInformationRequestKind)
_PI_WEIGHTS = (30, 15, 15, 5, 35)  # access, copy, correct, supplement, delete
_PI_OUTCOMES = {
    PersonalInformationRequestKind.ACCESS: "summary of personal information shown in the app",
    PersonalInformationRequestKind.COPY: "data export delivered through a one-time download link",
    PersonalInformationRequestKind.CORRECT: "profile fields corrected",
    PersonalInformationRequestKind.SUPPLEMENT: "profile information supplemented",
    PersonalInformationRequestKind.DELETE: "account data deleted; subject data key destroyed",
}
_PI_REFUSALS = (
    "requester's identity could not be confirmed",
    "records under a statutory retention duty (Cybersecurity Law art. 21)",
)


@dataclass(slots=True, eq=False)
class _Open:
    """A request in flight: its service, fields so far, and the subject behind it."""

    service_id: str
    user: User
    fields: dict[str, Any]


class Requests:
    """Receives complaints and personal-information requests and plays out their handling."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        # One of each is always left open past its deadline (see the module docstring).
        self._owe_open_complaint = True
        self._owe_open_request = True
        self._early_complaint = False

    # -- complaints --------------------------------------------------------------------------

    @property
    def wants_early_complaint(self) -> bool:
        """True until a complaint is on the clock early enough to be overdue at ``as_of``."""
        return not self._early_complaint

    def complaint_about(
        self, service_id: str, user: User, gen: Generation, population: Population
    ) -> None:
        """Schedule a complaint about ``gen``, by its requester or by a third party."""
        rt, rng = self._rt, self._rt.rng
        delay = rt.lognormal_seconds(2 * 3600, 1.5, low=120, high=10 * 86400)
        received = rt.after(gen.occurred_at, seconds=delay)
        cutoff = rt.as_of - timedelta(days=rt.plan.complaint_due_days + 2)
        self._early_complaint = self._early_complaint or received < cutoff
        if rng.random() < 0.7:
            complainant, grounds = user, _OWN
            target, target_ref = ModerationTarget.GENERATION, gen.request_id
        else:
            other = population.draw(rt, received)
            complainant, grounds = other or user, _THIRD_PARTY
            target = ModerationTarget.PUBLISHED_CONTENT
            target_ref = f"share-{rng.getrandbits(48):012x}"
        risks, outcomes, weights = zip(*grounds, strict=True)
        (index,) = rng.choices(range(len(risks)), weights=weights)
        fields: dict[str, Any] = {
            "channel": rng.choices(_CHANNELS, weights=_CHANNEL_WEIGHTS)[0],
            "target": target,
            "target_ref": target_ref,
            "subject": complainant.subject,
            "model_name": gen.model_name,
            "model_version": gen.model_version,
        }
        pending = _Open(service_id, complainant, fields)
        rt.at(received, self._complaint_receiver(pending, risks[index], outcomes[index]))

    def _complaint_receiver(
        self, pending: _Open, risk: str | None, outcome: ModerationOutcome
    ) -> Action:
        return lambda when: self._receive_complaint(pending, risk, outcome, when)

    def _receive_complaint(
        self, pending: _Open, risk: str | None, outcome: ModerationOutcome, when: datetime
    ) -> None:
        rt, rng, plan = self._rt, self._rt.rng, self._rt.plan
        complaint_id = rt.serial(f"CMP-{when.year}")
        due = when + timedelta(days=plan.complaint_due_days)
        pending.fields.update(
            case_id=complaint_id, complaint_id=complaint_id, received_at=when, due_by=due
        )
        self._emit_complaint(pending, when)

        if self._owe_open_complaint and due < rt.as_of - timedelta(days=1):
            self._owe_open_complaint = False
            fate = "open"
        else:
            fate = self._roll(plan.complaint_late_share, plan.complaint_open_share)
        due_days = plan.complaint_due_days
        if fate == "on_time":
            handled = rt.after(when, seconds=rng.uniform(0.05, 0.6) * due_days * 86400)
            feedback = rt.between(handled, min(due, handled + timedelta(days=2)))
        elif fate == "late":
            handled = rt.after(due, seconds=-rng.uniform(0.0, 3.0) * 86400)
            feedback = rt.after(due, seconds=rng.uniform(0.5, 10.0) * 86400)
        else:
            # Open: some are handled without the complainant ever hearing back.
            if rng.random() < 0.5:
                handled = rt.after(when, seconds=rng.uniform(1.0, 6.0) * 86400)
                rt.at(handled, self._complaint_handler(pending, risk, outcome, None))
            return
        if feedback - handled < timedelta(hours=1):
            # Answered on the spot: handling and feedback are one step.
            rt.at(handled, self._complaint_handler(pending, risk, outcome, handled))
        else:
            rt.at(handled, self._complaint_handler(pending, risk, outcome, None))
            rt.at(feedback, self._complaint_feedbacker(pending, feedback))

    def _complaint_handler(
        self,
        pending: _Open,
        risk: str | None,
        outcome: ModerationOutcome,
        feedback: datetime | None,
    ) -> Action:
        def handle(when: datetime) -> None:
            pending.fields.update(
                handled_at=when,
                risk_category=risk,
                action=outcome,
                reviewer=f"complaints-{self._rt.rng.randint(1, 15):02d}",
            )
            if feedback is not None:
                pending.fields["feedback_at"] = feedback
            self._emit_complaint(pending, when)

        return handle

    def _complaint_feedbacker(self, pending: _Open, feedback: datetime) -> Action:
        def give_feedback(when: datetime) -> None:
            pending.fields["feedback_at"] = feedback
            self._emit_complaint(pending, when)

        return give_feedback

    def _emit_complaint(self, pending: _Open, when: datetime) -> None:
        rt = self._rt
        event = Complaint(event_id=rt.event_id(when), occurred_at=when, **pending.fields)
        rt.emit(pending.service_id, event)

    # -- personal-information requests ------------------------------------------------------

    def schedule_personal_information_requests(self, population: Population) -> None:
        """Each user files a request during the period with probability ``pi_request_rate``."""
        rt, rng = self._rt, self._rt.rng
        # Received by this time, a request can be overdue at as_of (see the module docstring).
        early = rt.as_of - timedelta(days=rt.plan.pi_due_days + 2)
        any_early = False
        for user in population.users:
            if rng.random() < rt.plan.pi_request_rate:
                received = rt.between(rt.start, rt.as_of)
                any_early = any_early or received < early
                (kind,) = rng.choices(_PI_KINDS, weights=_PI_WEIGHTS)
                rt.at(received, self._request_receiver(user, kind))
        if not any_early and early > rt.start:
            user = rng.choice(population.users)
            (kind,) = rng.choices(_PI_KINDS, weights=_PI_WEIGHTS)
            rt.at(rt.between(rt.start, early), self._request_receiver(user, kind))

    def _request_receiver(self, user: User, kind: PersonalInformationRequestKind) -> Action:
        return lambda when: self._receive_request(user, kind, when)

    def _receive_request(
        self, user: User, kind: PersonalInformationRequestKind, when: datetime
    ) -> None:
        rt, rng, plan = self._rt, self._rt.rng, self._rt.plan
        due = when + timedelta(days=plan.pi_due_days)
        pending = _Open(
            user.home.service_id,
            user,
            {
                "subject": user.subject,
                "request_id": rt.serial(f"PIR-{when.year}"),
                "request_kind": kind,
                "received_at": when,
                "due_at": due,
                "status": RequestStatus.RECEIVED,
            },
        )
        self._emit_request(pending, when)

        if self._owe_open_request and due < rt.as_of - timedelta(days=1):
            self._owe_open_request = False
            fate = "open"
        else:
            fate = self._roll(plan.pi_late_share, plan.pi_open_share)
        started = rt.after(when, seconds=rt.lognormal_seconds(86400, 0.8, low=3600, high=5 * 86400))
        rt.at(started, self._request_updater(pending, RequestStatus.IN_PROGRESS))
        if fate == "open":
            return
        if fate == "on_time":
            closed = rt.between(started + timedelta(hours=2), due - timedelta(hours=6))
        else:
            closed = rt.after(due, seconds=rng.uniform(0.5, 8.0) * 86400)
        refused = rng.random() < plan.pi_refused_share
        rt.at(
            closed,
            self._request_updater(
                pending, RequestStatus.REFUSED if refused else RequestStatus.COMPLETED
            ),
        )

    def _request_updater(self, pending: _Open, status: RequestStatus) -> Action:
        def update(when: datetime) -> None:
            fields = pending.fields
            fields["status"] = status
            if status is RequestStatus.COMPLETED:
                fields.update(completed_at=when, outcome=_PI_OUTCOMES[fields["request_kind"]])
                if fields["request_kind"] is PersonalInformationRequestKind.DELETE:
                    pending.user.deleted = True  # the account is gone: no more requests from it
            elif status is RequestStatus.REFUSED:
                fields.update(completed_at=when, outcome=self._rt.rng.choice(_PI_REFUSALS))
            self._emit_request(pending, when)

        return update

    def _emit_request(self, pending: _Open, when: datetime) -> None:
        rt = self._rt
        event = PersonalInformationRequest(
            event_id=rt.event_id(when), occurred_at=when, **pending.fields
        )
        rt.emit(pending.service_id, event)

    def _roll(self, late: float, open_: float) -> str:
        roll = self._rt.rng.random()
        if roll < open_:
            return "open"
        return "late" if roll < open_ + late else "on_time"
