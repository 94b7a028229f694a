"""Each pipeline stage timed alone, next to the raw speed of the library it stands on (issue 6).

:func:`measure_stages` builds a realistic mix of events (generations with a few moderation
actions) *before* any clock runs, then walks them through the pipeline one stage at a time,
timing only that stage over the whole set with :func:`time.perf_counter`, and times the
library underneath doing the same work on the same data:

* **validate and encode**: ``RecordEncoder.encode`` (what the client's batcher worker does
  with each emitted event, off the caller's thread) vs ``fastavro.schemaless_writer`` of the
  records;
* **Merkle root and signature**: ``seal_batch`` + ``SignedBatch.encode`` per batch of 500 (the
  batcher worker's work) vs the crypto floor, Ed25519 sign per batch + SHA-256 per event;
* **bus produce**: ``EmbeddedLogWriter`` / ``KafkaLogWriter`` ``publish`` per batch vs one
  ``sqlite3`` ``executemany`` / a raw ``KafkaProducer(acks='all')`` send + flush;
* **bus consume**: ``EmbeddedLogReader`` / ``KafkaGroupReader`` poll + commit loop vs a raw
  ``SELECT`` / a raw ``KafkaConsumer``;
* **batch verification**: ``BatchVerifier.verify``, steps 1-6, so decoding every event too, vs
  the crypto floor, Ed25519 verify per batch + SHA-256 per event;
* **decode**: ``SchemaCatalogue.decode`` vs ``fastavro.schemaless_reader``;
* **store insert**: ``EmbeddedStore.insert`` per table per batch (as the materialiser does) vs
  one raw chDB ``INSERT`` per table (JSONEachRow text or an Arrow table, the faster).

Every figure is in events per second. Each stage checks that it (and its library twin) really
processed everything (messages read back, batches accepted, rows stored) and raises
:class:`StageCheckError` otherwise, so a fast figure can never be a figure of nothing.

Run it::

    python -m aigc_audit.consumers.bench.stages --events 100000 --bus embedded
    python -m aigc_audit.consumers.bench.stages --bus kafka --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import hashlib
import io
import json
import math
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import fastavro
from fastavro import schemaless_reader, schemaless_writer

from aigc_audit.consumers.ingest.chain import ChainTracker
from aigc_audit.consumers.ingest.poll_write import PollWrite
from aigc_audit.consumers.ingest.verification import BatchVerifier, Verdict
from aigc_audit.consumers.keys.keyring import Keyring
from aigc_audit.consumers.store.rows import BatchRows, BusPosition, batch_rows, us_to_datetime
from aigc_audit.consumers.store.tables import Table
from aigc_audit.producers.batch import SignedBatch, seal_batch
from aigc_audit.producers.codec import HEADER_SIZE, SchemaCatalogue, default_catalogue
from aigc_audit.producers.events import (
    AuditEvent,
    Channel,
    DetectionSource,
    Generation,
    ImplicitLabel,
    Modality,
    ModerationAction,
    ModerationOutcome,
    ModerationTarget,
    SafetyVerdict,
)
from aigc_audit.producers.merkle import merkle_root
from aigc_audit.producers.pseudonym import pseudonymise
from aigc_audit.producers.signing import (
    GENESIS_DIGEST,
    KeyRegistration,
    SigningKey,
    batch_signing_input,
    sign_registration,
    verify_signature,
)
from aigc_audit.producers.transports.base import BusMessage, positions_after
from aigc_audit.producers.transports.embedded_log import EmbeddedLog

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_EVENTS",
    "STAGES",
    "StageCheckError",
    "StageFigure",
    "WireSizes",
    "build_events",
    "bytes_per_event",
    "format_figures",
    "measure_stages",
    "measure_wire_sizes",
]

DEFAULT_EVENTS = 100_000
"""Events per run by default: a run of every stage stays well under a minute on two cores."""

BATCH_SIZE = 500
"""Events per sealed batch: the client's default ``batch_size``."""

POLL_SIZE = 200
"""Messages per poll when reading back: the materialiser's ``run_once`` default."""

SERVICE_ID = "bench"
PRODUCER_ID = "bench-1"
TOPIC = "aigc-audit.events"
MODERATION_EVERY = 40
"""One event in this many is a moderation action; the rest are generations."""

STAGES: tuple[str, ...] = (
    "validate and encode",
    "Merkle root and signature",
    "bus produce",
    "bus consume",
    "batch verification",
    "decode",
    "store insert",
    "engine check (generations)",
    "engine insert (generations)",
)
"""The stages, in pipeline order; the last two are what the embedded store's engine does for
generation events in place of the Python decode and insert (the path other events take)."""

Bus = Literal["embedded", "kafka"]
T = TypeVar("T")


POLL_MESSAGES = 200
"""Messages per materialiser poll (``Materialiser.run_once``'s default)."""


class StageCheckError(RuntimeError):
    """A stage (or its library twin) did not process all of its data: its figure would lie."""


