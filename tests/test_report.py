"""The HTML inspection report: known answers per duty on a real chDB store, selection scoping,
and a page that is self-contained, bilingual, escaped, and shows every chart's numbers."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.query.selection import Selection
from aigc_audit.consumers.report import Figure, Report, build_report, write_report
from aigc_audit.consumers.report import svg as svgmod
from aigc_audit.consumers.report.model import NO_DATA, NONE_FOUND, Chart, Column
from aigc_audit.consumers.store.tables import (
    BATCHES,
    CHAIN_FINDINGS,
    CHECKPOINTS,
    DATA_HANDLING,
    EVENTS,
    FAMILY_TABLES,
    GENERATIONS,
    MODERATION_ACTIONS,
    QUARANTINE,
    USER_SANCTIONS,
    Table,
)
from tests.store_rows import (
    annotation_check,
    batch,
    complaint,
    digest,
    finding,
    generation,
    insert,
    moderation,
    pi_request,
    quarantined,
    safety_evaluation,
    sanction,
    training_intake,
    ts,
    update,
)

NOW = ts("2026-03-20 12:00")
FAMILY_OF = {table.name: family for family, table in FAMILY_TABLES.items()}
TABLES = (
    EVENTS,
    GENERATIONS,
    MODERATION_ACTIONS,
    USER_SANCTIONS,
    DATA_HANDLING,
    BATCHES,
    QUARANTINE,
    CHAIN_FINDINGS,
    CHECKPOINTS,
)


# --------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chDB session for the module (chDB allows one per process; opening is slow)."""
    pytest.importorskip("chdb")
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    store = EmbeddedStore(Path(tmp_path_factory.mktemp("report")) / "store")
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def store(module_store: Any) -> Any:
    """The module's store with every table the report reads emptied."""
    for table in TABLES:
        module_store.command(f"TRUNCATE TABLE {module_store.database}.{table.name}")
    return module_store


def event_row(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``events`` row the materialiser writes beside a typed row."""
    return {
        "event_id": row["event_id"],
        "event_type": row.get("event_type", table.name.rstrip("s")),
        "family": FAMILY_OF[table.name],
        "occurred_at": row["occurred_at"],
        "service_id": row["service_id"],
        "producer_id": row["producer_id"],
        "schema_version": 1,
        "schema_fingerprint": b"\x00" * 8,
        "batch_sequence": 0,
        "leaf_index": 0,
        "leaf_hash": digest(str(row["event_id"])),
        "event_bytes": b"",
        "hold_keys": row["hold_keys"],
    }


def put(store: Any, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Insert typed rows and their ``events`` rows, with hold keys ``subject:<id>`` (and
    ``case:<id>``) as the materialiser derives them; the rows as inserted."""
    done = []
    for row in rows:
        keys = [f"subject:{row['subject']}"] if row.get("subject") else []
        if row.get("case_id"):
            keys.append(f"case:{row['case_id']}")
        done.append({**row, "hold_keys": keys})
    insert(store, table, done)
    insert(store, EVENTS, [event_row(table, r) for r in done])
    return done


def report(store: Any, selection: Selection | None = None, **kw: Any) -> Report:
    return build_report(store, selection or Selection(), now=kw.pop("now", NOW), **kw)


def section_html(html: str, key: str) -> str:
    match = re.search(rf'<section class="duty" id="sec-{key}".*?</section>', html, re.S)
    assert match, f"no section {key}"
    return match.group(0)


def figure_html(html: str, key: str) -> str:
    match = re.search(rf'<figure class="fig" id="fig-{key}">.*?</figure>', html, re.S)
    assert match, f"no figure {key}"
    return match.group(0)


def table_cells(fragment: str) -> list[list[str]]:
    """The text of each body row's cells of the first numbers table in ``fragment``."""
    body = re.search(r"<tbody>(.*?)</tbody>", fragment, re.S)
    assert body
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def inclusive_quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, ClickHouse's
    quantileExactInclusive)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


# --------------------------------------------------------------------------------------------
# 1. volumes, and scoping by the selection


