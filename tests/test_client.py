"""The client library on its own: Avro round trips, batching, chaining, threads and shutdown."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aigc_audit.producers import (
    AuditClient,
    AuditError,
    AuditTrailDownError,
    BusError,
    BusUnavailableError,
    ClientClosedError,
    EventValidationError,
    Generation,
    SigningKey,
    build_event,
)
from aigc_audit.producers import client as client_module
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.chain_state import ChainPosition, ChainStateFile
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.events import (
    AgreementAcceptance,
    AnnotationQualityCheck,
    AuditEvent,
    AuthorityDisclosure,
    AuthorityReport,
    Complaint,
    IdentityVerification,
    ImplicitLabel,
    LegalHold,
    ModerationAction,
    PersonalInformationRequest,
    Rectification,
    RetentionPurge,
    SafetyEvaluation,
    TrainingDataIntake,
    UserSanction,
)
from aigc_audit.producers.merkle import merkle_root
from aigc_audit.producers.signing import GENESIS_DIGEST, batch_signing_input, verify_signature
from aigc_audit.producers.transports.embedded_log import EmbeddedLog

T = datetime(2026, 9, 1, 12, 0, 0, 123456, tzinfo=UTC)
D = hashlib.sha256(b"x").digest()

ONE_OF_EACH: list[AuditEvent] = [
    Generation(
        request_id="r1",
        model_name="m",
        model_version="1",
        filing_number="F-1",
        modality="image",
        channel="api",
        subject="s1",
        input_sha256=D,
        output_sha256=D.hex(),
        output_bytes=1024,
        explicit_label=True,
        implicit_label=ImplicitLabel(content_producer="p-001", produce_id="c-1"),
        unlabelled_on_request=False,
        safety_verdict="flagged",
        minor_mode=True,
        latency_ms=900,
        occurred_at=T,
    ),
    ModerationAction(
        case_id="c1",
        target="generation",
        target_ref="r1",
        subject="s1",
        model_name="m",
        model_version="1",
        detection_source="output_filter",
        risk_category="A.1.6",
        action="block_generation",
        detected_at=T,
        acted_at=T + timedelta(seconds=2),
        reviewer="filter-v3",
        rectification=Rectification(ticket_id="t1", opened_at=T, due_at=T + timedelta(days=90)),
        authority_report=AuthorityReport(
            reported=True, authority="CAC", reference="R1", reported_at=T
        ),
        sealed_evidence=b"\x00\x01sealed",
        occurred_at=T,
    ),
    Complaint(
        case_id="k1",
        complaint_id="k1",
        channel="hotline",
        target_ref="r1",
        subject="s2",
        received_at=T,
        due_by=T + timedelta(days=15),
        handled_at=T + timedelta(days=1),
        occurred_at=T,
    ),
    UserSanction(
        sanction_id="x1",
        subject="s1",
        action="function_restriction",
        reason_category="A.1.6",
        restricted_functions=["image"],
        evidence=[str(uuid.uuid4())],
        effective_from=T,
        effective_until=T + timedelta(days=7),
        occurred_at=T,
    ),
    PersonalInformationRequest(
        subject="s1",
        request_id="p1",
        request_kind="copy",
        received_at=T,
        due_at=T + timedelta(days=21),
        status="completed",
        completed_at=T + timedelta(days=3),
        outcome="copy sent",
        occurred_at=T,
    ),
    TrainingDataIntake(
        dataset_id="d1",
        source="forum dump",
        source_kind="user_generated",
        legal_basis="user agreement 4.2",
        contains_personal_information=True,
        consent_basis="separate consent",
        size_bytes=10,
        record_count=2,
        occurred_at=T,
    ),
    AnnotationQualityCheck(
        dataset_id="d1", rules_version="r4", sample_size=500, sampled_accuracy=0.97, occurred_at=T
    ),
    SafetyEvaluation(
        model_name="m",
        model_version="1",
        generated_test_size=1000,
        qualified_rate=0.93,
        should_refuse_test_size=500,
        refusal_rate=0.96,
        should_answer_test_size=500,
        false_refusal_rate=0.03,
        occurred_at=T,
    ),
    IdentityVerification(subject="s1", method="mobile_number", verified=True, occurred_at=T),
    RetentionPurge(
        scope="app_logs",
        cutoff=T - timedelta(days=400),
        records_purged=7,
        reason="retention ended",
        occurred_at=T,
    ),
    AuthorityDisclosure(
        authority="CAC",
        reference="I-1",
        scope="Q3 moderation",
        records_disclosed=12,
        legal_basis="Art. 19",
        occurred_at=T,
    ),
    LegalHold(
        subject="s1",
        hold_id="h1",
        hold_scope="subject",
        hold_target="s1",
        hold_action="place",
        hold_reason="inquiry 118",
        requested_by="CAC",
        occurred_at=T,
    ),
    AgreementAcceptance(
        subject="s1",
        agreement_id="user-terms",
        agreement_version="4.3",
        accepted_at=T - timedelta(seconds=5),
        channel="web",
        occurred_at=T,
    ),
]


def test_one_of_each_kind_covers_every_kind() -> None:
    from aigc_audit.producers.events import EVENT_KINDS

    assert {e.EVENT_TYPE for e in ONE_OF_EACH} == set(EVENT_KINDS)


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: e.EVENT_TYPE)
def test_avro_round_trip_of_every_event_kind(event: AuditEvent) -> None:
    catalogue = default_catalogue()
    record = event.to_record(service_id="svc", producer_id="svc-1")
    encoded = catalogue.encode(event.SCHEMA, record)
    assert encoded[:2] == b"\xc3\x01"
    assert encoded[2:10] == catalogue.fingerprint(event.SCHEMA)
    schema, decoded = catalogue.decode(encoded)
    assert schema == event.SCHEMA
    assert decoded["head"]["event_type"] == event.EVENT_TYPE
    assert decoded["head"]["event_id"] == event.event_id
    assert decoded["head"]["occurred_at"] == T  # microseconds survive
    assert _plain(decoded) == _plain(record)
    assert catalogue.encode(event.SCHEMA, decoded) == encoded  # and the bytes are canonical


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]  # event models hold tuples; Avro reads arrays as lists
    if isinstance(value, str):
        return str(value)  # StrEnum members compare as their symbols
    return value


def test_invalid_events_are_refused_with_a_clear_message() -> None:
    with pytest.raises(EventValidationError, match="risk_category"):
        build_event(
            ModerationAction,
            case_id="c",
            target="generation",
            target_ref="r",
            detection_source="input_filter",
            risk_category="Z.9",
            action="delete",
            detected_at=T,
        )
    with pytest.raises(EventValidationError, match="time zone"):
        build_event(
            RetentionPurge, scope="s", cutoff=datetime(2026, 1, 1), records_purged=1, reason="r"
        )
    with pytest.raises(EventValidationError, match="evidence"):
        build_event(
            UserSanction,
            sanction_id="x",
            subject="s",
            action="suspension",
            reason_category="A.1.6",
            effective_from=T,
        )
    shanghai = timezone(timedelta(hours=8))
    purge = build_event(
        RetentionPurge,
        scope="s",
        cutoff=datetime(2026, 1, 1, 8, tzinfo=shanghai),
        records_purged=1,
        reason="r",
    )
    assert purge.cutoff == datetime(2026, 1, 1, 0, tzinfo=UTC)


def test_an_agreement_acceptance_names_its_subject(tmp_path: Path) -> None:
    fields: dict[str, Any] = {
        "agreement_id": "user-terms",
        "agreement_version": "4.3",
        "accepted_at": T,
        "channel": "app",
    }
    with pytest.raises(EventValidationError, match="needs its subject"):
        build_event(AgreementAcceptance, **fields)
    with pytest.raises(EventValidationError, match="agreement_version"):
        build_event(AgreementAcceptance, subject="s1", **{**fields, "agreement_version": ""})
    log = EmbeddedLog(tmp_path / "bus.sqlite3")
    with make_client(log, SigningKey.generate()) as audit:
        event = build_event(AgreementAcceptance, subject="s1", **fields)
        assert audit.agreement_acceptance(event) == event.event_id
        with pytest.raises(EventValidationError, match="expected a AgreementAcceptance"):
            audit.agreement_acceptance(ONE_OF_EACH[0])  # type: ignore[arg-type]
    [batch] = read_batches(log)
    _, record = default_catalogue().decode(batch.events[0])
    assert record["head"]["event_type"] == "agreement_acceptance"
    assert record["subject"] == "s1"
    assert record["agreement_acceptance"]["accepted_at"] == T
    assert record["identity_verification"] is None


def read_batches(log: EmbeddedLog) -> list[SignedBatch]:
    reader = log.reader("test", ["aigc-audit.events"])
    messages = reader.poll(max_messages=100_000)
    return [SignedBatch.decode(m.value) for m in messages]


def make_client(log: EmbeddedLog, key: SigningKey, **kwargs: Any) -> AuditClient:
    return AuditClient(service_id="svc", producer_id="svc-1", key=key, bus=log.writer(), **kwargs)


def gen(n: int) -> Generation:
    return ONE_OF_EACH[0].model_copy(update={"request_id": f"r{n}", "event_id": uuid.uuid4()})


def assert_valid_chain(batches: list[SignedBatch], key: SigningKey, first_seq: int = 0) -> None:
    prev = None
    for i, batch in enumerate(batches):
        assert batch.sequence == first_seq + i
        if prev is not None:
            assert batch.prev_digest == prev.digest
        assert batch.merkle_root == merkle_root(batch.events)
        verify_signature(key.public_key, batch_signing_input(batch.head), batch.signature)
        prev = batch


def test_batches_close_by_size(tmp_path: Path) -> None:
    key = SigningKey.generate()
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        with make_client(log, key, batch_size=10, linger=60) as client:
            for n in range(25):
                client.generation(gen(n))
        batches = read_batches(log)
    assert [len(b.events) for b in batches] == [10, 10, 5]
    assert batches[0].prev_digest == GENESIS_DIGEST
    assert_valid_chain(batches, key)


def test_batches_close_by_time(tmp_path: Path) -> None:
    key = SigningKey.generate()
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        client = make_client(log, key, batch_size=1000, linger=0.05)
        for n in range(3):
            client.generation(gen(n))
        deadline = time.monotonic() + 5
        while not read_batches(log) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [len(b.events) for b in read_batches(log)] == [3]  # no flush was asked for
        client.close()


def test_thread_safe_emission(tmp_path: Path) -> None:
    key = SigningKey.generate()
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        client = make_client(log, key, batch_size=37, linger=0.01)
        ids: list[uuid.UUID] = []
        lock = threading.Lock()

        def worker(t: int) -> None:
            for n in range(250):
                event_id = client.generation(gen(t * 1000 + n))
                with lock:
                    ids.append(event_id)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.close()
        batches = read_batches(log)
    assert_valid_chain(batches, key)
    catalogue = default_catalogue()
    seen = [catalogue.decode(e)[1]["head"]["event_id"] for b in batches for e in b.events]
    assert len(seen) == 2000 and set(seen) == set(ids)


def test_close_flushes_and_refuses_later_events(tmp_path: Path) -> None:
    key = SigningKey.generate()
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        client = make_client(log, key, batch_size=1000, linger=60)
        client.generation(gen(1))
        client.close()
        assert sum(len(b.events) for b in read_batches(log)) == 1
        with pytest.raises(ClientClosedError):
            client.generation(gen(2))


def test_events_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    script = f"""
import uuid
from pathlib import Path
from aigc_audit.producers import AuditClient, SigningKey
from aigc_audit.producers.transports.embedded_log import EmbeddedLog
from tests.test_client import gen
client = AuditClient(service_id="svc", producer_id="svc-1", key=SigningKey.generate(),
                     bus=EmbeddedLog(Path({str(tmp_path / "bus.sqlite3")!r})).writer(),
                     batch_size=1000, linger=60)
