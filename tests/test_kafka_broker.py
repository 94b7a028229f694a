"""The local Kafka broker of infra/kafka: real Apache Kafka 4.x (KRaft) fetched with Maven.

Two brokers start in this module: the session's (tests/kafka_broker.py, secured: TLS, SCRAM,
ACLs) for the produce/consume round trip and the secured `up`'s set-up, and one of its own for
the CLI's up/status/down and a restart that keeps data. That one is plaintext (`up --plaintext`,
the default demo's and the benchmark's broker): the one plaintext test of the suite.
"""

from __future__ import annotations

import json
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from aigc_audit.consumers.cli.kafka import kafka
from aigc_audit.infra.kafka import broker
from aigc_audit.infra.kafka.broker import BrokerState
from aigc_audit.infra.kafka.tools import MVN_HINT, InfraError
from tests.kafka_broker import client_config

pytestmark = pytest.mark.kafka


def _create_topic(config: dict[str, Any], partitions: int = 1) -> str:
    topic = f"test-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(**config)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        assert topic in admin.list_topics()
    finally:
        admin.close()
    return topic


def _produce(config: dict[str, Any], topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(**config, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=b"k", value=value) for value in values]
        producer.flush(timeout=30)
        offsets = [future.get(timeout=30).offset for future in futures]
    finally:
        producer.close()
    assert offsets == sorted(offsets), "one key, one partition: offsets rise in send order"


def _consume(
    config: dict[str, Any], topic: str, expected: int, timeout: float = 30.0
) -> list[bytes]:
    consumer = KafkaConsumer(**config, enable_auto_commit=False)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values += [record.value for record in records]
        return values
    finally:
        consumer.close()


def test_broker_round_trips_100_messages_in_order(kafka_broker: BrokerState) -> None:
    # As the admin principal (a super user): the topic is the test's own, with no ACLs.
    admin = client_config(kafka_broker, "admin")
    topic = _create_topic(admin)
    sent = [f"message-{i:03d}".encode() for i in range(100)]
    _produce(admin, topic, sent)
    assert _consume(admin, topic, len(sent)) == sent


def test_secured_up_sets_up_the_platform_and_says_where_the_credentials_are(
    kafka_broker: BrokerState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kafka_broker.secure, "the session's broker must be the secured one"
    prefix = f"up-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIGC_AUDIT_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("AIGC_AUDIT_DATA_DIR", str(tmp_path / "data"))
    up = CliRunner().invoke(kafka, ["up", "--state-dir", str(kafka_broker.state_dir)])
    assert up.exit_code == 0, up.output
    assert up.stdout.strip().splitlines()[-1] == kafka_broker.bootstrap
    assert f"credentials (0600, one principal per role): {kafka_broker.credentials_file}" in (
        up.stderr
    )
    assert f"CA certificate: {kafka_broker.ca_file}" in up.stderr
    creds = Path(kafka_broker.credentials_file)
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert set(json.loads(creds.read_text())) == {
        "admin",
        "producer",
        "key_publisher",
        "materialiser",
    }
    assert stat.S_IMODE((kafka_broker.state_dir / "server.properties").stat().st_mode) == 0o600
    # No password in what `up` prints.
    for entry in kafka_broker.credentials().values():
        assert entry["password"] not in up.output
    # The set-up made the prefix's topics, visible to admin.
    admin = KafkaAdminClient(**client_config(kafka_broker, "admin"))
    try:
        assert {f"{prefix}.events", f"{prefix}.keys", f"{prefix}.checkpoints"} <= set(
            admin.list_topics()
        )
    finally:
        admin.close()


def test_status_reports_the_session_broker(kafka_broker: BrokerState) -> None:
    assert broker.answers(kafka_broker.bootstrap, cafile=kafka_broker.ca_file or None)
    if kafka_broker.secure:  # a plaintext request on the TLS port gets no answer
        assert not broker.answers(kafka_broker.bootstrap)
    if kafka_broker.pid:  # started here, not an external AIGC_AUDIT_KAFKA_BOOTSTRAP broker
        assert broker.status(kafka_broker.state_dir) == kafka_broker
        assert kafka_broker.kafka_version == broker.KAFKA_VERSION
        assert kafka_broker.bootstrap == f"127.0.0.1:{kafka_broker.port}"
        # start() on a running broker's state dir returns it and starts no second one.
        assert broker.start(kafka_broker.state_dir) == kafka_broker


def test_cli_up_status_down_and_a_restart_that_keeps_data(tmp_path: Path) -> None:
    runner = CliRunner()
    state_dir = tmp_path / "kafka"
    try:
        # The default demo's broker: plaintext, no authentication (the suite's one such test).
        up = runner.invoke(kafka, ["up", "--plaintext", "--state-dir", str(state_dir)])
        assert up.exit_code == 0, up.output
        assert "security: none (PLAINTEXT" in up.stderr
        bootstrap = up.stdout.strip().splitlines()[-1]
        plain = {"bootstrap_servers": bootstrap}
        assert bootstrap.startswith("127.0.0.1:")
        assert broker.answers(bootstrap)

        status = runner.invoke(kafka, ["status", "--state-dir", str(state_dir)])
        assert status.exit_code == 0, status.output
        state = broker.status(state_dir)
        assert state is not None
        assert status.stdout.strip().splitlines()[-1] == bootstrap
        assert f"pid {state.pid}" in status.stdout

        # A second `up` finds the running broker rather than starting another.
        again = runner.invoke(kafka, ["up", "--plaintext", "--state-dir", str(state_dir)])
        assert again.exit_code == 0, again.output
        assert again.stdout.strip().splitlines()[-1] == bootstrap
        assert broker.status(state_dir) == state

        topic = _create_topic(plain)
        before = [f"before-{i}".encode() for i in range(20)]
        _produce(plain, topic, before)

        restarted = broker.restart(state_dir)
        assert restarted.bootstrap == bootstrap, "same address, so clients can reconnect"
        assert restarted.pid != state.pid
        assert restarted.data_dir == state.data_dir
        after = [f"after-{i}".encode() for i in range(5)]
        _produce(plain, topic, after)
        assert _consume(plain, topic, len(before) + len(after)) == before + after

        down = runner.invoke(kafka, ["down", "--state-dir", str(state_dir)])
        assert down.exit_code == 0, down.output
        assert not broker.answers(bootstrap)
        gone = runner.invoke(kafka, ["status", "--state-dir", str(state_dir)])
        assert gone.exit_code == 1
        assert "no Kafka broker running" in gone.stderr
        assert runner.invoke(kafka, ["down", "--state-dir", str(state_dir)]).exit_code == 0
        # A plaintext data directory is never started secured (nor the other way round).
        with pytest.raises(InfraError, match="made by a plaintext broker"):
            broker.start(state_dir)
    finally:
        broker.stop(state_dir)


def test_missing_java_is_one_line_naming_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    state_dir = tmp_path / "kafka"

    with pytest.raises(InfraError) as raised:
        broker.start(state_dir)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("java not found on PATH")
    assert "install a Java 17+ runtime" in message
    assert broker.read_state(state_dir) is None

    result = CliRunner().invoke(kafka, ["up", "--state-dir", str(state_dir)])
    assert isinstance(result.exception, InfraError)
    assert str(result.exception) == message


def test_missing_maven_is_one_line_when_jars_must_be_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGC_AUDIT_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InfraError) as raised:
        broker.fetch()
    assert str(raised.value) == "mvn not found on PATH: " + MVN_HINT
    assert not (tmp_path / "cache" / "kafka" / broker.KAFKA_VERSION / ".complete").exists()
