"""End to end, on the embedded log and on a real Kafka broker: services emit a known mix through
the client library, the materialiser verifies and stores it, and the inspection queries give exact
answers about it. One suite, run against every bus."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from aigc_audit.consumers.query.pack import bind_params, get_query, run_query
from aigc_audit.producers.events import (
    AuthorityReport,
    Complaint,
    ImplicitLabel,
    LegalHold,
    ModerationAction,
    PersonalInformationRequest,
    SafetyEvaluation,
    TrainingDataIntake,
    UserSanction,
)
from tests.harness import T0, Harness, generation
from tests.kafka_broker import security_settings

pytestmark = [pytest.mark.chdb, pytest.mark.e2e]

AS_OF = T0 + timedelta(days=30)
DAY = timedelta(days=1)


def case(case_id: str, risk: str, minutes: int, **extra: Any) -> ModerationAction:
    detected = T0 + timedelta(minutes=minutes)
    fields: dict[str, Any] = {
        "case_id": case_id,
        "target": "generation",
        "target_ref": f"req-{minutes}",
        "subject": "subject-1",
        "model_name": "chat-model",
        "model_version": "1.0",
        "detection_source": "output_filter",
        "risk_category": risk,
        "action": "block_generation",
        "detected_at": detected,
        "acted_at": detected + timedelta(seconds=30),
        "occurred_at": detected + timedelta(seconds=30),
    }
    fields.update(extra)
    return ModerationAction(**fields)


def complaint(cid: str, **extra: Any) -> Complaint:
    fields: dict[str, Any] = {
        "case_id": cid,
        "complaint_id": cid,
        "channel": "in_app",
        "target_ref": "req-1",
        "subject": "subject-4",
        "received_at": T0,
        "due_by": T0 + 15 * DAY,
        "occurred_at": T0,
    }
    fields.update(extra)
    return Complaint(**fields)


def pi_request(
    rid: str, kind: str, status: str, at: Any, **extra: Any
) -> PersonalInformationRequest:
    return PersonalInformationRequest(
        subject="subject-5",
        request_id=rid,
        request_kind=kind,
        received_at=T0,
        due_at=T0 + 21 * DAY,
        status=status,
        occurred_at=at,
        **extra,
    )


@pytest.fixture(scope="module", params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Harness, dict[str, Any]]]:
    bus: dict[str, Any] = {}
    if request.param == "kafka":
        broker = request.getfixturevalue("kafka_broker")
        bus = {
            "bus": "kafka",
            "bootstrap": broker.bootstrap,
            "topic_prefix": "e2e",
            "consumer_group": "e2e-materialiser",
            "partitions": 3,
            **security_settings(broker),
        }
    h = Harness(tmp_path_factory.mktemp("e2e") / "data", batch_size=7, **bus)
    chat = [generation(n) for n in range(15)]
    chat += [generation(n, model_name="beta-model", filing_number=None) for n in range(15, 20)]
    label = ImplicitLabel(content_producer="provider-001", produce_id="img-0")
    images = [
        generation(
            100 + n,
            modality="image",
            model_name="image-model",
            input_tokens=None,
            output_tokens=None,
            output_bytes=200_000,
            explicit_label=n < 3,
            implicit_label=label.model_copy(update={"produce_id": f"img-{n}"}) if n < 3 else None,
        )
        for n in range(4)
    ]
    case1 = case("case-1", "A.1.6", 60)
    ids: dict[str, Any] = {}
    h.emit("chat-1", chat, batch_size=7)
    h.emit("image-1", images, batch_size=7)

    moderation: list[Any] = [
        case1,
        case("case-2", "A.1.7", 120, acted_at=T0 + timedelta(minutes=121, seconds=30)),
        case("case-3", "A.4.5", 180),
        # case-1 is reported to the authority in a later update of the same case.
        case1.model_copy(
            update={
                "event_id": case("x", "A.1.6", 0).event_id,
                "occurred_at": T0 + 2 * DAY,
                "authority_report": AuthorityReport(
                    reported=True,
                    authority="Beijing CAC",
                    reference="R-1",
                    reported_at=T0 + 2 * DAY,
                ),
            }
        ),
        complaint("cmp-1"),
        complaint("cmp-1", handled_at=T0 + DAY, feedback_at=T0 + 2 * DAY, occurred_at=T0 + 2 * DAY),
        complaint("cmp-2"),
        UserSanction(
            sanction_id="s-1",
            subject="subject-1",
            action="warning",
            reason_category="A.1.6",
            evidence=[str(case1.event_id)],
            effective_from=T0 + timedelta(hours=1),
            occurred_at=T0 + timedelta(hours=1),
        ),
        UserSanction(
            sanction_id="s-2",
            subject="subject-2",
            action="suspension",
            reason_category="A.1.7",
            evidence=[str(case1.event_id)],
            effective_from=T0 + timedelta(hours=2),
            effective_until=T0 + 9 * DAY,
            occurred_at=T0 + timedelta(hours=2),
        ),
        UserSanction(
            sanction_id="s-3",
            subject="subject-3",
            action="termination",
            reason_category="A.1.6",
            evidence=[str(case1.event_id)],
            effective_from=T0 + timedelta(hours=3),
            occurred_at=T0 + timedelta(hours=3),
        ),
        UserSanction(
            sanction_id="s-3",
            subject="subject-3",
            action="reinstatement",
            reason_category="A.1.6",
            effective_from=T0 + 10 * DAY,
            occurred_at=T0 + 10 * DAY,
        ),
        pi_request("pir-1", "delete", "received", T0),
        pi_request("pir-1", "delete", "completed", T0 + 5 * DAY, completed_at=T0 + 5 * DAY),
        pi_request("pir-2", "access", "received", T0),
        pi_request("pir-2", "access", "in_progress", T0 + DAY),
        TrainingDataIntake(
            dataset_id="ds-1",
            source="licensed news archive",
            source_kind="licensed",
            legal_basis="licence L-1",
            contains_personal_information=False,
            size_bytes=10**9,
            record_count=10**6,
            model_name="chat-model",
            model_version="1.0",
            occurred_at=T0,
        ),
        LegalHold(
            subject="subject-2",
            hold_id="hold-1",
            hold_scope="subject",
            hold_target="subject-2",
            hold_action="place",
            hold_reason="authority inquiry",
            requested_by="Beijing CAC",
            occurred_at=T0 + 3 * DAY,
        ),
        LegalHold(
            hold_id="hold-2",
            hold_scope="case",
            hold_target="case-3",
            hold_action="place",
            hold_reason="litigation",
            occurred_at=T0 + 3 * DAY,
        ),
        LegalHold(
            hold_id="hold-2",
            hold_scope="case",
            hold_target="case-3",
            hold_action="release",
            hold_reason="litigation settled",
            occurred_at=T0 + 20 * DAY,
        ),
        SafetyEvaluation(
            model_name="chat-model",
            model_version="1.0",
            generated_test_size=2000,
            qualified_rate=0.95,
            should_refuse_test_size=1000,
            refusal_rate=0.97,
            should_answer_test_size=1000,
            false_refusal_rate=0.02,
            occurred_at=T0,
        ),
    ]
    h.emit("trust-1", moderation, batch_size=7)
    ids["stats"] = h.materialise()
    yield h, ids
    h.close()


def answer(h: Harness, name: str, **params: Any) -> list[dict[str, Any]]:
    query = get_query(name)
    given = {k: v.isoformat() if hasattr(v, "isoformat") else str(v) for k, v in params.items()}
    return run_query(h.deployment.store(), query, bind_params(query, given)).as_dicts()


def test_exact_counts_per_family(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, ids = pipeline
    assert h.count("generations") == 24
    assert h.count("moderation_actions") == 7
    assert h.count("moderation_actions", "event_type = 'complaint'") == 3
    assert h.count("user_sanctions") == 4
    assert h.count("data_handling") == 9
    assert h.count("events") == 24 + 7 + 4 + 9
    assert h.count("quarantine") == 0
    assert h.count("chain_findings") == 0
    # 20 + 4 + 20 events in batches of at most 7
    assert h.count("batches") == 3 + 1 + 3
    assert ids["stats"].events_materialised == 44
    per_type = dict(
        h.query("SELECT event_type, count() FROM audit.events GROUP BY event_type").rows
    )
    assert per_type == {
        "generation": 24,
        "moderation_action": 4,
        "complaint": 3,
        "user_sanction": 4,
        "personal_information_request": 4,
        "training_data_intake": 1,
        "safety_evaluation": 1,
        "legal_hold": 3,
    }


def test_stored_events_are_the_signed_bytes(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    bad = h.query(
        "SELECT count() FROM audit.events WHERE leaf_hash != unhex(hex(SHA256(concat('\\x00', "
        "event_bytes))))"
    ).rows
    assert bad == [(0,)]
    # Each batch's Merkle root is recomputable from the stored events alone.
    from aigc_audit.producers.merkle import root_from_leaf_hashes

    for producer, seq, root in h.query(
        "SELECT producer_id, sequence, hex(merkle_root) FROM audit.batches"
    ).rows:
        leaves = h.query(
            "SELECT hex(leaf_hash) FROM audit.events WHERE producer_id = {p:String} "
            "AND batch_sequence = {s:UInt64} ORDER BY leaf_index",
            {"p": producer, "s": seq},
        ).rows
        assert root_from_leaf_hashes([bytes.fromhex(r[0]) for r in leaves]).hex().upper() == root


def test_incidents_not_reported(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "incidents_not_reported", as_of=AS_OF)
    assert [r["case_id"] for r in rows] == ["case-2"]  # case-1 was reported; case-3 is not A.1


def test_incidents_by_risk_category(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "incidents_by_risk_category", **{"from": T0, "to": AS_OF})
    by_code = {r["risk_category"]: r for r in rows}
    assert set(by_code) == {"A.1.6", "A.1.7", "A.4.5"}
    assert by_code["A.1.7"]["cases"] == 1
    assert by_code["A.1.7"]["max_seconds_to_action"] == 90


def test_complaints_past_deadline(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "complaints_overdue", as_of=AS_OF)
    assert [(r["complaint_id"], r["days_overdue"]) for r in rows] == [("cmp-2", 15.0)]


def test_sanctions_in_force(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    early = answer(h, "sanctions_in_force", at=T0 + 5 * DAY)
    assert [r["sanction_id"] for r in early] == ["s-1", "s-2", "s-3"]
    late = answer(h, "sanctions_in_force", at=AS_OF)
    assert [r["sanction_id"] for r in late] == ["s-1"]  # s-2 expired, s-3 lifted


def test_personal_information_requests(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "personal_information_requests_open", as_of=AS_OF)
    assert [(r["request_id"], r["status"], r["late"], r["days_late"]) for r in rows] == [
        ("pir-2", "in_progress", True, 9.0)
    ]


def test_label_coverage(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "label_coverage", **{"from": T0, "to": AS_OF})
    image = next(r for r in rows if r["modality"] == "image")
    assert (image["generations"], image["explicit_labels"], image["implicit_labels"]) == (4, 3, 3)
    assert image["unlabelled"] == 1


def test_generations_without_filing(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "generations_without_filing", **{"from": T0, "to": AS_OF})
    assert [(r["service_id"], r["model_name"], r["generations"]) for r in rows] == [
        ("chat", "beta-model", 5)
    ]


def test_subject_history(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "subject_history", subject="subject-3")
    kinds = [r["event_type"] for r in rows]
    # generations 3, 10, 17 and image 101 belong to subject-3 (n % 7), then the sanction steps
    assert kinds.count("generation") == 4
    assert kinds[-2:] == ["user_sanction", "user_sanction"]


def test_trail_integrity(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    rows = answer(h, "trail_integrity")
    by_producer = {r["producer_id"]: r for r in rows}
    assert {p: (r["batches"], r["events"], r["quarantined"]) for p, r in by_producer.items()} == {
        "chat-1": (3, 20, 0),
        "image-1": (1, 4, 0),
        "trust-1": (3, 20, 0),
    }


def test_legal_holds_in_force(pipeline: tuple[Harness, dict[str, Any]]) -> None:
    h, _ = pipeline
    during = answer(h, "legal_holds_in_force", as_of=T0 + 10 * DAY)
    assert [(r["scope"], r["target"], r["hold_id"]) for r in during] == [
        ("case", "case-3", "hold-2"),
        ("subject", "subject-2", "hold-1"),
    ]
    after = answer(h, "legal_holds_in_force", as_of=AS_OF)
    assert [(r["target"], r["requested_by"]) for r in after] == [("subject-2", "Beijing CAC")]