@dataclass(frozen=True)
class StageFigure:
    """One stage: our throughput next to the library's on the same data, in events/s."""

    name: str
    ours_eps: float
    library: str
    library_eps: float
    events: int = 0
    """Events the stage carried (both sides carry the same ones)."""
    bus: Bus | None = None
    """For the bus stages, which bus."""
    note: str = ""
    """What exactly is timed, when the name alone does not say it."""

    @property
    def ratio(self) -> float:
        """ours / library: 1.0 means as fast as the library, 0.1 ten times slower."""
        return self.ours_eps / self.library_eps

    @property
    def label(self) -> str:
        return f"{self.name} [{self.bus}]" if self.bus else self.name


@dataclass(frozen=True)
class WireSizes:
    """Average bytes of one encoded event, and bus bytes (signed batch messages) per event."""

    event_bytes: float
    bus_bytes_per_event: float


def bytes_per_event(encoded: Sequence[bytes], messages: Sequence[bytes]) -> WireSizes:
    """Sizes of ``encoded`` events and of the bus ``messages`` that carry all of them."""
    if not encoded:
        raise ValueError("no events")
    count = len(encoded)
    return WireSizes(
        event_bytes=sum(map(len, encoded)) / count,
        bus_bytes_per_event=sum(map(len, messages)) / count,
    )


# --- the data ------------------------------------------------------------------------------------

_T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
_SECRET = b"aigc-audit-bench-pseudonym-secret"
_MODELS = (
    ("chat-model", "2.1", "Beijing-ChatModel-202405150012", Modality.TEXT),
    ("chat-model", "2.2", "Beijing-ChatModel-202405150012", Modality.TEXT),
    ("image-model", "1.4", "Shanghai-ImageModel-202406010007", Modality.IMAGE),
    ("code-model", "3.0", None, Modality.CODE),
)


