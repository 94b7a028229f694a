"""RFC 6962 Merkle tree hashing, inclusion proofs and their verification.

Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right); the tree over n
leaves splits at the largest power of two below n (RFC 6962 §2.1). The root of no leaves is
SHA-256(b""). Every hash is 32 bytes; proofs list sibling hashes from the leaf upwards.

Roots and proofs are computed bottom-up level by level: a level's last node without a sibling is
carried up unchanged, which yields exactly the RFC 6962 tree without recursion or slicing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aigc_audit.producers.errors import MerkleError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data), the RFC 6962 hash of one leaf."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the RFC 6962 hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the tree head over already-hashed leaves (SHA-256(b"") for none)."""
    if not hashes:
        return EMPTY_ROOT
    level: Sequence[bytes] = hashes
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the tree head over raw leaf data (each leaf is hashed with :func:`leaf_hash`)."""
    return root_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves])


def _levels(leaf_hashes: Sequence[bytes]) -> list[Sequence[bytes]]:
    levels: list[Sequence[bytes]] = [leaf_hashes]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    return levels


def _path(levels: list[Sequence[bytes]], index: int) -> list[bytes]:
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        # A node without a sibling was carried up: it contributes nothing at this level.
        if sibling < len(level):
            proof.append(level[sibling])
        index >>= 1
    return proof


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the RFC 6962 audit path of leaf ``index``; raises IndexError when out of range."""
    if not 0 <= index < len(leaf_hashes):
        raise IndexError(f"leaf index {index} is outside a tree of {len(leaf_hashes)} leaves")
    return _path(_levels(leaf_hashes), index)


def inclusion_proofs(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Return the audit path of every leaf, building the tree once (O(n log n) in all)."""
    levels = _levels(leaf_hashes)
    return [_path(levels, index) for index in range(len(leaf_hashes))]


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` leads from ``leaf_hash`` at ``index`` to ``root`` of ``tree_size``.

    Implements RFC 9162 §2.1.3.2; returns None on success and raises MerkleError saying why
    otherwise.
    """
    if not 0 <= index < tree_size:
        raise MerkleError(f"leaf index {index} is outside a tree of {tree_size} leaves")
    for name, value in (("leaf hash", leaf_hash), ("root", root)):
        if len(value) != HASH_SIZE:
            raise MerkleError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")
    fn, sn, r = index, tree_size - 1, leaf_hash
    for position, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise MerkleError(f"proof element {position} is {len(p)} bytes, not {HASH_SIZE}")
        if sn == 0:
            raise MerkleError(
                f"inclusion proof is too long: {len(proof)} hashes for leaf {index} "
                f"of a tree of {tree_size}"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip the levels where this node was carried up without a right sibling.
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleError(
            f"inclusion proof is too short: {len(proof)} hashes for leaf {index} "
            f"of a tree of {tree_size}"
        )
    if r != root:
        raise MerkleError(
            f"inclusion proof for leaf {index} of {tree_size} leads to root {r.hex()}, "
            f"not {root.hex()}"
        )


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [root_from_leaf_hashes(hashes)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), root_from_leaf_hashes(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), root_from_leaf_hashes(hashes[:k])]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the RFC 6962 §2.1.2 proof that the tree of the first ``old_size`` leaves is a
    prefix of the tree of all ``leaf_hashes``. Empty when the sizes are equal; raises
    ValueError when ``old_size`` is not between 1 and the number of leaves."""
    if not 0 < old_size <= len(leaf_hashes):
        raise ValueError(f"old size {old_size} is outside 1..{len(leaf_hashes)}")
    return _subproof(old_size, leaf_hashes, True)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``old_root`` of ``old_size`` leaves is a prefix of ``new_root`` of
    ``new_size`` leaves (RFC 9162 §2.1.4.2); raises MerkleError saying why otherwise."""
    if not 0 < old_size <= new_size:
        raise MerkleError(f"no consistency proof from size {old_size} to size {new_size}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise MerkleError(f"a consistency proof element is not {HASH_SIZE} bytes")
    if old_size == new_size:
        if proof:
            raise MerkleError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise MerkleError(f"two different roots for the same size {old_size}")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    if not path:
        raise MerkleError("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise MerkleError(f"consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleError(f"consistency proof from {old_size} to {new_size} is too short")
    if fr != old_root:
        raise MerkleError(f"consistency proof does not lead to the old root of size {old_size}")
    if sr != new_root:
        raise MerkleError(f"consistency proof does not lead to the new root of size {new_size}")


class AppendOnlyTree:
    """An RFC 6962 tree that grows one leaf at a time and gives its root in O(log n), keeping
    only the roots of its perfect subtrees (a log's compact range)."""

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []  # perfect subtrees' roots, largest first

    def append(self, leaf_hash: bytes) -> None:
        node = leaf_hash
        size = self.size
        # Each trailing 1 bit of the old size is a peak of equal height to merge with.
        while size & 1:
            node = node_hash(self._peaks.pop(), node)
            size >>= 1
        self._peaks.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node
