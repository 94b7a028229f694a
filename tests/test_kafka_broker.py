"""The local Kafka broker of infra/kafka: real Apache Kafka 4.x (KRaft) fetched with Maven.

Two brokers start in this module: the session's (tests/kafka_broker.py) for the produce/consume
round trip, and one of its own for the CLI's up/status/down and a restart that keeps data.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from infra.kafka import broker
from infra.kafka.broker import BrokerState, InfraError
from infra.kafka.commands import kafka

pytestmark = pytest.mark.kafka


def _create_topic(bootstrap: str, partitions: int = 1) -> str:
    topic = f"test-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        assert topic in admin.list_topics()
    finally:
        admin.close()
    return topic


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=b"k", value=value) for value in values]
        producer.flush(timeout=30)
        offsets = [future.get(timeout=30).offset for future in futures]
    finally:
        producer.close()
    assert offsets == sorted(offsets), "one key, one partition: offsets rise in send order"


def _consume(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
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
    topic = _create_topic(kafka_broker.bootstrap)
    sent = [f"message-{i:03d}".encode() for i in range(100)]
    _produce(kafka_broker.bootstrap, topic, sent)
    assert _consume(kafka_broker.bootstrap, topic, len(sent)) == sent


def test_status_reports_the_session_broker(kafka_broker: BrokerState) -> None:
    assert broker.answers(kafka_broker.bootstrap)
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
        up = runner.invoke(kafka, ["up", "--state-dir", str(state_dir)])
        assert up.exit_code == 0, up.output
        bootstrap = up.stdout.strip().splitlines()[-1]
        assert bootstrap.startswith("127.0.0.1:")
        assert broker.answers(bootstrap)

        status = runner.invoke(kafka, ["status", "--state-dir", str(state_dir)])
        assert status.exit_code == 0, status.output
        state = broker.status(state_dir)
        assert state is not None
        assert status.stdout.strip().splitlines()[-1] == bootstrap
        assert f"pid {state.pid}" in status.stdout

        # A second `up` finds the running broker rather than starting another.
        again = runner.invoke(kafka, ["up", "--state-dir", str(state_dir)])
        assert again.exit_code == 0, again.output
        assert again.stdout.strip().splitlines()[-1] == bootstrap
        assert broker.status(state_dir) == state

        topic = _create_topic(bootstrap)
        before = [f"before-{i}".encode() for i in range(20)]
        _produce(bootstrap, topic, before)

        restarted = broker.restart(state_dir)
        assert restarted.bootstrap == bootstrap, "same address, so clients can reconnect"
        assert restarted.pid != state.pid
        assert restarted.data_dir == state.data_dir
        after = [f"after-{i}".encode() for i in range(5)]
        _produce(bootstrap, topic, after)
        assert _consume(bootstrap, topic, len(before) + len(after)) == before + after

        down = runner.invoke(kafka, ["down", "--state-dir", str(state_dir)])
        assert down.exit_code == 0, down.output
        assert not broker.answers(bootstrap)
        gone = runner.invoke(kafka, ["status", "--state-dir", str(state_dir)])
        assert gone.exit_code == 1
        assert "no Kafka broker running" in gone.stderr
        assert runner.invoke(kafka, ["down", "--state-dir", str(state_dir)]).exit_code == 0
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
    assert str(raised.value) == "mvn not found on PATH: " + broker.MVN_HINT
    assert not (tmp_path / "cache" / "kafka" / broker.KAFKA_VERSION / ".complete").exists()
