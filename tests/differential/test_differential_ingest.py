"""Pair (c): the ingest of generation events by the store's engine
(``consumers.ingest.engine_path.GenerationIngest``: chDB reads the poll's events from an Avro
file, checks them and inserts their rows) against the Python path (``consumers.ingest
.verification.BatchVerifier`` decoding every event with fastavro, ``consumers.store.rows
.batch_rows`` building the rows), which ``consumers.ingest.materialiser`` /
``consumers.ingest.poll_write`` choose between per poll.

The contract: whatever the engine passes, the verifier with the engine's word
(``engine_checked``) gives the verdict, reason and detail it gives decoding every event itself;
and the rows the engine inserts for accepted messages are, column for column, the rows Python
builds. Polls are generated: batches of generation events from the schema (edge values: any
code point, the ends of the calendar and of every integer column, non-UUID event ids, other
producers, nulls and values in every union), sometimes with events of another family, events
damaged byte by byte, and batches damaged as a whole (bytes that are no batch, a flipped
signature, a wrong Merkle root, a cut message).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigc_audit.consumers.ingest.engine_path import GenerationIngest
from aigc_audit.consumers.ingest.verification import BatchVerifier
from aigc_audit.consumers.store.rows import BusPosition, batch_rows
from aigc_audit.consumers.store.tables import BATCHES, EVENTS, GENERATIONS, Table
from aigc_audit.consumers.store_verification.canonical import (
    actual_row,
    canonical,
    canonical_select,
)
from aigc_audit.producers.batch import seal_batch
from aigc_audit.producers.codec import HEADER_SIZE, SchemaCatalogue
from aigc_audit.producers.events import Generation
from aigc_audit.producers.signing import SigningKey
from aigc_audit.producers.transports.base import BusMessage
from tests.differential.avro_values import damaged, encode, fresh_uuid, values
from tests.differential.conftest import scaled
from tests.harness import Harness, generation, now_us

pytestmark = pytest.mark.chdb

PRODUCER = "chat-1"
GEN = Generation.SCHEMA
_counter = itertools.count(1)
SEEN = {"engine_rows": 0, "refused": 0}
"""What the property met: rows the engine inserted, messages refused (checked at the end)."""


@dataclass
class Ingest:
    h: Harness
    catalogue: SchemaCatalogue
    engine: GenerationIngest
    verifier: BatchVerifier
    key: SigningKey
    sequence: int
    prev: bytes


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    """One embedded deployment whose producer has one accepted batch: each example's batches
    continue its chain (the verifier's chain never moves, nothing here is committed)."""
    h = Harness(tmp_path_factory.mktemp("ingest") / "data", engine_decoding=True)
    h.emit(PRODUCER, [generation(0)], batch_size=1)
    h.materialise()
    m = h.materialiser()
    assert m._ingest is not None  # the engine path is on
    for table in (GENERATIONS, EVENTS):  # each example's rows alone in these tables
        h.deployment.store().command(f"TRUNCATE TABLE audit.{table.name}")
    sequence, digest = h.query(
        "SELECT max(sequence), hex(argMax(digest, sequence)) FROM audit.batches"
    ).rows[0]
    yield Ingest(
        h,
        h.catalogue,
        m._ingest,
        m._verifier,
        h.key(PRODUCER),
        int(sequence) + 1,
        bytes.fromhex(digest),
    )
    h.close()


@st.composite
def event_bytes(draw: st.DrawFn, catalogue: SchemaCatalogue, rough: bool) -> bytes:
    """A generation of this producer with the values of real traffic; when ``rough``, edge
    values too, now and then another producer, another family, or damaged bytes."""
    family = GEN
    if rough and draw(st.integers(0, 6)) == 6:
        family = "aigc.audit.ModerationAction"
    schema = catalogue.schema(family)
    record = draw(
        values(schema, wild=draw(st.sampled_from([True, "numbers"])))
        if rough
        else values(schema, wild=False)
    )
    head = record["head"]
    if not rough or draw(st.integers(0, 9)) < 9:  # mostly a fresh UUID: rows of one id merge
        head["event_id"] = fresh_uuid(next(_counter))
    if not rough or draw(st.integers(0, 5)) < 5:
        head["producer_id"] = PRODUCER
    data = encode(catalogue, family, record)
    return draw(damaged(data, HEADER_SIZE)) if rough and draw(st.booleans()) else data


@st.composite
def polls(draw: st.DrawFn, ing: Ingest) -> list[BusMessage]:
    messages = []
    for offset in range(draw(st.integers(1, 3))):
        rough = draw(st.integers(0, 2)) > 0  # a third of the batches as real traffic
        events = draw(st.lists(event_bytes(ing.catalogue, rough), min_size=1, max_size=4))
        batch = seal_batch(
            events,
            producer_id=PRODUCER,
            key=ing.key,
            sequence=ing.sequence,
            prev_digest=ing.prev,
            created_at_us=0 if rough and draw(st.integers(0, 9)) == 9 else now_us(),  # 0: too early
        )
        value = bytearray(batch.encode(ing.catalogue))
        how = "sound"
        if rough:
            how = draw(st.sampled_from(["sound"] * 3 + ["signature", "root", "cut", "no batch"]))
        if how == "signature":
            value[value.rindex(batch.signature) + draw(st.integers(0, 63))] ^= 0x01
        elif how == "root":
            at = value.rindex(batch.merkle_root)
            value[at : at + 32] = bytes(32)
        elif how == "cut":
            del value[draw(st.integers(0, len(value) - 1)) :]
        elif how == "no batch":
            value = bytearray(draw(st.binary(max_size=30)))
        messages.append(BusMessage("differential", 0, offset, None, bytes(value), 0))
    return messages


def _stored(ing: Ingest, table: Table) -> list[str]:
    rows = ing.h.query(f"SELECT {canonical_select(table)} FROM audit.{table.name}").rows
    return sorted(repr(actual_row(r)) for r in rows)


@settings(
    max_examples=scaled(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_engine_and_python_give_one_verdict_and_the_same_rows(
    ingest: Ingest, data: st.DataObject
) -> None:
    ing = ingest
    messages = data.draw(polls(ing))
    poll = ing.engine.check(messages, ing.catalogue)
    try:
        accepted: list[int] = []
        expected: dict[str, list[str]] = {GENERATIONS.name: [], EVENTS.name: []}
        for index, message in enumerate(messages):
            checked = poll.is_checked(index)
            fast = ing.verifier.verify(
                message, engine_checked=checked, decoded=poll.decoded.get(index)
            )
            exact = ing.verifier.verify(message)
            # One verdict: what the engine passed, Python passes too, for the same reason.
            assert (fast.reason, fast.detail) == (exact.reason, exact.detail), index
            if not exact.accepted:
                SEEN["refused"] += 1
                continue
            assert fast.batch is not None and exact.batch is not None
            position = BusPosition(message.topic, message.partition, message.offset, 0)
            fast_rows = batch_rows(fast.batch, fast.events, position, poll.checked.get(index, []))
            exact_rows = batch_rows(exact.batch, exact.events, position)
            # The batch row (its hold keys, for the engine's events the engine's) is the same.
            assert [canonical(BATCHES, r) for r in fast_rows.by_table[BATCHES.name][1]] == [
                canonical(BATCHES, r) for r in exact_rows.by_table[BATCHES.name][1]
            ]
            engine_events = [f.record is None for f in fast.events]
            if any(engine_events):
                accepted.append(index)
            # Python's rows of the events the engine inserts: what the store must then hold.
            generation_rows = iter(exact_rows.by_table.get(GENERATIONS.name, (None, []))[1])
            event_rows = exact_rows.by_table[EVENTS.name][1]
            for event, row, by_engine in zip(exact.events, event_rows, engine_events, strict=True):
                generation_row = next(generation_rows) if event.schema == GEN else None
                if by_engine:
                    assert generation_row is not None
                    expected[EVENTS.name].append(repr(canonical(EVENTS, row)))
                    expected[GENERATIONS.name].append(repr(canonical(GENERATIONS, generation_row)))
        if accepted:
            ing.engine.insert(poll, accepted, f"differential/{next(_counter)}")
        for table in (GENERATIONS, EVENTS):
            assert _stored(ing, table) == sorted(expected[table.name]), table.name
        SEEN["engine_rows"] += len(expected[EVENTS.name])
    finally:
        poll.discard()
        for table in (GENERATIONS, EVENTS):
            ing.h.deployment.store().command(f"TRUNCATE TABLE audit.{table.name}")


def test_the_engine_does_take_sound_polls(ingest: Ingest, tmp_path: Path) -> None:
    """The property above is not vacuous: it met rows the engine inserted and messages refused
    (it runs first, in file order), and a poll of sound generations is the engine's."""
    if SEEN["refused"]:
        assert SEEN["engine_rows"] >= 10, SEEN
    ing = ingest
    events = [encode(ing.catalogue, GEN, _sound(n)) for n in range(3)]
    batch = seal_batch(
        events,
        producer_id=PRODUCER,
        key=ing.key,
        sequence=ing.sequence,
        prev_digest=ing.prev,
        created_at_us=now_us(),
    )
    message = BusMessage("differential", 0, 0, None, batch.encode(ing.catalogue), 0)
    poll = ing.engine.check([message], ing.catalogue)
    try:
        assert poll.is_checked(0)
        verdict = ing.verifier.verify(message, engine_checked=True, decoded=poll.decoded[0])
        assert verdict.accepted and all(e.record is None for e in verdict.events)
    finally:
        poll.discard()


def _sound(n: int) -> dict[str, Any]:
    event = generation(n)
    record = event.to_record(service_id="chat", producer_id=PRODUCER)
    _, raw = ingest_catalogue().decode(ingest_catalogue().encode(GEN, record), logical_types=False)
    return raw


def ingest_catalogue() -> SchemaCatalogue:
    from aigc_audit.producers.codec import default_catalogue

    return default_catalogue()
