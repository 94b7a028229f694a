"""Turns one verified batch into the rows of every table it touches (the message processor).

Pure functions of the batch and its bus position: the same batch always gives the same rows,
which is what makes a replayed store identical and a retried insert deduplicable.

Records come decoded without Avro logical types (``SchemaCatalogue.decode(...,
logical_types=False)``): timestamps stay integer microseconds since the epoch and UUIDs stay
text, exactly as written, and the stores take both as they are. Building a datetime and a UUID
object per field only to take them apart again at insert cost a third of the decoding time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aigc_audit.consumers.store.tables import BATCHES, EVENTS, FAMILY_TABLES, LEGAL_HOLDS, Table
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.merkle import leaf_hash

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us_to_datetime(us: int) -> datetime:
    """Microseconds since the epoch as an exact UTC datetime (no float rounding)."""
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class BusPosition:
    topic: str
    partition: int
    offset: int
    timestamp_us: int

    def token(self, table: Table) -> str:
        """The insert deduplication token of this message's rows in ``table``."""
        return f"{self.topic}/{self.partition}/{self.offset}/{table.name}"


@dataclass(frozen=True)
class DecodedEvent:
    schema: str
    fingerprint: bytes
    record: Mapping[str, Any] | None
    """None for an event whose rows the store's engine decodes and inserts itself
    (:mod:`consumers.ingest.engine_path`)."""
    raw: bytes
    leaf_hash: bytes | None = None
    """The RFC 6962 leaf hash of ``raw`` when the verifier already computed it."""


@dataclass
class BatchRows:
    by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = field(default_factory=dict)

    def add(self, table: Table, row: dict[str, Any]) -> None:
        self.by_table.setdefault(table.name, (table, []))[1].append(row)


def _head(record: Mapping[str, Any]) -> dict[str, Any]:
    head = record["head"]
    return {
        "event_id": head["event_id"],
        "occurred_at": head["occurred_at"],
        "service_id": head["service_id"],
        "producer_id": head["producer_id"],
    }


def _report(report: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "reported": report["reported"],
        "authority": report["authority"],
        "report_reference": report["reference"],
        "reported_at": report["reported_at"],
    }


def generation_row(record: Mapping[str, Any]) -> dict[str, Any]:
    # The hot path (most events are generations): copy, then overwrite, rather than filter.
    row = dict(record)
    del row["head"]
    row.update(_head(record))
    label = record["implicit_label"]
    if label:
        row["implicit_label"] = True
        row["label_value"] = label.get("label")
        row["content_producer"] = label.get("content_producer")
        row["produce_id"] = label.get("produce_id")
        row["reserved_code1"] = label.get("reserved_code1")
    else:
        row["implicit_label"] = False
    return row


def moderation_row(record: Mapping[str, Any]) -> dict[str, Any]:
    rect = record["rectification"] or {}
    complaint = record["complaint"] or {}
    skip = ("head", "rectification", "complaint", "authority_report")
    return {
        **_head(record),
        "event_type": record["head"]["event_type"],
        **{k: v for k, v in record.items() if k not in skip},
        "rectification_ticket": rect.get("ticket_id"),
        "rectification_opened_at": rect.get("opened_at"),
        "rectification_due_at": rect.get("due_at"),
        "rectification_closed_at": rect.get("closed_at"),
        **_report(record["authority_report"]),
        "complaint_id": complaint.get("complaint_id"),
        "complaint_channel": complaint.get("channel"),
        "complaint_received_at": complaint.get("received_at"),
        "complaint_due_by": complaint.get("due_by"),
        "complaint_handled_at": complaint.get("handled_at"),
        "complaint_feedback_at": complaint.get("feedback_at"),
    }


def sanction_row(record: Mapping[str, Any]) -> dict[str, Any]:
    skip = ("head", "authority_report")
    return {
        **_head(record),
        **{k: v for k, v in record.items() if k not in skip},
        **_report(record["authority_report"]),
    }


