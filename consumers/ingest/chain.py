"""Each producer's hash chain as the materialiser has followed it.

A batch continues the chain when its sequence is the head's plus one and its ``prev_digest`` is
the head's digest (for a producer's first batch: sequence 0 and the genesis digest). Anything
else is a finding, and a finding never moves the head: the head is always the last *accepted*
batch, so the chain in ``batches`` is unbroken from sequence 0, and the heads a materialiser
reads back at start-up come from ``batches`` alone. The findings:

- ``chain_gap``: the sequence is beyond the head's plus one. The batches after a gap are judged
  against the same head, so they are gaps too until the missing batch arrives; it links to the
  head and is accepted. Its successors already in quarantine stay there as findings (nothing is
  re-admitted from quarantine: the materialiser's input is the bus, in bus order, so that a
  replay gives the same tables); a producer that re-sends them gets them accepted then.
- ``chain_fork``: the batch conflicts with the accepted chain: it claims the head's next
  sequence but links elsewhere, or a sequence already accepted with a different digest.
- ``replay``: the very batch accepted before, seen again.

A sequence below the head that ``batches`` does not hold cannot happen in a chain built by
these rules; in a store written before them (when a gap moved the head) it is a fork too, as it
cannot join the accepted chain. There is no "reorder" finding any more: a late batch is either
the missing one (accepted) or one of the above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.signing import GENESIS_DIGEST


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


def _short(digest: bytes) -> str:
    return f"{digest.hex()[:16]}…"


class ChainTracker:
    def __init__(self, heads: dict[str, ChainHead], accepted: AcceptedLookup) -> None:
        self._heads = dict(heads)
        self._accepted = accepted

    def head(self, producer_id: str) -> ChainHead | None:
        return self._heads.get(producer_id)

    def judge(self, batch: SignedBatch, topic: str, partition: int, offset: int) -> ChainVerdict:
        """The verdict on ``batch`` against the last accepted batch of its producer. Judging
        changes nothing: only :meth:`advance`, for a batch that was accepted, moves the head."""
        head = self._heads.get(batch.producer_id)
        seq, prev = batch.sequence, batch.prev_digest
        expected = 0 if head is None else head.sequence + 1
        links_to = GENESIS_DIGEST if head is None else head.digest
        head_name = (
            "the genesis digest"
            if head is None
            else f"the accepted sequence {head.sequence} ({_short(head.digest)})"
        )
        if seq == expected:
            if prev == links_to:
                return ChainVerdict(None, expected, "")
            return ChainVerdict(
                "chain_fork",
                expected,
                f"sequence {seq} links to {_short(prev)}, not to {head_name}",
            )
        if seq > expected:
            return ChainVerdict(
                "chain_gap",
                expected,
                f"expected sequence {expected} (after {head_name}), got {seq}: "
                f"{seq - expected} batch(es) missing",
            )
        accepted = self._accepted(batch.producer_id, seq)
        if accepted is not None and accepted.digest == batch.digest:
            return ChainVerdict(
                "replay",
                expected,
                f"sequence {seq} was already accepted at {accepted.topic}/{accepted.partition}"
                f"/{accepted.offset}",
            )
        if accepted is not None:
            return ChainVerdict(
                "chain_fork",
                expected,
                f"a different batch with sequence {seq} was already accepted at "
                f"{accepted.topic}/{accepted.partition}/{accepted.offset}",
            )
        return ChainVerdict(
            "chain_fork",
            expected,
            f"sequence {seq} is behind {head_name} and no batch {seq} was accepted: it cannot "
            "join the accepted chain",
        )

    def advance(self, batch: SignedBatch) -> None:
        """Make ``batch``, just accepted, the head of its producer's chain."""
        self._heads[batch.producer_id] = ChainHead(batch.sequence, batch.digest)
