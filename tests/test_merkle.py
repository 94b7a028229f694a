"""RFC 6962 Merkle tree: published test vectors plus a naive reference on random trees."""

from __future__ import annotations

import hashlib
import random

import pytest

from aigc_audit.producers.errors import MerkleError
from aigc_audit.producers.merkle import (
    EMPTY_ROOT,
    AppendOnlyTree,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# Test vectors from transparency-dev/merkle, proof/verify_test.go (`leaves`, `roots`,
# `inclusionProofs`), originally google/certificate-transparency's C++ merkle tree tests.
# Their inclusion vectors number leaves from 1; the indices below are 0-based.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


# --- an independent, deliberately naive reference: RFC 6962 §2.1 read literally ---


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return _sha(b"")
    if len(leaves) == 1:
        return _sha(b"\x00" + leaves[0])
    k = _split(len(leaves))
    return _sha(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_shape(m: int, n: int) -> list[bool]:
    """Whether each sibling on leaf m's path (bottom-up) sits on the right, in a tree of n."""
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_shape(m, k), True]
    return [*ref_shape(m - k, n - k), False]


# --- published vectors ---


def test_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


def test_hash_prefixes() -> None:
    assert leaf_hash(b"ab") == _sha(b"\x00ab")
    assert node_hash(b"l", b"r") == _sha(b"\x01lr")


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_rfc6962_vectors(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size - 1]
    hashes = [leaf_hash(leaf) for leaf in CT_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes).hex() == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_inclusion_proofs_match_vectors(index: int, size: int, proof: list[str]) -> None:
    hashes = [leaf_hash(leaf) for leaf in CT_LEAVES[:size]]
    got = inclusion_proof(hashes, index)
    assert [h.hex() for h in got] == proof
    verify_inclusion(hashes[index], index, size, got, bytes.fromhex(CT_ROOTS[size - 1]))


# --- random trees against the reference ---


def _tampered(proof: list[bytes], root: bytes) -> list[list[bytes]]:
    """Corruptions in the manner of transparency-dev's corruptInclusionProof."""
    some = _sha(b"some other hash")
    out = [[*proof, some], [*proof, root], [some, *proof], [root, *proof]]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        out.append(flipped)
    if proof:
        out.append(proof[:-1])
    if len(proof) > 1:
        out.append([proof[0], some, *proof[1:]])
    return out


@pytest.mark.parametrize("size", range(1, 71))
def test_random_tree_matches_reference(size: int) -> None:
    rng = random.Random(size)
    leaves = [rng.randbytes(rng.randrange(0, 40)) for _ in range(size)]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    root = merkle_root(leaves)
    assert root == ref_mth(leaves)
    all_proofs = inclusion_proofs(hashes)
    for index in range(size):
        proof = inclusion_proof(hashes, index)
        assert proof == ref_path(index, leaves) == all_proofs[index]
        verify_inclusion(hashes[index], index, size, proof, root)

        with pytest.raises(MerkleError):
            verify_inclusion(leaf_hash(leaves[index] + b"x"), index, size, proof, root)
        for bad_index in {index - 1, index + 1, index ^ 2} - {index}:
            if bad_index >= 0:
                with pytest.raises(MerkleError):
                    verify_inclusion(hashes[index], bad_index, size, proof, root)
        for other_size in {size * 2, size // 2, size + 1, size - 1} - {size}:
            # A path only fixes the tree's shape along it: a size whose path for this index has
            # the same shape legitimately accepts it (the signed root pins the real size).
            if index < other_size and ref_shape(index, other_size) == ref_shape(index, size):
                verify_inclusion(hashes[index], index, other_size, proof, root)
            else:
                with pytest.raises(MerkleError):
                    verify_inclusion(hashes[index], index, other_size, proof, root)
        for bad_proof in _tampered(proof, root):
            with pytest.raises(MerkleError):
                verify_inclusion(hashes[index], index, size, bad_proof, root)
        with pytest.raises(MerkleError):
            verify_inclusion(hashes[index], index, size, proof, EMPTY_ROOT)


def test_verify_rejects_bad_arguments_with_clear_messages() -> None:
    hashes = [leaf_hash(leaf) for leaf in CT_LEAVES]
    root = root_from_leaf_hashes(hashes)
    proof = inclusion_proof(hashes, 3)
    with pytest.raises(MerkleError, match="outside a tree"):
        verify_inclusion(hashes[3], 8, 8, proof, root)
    with pytest.raises(MerkleError, match="outside a tree"):
        verify_inclusion(hashes[3], -1, 8, proof, root)
    with pytest.raises(MerkleError, match="outside a tree"):
        verify_inclusion(hashes[0], 0, 0, [], EMPTY_ROOT)
    with pytest.raises(MerkleError, match="too long"):
        verify_inclusion(hashes[3], 3, 8, [*proof, root], root)
    with pytest.raises(MerkleError, match="too short"):
        verify_inclusion(hashes[3], 3, 8, proof[:-1], root)
    with pytest.raises(MerkleError, match="leads to root"):
        verify_inclusion(hashes[2], 3, 8, proof, root)
    with pytest.raises(MerkleError, match="32"):
        verify_inclusion(b"short", 3, 8, proof, root)
    with pytest.raises(MerkleError, match="proof element 1"):
        verify_inclusion(hashes[3], 3, 8, [proof[0], b"", proof[2]], root)


def test_single_leaf_tree() -> None:
    h = leaf_hash(b"data")
    assert root_from_leaf_hashes([h]) == h
    assert inclusion_proof([h], 0) == []
    verify_inclusion(h, 0, 1, [], h)
    with pytest.raises(IndexError):
        inclusion_proof([h], 1)


def test_large_tree_is_fast_and_correct() -> None:
    # 10 000 leaves: iterative code has no recursion limit to hit.
    leaves = [i.to_bytes(4, "big") for i in range(10_000)]
    root = merkle_root(leaves)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    for index in (0, 4095, 4096, 8191, 9999):
        verify_inclusion(hashes[index], index, len(leaves), inclusion_proof(hashes, index), root)


# --- consistency proofs and the append-only tree ---

# transparency-dev/merkle, proof/verify_test.go `consistencyProofs`.
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_proofs_match_vectors(old: int, new: int, proof: list[str]) -> None:
    hashes = [leaf_hash(leaf) for leaf in CT_LEAVES[:new]]
    assert [p.hex() for p in consistency_proof(hashes, old)] == proof
    verify_consistency(
        old,
        new,
        bytes.fromhex(CT_ROOTS[old - 1]),
        bytes.fromhex(CT_ROOTS[new - 1]),
        [bytes.fromhex(p) for p in proof],
    )


def test_consistency_holds_for_every_pair_and_fails_for_a_rewritten_history() -> None:
    rng = random.Random(7)
    hashes = [leaf_hash(rng.randbytes(8)) for _ in range(33)]
    for new in range(1, 34):
        new_root = root_from_leaf_hashes(hashes[:new])
        for old in range(1, new + 1):
            old_root = root_from_leaf_hashes(hashes[:old])
            proof = consistency_proof(hashes[:new], old)
            verify_consistency(old, new, old_root, new_root, proof)
            if old == new:
                continue
            # The same sizes, but one early leaf rewritten: the proof must not carry it over.
            forged = [leaf_hash(b"forged"), *hashes[1:new]]
            with pytest.raises(MerkleError):
                verify_consistency(old, new, old_root, root_from_leaf_hashes(forged), proof)
            if proof:
                bent = [*proof[:-1], node_hash(proof[-1], proof[-1])]
                with pytest.raises(MerkleError):
                    verify_consistency(old, new, old_root, new_root, bent)


def test_consistency_refuses_impossible_sizes() -> None:
    with pytest.raises(MerkleError, match="no consistency proof"):
        verify_consistency(5, 3, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(MerkleError, match="different roots"):
        verify_consistency(3, 3, leaf_hash(b"a"), leaf_hash(b"b"), [])
    with pytest.raises(ValueError):
        consistency_proof([leaf_hash(b"a")], 2)


def test_append_only_tree_root_equals_the_full_tree_root_at_every_size() -> None:
    tree = AppendOnlyTree()
    assert tree.root() == EMPTY_ROOT
    hashes = [leaf_hash(bytes([i])) for i in range(70)]
    for i, h in enumerate(hashes):
        tree.append(h)
        assert tree.size == i + 1
        assert tree.root() == ref_mth([bytes([j]) for j in range(i + 1)])
