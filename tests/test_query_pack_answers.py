"""The exact answers of the queries the domain brief requires (subject history, incidents,
rectifications, sanctions, agreements, complaints, PI requests, labels, filings, trail
integrity)."""

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
    agreement_acceptance,
    batch,
    complaint,
    finding,
    generation,
    identity_verification,
    insert,
    legal_hold,
    moderation,
    out,
    pi_request,
    quarantined,
    sanction,
    ts,
    update,
)

module_store = query_pack_fixtures.module_store
store = query_pack_fixtures.store


# --------------------------------------------------------------------------------------------
# (c) exact answers


@pytest.mark.chdb
def test_subject_history(store: Any) -> None:
    gen = generation(subject="subj-h", request_id="req-h1", occurred_at=ts("2026-03-01 10:00"))
    case = moderation(
        subject="subj-h",
        case_id="case-h1",
        target_ref="req-h1",
        occurred_at=ts("2026-03-01 10:05"),
    )
    cmp = complaint(subject="subj-h", complaint_id="cmp-h1", occurred_at=ts("2026-03-01 11:00"))
    sanc = sanction(
        subject="subj-h",
        sanction_id="san-h1",
        evidence=[str(case["event_id"])],
        occurred_at=ts("2026-03-01 12:00"),
    )
    pir = pi_request(subject="subj-h", request_id="pir-h1", occurred_at=ts("2026-03-02 09:00"))
    idv = identity_verification(subject="subj-h", occurred_at=ts("2026-02-28 09:00"))
    insert(store, GENERATIONS, [gen, generation(subject="someone-else")])
    insert(store, MODERATION_ACTIONS, [case, cmp, moderation(subject="someone-else")])
    insert(store, USER_SANCTIONS, [sanc])
    insert(store, DATA_HANDLING, [pir, idv, pi_request(subject="someone-else")])

    rows = run(store, "subject_history", subject="subj-h")
    got = [
        (r["occurred_at"], r["family"], r["event_type"], r["service_id"], r["ref"], r["summary"])
        for r in rows
    ]
    assert got == [
        (
            out("2026-02-28 09:00"),
            "data_handling",
            "identity_verification",
            "svc-chat",
            "",
            "identity verified by mobile_number",
        ),
        (
            out("2026-03-01 10:00"),
            "generation",
            "generation",
            "svc-chat",
            "req-h1",
            "text by chat-model 1.0 via app: passed",
        ),
        (
            out("2026-03-01 10:05"),
            "moderation_action",
            "moderation_action",
            "svc-chat",
            "case-h1",
            "block_generation (A.1.6) on generation req-h1, detected by output_filter",
        ),
        (
            out("2026-03-01 11:00"),
            "moderation_action",
            "complaint",
            "svc-chat",
            "cmp-h1",
            "complaint cmp-h1 via in_app, due 2026-03-08 11:00:00, no feedback yet",
        ),
        (
            out("2026-03-01 12:00"),
            "user_sanction",
            "user_sanction",
            "svc-chat",
            "san-h1",
            "suspension (A.1.6) from 2026-03-01 12:00:00, evidence: 1",
        ),
        (
            out("2026-03-02 09:00"),
            "data_handling",
            "personal_information_request",
            "svc-chat",
            "pir-h1",
            "delete request received, due 2026-03-17 09:00:00",
        ),
    ]
    assert [r["event_id"] for r in rows] == [
        str(x["event_id"]) for x in (idv, gen, case, cmp, sanc, pir)
    ]


@pytest.mark.chdb
def test_subject_history_shows_agreement_acceptances(store: Any) -> None:
    acc = agreement_acceptance(subject="subj-h", agreement_version="2.1", channel="web")
    insert(store, DATA_HANDLING, [acc, agreement_acceptance(subject="someone-else")])
    rows = run(store, "subject_history", subject="subj-h")
    assert [(r["event_type"], r["ref"], r["summary"], r["event_id"]) for r in rows] == [
        (
            "agreement_acceptance",
            "user-terms",
            "accepted user-terms version 2.1 via web",
            str(acc["event_id"]),
        )
    ]


