"""Every way a message can be bad ends in quarantine with its own reason, while the good batches
from another producer before and after it still land and nothing tampered reaches a typed table.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_audit.consumers.keys.registry import publish_registration, register_producer, revoke
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.codec import MAGIC
from aigc_audit.producers.signing import (
    KeyRegistration,
    SigningKey,
    batch_signing_input,
    sign_registration,
)
from tests.harness import Harness, generation, now_us

pytestmark = pytest.mark.chdb

HOUR_US = 3_600 * 1_000_000


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "data")
    yield harness
    harness.close()


def good_batch(h: Harness, first: int, sequence: int, prev: bytes) -> SignedBatch:
    events = [h.encode(generation(n), "good-1") for n in range(first, first + 3)]
    return h.seal("good-1", events, sequence=sequence, prev=prev)


def around(h: Harness, bad: list[bytes]) -> None:
    """Publish a good batch, the bad messages, then a good batch that continues the chain."""
    before = good_batch(h, 1000, 0, bytes(32))
    h.publish_batch(before)
    for value in bad:
        h.publish(value)
    h.publish_batch(good_batch(h, 2000, 1, before.digest))


def assert_good_landed(h: Harness) -> None:
    assert h.count("generations", "producer_id = 'good-1'") == 6
    assert h.count("batches", "producer_id = 'good-1'") == 2


def events_of(h: Harness, producer: str, first: int, n: int = 3) -> list[bytes]:
    return [h.encode(generation(i), producer) for i in range(first, first + n)]


def test_forged_signature(h: Harness) -> None:
    batch = h.seal("svc-1", events_of(h, "svc-1", 0))
    forger = SigningKey.generate()
    forged = dataclasses.replace(batch, signature=forger.sign(batch_signing_input(batch.head)))
    around(h, [forged.encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "bad_signature")]
    assert h.count("generations", "producer_id = 'svc-1'") == 0
    assert_good_landed(h)


def test_one_event_byte_changed(h: Harness) -> None:
    batch = h.seal("svc-1", events_of(h, "svc-1", 0))
    victim = bytearray(batch.events[1])
    at = victim.index(b"req-1")
    victim[at + 4] = ord("9")  # req-1 -> req-9: still valid Avro, but not what was signed
    tampered = dataclasses.replace(batch, events=(batch.events[0], bytes(victim), batch.events[2]))
    around(h, [tampered.encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "merkle_root_mismatch")]
    assert h.count("generations", "request_id = 'req-9'") == 0
    assert h.count("events", "producer_id = 'svc-1'") == 0
    assert_good_landed(h)


def test_replayed_batch(h: Harness) -> None:
    b0, b1 = h.chain("svc-1", [events_of(h, "svc-1", 0), events_of(h, "svc-1", 10)])
    around(h, [b0.encode(), b1.encode(), b0.encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(3, "replay")]
    assert h.count("generations", "producer_id = 'svc-1'") == 6  # not 9
    assert h.count("chain_findings", "kind = 'replay'") == 1
    assert_good_landed(h)


def test_reordered_batches(h: Harness) -> None:
    b0, b1, b2, b3 = h.chain("svc-1", [events_of(h, "svc-1", 10 * i) for i in range(4)])
    around(h, [b0.encode(), b2.encode(), b1.encode(), b3.encode()])
    h.materialise()
    # b2 is a gap and does not move the head; b1, late, links to b0 and is accepted; b3 is
    # judged against b1 (the last accepted head), so it is a gap too. b2 stays in quarantine.
    assert h.quarantine_reasons() == [(2, "chain_gap"), (4, "chain_gap")]
    findings = h.query(
        "SELECT kind, expected_sequence, got_sequence FROM audit.chain_findings ORDER BY offset"
    ).rows
    assert findings == [("chain_gap", 1, 2), ("chain_gap", 2, 3)]
    assert sorted(
        int(r[0])
        for r in h.query("SELECT sequence FROM audit.batches WHERE producer_id='svc-1'").rows
    ) == [0, 1]
    assert_good_landed(h)


def test_missing_batch(h: Harness) -> None:
    b0, _b1, b2, b3 = h.chain("svc-1", [events_of(h, "svc-1", 10 * i) for i in range(4)])
    around(h, [b0.encode(), b2.encode(), b3.encode()])
    h.materialise()
    # The head stays at b0: b3, which links to the quarantined b2, is judged against b0.
    assert h.quarantine_reasons() == [(2, "chain_gap"), (3, "chain_gap")]
    rows = h.query(
        "SELECT kind, expected_sequence, got_sequence FROM audit.chain_findings ORDER BY offset"
    ).rows
    assert rows == [("chain_gap", 1, 2), ("chain_gap", 1, 3)]
    assert sorted(
        int(r[0])
        for r in h.query("SELECT sequence FROM audit.batches WHERE producer_id='svc-1'").rows
    ) == [0]
    assert_good_landed(h)


def test_unknown_key(h: Harness) -> None:
    stranger = SigningKey.generate()  # never registered
    batch = h.seal("svc-1", events_of(h, "svc-1", 0), key=stranger)
    around(h, [batch.encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "unknown_key")]
    assert_good_landed(h)


def test_key_registered_by_someone_other_than_the_root(h: Harness) -> None:
    impostor_root = SigningKey.generate()
    key = SigningKey.generate()
    reg = sign_registration(
        impostor_root,
        KeyRegistration(
            key_id=key.key_id,
            producer_id="svc-1",
            public_key=key.public_key,
            valid_from_us=now_us() - HOUR_US,
            registered_at_us=now_us(),
        ),
    )
    publish_registration(h.deployment.writer, h.settings.keys_topic, reg)
    around(h, [h.seal("svc-1", events_of(h, "svc-1", 0), key=key).encode()])
    h.materialise()
    reasons = h.query("SELECT topic, reason FROM audit.quarantine ORDER BY topic, offset").rows
    assert reasons == [
        ("aigc-audit.events", "unknown_key"),
        ("aigc-audit.keys", "bad_key_registration"),
    ]
    assert_good_landed(h)


def test_revoked_key(h: Harness) -> None:
    root = h.deployment.root_key()
    key = h.key("svc-1")
    reg = h.materialiser()._keyring
    h.materialise()
    registration = reg.get(key.key_id)
    assert registration is not None
    revoked_at = now_us()
    revoke(
        root=root,
        bus=h.deployment.writer,
        topic=h.settings.keys_topic,
        registration=registration,
        at_us=revoked_at,
    )
    before = h.seal("svc-1", events_of(h, "svc-1", 0), created_at_us=revoked_at - 1_000)
    after = h.seal(
        "svc-1",
        events_of(h, "svc-1", 10),
        sequence=1,
        prev=before.digest,
        created_at_us=revoked_at + 1_000,
    )
    around(h, [before.encode(), after.encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(2, "key_revoked")]
    assert h.count("generations", "producer_id = 'svc-1'") == 3  # made before the revocation
    assert h.count("keys", "revoked_at IS NOT NULL") == 1
    assert_good_landed(h)


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "reason"),
    [(HOUR_US, None, "key_not_yet_valid"), (-2 * HOUR_US, -HOUR_US, "key_expired")],
)
def test_key_used_outside_its_validity(
    h: Harness, valid_from: int, valid_until: int | None, reason: str
) -> None:
    now = now_us()
    key = register_producer(
        root=h.deployment.root_key(),
        bus=h.deployment.writer,
        topic=h.settings.keys_topic,
        keys_dir=h.settings.keys_dir,
        producer_id="svc-1",
        valid_from_us=now + valid_from,
        valid_until_us=None if valid_until is None else now + valid_until,
    )
    around(h, [h.seal("svc-1", events_of(h, "svc-1", 0), key=key, created_at_us=now).encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(1, reason)]
    assert_good_landed(h)


def test_malformed_avro_event(h: Harness) -> None:
    good = h.encode(generation(0), "svc-1")
    broken = good[:10] + b"\xff" * 7  # a real fingerprint, then a body that is not the record
    around(h, [h.seal("svc-1", [good, broken]).encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "malformed_event")]
    assert h.count("generations", "producer_id = 'svc-1'") == 0  # the batch goes whole
    assert_good_landed(h)


def test_wrong_event_schema_fingerprint(h: Harness) -> None:
    good = h.encode(generation(0), "svc-1")
    alien = MAGIC + os.urandom(8) + good[10:]
    around(h, [h.seal("svc-1", [good, alien]).encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "unknown_event_schema")]
    assert_good_landed(h)


def test_wrong_batch_schema_fingerprint(h: Harness) -> None:
    value = h.seal("svc-1", events_of(h, "svc-1", 0)).encode()
    around(h, [value[:2] + bytes(8) + value[10:]])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "unknown_batch_schema")]
    assert_good_landed(h)


def test_garbage_bytes(h: Harness) -> None:
    around(h, [os.urandom(300), b""])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "not_a_batch"), (2, "not_a_batch")]
    kept = h.query("SELECT length(message) FROM audit.quarantine ORDER BY offset").rows
    assert kept == [(300,), (0,)]  # the exact bytes are kept as evidence
    assert_good_landed(h)


def test_event_claiming_another_producer(h: Harness) -> None:
    impersonated = h.encode(generation(0), "good-1")  # head says good-1, batch is svc-1's
    around(h, [h.seal("svc-1", [impersonated]).encode()])
    h.materialise()
    assert h.quarantine_reasons() == [(1, "event_producer_mismatch")]
    assert_good_landed(h)


def test_a_run_of_bad_messages_stops_the_materialiser_when_asked(tmp_path: Path) -> None:
    """With on_reject_flood = "stop", a bad deploy (or a lost key) stops the materialiser at
    the alert instead of quietly quarantining the whole stream; what it wrote before stopping
    (the alert among it) is committed and nothing is settled twice."""
    from aigc_audit.consumers.ingest.materialiser import MaterialiserHalted

    h = Harness(tmp_path / "data", reject_alert_streak=3, on_reject_flood="stop")
    try:
        h.publish_batch(good_batch(h, 1000, 0, bytes(32)))
        for n in range(5):
            h.publish(f"garbage {n}".encode())
        with pytest.raises(MaterialiserHalted, match="3 messages in a row"):
            h.materialise()
        assert h.count("generations") == 3
        assert h.count("quarantine") == 3
        floods = h.query("SELECT producer_id, offset, detail FROM audit.chain_findings").rows
        assert floods == [
            ("(bus)", 3, "3 messages in a row refused on aigc-audit.events/0, offsets 1..3")
        ]
    finally:
        h.close()

    # The default goes on: the run read back from the store continues, so no second alert.
    again = Harness(tmp_path / "data", reject_alert_streak=3)
    try:
        assert again.materialise().reject_floods == 0
        assert again.quarantine_reasons() == [(n, "not_a_batch") for n in range(1, 6)]
        assert again.count("generations") == 3
        assert again.count("chain_findings", "kind = 'reject_flood'") == 1
    finally:
        again.close()


def test_the_deprecated_streak_limit_still_stops(tmp_path: Path) -> None:
    from aigc_audit.consumers.ingest.materialiser import MaterialiserHalted

    with pytest.warns(DeprecationWarning, match="quarantine_streak_limit is deprecated"):
        h = Harness(tmp_path / "data", quarantine_streak_limit=2)
    try:
        assert (h.settings.reject_alert_streak, h.settings.on_reject_flood) == (2, "stop")
        for n in range(3):
            h.publish(f"garbage {n}".encode())
        with pytest.raises(MaterialiserHalted, match="2 messages in a row"):
            h.materialise()
        assert h.count("quarantine") == 2
    finally:
        h.close()
    with pytest.warns(DeprecationWarning):
        never = Harness(tmp_path / "other", quarantine_streak_limit=0)
    try:
        assert never.settings.on_reject_flood == "alert"
    finally:
        never.close()
