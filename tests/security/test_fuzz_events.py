"""Fuzzing the event decoder: ``producers.codec.SchemaCatalogue.decode`` on hostile bytes, alone
and as step 6 of ``consumers.ingest.verification.BatchVerifier`` inside a correctly signed batch
(the only place an event's bytes reach a decoder after the signature: a producer's key signs them,
so the producer is the adversary here).

The contract: decode returns a record or raises DecodeError (an AuditError), nothing else, at
once and without allocating what a length claims; the verifier gives a verdict with a declared
reason, never raises; and an event the verifier accepts is one the Avro specification allows,
read to the same values by an independent strict reader (``StrictReader`` in conftest.py): no
out-of-range int, union or enum index, no non-UTF-8 string gets past quarantine.
"""

from __future__ import annotations

import re
import types
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aigc_audit.consumers.ingest.chain import ChainTracker
from aigc_audit.consumers.ingest.verification import REASONS, BatchVerifier
from aigc_audit.consumers.keys.keyring import Keyring
from aigc_audit.producers.batch import SignedBatch, seal_batch
from aigc_audit.producers.codec import HEADER_SIZE, MAGIC, default_catalogue
from aigc_audit.producers.errors import AuditError, DecodeError
from aigc_audit.producers.events import (
    AuditEvent,
    ModerationAction,
    PersonalInformationRequest,
    SafetyEvaluation,
    UserSanction,
)
from aigc_audit.producers.signing import (
    GENESIS_DIGEST,
    KeyRegistration,
    SigningKey,
    sign_registration,
)
from aigc_audit.producers.transports.base import BusMessage
from tests.harness import T0, generation, now_us

CATALOGUE = default_catalogue()
PRODUCER = "fuzz-1"


def _events() -> list[AuditEvent]:
    detected = T0 + timedelta(minutes=3)
    moderation = ModerationAction(
        case_id="case-1",
        target="generation",
        target_ref="req-1",
        subject="subject-1",
        model_name="chat-model",
        model_version="1.0",
        detection_source="output_filter",
        risk_category="A.1.6",
        action="block_generation",
        detected_at=detected,
        acted_at=detected + timedelta(seconds=30),
        occurred_at=detected + timedelta(seconds=30),
    )
    return [
        generation(1),
        moderation,
        UserSanction(
            sanction_id="s-1",
            subject="subject-1",
            action="function_restriction",
            reason_category="A.1.6",
            restricted_functions=["image", "voice"],
            evidence=[str(moderation.event_id), "x"],
            effective_from=T0,
            effective_until=T0 + timedelta(days=3),
            occurred_at=T0,
        ),
        PersonalInformationRequest(
            subject="subject-1",
            request_id="pir-1",
            request_kind="delete",
            received_at=T0,
            due_at=T0 + timedelta(days=21),
            status="completed",
            completed_at=T0 + timedelta(days=3),
            occurred_at=T0,
        ),
        SafetyEvaluation(
            model_name="chat-model",
            model_version="1.0",
            generated_test_size=2000,
            qualified_rate=0.96,
            should_refuse_test_size=1000,
            refusal_rate=0.97,
            should_answer_test_size=1000,
            false_refusal_rate=0.02,
            occurred_at=T0,
        ),
    ]


def _encode(event: AuditEvent) -> bytes:
    record = event.to_record(service_id="fuzz", producer_id=PRODUCER)
    return CATALOGUE.encode(event.SCHEMA, record)


VALID = [_encode(e) for e in _events()]
"""One real encoding of each event kind, as the client writes it."""
SCHEMA_OF = {raw[2:HEADER_SIZE]: CATALOGUE.by_fingerprint(raw[2:HEADER_SIZE]) for raw in VALID}
FINGERPRINTS = sorted(
    {CATALOGUE.fingerprint(n) for n in CATALOGUE.names}
    # The released (older) writer schemas are decoded too; the catalogue keeps them private.
    | set(CATALOGUE._writers)
)

ROOT = SigningKey.generate()
KEY = SigningKey.generate()
KEYRING = Keyring(ROOT.public_key)
KEYRING.add(
    sign_registration(
        ROOT,
        KeyRegistration(
            key_id=KEY.key_id,
            producer_id=PRODUCER,
            public_key=KEY.public_key,
            valid_from_us=0,
            registered_at_us=0,
        ),
    )
)


def verifier() -> BatchVerifier:
    """A verifier with no chain history: every batch at sequence 0 from genesis continues it."""
    return BatchVerifier(CATALOGUE, KEYRING, ChainTracker({}, lambda _p, _s: None))


def message_of(batch: SignedBatch) -> BusMessage:
    return BusMessage(
        topic="aigc-audit.events",
        partition=0,
        offset=0,
        key=PRODUCER.encode(),
        value=batch.encode(CATALOGUE),
        timestamp_us=now_us(),
    )


