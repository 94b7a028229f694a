"""A fuzzed stream through the real embedded bus into the real Materialiser (chDB store, engine
decoding of generations on, as deployed): valid chained batches, mutations of them, correctly
signed batches whose events are hostile (the engine path and the Python path both read them),
random bytes, and hostile key registrations on the keys topic.

The contract: the materialiser never raises; every events-topic message ends in ``batches``
XOR ``quarantine``, quarantined with a declared reason; every keys-topic message is registered
XOR quarantined; and the process goes on (a fresh producer's batch afterwards is accepted).
"""

from __future__ import annotations

import dataclasses
import io
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_audit.consumers.ingest.verification import REASONS
from aigc_audit.consumers.store_verification import verify_store
from aigc_audit.producers.codec import HEADER_SIZE
from aigc_audit.producers.key_registration_codec import encode_registration
from aigc_audit.producers.signing import (
    GENESIS_DIGEST,
    KeyRegistration,
    SigningKey,
    load_public_key,
    sign_registration,
)
from tests.harness import Harness, generation

pytestmark = [pytest.mark.chdb, pytest.mark.e2e]

PRODUCER = "chat-1"
KEY_REASONS = {"malformed_key_registration", "bad_key_registration"}


@dataclass
class Stream:
    h: Harness
    key: SigningKey
    sequence: int = 0
    prev: bytes = GENESIS_DIGEST
    published: int = 0
    """Events-topic messages published so far (one partition: their offsets are 0..n-1)."""
    registration: bytes = b""
    """A real registration, signed by the deployment's root: what key garbage mutates."""
    template_event: bytes = b""
    template_batch: bytes = b""
    """A real event and a real signed batch, fixed for the session: what is mutated. (What
    hypothesis draws must not depend on the stream's state, or it cannot replay an example.)"""
    n: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def events(self, count: int) -> list[bytes]:
        self.n += count
        return [self.h.encode(generation(self.n - i), PRODUCER) for i in range(count)]

    def publish(self, value: bytes) -> None:
        self.h.publish(value, PRODUCER.encode())
        self.published += 1


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stream]:
    h = Harness(Path(tmp_path_factory.mktemp("stream")) / "data", partitions=1)
    key = h.key(PRODUCER)
    other = SigningKey.generate()
    registration = sign_registration(
        h.deployment.root_key(),
        KeyRegistration(
            key_id=other.key_id,
            producer_id="chat-9",
            public_key=other.public_key,
            valid_from_us=0,
            registered_at_us=0,
        ),
    )
    event = h.encode(generation(0), PRODUCER)
    template = h.seal(PRODUCER, [event, h.encode(generation(-1), PRODUCER)], sequence=0)
    yield Stream(
        h,
        key,
        registration=encode_registration(registration, h.catalogue),
        template_event=event,
        template_batch=template.encode(h.catalogue),
    )
    h.close()


@pytest.mark.parametrize("engine", [True, False])
@pytest.mark.parametrize(
    "fields",
    [{"output_tokens": -5}, {"latency_ms": -1}, {"schema_version": 70_000}],
)
def test_soak_finding_values_beyond_their_store_columns(
    tmp_path: Path, fields: dict[str, int], engine: bool
) -> None:
    """Regression (found by this file's soak run): a correctly signed generation whose
    output_tokens is -5 (a valid Avro long; the client's model would never write it) made the
    materialiser raise OverflowError (Nullable(UInt64) column) on the Python path, and was
    accepted and stored as 18446744073709551611 on the engine path; latency_ms -1 (UInt32) and
    schema_version 70000 (UInt16, stored as 4464) alike. Step 6 refuses each now, on both paths,
    naming the field, the value and the column (tests/security/test_event_value_ranges.py has
    every affected column).

    Defined before the stream tests, so it runs before them: a process holds one embedded
    store at a time, and the module's ``stream`` keeps its own open until the module ends."""
    h = Harness(tmp_path / "data", engine_decoding=engine)
    try:
        event = h.encode(generation(1), PRODUCER)
        _, record = h.catalogue.decode(event, logical_types=False)
        for name, value in fields.items():
            (record["head"] if name == "schema_version" else record)[name] = value
        body = io.BytesIO()
        schemaless_writer(body, h.catalogue.schema("aigc.audit.Generation"), record)
        h.publish_batch(h.seal(PRODUCER, [event[:HEADER_SIZE] + body.getvalue()]))
        h.materialise()  # raised OverflowError on the Python path
        assert h.quarantine_reasons() == [(0, "malformed_event")]
        ((name, value),) = fields.items()
        (detail,) = h.query("SELECT detail FROM audit.quarantine FINAL").rows[0]
        assert f"{name} = {value} does not fit the store column" in detail, detail
        assert h.count("generations") == h.count("events") == 0
    finally:
        h.close()


def _kinds() -> st.SearchStrategy[list[str]]:
    return st.lists(
        st.sampled_from(["valid", "mutated", "hostile_event", "random", "key_garbage"]),
        min_size=1,
        max_size=6,
    )


