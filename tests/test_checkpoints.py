"""Signed checkpoints: the C2SP note format, and the materialiser's per-partition trees."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from aigc_audit.consumers.checkpoints.note import (
    Checkpoint,
    CheckpointError,
    key_hash,
    open_checkpoint,
    sign_checkpoint,
)
from aigc_audit.consumers.keys.registry import CHECKPOINT_KEY_OWNER
from aigc_audit.producers.merkle import (
    consistency_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
)
from aigc_audit.producers.signing import SigningKey, verify_signature
from tests.harness import Harness, generation

# golang.org/x/mod/sumdb/note's documented example: verifier key and a signed note.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)


def test_key_hash_and_signature_match_the_go_note_package() -> None:
    name, hash_hex, encoded = GO_VKEY.split("+")
    raw = base64.b64decode(encoded)
    assert raw[0] == 1  # Ed25519
    public_key = raw[1:]
    assert key_hash(name, public_key).hex() == hash_hex
    sig = base64.b64decode(GO_SIGNATURE)
    assert sig[:4].hex() == hash_hex
    verify_signature(public_key, GO_NOTE_TEXT.encode(), sig[4:])


def _checkpoint(size: int = 3) -> Checkpoint:
    return Checkpoint("example.org/log/0", size, leaf_hash(b"root"), 17)


def test_signed_note_round_trips_and_names_its_signer() -> None:
    key = SigningKey.generate()
    note = sign_checkpoint(_checkpoint(), key, "example.org")
    lines = note.split("\n")
    assert lines[:4] == [
        "example.org/log/0",
        "3",
        base64.b64encode(leaf_hash(b"root")).decode(),
        "next-offset 17",
    ]
    assert lines[4] == "" and lines[5].startswith("\u2014 example.org ")
    checkpoint, signer = open_checkpoint(note, [SigningKey.generate().public_key, key.public_key])
    assert checkpoint == _checkpoint() and signer == key.public_key


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: n.replace("\n3\n", "\n4\n", 1), "does not verify"),
        (lambda n: n.replace("next-offset 17", "next-offset 18"), "does not verify"),
        (lambda n: n.replace("\n\n", "\n"), "no blank line"),
        (lambda n: n.replace("\n3\n", "\n03\n", 1), "bad tree size"),
        (lambda n: n.split("\n\n")[0] + "\n\n", "not signed"),
    ],
)
def test_a_changed_note_is_refused(change, message: str) -> None:  # type: ignore[no-untyped-def]
    key = SigningKey.generate()
    note = sign_checkpoint(_checkpoint(), key, "example.org")
    with pytest.raises(CheckpointError, match=message):
        open_checkpoint(change(note), [key.public_key])


def test_a_note_by_an_untrusted_key_is_refused() -> None:
    note = sign_checkpoint(_checkpoint(), SigningKey.generate(), "example.org")
    with pytest.raises(CheckpointError, match="no trusted key"):
        open_checkpoint(note, [SigningKey.generate().public_key])
    with pytest.raises(CheckpointError, match="spaces"):
        sign_checkpoint(_checkpoint(), SigningKey.generate(), "two words")


def _checkpoints(h: Harness) -> list[tuple[int, int, bytes, str]]:
    rows = h.query(
        "SELECT tree_size, next_offset, hex(root_hash), note FROM audit.checkpoints "
        "ORDER BY tree_size, next_offset"
    ).rows
    return [(int(s), int(o), bytes.fromhex(r), n) for s, o, r, n in rows]


def _leaves(h: Harness) -> list[bytes]:
    rows = h.query("SELECT hex(digest) FROM audit.batches ORDER BY offset").rows
    return [leaf_hash(bytes.fromhex(d)) for (d,) in rows]


@pytest.mark.chdb
def test_materialiser_checkpoints_its_partition_tree_consistently(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data")
    try:
        h.emit("chat-1", [generation(n) for n in range(30)], batch_size=10)
        h.publish(b"garbage")  # quarantined: no leaf, but its offset is accounted for
        h.materialise()
        h.emit("chat-1", [generation(n) for n in range(30, 55)], batch_size=10)
        h.restart_materialiser()  # a new process rebuilds the tree from the store
        h.materialise()

        checkpoints = _checkpoints(h)
        leaves = _leaves(h)
        assert len(leaves) == 6
        assert [(s, o) for s, o, _, _ in checkpoints] == [(3, 4), (6, 7)]
        signer = h.deployment.checkpoint_signer()
        for size, _, root, note in checkpoints:
            assert root == root_from_leaf_hashes(leaves[:size])
            checkpoint, _ = open_checkpoint(note, [signer.key.public_key])
            assert checkpoint.origin == "aigc-audit.local/aigc-audit.events/0"
            assert (checkpoint.tree_size, checkpoint.root_hash) == (size, root)
        (old, _, old_root, _), (new, _, new_root, _) = checkpoints
        verify_consistency(old, new, old_root, new_root, consistency_proof(leaves, old))

        # The same notes went to the bus, and the checkpoint key is registered under the root.
        reader = h.deployment.log.reader("test", ["aigc-audit.checkpoints"])
        published = [m.value.decode() for m in reader.poll(max_messages=100)]
        reader.close()
        assert published == [note for _, _, _, note in checkpoints]
        owners = h.query(
            "SELECT producer_id FROM audit.keys WHERE key_id = {k:String}", {"k": signer.key.key_id}
        ).rows
        assert owners == [(CHECKPOINT_KEY_OWNER,)]
    finally:
        h.close()


@pytest.mark.chdb
def test_a_batch_signed_with_the_checkpoint_key_is_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data")
    try:
        key = h.deployment.checkpoint_signer().key
        batch = h.seal(
            CHECKPOINT_KEY_OWNER, [h.encode(generation(1), CHECKPOINT_KEY_OWNER)], key=key
        )
        h.publish_batch(batch)
        h.materialise()
        assert h.quarantine_reasons() == [(0, "key_producer_mismatch")]
    finally:
        h.close()


@pytest.mark.chdb
def test_a_checkpoint_every_interval_while_the_materialiser_is_busy(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data", checkpoint_interval_s=0.001)
    try:
        h.emit("chat-1", [generation(n) for n in range(30)], batch_size=10)
        materialiser = h.materialiser()
        for _ in range(3):  # one batch per poll, never idle: only the interval triggers
            time.sleep(0.002)
            materialiser.run_once(max_messages=1)
        assert [(s, o) for s, o, _, _ in _checkpoints(h)] == [(1, 1), (2, 2), (3, 3)]
    finally:
        h.close()


@pytest.mark.chdb
def test_no_checkpoint_before_the_interval_unless_caught_up(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data", checkpoint_interval_s=3600)
    try:
        h.emit("chat-1", [generation(n) for n in range(30)], batch_size=10)
        materialiser = h.materialiser()
        for _ in range(3):
            materialiser.run_once(max_messages=1)
        # The first poll signs (nothing was signed yet); the next two wait for the interval.
        assert [s for s, _, _, _ in _checkpoints(h)] == [1]
        materialiser.run_until_idle()  # caught up: signs now, whatever the interval
        assert [s for s, _, _, _ in _checkpoints(h)] == [1, 3]
    finally:
        h.close()