def build_events(n: int) -> list[AuditEvent]:
    """``n`` events like a chat provider's traffic: generations of text, images and code by a
    few thousand subjects, one in :data:`MODERATION_EVERY` a moderation action blocking one."""
    subjects = [pseudonymise(_SECRET, f"user-{i}") for i in range(max(1, min(n // 20, 5000)))]
    events: list[AuditEvent] = []
    for i in range(n):
        when = _T0 + timedelta(milliseconds=37 * i)
        subject = subjects[(i * 7919) % len(subjects)]
        name, version, filing, modality = _MODELS[i % len(_MODELS)]
        if i % MODERATION_EVERY == MODERATION_EVERY - 1:
            events.append(
                ModerationAction(
                    occurred_at=when,
                    case_id=f"case-{i}",
                    target=ModerationTarget.GENERATION,
                    target_ref=f"req-{i - 1}",
                    subject=subject,
                    model_name=name,
                    model_version=version,
                    detection_source=DetectionSource.OUTPUT_FILTER,
                    risk_category="A.1.6",
                    action=ModerationOutcome.BLOCK_GENERATION,
                    detected_at=when,
                    acted_at=when + timedelta(milliseconds=5),
                    reviewer="output-filter-v3",
                )
            )
            continue
        media = modality == Modality.IMAGE
        events.append(
            Generation(
                occurred_at=when,
                request_id=f"req-{i}",
                model_name=name,
                model_version=version,
                filing_number=filing,
                modality=modality,
                channel=Channel.APP if i % 3 else Channel.API,
                subject=subject,
                input_sha256=hashlib.sha256(f"prompt {i}".encode()).digest(),
                output_sha256=hashlib.sha256(f"answer {i}".encode()).digest(),
                input_tokens=12 + i % 500,
                output_tokens=None if media else 80 + i % 900,
                output_bytes=200_000 + i % 50_000 if media else None,
                explicit_label=media,
                implicit_label=(
                    ImplicitLabel(content_producer="provider-001", produce_id=f"img-{i}")
                    if media
                    else None
                ),
                safety_verdict=SafetyVerdict.PASSED if i % 50 else SafetyVerdict.REFUSED,
                minor_mode=i % 11 == 0,
                latency_ms=300 + i % 1700,
            )
        )
    return events


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _now_us() -> int:
    return time.time_ns() // 1000


def _eps(events: int, seconds: float) -> float:
    return events / max(seconds, 1e-9)


@contextlib.contextmanager
def _clock() -> Iterator[list[float]]:
    """``with _clock() as t: ...`` then ``t[0]`` is the seconds the block took."""
    out = [0.0]
    # Garbage left by earlier work is not this block's to collect, and objects alive before it
    # (the data of other stages) are left out of the collector's scans while it runs: each side
    # of a stage pays only for the objects it makes itself.
    gc.collect()
    gc.freeze()
    began = time.perf_counter()
    try:
        yield out
    finally:
        out[0] = time.perf_counter() - began
        gc.unfreeze()


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise StageCheckError(what)


# --- 1. validate and encode ----------------------------------------------------------------------


def encode_stage(
    events: Sequence[AuditEvent], catalogue: SchemaCatalogue
) -> tuple[StageFigure, list[bytes]]:
    """What the client's batcher worker does with each emitted event (``RecordEncoder``, code
    compiled per kind from its schema), vs fastavro on the records."""
    from aigc_audit.producers.record_encoder import RecordEncoder

    emit_fields = {"service_id": SERVICE_ID, "producer_id": PRODUCER_ID}
    records = [e.to_record(**emit_fields) for e in events]
    schemas = [catalogue.schema(e.SCHEMA) for e in events]
    encoder = RecordEncoder(catalogue, **emit_fields)
    for kind in {type(e) for e in events}:
        encoder.prepare(kind)  # compiled once per kind, as the client does at the first emit

    with _clock() as ours:
        encoded = [encoder.encode(e) for e in events]

    buf = io.BytesIO()
    with _clock() as lib:
        for schema, record in zip(schemas, records, strict=True):
            schemaless_writer(buf, schema, record)

    bodies = sum(len(e) - HEADER_SIZE for e in encoded)
    _check(len(encoded) == len(events), "encode: not every event was encoded")
    _check(buf.tell() == bodies, f"encode: fastavro wrote {buf.tell()} bytes, ours {bodies}")
    n = len(events)
    return (
        StageFigure(
            "validate and encode",
            _eps(n, ours[0]),
            "fastavro.schemaless_writer of the same records",
            _eps(n, lib[0]),
            n,
            note=(
                "ours: RecordEncoder.encode, as the client's worker; the library is given the "
                "records ready-made (to_record() untimed)"
            ),
        ),
        encoded,
    )


# --- 2. Merkle root and signature ----------------------------------------------------------------


def seal_stage(
    encoded: Sequence[bytes], key: SigningKey, catalogue: SchemaCatalogue
) -> tuple[StageFigure, list[SignedBatch], list[bytes]]:
    """Chained batches of :data:`BATCH_SIZE` sealed and encoded as the batcher's worker does,
    vs the crypto floor: one Ed25519 signature per batch plus SHA-256 of each event."""
    chunks = _chunks(encoded, BATCH_SIZE)
    batches: list[SignedBatch] = []
    values: list[bytes] = []
    with _clock() as ours:
        prev = GENESIS_DIGEST
        for sequence, chunk in enumerate(chunks):
            batch = seal_batch(
                chunk,
                producer_id=PRODUCER_ID,
                key=key,
                sequence=sequence,
                prev_digest=prev,
                created_at_us=_now_us(),
            )
            values.append(batch.encode(catalogue))
            prev = batch.digest
            batches.append(batch)

    private = key.private_key
    sha256 = hashlib.sha256
    signatures = []
    with _clock() as lib:
        for chunk in chunks:
            digest = b""
            for event in chunk:
                digest = sha256(event).digest()
            signatures.append(private.sign(digest))

    n = len(encoded)
    _check(sum(len(b.events) for b in batches) == n, "seal: events lost between batches")
    _check(len(signatures) == len(batches), "seal: the library signed another number of batches")
    return (
        StageFigure(
            "Merkle root and signature",
            _eps(n, ours[0]),
            f"Ed25519 sign (1 per {BATCH_SIZE} events) + hashlib.sha256 per event",
            _eps(n, lib[0]),
            n,
            note="ours: seal_batch() + batch digest + SignedBatch.encode(), as the batcher",
        ),
        batches,
        values,
    )


# --- 3 and 4. the bus ----------------------------------------------------------------------------


def _message_key() -> bytes:
    return PRODUCER_ID.encode("utf-8")


def embedded_produce_stage(
    values: Sequence[bytes], events: int, directory: Path
) -> tuple[StageFigure, EmbeddedLog]:
    """Our writer publishing each batch (one durable transaction each, as the batcher does) vs
    one ``executemany`` of the same blobs into a plain WAL table (``synchronous=FULL`` too)."""
    log = EmbeddedLog(directory / "bus.sqlite3")
    writer = log.writer()
    key = _message_key()
    try:
        with _clock() as ours:
            for value in values:
                writer.publish(TOPIC, key, value)
    finally:
        writer.close()

    raw = sqlite3.connect(directory / "raw-bus.sqlite3", isolation_level=None)
    try:
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=FULL")
        raw.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, key BLOB, value BLOB NOT NULL)")
        with _clock() as lib:
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(
                "INSERT INTO log (key, value) VALUES (?, ?)", ((key, v) for v in values)
            )
            raw.execute("COMMIT")
        stored = raw.execute("SELECT count(*) FROM log").fetchone()[0]
    finally:
        raw.close()

    _check(log.message_count(TOPIC) == len(values), "produce: the bus holds another count")
    _check(stored == len(values), "produce: the raw table holds another count")
    return (
        StageFigure(
            "bus produce",
            _eps(events, ours[0]),
            "sqlite3 executemany of the same blobs, one transaction (WAL, synchronous=FULL)",
            _eps(events, lib[0]),
            events,
            "embedded",
            note=f"ours: EmbeddedLogWriter.publish per batch of {BATCH_SIZE} (one fsync each)",
        ),
        log,
    )


def _read_all(reader: Any, expected: int, deadline_s: float, timeout_s: float) -> list[BusMessage]:
    """Poll and commit (as the materialiser does) until ``expected`` messages came back."""
    out: list[BusMessage] = []
    deadline = time.monotonic() + deadline_s
    while len(out) < expected and time.monotonic() < deadline:
        messages = reader.poll(max_messages=POLL_SIZE, timeout_s=timeout_s)
        if messages:
            out.extend(messages)
            reader.commit(positions_after(messages))
        elif timeout_s == 0:
            break
    return out


def embedded_consume_stage(
    log: EmbeddedLog, expected: int, events: int
) -> tuple[StageFigure, list[BusMessage]]:
    """Our reader's poll + commit loop in a fresh group vs one raw ``SELECT`` of the rows."""
    with _clock() as ours:
        reader = log.reader(f"bench-{uuid.uuid4().hex[:12]}", [TOPIC])
        try:
            messages = _read_all(reader, expected, 600.0, 0.0)
        finally:
            reader.close()

    raw = sqlite3.connect(log.path)
    try:
        with _clock() as lib:
            rows = raw.execute(
                'SELECT topic, "partition", "offset", key, value, timestamp_us FROM messages '
                'WHERE topic = ? ORDER BY "partition", "offset"',
                (TOPIC,),
            ).fetchall()
    finally:
        raw.close()

    _check(len(messages) == expected, f"consume: read {len(messages)} of {expected} messages")
    _check(len(rows) == expected, f"consume: SELECT read {len(rows)} of {expected} messages")
    return (
        StageFigure(
            "bus consume",
            _eps(events, ours[0]),
            "sqlite3 SELECT of the same rows, fetchall",
            _eps(events, lib[0]),
            events,
            "embedded",
            note=f"ours: EmbeddedLogReader.poll({POLL_SIZE}) + commit per poll, fresh group",
        ),
        messages,
    )


def _create_kafka_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=30_000)
    try:
        admin.create_topics(
            [
                NewTopic(
                    t,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs={"max.message.bytes": str(8 * 1024 * 1024)},
                )
                for t in topics
            ]
        )
    finally:
        admin.close()


def _delete_kafka_topics(bootstrap: str, topics: Sequence[str]) -> None:
    from kafka.admin import KafkaAdminClient

    with contextlib.suppress(Exception):  # cleanup only: a left-over bench topic harms nothing
        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
        try:
            admin.delete_topics(list(topics))
        finally:
            admin.close()


def kafka_produce_stage(
    values: Sequence[bytes], events: int, bootstrap: str, topic: str, raw_topic: str
) -> StageFigure:
    """Our KafkaLogWriter publishing each batch and waiting for its ack (as the batcher does) vs
    a raw ``KafkaProducer(acks='all')`` sending them all, then one flush."""
    from kafka import KafkaProducer

    from aigc_audit.producers.transports.kafka_writer import KafkaLogWriter, KafkaWriterConfig

    key = _message_key()
    writer = KafkaLogWriter(KafkaWriterConfig(bootstrap=bootstrap))
    try:
        writer._get().partitions_for(topic)  # connected, metadata known: not part of the stage
        with _clock() as ours:
            for value in values:
                writer.publish(topic, key, value)
    finally:
        writer.close()

    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","), acks="all", max_request_size=8 * 1024 * 1024
    )
    try:
        producer.partitions_for(raw_topic)
        with _clock() as lib:
            futures = [producer.send(raw_topic, key=key, value=v) for v in values]
            producer.flush()
        delivered = sum(1 for f in futures if f.succeeded())
    finally:
        producer.close(timeout=5)
    _check(delivered == len(values), f"produce: the raw producer delivered {delivered}")
    return StageFigure(
        "bus produce",
        _eps(events, ours[0]),
        "kafka.KafkaProducer(acks='all') send of the same bytes + one flush, no compression",
        _eps(events, lib[0]),
        events,
        "kafka",
        note=(
            f"ours: KafkaLogWriter.publish per batch of {BATCH_SIZE}, each waiting for its ack "
            "(acks=all, idempotent, lz4)"
        ),
    )


