"""Steps 5 and 6: signed checkpoints match the partition trees recomputed from the batch rows,
and every bus offset they account for is in ``batches`` or ``quarantine`` exactly once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from aigc_audit.consumers.checkpoints.note import CheckpointError, open_checkpoint
from aigc_audit.consumers.keys.registry import CHECKPOINT_KEY_OWNER
from aigc_audit.consumers.store_verification.ledger import VerifierBase
from aigc_audit.producers.merkle import leaf_hash, root_from_leaf_hashes


class CheckpointTrees(VerifierBase):
    # 5 and 6. checkpoints and bus positions --------------------------------------------------

    def _verify_checkpoints(self) -> None:
        before = len(self.result.findings)
        signers = [
            reg.public_key for reg in self._keys.values() if reg.producer_id == CHECKPOINT_KEY_OWNER
        ]
        rows = self._store.query(
            "SELECT topic, partition, tree_size, lower(hex(root_hash)), next_offset, origin, note "
            f"FROM {self._db}.checkpoints ORDER BY topic, partition, tree_size, next_offset"
        ).rows
        latest: dict[tuple[str, int], int] = {}
        for topic, part, size, root, next_offset, origin, note in rows:
            where = f"{topic}/{part}"
            try:
                checkpoint, _ = open_checkpoint(note, signers)
            except CheckpointError as exc:
                self._find("checkpoints", "forged", where, None, str(exc))
                continue
            row_says = (origin, int(size), root, int(next_offset))
            note_says = (
                checkpoint.origin,
                checkpoint.tree_size,
                checkpoint.root_hash.hex(),
                checkpoint.next_offset,
            )
            if row_says != note_says:
                self._find(
                    "checkpoints",
                    "altered",
                    where,
                    None,
                    f"the row at size {size} does not match its signed note",
                )
            batches = sorted(self._by_position.get((topic, int(part)), []), key=lambda b: b.offset)
            leaves = [leaf_hash(b.digest) for b in batches]
            if checkpoint.tree_size > len(leaves):
                self._find(
                    "batches",
                    "deleted",
                    where,
                    None,
                    f"the checkpoint at size {checkpoint.tree_size} counts "
                    f"{checkpoint.tree_size - len(leaves)} more batches than the store holds",
                )
            elif root_from_leaf_hashes(leaves[: checkpoint.tree_size]) != checkpoint.root_hash:
                self._find(
                    "batches",
                    "altered",
                    where,
                    None,
                    f"the partition's first {checkpoint.tree_size} batches no longer hash to "
                    "the signed checkpoint root (a batch row was altered, moved or inserted)",
                )
            key = (topic, int(part))
            latest[key] = max(latest.get(key, 0), checkpoint.next_offset)
        for key in sorted(set(self._by_position) - set(latest)):
            self._find(
                "checkpoints",
                "deleted",
                f"{key[0]}/{key[1]}",
                None,
                "the partition has batches but no checkpoint",
            )
        self._verify_offsets(latest)
        self.result.counts["checkpoints"] = len(rows)
        self._check(
            "5-6. checkpoints and bus positions",
            before,
            f"{len(rows)} checkpoints of {len(latest)} partition(s) signed and matching the "
            "recomputed trees; every settled bus offset accounted for",
        )

    def _verify_offsets(self, latest: Mapping[tuple[str, int], int]) -> None:
        quarantined: dict[tuple[str, int], list[int]] = defaultdict(list)
        for topic, part, offset in self._store.query(
            f"SELECT DISTINCT topic, partition, offset FROM {self._db}.quarantine"
        ).rows:
            quarantined[(topic, int(part))].append(int(offset))
        for key, next_offset in sorted(latest.items()):
            seen: dict[int, int] = defaultdict(int)
            for batch in self._by_position.get(key, []):
                seen[batch.offset] += 1
            for offset in quarantined.get(key, []):
                seen[offset] += 1
            where = f"{key[0]}/{key[1]}"
            missing = [o for o in range(next_offset) if o not in seen]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
                self._find(
                    "quarantine",
                    "deleted",
                    where,
                    None,
                    f"bus offsets settled by a checkpoint but in no table: {shown}",
                )
            twice = sorted(o for o, n in seen.items() if n > 1)
            if twice:
                self._find(
                    "quarantine",
                    "inserted",
                    where,
                    None,
                    f"bus offsets in both batches and quarantine: {twice[:10]}",
                )