def test_volumes_count_by_modality_service_and_model(store: Any) -> None:
    day1, day3 = ts("2026-03-01 09:00"), ts("2026-03-03 09:00")
    put(
        store,
        GENERATIONS,
        [
            *(generation(modality="text", occurred_at=day1) for _ in range(3)),
            *(
                generation(modality="image", service_id="svc-image", occurred_at=day3)
                for _ in range(2)
            ),
            generation(
                modality="video",
                service_id="svc-image",
                model_name="视频模型",
                model_version="2.0",
                occurred_at=day3,
                minor_mode=True,
            ),
        ],
    )
    rep = report(store)
    volumes = rep.section("volumes")
    by_modality = volumes.figure("by_modality")
    assert {r["modality"]: r["generations"] for r in by_modality.as_dicts()} == {
        "text": 3,
        "image": 2,
        "video": 1,
    }
    assert by_modality.lookup("modality", "image")["name"] == "图片 image"
    assert {r["service"]: r["generations"] for r in volumes.figure("by_service").as_dicts()} == {
        "svc-chat": 3,
        "svc-image": 3,
    }
    by_model = volumes.figure("by_model")
    assert by_model.lookup("model", "chat-model 1.0")["generations"] == 5
    assert by_model.lookup("model", "视频模型 2.0")["generations"] == 1
    assert volumes.fact("generations") == 6
    assert volumes.fact("minor_mode") == 1
    assert rep.event_count == 6
    assert rep.family_counts == {"aigc.audit.Generation": 6}

    # The timeline fills the empty day between with zero: an outage shows as a hole.
    timeline = volumes.figure("events_per_period")
    assert [(r["period"], r["generations"], r["total"]) for r in timeline.as_dicts()] == [
        ("2026-03-01", 3, 3),
        ("2026-03-02", 0, 0),
        ("2026-03-03", 3, 3),
    ]

    # The same numbers are in the HTML table beside the chart.
    cells = table_cells(figure_html(section_html(rep.html, "volumes"), "by_modality"))
    assert ["text", "文本 text", "3", "1", "0"] in cells
    assert ["image", "图片 image", "2", "1", "0"] in cells
    assert ["video", "视频 video", "1", "1", "0"] in cells


def test_a_selection_by_subject_shows_only_that_subjects_events(store: Any) -> None:
    put(store, GENERATIONS, [generation(subject="u-a"), generation(subject="u-a")])
    put(store, GENERATIONS, [generation(subject="u-b", modality="image") for _ in range(3)])
    put(store, MODERATION_ACTIONS, [moderation(subject="u-b")])
    put(store, USER_SANCTIONS, [sanction(subject="u-b")])
    insert(store, QUARANTINE, [quarantined()])

    everyone = report(store)
    assert everyone.section("volumes").fact("generations") == 5
    assert not everyone.section("incidents").empty

    only_a = report(store, Selection(subject="u-a"))
    assert only_a.event_count == 2
    volumes = only_a.section("volumes")
    assert volumes.fact("generations") == 2
    assert volumes.fact("subjects") == 1
    assert [r["modality"] for r in volumes.figure("by_modality").as_dicts()] == ["text"]
    for key in ("incidents", "reports", "sanctions", "deadlines", "governance"):
        section = only_a.section(key)
        assert section.empty, key
        assert NO_DATA in section_html(only_a.html, key)
        assert "<svg" not in section_html(only_a.html, key)
    # The trail's health is about the whole log, not one subject.
    assert only_a.section("trail").figure("quarantine").values("messages") == [1]
    assert "u-a" in only_a.html

    # A family selection narrows the same way.
    sanctions_only = report(store, Selection(families=("UserSanction",)))
    assert sanctions_only.event_count == 1
    assert sanctions_only.section("volumes").figure("by_modality").rows == []
    assert sanctions_only.section("labels").empty
    assert sanctions_only.section("sanctions").fact("steps") == 1


# --------------------------------------------------------------------------------------------
# 2-3. incidents, time to action, reports to the authority


def _case(start: datetime, seconds: float | None, **kw: Any) -> dict[str, Any]:
    acted = None if seconds is None else start + timedelta(seconds=seconds)
    return moderation(occurred_at=start, detected_at=start, acted_at=acted, **kw)