@pytest.mark.chdb
def test_incidents_by_risk_category(store: Any) -> None:
    c1 = _case("c1", "A.1.6", "2026-04-02 10:00", None)
    c7 = _case("c7", "A.1.1", "2026-04-06 10:00", None, action="no_action")
    rows = [
        c1,
        update(c1, occurred_at=ts("2026-04-02 10:01"), acted_at=ts("2026-04-02 10:01")),
        _case("c2", "A.1.6", "2026-04-03 10:00", 120, model_version="2.0"),
        _case("c3", "A.1.6", "2026-04-04 10:00", None),
        _case("c4", "A.2.5", "2026-04-05 10:00", 30, model_name="image-model"),
        _case("c5", "A.1.6", "2026-04-05 11:00", 5, action="no_action"),
        _case("c6", "A.1.1", "2026-03-31 23:59", 5),
        _case("c8", "A.1.1", "2026-05-01 00:00", 5),
        c7,
        update(
            c7,
            occurred_at=ts("2026-04-06 10:05"),
            action="delete",
            acted_at=ts("2026-04-06 10:00:10"),
        ),
        complaint(occurred_at=ts("2026-04-07"), risk_category="A.1.6"),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "incidents_by_risk_category", **{"from": "2026-04-01", "to": "2026-05-01"})
    assert got == [
        {
            "category": "A.1",
            "risk_category": "A.1.1",
            "cases": 1,
            "models": ["chat-model 1.0"],
            "not_acted": 0,
            "avg_seconds_to_action": 10.0,
            "p50_seconds_to_action": 10.0,
            "p95_seconds_to_action": 10.0,
            "max_seconds_to_action": 10.0,
        },
        {
            "category": "A.1",
            "risk_category": "A.1.6",
            "cases": 3,
            "models": ["chat-model 1.0", "chat-model 2.0"],
            "not_acted": 1,
            "avg_seconds_to_action": 90.0,
            "p50_seconds_to_action": 90.0,
            "p95_seconds_to_action": pytest.approx(117.0),
            "max_seconds_to_action": 120.0,
        },
        {
            "category": "A.2",
            "risk_category": "A.2.5",
            "cases": 1,
            "models": ["image-model 1.0"],
            "not_acted": 0,
            "avg_seconds_to_action": 30.0,
            "p50_seconds_to_action": 30.0,
            "p95_seconds_to_action": 30.0,
            "max_seconds_to_action": 30.0,
        },
    ]
    only_other = run(
        store, "incidents_by_risk_category", **{"from": "2026-04-01", "service_id": "svc-other"}
    )
    assert only_other == []


@pytest.mark.chdb
def test_incidents_not_reported(store: Any) -> None:
    n2 = _case("n2", "A.1.3", "2026-04-02", 1)
    n4 = _case("n4", "A.1.7", "2026-04-09", 1)
    reported = {"reported": True, "authority": "Beijing CAC", "report_reference": "R-1"}
    n1 = _case("n1", "A.1.6", "2026-04-01", 1)
    rows = [
        n1,
        n2,
        update(n2, occurred_at=ts("2026-04-03"), reported_at=ts("2026-04-03"), **reported),
        _case("n3", "A.2.5", "2026-04-01", 1),
        n4,
        update(n4, occurred_at=ts("2026-04-11"), reported_at=ts("2026-04-11"), **reported),
        _case("n5", "A.1.6", "2026-04-11", 1),
    ]
    insert(store, MODERATION_ACTIONS, rows)

    at_10 = run(store, "incidents_not_reported", as_of="2026-04-10")
    assert [(r["case_id"], r["risk_category"], r["hours_since_detection"]) for r in at_10] == [
        ("n1", "A.1.6", 216.0),
        ("n4", "A.1.7", 24.0),  # reported only on 04-11: still unreported at 04-10
    ]
    assert at_10[0] | {"hours_since_detection": None} == {
        "case_id": "n1",
        "service_id": "svc-chat",
        "risk_category": "A.1.6",
        "action": "block_generation",
        "detection_source": "output_filter",
        "detected_at": out("2026-04-01"),
        "acted_at": out("2026-04-01 00:00:01"),
        "hours_since_detection": None,
        "model_name": "chat-model",
        "model_version": "1.0",
        "subject": "subj-1",
        "target": "generation",
        "target_ref": "req-1",
        "event_id": str(n1["event_id"]),
    }
    # n4's latest state by 04-10 is its first event; its report on 04-11 is not yet recorded
    assert at_10[1]["event_id"] == str(n4["event_id"])
    at_12 = run(store, "incidents_not_reported", as_of="2026-04-12")
    assert [r["case_id"] for r in at_12] == ["n1", "n5"]