for n in range(5):
    client.generation(gen(n))
# no close(): the client must still deliver at exit
"""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, timeout=60)
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        assert sum(len(b.events) for b in read_batches(log)) == 5


def test_chain_continues_across_restarts(tmp_path: Path) -> None:
    key = SigningKey.generate()
    state = tmp_path / "state"
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        with make_client(log, key, batch_size=2, state_dir=state) as first:
            for n in range(4):
                first.generation(gen(n))
        with make_client(log, key, batch_size=2, state_dir=state) as second:
            for n in range(4, 6):
                second.generation(gen(n))
        batches = read_batches(log)
    assert [b.sequence for b in batches] == [0, 1, 2]
    assert_valid_chain(batches, key)


# --- crash safety: write-ahead chain state ---------------------------------------------------


class DyingBus:
    """A bus writer over a real log that, once ``armed``, behaves like a process killed inside
    ``publish``: before the message reaches the log (``after_write=False``) or just after it
    did (``after_write=True``). The worker thread never comes back (it ends on SystemExit once
    ``release`` is set), so nothing after the publish (the confirmation) runs."""

    def __init__(self, inner: Any, *, after_write: bool) -> None:
        self.inner = inner
        self.after_write = after_write
        self.armed = threading.Event()
        self.died = threading.Event()
        self.release = threading.Event()

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.armed.is_set():
            if self.after_write:
                self.inner.publish(topic, key, value)
            self.died.set()
            self.release.wait(10)
            raise SystemExit  # ends the worker thread, like the kill did
        self.inner.publish(topic, key, value)

    def close(self) -> None:
        self.inner.close()


def _die_mid_publish(log: EmbeddedLog, key: SigningKey, state: Path, **kw: Any) -> DyingBus:
    """Batch 0 (r0, r1) arrives; batch 1 (r2, r3) is sealed and saved, then the client "dies"
    in its publish. The dead client is dropped without close(), as a killed process is."""
    bus = DyingBus(log.writer(), **kw)
    first = AuditClient(
        service_id="svc", producer_id="svc-1", key=key, bus=bus, batch_size=2, state_dir=state
    )
    first.generation(gen(0))
    first.generation(gen(1))
    first.flush(timeout=5)
    bus.armed.set()
    first.generation(gen(2))
    first.generation(gen(3))
    assert bus.died.wait(5)
    # The process is gone: its worker ends where it stood (releasing the spool's lock, as the
    # kernel would), and nobody closes the client.
    bus.release.set()
    first._batcher._worker.join(5)
    client_module._open_clients.discard(first)
    return bus


def _request_ids(batch: SignedBatch) -> list[str]:
    catalogue = default_catalogue()
    return [catalogue.decode(e)[1]["request_id"] for e in batch.events]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_restart_resends_a_batch_saved_but_never_published_so_there_is_no_gap(
    tmp_path: Path,
) -> None:
    key = SigningKey.generate()
    state = tmp_path / "state"
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        _die_mid_publish(log, key, state, after_write=False)
        with make_client(log, key, batch_size=2, state_dir=state) as second:
            second.generation(gen(4))
        batches = read_batches(log)
    # The old client would have sealed a new batch 1 from r4 and lost r2, r3 for good (or,
    # saving before publishing without the batch, left sequence 1 missing: a gap).
    assert [b.sequence for b in batches] == [0, 1, 2]
    assert [_request_ids(b) for b in batches] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert_valid_chain(batches, key)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_restart_after_a_publish_that_was_not_confirmed_replays_never_forks(
    tmp_path: Path,
) -> None:
    key = SigningKey.generate()
    state = tmp_path / "state"
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        _die_mid_publish(log, key, state, after_write=True)
        with make_client(log, key, batch_size=2, state_dir=state) as second:
            second.generation(gen(4))
        batches = read_batches(log)
    # Batch 1 twice, byte for byte (a replay the materialiser drops), then batch 2 after it.
    # The old client saved its position after the publish, so it sealed a second batch 1.
    assert [b.sequence for b in batches] == [0, 1, 1, 2]
    assert batches[1].digest == batches[2].digest
    assert_valid_chain([batches[0], batches[1], batches[3]], key)


class DownBus:
    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        raise BusUnavailableError("test bus is down")

    def close(self) -> None:
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_resend_that_cannot_go_yet_stays_saved_and_close_does_not_hang(tmp_path: Path) -> None:
    key = SigningKey.generate()
    state = tmp_path / "state"
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        _die_mid_publish(log, key, state, after_write=False)
        # Restarted while the bus is down, without a spool: the re-send waits, and closing
        # gives it up for now instead of blocking.
        second = AuditClient(
            service_id="svc",
            producer_id="svc-1",
            key=key,
            bus=DownBus(),
            batch_size=2,
            state_dir=state,
            spool=False,
        )
        started = time.monotonic()
        with pytest.raises(BusError, match="not yet re-sent"):
            second.drain(timeout=0.3)
        second.close(timeout=5)
        assert time.monotonic() - started < 5
        with make_client(log, key, batch_size=2, state_dir=state) as third:
            third.generation(gen(4))
        batches = read_batches(log)
    assert [_request_ids(b) for b in batches] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert_valid_chain(batches, key)


def test_the_chain_state_file_of_the_earlier_format_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "svc-1.chain.json"
    path.write_text(json.dumps({"next_sequence": 7, "prev_digest": "ab" * 32}))
    durable = ChainStateFile(path).load_durable()
    assert durable.position == ChainPosition(7, bytes.fromhex("ab" * 32))
    assert durable.unconfirmed == ()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_chain_state_whose_saved_batch_does_not_fit_its_position_is_refused(
    tmp_path: Path,
) -> None:
    key = SigningKey.generate()
    state = tmp_path / "state"
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        _die_mid_publish(log, key, state, after_write=False)
        chain = ChainStateFile(state / "svc-1.chain.json")
        durable = chain.load_durable()
        assert len(durable.unconfirmed) == 1
        # The same saved batch, claimed for a later position: not the chain it was saved in.
        batch = SignedBatch.decode(durable.unconfirmed[0])
        chain.save(ChainPosition(5, batch.digest), [(batch.digest, durable.unconfirmed[0])])
        with pytest.raises(AuditError, match="does not continue the chain"):
            make_client(log, key, batch_size=2, state_dir=state, spool=False)


# --- encoding on the worker thread ------------------------------------------------------------


def unencodable(n: int) -> Generation:
    """An event that never went through validation (model_copy) and does not fit its schema."""
    return gen(n).model_copy(update={"input_sha256": b"too short"})


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_an_event_that_does_not_encode_is_reported_never_lost_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = SigningKey.generate()
    bad = unencodable(2)
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        client = make_client(log, key, batch_size=1000, linger=60)
        with caplog.at_level(logging.ERROR, logger="aigc_audit.producers.batcher"):
            good = [client.generation(gen(1)), client.emit(bad), client.generation(gen(3))]
            assert good[1] == bad.event_id  # accepted: encoding is the worker's
            with pytest.raises(EventValidationError, match=str(bad.event_id)) as info:
                client.flush()
        assert "1 events accepted earlier did not encode" in str(info.value)
        assert any(str(bad.event_id) in r.getMessage() for r in caplog.records)
        assert client.stats.events_rejected == 1
        assert client.stats.events_published == 2
        client.flush()  # reported once
        good.append(client.generation(gen(4)))
        client.close()  # nothing left to report
        batches = read_batches(log)
    assert_valid_chain(batches, key)
    catalogue = default_catalogue()
    written = [catalogue.decode(e)[1]["head"]["event_id"] for b in batches for e in b.events]
    assert written == [good[0], good[2], good[3]]


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_close_reports_rejections_and_a_batch_of_only_those_is_not_sealed(
    tmp_path: Path,
) -> None:
    key = SigningKey.generate()
    state = tmp_path / "state"
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        client = make_client(log, key, batch_size=2, state_dir=state)
        client.emit(unencodable(1))
        client.emit(unencodable(2))
        with pytest.raises(EventValidationError, match="2 events accepted earlier"):
            client.close()
        with pytest.raises(ClientClosedError):
            client.generation(gen(3))
        assert read_batches(log) == []
        with make_client(log, key, batch_size=2, state_dir=state) as again:
            again.generation(gen(3))
        [batch] = read_batches(log)
    assert batch.sequence == 0 and batch.prev_digest == GENESIS_DIGEST  # the chain never moved


class RefusingBus:
    """A bus writer that refuses every message."""

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        raise BusError("refused")

    def publish_many(self, topic: str, items: Any) -> None:
        raise BusError("refused")

    def close(self) -> None:
        pass


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_fail_closed_losses_do_not_count_rejected_events() -> None:
    client = AuditClient(
        service_id="svc",
        producer_id="svc-1",
        key=SigningKey.generate(),
        bus=RefusingBus(),
        fail_closed=True,
        batch_size=1000,
        linger=60,
    )
    client.generation(gen(1))
    client.emit(unencodable(2))
    client.generation(gen(3))
    with pytest.raises(AuditTrailDownError, match="did not encode") as info:
        client.flush()
    assert info.value.events_not_written == 2
    assert client.stats.events_lost == 2 and client.stats.events_rejected == 1
    client.close()  # both were reported


def test_emit_refuses_what_is_not_an_event_kind(tmp_path: Path) -> None:
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        with make_client(log, SigningKey.generate()) as client:
            with pytest.raises(EventValidationError, match="not an audit event: dict"):
                client.emit({"request_id": "r1"})  # type: ignore[arg-type]
            with pytest.raises(EventValidationError, match="not an event kind"):
                client.emit(AuditEvent())
        assert read_batches(log) == []


class Traced(Generation):
    """Records which thread builds its record (its own body() sends it through to_record)."""

    threads: ClassVar[list[str]] = []

    def body(self) -> dict[str, Any]:
        Traced.threads.append(threading.current_thread().name)
        return super().body()


def test_records_are_built_and_encoded_on_the_worker_thread(tmp_path: Path) -> None:
    with EmbeddedLog(tmp_path / "bus.sqlite3") as log:
        with make_client(log, SigningKey.generate()) as client:
            client.emit(Traced(**gen(1).model_dump()))
            assert Traced.threads == []
            client.flush()
        [batch] = read_batches(log)
    assert Traced.threads == ["aigc-audit-batcher-svc-1"]
    assert default_catalogue().decode(batch.events[0])[1]["request_id"] == "r1"