def test_incidents_count_each_case_once_with_time_to_action(store: Any) -> None:
    t0 = ts("2026-03-02 08:00")
    a1 = [_case(t0, s, risk_category="A.1.6") for s in (10, 20, 30, 40)]
    escalated = _case(t0, None, risk_category="A.1.7", action="escalate")
    decided = update(
        escalated,
        occurred_at=t0 + timedelta(seconds=100),
        action="delete",
        acted_at=t0 + timedelta(seconds=100),
    )
    a4 = _case(t0, 60, risk_category="A.4.3", model_name="image-model", model_version="3")
    pending = _case(t0, None, risk_category="A.2.5", action="escalate")
    cleared = _case(t0, 5, risk_category=None, action="no_action")
    put(store, MODERATION_ACTIONS, [*a1, escalated, decided, a4, pending, cleared])

    section = report(store).section("incidents")
    by_risk = section.figure("by_risk")
    assert {r["code"]: r["cases"] for r in by_risk.as_dicts()} == {
        "A.1.6": 4,
        "A.1.7": 1,  # two events, one case, in its latest state
        "A.2.5": 1,
        "A.4.3": 1,
    }
    assert by_risk.lookup("code", "A.2.5")["not_acted"] == 1
    assert by_risk.lookup("code", "A.1.7")["not_acted"] == 0
    assert by_risk.lookup("code", "A.1.6")["short"] == "A.1.6 宣扬暴力、淫秽色情"

    timing = section.figure("time_to_action")
    a1_times = [10, 20, 30, 40, 100]
    row = timing.lookup("category", "A.1")
    assert row["cases"] == 5
    assert row["p50"] == pytest.approx(inclusive_quantile(a1_times, 0.5))  # 30
    assert row["p90"] == pytest.approx(inclusive_quantile(a1_times, 0.9))  # 76
    assert row["max"] == pytest.approx(100)
    everything = timing.lookup("category", "all")
    assert everything["cases"] == 7
    assert everything["not_acted"] == 1
    assert everything["p50"] == pytest.approx(inclusive_quantile([*a1_times, 60], 0.5))
    assert section.fact("p90_seconds") == pytest.approx(inclusive_quantile([*a1_times, 60], 0.9))
    assert section.fact("incidents") == 7
    assert section.fact("not_acted") == 1
    assert section.figure("by_model").lookup("model", "image-model 3")["cases"] == 1
    assert any("not yet acted on" in f for f in section.findings)


def test_rectifications_overdue_at_the_judging_time(store: Any) -> None:
    t0 = ts("2026-01-05")
    ticket = {"rectification_opened_at": t0}
    open_late = _case(
        t0, 1, rectification_ticket="RT-1", rectification_due_at=ts("2026-03-01"), **ticket
    )
    closed = _case(
        t0, 1, rectification_ticket="RT-2", rectification_due_at=ts("2026-04-05"), **ticket
    )
    closing = update(closed, occurred_at=ts("2026-02-01"), rectification_closed_at=ts("2026-02-01"))
    open_ok = _case(
        t0, 1, rectification_ticket="RT-3", rectification_due_at=ts("2026-04-05"), **ticket
    )
    put(store, MODERATION_ACTIONS, [open_late, closed, closing, open_ok])
    rows = report(store).section("incidents").figure("rectifications").as_dicts()
    assert rows == [
        {"model": "chat-model 1.0", "tickets": 3, "on_time": 1, "late": 0, "open": 1, "overdue": 1},
    ]
    # Judged at the end of a selection that ends before RT-1 fell due: nothing overdue.
    early = report(store, Selection(until=ts("2026-02-15")))
    assert early.as_of == ts("2026-02-15")
    rows = early.section("incidents").figure("rectifications").as_dicts()
    assert (rows[0]["on_time"], rows[0]["open"], rows[0]["overdue"]) == (1, 2, 0)


