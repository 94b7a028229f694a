"""Two materialiser processes in one consumer group share the partitions of the events topic and,
together, materialise every batch exactly once into one shared store: the embedded store served
over ClickHouse's HTTP interface, which both reach through clickhouse-connect."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from aigc_audit.consumers.store.embedded import EmbeddedStore
from aigc_audit.consumers.store.server import StoreServer
from aigc_audit.infra.kafka.broker import BrokerState
from tests.harness import Harness, generation
from tests.kafka_broker import client_config, kafka_settings, security_env

pytestmark = [pytest.mark.kafka, pytest.mark.chdb]

PRODUCERS = ("chat-1", "image-1", "code-1", "api-1")
PER_PRODUCER = 1500


def _members_with_partitions(broker: BrokerState, group: str) -> int:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(**client_config(broker, "admin"))
    try:
        info = admin.describe_groups([group]).get(group) or {}
    except KafkaError:  # the group coordinator is still being elected: nobody holds anything yet
        return 0
    finally:
        admin.close()
    held = 0
    for member in info.get("members", []):
        assignment = member.get("member_assignment")
        # Mid-rebalance a member's assignment is still empty (an empty string, not a dict).
        if isinstance(assignment, dict) and any(
            a["partitions"] for a in assignment.get("assigned_partitions", [])
        ):
            held += 1
    return held


def test_two_materialisers_share_partitions_exactly_once(
    tmp_path: Path, kafka_broker: BrokerState
) -> None:
    prefix = f"grp-{uuid.uuid4().hex[:8]}"
    group = f"{prefix}-materialiser"
    data = tmp_path / "data"
    settings = kafka_settings(kafka_broker, prefix, partitions=4)
    producer_side = Harness(data, **settings)
    producer_side.deployment.ensure_topics()
    producer_side.deployment.root_key()

    store = EmbeddedStore(tmp_path / "store")
    store.migrate()
    server = StoreServer(store, users={"writer": "w-secret", "reader": "r-secret"}).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    env.update(
        AIGC_AUDIT_DATA_DIR=str(data),
        AIGC_AUDIT_CLICKHOUSE_URL=server.url("writer"),
        AIGC_AUDIT_TOPIC_PREFIX=prefix,
        AIGC_AUDIT_CONSUMER_GROUP=group,
    )
    # Each materialiser with its own principal (and the key publisher's, for the platform's keys).
    env.update(security_env(kafka_broker, roles=("materialiser", "key_publisher")))
    command = [
        sys.executable,
        "-m",
        "aigc_audit.consumers.cli.main",
        "consume",
        "--follow",
        "--json",
        "--bootstrap",
        kafka_broker.bootstrap,
    ]
    workers = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 90
        while _members_with_partitions(kafka_broker, group) < 2:
            for w in workers:
                assert w.poll() is None, w.stderr.read() if w.stderr else ""
            assert time.monotonic() < deadline, "the two materialisers never shared the group"
            time.sleep(0.2)

        for producer in PRODUCERS:
            events = [generation(n, request_id=f"{producer}-{n}") for n in range(PER_PRODUCER)]
            producer_side.emit(producer, events, batch_size=50)
        total = len(PRODUCERS) * PER_PRODUCER

        local = server.local_store()
        deadline = time.monotonic() + 120
        while int(local.query("SELECT count() FROM audit.events").rows[0][0]) < total:
            if time.monotonic() > deadline:
                quarantined = local.query("SELECT reason, count() FROM audit.quarantine GROUP BY 1")
                pytest.fail(f"the group did not materialise everything: {quarantined.rows}")
            time.sleep(0.2)
        time.sleep(1.0)  # anything extra (a duplicate) would have landed by now
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        outputs = [w.communicate(timeout=60) for w in workers]
        producer_side.close()

    stats = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    done = [s["events_materialised"] for s in stats]
    assert all(n > 0 for n in done), f"one materialiser did no work: {done}"
    assert sum(done) == total  # between them, each batch exactly once

    try:
        assert int(local.query("SELECT count() FROM audit.events").rows[0][0]) == total
        dupes = local.query(
            "SELECT event_id FROM audit.events GROUP BY event_id HAVING count() > 1"
        )
        assert dupes.rows == []
        per_producer = dict(
            local.query(
                "SELECT producer_id, count() FROM audit.generations GROUP BY producer_id"
            ).rows
        )
        assert per_producer == dict.fromkeys(PRODUCERS, PER_PRODUCER)
        assert int(local.query("SELECT count() FROM audit.quarantine").rows[0][0]) == 0
        assert int(local.query("SELECT count() FROM audit.chain_findings").rows[0][0]) == 0
    finally:
        server.stop()
        store.close()
