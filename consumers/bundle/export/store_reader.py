"""Reads what an export needs from the store, in chunks of whole batches: the selected
batches, their partitions' trees, checkpoints, key registrations and event rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aigc_audit.consumers.bundle.export.errors import ExportError
from aigc_audit.consumers.checkpoints.note import CheckpointError, parse_note
from aigc_audit.consumers.query.selection import Selection
from aigc_audit.consumers.store.base import Store
from aigc_audit.producers.merkle import leaf_hash, node_hash, root_from_leaf_hashes
from aigc_audit.producers.signing import BatchHead, KeyRegistration, batch_digest

CHUNK_EVENTS = 50_000
"""Rows (events of whole batches) read from the store per query."""
CHUNK_RANGES = 200
"""At most this many producer sequence ranges in one chunk query."""


# --- small Merkle helpers ------------------------------------------------------------------


class TreeLevels:
    """Every level of an RFC 6962 tree, built once; audit paths read from it."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self.levels: list[Sequence[bytes]] = [leaves]
        level = leaves
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def root(self) -> bytes:
        return root_from_leaf_hashes(self.levels[0]) if self.size == 0 else self.levels[-1][0]

    def path(self, index: int) -> list[bytes]:
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof


# --- reading the store ---------------------------------------------------------------------


def optional_micros(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass
class StoredBatch:
    producer_id: str
    sequence: int
    key_id: str
    prev_digest: bytes
    created_at_us: int
    event_count: int
    merkle_root: bytes
    signature: bytes
    topic: str
    partition: int
    offset: int
    selected: int = 0
    tree_index: int = -1
    checkpoint: StoredCheckpoint | None = None
    proof: list[bytes] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.producer_id}#{self.sequence}"

    @property
    def head(self) -> BatchHead:
        return BatchHead(
            producer_id=self.producer_id,
            key_id=self.key_id,
            sequence=self.sequence,
            prev_digest=self.prev_digest,
            created_at_us=self.created_at_us,
            event_count=self.event_count,
            merkle_root=self.merkle_root,
        )


@dataclass(frozen=True)
class StoredCheckpoint:
    origin: str
    tree_size: int
    next_offset: int
    root: bytes
    key_id: str
    note: str