@pytest.mark.chdb
def test_rectifications_overdue(store: Any) -> None:
    t1 = _ticket("case-r1", "RT-1", "2026-03-01", "2026-06-01")
    t4 = _ticket("case-r4", "RT-4", "2026-03-20", "2026-06-20", model_version="2.0")
    r3 = _ticket("case-r3", "RT-2", "2026-03-11", "2026-06-10")
    rows = [
        t1,
        update(t1, occurred_at=ts("2026-05-20"), rectification_closed_at=ts("2026-05-20")),
        _ticket("case-r2", "RT-2", "2026-03-10", "2026-06-10"),
        r3,
        _ticket("case-r5", "RT-3", "2026-04-15", "2026-07-15"),
        t4,
        update(t4, occurred_at=ts("2026-07-05"), rectification_closed_at=ts("2026-07-05")),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "rectifications_overdue", as_of="2026-07-01")
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
            "days_overdue": 21.0,
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
            "days_overdue": 11.0,
            "event_id": str(t4["event_id"]),
        },
    ]
    # closed on 07-05: no longer overdue afterwards
    assert [r["ticket"] for r in run(store, "rectifications_overdue", as_of="2026-07-10")] == [
        "RT-2"
    ]


@pytest.mark.chdb
def test_sanctions_in_force(store: Any) -> None:
    evidence = [str(uuid.uuid4()), str(uuid.uuid4())]
    s1 = sanction(sanction_id="s1", subject="subj-a", occurred_at=ts("2026-03-01"))
    s3 = sanction(
        sanction_id="s3",
        subject="subj-c",
        action="function_restriction",
        reason_category="A.4.3",
        restricted_functions=["image_generation"],
        evidence=evidence,
        occurred_at=ts("2026-03-03"),
        effective_until=ts("2026-04-01"),
    )
    rows = [
        s1,
        update(
            s1,
            occurred_at=ts("2026-03-10"),
            action="reinstatement",
            effective_from=ts("2026-03-10"),
        ),
        sanction(
            sanction_id="s2",
            subject="subj-b",
            action="warning",
            occurred_at=ts("2026-03-02"),
            effective_until=ts("2026-03-05"),
        ),
        s3,
        sanction(
            sanction_id="s4", subject="subj-d", action="termination", occurred_at=ts("2026-03-20")
        ),
    ]
    insert(store, USER_SANCTIONS, rows)

    at_06 = run(store, "sanctions_in_force", at="2026-03-06")
    assert [r["sanction_id"] for r in at_06] == ["s1", "s3"]
    assert at_06[1] == {
        "sanction_id": "s3",
        "subject": "subj-c",
        "service_id": "svc-chat",
        "action": "function_restriction",
        "reason_category": "A.4.3",
        "restricted_functions": ["image_generation"],
        "effective_from": out("2026-03-03"),
        "effective_until": out("2026-04-01"),
        "evidence_count": 2,
        "evidence": evidence,
        "records_preserved": True,
        "reported": False,
        "event_id": str(s3["event_id"]),
    }
    assert at_06[0]["action"] == "suspension" and at_06[0]["effective_until"] is None
    # reinstated on 03-10: s1 is no longer in force
    assert [r["sanction_id"] for r in run(store, "sanctions_in_force", at="2026-03-15")] == ["s3"]
    assert [r["sanction_id"] for r in run(store, "sanctions_in_force", at="2026-03-25")] == [
        "s3",
        "s4",
    ]
    # the reinstatement takes effect at its effective_from exactly
    assert [
        r["sanction_id"] for r in run(store, "sanctions_in_force", at="2026-03-09T23:59:59")
    ] == [
        "s1",
        "s3",
    ]
    only_a = run(store, "sanctions_in_force", at="2026-03-06", subject="subj-a")
    assert [r["sanction_id"] for r in only_a] == ["s1"]