def test_reports_to_the_authority(store: Any) -> None:
    t0 = ts("2026-03-01 10:00")
    reported = _case(t0, 30, risk_category="A.1.1", case_id="case-rep")
    reported_later = update(
        reported,
        occurred_at=t0 + timedelta(hours=2),
        reported=True,
        authority="CAC Beijing",
        reported_at=t0 + timedelta(hours=2),
    )
    unreported = _case(t0 + timedelta(hours=1), 30, risk_category="A.1.7", case_id="case-open")
    voluntary = _case(t0, 30, risk_category="A.2.5", case_id="case-a2")
    put(store, MODERATION_ACTIONS, [reported, reported_later, unreported, voluntary])
    put(
        store,
        USER_SANCTIONS,
        [sanction(action="termination", reported=True, authority="CAC Beijing", reported_at=t0)],
    )

    section = report(store).section("reports")
    assert section.fact("illegal") == 2
    assert section.fact("illegal_reported") == 1
    assert section.fact("illegal_unreported") == 1
    hours = (NOW - (t0 + timedelta(hours=1))).total_seconds() / 3600
    assert section.fact("oldest_unreported_hours") == pytest.approx(hours)
    a1 = section.figure("by_category").lookup("category", "A.1")
    assert (a1["cases"], a1["reported"], a1["unreported"]) == (2, 1, 1)
    assert a1["p50_hours"] == pytest.approx(2.0)
    assert section.figure("by_category").lookup("category", "A.2")["unreported"] == 1
    assert section.figure("by_authority").as_dicts() == [
        {"authority": "CAC Beijing", "cases": 1, "sanctions": 1, "total": 2}
    ]
    unreported_rows = section.figure("unreported").as_dicts()
    assert [r["case_id"] for r in unreported_rows] == ["case-open"]  # A.2 is not required
    assert unreported_rows[0]["hours"] == pytest.approx(hours)


def test_a_named_query_selection_keeps_its_own_parameters(store: Any) -> None:
    """The report's own parameters are prefixed ``rep_``: a named query's ``as_of`` must reach
    the selection unchanged, not be replaced by the report's judging time."""
    t0 = ts("2026-03-01 10:00")
    case = _case(t0, 30, risk_category="A.1.6", case_id="case-q")
    later = update(case, occurred_at=ts("2026-03-05"), reported=True, reported_at=ts("2026-03-05"))
    put(store, MODERATION_ACTIONS, [case, later])
    selection = Selection(query="incidents_not_reported", query_params={"as_of": "2026-03-03"})
    rep = report(store, selection)
    assert rep.event_count == 1  # the case's first event: unreported as of 2026-03-03
    assert rep.section("reports").fact("illegal_unreported") == 1


# --------------------------------------------------------------------------------------------
# 4. sanctions and their evidence


def test_sanctions_with_their_evidence(store: Any) -> None:
    [action] = put(store, MODERATION_ACTIONS, [moderation(subject="u-1")])
    put(
        store,
        USER_SANCTIONS,
        [
            sanction(action="warning", evidence=[str(action["event_id"])], subject="u-1"),
            sanction(
                action="suspension",
                evidence=[str(uuid.uuid4()), "not-a-uuid"],
                reason_category="A.4.3",
            ),
            sanction(action="suspension", evidence=[], sanction_id="san-bare"),
            sanction(action="reinstatement", evidence=[], sanction_id="san-lift"),
            sanction(
                action="termination",
                reported=True,
                authority="CAC",
                reported_at=NOW,
                evidence=[str(action["event_id"])],
            ),
        ],
    )
    section = report(store).section("sanctions")
    by_action = section.figure("by_action")
    assert [r["action"] for r in by_action.as_dicts()] == [
        "warning",
        "suspension",
        "termination",
        "reinstatement",
    ]
    suspension = by_action.lookup("action", "suspension")
    assert suspension["steps"] == 2
    assert suspension["with_evidence"] == 1
    assert suspension["without_evidence"] == 1
    assert suspension["evidence_ids"] == 2
    assert suspension["evidence_unresolved"] == 2
    warning = by_action.lookup("action", "warning")
    assert (warning["with_evidence"], warning["evidence_unresolved"]) == (1, 0)
    lift = by_action.lookup("action", "reinstatement")
    assert (lift["without_evidence"], lift["not_required"]) == (0, 1)
    assert [r["sanction_id"] for r in section.figure("without_evidence").as_dicts()] == ["san-bare"]
    assert section.fact("without_evidence") == 1
    assert section.fact("evidence_unresolved") == 2
    assert section.fact("reported") == 1
    assert section.figure("by_reason").lookup("code", "A.4.3")["steps"] == 1


