"""Checks 3 to 5: key registrations under the root, checkpoints under checkpoint keys, batch
heads under producer keys and inside signed checkpoints."""

from __future__ import annotations

from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify.inclusion import BatchState
from aigc_audit.consumers.bundle.verify.result import Problems, counted, short_id
from aigc_audit.consumers.bundle.verify.verifier_base import VerifierBase
from aigc_audit.consumers.checkpoints.note import open_checkpoint
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.merkle import leaf_hash, verify_consistency, verify_inclusion
from aigc_audit.producers.signing import (
    batch_digest,
    batch_signing_input,
    key_id_for,
    verify_registration,
    verify_signature,
)


class SignatureChecks(VerifierBase):
    # -- 3 ----------------------------------------------------------------------------------

    def _check_keys(self, problem: Problems) -> str:
        """3. keys: every key registration is signed by the root"""
        if self.registrations is None:
            problem(self.keys_error or f"{fmt.KEYS_FILE} is missing")
            self.found["keys"] = 0
            return ""
        self.found["keys"] = len(self.registrations)
        for reg in self.registrations:
            try:
                verify_registration(self.root, reg)
            except AuditError as exc:
                problem(
                    f"key {reg.key_id} ({reg.producer_id}) is not registered by the trusted "
                    f"root {short_id(self.root_id)}: {exc}"
                )
                continue
            held = self.trusted.get(reg.key_id)
            if held is None or reg.registered_at_us >= held.registered_at_us:
                self.trusted[reg.key_id] = reg
        producers = sorted({r.producer_id for r in self.trusted.values()})
        return (
            f"{counted(len(self.registrations), 'registration')} signed by root "
            f"{short_id(self.root_id)}"
            f" ({', '.join(producers)})"
        )

    # -- 4 ----------------------------------------------------------------------------------

    def _check_checkpoints(self, problem: Problems) -> str:
        """4. checkpoints: every checkpoint is signed by the checkpoint key and consistent"""
        self.found["checkpoints"] = 0
        try:
            data = self._read_json(fmt.CHECKPOINTS_FILE)
            if not isinstance(data, list):
                raise fmt.FormatError(f"{fmt.CHECKPOINTS_FILE} is not a JSON list")
            chains = [fmt.CheckpointChain.from_json(item) for item in data]
        except fmt.FormatError as exc:
            problem(str(exc))
            return ""
        keys = [
            r.public_key for r in self.trusted.values() if r.producer_id == fmt.CHECKPOINT_KEY_OWNER
        ]
        signers: set[str] = set()
        origins: set[str] = set()
        for chain in chains:
            self.found["checkpoints"] += len(chain.notes)
            if chain.origin in origins:
                problem(f"{chain.origin} is listed twice")
            origins.add(chain.origin)
            opened: list[tuple[int, bytes] | None] = []
            for note in chain.notes:
                try:
                    checkpoint, public_key = open_checkpoint(note, keys)
                except AuditError as exc:
                    text = str(exc)
                    if "signed by no trusted key" in text:
                        text += (
                            f"; only root-registered {fmt.CHECKPOINT_KEY_OWNER} keys are trusted"
                        )
                    elif not text.startswith("checkpoint "):  # malformed: name the chain
                        text = f"a checkpoint of {chain.origin}: {text}"
                    problem(text)
                    opened.append(None)
                    continue
                signers.add(key_id_for(public_key))
                if checkpoint.origin != chain.origin:
                    problem(f"{chain.origin}: a checkpoint of {checkpoint.origin} is listed")
                    opened.append(None)
                    continue
                size, root = checkpoint.tree_size, checkpoint.root_hash
                known = self.checkpoint_roots.get((chain.origin, size))
                if known is not None and known != root:
                    problem(f"{chain.origin}: two different roots for tree size {size}")
                self.checkpoint_roots[(chain.origin, size)] = root
                opened.append((size, root))
            if len(chain.consistency) != max(len(chain.notes) - 1, 0):
                problem(
                    f"{chain.origin}: {len(chain.consistency)} consistency proofs for "
                    f"{len(chain.notes)} checkpoints"
                )
            for i, proof in enumerate(chain.consistency[: max(len(opened) - 1, 0)]):
                old, new = opened[i], opened[i + 1]
                if old is None or new is None:
                    continue
                if (proof.old_size, proof.new_size) != (old[0], new[0]):
                    problem(
                        f"{chain.origin}: consistency proof {i} is from {proof.old_size} to "
                        f"{proof.new_size}, not {old[0]} to {new[0]}"
                    )
                    continue
                try:
                    verify_consistency(old[0], new[0], old[1], new[1], list(proof.proof))
                except AuditError as exc:
                    problem(
                        f"{chain.origin}: checkpoint {new[0]} is not consistent with {old[0]}: "
                        f"{exc}"
                    )
        names = ", ".join(short_id(k) for k in sorted(signers)) or "no key"
        return (
            f"{counted(self.found['checkpoints'], 'checkpoint')} of "
            f"{counted(len(chains), 'partition')}, signed by "
            f"checkpoint key {names}, each consistent with the one before"
        )

    # -- 5 ----------------------------------------------------------------------------------

    def _check_batches(self, problem: Problems) -> str:
        """5. batches: every batch is signed by its producer's key and in a checkpoint"""
        self.found["batches"] = 0
        try:
            data = self._read_json(fmt.BATCHES_FILE)
            if not isinstance(data, list):
                raise fmt.FormatError(f"{fmt.BATCHES_FILE} is not a JSON list")
        except fmt.FormatError as exc:
            problem(str(exc))
            return ""
        self.found["batches"] = len(data)
        batches: dict[tuple[str, int], fmt.BundleBatch] = {}
        producers: set[str] = set()
        for item in data:
            try:
                batch = fmt.BundleBatch.from_json(item)
            except fmt.FormatError as exc:
                problem(str(exc))
                continue
            key = (batch.producer_id, batch.sequence)
            reason = self._batch_problem(batch)
            if key in batches or key in self.batches:
                reason = reason or f"batch {batch.name} is listed twice"
            if reason:
                problem(reason)
            batches[key] = batch
            producers.add(batch.producer_id)
            self.batches[key] = BatchState(
                batch.name,
                batch.producer_id,
                batch.merkle_root,
                batch.event_count,
                reason is None,
                seen=bytearray(max(batch.event_count, 0)),
            )
        for (producer, seq), batch in sorted(batches.items()):
            before = batches.get((producer, seq - 1))
            if before is not None and batch.prev_digest != batch_digest(before.head):
                problem(f"batch {batch.name} does not link to {before.name} (its chain is broken)")
                self.batches[(producer, seq)].ok = False
        return (
            f"{counted(len(data), 'batch')} of {counted(len(producers), 'producer')}: "
            "signatures by registered keys "
            "valid at the time, each a leaf of a signed checkpoint"
        )

    def _batch_problem(self, batch: fmt.BundleBatch) -> str | None:
        name = batch.name
        if batch.producer_id.startswith(fmt.PLATFORM_KEY_PREFIX):
            return f"batch {name} claims a platform producer id"
        reg = self.trusted.get(batch.key_id)
        if reg is None:
            listed = any(r.key_id == batch.key_id for r in self.registrations or ())
            why = "whose registration the root did not sign" if listed else "not in keys.json"
            return f"batch {name} is signed by key {batch.key_id}, {why}"
        if reg.producer_id != batch.producer_id:
            return f"batch {name} is signed by key {reg.key_id} of {reg.producer_id}"
        valid, invalid_why = reg.is_valid_at(batch.created_at_us)
        if not valid:
            return (
                f"batch {name}: key {reg.key_id} was not valid at the batch's time ({invalid_why})"
            )
        try:
            signing_input = batch_signing_input(batch.head)
        except ValueError as exc:
            return f"batch {name} has a malformed head: {exc}"
        try:
            verify_signature(reg.public_key, signing_input, batch.signature)
        except AuditError:
            return f"batch {name}: the signature does not verify under key {reg.key_id}"
        origin, size = batch.checkpoint_origin, batch.checkpoint_size
        if not origin.endswith(f"/{batch.topic}/{batch.partition}"):
            return f"batch {name} of {batch.topic}/{batch.partition} cites checkpoint {origin}"
        root = self.checkpoint_roots.get((origin, size))
        if root is None:
            return f"batch {name} cites checkpoint {origin} @ {size}, not a verified checkpoint"
        try:
            verify_inclusion(
                leaf_hash(batch_digest(batch.head)),
                batch.tree_index,
                size,
                list(batch.checkpoint_proof),
                root,
            )
        except AuditError:
            return f"batch {name} is not in checkpoint {origin} @ {size} (inclusion proof fails)"
        return None