@pytest.mark.chdb
def test_agreement_in_force(store: Any) -> None:
    def accepted(subject: str, version: str, at: str, **kw: Any) -> dict[str, Any]:
        return agreement_acceptance(
            subject=subject, agreement_version=version, occurred_at=ts(at), **kw
        )

    a1 = accepted("subj-a", "1.0", "2026-03-01 09:00")
    a2 = accepted("subj-a", "1.1", "2026-03-15 10:00", channel="web")
    a3 = accepted("subj-a", "2.0", "2026-04-01 08:00")  # after `at`: not yet in force
    privacy = accepted("subj-a", "3", "2026-03-02 09:00", agreement_id="privacy-policy")
    b1 = accepted("subj-b", "1.0", "2026-03-20 12:00", channel="api")
    late = accepted("subj-c", "1.1", "2026-03-25 00:00")  # accepted only after `at` below
    # recorded after `at`, but accepted before it: accepted_at is what counts
    backdated = accepted("subj-d", "1.0", "2026-03-28 00:00", accepted_at=ts("2026-03-05 07:00"))
    other_kinds = [identity_verification(subject="subj-a"), legal_hold(hold_target="subj-a")]
    insert(store, DATA_HANDLING, [a1, a2, a3, privacy, b1, late, backdated, *other_kinds])
    # a retried insert of one event (before ReplacingMergeTree merges it) answers once
    insert(store, DATA_HANDLING, [a2])

    rows = run(store, "agreement_in_force", at="2026-03-20T12:00:00Z")
    assert rows == [
        {
            "subject": "subj-a",
            "agreement_id": "privacy-policy",
            "agreement_version": "3",
            "accepted_at": out("2026-03-02 09:00"),
            "channel": "app",
            "service_id": "svc-chat",
            "event_id": str(privacy["event_id"]),
        },
        {
            "subject": "subj-a",
            "agreement_id": "user-terms",
            "agreement_version": "1.1",
            "accepted_at": out("2026-03-15 10:00"),
            "channel": "web",
            "service_id": "svc-chat",
            "event_id": str(a2["event_id"]),
        },
        {
            "subject": "subj-b",
            "agreement_id": "user-terms",
            "agreement_version": "1.0",
            "accepted_at": out("2026-03-20 12:00"),  # at `at` exactly: in force
            "channel": "api",
            "service_id": "svc-chat",
            "event_id": str(b1["event_id"]),
        },
        {
            "subject": "subj-d",
            "agreement_id": "user-terms",
            "agreement_version": "1.0",
            "accepted_at": out("2026-03-05 07:00"),
            "channel": "app",
            "service_id": "svc-chat",
            "event_id": str(backdated["event_id"]),
        },
    ]

    def versions(**params: str) -> list[tuple[str, str, str]]:
        return [
            (r["subject"], r["agreement_id"], r["agreement_version"])
            for r in run(store, "agreement_in_force", **params)
        ]

    # one subject, one agreement
    only_a = versions(at="2026-03-20", subject="subj-a", agreement_id="user-terms")
    assert only_a == [("subj-a", "user-terms", "1.1")]
    # a microsecond before the 1.1 acceptance, 1.0 was in force
    assert versions(at="2026-03-15T09:59:59.999999Z", subject="subj-a") == [
        ("subj-a", "privacy-policy", "3"),
        ("subj-a", "user-terms", "1.0"),
    ]
    # before anything was accepted, and for a subject that never accepted: no row
    assert versions(at="2026-02-28") == []
    assert versions(at="2026-03-20", subject="subj-nobody") == []
    # later, the later acceptances are in force
    assert versions(at="2026-04-02", agreement_id="user-terms") == [
        ("subj-a", "user-terms", "2.0"),
        ("subj-b", "user-terms", "1.0"),
        ("subj-c", "user-terms", "1.1"),
        ("subj-d", "user-terms", "1.0"),
    ]


@pytest.mark.chdb
def test_complaints_overdue(store: Any) -> None:
    k2 = complaint(complaint_id="k2", occurred_at=ts("2026-03-02"))
    k3 = complaint(complaint_id="k3", occurred_at=ts("2026-03-03"), subject="subj-3")
    k3_answered = update(
        k3,
        occurred_at=ts("2026-03-12"),
        complaint_handled_at=ts("2026-03-11"),
        complaint_feedback_at=ts("2026-03-12"),
    )
    k5 = complaint(complaint_id="k5", occurred_at=ts("2026-03-04"))
    rows = [
        complaint(complaint_id="k1", occurred_at=ts("2026-03-01")),
        k2,
        update(k2, occurred_at=ts("2026-03-05"), complaint_feedback_at=ts("2026-03-05")),
        k3,
        k3_answered,
        complaint(complaint_id="k4", occurred_at=ts("2026-03-15")),
        k5,
        update(k5, occurred_at=ts("2026-03-25"), complaint_feedback_at=ts("2026-03-25")),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "complaints_overdue", as_of="2026-03-20")
    assert [(r["complaint_id"], r["late_feedback"], r["days_overdue"]) for r in got] == [
        ("k1", False, 12.0),
        ("k3", True, 2.0),
        ("k5", False, 9.0),  # feedback only on 03-25: still open at 03-20
    ]
    assert got[1] == {
        "complaint_id": "k3",
        "service_id": "svc-chat",
        "case_id": "case-k3",
        "subject": "subj-3",
        "channel": "in_app",
        "received_at": out("2026-03-03"),
        "due_by": out("2026-03-10"),
        "handled_at": out("2026-03-11"),
        "feedback_at": out("2026-03-12"),
        "late_feedback": True,
        "days_overdue": 2.0,
        "event_id": str(k3_answered["event_id"]),
    }
    later = run(store, "complaints_overdue", as_of="2026-04-01")
    assert [(r["complaint_id"], r["late_feedback"], r["days_overdue"]) for r in later] == [
        ("k1", False, 24.0),
        ("k3", True, 2.0),
        ("k5", True, 14.0),
        ("k4", False, 10.0),
    ]


