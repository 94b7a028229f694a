"""Creates the platform's Kafka topics explicitly, with the settings an audit log needs.

Auto-creation would give the broker's defaults (7-day retention, one partition); an audit trail
must keep every batch until the provider decides otherwise, and the key registry must keep each
key's latest registration forever, which a compacted topic does.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from consumers.errors import PlatformError


class KafkaSetupError(PlatformError):
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


def ensure_topics(bootstrap: str, plan: TopicPlan, timeout_s: float = 30.0) -> None:
    """Create the events and keys topics if missing; existing topics are left as they are."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","), request_timeout_ms=int(timeout_s * 1000)
        )
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}") from exc
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
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot create topics on {bootstrap}: {exc}") from exc
    finally:
        admin.close()


def delete_topics(bootstrap: str, topics: list[str], timeout_s: float = 30.0) -> None:
    """Delete ``topics`` if they exist and wait until the broker no longer lists them."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
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


def _wait_for_leaders(admin: object, topics: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(topics)  # type: ignore[attr-defined]
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


def delete_consumer_group(bootstrap: str, group: str) -> None:
    """Forget ``group``'s committed positions (the group must have no live members)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.delete_groups([group])
    except KafkaError:
        pass  # no such group: nothing to forget
    finally:
        admin.close()
