"""Fuzzing the batch decoder, ``producers.batch.SignedBatch.decode``, and the verifier around it,
``consumers.ingest.verification.BatchVerifier.verify``, on a real signed batch built by the real
client code (seal_batch over real events) mutated byte by byte, and on hostile bytes.

The contract: decode returns a batch or raises DecodeError; the verifier never raises and
gives every message a declared reason (REASONS) unless it accepts it; and a mutated message
is accepted only if it decodes to exactly the original batch. That happens, knowingly: the
signature covers the head's fields and the Merkle root covers the event bytes, not the Avro
bytes of the message, so another spelling of the same fields (a varint with a redundant
continuation byte, a union or enum index fastavro reads leniently, an events array split into
blocks) carries the same signed content. The chain check then refuses it as a replay once the
original is accepted; the store keeps the signed content, never the message's own bytes.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aigc_audit.consumers.ingest.chain import ChainTracker
from aigc_audit.consumers.ingest.verification import REASONS, BatchVerifier
from aigc_audit.consumers.keys.keyring import Keyring
from aigc_audit.producers.batch import SignedBatch, seal_batch
from aigc_audit.producers.codec import HEADER_SIZE, MAGIC, default_catalogue
from aigc_audit.producers.errors import DecodeError
from aigc_audit.producers.signing import (
    GENESIS_DIGEST,
    KeyRegistration,
    SigningKey,
    sign_registration,
)
from aigc_audit.producers.transports.base import BusMessage
from tests.harness import generation, now_us

CATALOGUE = default_catalogue()
PRODUCER = "chat-1"
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
EVENTS = [
    CATALOGUE.encode(g.SCHEMA, g.to_record(service_id="chat", producer_id=PRODUCER))
    for g in (generation(n) for n in range(3))
]
BATCH = seal_batch(
    EVENTS,
    producer_id=PRODUCER,
    key=KEY,
    sequence=0,
    prev_digest=GENESIS_DIGEST,
    created_at_us=now_us(),
)
VALID = BATCH.encode(CATALOGUE)
BATCH_FP = CATALOGUE.fingerprint("aigc.audit.SignedBatch")


def verdict(value: bytes) -> tuple[bool, str | None]:
    message = BusMessage(
        topic="aigc-audit.events",
        partition=0,
        offset=0,
        key=PRODUCER.encode(),
        value=value,
        timestamp_us=now_us(),
    )
    v = BatchVerifier(CATALOGUE, KEYRING, ChainTracker({}, lambda _p, _s: None)).verify(message)
    if not v.accepted:
        assert v.reason in REASONS, v
    return v.accepted, v.reason


def decode_contract(value: bytes) -> SignedBatch | None:
    try:
        return SignedBatch.decode(value, CATALOGUE)
    except DecodeError:
        return None


def test_the_real_batch_is_accepted() -> None:
    assert verdict(VALID) == (True, None)


@given(st.binary(max_size=400))
def test_random_bytes(value: bytes) -> None:
    decode_contract(value)
    assert not verdict(value)[0]


@given(st.binary(max_size=400))
@example(b"\x02" + b"\x00" * 3 + b"\x00" * 32 + b"\x00" + b"\xff" * 10 + b"\x01")
def test_batch_fingerprint_and_random_body(body: bytes) -> None:
    value = MAGIC + BATCH_FP + body
    decode_contract(value)
    assert not verdict(value)[0]


@given(data=st.data())
def test_mutated_real_batch_is_never_accepted_unless_the_same_batch(
    kit: types.SimpleNamespace, data: st.DataObject
) -> None:
    value = data.draw(kit.mutated(VALID))
    accepted, _ = verdict(value)
    if accepted:  # another spelling of the same signed content, and nothing else
        assert decode_contract(value) == BATCH, value.hex()


def test_events_array_count_bomb(bounded: object) -> None:
    """The events array's block count set to 2**62 (and 2**40, -2**62): refused at once."""
    head = SignedBatch.decode(VALID, CATALOGUE)
    shell = BATCH.__class__(**{**head.__dict__, "events": ()}).encode(CATALOGUE)
    cut = len(shell) - 32 - 64 - 1
    for count in (2**62, 2**40, -(2**62)):
        zz = (count << 1) ^ (count >> 70) if count < 0 else count << 1
        varint = bytearray()
        while zz >= 0x80:
            varint.append((zz & 0x7F) | 0x80)
            zz >>= 7
        varint.append(zz)
        bomb = shell[:cut] + bytes(varint) + b"\x02x" + shell[cut:]
        outcome = bounded(lambda bomb=bomb: SignedBatch.decode(bomb, CATALOGUE))  # type: ignore[operator]
        assert isinstance(outcome.error, DecodeError), outcome
        assert outcome.seconds < 0.5 and outcome.peak_bytes < 4 << 20, outcome
        assert not verdict(bomb)[0]
    assert shell[:HEADER_SIZE] == VALID[:HEADER_SIZE]


