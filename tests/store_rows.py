"""Builders of full store rows for tests: every column filled, sensible defaults, keyword overrides.

Each builder returns a dict with exactly the columns of its table (see
``consumers/store/tables.py``); keyword arguments override defaults and an unknown keyword raises
``KeyError`` so that a typo cannot silently leave a default in place. Times are timezone-aware UTC
datetimes (build them with :func:`ts`), event ids are fresh UUIDs, digests are 32 bytes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.tables import (
    BATCHES,
    CHAIN_FINDINGS,
    DATA_HANDLING,
    GENERATIONS,
    LEGAL_HOLD_COLUMNS,
    MODERATION_ACTIONS,
    QUARANTINE,
    USER_SANCTIONS,
    Table,
)

Row = dict[str, Any]

SERVICE = "svc-chat"
PRODUCER = "producer-1"


def ts(text: str) -> datetime:
    """A UTC datetime from ``YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]`` (naive text read as UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def out(text: str) -> str:
    """The store's text for the DateTime64(6) value ``ts(text)``: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return ts(text).strftime("%Y-%m-%d %H:%M:%S.%f")


def digest(seed: str) -> bytes:
    """A deterministic 32-byte digest."""
    return hashlib.sha256(seed.encode()).digest()


def insert(store: Store, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows with a fresh deduplication token (never absorbed as a retry)."""
    store.insert(table, rows, token=f"test-{uuid.uuid4()}")


def _build(table: Table, defaults: Row, overrides: Mapping[str, Any]) -> Row:
    unknown = set(overrides) - set(table.column_names)
    if unknown:
        raise KeyError(f"not columns of {table.name}: {sorted(unknown)}")
    # Columns that later migrations added, empty unless a test sets them.
    later = {"hold_keys": []} | dict.fromkeys(name for name, _ in LEGAL_HOLD_COLUMNS)
    later = {k: v for k, v in later.items() if k in table.column_names}
    row = {**later, **{k: v for k, v in defaults.items() if v is not None or k not in later}}
    row.update(overrides)
    missing = set(table.column_names) - set(row)
    assert not missing, f"builder for {table.name} misses {sorted(missing)}"
    return {name: row[name] for name in table.column_names}


def _head(at: datetime) -> Row:
    return {
        "event_id": uuid.uuid4(),
        "occurred_at": at,
        "service_id": SERVICE,
        "producer_id": PRODUCER,
    }


_NO_REPORT: Row = {
    "reported": False,
    "authority": None,
    "report_reference": None,
    "reported_at": None,
}


def generation(**kw: Any) -> Row:
    """A generations row: a text generation by chat-model 1.0 with filing number, labelled."""
    at = kw.get("occurred_at", ts("2026-03-01 10:00"))
    request_id = kw.get("request_id", f"req-{uuid.uuid4().hex[:8]}")
    defaults: Row = {
        **_head(at),
        "request_id": request_id,
        "model_name": "chat-model",
        "model_version": "1.0",
        "filing_number": "Beijing-ChatModel-20240101",
        "modality": "text",
        "channel": "app",
        "subject": "subj-1",
        "input_sha256": digest(f"in-{request_id}"),
        "output_sha256": digest(f"out-{request_id}"),
        "input_tokens": 10,
        "output_tokens": 20,
        "output_bytes": None,
        "explicit_label": True,
        "implicit_label": True,
        "label_value": "1",
        "content_producer": "provider-code",
        "produce_id": f"content-{request_id}",
        "reserved_code1": None,
        "unlabelled_on_request": False,
        "safety_verdict": "passed",
        "minor_mode": False,
        "latency_ms": 120,
    }
    return _build(GENERATIONS, defaults, kw)


def moderation(**kw: Any) -> Row:
    """A moderation_actions row of event_type moderation_action: detected and acted, unreported."""
    at = kw.get("occurred_at", ts("2026-03-01 10:00"))
    defaults: Row = {
        **_head(at),
        "event_type": "moderation_action",
        "case_id": f"case-{uuid.uuid4().hex[:8]}",
        "target": "generation",
        "target_ref": "req-1",
        "subject": "subj-1",
        "model_name": "chat-model",
        "model_version": "1.0",
        "detection_source": "output_filter",
        "risk_category": "A.1.6",
        "action": "block_generation",
        "detected_at": at,
        "acted_at": at,
        "reviewer": "filter-v2",
        "rectification_ticket": None,
        "rectification_opened_at": None,
        "rectification_due_at": None,
        "rectification_closed_at": None,
        **_NO_REPORT,
        "complaint_id": None,
        "complaint_channel": None,
        "complaint_received_at": None,
        "complaint_due_by": None,
        "complaint_handled_at": None,
        "complaint_feedback_at": None,
        "sealed_evidence": None,
    }
    return _build(MODERATION_ACTIONS, defaults, kw)


def complaint(**kw: Any) -> Row:
    """A moderation_actions row of event_type complaint: received at occurred_at, due in 7 days."""
    at = kw.get("occurred_at", ts("2026-03-01 10:00"))
    complaint_id = kw.get("complaint_id", f"cmp-{uuid.uuid4().hex[:8]}")
    base = moderation(occurred_at=at)
    defaults: Row = {
        **base,
        "event_type": "complaint",
        "case_id": f"case-{complaint_id}",
        "target": "published_content",
        "target_ref": "content-1",
        "detection_source": "user_report",
        "risk_category": None,
        "action": "escalate",
        "acted_at": None,
        "reviewer": None,
        "complaint_id": complaint_id,
        "complaint_channel": "in_app",
        "complaint_received_at": at,
        "complaint_due_by": at + timedelta(days=7),
    }
    return _build(MODERATION_ACTIONS, defaults, kw)


def sanction(**kw: Any) -> Row:
    """A user_sanctions row: a suspension from occurred_at, until lifted, one evidence id."""
    at = kw.get("occurred_at", ts("2026-03-01 10:00"))
    defaults: Row = {
        **_head(at),
        "sanction_id": f"sanction-{uuid.uuid4().hex[:8]}",
        "subject": "subj-1",
        "action": "suspension",
        "reason_category": "A.1.6",
        "restricted_functions": [],
        "evidence": [str(uuid.uuid4())],
        "effective_from": at,
        "effective_until": None,
        "records_preserved": True,
        **_NO_REPORT,
    }
    return _build(USER_SANCTIONS, defaults, kw)


_DATA_HANDLING_NULLS: Row = {name: None for name in DATA_HANDLING.column_names}


def _data_handling(event_type: str, at: datetime, fields: Row, kw: Mapping[str, Any]) -> Row:
    defaults: Row = {
        **_DATA_HANDLING_NULLS,
        **_head(at),
        "event_type": event_type,
        "subject": None,
        **fields,
    }
    return _build(DATA_HANDLING, defaults, kw)


def pi_request(**kw: Any) -> Row:
    """A personal_information_request row: a delete request received at occurred_at, 15 days due."""
    at = kw.get("occurred_at", ts("2026-03-01 10:00"))
    fields: Row = {
        "subject": "subj-1",
        "request_id": f"pir-{uuid.uuid4().hex[:8]}",
        "request_kind": "delete",
        "received_at": at,
        "due_at": at + timedelta(days=15),
        "status": "received",
        "completed_at": None,
        "outcome": None,
    }
    return _data_handling("personal_information_request", at, fields, kw)


def training_intake(**kw: Any) -> Row:
    """A training_data_intake row: a licensed data set for chat-model 1.0."""
    at = kw.get("occurred_at", ts("2026-01-10 09:00"))
    fields: Row = {
        "dataset_id": f"ds-{uuid.uuid4().hex[:8]}",
        "source": "news-archive",
        "source_kind": "licensed",
        "legal_basis": "licence L-1",
        "contains_personal_information": False,
        "consent_basis": None,
        "size_bytes": 1_000_000,
        "record_count": 5_000,
        "model_name": "chat-model",
        "model_version": "1.0",
    }
    return _data_handling("training_data_intake", at, fields, kw)


def annotation_check(**kw: Any) -> Row:
    """An annotation_quality_check row for chat-model 1.0."""
    at = kw.get("occurred_at", ts("2026-01-12 09:00"))
    fields: Row = {
        "dataset_id": "ds-1",
        "rules_version": "rules-1",
        "sample_size": 200,
        "sampled_accuracy": 0.97,
        "model_name": "chat-model",
        "model_version": "1.0",
    }
    return _data_handling("annotation_quality_check", at, fields, kw)


def safety_evaluation(**kw: Any) -> Row:
    """A safety_evaluation row of chat-model 1.0 that meets every TC260-003 figure."""
    at = kw.get("occurred_at", ts("2026-01-15 09:00"))
    fields: Row = {
        "model_name": "chat-model",
        "model_version": "1.0",
        "generated_test_size": 2000,
        "qualified_rate": 0.95,
        "should_refuse_test_size": 500,
        "refusal_rate": 0.97,
        "should_answer_test_size": 500,
        "false_refusal_rate": 0.02,
    }
    return _data_handling("safety_evaluation", at, fields, kw)


def identity_verification(**kw: Any) -> Row:
    """An identity_verification row: subj-1 verified by mobile number."""
    at = kw.get("occurred_at", ts("2026-03-01 09:00"))
    fields: Row = {"subject": "subj-1", "method": "mobile_number", "verified": True}
    return _data_handling("identity_verification", at, fields, kw)


def legal_hold(**kw: Any) -> Row:
    """A legal_hold row: hold-1 placed on subject subj-1 at the Beijing CAC's request."""
    at = kw.get("occurred_at", ts("2026-03-01 09:00"))
    fields: Row = {
        "hold_id": "hold-1",
        "hold_scope": "subject",
        "hold_target": "subj-1",
        "hold_action": "place",
        "hold_reason": "authority inquiry",
        "requested_by": "Beijing CAC",
    }
    return _data_handling("legal_hold", at, fields, kw)


def agreement_acceptance(**kw: Any) -> Row:
    """An agreement_acceptance row: subj-1 accepted user-terms 1.0 in the app at occurred_at."""
    at = kw.get("occurred_at", ts("2026-03-01 09:00"))
    fields: Row = {
        "subject": "subj-1",
        "agreement_id": "user-terms",
        "agreement_version": "1.0",
        "accepted_at": at,
        "channel": "app",
    }
    return _data_handling("agreement_acceptance", at, fields, kw)


def batch(**kw: Any) -> Row:
    """A batches row of producer-1, sequence 0, ten events."""
    sequence = kw.get("sequence", 0)
    defaults: Row = {
        "producer_id": PRODUCER,
        "sequence": sequence,
        "key_id": "key-1",
        "prev_digest": bytes(32),
        "digest": digest(f"batch-{sequence}"),
        "created_at": ts("2026-03-01 10:00"),
        "event_count": 10,
        "merkle_root": digest(f"root-{sequence}"),
        "signature": bytes(64),
        "topic": "aigc.audit",
        "partition": 0,
        "offset": sequence,
    }
    return _build(BATCHES, defaults, kw)


def quarantined(**kw: Any) -> Row:
    """A quarantine row: a message of producer-1 with a bad signature."""
    defaults: Row = {
        "topic": "aigc.audit",
        "partition": 0,
        "offset": 1000,
        "received_at": ts("2026-03-01 10:00"),
        "reason": "bad_signature",
        "detail": "signature does not verify",
        "producer_id": PRODUCER,
        "key_id": "key-1",
        "sequence": 1,
        "digest": digest("quarantined"),
        "advances_chain": False,
        "message": b"\x00\xffraw",
    }
    return _build(QUARANTINE, defaults, kw)


def finding(**kw: Any) -> Row:
    """A chain_findings row: a gap in producer-1's chain."""
    defaults: Row = {
        "producer_id": PRODUCER,
        "kind": "chain_gap",
        "expected_sequence": 1,
        "got_sequence": 3,
        "detail": "sequences 1..2 missing",
        "topic": "aigc.audit",
        "partition": 0,
        "offset": 2000,
        "received_at": ts("2026-03-01 10:00"),
    }
    return _build(CHAIN_FINDINGS, defaults, kw)


def update(row: Mapping[str, Any], **changes: Any) -> Row:
    """A later event about the same case, complaint, request or sanction: a copy of ``row`` with a
    fresh event id and ``changes`` applied (``occurred_at`` should be among them)."""
    unknown = set(changes) - set(row)
    if unknown:
        raise KeyError(f"not columns of the row: {sorted(unknown)}")
    fresh = {"event_id": uuid.uuid4()} if "event_id" in row else {}
    return {**row, **fresh, **changes}