def kafka_consume_stage(
    bootstrap: str, topic: str, expected: int, events: int
) -> tuple[StageFigure, list[BusMessage]]:
    """Our KafkaGroupReader in a fresh group, poll + commit, vs a raw KafkaConsumer in a fresh
    group from earliest; both timed from construction (joining the group is part of reading)."""
    from kafka import KafkaConsumer

    from aigc_audit.producers.transports.kafka_reader import KafkaGroupReader

    with _clock() as ours:
        reader = KafkaGroupReader(bootstrap, f"bench-{uuid.uuid4().hex[:12]}", [topic])
        try:
            messages = _read_all(reader, expected, 120.0, reader.idle_poll_timeout_s)
        finally:
            reader.close()

    got = 0
    with _clock() as lib:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap.split(","),
            group_id=f"bench-raw-{uuid.uuid4().hex[:12]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        try:
            deadline = time.monotonic() + 120.0
            while got < expected and time.monotonic() < deadline:
                polled = consumer.poll(timeout_ms=500, max_records=POLL_SIZE)
                got += sum(len(records) for records in polled.values())
        finally:
            consumer.close(autocommit=False)

    _check(len(messages) == expected, f"consume: read {len(messages)} of {expected} messages")
    _check(got == expected, f"consume: the raw consumer read {got} of {expected} messages")
    return (
        StageFigure(
            "bus consume",
            _eps(events, ours[0]),
            "kafka.KafkaConsumer from earliest in a fresh group (defaults), poll loop",
            _eps(events, lib[0]),
            events,
            "kafka",
            note=f"ours: KafkaGroupReader.poll({POLL_SIZE}) + commit per poll, fresh group",
        ),
        messages,
    )


# --- 5. batch verification -----------------------------------------------------------------------


