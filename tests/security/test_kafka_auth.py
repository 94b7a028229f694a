"""Attacks on the Kafka bus, against the session's secured broker (TLS, SASL/SCRAM, ACLs).

Each test is one thing a client must not get away with, or the one thing the materialiser must
still do: anyone who reaches the port used to be able to write batches and keys, read the trail,
and join the materialiser's group (and so steal its partitions).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from aigc_audit.infra.kafka import broker as infra_broker
from aigc_audit.infra.kafka.broker import BrokerState
from tests.harness import Harness, generation

pytestmark = [pytest.mark.kafka, pytest.mark.chdb]

# kafka-python retries a bootstrap that cannot authenticate until its timeout runs out: short
# for the clients that must be refused at the door, ample for the ones that get in (an
# authorisation refusal comes back at once either way).
REFUSED_MS = 2_500
ALLOWED_MS = 15_000
KEY_AND_MATERIALISER = {"key_publisher": "key-publisher", "materialiser": "materialiser"}


def _secured(state: BrokerState) -> bool:
    # A broker without credentials (the old plaintext one) lets every client be anyone: the
    # tests then run the attacks as plain clients, and fail because the attacks succeed.
    return bool(getattr(state, "credentials_file", ""))


def _login(state: BrokerState, role: str, password: str | None = None) -> dict[str, Any]:
    if not _secured(state):
        return {"bootstrap_servers": state.bootstrap}
    entry = state.credentials()[role]
    return {
        "bootstrap_servers": state.bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": state.sasl_mechanism,
        "sasl_plain_username": entry["username"],
        "sasl_plain_password": password if password is not None else entry["password"],
        "ssl_cafile": state.ca_file,
        "ssl_check_hostname": True,
    }


def _settings(state: BrokerState, credentials: Path | str, prefix: str) -> dict[str, Any]:
    plain = {
        "bus": "kafka",
        "bootstrap": state.bootstrap,
        "topic_prefix": prefix,
        "consumer_group": f"{prefix}-materialiser",
        "partitions": 2,
    }
    if not _secured(state):
        return plain
    return {
        **plain,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_ssl_cafile": state.ca_file,
        "kafka_credentials_file": str(credentials),
    }


def _roles_file(state: BrokerState, path: Path, *roles: str) -> Path:
    """A credentials file holding only ``roles``, as a real deployment hands a service."""
    every = state.credentials() if _secured(state) else {}
    chosen = {role: every[role] for role in roles if role in every}
    path.write_text(json.dumps(chosen), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def platform(kafka_broker: BrokerState, tmp_path: Path) -> Iterator[Harness]:
    """A deployment whose set-up (as admin) made its topics and ACLs, with one batch from
    ``chat-1`` on the events topic and its key registration on the keys topic."""
    prefix = f"auth-{uuid.uuid4().hex[:8]}"
    credentials = getattr(kafka_broker, "credentials_file", "")
    h = Harness(tmp_path / "data", **_settings(kafka_broker, credentials, prefix))
    h.emit("chat-1", [generation(n) for n in range(5)])
    yield h
    h.close()


def _produce(config: dict[str, Any], topic: str, timeout_ms: int = ALLOWED_MS) -> None:
    producer = KafkaProducer(
        **config, acks="all", max_block_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms
    )
    try:
        producer.send(topic, key=b"k", value=b"forged").get(timeout=timeout_ms / 1000)
    finally:
        producer.close(timeout=2)


def _read_one(config: dict[str, Any], topic: str, group: str | None = None) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        **config,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=ALLOWED_MS,
        bootstrap_timeout_ms=ALLOWED_MS,
    )
    try:
        return [next(iter(consumer))]
    finally:
        consumer.close()


def test_an_unauthenticated_client_is_refused(kafka_broker: BrokerState) -> None:
    # Plain TCP, and TLS without SASL: neither gets as far as listing the topics.
    for config in (
        {"bootstrap_servers": kafka_broker.bootstrap},
        {
            "bootstrap_servers": kafka_broker.bootstrap,
            "security_protocol": "SSL",
            "ssl_cafile": getattr(kafka_broker, "ca_file", None) or None,
        },
    ):
        with pytest.raises(KafkaError):
            admin = KafkaAdminClient(**config, bootstrap_timeout_ms=REFUSED_MS)
            try:
                admin.list_topics()
            finally:
                admin.close()


def test_a_wrong_password_is_refused_in_one_clear_line(
    kafka_broker: BrokerState,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(KafkaError):
        _produce(
            _login(kafka_broker, "producer", password="not-the-password"), "anything", REFUSED_MS
        )

    # The CLI: one line naming the principal and the cause, a non-zero exit, at once.
    from aigc_audit.consumers.cli.main import main

    wrong = tmp_path / "wrong.json"
    # Both roles a materialiser process takes (it registers the platform's keys on first use).
    roles = {r: {"username": n, "password": "x"} for r, n in KEY_AND_MATERIALISER.items()}
    wrong.write_text(json.dumps(roles))
    wrong.chmod(0o600)  # a wider file is refused for its mode, before any password is tried
    for name, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "BUS": "kafka",
        "BOOTSTRAP": kafka_broker.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SSL_CAFILE": getattr(kafka_broker, "ca_file", ""),
        "KAFKA_CREDENTIALS_FILE": str(wrong),
    }.items():
        monkeypatch.setenv(f"AIGC_AUDIT_{name}", value)
    began = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main(["consume"])
    assert exited.value.code != 0
    assert time.monotonic() - began < 15, "a refused login must not hang"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Authentication failed" in err
    assert any(f"refused {name} (SASL_SSL)" in err for name in KEY_AND_MATERIALISER.values())
    assert "Traceback" not in err

    # A missing CA file and an untrusted certificate are one line each as well.
    for cafile, says in ((str(tmp_path / "absent.pem"), "does not exist"), ("", "does not verify")):
        monkeypatch.setenv("AIGC_AUDIT_KAFKA_SSL_CAFILE", cafile)  # "": the system trust store
        with pytest.raises(SystemExit) as exited:
            main(["consume"])
        assert exited.value.code != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err, err


def test_the_producer_cannot_write_keys_nor_read_events(
    kafka_broker: BrokerState, platform: Harness
) -> None:
    s, producer = platform.settings, _login(kafka_broker, "producer")
    _produce(producer, s.events_topic)  # its own job works
    with pytest.raises(TopicAuthorizationFailedError):
        _produce(producer, s.keys_topic)  # a key registration of its own making: refused
    with pytest.raises(TopicAuthorizationFailedError):
        _read_one(producer, s.events_topic)  # the trail itself: refused

    # Through the platform's writer the refusal is a KafkaSecurityError naming who and what.
    from aigc_audit.producers.transports.kafka_writer import KafkaLogWriter, KafkaSecurityError

    writer = KafkaLogWriter(
        platform.deployment.writer.config  # type: ignore[attr-defined]
    )
    try:
        with pytest.raises(KafkaSecurityError, match=f"not let producer write {s.keys_topic}"):
            writer.publish(s.keys_topic, b"k", b"forged")
    finally:
        writer.close()


def test_the_key_publisher_cannot_write_events(
    kafka_broker: BrokerState, platform: Harness
) -> None:
    s, publisher = platform.settings, _login(kafka_broker, "key_publisher")
    _produce(publisher, s.keys_topic)  # its own job works
    with pytest.raises(TopicAuthorizationFailedError):
        _produce(publisher, s.events_topic)


def test_a_stranger_cannot_join_the_materialisers_group(
    kafka_broker: BrokerState, platform: Harness
) -> None:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ResourcePattern,
        ResourceType,
        UserScramCredentialUpsertion,
    )

    s = platform.settings
    # A real principal that may read the events topic, but was never given the group.
    stranger = f"stranger-{uuid.uuid4().hex[:6]}"
    login = _login(kafka_broker, "producer")  # the old broker: anyone is a stranger
    if _secured(kafka_broker):
        admin = KafkaAdminClient(**_login(kafka_broker, "admin"))
        try:
            admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(stranger, kafka_broker.sasl_mechanism, "s3cret-pw")]
            )
            topic = ResourcePattern(ResourceType.TOPIC, s.events_topic)
            admin.create_acls(
                [ACL(f"User:{stranger}", "*", ACLOperation.READ, ACLPermissionType.ALLOW, topic)]
            )
        finally:
            admin.close()
        login.update(sasl_plain_username=stranger, sasl_plain_password="s3cret-pw")
    deadline = time.monotonic() + 20
    while True:  # a new SCRAM credential reaches the broker's cache through the metadata log
        try:
            assert _read_one(login, s.events_topic), "the stranger reads the topic outside a group"
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with pytest.raises(GroupAuthorizationFailedError):
        _read_one(login, s.events_topic, group=s.consumer_group)
    # Nor does the materialiser's own principal get another group: ACLs name its group only.
    with pytest.raises(GroupAuthorizationFailedError):
        _read_one(_login(kafka_broker, "materialiser"), s.events_topic, group=f"{stranger}-grp")


def test_a_plaintext_connection_to_the_tls_port_fails(kafka_broker: BrokerState) -> None:
    assert not infra_broker.answers(kafka_broker.bootstrap)  # a raw plaintext ApiVersions
    assert infra_broker.answers(kafka_broker.bootstrap, cafile=kafka_broker.ca_file or None)
    with pytest.raises(KafkaError):
        _produce({"bootstrap_servers": kafka_broker.bootstrap}, "anything", REFUSED_MS)


def test_the_materialiser_works_end_to_end_with_its_own_principal(
    kafka_broker: BrokerState, platform: Harness, tmp_path: Path
) -> None:
    # The platform's own keys are registered by the set-up (as the key publisher), so the
    # materialiser process needs its own principal only.
    platform.deployment.export_key()
    platform.deployment.checkpoint_signer()
    platform.emit("image-1", [generation(100 + n) for n in range(7)])
    platform.close()
    only_mine = _roles_file(kafka_broker, tmp_path / "materialiser.json", "materialiser")
    settings = _settings(kafka_broker, only_mine, platform.settings.topic_prefix)
    materialiser = Harness(platform.settings.data_dir, **settings)
    try:
        assert materialiser.settings.kafka_security("materialiser").username == "materialiser"
        stats = materialiser.materialise()
        assert stats.messages_quarantined == 0
        assert materialiser.count("generations") == 12
        assert materialiser.count("checkpoints") >= 1  # signed and published as materialiser
    finally:
        materialiser.close()
    # It committed its positions in its group, which only its principal may use.
    admin = KafkaAdminClient(**_login(kafka_broker, "admin"))
    try:
        group = platform.settings.consumer_group
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    assert sum(max(0, o.offset) for o in offsets.values()) == 2  # two batches
