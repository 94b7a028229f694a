"""What the tests of the query pack (tests/test_query_pack_*.py) share: the pack, the lists of
its queries, a query file to parse, the chDB store the queries run on, and row helpers.

The store fixtures are module-scoped, so a test module takes them by assignment (``store =
query_pack_fixtures.store``) and gets one chDB session of its own (chDB allows one per process;
each module's is closed before the next opens)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.query.pack import (
    load_query_pack,
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
from tests.store_rows import (
    moderation,
    ts,
)

PACK = load_query_pack()

REQUIRED = (
    "subject_history",
    "incidents_by_risk_category",
    "incidents_not_reported",
    "rectifications_overdue",
    "sanctions_in_force",
    "complaints_overdue",
    "personal_information_requests_open",
    "label_coverage",
    "generations_without_filing",
    "trail_integrity",
)

EXTRAS = (
    "model_version_for_request",
    "generation_for_label",
    "training_data_provenance",
    "safety_evaluations",
    "annotation_quality",
    "unlabelled_output_recipients",
    "legal_holds_in_force",
    "minor_mode_usage",
    "subject_erasure",
    "trail_outages",
    "time_to_action",
    "time_to_feedback",
    "rectifications_open",
    "sanction_history",
    "agreement_in_force",
)

PER_EVENT = (
    "subject_history",
    "sanction_history",
    "subject_erasure",
    "incidents_not_reported",
    "time_to_action",
    "rectifications_overdue",
    "rectifications_open",
    "sanctions_in_force",
    "complaints_overdue",
    "personal_information_requests_open",
    "generation_for_label",
    "model_version_for_request",
    "legal_holds_in_force",
    "safety_evaluations",
    "training_data_provenance",
    "agreement_in_force",
)
"""Queries whose rows are each about one event: they carry its ``event_id`` (a UUID), so that an
export can select "the events of a named query" (``SELECT toUUID(event_id) FROM (<query>)``)."""

AGGREGATES = (
    "incidents_by_risk_category",
    "label_coverage",
    "generations_without_filing",
    "unlabelled_output_recipients",
    "annotation_quality",
    "minor_mode_usage",
    "time_to_feedback",
    "trail_integrity",
    "trail_outages",
)
"""Queries whose rows count or summarise many events (or batches): no ``event_id``."""

SAMPLE_VALUES = {
    "String": "x",
    "UInt32": "1",
    "UInt64": "1",
    "Int64": "-1",
    "Float64": "0.5",
    "Date": "2026-03-01",
    "DateTime64(6)": "2026-03-01T00:00:00Z",
    "Bool": "true",
}

DATA_TABLES = (
    GENERATIONS,
    MODERATION_ACTIONS,
    USER_SANCTIONS,
    DATA_HANDLING,
    BATCHES,
    QUARANTINE,
    CHAIN_FINDINGS,
)


HEADER = (
    "-- title: T\n"
    "-- articles: Art. 15; Draft 13\n"
    "-- description: What it answers,\n"
    "--   continued here.\n"
    "-- param as_of: DateTime64(6) = now   (the time (UTC) to judge at)\n"
    "-- param service_id: String           (required)\n"
    "-- param label: String = ''\n"
    "-- param limit: UInt32 = 10\n"
)
BODY = (
    "SELECT {service_id:String}, {label:String}, {limit:UInt32}, "
    "{as_of:DateTime64(6, 'UTC')} FROM audit.generations;\n"
)


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chDB session for the module (chDB allows one per process; opening is slow)."""
    pytest.importorskip("chdb")
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    store = EmbeddedStore(Path(tmp_path_factory.mktemp("query-pack")) / "store")
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def store(module_store: Any) -> Any:
    """The module's store with every data table emptied, so each test sees only its own rows."""
    for table in DATA_TABLES:
        module_store.command(f"TRUNCATE TABLE {module_store.database}.{table.name}")
    return module_store


def run(store: Any, name: str, **params: str) -> list[dict[str, Any]]:
    """Run a pack query with command-line style string params; rows as dicts."""
    return run_query(store, PACK[name], params).as_dicts()


def _case(case_id: str, code: str | None, detected: str, seconds: float | None, **kw: Any) -> dict:
    at = ts(detected)
    acted = None if seconds is None else at + timedelta(seconds=seconds)
    return moderation(
        case_id=case_id, risk_category=code, occurred_at=at, detected_at=at, acted_at=acted, **kw
    )


def _ticket(case_id: str, ticket: str, opened: str, due: str, **kw: Any) -> dict:
    return moderation(
        case_id=case_id,
        occurred_at=ts(opened),
        rectification_ticket=ticket,
        rectification_opened_at=ts(opened),
        rectification_due_at=ts(due),
        **kw,
    )