@settings(max_examples=max(6, settings.default.max_examples // 15), deadline=None)
@given(kinds=_kinds(), data=st.data())
def test_fuzzed_stream(
    stream: Stream, kit: types.SimpleNamespace, kinds: list[str], data: st.DataObject
) -> None:
    """deadline=None: one example is a materialiser poll over chDB (tens to hundreds of ms,
    with the engine's Avro check); the module's watchdog still bounds a hang."""
    import json

    h = stream.h
    catalogue = h.catalogue
    gen_schema = json.loads(catalogue.canonical_form("aigc.audit.Generation"))
    reader = kit.StrictReader(gen_schema)
    expect_accepted: list[int] = []  # valid batches whose chain position is known to be right
    chain_known = True  # until a hostile event's batch, which may or may not take a sequence
    for kind in kinds:
        stream.counts[kind] = stream.counts.get(kind, 0) + 1
        if kind == "random":
            stream.publish(data.draw(st.binary(max_size=200)))
        elif kind == "key_garbage":
            value = data.draw(kit.mutated(stream.registration) | st.binary(max_size=120))
            h.deployment.writer_as("key_publisher").publish(h.settings.keys_topic, b"k", value)
        elif kind == "mutated":
            stream.publish(data.draw(kit.mutated(stream.template_batch)))
        else:
            events = stream.events(data.draw(st.integers(1, 3)))
            if kind == "hostile_event":  # in a batch that continues the chain: step 6 decides
                raw = stream.template_event
                value = reader.read(raw[HEADER_SIZE:])
                events[0] = raw[:HEADER_SIZE] + data.draw(kit.hostile_encoding(gen_schema, value))
            batch = h.seal(PRODUCER, events, sequence=stream.sequence, prev=stream.prev)
            if kind == "valid" and chain_known:
                expect_accepted.append(stream.published)
            chain_known = chain_known and kind == "valid"
            stream.publish(batch.encode(catalogue))
            if kind == "valid":
                stream.sequence, stream.prev = stream.sequence + 1, batch.digest
    stats = h.materialise()  # must not raise
    stream.counts["engine_decoded"] = stream.counts.get("engine_decoded", 0) + stats.engine_decoded
    accepted = check_partition(stream)
    assert set(expect_accepted) <= accepted, "a valid batch was not accepted"
    # A hostile event batch that took the chain's next sequence was quarantined, and so its
    # sequence is free again; continue from what the store accepted.
    heads = h.query(
        "SELECT sequence, hex(digest) FROM audit.batches FINAL WHERE producer_id = {p:String} "
        "ORDER BY sequence DESC LIMIT 1",
        {"p": PRODUCER},
    ).rows
    if heads:
        stream.sequence, stream.prev = int(heads[0][0]) + 1, bytes.fromhex(heads[0][1])


def check_partition(stream: Stream) -> set[int]:
    """Check the XOR contract over every message published so far; the accepted offsets."""
    h = stream.h
    topic = h.settings.events_topic
    accepted = [
        int(r[0])
        for r in h.query(
            "SELECT offset FROM audit.batches FINAL WHERE topic = {t:String}", {"t": topic}
        ).rows
    ]
    quarantined = h.query(
        "SELECT offset, reason FROM audit.quarantine FINAL WHERE topic = {t:String}", {"t": topic}
    ).rows
    q_offsets = [int(o) for o, _ in quarantined]
    assert len(set(accepted)) == len(accepted) and len(set(q_offsets)) == len(q_offsets)
    assert not set(accepted) & set(q_offsets), "a message both accepted and quarantined"
    assert set(accepted) | set(q_offsets) == set(range(stream.published)), "a message lost"
    for offset, reason in quarantined:
        assert reason in REASONS, (offset, reason)
    keys_topic = h.settings.keys_topic
    key_q = h.query(
        "SELECT reason FROM audit.quarantine FINAL WHERE topic = {t:String}", {"t": keys_topic}
    ).rows
    assert all(r in KEY_REASONS for (r,) in key_q), key_q
    return set(accepted)


def test_the_process_goes_on(stream: Stream) -> None:
    """After the fuzzed stream, a new producer's first batch is accepted as any other."""
    h = stream.h
    batch = h.seal("chat-2", [h.encode(generation(10_000), "chat-2")])
    h.publish_batch(batch)
    h.materialise()
    rows = h.query("SELECT count() FROM audit.batches FINAL WHERE producer_id = 'chat-2'").rows
    assert int(rows[0][0]) == 1
    # The stream went through both decoding paths: the engine's (whole clean polls of
    # generations) and Python's (any poll with a hostile event falls back to it).
    assert stream.counts.get("engine_decoded", 0) > 0, stream.counts
    assert stream.counts.get("hostile_event", 0) > 0, stream.counts
    # Regression (found by test_fuzz_events): a correctly signed generation whose latency_ms,
    # an Avro int, holds 2**40 was accepted and stored as 0. It is quarantined now.
    event = h.encode(generation(10_001), "chat-3")
    _, record = h.catalogue.decode(event, logical_types=False)
    record["latency_ms"] = 2**40
    body = io.BytesIO()
    schemaless_writer(body, h.catalogue.schema("aigc.audit.Generation"), record)
    h.publish_batch(h.seal("chat-3", [event[:HEADER_SIZE] + body.getvalue()]))
    h.materialise()
    assert h.query(
        "SELECT reason FROM audit.quarantine FINAL "
        "WHERE offset = {o:UInt64} AND topic = {t:String}",
        {"o": stream.published + 1, "t": h.settings.events_topic},
    ).rows == [("malformed_event",)]
    stream.published += 2
    # Regression (found tracing this file's soak finding): a batch with sequence -1, from anyone who
    # can write to the bus, stopped the materialiser (the quarantine row's digest raised).
    poison = dataclasses.replace(h.seal("chat-3", [event]), sequence=-1, key_id="nobody")
    h.publish(poison.encode(h.catalogue), b"chat-3")
    h.materialise()
    stream.published += 1
    check_partition(stream)
    # And what the fuzzed stream left in the store is what its signed bytes say: verify --store
    # rebuilds every row in Python from the proven event bytes and compares it with the row the
    # materialiser inserted (the engine's, for generations), checks every offset is in batches
    # or quarantine once, and every checkpoint.
    result = verify_store(h.deployment.store(), load_public_key(h.settings.root_public_key_path))
    assert result.ok, [f.line() for f in result.findings][:10]
