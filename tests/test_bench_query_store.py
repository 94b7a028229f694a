"""The synthetic store of the query benchmark (issue 6): the mix it writes, and every query of the
pack answering over it with parameters that exist in the data. No timing is asserted."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.bench.query_store import (
    BATCH_EVENTS,
    FAMILY_OF,
    PackParams,
    SyntheticSummary,
    build_synthetic_store,
    sample_params,
    time_query_pack,
)
from aigc_audit.consumers.query.pack import load_query_pack, run_query
from aigc_audit.producers.taxonomy import RISKS

pytestmark = pytest.mark.chdb

EVENTS = 20_000
END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PACK = load_query_pack()

ANSWERED = (
    "agreement_in_force",
    "annotation_quality",
    "complaints_overdue",
    "generation_for_label",
    "generations_without_filing",
    "incidents_by_risk_category",
    "incidents_not_reported",
    "label_coverage",
    "legal_holds_in_force",
    "minor_mode_usage",
    "model_version_for_request",
    "personal_information_requests_open",
    "rectifications_open",
    "rectifications_overdue",
    "safety_evaluations",
    "sanction_history",
    "sanctions_in_force",
    "subject_erasure",
    "subject_history",
    "time_to_action",
    "time_to_feedback",
    "trail_integrity",
    "trail_outages",
    "training_data_provenance",
    "unlabelled_output_recipients",
)
"""Queries the synthetic data must give at least one row (every query of the pack today)."""

DATA_TABLES = (
    *FAMILY_OF,
    "events",
    "batches",
    "legal_holds",
    "quarantine",
    "chain_findings",
    "checkpoints",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, SyntheticSummary]]:
    """One small synthetic store for the module (chDB allows one session per process)."""
    pytest.importorskip("chdb")
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    store = EmbeddedStore(Path(tmp_path_factory.mktemp("bench-query-store")) / "store")
    store.migrate()
    lines: list[str] = []
    summary = build_synthetic_store(store, EVENTS, seed=3, end=END, progress=lines.append)
    assert lines, "progress was never called"
    yield store, summary
    store.close()


@pytest.fixture(scope="module")
def params(built: tuple[Any, SyntheticSummary]) -> PackParams:
    return sample_params(built[0])


def scalar(store: Any, sql: str, **params: Any) -> Any:
    return store.query(sql, params).rows[0][0]


def test_families_follow_the_mix_and_sum_to_the_events(built: tuple[Any, SyntheticSummary]) -> None:
    store, summary = built
    counts = {t: scalar(store, f"SELECT count() FROM audit.{t}") for t in FAMILY_OF}
    assert sum(counts.values()) == EVENTS == summary.events
    assert {FAMILY_OF[t]: n for t, n in counts.items()} == summary.families
    assert counts["generations"] == round(EVENTS * 0.85)
    assert counts["moderation_actions"] == round(EVENTS * 0.05)
    assert counts["user_sanctions"] == round(EVENTS * 0.007)
    share = counts["data_handling"] / EVENTS
    assert 0.08 < share < 0.1
    assert summary.rows["generations"] == counts["generations"]


def test_event_types_cover_every_kind_the_queries_read(built: tuple[Any, SyntheticSummary]) -> None:
    store, summary = built
    moderation = dict(
        store.query(
            "SELECT toString(event_type), count() FROM audit.moderation_actions GROUP BY 1"
        ).rows
    )
    assert moderation["complaint"] == round(EVENTS * 0.05 * 0.2)
    assert moderation["moderation_action"] == round(EVENTS * 0.05) - moderation["complaint"]
    handling = dict(
        store.query("SELECT toString(event_type), count() FROM audit.data_handling GROUP BY 1").rows
    )
    assert set(handling) == {
        "personal_information_request",
        "identity_verification",
        "agreement_acceptance",
        "legal_hold",
        "training_data_intake",
        "annotation_quality_check",
        "safety_evaluation",
        "retention_purge",
        "authority_disclosure",
    }
    assert handling["agreement_acceptance"] > handling["personal_information_request"] > 0
    assert summary.event_types == {
        "generation": round(EVENTS * 0.85),
        "user_sanction": round(EVENTS * 0.007),
        **moderation,
        **handling,
    }
    codes = store.query(
        "SELECT DISTINCT assumeNotNull(risk_category) FROM audit.moderation_actions "
        "WHERE isNotNull(risk_category)"
    ).rows
    assert {code for (code,) in codes} <= set(RISKS)
    # Most generations carry a filing number; one model version has none.
    unfiled = scalar(store, "SELECT countIf(isNull(filing_number)) FROM audit.generations")
    assert 0 < unfiled < 0.05 * EVENTS


def test_events_and_batches_account_for_every_typed_row(
    built: tuple[Any, SyntheticSummary],
) -> None:
    store, summary = built
    assert scalar(store, "SELECT count() FROM audit.events") == EVENTS
    # Every events row is the twin of one typed row, with its family and producer.
    for table, family in FAMILY_OF.items():
        matched = scalar(
            store,
            f"SELECT count() FROM audit.events AS e INNER JOIN audit.{table} AS t "
            "ON e.event_id = t.event_id "
            "WHERE e.family = {f:String} AND e.producer_id = t.producer_id",
            f=family,
        )
        assert matched == summary.families[family], table
    per_producer = dict(
        store.query("SELECT toString(producer_id), count() FROM audit.events GROUP BY 1").rows
    )
    batches = dict(
        store.query(
            "SELECT toString(producer_id), count() FROM audit.batches GROUP BY 1 ORDER BY 1"
        ).rows
    )
    assert batches == {p: math.ceil(n / BATCH_EVENTS) for p, n in per_producer.items()}
    carried = dict(
        store.query(
            "SELECT toString(producer_id), sum(event_count) FROM audit.batches GROUP BY 1"
        ).rows
    )
    assert carried == per_producer
    for table in ("quarantine", "chain_findings", "checkpoints", "legal_holds"):
        assert summary.rows[table] > 0, table
    # The subjects: about events / 50, each with one 32-hex-character id.
    subjects = scalar(store, "SELECT uniqExact(subject) FROM audit.generations")
    assert 0.5 * summary.subjects < subjects <= summary.subjects
    assert (
        scalar(store, "SELECT countIf(NOT match(subject, '^[0-9a-f]{32}$')) FROM audit.generations")
        == 0
    )


def test_sanction_evidence_names_stored_moderation_actions(
    built: tuple[Any, SyntheticSummary],
) -> None:
    store, _ = built
    named, found = store.query(
        "SELECT count(), countIf(m.event_id != toUUID('00000000-0000-0000-0000-000000000000')) "
        "FROM (SELECT toUUID(arrayJoin(evidence)) AS id, subject FROM audit.user_sanctions) AS s "
        "LEFT JOIN audit.moderation_actions AS m ON m.event_id = s.id AND m.subject = s.subject"
    ).rows[0]
    assert named > 0
    assert found > 0.9 * named  # a few steps name an event the log does not hold


def test_params_name_things_that_exist(
    built: tuple[Any, SyntheticSummary], params: PackParams
) -> None:
    store, summary = built
    assert params.subject
    assert scalar(
        store,
        "SELECT count() FROM audit.user_sanctions WHERE subject = {s:String}",
        s=params.subject,
    )
    assert scalar(
        store,
        "SELECT count() FROM audit.generations "
        "WHERE request_id = {r:String} AND subject = {s:String}",
        r=params.request_id,
        s=params.subject,
    )
    assert scalar(
        store,
        "SELECT count() FROM audit.generations WHERE produce_id = {p:String}",
        p=params.produce_id,
    )
    assert scalar(
        store,
        "SELECT count() FROM audit.data_handling "
        "WHERE event_type = 'training_data_intake' AND model_name = {m:String}",
        m=params.model_name,
    )
    assert params.start <= summary.start
    given = params(PACK["time_to_action"])
    assert given == {"from": params.start}
    assert params(PACK["subject_history"]) == {"subject": params.subject}
    # An optional subject stays at its default: every subject.
    assert params(PACK["agreement_in_force"]) == {}


def test_every_query_runs_and_answers(
    built: tuple[Any, SyntheticSummary], params: PackParams
) -> None:
    store, _ = built
    times = time_query_pack(store, params, repeats=1)
    assert set(times) == set(PACK)
    assert all(seconds > 0 for seconds in times.values())
    answered = {name for name, query in PACK.items() if run_query(store, query, params(query)).rows}
    assert answered >= set(ANSWERED), sorted(set(ANSWERED) - answered)
    history = run_query(store, PACK["sanction_history"], params(PACK["sanction_history"]))
    roles = {row["role"] for row in history.as_dicts()}
    assert roles == {"step", "evidence"}


def test_time_query_pack_leaves_the_condition_cache_as_it_was(
    built: tuple[Any, SyntheticSummary],
) -> None:
    store, _ = built
    setting = "SELECT getSetting('use_query_condition_cache')"
    before = scalar(store, setting)
    times = time_query_pack(store, lambda q: sample_params(store)(q), names=["trail_integrity"])
    assert list(times) == ["trail_integrity"]
    assert scalar(store, setting) == before


def test_same_seed_and_end_build_the_same_store(built: tuple[Any, SyntheticSummary]) -> None:
    store, summary = built

    def checksums() -> dict[str, Any]:
        return {
            t: scalar(store, f"SELECT groupBitXor(cityHash64(*)) FROM audit.{t}")
            for t in DATA_TABLES
        }

    first = checksums()
    for table in DATA_TABLES:
        store.command(f"TRUNCATE TABLE audit.{table}")
    again = build_synthetic_store(store, EVENTS, seed=3, end=END)
    assert again.rows == summary.rows
    assert checksums() == first
