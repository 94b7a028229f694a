"""Every query of the pack runs on chDB, on an empty store and over data, with the columns it
promises (per-event queries carry the ids of stored events)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aigc_audit.consumers.query.pack import (
    NamedQuery,
    bind_params,
    run_query,
)
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
    AGGREGATES,
    EXTRAS,
    PACK,
    PER_EVENT,
    REQUIRED,
    SAMPLE_VALUES,
    run,
)
from tests.store_rows import (
    agreement_acceptance,
    annotation_check,
    batch,
    complaint,
    finding,
    generation,
    identity_verification,
    insert,
    legal_hold,
    moderation,
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
# (b) every query runs on chDB


def _all_params(query: NamedQuery) -> dict[str, str]:
    return {p.name: SAMPLE_VALUES[p.type] for p in query.params}


def _populate(store: Any) -> None:
    """A row or two of every kind, all about subject, request, model and data set "x"."""
    case = moderation(
        occurred_at=ts("2026-02-10"),
        subject="x",
        sealed_evidence=b"\x00sealed",
        rectification_ticket="RT-x",
        rectification_opened_at=ts("2026-02-10"),
        rectification_due_at=ts("2026-05-10"),
    )
    insert(
        store,
        GENERATIONS,
        [
            generation(
                subject="x",
                filing_number=None,
                request_id="x",
                produce_id="x",
                explicit_label=False,
                unlabelled_on_request=True,
            )
        ],
    )
    insert(store, MODERATION_ACTIONS, [case, update(case, occurred_at=ts("2026-02-11"))])
    insert(store, MODERATION_ACTIONS, [complaint(subject="x", occurred_at=ts("2026-02-01"))])
    insert(store, USER_SANCTIONS, [sanction(subject="x", occurred_at=ts("2026-02-01"))])
    insert(
        store,
        DATA_HANDLING,
        [
            pi_request(subject="x", occurred_at=ts("2026-02-01")),
            training_intake(model_name="x", dataset_id="x"),
            annotation_check(dataset_id="x"),
            safety_evaluation(model_name="x"),
            identity_verification(subject="x"),
            legal_hold(hold_target="x"),
            agreement_acceptance(subject="x", agreement_id="x"),
        ],
    )
    insert(store, BATCHES, [batch()])
    insert(store, QUARANTINE, [quarantined(), quarantined(offset=1001, producer_id=None)])
    insert(store, CHAIN_FINDINGS, [finding()])


def _over_data_params(query: NamedQuery) -> dict[str, str]:
    """Required strings "x", a window over everything, and the judging time 2026-06-01."""
    given: dict[str, str] = {}
    for param in query.params:
        if param.name == "from":
            given[param.name] = "2000-01-01"
        elif param.name == "to":
            given[param.name] = "2100-01-01"
        elif param.type == "DateTime64(6)":
            given[param.name] = "2026-06-01"
        elif param.required:
            given[param.name] = SAMPLE_VALUES[param.type]
    return given


@pytest.mark.chdb
@pytest.mark.parametrize("name", sorted(PACK))
def test_every_query_runs_on_an_empty_store(store: Any, name: str) -> None:
    result = run_query(store, PACK[name], _all_params(PACK[name]))
    assert result.rows == []


@pytest.mark.chdb
def test_every_query_runs_over_data(store: Any) -> None:
    _populate(store)
    answered = set()
    for name, query in PACK.items():
        result = run_query(store, query, _over_data_params(query))
        assert len(result.columns) == len(result.types), name
        assert all(len(row) == len(result.columns) for row in result.rows), name
        if result.rows:
            answered.add(name)
    assert answered >= {*REQUIRED, *EXTRAS}


@pytest.mark.chdb
def test_per_event_queries_return_the_ids_of_stored_events(store: Any) -> None:
    _populate(store)
    stored = {
        str(row[0])
        for table in (GENERATIONS, MODERATION_ACTIONS, USER_SANCTIONS, DATA_HANDLING)
        for row in store.query(f"SELECT event_id FROM {store.database}.{table.name}").rows
    }
    for name in PER_EVENT:
        query = PACK[name]
        params = bind_params(query, _over_data_params(query))
        result = run_query(store, query, params)
        types = dict(zip(result.columns, result.types, strict=True))
        assert types.get("event_id") == "UUID", name
        ids = [row["event_id"] for row in result.as_dicts()]
        assert ids, f"{name} answers nothing over the sample data"
        assert all(str(uuid.UUID(i)) == i for i in ids), name
        assert set(ids) <= stored, name
        # what an export runs to select the events of a named query
        exported = store.query(f"SELECT toUUID(event_id) FROM ({query.sql})", params).rows
        assert sorted(str(r[0]) for r in exported) == sorted(ids), name
    for name in AGGREGATES:
        result = run_query(store, PACK[name], _over_data_params(PACK[name]))
        assert "event_id" not in result.columns, name


@pytest.mark.chdb
def test_time_params_do_not_depend_on_the_session_time_zone(store: Any) -> None:
    insert(store, MODERATION_ACTIONS, [complaint(complaint_id="k", occurred_at=ts("2026-03-01"))])
    # due 2026-03-08 00:00 UTC: overdue one microsecond later, not at the due time itself.
    at_due = {"as_of": "2026-03-08T00:00:00Z"}
    just_after = {"as_of": "2026-03-08T08:00:00.000001+08:00"}
    store.command("SET session_timezone = 'Asia/Shanghai'")
    try:
        assert run(store, "complaints_overdue", **at_due) == []
        assert [r["complaint_id"] for r in run(store, "complaints_overdue", **just_after)] == ["k"]
    finally:
        store.command("SET session_timezone = ''")
