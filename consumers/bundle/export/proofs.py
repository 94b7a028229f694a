"""The proofs that tie each exported batch to a signed checkpoint, and the checkpoints to each
other (consistency), each checked against the store's signed roots before it is written."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import pairwise

from aigc_audit.consumers.bundle.export.errors import ExportError
from aigc_audit.consumers.bundle.export.store_reader import (
    StoredBatch,
    StoredCheckpoint,
    StoreReader,
    TreeLevels,
)
from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.producers.merkle import consistency_proof


@dataclass
class PartitionProofs:
    topic: str
    partition: int
    leaves: list[bytes]
    checkpoints: list[StoredCheckpoint]
    """The checkpoints the bundle holds for this partition, ascending."""


def prove_batches(reader: StoreReader, batches: list[StoredBatch]) -> list[PartitionProofs]:
    """Give each batch its tree index, covering checkpoint and inclusion proof; return per
    partition the checkpoints the bundle holds (those used, and the latest)."""
    by_partition: dict[tuple[str, int], list[StoredBatch]] = {}
    for batch in batches:
        by_partition.setdefault((batch.topic, batch.partition), []).append(batch)
    out = []
    for (topic, partition), members in sorted(by_partition.items()):
        # Checkpoints first: every batch they cover was in ``batches`` before they were signed.
        checkpoints = reader.checkpoints(topic, partition)
        leaves, offsets = reader.partition_leaves(topic, partition)
        index_of = {offset: i for i, offset in enumerate(offsets)}
        sizes = [c.tree_size for c in checkpoints]
        chosen: dict[StoredCheckpoint, list[StoredBatch]] = {}
        for batch in members:
            batch.tree_index = index_of[batch.offset]
            at = bisect.bisect_right(sizes, batch.tree_index)
            if at == len(checkpoints):
                raise ExportError(
                    f"batch {batch.name} is not covered by a checkpoint yet; "
                    "run the materialiser until it catches up"
                )
            chosen.setdefault(checkpoints[at], []).append(batch)
        chosen.setdefault(checkpoints[-1], [])
        for checkpoint, covered in chosen.items():
            if checkpoint.tree_size > len(leaves):
                raise ExportError(
                    f"checkpoint {checkpoint.origin} @ {checkpoint.tree_size} covers more "
                    f"batches than the store holds of {topic}/{partition} ({len(leaves)})"
                )
            tree = TreeLevels(leaves[: checkpoint.tree_size])
            if tree.root != checkpoint.root:
                raise ExportError(
                    f"checkpoint {checkpoint.origin} @ {checkpoint.tree_size} does not match "
                    f"the store's batches of {topic}/{partition}"
                )
            for batch in covered:
                batch.checkpoint = checkpoint
                batch.proof = tree.path(batch.tree_index)
        held = sorted(chosen, key=lambda c: (c.tree_size, c.next_offset))
        out.append(PartitionProofs(topic, partition, leaves, held))
    return out


def checkpoint_chains(partitions: list[PartitionProofs]) -> list[fmt.CheckpointChain]:
    chains = []
    for part in partitions:
        notes = part.checkpoints
        proofs = [
            fmt.ConsistencyProof(
                old.tree_size,
                new.tree_size,
                tuple(consistency_proof(part.leaves[: new.tree_size], old.tree_size)),
            )
            for old, new in pairwise(notes)
        ]
        origin = notes[0].origin
        if any(c.origin != origin for c in notes):
            raise ExportError(f"the checkpoints of {part.topic}/{part.partition} name two origins")
        chains.append(fmt.CheckpointChain(origin, tuple(c.note for c in notes), tuple(proofs)))
    return sorted(chains, key=lambda c: c.origin)
