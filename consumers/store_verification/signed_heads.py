"""Steps 1 and 2: key registrations verify under the root; batch heads under their keys."""

from __future__ import annotations

from aigc_audit.consumers.keys.registry import PLATFORM_KEY_PREFIX
from aigc_audit.consumers.store_verification.ledger import (
    StoredBatch,
    VerifierBase,
    optional_micros,
)
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.signing import (
    BatchHead,
    KeyRegistration,
    batch_digest,
    batch_signing_input,
    verify_registration,
    verify_signature,
)


class SignedHeads(VerifierBase):
    # 1. keys ---------------------------------------------------------------------------------

    def _verify_keys(self) -> None:
        before = len(self.result.findings)
        rows = self._store.query(
            "SELECT key_id, producer_id, hex(public_key), toUnixTimestamp64Micro(valid_from), "
            "toUnixTimestamp64Micro(valid_until), toUnixTimestamp64Micro(revoked_at), "
            "toUnixTimestamp64Micro(registered_at), root_key_id, hex(signature) "
            f"FROM {self._db}.keys"
        ).rows
        for key_id, producer, pub, vf, vu, rv, reg_at, root_id, sig in rows:
            reg = KeyRegistration(
                key_id=key_id,
                producer_id=producer,
                public_key=bytes.fromhex(pub),
                valid_from_us=int(vf),
                valid_until_us=optional_micros(vu),
                revoked_at_us=optional_micros(rv),
                registered_at_us=int(reg_at),
                root_key_id=root_id,
                signature=bytes.fromhex(sig),
            )
            try:
                verify_registration(self._root, reg)
            except (AuditError, ValueError) as exc:
                self._find("keys", "altered", None, None, f"key {key_id} ({producer}): {exc}")
                continue
            held = self._keys.get(key_id)
            if held is None or reg.registered_at_us >= held.registered_at_us:
                self._keys[key_id] = reg
        self.result.counts["keys"] = len(rows)
        self._check("1. keys", before, f"{len(rows)} registrations verify under the root key")

    # 2. batches ------------------------------------------------------------------------------

    def _verify_batches(self) -> None:
        before = len(self.result.findings)
        rows = self._store.query(
            "SELECT DISTINCT producer_id, sequence, key_id, hex(prev_digest), hex(digest), "
            "toUnixTimestamp64Micro(created_at), event_count, hex(merkle_root), hex(signature), "
            f"topic, partition, offset FROM {self._db}.batches ORDER BY topic, partition, offset"
        ).rows
        for producer, seq, key_id, prev, dig, created, count, root, sig, topic, part, off in rows:
            head = BatchHead(
                producer_id=producer,
                key_id=key_id,
                sequence=int(seq),
                prev_digest=bytes.fromhex(prev),
                created_at_us=int(created),
                event_count=int(count),
                merkle_root=bytes.fromhex(root),
            )
            batch = StoredBatch(
                head, bytes.fromhex(sig), batch_digest(head), topic, int(part), int(off)
            )
            problem = self._batch_problem(batch, bytes.fromhex(dig))
            if problem:
                batch.proven = False
                self._find("batches", "altered", batch.where, None, f"{batch.name}: {problem}")
            key = (producer, int(seq))
            if key in self._batches:
                other = self._batches[key]
                self._find(
                    "batches",
                    "inserted",
                    batch.where,
                    None,
                    f"{batch.name} has two different rows (offsets {other.offset} and {off})",
                )
                other.proven = batch.proven = False
            self._batches[key] = batch
            self._by_position[(topic, int(part))].append(batch)
        self.result.counts["batches"] = len(rows)
        self._check("2. batches", before, f"{len(rows)} batch heads signed by registered keys")

    def _batch_problem(self, batch: StoredBatch, stored_digest: bytes) -> str | None:
        reg = self._keys.get(batch.head.key_id)
        if reg is None:
            return f"signed by key {batch.head.key_id}, which the root never registered"
        if reg.producer_id != batch.head.producer_id or reg.producer_id.startswith(
            PLATFORM_KEY_PREFIX
        ):
            return f"key {reg.key_id} belongs to {reg.producer_id}"
        valid, why = reg.is_valid_at(batch.head.created_at_us)
        if not valid:
            return f"key {reg.key_id} was not valid at the batch's time ({why})"
        try:
            verify_signature(reg.public_key, batch_signing_input(batch.head), batch.signature)
        except (AuditError, ValueError):
            return "the signature does not hold over the row's head"
        if stored_digest != batch.digest:
            return "the digest column is not the digest of the signed head"
        return None
