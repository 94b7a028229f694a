"""A local broker made ready for the platform: its topics, and each role's ACLs on them."""

from __future__ import annotations

from aigc_audit.consumers.app.settings import Settings
from aigc_audit.infra.kafka.broker import BrokerState
from aigc_audit.infra.kafka.tools import InfraError
from aigc_audit.producers.errors import BusError
from aigc_audit.producers.transports.kafka_security import KafkaSecurity
from aigc_audit.producers.transports.kafka_topics import (
    Principals,
    TopicPlan,
    ensure_topics,
    grant_acls,
)


def set_up_platform(state: BrokerState, settings: Settings) -> None:
    """As the admin principal: the topics of ``settings`` and each role's ACLs on them."""
    creds = state.credentials()
    admin = KafkaSecurity(
        "SASL_SSL",
        "SCRAM-SHA-512",
        creds["admin"]["username"],
        creds["admin"]["password"],
        state.ca_file,
    )
    plan = TopicPlan(
        settings.events_topic,
        settings.keys_topic,
        settings.partitions or 6,
        settings.replication_factor,
        settings.checkpoints_topic,
    )
    principals = Principals(
        producer=creds["producer"]["username"],
        key_publisher=creds["key_publisher"]["username"],
        materialiser=creds["materialiser"]["username"],
    )
    try:
        ensure_topics(state.bootstrap, plan, security=admin)
        grant_acls(state.bootstrap, plan, settings.consumer_group, principals, admin)
    except BusError as exc:
        raise InfraError(f"the broker is up but its set-up failed: {exc}") from exc