def registration_for(key: SigningKey, root: SigningKey) -> KeyRegistration:
    """The producer key's registration, signed by ``root``, valid from an hour ago."""
    now = _now_us()
    return sign_registration(
        root,
        KeyRegistration(
            key_id=key.key_id,
            producer_id=PRODUCER_ID,
            public_key=key.public_key,
            valid_from_us=now - 3_600_000_000,
            registered_at_us=now - 3_600_000_000,
        ),
    )


def verify_stage(
    messages: Sequence[BusMessage],
    registration: KeyRegistration,
    root_public_key: bytes,
    catalogue: SchemaCatalogue,
) -> tuple[StageFigure, list[Verdict]]:
    """``BatchVerifier.verify`` on every message, the chain advanced after each accepted batch as
    the materialiser does, vs the crypto floor: one Ed25519 verify per batch + SHA-256 per event."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keyring = Keyring(root_public_key)
    keyring.add(registration)
    chain = ChainTracker({}, lambda producer_id, sequence: None)
    verifier = BatchVerifier(catalogue, keyring, chain)

    verdicts: list[Verdict] = []
    with _clock() as ours:
        for message in messages:
            verdict = verifier.verify(message)
            if verdict.accepted and verdict.batch is not None:
                chain.advance(verdict.batch)
            verdicts.append(verdict)

    refused = [v for v in verdicts if not v.accepted]
    _check(not refused, f"verify: {len(refused)} batches refused, e.g. {_why(refused)}")

    batches = [SignedBatch.decode(m.value, catalogue) for m in messages]
    inputs = [batch_signing_input(b.head) for b in batches]
    public = Ed25519PublicKey.from_public_bytes(registration.public_key)
    sha256 = hashlib.sha256
    with _clock() as lib:
        for batch, signed in zip(batches, inputs, strict=True):
            public.verify(batch.signature, signed)
            for event in batch.events:
                sha256(event).digest()

    # Steps 1-5 alone, replayed with the very calls verify makes, to split off step 6.
    replay_chain = ChainTracker({}, lambda producer_id, sequence: None)
    registrations = {registration.key_id: registration}  # what keyring.get looks up
    replayed = 0
    with _clock() as without_decode:
        for message in messages:
            batch = SignedBatch.decode(message.value, catalogue)
            reg = registrations[batch.key_id]
            valid, _ = reg.is_valid_at(batch.created_at_us)
            verify_signature(reg.public_key, batch_signing_input(batch.head), batch.signature)
            root_ok = merkle_root(batch.events) == batch.merkle_root
            judged = replay_chain.judge(batch, message.topic, message.partition, message.offset)
            replay_chain.advance(batch)
            replayed += valid and root_ok and judged.ok

    events = sum(len(v.events) for v in verdicts)
    _check(events == sum(len(b.events) for b in batches), "verify: not every event decoded")
    _check(replayed == len(messages), "verify: the replay of steps 1-5 refused a batch")
    return (
        StageFigure(
            "batch verification",
            _eps(events, ours[0]),
            f"Ed25519 verify (1 per {BATCH_SIZE} events) + hashlib.sha256 per event",
            _eps(events, lib[0]),
            events,
            note=(
                "ours: BatchVerifier.verify, steps 1-6: batch decode, key, signature, Merkle root, "
                "chain, and decoding every event (step 6; the decode stage times it alone); "
                f"steps 1-5 alone (the same calls) run at {_eps(events, without_decode[0]):,.0f} "
                "ev/s"
            ),
        ),
        verdicts,
    )


def _why(refused: Sequence[Verdict]) -> str:
    return f"{refused[0].reason}: {refused[0].detail}" if refused else ""


# --- 6. decode -----------------------------------------------------------------------------------


def decode_stage(
    encoded: Sequence[bytes], catalogue: SchemaCatalogue
) -> tuple[StageFigure, list[tuple[str, dict[str, Any]]]]:
    """``SchemaCatalogue.decode`` of every event vs ``fastavro.schemaless_reader`` of the bodies."""
    with _clock() as ours:
        decoded = [catalogue.decode(raw) for raw in encoded]

    schemas = [catalogue.schema(catalogue.by_fingerprint(raw[2:HEADER_SIZE])) for raw in encoded]
    bodies = [raw[HEADER_SIZE:] for raw in encoded]
    with _clock() as lib:
        records = [
            schemaless_reader(io.BytesIO(body), schema, None)
            for schema, body in zip(schemas, bodies, strict=True)
        ]

    _check(len(decoded) == len(encoded), "decode: not every event decoded")
    _check(
        bool(records) and records[0] == decoded[0][1] and records[-1] == decoded[-1][1],
        "decode: fastavro read other records than ours",
    )
    n = len(encoded)
    return (
        StageFigure(
            "decode",
            _eps(n, ours[0]),
            "fastavro.schemaless_reader of the same bodies",
            _eps(n, lib[0]),
            n,
        ),
        decoded,
    )


# --- 7. store insert -----------------------------------------------------------------------------

RAW_DATABASE = "bench_raw"


def _position(message: BusMessage) -> BusPosition:
    return BusPosition(message.topic, message.partition, message.offset, message.timestamp_us)


def _raw_json_table(table: Table) -> tuple[str, str]:
    """DDL of a plain copy of ``table`` whose byte columns are Strings of base64 (JSON carries
    no raw bytes), and the head of the ``INSERT ... FORMAT JSONEachRow`` into it."""
    binary = table.binary_columns

    def column_type(name: str, ctype: str) -> str:
        if name not in binary:
            return ctype
        return "Nullable(String)" if ctype.startswith("Nullable") else "String"

    columns = ", ".join(f"{name} {column_type(name, ctype)}" for name, ctype in table.columns)
    target = f"{RAW_DATABASE}.json_{table.name}"
    return (
        f"CREATE TABLE {target} ({columns}) ENGINE = MergeTree ORDER BY tuple()",
        f"INSERT INTO {target} FORMAT JSONEachRow\n",
    )


def _raw_json_lines(table: Table, rows: Sequence[Mapping[str, Any]]) -> str:
    binary = table.binary_columns
    names = table.column_names
    times = {n for n, ctype in table.columns if "DateTime64" in ctype}

    def cell(name: str, value: Any) -> Any:
        if value is None:
            return None
        if name in binary:
            return base64.b64encode(value).decode("ascii")
        if name in times and isinstance(value, int):  # rows carry integer microseconds
            value = us_to_datetime(value)
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, uuid.UUID):
            return str(value)
        return value

    return "\n".join(
        json.dumps({n: cell(n, row.get(n)) for n in names}, separators=(",", ":")) for row in rows
    )


def _raw_arrow_table(table: Table, rows: Sequence[Mapping[str, Any]]) -> Any:
    """``rows`` as one Arrow table, types as pyarrow infers them (UUIDs as text)."""
    import pyarrow as pa

    times = {n for n, ctype in table.columns if "DateTime64" in ctype}
    arrays = {}
    for name in table.column_names:
        values = [row.get(name) for row in rows]
        if any(isinstance(v, uuid.UUID) for v in values):
            values = [None if v is None else str(v) for v in values]
        if name in times:  # integer microseconds would be read as seconds
            arrays[name] = pa.array(values, pa.timestamp("us", tz="UTC"))
            continue
        array = pa.array(values)
        arrays[name] = pa.array(values, pa.string()) if pa.types.is_null(array.type) else array
    return pa.table(arrays)


def _raw_inserts(
    store: Any, by_table: Mapping[str, tuple[Table, list[dict[str, Any]]]]
) -> dict[str, float]:
    """Time the two fastest raw chDB inserts found, one statement per table each, their input
    made beforehand: JSONEachRow text inline, and an Arrow table read by ``Python()``.
    Returns ``{description: seconds}``."""
    session = store._session  # the store's own session: chDB allows one per process
    store.command(f"CREATE DATABASE IF NOT EXISTS {RAW_DATABASE}")
    json_statements = []
    arrow_tables = []
    for table, rows in by_table.values():
        ddl, head = _raw_json_table(table)
        store.command(ddl)
        json_statements.append(head + _raw_json_lines(table, rows))
        # An exact copy (same types, same engine) for the Arrow insert: bytes go in as bytes.
        store.command(
            f"CREATE TABLE {RAW_DATABASE}.arrow_{table.name} AS {store.database}.{table.name}"
        )
        arrow_tables.append((table, _raw_arrow_table(table, rows)))

    with _clock() as as_json:
        for sql in json_statements:
            session.query(sql, "CSV")
    with _clock() as as_arrow:
        for table, frame in arrow_tables:  # noqa: B007 - Python(frame) reads it by name
            names = ", ".join(f"`{n}`" for n in table.column_names)
            session.query(
                f"INSERT INTO {RAW_DATABASE}.arrow_{table.name} ({names}) "
                f"SELECT {names} FROM Python(frame)",
                "CSV",
            )
    return {
        "chDB INSERT ... FORMAT JSONEachRow, 1 statement per table (text made beforehand)": (
            as_json[0]
        ),
        "chDB INSERT ... SELECT FROM Python(arrow), 1 statement per table (tables made "
        "beforehand)": as_arrow[0],
    }


def _warm_up(store: Any) -> None:
    """Pay chDB's one-time costs (its first ``Python()`` read imports pandas) before timing."""
    import pyarrow as pa

    warm = pa.table({"x": [1]})  # noqa: F841 - Python(warm) reads it by name
    store._session.query("SELECT count() FROM Python(warm)", "CSV")


