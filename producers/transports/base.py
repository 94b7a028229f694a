"""The bus interfaces every transport implements, and the message type they exchange.

The model is Kafka's, on purpose, so the embedded log and a Kafka cluster are interchangeable:

* A *topic* is split into numbered *partitions*; each partition is an append-only log whose
  *offsets* start at 0 and rise by exactly one per message, with no holes.
* A message with a key always lands in the same partition (a stable hash of the key), so one
  producer's messages keep their order.
* A consumer *group* owns one committed position per partition. A position is the **next**
  offset to read, never the last one read. Positions move only when the consumer commits them,
  which a consumer does after its store has accepted the messages; anything polled but not
  committed is delivered again after a restart (at-least-once).

Values and keys are opaque bytes: the bus never looks inside a signed batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: ``(topic, partition)``: the unit that offsets and committed positions belong to.
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One message as read back from the bus.

    ``offset`` is the message's position in ``(topic, partition)``; ``timestamp_us`` is the time
    the bus appended it (microseconds since the Unix epoch, UTC), not a time the producer chose.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_us: int


def positions_after(messages: Iterable[BusMessage]) -> dict[TopicPartition, int]:
    """Return the positions to commit once ``messages`` are safely stored.

    For every partition present, the value is one past the highest offset seen, which is what
    :meth:`BusReader.commit` expects (Kafka's "next offset to read").
    """
    positions: dict[TopicPartition, int] = {}
    for message in messages:
        tp = (message.topic, message.partition)
        nxt = message.offset + 1
        if positions.get(tp, -1) < nxt:
            positions[tp] = nxt
    return positions


@runtime_checkable
class BusWriter(Protocol):
    """Appends messages to topics. Implementations are safe to share between threads.

    A writer may also implement the optional :meth:`AvailabilityCheck.check_available`; it is
    not part of this protocol so that writers without it (and test doubles) still satisfy it.
    """

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Append one message.

        When this returns, the message is durable (it survives a crash of this process, and for
        the embedded log a power loss); when it raises, the message was not appended.
        Raises :class:`~producers.errors.BusUnavailableError` when the bus cannot be reached
        (the caller may spool and retry) and :class:`~producers.errors.BusError` when the bus
        refuses the message itself (for example, it is too large).
        """
        ...

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Append ``(key, value)`` pairs in one transaction: all of them or none.

        Items that share a partition keep their order in ``items``. Durability and errors are
        as for :meth:`publish`. An empty ``items`` is a no-op.
        """
        ...

    def close(self) -> None:
        """Release resources. Idempotent; publishing afterwards raises BusError."""
        ...


@runtime_checkable
class AvailabilityCheck(Protocol):
    """The optional extra of a :class:`BusWriter` that can tell cheaply whether the bus is up.

    A fail-closed client calls it (at most every half second, caching the answer) before it
    accepts an event, and the spool drainer calls it before trying the bus again. It must be
    cheap and bounded (a connection check, not a publish): it may run on the service's thread.
    """

    def check_available(self) -> None:
        """Return if the bus can probably take a message now; raise
        :class:`~producers.errors.BusUnavailableError` saying why when it cannot.

        A pass is a hint, not a promise: a publish may still fail, and callers treat that
        failure as the newer observation.
        """
        ...


def availability_check(writer: object) -> Callable[[], None] | None:
    """Return ``writer.check_available`` when the writer implements it, else None."""
    check = getattr(writer, "check_available", None)
    return check if callable(check) else None


@runtime_checkable
class BusReader(Protocol):
    """Reads the partitions of a fixed set of topics on behalf of one consumer group."""

    def poll(self, max_messages: int = 500, timeout_s: float = 0.0) -> list[BusMessage]:
        """Return up to ``max_messages`` messages after this reader's current position.

        Messages come in offset order within each partition (no order is promised across
        partitions), and the in-memory position moves past them; the committed position does
        not move. Waits up to ``timeout_s`` for something new and returns ``[]`` if nothing
        arrived.
        """
        ...

    def commit(self, positions: Mapping[TopicPartition, int] | None = None) -> None:
        """Durably record the group's positions: each value is the NEXT offset to read.

        ``None`` commits this reader's current in-memory positions (everything polled so far).
        Committing does not move the reader's in-memory position.
        """
        ...

    def committed(self, topic: str, partition: int) -> int | None:
        """Return the group's committed next offset for a partition, or None if never committed."""
        ...

    def seek_to_beginning(self) -> None:
        """Move the in-memory position of every subscribed partition to its first offset."""
        ...

    def end_offsets(self) -> dict[TopicPartition, int]:
        """Return, per subscribed partition, the offset the next appended message would get."""
        ...

    def close(self) -> None:
        """Release resources without committing anything. Idempotent."""
        ...