# --------------------------------------------------------------------------------------------
# 5. complaints and personal-information requests against their deadlines


def test_complaints_and_requests_against_their_deadlines(store: Any) -> None:
    received = ts("2026-03-01 09:00")
    on_time = complaint(occurred_at=received, complaint_id="c-on-time")
    late = complaint(occurred_at=received, complaint_id="c-late")
    overdue = complaint(occurred_at=received, complaint_id="c-overdue")
    fresh = complaint(occurred_at=ts("2026-03-15"), complaint_id="c-fresh")
    put(
        store,
        MODERATION_ACTIONS,
        [
            on_time,
            late,
            overdue,
            fresh,
            update(
                on_time,
                occurred_at=ts("2026-03-03 09:00"),
                complaint_feedback_at=ts("2026-03-03 09:00"),
            ),
            update(late, occurred_at=ts("2026-03-10"), complaint_feedback_at=ts("2026-03-10")),
        ],
    )
    done = pi_request(occurred_at=received, request_id="p-done")
    put(
        store,
        DATA_HANDLING,
        [
            done,
            update(
                done,
                occurred_at=ts("2026-03-05"),
                status="completed",
                completed_at=ts("2026-03-05"),
            ),
            pi_request(occurred_at=received, request_id="p-overdue"),  # due 03-16
            pi_request(occurred_at=ts("2026-03-10"), request_id="p-open", request_kind="access"),
        ],
    )
    section = report(store).section("deadlines")
    [channel] = section.figure("complaints").as_dicts()
    assert (channel["complaints"], channel["on_time"], channel["late"]) == (4, 1, 1)
    assert (channel["open"], channel["overdue"]) == (1, 1)
    assert channel["p50_hours"] == pytest.approx((48 + 9 * 24 - 9) / 2)
    kinds = {r["kind"]: r for r in section.figure("requests").as_dicts()}
    assert (kinds["delete"]["on_time"], kinds["delete"]["overdue"]) == (1, 1)
    assert (kinds["access"]["open"], kinds["access"]["overdue"]) == (1, 0)
    assert kinds["delete"]["p50_days"] == pytest.approx(4 - 9 / 24)
    overdue_rows = section.figure("overdue").as_dicts()
    assert sorted(r["ref"] for r in overdue_rows) == ["c-overdue", "p-overdue"]
    assert section.fact("complaints_overdue") == 1
    assert section.fact("requests_overdue") == 1
    assert section.fact("closed_late") == 1

    # Judged at the end of a selection that stops on 03-09: the late feedback of 03-10 is not
    # in it, so that complaint is open past its due date (03-08) as the period ends.
    early = report(store, Selection(until=ts("2026-03-09")))
    [channel] = early.section("deadlines").figure("complaints").as_dicts()
    assert (channel["complaints"], channel["late"], channel["overdue"]) == (3, 0, 2)


# --------------------------------------------------------------------------------------------
# 6-8. labels, filing, training data and evaluations


