"""The exact answers of the extra queries and of the rest of the domain brief's "what must be
answerable" (time to action and feedback, open rectifications, minor mode, sanction history,
erasure, trail outages, ...)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aigc_audit.consumers.store.tables import (
    BATCHES,
    CHAIN_FINDINGS,
    DATA_HANDLING,
    GENERATIONS,
    MODERATION_ACTIONS,
    QUARANTINE,
    USER_SANCTIONS,
)
from tests import query_pack_fixtures
from tests.query_pack_fixtures import (
    _case,
    _ticket,
    run,
)
from tests.store_rows import (
    annotation_check,
    batch,
    complaint,
    finding,
    generation,
    insert,
    legal_hold,
    moderation,
    out,
    pi_request,
    quarantined,
    safety_evaluation,
    sanction,
    training_intake,
    ts,
    update,
)

module_store = query_pack_fixtures.module_store
store = query_pack_fixtures.store


# --------------------------------------------------------------------------------------------
# extra queries


@pytest.mark.chdb
def test_model_version_for_request(store: Any) -> None:
    insert(
        store,
        GENERATIONS,
        [
            generation(request_id="req-42", model_version="2.3", filing_number=None),
            generation(request_id="req-43"),
        ],
    )
    got = run(store, "model_version_for_request", request_id="req-42")
    assert [(r["model_name"], r["model_version"], r["filing_number"]) for r in got] == [
        ("chat-model", "2.3", None)
    ]


@pytest.mark.chdb
def test_safety_evaluations(store: Any) -> None:
    rows = [
        safety_evaluation(model_version="1.0", occurred_at=ts("2026-01-01"), qualified_rate=0.5),
        safety_evaluation(model_version="1.0", occurred_at=ts("2026-02-01")),
        safety_evaluation(model_version="2.0", generated_test_size=999),
        safety_evaluation(model_version="3.0", refusal_rate=0.94, false_refusal_rate=0.06),
    ]
    insert(store, DATA_HANDLING, rows)
    got = run(store, "safety_evaluations", as_of="2026-06-01")
    checks = [
        tuple(
            r[c]
            for c in (
                "model_version",
                "evaluations",
                "qualified_ok",
                "refusal_ok",
                "false_refusal_ok",
                "meets_all",
            )
        )
        for r in got
    ]
    assert checks == [
        ("1.0", 2, True, True, True, True),
        ("2.0", 1, False, True, True, False),
        ("3.0", 1, True, False, False, False),
    ]
    early = run(store, "safety_evaluations", as_of="2026-01-10")
    assert [(r["model_version"], r["qualified_ok"]) for r in early] == [("1.0", False)]


@pytest.mark.chdb
def test_training_data_provenance(store: Any) -> None:
    rows = [
        training_intake(dataset_id="ds-a", occurred_at=ts("2026-01-01")),
        training_intake(
            dataset_id="ds-b",
            occurred_at=ts("2026-01-02"),
            contains_personal_information=True,
            source_kind="user_generated",
        ),
        training_intake(dataset_id="ds-c", model_version="2.0"),
        annotation_check(dataset_id="ds-a", sample_size=100, sampled_accuracy=0.98),
        annotation_check(dataset_id="ds-a", sample_size=300, sampled_accuracy=0.95),
    ]
    insert(store, DATA_HANDLING, rows)
    got = run(store, "training_data_provenance", model_name="chat-model", model_version="1.0")
    assert [
        (
            r["dataset_id"],
            r["personal_information_without_consent"],
            r["annotation_checks"],
            r["annotation_sampled"],
            r["min_sampled_accuracy"],
        )
        for r in got
    ] == [("ds-a", False, 2, 400, 0.95), ("ds-b", True, 0, None, None)]
    every_version = run(store, "training_data_provenance", model_name="chat-model")
    assert [r["dataset_id"] for r in every_version] == ["ds-a", "ds-b", "ds-c"]


# --------------------------------------------------------------------------------------------
# the rest of the domain brief's "what must be answerable"


@pytest.mark.chdb
def test_time_to_action(store: Any) -> None:
    c1 = _case("c1", "A.1.6", "2026-04-02 10:00", None)
    c1_acted = update(c1, occurred_at=ts("2026-04-02 10:01"), acted_at=ts("2026-04-02 10:01"))
    c2 = _case("c2", "A.1.6", "2026-04-03 10:00", 120, model_version="2.0")
    c3 = _case("c3", "A.1.6", "2026-04-04 10:00", None)
    c4 = _case("c4", "A.2.5", "2026-04-05 10:00", 30, subject="subj-4")
    c9 = _case("c9", "A.1.3", "2026-04-06 10:00", 5, service_id="svc-other")
    rows = [
        c1,
        c1_acted,
        c2,
        c3,
        c4,
        c9,
        _case("c5", "A.1.6", "2026-04-05 11:00", 500, action="no_action"),
        _case("c6", "A.1.1", "2026-03-31 23:59:59.999999", 900),
        _case("c8", "A.1.1", "2026-05-01 00:00", 900),
        complaint(occurred_at=ts("2026-04-07"), risk_category="A.1.6"),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    window = {"from": "2026-04-01", "to": "2026-05-01"}
    got = run(store, "time_to_action", **window)
    assert [(r["case_id"], r["seconds_to_action"], r["event_id"]) for r in got] == [
        ("c3", None, str(c3["event_id"])),  # not acted on: first
        ("c2", 120.0, str(c2["event_id"])),
        ("c1", 60.0, str(c1_acted["event_id"])),  # its latest state
        ("c4", 30.0, str(c4["event_id"])),
        ("c9", 5.0, str(c9["event_id"])),
    ]
    assert got[3] == {
        "case_id": "c4",
        "service_id": "svc-chat",
        "risk_category": "A.2.5",
        "action": "block_generation",
        "detection_source": "output_filter",
        "detected_at": out("2026-04-05 10:00"),
        "acted_at": out("2026-04-05 10:00:30"),
        "seconds_to_action": 30.0,
        "model_name": "chat-model",
        "model_version": "1.0",
        "subject": "subj-4",
        "event_id": str(c4["event_id"]),
    }
    slow_a1 = run(store, "time_to_action", **window, category="A.1", min_seconds="60")
    assert [r["case_id"] for r in slow_a1] == ["c3", "c2", "c1"]
    assert [r["case_id"] for r in run(store, "time_to_action", **window, category="A.2.5")] == [
        "c4"
    ]
    # a code is not a prefix of another: A.1.6 is not A.1.60, A.1 is not A.10
    assert run(store, "time_to_action", **window, category="A.1.60") == []
    other = run(store, "time_to_action", **window, service_id="svc-other")
    assert [r["case_id"] for r in other] == ["c9"]
    # the first cases in the same order; 0 lifts the limit
    first = run(store, "time_to_action", **window, limit="2")
    assert [r["case_id"] for r in first] == ["c3", "c2"]
    assert len(run(store, "time_to_action", **window, limit="0")) == 5


@pytest.mark.chdb
def test_rectifications_open(store: Any) -> None:
    t1 = _ticket("case-r1", "RT-1", "2026-03-01", "2026-06-01")
    r3 = _ticket("case-r3", "RT-2", "2026-03-11", "2026-06-10")
    r5 = _ticket("case-r5", "RT-3", "2026-04-15", "2026-07-15", risk_category="A.1.7")
    t4 = _ticket("case-r4", "RT-4", "2026-03-20", "2026-06-20", model_version="2.0")
    t6 = _ticket("case-r6", "RT-6", "2026-06-01", "2026-09-01", service_id="svc-other")
    rows = [
        t1,
        update(t1, occurred_at=ts("2026-05-20"), rectification_closed_at=ts("2026-05-20")),
        _ticket("case-r2", "RT-2", "2026-03-10", "2026-06-10"),
        r3,
        r5,
        t4,
        update(t4, occurred_at=ts("2026-07-05"), rectification_closed_at=ts("2026-07-05")),
        t6,
        _ticket("case-r7", "RT-7", "2026-07-02", "2026-10-02"),  # opened after as_of
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "rectifications_open", as_of="2026-07-01")
    assert got == [
        {
            "ticket": "RT-2",
            "service_id": "svc-chat",
            "case_ids": ["case-r2", "case-r3"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "1.0",
            "opened_at": out("2026-03-11"),
            "due_at": out("2026-06-10"),
            "days_open": 112.0,
            "overdue": True,
            "days_overdue": 21.0,
            "beyond_three_months": True,
            "event_id": str(r3["event_id"]),
        },
        {
            "ticket": "RT-4",
            "service_id": "svc-chat",
            "case_ids": ["case-r4"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "2.0",
            "opened_at": out("2026-03-20"),
            "due_at": out("2026-06-20"),
            "days_open": 103.0,
            "overdue": True,
            "days_overdue": 11.0,
            "beyond_three_months": True,
            "event_id": str(t4["event_id"]),
        },
        {
            "ticket": "RT-3",
            "service_id": "svc-chat",
            "case_ids": ["case-r5"],
            "risk_category": "A.1.7",
            "model_name": "chat-model",
            "model_version": "1.0",
            "opened_at": out("2026-04-15"),
            "due_at": out("2026-07-15"),
            "days_open": 77.0,
            "overdue": False,
            "days_overdue": 0.0,
            "beyond_three_months": False,
            "event_id": str(r5["event_id"]),
        },
        {
            "ticket": "RT-6",
            "service_id": "svc-other",
            "case_ids": ["case-r6"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "1.0",
            "opened_at": out("2026-06-01"),
            "due_at": out("2026-09-01"),
            "days_open": 30.0,
            "overdue": False,
            "days_overdue": 0.0,
            "beyond_three_months": False,
            "event_id": str(t6["event_id"]),
        },
    ]
    # RT-4 closed on 07-05; RT-7 opened on 07-02
    later = run(store, "rectifications_open", as_of="2026-07-10", service_id="svc-chat")
    assert [r["ticket"] for r in later] == ["RT-2", "RT-3", "RT-7"]


@pytest.mark.chdb
def test_time_to_feedback(store: Any) -> None:
    def answered(row: dict, at: str) -> dict:
        return update(row, occurred_at=ts(at), complaint_feedback_at=ts(at))

    k2 = complaint(complaint_id="k2", occurred_at=ts("2026-03-02"))
    k3 = complaint(complaint_id="k3", occurred_at=ts("2026-03-03"))
    k4 = complaint(complaint_id="k4", occurred_at=ts("2026-03-10"), complaint_channel="hotline")
    k6 = complaint(complaint_id="k6", occurred_at=ts("2026-02-27"))
    k7 = complaint(complaint_id="k7", occurred_at=ts("2026-03-20"))
    k8 = complaint(
        complaint_id="k8",
        occurred_at=ts("2026-03-05"),
        complaint_channel="hotline",
        service_id="svc-other",
    )
    rows = [
        complaint(complaint_id="k1", occurred_at=ts("2026-03-01")),  # no feedback, past due
        k2,
        answered(k2, "2026-03-05"),  # 72 h, on time
        k3,
        answered(k3, "2026-03-12"),  # 216 h, late
        k4,
        answered(k4, "2026-03-11"),  # 24 h
        complaint(complaint_id="k5", occurred_at=ts("2026-03-28")),  # open, due 04-04
        k6,
        answered(k6, "2026-03-02"),  # received before the window
        k7,
        answered(k7, "2026-04-02"),  # feedback after the window: still open at its end
        k8,
        answered(k8, "2026-03-06"),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "time_to_feedback", **{"from": "2026-03-01", "to": "2026-04-01"})
    one_on_time = {
        "complaints": 1,
        "feedback_given": 1,
        "feedback_on_time": 1,
        "on_time_share": 1.0,
        "avg_hours_to_feedback": 24.0,
        "p50_hours_to_feedback": 24.0,
        "p95_hours_to_feedback": 24.0,
        "max_hours_to_feedback": 24.0,
        "without_feedback": 0,
        "open_past_due": 0,
    }
    assert got == [
        {"service_id": "svc-chat", "channel": "hotline", **one_on_time},
        {
            "service_id": "svc-chat",
            "channel": "in_app",
            "complaints": 5,
            "feedback_given": 2,
            "feedback_on_time": 1,
            "on_time_share": 0.2,
            "avg_hours_to_feedback": 144.0,
            "p50_hours_to_feedback": 144.0,
            "p95_hours_to_feedback": 208.8,
            "max_hours_to_feedback": 216.0,
            "without_feedback": 3,
            "open_past_due": 2,
        },
        {"service_id": "svc-other", "channel": "hotline", **one_on_time},
    ]
    only_other = run(
        store,
        "time_to_feedback",
        **{"from": "2026-03-01", "to": "2026-04-01", "service_id": "svc-other"},
    )
    assert [(r["service_id"], r["complaints"]) for r in only_other] == [("svc-other", 1)]


@pytest.mark.chdb
def test_minor_mode_usage(store: Any) -> None:
    minor = {"subject": "subj-a", "minor_mode": True}
    rows = [
        generation(**minor, occurred_at=ts("2026-04-02 10:00")),
        generation(**minor, occurred_at=ts("2026-04-02 11:00"), safety_verdict="refused"),
        generation(**minor, occurred_at=ts("2026-04-02 23:59")),
        generation(**minor, occurred_at=ts("2026-04-03 00:30")),
        generation(subject="subj-b", minor_mode=True, occurred_at=ts("2026-04-02 12:00")),
        generation(subject="subj-c", occurred_at=ts("2026-04-04"), safety_verdict="blocked"),
        generation(subject="subj-c", occurred_at=ts("2026-04-05")),
        generation(service_id="svc-api", occurred_at=ts("2026-04-05")),
        generation(service_id="svc-api", occurred_at=ts("2026-04-06")),
        # outside the window
        generation(**minor, occurred_at=ts("2026-05-01")),
        generation(**minor, occurred_at=ts("2026-03-31 23:59:59.999999")),
    ]
    insert(store, GENERATIONS, rows)
    window = {"from": "2026-04-01", "to": "2026-05-01"}
    model = {"model_name": "chat-model", "model_version": "1.0"}
    api = {
        "service_id": "svc-api",
        **model,
        "generations": 2,
        "minor_mode_generations": 0,
        "minor_mode_share": 0.0,
        "minor_mode_subjects": 0,
        "per_subject": 0.0,
        "max_per_subject_day": 0,
        "minor_mode_not_passed": 0,
    }
    assert run(store, "minor_mode_usage", **window) == [
        api,
        {
            "service_id": "svc-chat",
            **model,
            "generations": 7,
            "minor_mode_generations": 5,
            "minor_mode_share": 0.7143,
            "minor_mode_subjects": 2,
            "per_subject": 2.5,
            "max_per_subject_day": 3,
            "minor_mode_not_passed": 1,
        },
    ]
    assert run(store, "minor_mode_usage", **window, service_id="svc-api") == [api]


@pytest.mark.chdb
def test_sanction_history(store: Any) -> None:
    m1 = moderation(subject="subj-h", case_id="case-1", occurred_at=ts("2026-03-01 10:00"))
    m2 = moderation(
        subject="subj-h",
        case_id="case-2",
        risk_category="A.1.7",
        occurred_at=ts("2026-03-02 10:00"),
        acted_at=None,
        reported=True,
        authority="Beijing CAC",
    )
    m3 = moderation(subject="subj-o", case_id="case-3", occurred_at=ts("2026-03-02 11:00"))
    missing = str(uuid.uuid4())
    s1 = sanction(
        sanction_id="san-1",
        subject="subj-h",
        action="warning",
        evidence=[str(m1["event_id"])],
        occurred_at=ts("2026-03-01 12:00"),
    )
    s2 = sanction(
        sanction_id="san-2",
        subject="subj-h",
        evidence=[str(m1["event_id"]).upper(), str(m2["event_id"]), missing],
        restricted_functions=["image_generation"],
        occurred_at=ts("2026-03-03"),
        reported=True,
        authority="Beijing CAC",
    )
    s2_lifted = update(
        s2,
        occurred_at=ts("2026-03-10"),
        action="reinstatement",
        effective_from=ts("2026-03-10"),
        evidence=[],
        restricted_functions=[],
        reported=False,
        authority=None,
    )
    insert(store, MODERATION_ACTIONS, [m1, m2, m3])
    insert(
        store,
        USER_SANCTIONS,
        [s1, s2, s2_lifted, sanction(subject="subj-o", evidence=[str(m3["event_id"])])],
    )
    got = run(store, "sanction_history", subject="subj-h")

    def step(row: dict, detail: str, missing_evidence: list[str]) -> dict:
        return {
            "sanction_id": row["sanction_id"],
            "step_event_id": str(row["event_id"]),
            "role": "step",
            "occurred_at": out(str(row["occurred_at"])[:19]),
            "service_id": "svc-chat",
            "action": row["action"],
            "category": "A.1.6",
            "effective_from": out(str(row["effective_from"])[:19]),
            "effective_until": None,
            "case_id": None,
            "detail": detail,
            "missing_evidence": missing_evidence,
            "event_id": str(row["event_id"]),
        }

    def evidence(of: dict, row: dict, detail: str) -> dict:
        return {
            "sanction_id": of["sanction_id"],
            "step_event_id": str(of["event_id"]),
            "role": "evidence",
            "occurred_at": out(str(row["occurred_at"])[:19]),
            "service_id": "svc-chat",
            "action": "block_generation",
            "category": row["risk_category"],
            "effective_from": None,
            "effective_until": None,
            "case_id": row["case_id"],
            "detail": detail,
            "missing_evidence": [],
            "event_id": str(row["event_id"]),
        }

    m1_detail = (
        "moderation_action on generation req-1, detected 2026-03-01 10:00:00, "
        "acted 2026-03-01 10:00:00"
    )
    m2_detail = (
        "moderation_action on generation req-1, detected 2026-03-02 10:00:00, not yet acted, "
        "reported to Beijing CAC"
    )
    assert got == [
        step(s1, "evidence: 1, records preserved", []),
        evidence(s1, m1, m1_detail),
        step(
            s2,
            "restricts image_generation, evidence: 3, records preserved, reported to Beijing CAC",
            [missing],
        ),
        evidence(s2, m1, m1_detail),
        evidence(s2, m2, m2_detail),
        step(s2_lifted, "evidence: 0, records preserved", []),
    ]
    assert run(store, "sanction_history", subject="nobody") == []


@pytest.mark.chdb
def test_subject_erasure(store: Any) -> None:
    d1 = pi_request(subject="subj-e", request_id="d1", occurred_at=ts("2026-03-01"))
    d1_done = update(
        d1,
        occurred_at=ts("2026-03-10"),
        status="completed",
        completed_at=ts("2026-03-10"),
        outcome="subject key destroyed",
    )
    d3 = pi_request(subject="subj-e", request_id="d3", occurred_at=ts("2026-03-20"))
    hold = legal_hold(hold_target="subj-e", occurred_at=ts("2026-03-12"))
    released = update(hold, occurred_at=ts("2026-03-25"), hold_action="release")
    sealed = moderation(
        subject="subj-e",
        case_id="case-e",
        occurred_at=ts("2026-03-05"),
        sealed_evidence=b"\x01" * 40,
    )
    sealed_later = complaint(
        subject="subj-e",
        complaint_id="k-e",
        occurred_at=ts("2026-03-15"),
        sealed_evidence=b"\x02" * 28,
    )
    insert(
        store,
        DATA_HANDLING,
        [
            d1,
            d1_done,
            d3,
            hold,
            released,
            pi_request(subject="subj-e", request_kind="access", occurred_at=ts("2026-03-02")),
            pi_request(subject="subj-x", occurred_at=ts("2026-03-02")),
            legal_hold(hold_id="hold-2", occurred_at=ts("2026-03-12")),
        ],
    )
    insert(
        store,
        MODERATION_ACTIONS,
        [
            sealed,
            sealed_later,
            moderation(subject="subj-e", occurred_at=ts("2026-03-06")),  # nothing sealed
            moderation(subject="subj-x", occurred_at=ts("2026-03-06"), sealed_evidence=b"\x01"),
        ],
    )
    got = run(store, "subject_erasure", subject="subj-e", as_of="2026-03-31")
    erased = out("2026-03-10")
    assert got == [
        {
            "occurred_at": out("2026-03-05"),
            "record": "sealed_evidence",
            "service_id": "svc-chat",
            "ref": "case-e",
            "status": "moderation_action",
            "detail": "40 sealed bytes",
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(sealed["event_id"]),
        },
        {
            "occurred_at": out("2026-03-10"),
            "record": "delete_request",
            "service_id": "svc-chat",
            "ref": "d1",
            "status": "completed",
            "detail": (
                "received 2026-03-01 00:00:00, due 2026-03-16 00:00:00, "
                "closed 2026-03-10 00:00:00: subject key destroyed"
            ),
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(d1_done["event_id"]),
        },
        {
            "occurred_at": out("2026-03-15"),
            "record": "sealed_evidence",
            "service_id": "svc-chat",
            "ref": "k-e",
            "status": "complaint",
            "detail": "28 sealed bytes",
            "erased_at": erased,
            "after_erasure": True,
            "event_id": str(sealed_later["event_id"]),
        },
        {
            "occurred_at": out("2026-03-20"),
            "record": "delete_request",
            "service_id": "svc-chat",
            "ref": "d3",
            "status": "received",
            "detail": "received 2026-03-20 00:00:00, due 2026-04-04 00:00:00",
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(d3["event_id"]),
        },
        {
            "occurred_at": out("2026-03-25"),
            "record": "legal_hold",
            "service_id": "svc-chat",
            "ref": "hold-1",
            "status": "release",
            "detail": "authority inquiry, requested by Beijing CAC",
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(released["event_id"]),
        },
    ]
    # before the deletion was completed: the request as received, nothing erased yet
    early = run(store, "subject_erasure", subject="subj-e", as_of="2026-03-09")
    assert [(r["record"], r["status"], r["erased_at"], r["event_id"]) for r in early] == [
        ("delete_request", "received", None, str(d1["event_id"])),
        ("sealed_evidence", "moderation_action", None, str(sealed["event_id"])),
    ]


@pytest.mark.chdb
def test_trail_outages(store: Any) -> None:
    insert(
        store,
        BATCHES,
        [
            batch(sequence=0, created_at=ts("2026-03-01 10:00")),
            batch(sequence=1, created_at=ts("2026-03-01 10:10")),
            batch(sequence=2, created_at=ts("2026-03-01 12:00")),
            batch(sequence=5, created_at=ts("2026-03-01 14:00")),
            batch(sequence=6, created_at=ts("2026-03-01 14:30")),
            batch(sequence=7, created_at=ts("2026-03-02 09:00")),  # after the window
            batch(producer_id="producer-2", sequence=0, created_at=ts("2026-03-01 09:00")),
            batch(producer_id="producer-2", sequence=1, created_at=ts("2026-03-01 09:30")),
        ],
    )
    insert(
        store,
        QUARANTINE,
        [
            quarantined(offset=10, received_at=ts("2026-03-01 11:00")),
            quarantined(offset=11, received_at=ts("2026-03-01 11:02")),
            quarantined(offset=12, received_at=ts("2026-03-01 11:04"), reason="chain_gap"),
            quarantined(offset=13, received_at=ts("2026-03-01 11:20")),
            quarantined(
                offset=14,
                received_at=ts("2026-03-01 11:01"),
                producer_id=None,
                reason="not_a_batch",
            ),
            quarantined(offset=15, received_at=ts("2026-02-28 11:01")),  # before the window
        ],
    )
    insert(
        store,
        CHAIN_FINDINGS,
        [
            finding(expected_sequence=3, got_sequence=5, received_at=ts("2026-03-01 14:00:00.5")),
            finding(offset=9, received_at=ts("2026-03-02")),  # after the window
        ],
    )

    def outage(producer: str, kind: str, start: str, end: str, seconds: float, **kw: Any) -> dict:
        row = {"messages": 0, "missing": 0, "detail": ""} | kw
        return {
            "producer_id": producer,
            "kind": kind,
            "started_at": out(start),
            "ended_at": out(end),
            "seconds": seconds,
            **row,
        }

    p1 = "producer-1"
    first_silence = outage(
        p1,
        "silence",
        "2026-03-01 10:10",
        "2026-03-01 12:00",
        6600.0,
        detail="no batch between sequence 1 and 2",
    )
    second_silence = outage(
        p1,
        "silence",
        "2026-03-01 12:00",
        "2026-03-01 14:00",
        7200.0,
        missing=2,
        detail="no batch between sequence 2 and 5",
    )
    gap = outage(
        p1,
        "chain_gap",
        "2026-03-01 14:00:00.5",
        "2026-03-01 14:00:00.5",
        0.0,
        missing=2,
        detail="sequences 1..2 missing",
    )
    unknown = outage(
        "(unknown)",
        "quarantine_burst",
        "2026-03-01 11:01",
        "2026-03-01 11:01",
        0.0,
        messages=1,
        detail="not_a_batch: 1",
    )
    late_burst = outage(
        p1,
        "quarantine_burst",
        "2026-03-01 11:20",
        "2026-03-01 11:20",
        0.0,
        messages=1,
        detail="bad_signature: 1",
    )
    window = {"from": "2026-03-01", "to": "2026-03-02"}
    assert run(store, "trail_outages", **window) == [
        first_silence,
        outage(
            p1,
            "quarantine_burst",
            "2026-03-01 11:00",
            "2026-03-01 11:04",
            240.0,
            messages=3,
            detail="bad_signature: 2, chain_gap: 1",
        ),
        unknown,
        late_burst,
        second_silence,
        gap,
    ]
    # a longer silence threshold and a shorter burst gap: the burst splits, one silence remains
    strict = run(
        store, "trail_outages", **window, min_silence_seconds="7000", burst_gap_seconds="60"
    )
    assert [(r["producer_id"], r["kind"], r["started_at"], r["messages"]) for r in strict] == [
        (p1, "quarantine_burst", out("2026-03-01 11:00"), 1),
        ("(unknown)", "quarantine_burst", out("2026-03-01 11:01"), 1),
        (p1, "quarantine_burst", out("2026-03-01 11:02"), 1),
        (p1, "quarantine_burst", out("2026-03-01 11:04"), 1),
        (p1, "quarantine_burst", out("2026-03-01 11:20"), 1),
        (p1, "silence", out("2026-03-01 12:00"), 0),
        (p1, "chain_gap", out("2026-03-01 14:00:00.5"), 0),
    ]