def decode_contract(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """Decode both ways; only DecodeError may come out. Returns the raw decoding, if any."""
    out = None
    for logical in (False, True):
        try:
            decoded = CATALOGUE.decode(data, logical_types=logical)
        except DecodeError:
            continue
        if not logical:
            out = decoded
    return out


TOLERATED = re.compile(
    r"union index -\d+ of \d+ branches|enum index -\d+ of \d+ symbols|boolean byte \d+"
    r"|varint beyond 64 bits|negative block size|block size \d+, its items take \d+"
)
"""Spec-invalid encodings fastavro reads anyway, and that are tolerated, knowingly: each is a
second spelling of a value the schema allows (fastavro indexes a union's branches and an
enum's symbols as a Python list, so -1 is the last; any nonzero byte is a true boolean; a 10th
varint byte's high bits wrap; an array block's byte size, a hint for skipping, is read and not
checked), the record the store gets is the one decoded, the signed bytes
are kept exactly, and ``verify --store`` decodes them alike. A spec-strict reader (Java's
Avro) refuses such an event: see the report of issue 12. Nothing else may differ, and an int
beyond 32 bits (a value the schema does not allow, truncated by the store) is refused."""


def agrees(kit: types.SimpleNamespace, record: Any, data: bytes) -> bool:
    """Whether fastavro's reading of ``data`` is the strict reader's (or a tolerated spelling)."""
    try:
        return bool(kit.same_value(record, strict_read(kit, data)))
    except kit.Invalid as exc:
        return TOLERATED.fullmatch(str(exc)) is not None


def strict_read(kit: types.SimpleNamespace, data: bytes) -> Any:
    """The record an independent strict reader finds in single-object ``data`` (Invalid if
    the specification does not allow the bytes)."""
    schema = SCHEMA_OF.get(data[2:HEADER_SIZE])
    if schema is None or data[:2] != MAGIC:
        raise kit.Invalid("not one of the fuzzed schemas")
    import json

    return kit.StrictReader(json.loads(CATALOGUE.canonical_form(schema))).read(data[HEADER_SIZE:])


def verdict_contract(kit: types.SimpleNamespace, event: bytes) -> None:
    """The event inside a batch signed by a registered key: a declared verdict, never an
    exception; accepted only if the strict reader reads the same record."""
    batch = seal_batch(
        [event],
        producer_id=PRODUCER,
        key=KEY,
        sequence=0,
        prev_digest=GENESIS_DIGEST,
        created_at_us=now_us(),
    )
    message = message_of(batch)
    verdict = verifier().verify(message)
    if verdict.accepted:  # then it must be an event the specification allows
        assert verdict.events[0].record is not None
        assert agrees(kit, dict(verdict.events[0].record), event), event.hex()
    else:
        assert verdict.reason in REASONS, verdict


# --- from scratch --------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    decode_contract(data)


@given(st.sampled_from(FINGERPRINTS), st.binary(max_size=400))
@example(CATALOGUE.fingerprint("aigc.audit.Generation"), b"\xff" * 11 + b"\x01")
def test_known_fingerprint_random_body(fp: bytes, body: bytes) -> None:
    decode_contract(MAGIC + fp + body)


# --- from valid encodings ------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(VALID)))
@given(data=st.data())
def test_hostile_values_in_a_real_event(
    kit: types.SimpleNamespace, index: int, data: st.DataObject
) -> None:
    """Every field of a real event may lie: huge lengths and counts, negative lengths, union
    and enum indexes out of range, ints beyond 32 bits, bad UTF-8, overlong varints."""
    import json

    raw = VALID[index]
    schema = json.loads(CATALOGUE.canonical_form(SCHEMA_OF[raw[2:HEADER_SIZE]]))
    value = kit.StrictReader(schema).read(raw[HEADER_SIZE:])
    event = raw[:HEADER_SIZE] + data.draw(kit.hostile_encoding(schema, value))
    decoded = decode_contract(event)
    if decoded is not None:
        # What fastavro read must be what the specification reads: a differential check.
        assert agrees(kit, decoded[1], event), event.hex()


@pytest.mark.parametrize("index", range(len(VALID)))
@given(data=st.data())
def test_mutated_real_event(kit: types.SimpleNamespace, index: int, data: st.DataObject) -> None:
    event = data.draw(kit.mutated(VALID[index], keep=HEADER_SIZE))
    decoded = decode_contract(event)
    if decoded is not None:
        assert agrees(kit, decoded[1], event), event.hex()


@settings(max_examples=max(20, settings.default.max_examples // 2))
@pytest.mark.parametrize("index", range(len(VALID)))
@given(data=st.data())
def test_hostile_event_in_a_signed_batch(
    kit: types.SimpleNamespace, index: int, data: st.DataObject
) -> None:
    """Step 6 of the verifier on a hostile event whose batch passes steps 1 to 5."""
    import json

    raw = VALID[index]
    schema = json.loads(CATALOGUE.canonical_form(SCHEMA_OF[raw[2:HEADER_SIZE]]))
    value = kit.StrictReader(schema).read(raw[HEADER_SIZE:])
    if data.draw(st.booleans()):
        event = raw[:HEADER_SIZE] + data.draw(kit.hostile_encoding(schema, value, rate=20))
    else:
        event = data.draw(kit.mutated(raw, keep=HEADER_SIZE))
    verdict_contract(kit, event)


# --- bombs, one by one, with time and memory measured --------------------------------------


def _first_string_bomb(length: int) -> bytes:
    # Every event starts with its head, whose first field is the event_id string.
    return MAGIC + CATALOGUE.fingerprint("aigc.audit.Generation") + _zz(length) + b"abc"


def _zz(n: int) -> bytes:
    z = (n << 1) ^ (n >> 70) if n < 0 else n << 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    return bytes([*out, z])


@pytest.mark.parametrize("length", [2**40, 2**62, 2**63 - 1, -(2**40), -1])
def test_string_length_bomb_is_refused_at_once(bounded: Any, length: int) -> None:
    outcome = bounded(lambda: CATALOGUE.decode(_first_string_bomb(length)))
    assert isinstance(outcome.error, DecodeError), outcome
    assert outcome.seconds < 0.5, outcome
    assert outcome.peak_bytes < 4 << 20, outcome  # nothing near the declared length made


@pytest.mark.parametrize("count", [2**62, 2**40, -(2**62), 2**63 - 1, -(2**63)])
def test_array_count_bomb_is_refused_at_once(
    kit: types.SimpleNamespace, bounded: Any, count: int
) -> None:
    import json

    raw = next(r for r in VALID if SCHEMA_OF[r[2:HEADER_SIZE]] == "aigc.audit.UserSanction")
    schema = json.loads(CATALOGUE.canonical_form("aigc.audit.UserSanction"))
    value = kit.StrictReader(schema).read(raw[HEADER_SIZE:])
    # Cut the encoding where the evidence array starts: what follows is the bomb, a little of
    # the original (so a reader has something to chew on) and nothing else.
    before = kit.encode_value(schema, dict(value, evidence=[]))
    after = kit.encode_value(schema, value)
    cut = next(i for i in range(len(before)) if before[i] != after[i])
    bomb = raw[:HEADER_SIZE] + after[:cut] + kit.zigzag(count) + after[cut + 1 :]
    outcome = bounded(lambda: CATALOGUE.decode(bomb))
    assert isinstance(outcome.error, DecodeError), outcome
    assert outcome.seconds < 0.5, outcome
    assert outcome.peak_bytes < 4 << 20, outcome


def _generation_with(**fields: int) -> bytes:
    """The real generation event with some int fields set (written without a range check)."""
    import io

    from fastavro import schemaless_writer

    raw = VALID[0]
    _, record = CATALOGUE.decode(raw, logical_types=False)
    for name, value in fields.items():
        if name == "schema_version":
            record["head"]["schema_version"] = value
        else:
            record[name] = value
    out = io.BytesIO()
    schemaless_writer(out, CATALOGUE.schema("aigc.audit.Generation"), record)
    return raw[:HEADER_SIZE] + out.getvalue()


@pytest.mark.parametrize(
    "fields",
    [{"latency_ms": 2**40}, {"latency_ms": -(2**31) - 1}, {"schema_version": 2**32 + 1}],
)
def test_int_beyond_32_bits_is_quarantined(kit: types.SimpleNamespace, fields: Any) -> None:
    """Regression (found by test_hostile_values_in_a_real_event): fastavro read a varint of
    any size into an Avro int, and the store's Int32 column kept 2**40 as 0. Now refused."""
    event = _generation_with(**fields)
    with pytest.raises(DecodeError, match="beyond 32 bits"):
        CATALOGUE.decode(event, logical_types=False)
    batch = seal_batch(
        [event],
        producer_id=PRODUCER,
        key=KEY,
        sequence=0,
        prev_digest=GENESIS_DIGEST,
        created_at_us=now_us(),
    )
    message = message_of(batch)
    assert verifier().verify(message).reason == "malformed_event"


def test_soak_finding_a_sized_block_of_size_minus_one(kit: types.SimpleNamespace) -> None:
    """Found by the soak run: restricted_functions written as one sized block (count -1) whose
    byte size is -1. fastavro reads the size and ignores it, so the event decodes to the very
    record of the honest spelling: a tolerated spelling (TOLERATED), not a new value."""
    raw = next(r for r in VALID if SCHEMA_OF[r[2:HEADER_SIZE]] == "aigc.audit.UserSanction")
    honest = kit.zigzag(2) + b"\x0aimage\x0avoice\x00"
    assert honest in raw
    respelled = raw.replace(honest, kit.zigzag(-2) + kit.zigzag(-1) + honest[1:], 1)
    decoded = CATALOGUE.decode(respelled, logical_types=False)[1]
    assert decoded == CATALOGUE.decode(raw, logical_types=False)[1]
    with pytest.raises(kit.Invalid, match="negative block size"):
        strict_read(kit, respelled)
    assert agrees(kit, decoded, respelled)


def test_every_error_is_an_audit_error() -> None:
    """The declared type the contract relies on: DecodeError is an AuditError."""
    assert issubclass(DecodeError, AuditError)