def test_label_coverage_and_filing(store: Any) -> None:
    put(
        store,
        GENERATIONS,
        [
            generation(modality="image"),
            generation(modality="image", explicit_label=False),  # a gap
            generation(modality="image", explicit_label=False, unlabelled_on_request=True),
            generation(modality="video", implicit_label=False),  # a gap
            generation(modality="text", explicit_label=False, implicit_label=False),
            generation(model_name="draft-model", model_version="0.9", filing_number=None),
            generation(model_name="draft-model", model_version="0.9", filing_number="  "),
        ],
    )
    rep = report(store)
    labels = rep.section("labels")
    image = labels.figure("by_modality").lookup("modality", "image")
    assert (image["generations"], image["both_labels"], image["implicit_only"]) == (3, 1, 2)
    assert image["gaps"] == 1
    assert image["on_request"] == 1
    assert image["explicit_share"] == pytest.approx(1 / 3)
    assert labels.figure("by_modality").lookup("modality", "video")["gaps"] == 1
    text = labels.figure("by_modality").lookup("modality", "text")
    assert (text["neither"], text["gaps"]) == (1, 0)
    assert labels.fact("media_gaps") == 2
    assert labels.fact("implicit_share") == pytest.approx(5 / 7)

    filing = rep.section("filing")
    rows = filing.figure("by_model").as_dicts()
    assert rows[0]["model"] == "draft-model 0.9"
    assert (rows[0]["unfiled"], rows[0]["filed"], rows[0]["subjects"]) == (2, 0, 1)
    chat = filing.figure("by_model").lookup("model", "chat-model 1.0")
    assert (chat["unfiled"], chat["filing_numbers"]) == (0, "Beijing-ChatModel-20240101")
    assert filing.fact("unfiled_generations") == 2
    assert filing.fact("unfiled_models") == 1
    assert "draft-model 0.9" in section_html(rep.html, "filing")


def test_training_data_annotation_and_safety_evaluations(store: Any) -> None:
    put(
        store,
        DATA_HANDLING,
        [
            training_intake(record_count=100),
            training_intake(
                contains_personal_information=True, consent_basis=None, record_count=50
            ),
            annotation_check(sample_size=200, sampled_accuracy=0.90),
            annotation_check(sample_size=800, sampled_accuracy=0.95),
            safety_evaluation(occurred_at=ts("2026-01-10"), refusal_rate=0.80),
            safety_evaluation(occurred_at=ts("2026-02-10")),
            safety_evaluation(model_name="other", generated_test_size=999),
            safety_evaluation(model_name="third", false_refusal_rate=0.08),
        ],
    )
    section = report(store).section("governance")
    [intake] = section.figure("training_data").as_dicts()
    assert (intake["datasets"], intake["records"], intake["pi_without_consent"]) == (2, 150, 1)
    [checks] = section.figure("annotation").as_dicts()
    assert checks["weighted"] == pytest.approx((200 * 0.90 + 800 * 0.95) / 1000)
    assert checks["lowest"] == pytest.approx(0.90)
    evaluations = section.figure("safety_evaluation")
    chat = evaluations.lookup("model", "chat-model 1.0")
    assert chat["evaluations"] == 2
    assert chat["meets_all"] is True  # the latest evaluation is judged, not the failed one
    other = evaluations.lookup("model", "other 1.0")
    assert (other["qualified_ok"], other["meets_all"]) == (False, False)
    third = evaluations.lookup("model", "third 1.0")
    assert (third["false_refusal_ok"], third["refusal_ok"]) == (False, True)
    assert section.fact("models_failing") == 2
    assert section.fact("pi_without_consent") == 1


# --------------------------------------------------------------------------------------------
# 9. the trail's integrity


def _checkpoint(partition: int, size: int, signed: datetime) -> dict[str, Any]:
    return {
        "topic": "aigc.audit",
        "partition": partition,
        "tree_size": size,
        "root_hash": digest(f"root-{partition}-{size}"),
        "next_offset": size * 2,
        "origin": "aigc-audit/test",
        "key_id": "ckpt-key",
        "signed_at": signed,
        "note": "note",
    }


