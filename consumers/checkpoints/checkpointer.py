"""Keeps each bus partition's tree of accepted batches and signs its checkpoints.

The leaves of a partition's tree are its accepted batches in bus order, each leaf the batch
digest (``leaf_hash(batch_digest(head))``), which commits to the producer, key, sequence, chain
link, time, event count and Merkle root of the batch. The tree is rebuilt from the store's
``batches`` rows when a partition is first seen (at start-up, or when Kafka hands the
partition to this materialiser), so it is always the tree of what the store holds.

A checkpoint is written to the store first, then published on the checkpoints topic: the store
copy is what exports read; the bus copy lets anyone watch the log's growth, and survives a
store that is rebuilt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from aigc_audit.consumers.checkpoints.note import Checkpoint, sign_checkpoint
from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.rows import us_to_datetime
from aigc_audit.consumers.store.tables import CHECKPOINTS
from aigc_audit.producers.errors import BusError
from aigc_audit.producers.merkle import AppendOnlyTree, leaf_hash
from aigc_audit.producers.signing import SigningKey
from aigc_audit.producers.transports.base import BusWriter

log = logging.getLogger(__name__)


def partition_origin(log_origin: str, topic: str, partition: int) -> str:
    """The checkpoint origin of one partition's tree."""
    return f"{log_origin}/{topic}/{partition}"


@dataclass
class PartitionLog:
    tree: AppendOnlyTree = field(default_factory=AppendOnlyTree)
    next_offset: int = 0
    signed_size: int = -1
    signed_next_offset: int = -1
    signed_at: float | None = None
    """``time.monotonic()`` of the last checkpoint this process signed or loaded; None: none
    yet, so the next one is due at once (the monotonic clock starts near the machine's boot,
    so 0.0 would hold back the first checkpoint on a machine up for less than the interval)."""

    @property
    def grown(self) -> bool:
        return (self.tree.size, self.next_offset) != (self.signed_size, self.signed_next_offset)


@dataclass(frozen=True)
class CheckpointSigner:
    key: SigningKey
    key_name: str
    """The note key name; by convention the deployment's ``log_origin``."""


class Checkpointer:
    """One materialiser's partition trees and their signed checkpoints."""

    def __init__(
        self,
        store: Store,
        signer: CheckpointSigner,
        *,
        log_origin: str,
        interval_s: float,
        bus: BusWriter | None = None,
        topic: str | None = None,
    ) -> None:
        self._store = store
        self._db = store.database
        self._signer = signer
        self._log_origin = log_origin
        self._interval_s = interval_s
        self._bus = bus
        self._topic = topic
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self.written = 0

    def forget(self) -> None:
        """Drop every partition's state: Kafka moved partitions, another materialiser may have
        grown them meanwhile. They are rebuilt from the store when next seen."""
        self._logs.clear()

    def _log(self, topic: str, partition: int) -> PartitionLog:
        key = (topic, partition)
        if key not in self._logs:
            self._logs[key] = self._load(topic, partition)
        return self._logs[key]

    def _load(self, topic: str, partition: int) -> PartitionLog:
        params = {"t": topic, "p": partition}
        where = "topic = {t:String} AND partition = {p:UInt32}"
        state = PartitionLog()
        rows = self._store.query(
            f"SELECT hex(digest) FROM {self._db}.batches WHERE {where} "
            "ORDER BY offset LIMIT 1 BY offset",
            params,
        ).rows
        for (digest,) in rows:
            state.tree.append(leaf_hash(bytes.fromhex(digest)))
        settled = self._store.query(
            f"SELECT max(offset) + 1, count() FROM (SELECT offset FROM {self._db}.batches "
            f"WHERE {where} UNION ALL SELECT offset FROM {self._db}.quarantine WHERE {where})",
            params,
        ).rows
        state.next_offset = int(settled[0][0]) if settled and int(settled[0][1]) else 0
        last = self._store.query(
            f"SELECT tree_size, next_offset FROM {self._db}.checkpoints WHERE {where} "
            "ORDER BY tree_size DESC, next_offset DESC LIMIT 1",
            params,
        ).rows
        if last:
            state.signed_size, state.signed_next_offset = int(last[0][0]), int(last[0][1])
            state.signed_at = time.monotonic()
        return state

    def touch(self, topic: str, partition: int) -> None:
        """Load the partition's tree before this materialiser writes to it (a tree loaded after
        an insert would count that batch twice)."""
        self._log(topic, partition)

    def accepted(self, topic: str, partition: int, offset: int, digest: bytes) -> None:
        """A batch at this position is in the store: it becomes the tree's next leaf."""
        state = self._log(topic, partition)
        state.tree.append(leaf_hash(digest))
        state.next_offset = max(state.next_offset, offset + 1)

    def settled(self, topic: str, partition: int, offset: int) -> None:
        """A message at this position was quarantined: the tree is unchanged, the offsets
        it accounts for are not."""
        state = self._log(topic, partition)
        state.next_offset = max(state.next_offset, offset + 1)

    def checkpoint(self, *, force: bool = False) -> int:
        """Sign and write a checkpoint of every partition that grew since its last one, if
        ``interval_s`` has passed since that one (any time if ``force``); returns how many."""
        now = time.monotonic()
        count = 0
        for (topic, partition), state in sorted(self._logs.items()):
            due = force or state.signed_at is None or now - state.signed_at >= self._interval_s
            if not state.grown or not due:
                continue
            self._write(topic, partition, state)
            state.signed_size, state.signed_next_offset = state.tree.size, state.next_offset
            state.signed_at = now
            count += 1
        self.written += count
        return count

    def _write(self, topic: str, partition: int, state: PartitionLog) -> None:
        checkpoint = Checkpoint(
            origin=partition_origin(self._log_origin, topic, partition),
            tree_size=state.tree.size,
            root_hash=state.tree.root(),
            next_offset=state.next_offset,
        )
        note = sign_checkpoint(checkpoint, self._signer.key, self._signer.key_name)
        row = {
            "topic": topic,
            "partition": partition,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "next_offset": checkpoint.next_offset,
            "origin": checkpoint.origin,
            "key_id": self._signer.key.key_id,
            "signed_at": us_to_datetime(time.time_ns() // 1000),
            "note": note,
        }
        token = f"checkpoint/{topic}/{partition}/{checkpoint.tree_size}/{checkpoint.next_offset}"
        self._store.insert(CHECKPOINTS, [row], token=token)
        if self._bus is not None and self._topic is not None:
            try:
                self._bus.publish(self._topic, checkpoint.origin.encode(), note.encode())
            except BusError as exc:
                # The store copy is the one exports use; the next checkpoint is published again.
                log.warning("checkpoint %s not published: %s", checkpoint.origin, exc)
