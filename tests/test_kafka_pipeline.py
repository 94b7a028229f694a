"""The pipeline on a real Kafka broker (secured: each role as its own principal): bad messages keep
their Kafka position in quarantine, and a materialiser killed mid-stream loses and duplicates
nothing."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.infra.kafka.broker import BrokerState
from aigc_audit.producers.signing import SigningKey, batch_signing_input
from tests.harness import Harness, generation
from tests.kafka_broker import client_config, kafka_settings, security_env

pytestmark = [pytest.mark.kafka, pytest.mark.chdb]


@pytest.fixture
def kh(tmp_path: Path, kafka_broker: Any) -> Iterator[Harness]:
    harness = Harness(tmp_path / "data", **kafka_settings(kafka_broker, partitions=1))
    yield harness
    harness.close()


def test_bad_messages_keep_their_kafka_position(kh: Harness) -> None:
    producer = "chat-1"
    key = kh.key(producer)
    events = [kh.encode(generation(n), producer) for n in range(6)]
    b0, b1 = kh.chain(producer, [events[:3], events[3:]])
    forged = dataclasses.replace(
        b1, signature=SigningKey.generate().sign(batch_signing_input(b1.head))
    )
    assert key.key_id == b1.key_id
    kh.publish_batch(b0)
    kh.publish(b"\x00garbage that is not a batch", key=producer.encode())
    kh.publish(forged.encode(), key=producer.encode())
    kh.publish_batch(b1)
    stats = kh.materialise()
    assert stats.batches_accepted == 2 and stats.messages_quarantined == 2
    rows = kh.query(
        "SELECT topic, partition, offset, reason, length(message) FROM audit.quarantine "
        "ORDER BY offset"
    ).rows
    topic = kh.settings.events_topic
    assert rows == [
        (topic, 0, 1, "not_a_batch", len(b"\x00garbage that is not a batch")),
        (topic, 0, 2, "bad_signature", len(forged.encode())),
    ]
    assert kh.count("generations") == 6

    # The checkpoint of the partition (2 batches, 4 offsets settled) is in the store and on the
    # checkpoints topic, signed alike, and the store verifies against it.
    (note,) = [r[0] for r in kh.query("SELECT note FROM audit.checkpoints").rows]
    assert note.split("\n")[1:4:2] == ["2", "next-offset 4"]
    assert _topic_values(kh.settings, kh.settings.checkpoints_topic) == [note]
    from aigc_audit.consumers.store_verification import verify_store
    from aigc_audit.producers.signing import load_public_key

    result = verify_store(kh.deployment.store(), load_public_key(kh.settings.root_public_key_path))
    assert result.ok, [f.line() for f in result.findings]


def _topic_values(settings: Any, topic: str) -> list[str]:
    from kafka import KafkaConsumer

    # An inspector's read, as the admin principal: no role of the platform reads checkpoints.
    security = settings.kafka_security("admin")
    consumer = KafkaConsumer(
        topic,
        **security.client_config(),
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        return [m.value.decode() for m in consumer]
    finally:
        consumer.close()


def _committed(broker: BrokerState, group: str) -> int:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**client_config(broker, "admin"))
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return sum(max(0, o.offset) for o in offsets.values())


def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, kafka_broker: BrokerState
) -> None:
    data = tmp_path / "data"
    settings = kafka_settings(kafka_broker, partitions=3, batch_size=50)
    h = Harness(data, **settings)
    total = 0
    try:
        for producer in ("chat-1", "image-1", "code-1"):
            events = [generation(n, request_id=f"{producer}-{n}") for n in range(4000)]
            h.emit(producer, events, batch_size=50)
            total += len(events)
    finally:
        h.close()  # the store must be free for the materialiser process

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    env["AIGC_AUDIT_DATA_DIR"] = str(data)
    env["AIGC_AUDIT_TOPIC_PREFIX"] = settings["topic_prefix"]
    env["AIGC_AUDIT_CONSUMER_GROUP"] = settings["consumer_group"]
    # The materialiser process has its own principal, and the key publisher's for the platform's
    # own keys; not admin: the topics and ACLs exist already.
    env.update(security_env(kafka_broker, roles=("materialiser", "key_publisher")))
    command = [
        sys.executable,
        "-m",
        "aigc_audit.consumers.cli.main",
        "consume",
        "--follow",
        "--bootstrap",
        kafka_broker.bootstrap,
    ]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    batches = total // 50
    deadline = time.monotonic() + 120
    try:
        while True:  # kill it once some, but not all, of the work is committed
            done = _committed(kafka_broker, settings["consumer_group"])
            if done > 0:
                break
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the materialiser made no progress"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert done < batches, "the materialiser finished before it could be killed"

    restarted = Harness(data, **settings)
    try:
        stats = restarted.materialise()
        assert stats.messages_quarantined == 0
        assert restarted.count("generations") == total
        assert restarted.count("events") == total
        assert restarted.count("batches") == batches
        dupes = restarted.query(
            "SELECT event_id FROM audit.events GROUP BY event_id HAVING count() > 1"
        ).rows
        assert dupes == []
        per_producer = dict(
            restarted.query(
                "SELECT producer_id, count() FROM audit.generations GROUP BY producer_id"
            ).rows
        )
        assert per_producer == {"chat-1": 4000, "image-1": 4000, "code-1": 4000}
        findings = restarted.count("chain_findings")
        assert findings == 0
    finally:
        restarted.close()
