"""Reads batches and key registrations from Kafka for the materialiser (kafka-python).

The events topic is read in a consumer group: partitions are shared among the group's
materialisers and positions are committed by hand, only after the store insert. The keys topic is
read whole by every materialiser, outside any group, as a compacted registry.

On a secured cluster both read as the materialiser's principal (``security``), which the ACLs
let read these two topics and join this one group. A principal the broker refuses, or one it
does not let read a topic or join the group, is a one-line KafkaSourceError, not a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from aigc_audit.producers.errors import BusError
from aigc_audit.producers.transports.base import BusMessage, TopicPartition
from aigc_audit.producers.transports.kafka_security import PLAINTEXT, KafkaSecurity, preflight

T = TypeVar("T")

log = logging.getLogger(__name__)


class KafkaSourceError(BusError):
    """The materialiser cannot read from Kafka."""


def _consumer(bootstrap: str, security: KafkaSecurity, **config: Any) -> Any:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        # kafka-python would retry a refused login for 30 s and then say "Unable to bootstrap".
        preflight(bootstrap, security)
    except BusError as exc:
        raise KafkaSourceError(str(exc)) from exc
    try:
        return KafkaConsumer(
            **security.client_config(),
            bootstrap_servers=bootstrap.split(","),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            **config,
        )
    except KafkaError as exc:
        raise KafkaSourceError(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}") from exc


def _authorised(security: KafkaSecurity, what: str, call: Callable[[], T]) -> T:
    """``call()``, with the broker's refusal of this principal as one KafkaSourceError line."""
    from kafka.errors import AuthorizationError

    try:
        return call()
    except AuthorizationError as exc:
        raise KafkaSourceError(
            f"Kafka does not let {security.principal} {what}: {type(exc).__name__}"
        ) from exc


def _message(record: Any) -> BusMessage:
    return BusMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        timestamp_us=int(record.timestamp) * 1000,
    )


class KafkaGroupReader:
    """A BusReader over a consumer group; also tells the materialiser when its partitions change,
    because whatever it remembers about the chains in them may be stale by then."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        from kafka import ConsumerRebalanceListener

        self._security = security
        self._what = f"read {', '.join(topics)} in group {group}"
        self._consumer = _consumer(
            bootstrap,
            security,
            group_id=group,
            client_id=f"{group}-materialiser",
            max_poll_interval_ms=300_000,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )
        self._committed: dict[TopicPartition, int] = {}
        self._assignment_changed = False
        reader = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped: an Any base
            def on_partitions_revoked(self, revoked: Any) -> None:
                # Every settled poll was committed already; commit once more so a slow commit
                # cannot leave finished work to the next owner. Asynchronously: kafka-python
                # runs this on its IO thread, which must not block.
                reader._commit_known(list(revoked))

            def on_partitions_assigned(self, assigned: Any) -> None:
                reader._assignment_changed = True
                log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))

        self._consumer.subscribe(list(topics), listener=Listener())

    def poll(self, max_messages: int = 500, timeout_s: float = 0.0) -> list[BusMessage]:
        batches = _authorised(
            self._security,
            self._what,
            lambda: self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_messages),
        )
        messages = [_message(r) for records in batches.values() for r in records]
        messages.sort(key=lambda m: (m.topic, m.partition, m.offset))
        return messages

    idle_poll_timeout_s = 0.5
    """A poll with nothing to give waits this long: fetches from a broker take a round trip."""

    def caught_up(self) -> bool:
        """True when this member has partitions and has read each to its current end."""
        parts = self._consumer.assignment()
        if not parts:
            return False
        ends = self._consumer.end_offsets(list(parts))
        return all(self._consumer.position(tp) >= ends[tp] for tp in parts)

    def take_assignment_change(self) -> bool:
        """True once after each change of this reader's partitions."""
        changed, self._assignment_changed = self._assignment_changed, False
        return changed

    def commit(self, positions: Mapping[TopicPartition, int] | None = None) -> None:
        from kafka import OffsetAndMetadata
        from kafka import TopicPartition as KafkaTP

        if positions is None:
            _authorised(self._security, self._what, self._consumer.commit)
            return
        self._committed.update(positions)
        offsets = {KafkaTP(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in positions.items()}
        _authorised(self._security, self._what, lambda: self._consumer.commit(offsets))

    def _commit_known(self, revoked: Sequence[Any]) -> None:
        from kafka import OffsetAndMetadata

        mine = {
            tp: OffsetAndMetadata(self._committed[(tp.topic, tp.partition)], "", -1)
            for tp in revoked
            if (tp.topic, tp.partition) in self._committed
        }
        if mine:
            self._consumer.commit_async(mine)

    def committed(self, topic: str, partition: int) -> int | None:
        from kafka import TopicPartition as KafkaTP

        value = self._consumer.committed(KafkaTP(topic, partition))
        return None if value is None else int(value)

    def seek_to_beginning(self) -> None:
        self._consumer.seek_to_beginning()

    def end_offsets(self) -> dict[TopicPartition, int]:
        parts = self._consumer.assignment()
        ends = self._consumer.end_offsets(list(parts)) if parts else {}
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class KafkaRegistryReader:
    """Reads every partition of a compacted topic from its beginning, outside any group."""

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> None:
        from kafka import TopicPartition as KafkaTP

        self._security = security
        self._what = f"read {topic}"
        self._consumer = _consumer(bootstrap, security, group_id=None, client_id="aigc-audit-keys")
        # A topic this principal may not describe looks absent: a denied read shows in poll().
        parts = self._consumer.partitions_for_topic(topic) or {0}
        self._partitions = [KafkaTP(topic, p) for p in sorted(parts)]
        self._consumer.assign(self._partitions)

    def poll(self, max_messages: int = 500, timeout_s: float = 0.0) -> list[BusMessage]:
        # The materialiser asks before every poll of batches: answer at once when read to the end.
        ends = _authorised(
            self._security, self._what, lambda: self._consumer.end_offsets(self._partitions)
        )
        if all(self._consumer.position(tp) >= ends[tp] for tp in self._partitions):
            return []
        # A short wait: the first fetch after assignment needs a round trip even when data waits.
        batches = _authorised(
            self._security,
            self._what,
            lambda: self._consumer.poll(
                timeout_ms=max(int(timeout_s * 1000), 200), max_records=max_messages
            ),
        )
        messages = [_message(r) for records in batches.values() for r in records]
        messages.sort(key=lambda m: (m.partition, m.offset))
        return messages

    def commit(self, positions: Mapping[TopicPartition, int] | None = None) -> None:
        """Registry reads are never committed: every materialiser start reads it whole."""

    def committed(self, topic: str, partition: int) -> int | None:
        return None

    def seek_to_beginning(self) -> None:
        self._consumer.seek_to_beginning(*self._partitions)

    def end_offsets(self) -> dict[TopicPartition, int]:
        ends = self._consumer.end_offsets(self._partitions)
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}

    def close(self) -> None:
        self._consumer.close(autocommit=False)