class StoreReader:
    def __init__(self, store: Store, selection: Selection) -> None:
        self.store = store
        self.db = store.database
        self.cond, self.params = selection.event_condition(self.db)

    def selected_batches(self) -> list[StoredBatch]:
        db = self.db
        counts = self.store.query(
            f"SELECT producer_id, batch_sequence, count() FROM {db}.events WHERE {self.cond} "
            "GROUP BY producer_id, batch_sequence",
            self.params,
        ).rows
        rows = self.store.query(
            "SELECT producer_id, sequence, key_id, hex(prev_digest), "
            "toUnixTimestamp64Micro(created_at), event_count, hex(merkle_root), hex(signature), "
            f"topic, partition, offset FROM {db}.batches WHERE (producer_id, sequence) IN "
            f"(SELECT producer_id, batch_sequence FROM {db}.events WHERE {self.cond}) "
            "ORDER BY producer_id, sequence, offset LIMIT 1 BY producer_id, sequence",
            self.params,
        ).rows
        batches = {
            (r[0], int(r[1])): StoredBatch(
                producer_id=r[0],
                sequence=int(r[1]),
                key_id=r[2],
                prev_digest=bytes.fromhex(r[3]),
                created_at_us=int(r[4]),
                event_count=int(r[5]),
                merkle_root=bytes.fromhex(r[6]),
                signature=bytes.fromhex(r[7]),
                topic=r[8],
                partition=int(r[9]),
                offset=int(r[10]),
            )
            for r in rows
        }
        for producer, seq, n in counts:
            batch = batches.get((producer, int(seq)))
            if batch is None:
                raise ExportError(
                    f"events of batch {producer}#{seq} are in the store but the batch is not"
                )
            batch.selected = int(n)
        return sorted(batches.values(), key=lambda b: (b.producer_id, b.sequence))

    def partition_leaves(self, topic: str, partition: int) -> tuple[list[bytes], list[int]]:
        """Leaf hashes of a partition's tree (its accepted batches in bus order) and their
        offsets, each leaf recomputed from the signed head fields."""
        rows = self.store.query(
            "SELECT producer_id, key_id, sequence, hex(prev_digest), "
            "toUnixTimestamp64Micro(created_at), event_count, hex(merkle_root), offset "
            f"FROM {self.db}.batches WHERE topic = {{xt:String}} AND partition = {{xp:UInt32}} "
            "ORDER BY offset LIMIT 1 BY offset",
            {"xt": topic, "xp": partition},
        ).rows
        leaves = [
            leaf_hash(
                batch_digest(
                    BatchHead(
                        producer_id=r[0],
                        key_id=r[1],
                        sequence=int(r[2]),
                        prev_digest=bytes.fromhex(r[3]),
                        created_at_us=int(r[4]),
                        event_count=int(r[5]),
                        merkle_root=bytes.fromhex(r[6]),
                    )
                )
            )
            for r in rows
        ]
        return leaves, [int(r[7]) for r in rows]

    def checkpoints(self, topic: str, partition: int) -> list[StoredCheckpoint]:
        rows = self.store.query(
            "SELECT tree_size, next_offset, key_id, note "
            f"FROM {self.db}.checkpoints WHERE topic = {{xt:String}} AND partition = {{xp:UInt32}} "
            "ORDER BY tree_size, next_offset LIMIT 1 BY tree_size, next_offset",
            {"xt": topic, "xp": partition},
        ).rows
        out = []
        for size, next_offset, key_id, note in rows:
            try:
                checkpoint, _, _ = parse_note(note)
            except CheckpointError as exc:
                raise ExportError(
                    f"the stored checkpoint of {topic}/{partition} @ {size} is unreadable: {exc}"
                ) from None
            out.append(
                StoredCheckpoint(
                    checkpoint.origin,
                    int(size),
                    int(next_offset),
                    checkpoint.root_hash,
                    key_id,
                    note,
                )
            )
        return out

    def registrations(self, key_ids: Sequence[str]) -> dict[str, KeyRegistration]:
        if not key_ids:
            return {}
        rows = self.store.query(
            "SELECT key_id, producer_id, hex(public_key), toUnixTimestamp64Micro(valid_from), "
            "toUnixTimestamp64Micro(valid_until), toUnixTimestamp64Micro(revoked_at), "
            "toUnixTimestamp64Micro(registered_at), root_key_id, hex(signature) "
            f"FROM {self.db}.keys WHERE key_id IN {{xk:Array(String)}} "
            "ORDER BY key_id, registered_at DESC LIMIT 1 BY key_id",
            {"xk": sorted(set(key_ids))},
        ).rows
        return {
            r[0]: KeyRegistration(
                key_id=r[0],
                producer_id=r[1],
                public_key=bytes.fromhex(r[2]),
                valid_from_us=int(r[3]),
                valid_until_us=optional_micros(r[4]),
                revoked_at_us=optional_micros(r[5]),
                registered_at_us=int(r[6]),
                root_key_id=r[7],
                signature=bytes.fromhex(r[8]),
            )
            for r in rows
        }

    def event_rows(self, chunk: Sequence[StoredBatch]) -> list[tuple[Any, ...]]:
        """Every event row of the chunk's batches (ordered by batch and leaf), with the bytes
        (base64) of the selected ones."""
        ranges: dict[str, list[int]] = {}
        for batch in chunk:
            lo_hi = ranges.setdefault(batch.producer_id, [batch.sequence, batch.sequence])
            lo_hi[0] = min(lo_hi[0], batch.sequence)
            lo_hi[1] = max(lo_hi[1], batch.sequence)
        params = dict(self.params)
        terms = []
        for i, (producer, (lo, hi)) in enumerate(sorted(ranges.items())):
            terms.append(
                f"(producer_id = {{xb_p{i}:String}} AND batch_sequence BETWEEN "
                f"{{xb_lo{i}:UInt64}} AND {{xb_hi{i}:UInt64}})"
            )
            params.update({f"xb_p{i}": producer, f"xb_lo{i}": lo, f"xb_hi{i}": hi})
        in_range = " OR ".join(terms)
        db = self.db
        return self.store.query(
            "SELECT producer_id, batch_sequence, leaf_index, hex(leaf_hash), toString(event_id), "
            f"family, if({self.cond}, base64Encode(event_bytes), '') AS bytes64, ({self.cond}) "
            f"FROM {db}.events WHERE ({in_range}) AND (producer_id, batch_sequence) IN "
            f"(SELECT producer_id, batch_sequence FROM {db}.events "
            f"WHERE ({in_range}) AND ({self.cond})) "
            "ORDER BY producer_id, batch_sequence, leaf_index "
            "LIMIT 1 BY producer_id, batch_sequence, leaf_index",
            params,
        ).rows


def batch_chunks(batches: Sequence[StoredBatch]) -> Iterator[list[StoredBatch]]:
    chunk: list[StoredBatch] = []
    rows = 0
    producers: set[str] = set()
    for batch in batches:
        full = rows + batch.event_count > CHUNK_EVENTS
        if chunk and (
            full or (batch.producer_id not in producers and len(producers) >= CHUNK_RANGES)
        ):
            yield chunk
            chunk, rows, producers = [], 0, set()
        chunk.append(batch)
        rows += batch.event_count
        producers.add(batch.producer_id)
    if chunk:
        yield chunk