def test_trail_integrity_is_scoped_by_time_only(store: Any) -> None:
    insert(
        store,
        CHECKPOINTS,
        [
            _checkpoint(0, 5, ts("2026-03-01")),
            _checkpoint(0, 9, ts("2026-03-02")),
            _checkpoint(1, 4, ts("2026-03-02")),
        ],
    )
    insert(store, BATCHES, [batch(sequence=s, created_at=ts("2026-03-01")) for s in range(3)])
    insert(store, QUARANTINE, [quarantined(), quarantined(offset=7, reason="unknown_key")])
    insert(
        store,
        CHAIN_FINDINGS,
        [finding(), finding(offset=3, kind="chain_fork"), finding(offset=4, producer_id="p-2")],
    )
    section = report(store, Selection(subject="nobody")).section("trail")
    checkpoints = section.figure("checkpoints").as_dicts()
    assert [(c["partition"], c["tree_size"], c["checkpoints"]) for c in checkpoints] == [
        ("aigc.audit/0", 9, 2),
        ("aigc.audit/1", 4, 1),
    ]
    assert checkpoints[0]["root_hex"] == digest("root-0-9").hex()
    assert section.fact("batches") == 3
    assert section.fact("batch_events") == 30
    assert section.fact("quarantined") == 2
    findings = section.figure("chain_findings")
    assert findings.lookup("producer", "producer-1") == {
        "producer": "producer-1",
        "chain_fork": 1,
        "chain_gap": 1,
        "total": 2,
    }
    assert findings.lookup("producer", "p-2")["chain_gap"] == 1
    assert section.fact("chain_findings") == 3

    later = report(store, Selection(since=ts("2026-03-01 12:00"))).section("trail")
    assert later.fact("batches") == 0
    assert [c["tree_size"] for c in later.figure("checkpoints").as_dicts()] == [9, 4]
    assert later.figure("quarantine").rows == []
    empty = report(store, Selection(since=ts("2026-04-01"))).section("trail")
    assert empty.empty


# --------------------------------------------------------------------------------------------
# the page


def _populate(store: Any) -> None:
    put(store, GENERATIONS, [generation(modality=m) for m in ("text", "image", "audio")])
    put(store, MODERATION_ACTIONS, [moderation(), complaint()])
    put(store, USER_SANCTIONS, [sanction()])
    put(store, DATA_HANDLING, [pi_request(), training_intake(), safety_evaluation()])
    insert(store, BATCHES, [batch()])
    insert(store, CHECKPOINTS, [_checkpoint(0, 1, ts("2026-03-01"))])


def test_the_page_is_self_contained_and_bilingual(store: Any) -> None:
    _populate(store)
    rep = report(store)
    html = rep.html
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in html
    assert "<script" not in html
    assert "<link" not in html
    assert "<img" not in html
    assert "@import" not in html and "url(" not in html
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:[a-z]+:)?//", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))
    assert "Content-Security-Policy" in html
    for section in rep.sections:
        assert f"{section.title_zh} · {section.title_en}" in html
        assert re.search(r"(Art\.|Draft) \d", section.articles)
        assert f"依据 · Serves: {section.articles}" in html
    assert "生成内容数量 · Generation volumes" in html
    assert "违法不良信息处置 · Incidents and time to action" in html
    assert [s.number for s in rep.sections] == list(range(1, 10))

    # Every chart sits beside the table of its numbers, and every figure with rows is drawn
    # unless it is a plain list.
    figures = re.findall(r'<figure class="fig".*?</figure>', html, re.S)
    charts = 0
    for fragment in figures:
        if "<svg" in fragment:
            charts += 1
            assert fragment.count("<table") == 1
            assert fragment.index("<svg") < fragment.index("<table")
    drawn = [f for s in rep.sections if not s.empty for f in s.figures if f.chart and f.rows]
    assert charts == len(drawn) == html.count("<svg") > 10
    assert "Noto Sans CJK SC" in html and "Microsoft YaHei" in html

    # The header names the database, the selection and the counts per family.
    assert "部署数据库 · Deployment database" in html and ">audit<" in html
    assert "全部事件 · every event in the store" in html
    assert '生成 · generations</td><td class="n">3</td>' in html
    assert "2026-03-20 12:00:00 UTC" in html


def test_an_empty_selection_says_so_plainly(store: Any) -> None:
    rep = report(store, Selection(subject="nobody"))
    assert rep.event_count == 0
    assert all(section.empty for section in rep.sections)
    assert rep.html.count(NO_DATA) == 9 + 1  # every section, and the header's family table
    assert "<svg" not in rep.html
    assert "subject = nobody" in rep.html


def test_text_from_the_store_is_escaped(store: Any) -> None:
    hostile = '<script>alert("x")</script>'
    put(store, GENERATIONS, [generation(service_id=hostile, model_name="m&<b>")])
    rep = report(store, title="审计 <报告>")
    assert "<script" not in rep.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in rep.html
    assert "m&amp;&lt;b&gt; 1.0" in rep.html
    assert "<title>审计 &lt;报告&gt;</title>" in rep.html


