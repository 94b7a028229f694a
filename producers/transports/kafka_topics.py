"""Creates the platform's Kafka topics explicitly, with the settings an audit log needs.

Auto-creation would give the broker's defaults (7-day retention, one partition); an audit trail
must keep every batch until the provider decides otherwise, and the key registry must keep each
key's latest registration forever, which a compacted topic does.

On a secured cluster this is the set-up's work, done as the admin principal (a super user):
creating the topics and granting each role what it needs on them (:func:`grant_acls`), and
nothing more. ACLs name the topics and the group literally, never by prefix, so a principal
cannot reach a topic that merely shares the platform's prefix.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Final

from aigc_audit.producers.errors import BusError
from aigc_audit.producers.transports.kafka_security import PLAINTEXT, KafkaSecurity, preflight


class KafkaSetupError(BusError):
    """The topics cannot be created or checked."""


@dataclass(frozen=True)
class TopicPlan:
    events_topic: str
    keys_topic: str
    partitions: int = 6
    replication_factor: int = 1
    checkpoints_topic: str | None = None

    @property
    def topics(self) -> list[str]:
        return [self.events_topic, self.keys_topic] + (
            [self.checkpoints_topic] if self.checkpoints_topic else []
        )

    def configs(self) -> dict[str, dict[str, str]]:
        min_isr = str(max(1, min(2, self.replication_factor - 1)))
        configs = {
            self.events_topic: {
                "retention.ms": "-1",
                "retention.bytes": "-1",
                "min.insync.replicas": min_isr,
                "max.message.bytes": str(8 * 1024 * 1024),
            },
            self.keys_topic: {
                "cleanup.policy": "compact",
                "retention.ms": "-1",
                "min.insync.replicas": min_isr,
            },
        }
        if self.checkpoints_topic:
            # Every checkpoint is kept: an inspector proves consistency between any two.
            configs[self.checkpoints_topic] = {
                "retention.ms": "-1",
                "retention.bytes": "-1",
                "min.insync.replicas": min_isr,
            }
        return configs


@dataclass(frozen=True)
class Principals:
    """The usernames of a deployment's roles, as its ACLs name them (``User:<name>``)."""

    producer: str = "producer"
    key_publisher: str = "key-publisher"
    materialiser: str = "materialiser"


DEFAULT_PRINCIPALS: Final = Principals()


def admin_client(
    bootstrap: str, security: KafkaSecurity = PLAINTEXT, timeout_s: float = 30.0
) -> Any:
    """A kafka-python admin client, after a pre-flight check that turns bad credentials or TLS
    into one KafkaSetupError line (kafka-python would retry for 30 s and say nothing useful)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        preflight(bootstrap, security, timeout_s=min(timeout_s, 10.0))
        return KafkaAdminClient(
            **security.client_config(),
            bootstrap_servers=bootstrap.split(","),
            request_timeout_ms=int(timeout_s * 1000),
        )
    except BusError as exc:
        raise KafkaSetupError(str(exc)) from exc
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}") from exc


def ensure_topics(
    bootstrap: str,
    plan: TopicPlan,
    timeout_s: float = 30.0,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create the events and keys topics if missing; existing topics are left as they are.
    On a secured cluster ``security`` must be the admin principal's."""
    from kafka.admin import NewTopic
    from kafka.errors import AuthorizationError, KafkaError, TopicAlreadyExistsError

    admin = admin_client(bootstrap, security, timeout_s)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name,
                num_partitions=plan.partitions if name == plan.events_topic else 1,
                replication_factor=plan.replication_factor,
                topic_configs=config,
            )
            for name, config in plan.configs().items()
            if name not in existing
        ]
        for topic in wanted:
            # Another process may have made it first.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([topic], timeout_ms=int(timeout_s * 1000))
        _wait_for_leaders(admin, plan.topics, timeout_s)
    except AuthorizationError as exc:
        raise KafkaSetupError(
            f"{security.principal} may not create or describe the topics on {bootstrap} "
            f"({type(exc).__name__}): the set-up runs as the admin principal"
        ) from exc
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot create topics on {bootstrap}: {exc}") from exc
    finally:
        admin.close()