def store_stage(
    verdicts: Sequence[Verdict], messages: Sequence[BusMessage], store: Any
) -> StageFigure:
    """``EmbeddedStore.insert`` per table per poll, as the materialiser does, vs the fastest
    raw chDB insert found carrying every row of a table in one statement.

    ``store`` is a migrated, empty :class:`~consumers.store.embedded.EmbeddedStore`."""
    with _clock() as rows_clock:
        prepared: list[tuple[BusPosition, BatchRows]] = []
        for verdict, message in zip(verdicts, messages, strict=True):
            assert verdict.batch is not None
            position = _position(message)
            prepared.append((position, batch_rows(verdict.batch, verdict.events, position)))
    events = sum(len(v.events) for v in verdicts)

    by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for _, rows in prepared:
        for table, table_rows in rows.by_table.values():
            by_table.setdefault(table.name, (table, []))[1].extend(table_rows)
    _warm_up(store)
    # The raw inserts first, into tables of their own: the merges our many small parts set off
    # in the background then cannot slow them down.
    raw = _raw_inserts(store, by_table)

    with _clock() as ours:
        # As the materialiser writes: one PollWrite per poll, one insert per table per poll.
        for first in range(0, len(prepared), POLL_MESSAGES):
            write = PollWrite()
            for position, rows in prepared[first : first + POLL_MESSAGES]:
                write.positions.append(position)
                write.add(rows)
            write.flush(store)

    for table, table_rows in by_table.values():
        for target in (
            f"{store.database}.{table.name}",
            f"{RAW_DATABASE}.json_{table.name}",
            f"{RAW_DATABASE}.arrow_{table.name}",
        ):
            found = int(store.query(f"SELECT count() FROM {target}").rows[0][0])
            _check(found == len(table_rows), f"store: {target} has {found}, not {len(table_rows)}")
    library, seconds = min(raw.items(), key=lambda item: item[1])
    others = "; ".join(f"{d.split(',')[0]}: {_eps(events, s):,.0f} ev/s" for d, s in raw.items())
    polls = -(-len(prepared) // POLL_MESSAGES)
    return StageFigure(
        "store insert",
        _eps(events, ours[0]),
        library,
        _eps(events, seconds),
        events,
        note=(
            f"ours: {polls} polls of up to {POLL_MESSAGES} batches, one EmbeddedStore.insert "
            f"per table per poll; batch_rows() ran beforehand, untimed, at "
            f"{_eps(events, rows_clock[0]):,.0f} ev/s; raw inserts: {others}"
        ),
    )


# --- 8. the engine's decode and insert of generations --------------------------------------------


def engine_stages(
    messages: Sequence[BusMessage], store: Any, catalogue: SchemaCatalogue, workdir: Path
) -> list[StageFigure]:
    """What the materialiser does for generation events on the embedded store
    (:mod:`consumers.ingest.engine_path`): the check (the poll file written, the engine's strict
    read and checks) and the engine's insert of their rows, next to
    the engine reading the same bodies from a plain Avro file and inserting them as they are.

    ``store`` is a migrated :class:`~consumers.store.embedded.EmbeddedStore`."""
    from aigc_audit.consumers.ingest.engine_path import GENERATION, GenerationIngest

    ingest = GenerationIngest(store, catalogue, workdir / "ingest")
    polls = _chunks(messages, POLL_MESSAGES)
    fingerprint = catalogue.fingerprint(GENERATION)
    bodies = [
        raw[HEADER_SIZE:]
        for message in messages
        for raw in SignedBatch.decode(message.value, catalogue).events
        if raw[2:HEADER_SIZE] == fingerprint
    ]
    events = len(bodies)
    with _clock() as checking:
        checked = [ingest.check(poll, catalogue) for poll in polls]
    _check(
        all(len(c.checked) == len(poll) for c, poll in zip(checked, polls, strict=True)),
        "engine: a poll's generations did not pass the engine's check",
    )
    with _clock() as inserting:
        for number, (poll, generations) in enumerate(zip(polls, checked, strict=True)):
            ingest.insert(generations, range(len(poll)), f"bench/{number}")
    for generations in checked:
        generations.discard()
    found = int(store.query(f"SELECT count() FROM {store.database}.generations").rows[0][0])
    _check(found >= events, f"engine: {found} generation rows, not {events}")

    # The library alone: the same bodies in a plain Avro file, read, then inserted as they are.
    schema = fastavro.parse_schema(json.loads(catalogue.canonical_form(GENERATION)))
    plain = workdir / "plain.avro"
    with plain.open("wb") as out:
        fastavro.writer(
            out,
            schema,
            (schemaless_reader(io.BytesIO(body), schema, None) for body in bodies),
        )
    source = f"file('{plain}', 'Avro')"
    with _clock() as reading:
        rows = store.query(f"SELECT count(), sum(length(subject)) FROM {source}").rows
    _check(int(rows[0][0]) == events, "engine: the plain file holds other events")
    store.command(
        f"CREATE TABLE {RAW_DATABASE}.avro_generations ENGINE = MergeTree ORDER BY tuple() "
        f"AS SELECT * FROM {source} LIMIT 0"
    )
    with _clock() as raw_insert:
        store.command(f"INSERT INTO {RAW_DATABASE}.avro_generations SELECT * FROM {source}")
    plain.unlink()
    return [
        StageFigure(
            "engine check (generations)",
            _eps(events, checking[0]),
            "chDB reading the same bodies from a plain Avro file",
            _eps(events, reading[0]),
            events,
            note=(
                "ours: GenerationIngest.check per poll: batch decode, leaf hashes, the poll file, "
                "then the engine's strict read with the seal, producer, union sentinel, UTF-8, "
                "UUID and time checks (this replaces fastavro decoding of generations)"
            ),
        ),
        StageFigure(
            "engine insert (generations)",
            _eps(events, inserting[0]),
            "chDB INSERT ... SELECT * of the plain Avro file",
            _eps(events, raw_insert[0]),
            events,
            note="ours: GenerationIngest.insert per poll, generations and events rows",
        ),
    ]


# --- the whole measurement -----------------------------------------------------------------------


def measure_stages(
    events: int,
    *,
    bus: Bus = "embedded",
    bootstrap: str | None = None,
    workdir: Path,
    progress: Callable[[str], None] | None = None,
    keep: bool = False,
) -> list[StageFigure]:
    """Time every stage over ``events`` events, ours next to the library's, in pipeline order.

    The embedded bus stages always run (they are cheap); with ``bus="kafka"`` the Kafka ones
    run too, against ``bootstrap``, on topics of their own that are deleted afterwards, and the
    later stages read the batches back from Kafka. Everything on disk goes to a fresh directory
    under ``workdir``, removed at the end unless ``keep``. The chDB store is opened once and
    closed at the end: run no other chDB session in this process meanwhile.
    """
    if events < 1:
        raise ValueError(f"events must be >= 1, got {events}")
    if bus == "kafka" and not bootstrap:
        raise ValueError("bus='kafka' needs a bootstrap address")
    if bus not in ("embedded", "kafka"):
        raise ValueError(f"bus must be 'embedded' or 'kafka', got {bus!r}")
    say = progress or (lambda _text: None)
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="stages-", dir=workdir))
    catalogue = default_catalogue()
    key, root = SigningKey.generate(), SigningKey.generate()
    figures: list[StageFigure] = []

    def done(figure: StageFigure) -> None:
        figures.append(figure)
        say(_line(figure))

    try:
        say(f"building {events:,} events (untimed)")
        models = build_events(events)

        figure, encoded = encode_stage(models, catalogue)
        done(figure)
        del models
        figure, _, values = seal_stage(encoded, key, catalogue)
        done(figure)

        figure, log = embedded_produce_stage(values, events, run_dir)
        done(figure)
        try:
            figure, messages = embedded_consume_stage(log, len(values), events)
            done(figure)
        finally:
            log.close()

        if bus == "kafka":
            assert bootstrap is not None
            run = uuid.uuid4().hex[:12]
            topic, raw_topic = f"bench-{run}.events", f"bench-{run}.raw"
            _create_kafka_topics(bootstrap, [topic, raw_topic], partitions=6)
            try:
                done(kafka_produce_stage(values, events, bootstrap, topic, raw_topic))
                figure, messages = kafka_consume_stage(bootstrap, topic, len(values), events)
                done(figure)
            finally:
                _delete_kafka_topics(bootstrap, [topic, raw_topic])

        figure, verdicts = verify_stage(
            messages, registration_for(key, root), root.public_key, catalogue
        )
        done(figure)
        figure, _ = decode_stage(encoded, catalogue)
        done(figure)

        from aigc_audit.consumers.store.embedded import EmbeddedStore

        say("opening a fresh embedded store (untimed)")
        store = EmbeddedStore(run_dir / "store")
        try:
            store.migrate()
            done(store_stage(verdicts, messages, store))
            for figure in engine_stages(messages, store, catalogue, run_dir):
                done(figure)
        finally:
            store.close()
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return figures


