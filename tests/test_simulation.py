"""The simulated provider: deterministic, counted exactly, and rich enough for every query."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest

from aigc_audit.consumers.demo.simulation import (
    FAMILIES,
    PROVIDER,
    SimulationPlan,
    SimulationSummary,
    collect,
    simulate,
)
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.events import (
    AgreementAcceptance,
    AuditEvent,
    Complaint,
    Generation,
    ModerationAction,
    PersonalInformationRequest,
    SafetyEvaluation,
    SafetyVerdict,
    TrainingDataIntake,
    UserSanction,
)

Emitted = list[tuple[str, AuditEvent]]


@pytest.fixture(scope="module")
def plan() -> SimulationPlan:
    return SimulationPlan.small(seed=11)


@pytest.fixture(scope="module")
def run(plan: SimulationPlan) -> tuple[Emitted, SimulationSummary]:
    return collect(plan)


@pytest.fixture(scope="module")
def events(run: tuple[Emitted, SimulationSummary]) -> Emitted:
    return run[0]


def _of(events: Emitted, kind: type[AuditEvent]) -> list:
    return [e for _, e in events if type(e) is kind]


def _latest(items: list, key: str) -> dict:
    """Latest state per key, as the queries read it: the last event by time."""
    latest: dict = {}
    for item in sorted(items, key=lambda e: e.occurred_at):
        latest[getattr(item, key)] = item
    return latest


def _dumps(events: Emitted) -> list[tuple[str, dict]]:
    return [(service_id, event.model_dump()) for service_id, event in events]


def test_same_seed_gives_identical_events(plan: SimulationPlan, events: Emitted) -> None:
    again, _ = collect(SimulationPlan.small(seed=plan.seed))
    assert _dumps(again) == _dumps(events)


def test_different_seeds_differ(events: Emitted) -> None:
    other, _ = collect(SimulationPlan.small(seed=12))
    assert _dumps(other) != _dumps(events)
    assert {e.event_id for _, e in other}.isdisjoint({e.event_id for _, e in events})


def test_summary_counts_what_was_emitted(
    plan: SimulationPlan, run: tuple[Emitted, SimulationSummary]
) -> None:
    events, summary = run
    by_type = Counter(event.EVENT_TYPE for _, event in events)
    by_family = Counter(FAMILIES[event.SCHEMA] for _, event in events)
    assert summary.counts == dict(by_type)
    assert {k: v for k, v in summary.families.items() if v} == dict(by_family)
    assert summary.total == len(events)
    assert summary.counts["generation"] == plan.generations
    assert summary.users == plan.users
    assert summary.services == len(PROVIDER.services)
    assert set(summary.emitting_services) == {service_id for service_id, _ in events}


def test_events_are_in_time_order_within_the_period(plan: SimulationPlan, events: Emitted) -> None:
    times = [event.occurred_at for _, event in events]
    assert times == sorted(times)
    assert times[-1] <= plan.as_of
    ids = [event.event_id for _, event in events]
    assert len(set(ids)) == len(ids)
    for event_id, at in zip(ids, times, strict=True):
        assert event_id.version == 7
        assert event_id.int >> 80 == int(at.timestamp() * 1000)


def test_exactly_one_model_lacks_a_filing_number_and_it_serves_requests(
    run: tuple[Emitted, SimulationSummary],
) -> None:
    events, summary = run
    (unfiled,) = PROVIDER.unfiled_models
    generations = _of(events, Generation)
    without = [g for g in generations if g.filing_number is None]
    assert without
    assert {(g.model_name, g.model_version) for g in without} == {(unfiled.name, unfiled.version)}
    assert summary.unfiled_models == [unfiled.label]
    assert summary.unfiled_generations == len(without)
    # The beta also fails its safety evaluation, which is why it was never filed.
    evaluation = next(e for e in _of(events, SafetyEvaluation) if e.model_name == unfiled.name)
    assert evaluation.qualified_rate < 0.9


def test_flagged_generations_have_moderation_actions(events: Emitted) -> None:
    generations = {g.request_id: g for g in _of(events, Generation)}
    actions = _of(events, ModerationAction)
    flagged = [g for g in generations.values() if g.safety_verdict is not SafetyVerdict.PASSED]
    assert flagged
    targets = {a.target_ref for a in actions}
    assert all(g.request_id in targets for g in flagged)
    for action in actions:
        if action.target_ref.startswith("req-"):
            source = generations[action.target_ref]
            assert (action.model_name, action.model_version) == (
                source.model_name,
                source.model_version,
            )
            assert action.detected_at >= source.occurred_at


def test_illegal_content_is_reported_in_a_later_update(events: Emitted) -> None:
    cases: dict[str, list[ModerationAction]] = {}
    for action in _of(events, ModerationAction):
        cases.setdefault(action.case_id, []).append(action)
    reported_later = [
        history
        for history in cases.values()
        if not history[0].authority_report.reported and history[-1].authority_report.reported
    ]
    assert reported_later
    for history in reported_later:
        report = history[-1].authority_report
        assert history[-1].risk_category is not None
        assert history[-1].risk_category.startswith("A.1.")
        assert report.reference and report.reported_at is not None
        assert report.reported_at >= history[0].detected_at


def test_sanction_evidence_cites_earlier_moderation_actions(events: Emitted) -> None:
    seen_actions: set[str] = set()
    sanctions = 0
    for _, event in events:
        if isinstance(event, ModerationAction):
            seen_actions.add(str(event.event_id))
        elif isinstance(event, UserSanction):
            sanctions += 1
            assert set(event.evidence) <= seen_actions
    assert sanctions


def test_sanction_evidence_uses_the_ids_emit_returns(plan: SimulationPlan) -> None:
    """Evidence is what ``emit`` returned, not what the simulation assumed the id to be."""
    returned: dict[str, AuditEvent] = {}

    def emit(service_id: str, event: AuditEvent) -> uuid.UUID:
        receipt = uuid.uuid5(uuid.NAMESPACE_URL, str(event.event_id))
        returned[str(receipt)] = event
        return receipt

    simulate(plan, emit)
    evidence = [
        item
        for event in returned.values()
        if isinstance(event, UserSanction)
        for item in event.evidence
    ]
    assert evidence
    assert all(isinstance(returned[item], ModerationAction) for item in evidence)


def test_findings_are_overdue_at_as_of(plan: SimulationPlan, events: Emitted) -> None:
    as_of = plan.as_of
    complaints = _latest(_of(events, Complaint), "complaint_id").values()
    assert any(c.feedback_at is None and c.due_by < as_of for c in complaints)
    assert all(
        c.due_by == c.received_at + timedelta(days=plan.complaint_due_days) for c in complaints
    )

    requests = _latest(_of(events, PersonalInformationRequest), "request_id").values()
    assert any(r.completed_at is None and r.due_at < as_of for r in requests)
    assert {r.request_kind.value for r in requests} >= {"access", "delete"}

    tickets: dict[str, datetime | None] = {}
    due: dict[str, datetime] = {}
    for action in sorted(_of(events, ModerationAction), key=lambda a: a.occurred_at):
        if action.rectification is not None:
            ticket = action.rectification
            tickets[ticket.ticket_id] = ticket.closed_at
            due[ticket.ticket_id] = ticket.due_at
            assert ticket.due_at - ticket.opened_at == timedelta(days=plan.rectification_days)
    assert any(closed is None and due[t] < as_of for t, closed in tickets.items())


def test_media_generations_carry_labels(events: Emitted) -> None:
    media = [g for g in _of(events, Generation) if g.modality.value in ("image", "audio", "video")]
    labelled = [g for g in media if g.implicit_label is not None]
    assert media and labelled
    assert all(g.implicit_label.content_producer == PROVIDER.code for g in labelled)
    produce_ids = [g.implicit_label.produce_id for g in labelled]
    assert len(set(produce_ids)) == len(produce_ids)
    assert all(g.output_bytes is not None for g in media if g.output_sha256 is not None)


def test_training_data_with_personal_information_has_consent(events: Emitted) -> None:
    intakes = _of(events, TrainingDataIntake)
    with_pi = [i for i in intakes if i.contains_personal_information]
    assert len({i.dataset_id for i in with_pi}) == 1
    assert all(i.consent_basis for i in with_pi)
    assert {i.source_kind.value for i in intakes} >= {"public_web", "licensed", "synthetic"}


def test_every_user_accepts_the_agreement_in_force_before_generating(
    plan: SimulationPlan, events: Emitted
) -> None:
    """Art. 9: before a subject's first generation, and before their first one after the new
    version is published, the subject accepts the version then in force."""
    initial, update = PROVIDER.agreement_versions
    published = plan.start + timedelta(days=plan.agreement_update_day)
    accepted: dict[str, str] = {}  # subject -> version accepted so far
    seen_after_update: set[str] = set()
    renewed = 0
    for _, event in events:
        if isinstance(event, AgreementAcceptance):
            assert event.agreement_id == PROVIDER.agreement_id
            assert event.accepted_at == event.occurred_at
            assert event.channel in ("app", "web")
            expected = update if event.accepted_at >= published else initial
            assert event.agreement_version == expected
            assert accepted.get(event.subject) != expected, "accepted the same version twice"
            renewed += event.subject in accepted
            accepted[event.subject] = expected
        elif isinstance(event, Generation):
            in_force = update if event.occurred_at >= published else initial
            assert accepted.get(event.subject) == in_force, event.request_id
            if event.occurred_at >= published:
                seen_after_update.add(event.subject)
    generating = {e.subject for _, e in events if isinstance(e, Generation)}
    assert set(accepted) == generating
    assert renewed  # some users were back after the update
    assert {accepted[s] for s in seen_after_update} == {update}
    assert {v for s, v in accepted.items() if s not in seen_after_update} == {initial}


def test_no_new_agreement_version_when_the_update_is_after_the_period() -> None:
    plan = SimulationPlan.small(seed=3, agreement_update_day=30, generations=200)
    events, summary = collect(plan)
    acceptances = _of(events, AgreementAcceptance)
    assert {a.agreement_version for a in acceptances} == {PROVIDER.agreement_versions[0]}
    assert len(acceptances) == summary.active_subjects


def test_every_event_encodes(events: Emitted) -> None:
    catalogue = default_catalogue()
    for _, event in events:
        record = event.to_record(service_id="s", producer_id="p")
        assert catalogue.encode(event.SCHEMA, record)


def test_plan_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="time zone"):
        SimulationPlan(start=datetime(2025, 9, 1))
    with pytest.raises(ValueError, match="flag_rate"):
        SimulationPlan(flag_rate=1.5)
    with pytest.raises(ValueError, match="thresholds"):
        SimulationPlan(sanction_thresholds=(4, 2, 6, 9))
    with pytest.raises(ValueError, match="agreement_update_day"):
        SimulationPlan(agreement_update_day=-1)


def test_scaled_plan_keeps_rates() -> None:
    plan = SimulationPlan.default(seed=3).scaled(0.1)
    assert (plan.users, plan.generations) == (500, 2000)
    assert plan.flag_rate == SimulationPlan.default().flag_rate
    assert plan.as_of == plan.start + timedelta(days=plan.days)


def test_default_takes_overrides_and_summary_describes_itself() -> None:
    plan = SimulationPlan.default(seed=5, generations=300, users=50)
    assert (plan.seed, plan.generations, plan.users) == (5, 300, 50)
    _, summary = collect(plan)
    line = summary.describe()
    assert PROVIDER.name in line and "xinghe-lm-exp 0.9-beta" in line
    assert "[" not in line  # shown inside rich markup by the demo


def test_runs_with_different_seeds_do_not_share_case_or_request_ids(events: Emitted) -> None:
    """Two `emit` runs into one log must not merge each other's cases and requests."""
    other, _ = collect(SimulationPlan.small(seed=12))

    def refs(emitted: Emitted) -> set[str]:
        out: set[str] = set()
        for _, e in emitted:
            for name in ("request_id", "case_id", "complaint_id", "sanction_id"):
                value = getattr(e, name, None)
                if value is not None:
                    out.add(value)
        return out

    assert refs(other).isdisjoint(refs(events))
