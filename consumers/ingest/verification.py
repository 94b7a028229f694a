"""Verifies one bus message as a signed batch, step by step, before anything reaches the store.

A message is accepted only when every step holds; the first step that fails names the reason
the message goes to quarantine. Steps, in the order they run:

1. the bytes are a single-object-encoded ``SignedBatch`` of a known schema and version;
2. its key is registered, belongs to the batch's producer, and was valid at the batch's time;
3. the Ed25519 signature over the signing input holds under that key;
4. the RFC 6962 Merkle root over the events equals the signed root;
5. the batch continues its producer's hash chain from the last accepted batch (else a chain
   finding: ``chain_gap``, ``chain_fork`` or ``replay``, see :mod:`consumers.ingest.chain`; a
   finding never moves the head);
6. every event decodes under a known event schema, holds only values its store columns can
   hold (a UUID, a time in the calendar, an integer within its column's type:
   :mod:`consumers.ingest.logical_values`; else ``malformed_event``), and names the batch's
   producer.
"""

from __future__ import annotations

from dataclasses import dataclass

from aigc_audit.consumers.ingest.chain import ChainTracker, ChainVerdict
from aigc_audit.consumers.ingest.logical_values import LogicalChecks
from aigc_audit.consumers.keys.keyring import Keyring
from aigc_audit.consumers.keys.registry import PLATFORM_KEY_PREFIX
from aigc_audit.consumers.store.rows import DecodedEvent
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.codec import MAGIC, SchemaCatalogue
from aigc_audit.producers.errors import AuditError, UnknownSchemaError
from aigc_audit.producers.events import FAMILY_SCHEMAS, Generation
from aigc_audit.producers.merkle import leaf_hash, root_from_leaf_hashes
from aigc_audit.producers.signing import batch_signing_input, verify_signature
from aigc_audit.producers.transports.base import BusMessage

REASONS = (
    "not_a_batch",
    "unknown_batch_schema",
    "malformed_batch",
    "unknown_key",
    "key_producer_mismatch",
    "key_revoked",
    "key_not_yet_valid",
    "key_expired",
    "bad_signature",
    "merkle_root_mismatch",
    "replay",
    "chain_gap",
    "chain_fork",
    "unknown_event_schema",
    "malformed_event",
    "event_producer_mismatch",
)
"""Every reason a batch can be quarantined for. ``chain_reorder`` is gone: since only accepted
batches move a chain's head, a late batch is the missing one (accepted) or a gap, fork or replay;
stores written before may still hold it."""


@dataclass(frozen=True)
class DecodedBatch:
    """A message already decoded as a batch, with the leaf hash of each of its events."""

    batch: SignedBatch
    leaves: list[bytes]


@dataclass(frozen=True)
class Verdict:
    """The outcome for one message: accepted (``reason`` None) or the reason it was refused."""

    batch: SignedBatch | None
    events: list[DecodedEvent]
    reason: str | None = None
    detail: str = ""
    chain: ChainVerdict | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


class BatchVerifier:
    def __init__(self, catalogue: SchemaCatalogue, keyring: Keyring, chain: ChainTracker) -> None:
        self._catalogue = catalogue
        self._keyring = keyring
        self._chain = chain
        self._event_schemas = frozenset(FAMILY_SCHEMAS)
        self._engine_fingerprint = catalogue.fingerprint(Generation.SCHEMA)
        self._logical = LogicalChecks(catalogue)

    def verify(
        self,
        message: BusMessage,
        *,
        engine_checked: bool = False,
        decoded: DecodedBatch | None = None,
    ) -> Verdict:
        """The verdict on one message. ``engine_checked``: the store's engine already decoded
        this message's current-schema generation events and found them sound and of the batch's
        producer (:mod:`consumers.ingest.engine_path`); step 6 then skips exactly those.
        ``decoded``: this very message as that check already decoded and hashed it; steps 1
        and 4 use it instead of doing the work again."""
        # 1. A well-formed SignedBatch.
        if message.value[: len(MAGIC)] != MAGIC:
            return Verdict(None, [], "not_a_batch", "no Avro single-object marker (C3 01)")
        try:
            batch = decoded.batch if decoded else SignedBatch.decode(message.value, self._catalogue)
        except UnknownSchemaError as exc:
            return Verdict(None, [], "unknown_batch_schema", str(exc))
        except (AuditError, ValueError, TypeError) as exc:
            return Verdict(None, [], "malformed_batch", str(exc))

        # 2. A registered key of this producer, valid when the batch was made.
        reg = self._keyring.get(batch.key_id)
        if reg is None:
            return Verdict(batch, [], "unknown_key", f"key {batch.key_id} is not registered")
        if reg.producer_id.startswith(PLATFORM_KEY_PREFIX):
            return Verdict(
                batch,
                [],
                "key_producer_mismatch",
                f"key {batch.key_id} is the platform's ({reg.producer_id}), not a producer's",
            )
        if reg.producer_id != batch.producer_id:
            return Verdict(
                batch,
                [],
                "key_producer_mismatch",
                f"key {batch.key_id} belongs to {reg.producer_id}, not {batch.producer_id}",
            )
        valid, why = reg.is_valid_at(batch.created_at_us)
        if not valid:
            return Verdict(batch, [], why or "key_invalid", f"key {batch.key_id} at batch time")

        # 3. The signature.
        try:
            verify_signature(reg.public_key, batch_signing_input(batch.head), batch.signature)
        except (AuditError, ValueError) as exc:
            return Verdict(batch, [], "bad_signature", str(exc))

        # 4. The events are the ones signed for.
        leaves = decoded.leaves if decoded else [leaf_hash(raw) for raw in batch.events]
        actual = root_from_leaf_hashes(leaves)
        if actual != batch.merkle_root:
            return Verdict(
                batch,
                [],
                "merkle_root_mismatch",
                f"events hash to {actual.hex()}, the signed root is {batch.merkle_root.hex()}",
            )

        # 5. The producer's chain.
        chain = self._chain.judge(batch, message.topic, message.partition, message.offset)

        # 6. Every event decodes, and fits the store (a value beyond its column would stop the
        # insert, or be stored wrapped). Done even for a chain finding, so that quarantine says
        # all.
        events: list[DecodedEvent] = []
        for index, raw in enumerate(batch.events):
            if engine_checked and raw[2:10] == self._engine_fingerprint:
                events.append(DecodedEvent(Generation.SCHEMA, raw[2:10], None, raw, leaves[index]))
                continue
            try:
                schema, record = self._catalogue.decode(raw, logical_types=False)
                if schema in self._event_schemas:
                    self._logical.check(schema, record)
            except UnknownSchemaError as exc:
                return Verdict(batch, [], "unknown_event_schema", f"event {index}: {exc}", chain)
            except (AuditError, ValueError, TypeError) as exc:
                return Verdict(batch, [], "malformed_event", f"event {index}: {exc}", chain)
            if schema not in self._event_schemas:
                return Verdict(
                    batch, [], "unknown_event_schema", f"event {index} is a {schema}", chain
                )
            if record["head"]["producer_id"] != batch.producer_id:
                return Verdict(
                    batch,
                    [],
                    "event_producer_mismatch",
                    f"event {index} names producer {record['head']['producer_id']}",
                    chain,
                )
            events.append(DecodedEvent(schema, raw[2:10], record, raw, leaves[index]))

        if not chain.ok:
            return Verdict(batch, events, chain.kind, chain.detail, chain)
        return Verdict(batch, events, None, "", chain)
