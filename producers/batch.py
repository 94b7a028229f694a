"""Signed batches: the unit a producer puts on the bus (one Avro ``aigc.audit.SignedBatch``).

A batch carries its events as the exact bytes of their single-object encodings; those bytes are
the Merkle leaves, and the signature covers the head (see :mod:`producers.signing`), so one
signature check plus the root check covers every event.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.errors import DecodeError, MerkleError
from aigc_audit.producers.merkle import merkle_root
from aigc_audit.producers.record_encoder import LENGTH_PREFIXES, write_long
from aigc_audit.producers.signing import (
    BatchHead,
    SigningKey,
    batch_digest,
    batch_signing_input,
    verify_signature,
)

SIGNED_BATCH = "aigc.audit.SignedBatch"
FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class SignedBatch:
    """One producer batch: head fields, events, and the Ed25519 signature over the head."""

    producer_id: str
    key_id: str
    sequence: int
    prev_digest: bytes
    created_at_us: int
    events: tuple[bytes, ...]
    merkle_root: bytes
    signature: bytes
    format_version: int = FORMAT_VERSION

    @property
    def head(self) -> BatchHead:
        """The signed head; ``event_count`` is the number of events carried."""
        return BatchHead(
            producer_id=self.producer_id,
            key_id=self.key_id,
            sequence=self.sequence,
            prev_digest=self.prev_digest,
            created_at_us=self.created_at_us,
            event_count=len(self.events),
            merkle_root=self.merkle_root,
        )

    @property
    def digest(self) -> bytes:
        """``batch_digest(head)``: the ``prev_digest`` of this producer's next batch."""
        return batch_digest(self.head)

    def verify(self, public_key: bytes) -> None:
        """Check the events match the Merkle root (MerkleError) and the signature holds
        under ``public_key`` (SignatureError). Key validity and chaining are the caller's."""
        actual = merkle_root(self.events)
        if actual != self.merkle_root:
            raise MerkleError(
                f"batch {self.producer_id}#{self.sequence}: events hash to {actual.hex()}, "
                f"not the signed root {self.merkle_root.hex()}"
            )
        verify_signature(public_key, batch_signing_input(self.head), self.signature)

    def encode(self, catalogue: SchemaCatalogue | None = None) -> bytes:
        """Return the single-object encoding of this batch (one bus message)."""
        catalogue = catalogue or default_catalogue()
        tail = _bytes_after_events(catalogue)
        events = self.events
        if tail is not None and events and set(map(type, events)) == {bytes}:
            return self._encode_spliced(catalogue, tail)
        return catalogue.encode(SIGNED_BATCH, self._record(list(events)))

    def _encode_spliced(self, catalogue: SchemaCatalogue, tail: int) -> bytes:
        """fastavro writes the batch without its events; the events go in between.

        fastavro spends a third of a microsecond per event on the array; the bytes are the same
        (an array of n > 0 items is the count, each item's length and bytes, then a zero).
        """
        events = self.events
        shell = catalogue.encode(SIGNED_BATCH, self._record([]))
        cut = len(shell) - tail - 1  # the empty array's closing zero
        try:
            prefixes = list(map(LENGTH_PREFIXES.__getitem__, map(len, events)))
        except IndexError:  # an event of 8 KiB or more
            prefixes = [write_long(len(e)) for e in events]
        parts: list[bytes] = [b""] * (2 * len(events))
        parts[0::2] = prefixes
        parts[1::2] = events
        return b"".join([shell[:cut], write_long(len(events)), *parts, shell[cut:]])

    def _record(self, events: list[bytes]) -> dict[str, object]:
        return {
            "format_version": self.format_version,
            "producer_id": self.producer_id,
            "key_id": self.key_id,
            "sequence": self.sequence,
            "prev_digest": self.prev_digest,
            # fastavro writes an int as-is for timestamp-micros; no datetime round trip.
            "created_at": self.created_at_us,
            "events": events,
            "merkle_root": self.merkle_root,
            "signature": self.signature,
        }

    @classmethod
    def decode(cls, data: bytes, catalogue: SchemaCatalogue | None = None) -> SignedBatch:
        """Parse one bus message; raises DecodeError (or UnknownSchemaError) if it is not a
        well-formed version-1 SignedBatch whose head fits its signing input. Does not verify
        anything."""
        fullname, rec = (catalogue or default_catalogue()).decode(data, logical_types=False)
        if fullname != SIGNED_BATCH:
            raise DecodeError(f"expected a {SIGNED_BATCH}, got a {fullname}")
        if rec["format_version"] != FORMAT_VERSION:
            raise DecodeError(f"unsupported SignedBatch format_version {rec['format_version']}")
        batch = cls(
            producer_id=rec["producer_id"],
            key_id=rec["key_id"],
            sequence=rec["sequence"],
            prev_digest=rec["prev_digest"],
            created_at_us=rec["created_at"],
            events=tuple(rec["events"]),
            merkle_root=rec["merkle_root"],
            signature=rec["signature"],
            format_version=rec["format_version"],
        )
        # A head whose fields do not fit the signing input (a negative sequence, a key id
        # that is not ASCII, a producer id over 65535 bytes) is not a batch: refused here, no
        # caller ever holds a batch whose head, digest or signing input raises ValueError
        # (the materialiser named the digest of such a batch in quarantine, and stopped).
        try:
            batch_signing_input(batch.head)
        except ValueError as exc:
            raise DecodeError(f"SignedBatch head does not fit its signing input: {exc}") from None
        return batch


def seal_batch(
    events: Sequence[bytes],
    *,
    producer_id: str,
    key: SigningKey,
    sequence: int,
    prev_digest: bytes,
    created_at_us: int,
) -> SignedBatch:
    """Compute the Merkle root over ``events`` and sign the head with ``key``.

    Raises ValueError for an empty batch or a head field that does not fit its slot.
    """
    if not events:
        raise ValueError("a batch needs at least one event")
    frozen = tuple(events)
    if set(map(type, frozen)) != {bytes}:  # the batch owns immutable bytes, whatever came in
        frozen = tuple(bytes(e) for e in frozen)
    head = BatchHead(
        producer_id=producer_id,
        key_id=key.key_id,
        sequence=sequence,
        prev_digest=bytes(prev_digest),
        created_at_us=created_at_us,
        event_count=len(frozen),
        merkle_root=merkle_root(frozen),
    )
    return SignedBatch(
        producer_id=head.producer_id,
        key_id=head.key_id,
        sequence=head.sequence,
        prev_digest=head.prev_digest,
        created_at_us=head.created_at_us,
        events=frozen,
        merkle_root=head.merkle_root,
        signature=key.sign(batch_signing_input(head)),
    )


@functools.cache
def _bytes_after_events(catalogue: SchemaCatalogue) -> int | None:
    """How many bytes follow the ``events`` array in a SignedBatch of ``catalogue``, if that
    array can be spliced in: it is an array of bytes and every field after it is a fixed."""
    schema = catalogue.schema(SIGNED_BATCH)
    named = schema.get("__named_schemas", {})
    fields = schema["fields"]
    names = [field["name"] for field in fields]
    if "events" not in names:
        return None
    index = names.index("events")
    kind = fields[index]["type"]
    if not isinstance(kind, dict) or kind.get("type") != "array" or kind.get("items") != "bytes":
        return None
    size = 0
    for field in fields[index + 1 :]:
        kind = field["type"]
        kind = named.get(kind, kind) if isinstance(kind, str) else kind
        if not isinstance(kind, dict) or kind.get("type") != "fixed":
            return None
        size += int(kind["size"])
    return size