@pytest.mark.chdb
def test_personal_information_requests_open(store: Any) -> None:
    p2 = pi_request(request_id="p2", occurred_at=ts("2026-03-20"), request_kind="access")
    p3 = pi_request(request_id="p3", occurred_at=ts("2026-03-01"))
    p4 = pi_request(request_id="p4", occurred_at=ts("2026-03-02"), subject="subj-4")
    p4_done = update(
        p4, occurred_at=ts("2026-03-20"), status="completed", completed_at=ts("2026-03-20")
    )
    p5 = pi_request(request_id="p5", occurred_at=ts("2026-03-03"))
    rows = [
        pi_request(request_id="p1", occurred_at=ts("2026-03-01")),
        p2,
        update(p2, occurred_at=ts("2026-03-21"), status="in_progress"),
        p3,
        update(p3, occurred_at=ts("2026-03-10"), status="completed", completed_at=ts("2026-03-10")),
        p4,
        update(p4, occurred_at=ts("2026-03-05"), status="in_progress"),
        p4_done,
        p5,
        update(p5, occurred_at=ts("2026-03-19"), status="refused", completed_at=ts("2026-03-19")),
    ]
    insert(store, DATA_HANDLING, rows)
    got = run(store, "personal_information_requests_open", as_of="2026-04-01")
    summary = [(r["request_id"], r["status"], r["open"], r["late"], r["days_late"]) for r in got]
    assert summary == [
        ("p1", "received", True, True, 16.0),
        ("p4", "completed", False, True, 3.0),
        ("p5", "refused", False, True, 1.0),
        ("p2", "in_progress", True, False, 0.0),
    ]
    assert got[1] == {
        "request_id": "p4",
        "service_id": "svc-chat",
        "subject": "subj-4",
        "request_kind": "delete",
        "status": "completed",
        "received_at": out("2026-03-02"),
        "due_at": out("2026-03-17"),
        "completed_at": out("2026-03-20"),
        "open": False,
        "late": True,
        "days_late": 3.0,
        "event_id": str(p4_done["event_id"]),
    }
    # at 03-15 p4 was in progress and not yet due; p3 and p5 were still open and not yet due
    early = run(store, "personal_information_requests_open", as_of="2026-03-15")
    assert [(r["request_id"], r["status"], r["late"]) for r in early] == [
        ("p1", "received", False),
        ("p4", "in_progress", False),
        ("p5", "received", False),
    ]


@pytest.mark.chdb
def test_label_coverage(store: Any) -> None:
    text = {"occurred_at": ts("2026-04-02")}
    image = {
        "occurred_at": ts("2026-04-03"),
        "modality": "image",
        "model_name": "image-model",
        "model_version": "2.1",
    }
    rows = [
        generation(**text),
        generation(**text, implicit_label=False),
        generation(**text, explicit_label=False, implicit_label=False),
        generation(**image),
        generation(**image, explicit_label=False, unlabelled_on_request=True),
        generation(occurred_at=ts("2026-05-01"), explicit_label=False),
        generation(occurred_at=ts("2026-03-31 23:59:59.999999"), explicit_label=False),
    ]
    insert(store, GENERATIONS, rows)
    got = run(store, "label_coverage", **{"from": "2026-04-01", "to": "2026-05-01"})
    assert got == [
        {
            "modality": "image",
            "model_name": "image-model",
            "model_version": "2.1",
            "generations": 2,
            "explicit_labels": 1,
            "explicit_share": 0.5,
            "implicit_labels": 2,
            "implicit_share": 1.0,
            "unlabelled": 0,
            "unlabelled_on_request": 1,
        },
        {
            "modality": "text",
            "model_name": "chat-model",
            "model_version": "1.0",
            "generations": 3,
            "explicit_labels": 2,
            "explicit_share": 0.6667,
            "implicit_labels": 1,
            "implicit_share": 0.3333,
            "unlabelled": 1,
            "unlabelled_on_request": 0,
        },
    ]