def measure_wire_sizes(events: int = 10_000) -> WireSizes:
    """Bytes of an encoded event, and of the bus messages per event, for the same mix."""
    catalogue = default_catalogue()
    emit_fields = {"service_id": SERVICE_ID, "producer_id": PRODUCER_ID}
    encoded = [catalogue.encode(e.SCHEMA, e.to_record(**emit_fields)) for e in build_events(events)]
    _, _, values = seal_stage(encoded, SigningKey.generate(), catalogue)
    return bytes_per_event(encoded, values)


# --- output --------------------------------------------------------------------------------------


def _line(figure: StageFigure) -> str:
    return (
        f"{figure.label:<34} ours {figure.ours_eps:>12,.0f} ev/s   library "
        f"{figure.library_eps:>12,.0f} ev/s   ratio {figure.ratio:6.3f}"
    )


def format_figures(figures: Sequence[StageFigure], wire: WireSizes | None = None) -> str:
    """A plain-text table of the figures, the library each stands against, and notes."""
    width = max(len(f.label) for f in figures)
    lines = [
        f"{'stage':<{width}}  {'ours ev/s':>12}  {'library ev/s':>12}  {'ratio':>6}  library",
    ]
    for f in figures:
        ratio = f"{f.ratio:6.3f}" if math.isfinite(f.ratio) else "   inf"
        lines.append(
            f"{f.label:<{width}}  {f.ours_eps:>12,.0f}  {f.library_eps:>12,.0f}  {ratio}  "
            f"{f.library}"
        )
    notes = [f"  {f.label}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "notes:", *notes]
    if wire is not None:
        lines += [
            "",
            f"wire: {wire.event_bytes:,.1f} bytes per encoded event, "
            f"{wire.bus_bytes_per_event:,.1f} bus bytes per event (batches of {BATCH_SIZE})",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aigc_audit.consumers.bench.stages", description=__doc__
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--bus", choices=("embedded", "kafka"), default="embedded")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    began = time.perf_counter()
    figures = measure_stages(
        args.events,
        bus=args.bus,
        bootstrap=args.bootstrap,
        workdir=args.workdir,
        progress=lambda text: print(text, flush=True),
    )
    print()
    print(format_figures(figures, measure_wire_sizes(min(args.events, 10_000))))
    print(f"\n{args.events:,} events, {time.perf_counter() - began:.1f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