def data_handling_row(record: Mapping[str, Any]) -> dict[str, Any]:
    event_type = record["head"]["event_type"]
    detail = record.get(event_type)
    if not isinstance(detail, Mapping):
        raise ValueError(f"data-handling event of type {event_type} has no {event_type} detail")
    others = [k for k, v in record.items() if k not in ("head", "subject", event_type) and v]
    if others:
        raise ValueError(f"data-handling event of type {event_type} also sets {others}")
    return {**_head(record), "event_type": event_type, "subject": record["subject"], **detail}


FAMILY_ROWS = {
    "aigc.audit.Generation": generation_row,
    "aigc.audit.ModerationAction": moderation_row,
    "aigc.audit.UserSanction": sanction_row,
    "aigc.audit.DataHandling": data_handling_row,
}


def hold_keys(record: Mapping[str, Any]) -> list[str]:
    """The legal-hold keys a record answers to: ``subject:<id>`` and, for moderation cases,
    ``case:<id>``. A hold on any of them keeps the record past its retention period."""
    keys = []
    subject = record.get("subject")
    if subject:
        keys.append(f"subject:{subject}")
    if record.get("case_id"):
        keys.append(f"case:{record['case_id']}")
    return keys


def legal_hold_row(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``legal_holds`` row of a legal-hold event; None for any other event."""
    hold = record.get("legal_hold")
    if not hold:
        return None
    return {
        "hold_key": f"{hold['hold_scope']}:{hold['hold_target']}",
        "hold_id": hold["hold_id"],
        "active": hold["hold_action"] == "place",
        "occurred_at": record["head"]["occurred_at"],
        "event_id": record["head"]["event_id"],
    }


def batch_rows(
    batch: SignedBatch,
    events: list[DecodedEvent],
    position: BusPosition,
    engine_hold_keys: Iterable[str] = (),
) -> BatchRows:
    """Rows for ``events`` (the decoded ``batch.events``, in order) and for the batch itself.

    Events without a record are left to the store's engine; ``engine_hold_keys`` are their
    hold keys, which the batch row carries with the others.
    """
    rows = BatchRows()
    batch_keys: set[str] = set(engine_hold_keys)
    for index, event in enumerate(events):
        if event.record is None:
            continue
        head = event.record["head"]
        family_table = FAMILY_TABLES[event.schema]
        keys = hold_keys(event.record)
        batch_keys.update(keys)
        rows.add(family_table, {**FAMILY_ROWS[event.schema](event.record), "hold_keys": keys})
        hold = legal_hold_row(event.record)
        if hold is not None:
            rows.add(LEGAL_HOLDS, hold)
        rows.add(
            EVENTS,
            {
                "hold_keys": keys,
                "event_id": head["event_id"],
                "event_type": head["event_type"],
                "family": event.schema,
                "occurred_at": head["occurred_at"],
                "service_id": head["service_id"],
                "producer_id": head["producer_id"],
                "schema_version": head["schema_version"],
                "schema_fingerprint": event.fingerprint,
                "batch_sequence": batch.sequence,
                "leaf_index": index,
                "leaf_hash": event.leaf_hash or leaf_hash(event.raw),
                "event_bytes": event.raw,
            },
        )
    rows.add(
        BATCHES,
        {
            "producer_id": batch.producer_id,
            "sequence": batch.sequence,
            "key_id": batch.key_id,
            "prev_digest": batch.prev_digest,
            "digest": batch.digest,
            "created_at": us_to_datetime(batch.created_at_us),
            "event_count": len(batch.events),
            "merkle_root": batch.merkle_root,
            "signature": batch.signature,
            "topic": position.topic,
            "partition": position.partition,
            "offset": position.offset,
            # A batch row proves its events: it stays as long as any of them is held.
            "hold_keys": sorted(batch_keys),
        },
    )
    return rows