def test_write_report_writes_utf8(store: Any, tmp_path: Path) -> None:
    put(store, GENERATIONS, [generation(model_name="通义-测试")])
    path = tmp_path / "out" / "report.html"
    rep = write_report(store, Selection(), path, now=NOW)
    assert path.read_text(encoding="utf-8") == rep.html
    assert "通义-测试 1.0" in rep.html
    assert rep.generated_at == NOW


def test_a_larger_store_is_aggregated_in_the_store(store: Any) -> None:
    """20,000 generations and their events, made by the engine: the report's numbers are the
    store's aggregates and it stays fast (the queries group; no raw rows come back)."""
    db = store.database
    store.command(
        f"INSERT INTO {db}.generations (event_id, occurred_at, service_id, producer_id, "
        f"request_id, model_name, model_version, filing_number, modality, channel, subject, "
        f"explicit_label, implicit_label, safety_verdict, hold_keys) "
        f"SELECT generateUUIDv4(number), toDateTime64('2026-03-01', 6, 'UTC') + "
        f"toIntervalSecond(number * 60), 'svc', 'p', toString(number), 'm', '1', 'F-1', "
        f"['text', 'image'][number % 2 + 1], 'app', concat('s-', toString(number % 100)), "
        f"true, number % 10 != 1, 'passed', [concat('subject:s-', toString(number % 100))] "
        f"FROM numbers(20000)"
    )
    store.command(
        f"INSERT INTO {db}.events (event_id, event_type, family, occurred_at, service_id, "
        f"producer_id, hold_keys) SELECT event_id, 'generation', 'aigc.audit.Generation', "
        f"occurred_at, service_id, producer_id, hold_keys FROM {db}.generations"
    )
    started = time.perf_counter()
    rep = report(store)
    assert time.perf_counter() - started < 20
    volumes = rep.section("volumes")
    assert volumes.fact("generations") == 20000
    assert volumes.fact("subjects") == 100
    assert len(volumes.figure("events_per_period").rows) == 14  # 20,000 minutes
    assert rep.section("labels").figure("by_modality").lookup("modality", "image")["gaps"] == 2000
    subject = report(store, Selection(subject="s-7"))
    assert subject.section("volumes").fact("generations") == 200


# --------------------------------------------------------------------------------------------
# the charts


def test_charts_escape_labels_and_fit_chinese_text() -> None:
    figure = Figure(
        "f",
        "图 <1>",
        (Column("label", "名称"), Column("n", "数量 · n", "int", "bad")),
        [("一个非常非常非常非常非常非常非常非常非常非常非常非常长的标签", 5), ("<b>&", 0)],
        Chart("bar", "label", ("n",)),
    )
    drawn = svgmod.chart_svg(figure)
    assert drawn is not None and drawn.startswith("<svg")
    assert "&lt;b&gt;&amp;" in drawn and "<b>" not in drawn
    assert "…" in drawn  # the long label is clipped, its full text kept in a <title>
    assert "<title>一个非常" in drawn
    assert svgmod.TONES["bad"] in drawn
    assert svgmod.text_width("中文") == 2 * svgmod.FONT_SIZE
    assert svgmod.text_width("ab") == pytest.approx(2 * 0.6 * svgmod.FONT_SIZE)


@pytest.mark.parametrize(
    ("top", "ticks"),
    [(0, [0.0, 1.0]), (7, [0.0, 2.0, 4.0, 6.0, 8.0]), (1000, [0.0, 250.0, 500.0, 750.0, 1000.0])],
)
def test_nice_ticks(top: float, ticks: list[float]) -> None:
    assert svgmod.nice_ticks(top) == ticks


def test_a_figure_refuses_a_chart_over_columns_it_does_not_have() -> None:
    with pytest.raises(ValueError, match="chart column 'missing'"):
        Figure("f", "t", (Column("a", "A"),), [], Chart("bar", "a", ("missing",)))
    with pytest.raises(ValueError, match="does not match columns"):
        Figure("f", "t", (Column("a", "A"),), [(1, 2)])
    assert Figure("f", "t", (Column("a", "A"),), [], empty=NONE_FOUND).empty == NONE_FOUND