def plan_acls(plan: TopicPlan, group: str, principals: Principals) -> list[Any]:
    """The ACLs of one deployment: each role gets exactly what its process does.

    - producer: WRITE the events topic (WRITE implies DESCRIBE; since Kafka 3.0 a WRITE on any
      topic also lets an idempotent producer get its producer id, so no cluster-wide
      IDEMPOTENT_WRITE is granted).
    - key publisher: WRITE the keys topic. It holds the root key and registers every producer
      key and the platform's own (checkpoint and export) keys; nobody else writes there.
    - materialiser: READ the events topic in its consumer group (READ on the group), READ the
      keys topic (outside any group), WRITE the checkpoints topic it signs.
    """
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ResourcePattern,
        ResourceType,
    )

    def allow(who: str, operation: Any, kind: Any, name: str) -> Any:
        return ACL(
            principal=f"User:{who}",
            host="*",
            operation=operation,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(kind, name),  # LITERAL
        )

    topic, read, write = ResourceType.TOPIC, ACLOperation.READ, ACLOperation.WRITE
    acls = [
        allow(principals.producer, write, topic, plan.events_topic),
        allow(principals.key_publisher, write, topic, plan.keys_topic),
        allow(principals.materialiser, read, topic, plan.events_topic),
        allow(principals.materialiser, read, topic, plan.keys_topic),
        allow(principals.materialiser, read, ResourceType.GROUP, group),
    ]
    if plan.checkpoints_topic:
        acls.append(allow(principals.materialiser, write, topic, plan.checkpoints_topic))
    return acls


def grant_acls(
    bootstrap: str,
    plan: TopicPlan,
    group: str,
    principals: Principals = DEFAULT_PRINCIPALS,
    security: KafkaSecurity = PLAINTEXT,
    timeout_s: float = 30.0,
) -> None:
    """Create the ACLs of :func:`plan_acls` as ``security`` (the admin principal); an ACL that
    exists already is left as it is, so this may run at every set-up."""
    from kafka.errors import KafkaError

    acls = plan_acls(plan, group, principals)
    admin = admin_client(bootstrap, security, timeout_s)
    try:
        result = admin.create_acls(acls)
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot create ACLs on {bootstrap}: {exc}") from exc
    finally:
        admin.close()
    failed = result.get("failed") or []
    if failed:
        _, error = failed[0]
        raise KafkaSetupError(
            f"{security.principal} could not create {len(failed)} ACLs on {bootstrap}: {error}"
        )


def delete_topics(
    bootstrap: str,
    topics: list[str],
    timeout_s: float = 30.0,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Delete ``topics`` if they exist and wait until the broker no longer lists them."""
    from kafka.errors import UnknownTopicOrPartitionError

    admin = admin_client(bootstrap, security, timeout_s)
    try:
        present = [t for t in topics if t in set(admin.list_topics())]
        if present:
            with contextlib.suppress(UnknownTopicOrPartitionError):
                admin.delete_topics(present, timeout_ms=int(timeout_s * 1000))
        deadline = time.monotonic() + timeout_s
        while set(present) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise KafkaSetupError(f"topics {present} still exist after {timeout_s:.0f}s")
            time.sleep(0.2)
    finally:
        admin.close()


def _wait_for_leaders(admin: Any, topics: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(topics)
        ready = all(
            t.get("error_code", 0) == 0
            and t.get("partitions")
            and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in t["partitions"])
            for t in described
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise KafkaSetupError(f"topics {topics} have no leader after {timeout_s:.0f}s")
        time.sleep(0.1)


def delete_consumer_group(bootstrap: str, group: str, security: KafkaSecurity = PLAINTEXT) -> None:
    """Forget ``group``'s committed positions (the group must have no live members)."""
    from kafka.errors import KafkaError

    admin = admin_client(bootstrap, security)
    try:
        admin.delete_groups([group])
    except KafkaError:
        pass  # no such group: nothing to forget
    finally:
        admin.close()