def _respellings() -> dict[str, bytes]:
    """Other Avro spellings of the very batch VALID encodes: the mutations that keep the signed
    content, named one by one."""
    body = VALID[HEADER_SIZE:]
    assert body[0] == 0x02  # format_version 1, a one-byte varint
    shell = BATCH.__class__(**{**BATCH.__dict__, "events": ()}).encode(CATALOGUE)
    cut = len(shell) - 32 - 64 - 1 - HEADER_SIZE  # where the events array starts in the body
    tail = shell[HEADER_SIZE:][cut + 1 :]  # the two fixed fields after the array
    items = [bytes([len(e) * 2 & 0x7F | 0x80, len(e) * 2 >> 7]) + e for e in EVENTS]
    assert all(len(e) * 2 >> 7 < 0x80 for e in EVENTS)  # two-byte lengths, for this layout
    head = body[:cut]
    one_block = head + b"\x06" + b"".join(items) + b"\x00" + tail
    assert one_block == body
    return {
        "redundant varint byte in format_version": VALID[:HEADER_SIZE] + b"\x82\x00" + body[1:],
        "events in two blocks": VALID[:HEADER_SIZE]
        + head
        + b"\x02"
        + items[0]
        + b"\x04"
        + b"".join(items[1:])
        + b"\x00"
        + tail,
        "events in a block with its byte size (negative count)": VALID[:HEADER_SIZE]
        + head
        + b"\x05"
        + _varint_of(len(b"".join(items)))
        + b"".join(items)
        + b"\x00"
        + tail,
    }


def _varint_of(n: int) -> bytes:
    z, out = n << 1, bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    return bytes([*out, z])


def test_respellings_of_the_same_batch_are_the_same_signed_content() -> None:
    """The known mutations that leave the signed content identical: each is accepted, and
    decodes to exactly BATCH (same head, same event bytes): nothing unsigned got in."""
    for name, value in _respellings().items():
        assert value != VALID, name
        assert decode_contract(value) == BATCH, name
        assert verdict(value) == (True, None), name


@pytest.mark.parametrize(
    "fields",
    [
        {"sequence": -1},
        {"sequence": -(2**63)},
        {"key_id": "clé"},
        {"producer_id": "p" * 65_536},
    ],
)
def test_head_that_does_not_fit_its_signing_input_is_malformed(fields: dict[str, Any]) -> None:
    """Regression (found tracing the stream soak run's OverflowError to the store): a batch with
    sequence -1, from anyone who can write to the bus (no key needed), decoded; the verifier
    quarantined it (unknown key), and the materialiser, computing the batch's digest for the
    quarantine row, raised ValueError and stopped, on every restart. decode now refuses it."""
    value = dataclasses.replace(BATCH, **fields).encode(CATALOGUE)
    with pytest.raises(DecodeError, match="does not fit its signing input"):
        SignedBatch.decode(value, CATALOGUE)
    assert verdict(value) == (False, "malformed_batch")
