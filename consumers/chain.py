"""Each producer's hash chain as the materialiser has followed it.

A batch continues the chain when its sequence is the head's plus one and its ``prev_digest`` is
the head's digest. Anything else is a finding. An authentic batch that breaks the chain (a gap,
a fork) still becomes the new head, so one lost batch costs one quarantined batch rather than the
rest of the producer's stream; a replayed or late batch does not move the head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from producers.batch import SignedBatch
from producers.signing import GENESIS_DIGEST


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    digest: bytes


@dataclass(frozen=True)
class ChainVerdict:
    """``kind`` is None when the batch continues the chain; otherwise a finding's kind."""

    kind: str | None
    expected_sequence: int | None
    detail: str
    advances: bool

    @property
    def ok(self) -> bool:
        return self.kind is None


@dataclass(frozen=True)
class AcceptedBatch:
    digest: bytes
    topic: str
    partition: int
    offset: int


AcceptedLookup = Callable[[str, int], AcceptedBatch | None]
"""Finds the accepted batch of (producer id, sequence), if any."""


class ChainTracker:
    def __init__(self, heads: dict[str, ChainHead], accepted: AcceptedLookup) -> None:
        self._heads = dict(heads)
        self._accepted = accepted

    def head(self, producer_id: str) -> ChainHead | None:
        return self._heads.get(producer_id)

    def judge(self, batch: SignedBatch, topic: str, partition: int, offset: int) -> ChainVerdict:
        head = self._heads.get(batch.producer_id)
        seq, prev = batch.sequence, batch.prev_digest
        if head is None:
            if seq == 0 and prev == GENESIS_DIGEST:
                return ChainVerdict(None, 0, "", True)
            return ChainVerdict(
                "chain_gap",
                0,
                f"first batch seen from {batch.producer_id} has sequence {seq}",
                True,
            )
        expected = head.sequence + 1
        if seq == expected:
            if prev == head.digest:
                return ChainVerdict(None, expected, "", True)
            return ChainVerdict(
                "chain_fork",
                expected,
                f"sequence {seq} links to {prev.hex()[:16]}…, not to the accepted "
                f"sequence {head.sequence} ({head.digest.hex()[:16]}…)",
                True,
            )
        if seq > expected:
            return ChainVerdict(
                "chain_gap",
                expected,
                f"expected sequence {expected}, got {seq}: {seq - expected} batch(es) missing",
                True,
            )
        accepted = self._accepted(batch.producer_id, seq)
        if accepted is not None and accepted.digest == batch.digest:
            return ChainVerdict(
                "replay",
                expected,
                f"sequence {seq} was already accepted at {accepted.topic}/{accepted.partition}"
                f"/{accepted.offset}",
                False,
            )
        if accepted is not None:
            return ChainVerdict(
                "chain_fork",
                expected,
                f"a different batch with sequence {seq} was already accepted at "
                f"{accepted.topic}/{accepted.partition}/{accepted.offset}",
                False,
            )
        return ChainVerdict(
            "chain_reorder",
            expected,
            f"sequence {seq} arrived after sequence {head.sequence}",
            False,
        )

    def advance(self, batch: SignedBatch) -> None:
        self._heads[batch.producer_id] = ChainHead(batch.sequence, batch.digest)
