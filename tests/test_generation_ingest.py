"""The store's engine decoding generation events (consumers.ingest.engine_path) gives exactly the
rows Python gives, and refuses at least everything Python refuses."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer

from aigc_audit.consumers.ingest.engine_path import GenerationIngest
from aigc_audit.consumers.ingest.logical_values import LogicalChecks
from aigc_audit.consumers.store.embedded import EmbeddedStore
from aigc_audit.consumers.store.rows import BusPosition, DecodedEvent, batch_rows
from aigc_audit.consumers.store.tables import BATCHES, EVENTS, GENERATIONS, Table
from aigc_audit.consumers.store_verification import verify_store
from aigc_audit.consumers.store_verification.canonical import (
    actual_row,
    canonical,
    canonical_select,
)
from aigc_audit.producers.batch import seal_batch
from aigc_audit.producers.codec import HEADER_SIZE, default_catalogue
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.events import LegalHold, ModerationAction
from aigc_audit.producers.events.base import AVRO_LONG_MAX
from aigc_audit.producers.events.generation import ImplicitLabel
from aigc_audit.producers.signing import SigningKey, load_public_key
from aigc_audit.producers.transports.base import BusMessage
from tests.harness import T0, Harness, generation

pytestmark = pytest.mark.chdb

PRODUCER = "chat-1"


def varied_generations() -> list[Any]:
    """Every optional field set and unset, odd text, extreme numbers."""
    label = ImplicitLabel(label="2", content_producer="xinghe", produce_id="p-1")
    return [
        generation(0),
        generation(1, filing_number=None, output_sha256=None, input_tokens=None),
        generation(2, implicit_label=label, minor_mode=True, modality="image", channel="api"),
        generation(
            3,
            implicit_label=ImplicitLabel(
                content_producer="星河", produce_id="生成-3", reserved_code1="r1"
            ),
            safety_verdict="blocked",
        ),
        generation(4, request_id="请求-四 🚀", model_name="星河大模型", subject="用户-4"),
        generation(5, input_tokens=AVRO_LONG_MAX, output_tokens=0, output_bytes=AVRO_LONG_MAX),
        generation(6, unlabelled_on_request=True, explicit_label=False, latency_ms=2**31 - 1),
        generation(7, occurred_at=T0.replace(year=1971), modality="video"),
        generation(8, occurred_at=T0.replace(year=2999), safety_verdict="refused"),
    ]


def mixed_traffic() -> list[Any]:
    hold = LegalHold(
        hold_id="h-1",
        hold_scope="subject",
        hold_target="subject-3",
        hold_action="place",
        hold_reason="inspection 2026-11",
    )
    incident = ModerationAction(
        case_id="case-1",
        target="generation",
        target_ref="req-3",
        detection_source="output_filter",
        risk_category="A.1.6",
        action="block_generation",
        detected_at=T0,
        acted_at=T0,
    )
    # Families interleaved, so batches mix engine-decoded and Python-decoded events.
    return [*varied_generations()[:4], incident, hold, *varied_generations()[4:]]


def table_rows(h: Harness, table: Table, columns: tuple[str, ...] | None = None) -> list[Any]:
    select = canonical_select(table)
    rows = h.query(f"SELECT {select} FROM audit.{table.name}").rows
    names = table.column_names
    keep = [names.index(c) for c in columns] if columns else range(len(names))
    return sorted(repr(tuple(actual_row(r)[i] for i in keep)) for r in rows)


def test_engine_rows_equal_python_rows(tmp_path: Path) -> None:
    runs = {}
    traffic = mixed_traffic()  # the same events (ids, times) into both stores
    for engine in (True, False):
        h = Harness(tmp_path / f"engine-{engine}", engine_decoding=engine)
        try:
            h.emit(PRODUCER, traffic, batch_size=4)
            stats = h.materialise()
            # the engine path really ran, or really did not
            assert stats.engine_decoded == (9 if engine else 0)
            assert stats.events_materialised == 11
            runs[engine] = {
                "generations": table_rows(h, GENERATIONS),
                "events": table_rows(h, EVENTS),
                # signatures and times differ between the two deployments; hold keys must not
                "batches": table_rows(h, BATCHES, ("sequence", "event_count", "hold_keys")),
            }
            root = load_public_key(h.settings.root_public_key_path)
            result = verify_store(h.deployment.store(), root)
            assert result.ok, [f.line() for f in result.findings]
        finally:
            h.close()
    assert len(runs[True]["generations"]) == 9
    assert runs[True] == runs[False]
    assert any("subject:subject-3" in row for row in runs[True]["batches"])


def _event(producer: str = PRODUCER, **overrides: Any) -> bytes:
    record = generation(1, **overrides).to_record(service_id="chat", producer_id=producer)
    return default_catalogue().encode("aigc.audit.Generation", record)


def _replace(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert raw.count(old) == 1
    return raw.replace(old, new)


def _beyond(name: str, value: int) -> bytes:
    """A sound generation with ``name`` (a field, or the head's ``schema_version``) set to
    ``value``: valid Avro, but beyond the field's store column."""
    catalogue = default_catalogue()
    raw = _event()
    _, record = catalogue.decode(raw, logical_types=False)
    (record["head"] if name == "schema_version" else record)[name] = value
    body = io.BytesIO()
    schemaless_writer(body, catalogue.schema("aigc.audit.Generation"), record)
    return raw[:HEADER_SIZE] + body.getvalue()


BAD_EVENTS = {
    "trailing bytes": lambda: _event() + b"\x00\x00",
    "one byte short": lambda: _event()[:-1],
    "invalid UTF-8 in a string": lambda: _replace(
        _event(request_id="req-Z"), b"req-Z", b"req-\xff"
    ),
    "another producer's event": lambda: _event(producer="other-1"),
    "a body that is not the record": lambda: _event()[:10] + b"\xff" * 7,
    # head.event_id is the first field: its length (36, zigzag 0x48) then its text
    "an event id that is not a UUID": lambda: (lambda raw: raw[:11] + b"n" * 36 + raw[47:])(
        _event()
    ),
    # filing_number is ["null", string]: index 0 (null) made 2, then 55; fastavro refuses both
    "a union index of 2": lambda: _replace(
        _event(filing_number=None, model_version="v-u"), b"v-u\x00", b"v-u\x04"
    ),
    "a union index of 55": lambda: _replace(
        _event(filing_number=None, model_version="v-u"), b"v-u\x00", b"v-u\x6e"
    ),
    "an unknown enum symbol index": lambda: _replace(
        _event(filing_number="F-1", subject="S-1"), b"F-1\x00", b"F-1\x0e"
    ),
    # Values Avro carries that their store column cannot hold: the engine read them as Int64
    # or Int32 and stored them wrapped; Python's Arrow insert raised OverflowError.
    "output_tokens -5 (UInt64 column)": lambda: _beyond("output_tokens", -5),
    "input_tokens the least long (UInt64 column)": lambda: _beyond("input_tokens", -(2**63)),
    "output_bytes -1 (UInt64 column)": lambda: _beyond("output_bytes", -1),
    "latency_ms -1 (UInt32 column)": lambda: _beyond("latency_ms", -1),
    "latency_ms the least int (UInt32 column)": lambda: _beyond("latency_ms", -(2**31)),
    "schema_version 70000 (UInt16 column)": lambda: _beyond("schema_version", 70_000),
    "schema_version 65536 (UInt16 column)": lambda: _beyond("schema_version", 65_536),
    "schema_version -1 (UInt16 column)": lambda: _beyond("schema_version", -1),
}


@pytest.mark.parametrize("bad", sorted(BAD_EVENTS))
def test_a_bad_generation_is_quarantined_as_python_would(tmp_path: Path, bad: str) -> None:
    """The same hostile batch through engine decoding on and off: the same quarantine verdict
    and detail, the same tables."""
    catalogue = default_catalogue()
    # The same event bytes into both deployments (fresh event ids otherwise).
    good = [_event(**generation(n).model_dump(exclude={"event_id"})) for n in range(3)]
    hostile = BAD_EVENTS[bad]()
    other = _event("other-1", **generation(9).model_dump(exclude={"event_id"}))
    assert catalogue.decode(other)[1]["head"]["producer_id"] == "other-1"
    outcomes = {}
    for engine in (True, False):
        h = Harness(tmp_path / f"engine-{engine}", engine_decoding=engine)
        try:
            first, second = h.chain(PRODUCER, [good, [good[0], hostile]])
            h.publish_batch(first)
            h.publish_batch(second)
            h.publish_batch(h.seal("other-1", [other]))
            h.materialise()
            outcomes[engine] = (
                h.query("SELECT offset, reason, detail FROM audit.quarantine ORDER BY offset").rows,
                table_rows(h, GENERATIONS),
                table_rows(h, EVENTS),
                table_rows(h, BATCHES, ("producer_id", "sequence", "event_count", "hold_keys")),
            )
        finally:
            h.close()
    quarantined, generations, events, _batches = outcomes[True]
    assert outcomes[True] == outcomes[False]
    assert [int(offset) for offset, _, _ in quarantined] == [1]
    assert quarantined[0][1] in ("malformed_event", "event_producer_mismatch")
    assert len(generations) == len(events) == 4  # the good batches, whole


@pytest.mark.slow
def test_engine_accepts_nothing_python_refuses(tmp_path: Path) -> None:
    """Random damage to generation events: whatever the engine passes, fastavro decodes as a
    record of the batch's producer, and the rows the engine inserts equal Python's."""
    catalogue = default_catalogue()
    store = EmbeddedStore(tmp_path / "store")
    store.migrate()
    ingest = GenerationIngest(store, catalogue, tmp_path / "ingest")
    key = SigningKey.generate()
    rng = random.Random(20261124)
    models = varied_generations()
    passed = refused = 0
    expected: list[Any] = []
    for case in range(240):
        # a fresh event id per case: rows of one id would be merged away in the store
        raw = bytearray(_event(**rng.choice(models).model_dump(exclude={"event_id"})))
        damage = rng.choice(("flip", "cut", "grow"))
        if damage == "flip":
            at = rng.randrange(10, len(raw))
            raw[at] = rng.randrange(256)
        elif damage == "cut":
            del raw[rng.randrange(11, len(raw)) :]
        else:
            raw += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        event = bytes(raw)
        batch = seal_batch(
            [event],
            producer_id=PRODUCER,
            key=key,
            sequence=case,
            prev_digest=bytes(32),
            created_at_us=0,
        )
        message = BusMessage(
            topic="t",
            partition=0,
            offset=case,
            key=None,
            value=batch.encode(catalogue),
            timestamp_us=0,
        )
        poll = ingest.check([message], catalogue)
        try:
            schema, record = catalogue.decode(event, logical_types=False)
            LogicalChecks(catalogue).check(schema, record)
            python_ok = record["head"]["producer_id"] == PRODUCER
        except (AuditError, ValueError, TypeError) as exc:
            python_ok = False
            why = exc
        if poll.is_checked(0):
            assert python_ok, f"case {case} {damage}: engine passed what Python refuses: {why}"
            passed += 1
            ingest.insert(poll, [0], f"t/0/{case}-{case}")
            decoded = [DecodedEvent(schema, event[2:10], record, event)]
            rows = batch_rows(batch, decoded, BusPosition("t", 0, case, 0))
            expected += [canonical(GENERATIONS, r) for r in rows.by_table["generations"][1]]
        else:
            refused += 1
        poll.discard()
    assert passed > 20 and refused > 20  # the damage both kept and broke events
    got = store.query(f"SELECT {canonical_select(GENERATIONS)} FROM audit.generations").rows
    assert sorted(map(repr, map(actual_row, got))) == sorted(map(repr, expected))
    assert list((tmp_path / "ingest").iterdir()) == []  # no poll file left behind
    store.close()


def test_logical_checks_refuse_what_a_datetime_or_uuid_could_not_hold() -> None:
    checks = LogicalChecks(default_catalogue())
    record = generation(1).to_record(service_id="chat", producer_id=PRODUCER)
    raw = default_catalogue().encode("aigc.audit.Generation", record)
    _schema, plain = default_catalogue().decode(raw, logical_types=False)
    checks.check("aigc.audit.Generation", plain)  # a sound event passes
    for field, value in (("event_id", "not-a-uuid"), ("occurred_at", 2**62)):
        bad = {**plain, "head": {**plain["head"], field: value}}
        with pytest.raises(ValueError, match=f"head.{field}"):
            checks.check("aigc.audit.Generation", bad)
