"""Inclusion proofs checked many at a time: the events of one batch share most of their path.

Two ways, equally strict: ``included`` walks one proof up to the batch's root (remembering the
nodes it established, for the next proofs of the batch); when the bundle holds every event of a
batch, ``complete_batch_paths`` rebuilds the batch's whole tree from the events instead, and the
batch's proofs must be exactly the tree's audit paths (a proof that leads to the signed root is
the audit path of its leaf: the tree is fixed by the root, barring a SHA-256 collision).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

sha256 = hashlib.sha256


def proof_hashes(proof: bytes | Sequence[bytes]) -> list[bytes]:
    """The hashes of a proof as bundles write it: one ``bytes`` of 32-byte hashes (format 2),
    or a list of them (format 1). A length that is not a multiple of 32 leaves a short last
    piece, which ``included`` refuses."""
    if isinstance(proof, bytes | bytearray | memoryview):
        data = bytes(proof)
        return [data[i : i + 32] for i in range(0, len(data), 32)]
    return list(proof)


def included(
    leaf: bytes,
    index: int,
    size: int,
    proof: list[bytes],
    root: bytes,
    memo: dict[int, tuple[bytes, list[bytes]]],
) -> bool:
    """RFC 9162 §2.1.3.2 inclusion of ``leaf`` at ``index``, remembering every node a proof
    has established: a later proof that reaches an established node with the same remaining
    path is done there (so a whole batch costs about one hash per event, not log2 n)."""
    fn, sn, r, level = index, size - 1, leaf, 0
    trail: list[tuple[int, bytes, int]] = []
    for pos, p in enumerate(proof):
        if sn == 0 or len(p) != 32:
            return False
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
                level += 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
        level += 1
        key = fn << 6 | level
        known = memo.get(key)
        if known is not None and known[0] == r and known[1] == proof[pos + 1 :]:
            for k, value, rest in trail:
                memo[k] = (value, proof[rest:])
            return True
        trail.append((key, r, pos + 1))
    if sn != 0 or r != root or len(leaf) != 32:
        return False
    for k, value, rest in trail:
        memo[k] = (value, proof[rest:])
    return True


def leaf_hashes(events: Sequence[bytes]) -> list[bytes]:
    return [sha256(b"\x00" + data).digest() for data in events]


def complete_batch_paths(leaves: list[bytes], root: bytes) -> list[bytes] | None:
    """The audit path of every leaf (hashes concatenated, leaf to root) of the tree whose
    leaves are ``leaves``, or None when that tree's root is not ``root``."""
    n = len(leaves)
    if not n:
        return None
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        pairs = len(level) - 1
        nxt = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, pairs, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # the last node moves up alone
        levels.append(nxt)
        level = nxt
    if level[0] != root:
        return None
    if n == 1:
        return [b""]
    # Per level, the sibling each leaf takes from it (none when its node moves up alone).
    columns = []
    for depth, nodes in enumerate(levels[:-1]):
        m = len(nodes)
        siblings = [nodes[j ^ 1] for j in range(m - 1 if m % 2 else m)]
        if m % 2:
            siblings.append(b"")
        span = 1 << depth
        if span == 1:
            columns.append(siblings)
        else:
            columns.append([s for s in siblings for _ in range(span)][:n])
    return list(map(b"".join, zip(*columns, strict=True)))


def proofs_lead_to_root(
    leaves: Sequence[bytes],
    indexes: Sequence[int],
    proofs: Sequence[bytes],
    size: int,
    root: bytes,
) -> bool:
    """Whether each of these leaves (distinct indexes, in ascending order) leads with its proof
    (format 2: concatenated hashes) to ``root`` in a tree of ``size`` leaves, as ``included``
    would find each of them, walking all of them up the tree together, level by level.

    Where two paths meet, each must name the other's node as its sibling and both must go on
    with the same hashes, so the node is computed once; each node above the leaves costs one
    hash for the whole set. True means every single walk ends at ``root`` with its proof used
    up; False says only that the set is not all proven (``included`` then says which).
    """
    if size <= 0:
        return False
    hash_ = sha256
    # node -> (its hash, the proof that goes on from it, where in that proof)
    nodes: dict[int, tuple[bytes, bytes, int]] = {}
    last = -1
    for leaf, index, proof in zip(leaves, indexes, proofs, strict=True):
        if not last < index < size:
            return False
        nodes[index] = (leaf, proof, 0)
        last = index
    width = size
    while width > 1:
        above: dict[int, tuple[bytes, bytes, int]] = {}
        for j, (value, proof, at) in nodes.items():
            parent = j >> 1
            if parent in above:
                continue  # met its sibling, on the left, already
            sibling = j ^ 1
            if sibling >= width:
                above[parent] = (value, proof, at)  # the last node moves up alone
                continue
            end = at + 32
            other = nodes.get(sibling)
            if other is None:
                hashed = proof[at:end]
                if len(hashed) != 32:
                    return False
            else:
                hashed, other_proof, other_at = other
                if (
                    proof[at:end] != hashed
                    or other_proof[other_at : other_at + 32] != value
                    or proof[end:] != other_proof[other_at + 32 :]
                ):
                    return False
            if j & 1:
                node = hash_(b"\x01" + hashed + value).digest()
            else:
                node = hash_(b"\x01" + value + hashed).digest()
            above[parent] = (node, proof, end)
        nodes = above
        width = (width + 1) >> 1
    value, proof, at = nodes[0]
    return value == root and at == len(proof)


@dataclass
class BatchState:
    name: str
    producer_id: str
    merkle_root: bytes
    event_count: int
    ok: bool
    memo: dict[int, tuple[bytes, list[bytes]]] = field(default_factory=dict)
    seen: bytearray = field(default_factory=bytearray)