@pytest.mark.chdb
def test_generations_without_filing(store: Any) -> None:
    x = {"service_id": "svc-a", "model_name": "model-x", "model_version": "0.1"}
    rows = [
        generation(**x, filing_number=None, subject="s1", occurred_at=ts("2026-04-02")),
        generation(**x, filing_number=None, subject="s2", occurred_at=ts("2026-04-05")),
        generation(**x, filing_number="", subject="s1", occurred_at=ts("2026-04-06")),
        generation(**x, filing_number=None, occurred_at=ts("2026-05-01")),
        generation(
            service_id="svc-b",
            model_name="model-y",
            filing_number="  ",
            occurred_at=ts("2026-04-03"),
        ),
        generation(service_id="svc-a", occurred_at=ts("2026-04-04")),
    ]
    insert(store, GENERATIONS, rows)
    got = run(store, "generations_without_filing", **{"from": "2026-04-01", "to": "2026-05-01"})
    assert got == [
        {
            **x,
            "generations": 3,
            "subjects": 2,
            "first_seen": out("2026-04-02"),
            "last_seen": out("2026-04-06"),
        },
        {
            "service_id": "svc-b",
            "model_name": "model-y",
            "model_version": "1.0",
            "generations": 1,
            "subjects": 1,
            "first_seen": out("2026-04-03"),
            "last_seen": out("2026-04-03"),
        },
    ]


@pytest.mark.chdb
def test_trail_integrity(store: Any) -> None:
    insert(
        store,
        BATCHES,
        [
            batch(sequence=0, event_count=10, created_at=ts("2026-03-01 10:00")),
            batch(sequence=1, event_count=5, created_at=ts("2026-03-01 10:01")),
            batch(sequence=2, event_count=7, created_at=ts("2026-03-01 10:02")),
        ],
    )
    insert(
        store,
        QUARANTINE,
        [
            quarantined(offset=10),
            quarantined(offset=11),
            quarantined(offset=12, reason="chain_gap"),
            quarantined(offset=13, producer_id="producer-2", reason="merkle_root_mismatch"),
            quarantined(offset=14, producer_id=None, reason="not_a_batch"),
        ],
    )
    insert(
        store,
        CHAIN_FINDINGS,
        [finding(offset=12), finding(offset=20, producer_id="producer-3", kind="chain_fork")],
    )
    got = run(store, "trail_integrity")
    empty: dict[str, Any] = {
        "batches": 0,
        "events": 0,
        "last_batch_at": None,
        "last_sequence": None,
        "quarantined": 0,
        "quarantined_by_reason": [],
        "chain_findings": 0,
        "gaps": 0,
        "forks": 0,
        "findings_by_kind": [],
    }
    assert got == [
        {
            **empty,
            "producer_id": "(unknown)",
            "quarantined": 1,
            "quarantined_by_reason": ["not_a_batch: 1"],
        },
        {
            "producer_id": "producer-1",
            "batches": 3,
            "events": 22,
            "last_batch_at": out("2026-03-01 10:02"),
            "last_sequence": 2,
            "quarantined": 3,
            "quarantined_by_reason": ["bad_signature: 2", "chain_gap: 1"],
            "chain_findings": 1,
            "gaps": 1,
            "forks": 0,
            "findings_by_kind": ["chain_gap: 1"],
        },
        {
            **empty,
            "producer_id": "producer-2",
            "quarantined": 1,
            "quarantined_by_reason": ["merkle_root_mismatch: 1"],
        },
        {
            **empty,
            "producer_id": "producer-3",
            "chain_findings": 1,
            "forks": 1,
            "findings_by_kind": ["chain_fork: 1"],
        },
    ]
    window = run(store, "trail_integrity", **{"from": "2026-03-01T10:00:30", "to": "2026-03-02"})
    assert [(r["producer_id"], r["batches"], r["events"], r["quarantined"]) for r in window] == [
        ("producer-1", 2, 12, 0)
    ]
