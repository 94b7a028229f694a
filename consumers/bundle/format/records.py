"""The export bundle's layout and records, shared by the writer and the offline verifier.

A bundle is a directory or a zip file holding the same paths::

    manifest.json            what the bundle is: format, selection, counts, every file's SHA-256
    manifest.sig             {"key_id", "signature"}: Ed25519 by the export key over manifest.json
    events/<family>.avro     Avro container of aigc.audit.export.ExportedEvent, batch by batch in
                             leaf order: the exact signed event bytes with their inclusion proof
                             in their batch's Merkle tree (the audit path's 32-byte hashes, leaf
                             to root, in one ``bytes``)
    events/<family>.jsonl    the same events decoded, one JSON object a line, same order
    batches.json             every batch holding an exported event: its signed head, signature,
                             bus position and inclusion proof in a signed partition checkpoint
    checkpoints.json         per partition: the signed checkpoints (C2SP notes) the batches use
                             and the latest one, with consistency proofs between them
    keys.json                the root-signed registrations of every key the bundle relies on
    schemas/*.avsc           the Avro schemas the events are written in
    report.html              optional: the report of the same selection

Binary values are lowercase hex in JSON; times are integer microseconds since the epoch (UTC)
where they are signed, ISO 8601 where they are only for reading.

This is format 2 (``aigc-audit-bundle/2`` in the manifest). Format 1 differed only in writing
each event's inclusion proof as an Avro ``array<bytes>``, which costs several times more to read
than the one ``bytes`` of format 2; the verifier reads both.

This module imports only the standard library, fastavro and ``producers``: the verifier runs
with nothing but the bundle and the root public key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro import parse_schema

# Re-exported: the writer and the verifier read the whole format through this module.
from aigc_audit.consumers.bundle.format.errors import FormatError as FormatError
from aigc_audit.consumers.bundle.format.event_json import EventRenderer as EventRenderer
from aigc_audit.consumers.bundle.format.event_json import event_json_line as event_json_line
from aigc_audit.consumers.bundle.format.event_json import json_default as json_default
from aigc_audit.producers.signing import BatchHead, KeyRegistration

FORMAT = "aigc-audit-bundle/2"
FORMATS = ("aigc-audit-bundle/1", FORMAT)
"""Formats the verifier reads. Version 1 wrote each inclusion proof as ``array<bytes>``;
version 2 writes it as one ``bytes`` (concatenated hashes), which reads several times faster."""

MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
BATCHES_FILE = "batches.json"
CHECKPOINTS_FILE = "checkpoints.json"
KEYS_FILE = "keys.json"
REPORT_FILE = "report.html"
EVENTS_DIR = "events"
SCHEMAS_DIR = "schemas"

PLATFORM_KEY_PREFIX = "aigc-audit."
"""Mirrors ``consumers.keys.registry``: producer ids the root gives the platform's own keys."""
CHECKPOINT_KEY_OWNER = f"{PLATFORM_KEY_PREFIX}checkpoint"
EXPORT_KEY_OWNER = f"{PLATFORM_KEY_PREFIX}export"

FAMILY_FILES: dict[str, str] = {
    "aigc.audit.Generation": "generations",
    "aigc.audit.ModerationAction": "moderation_actions",
    "aigc.audit.UserSanction": "user_sanctions",
    "aigc.audit.DataHandling": "data_handling",
}
"""Event family (Avro full name) → the stem of its files under ``events/`` (its table name)."""
FAMILY_BY_STEM: dict[str, str] = {stem: family for family, stem in FAMILY_FILES.items()}

EXPORTED_EVENT = "aigc.audit.export.ExportedEvent"


def _exported_event_schema(proof_type: Any, proof_doc: str) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "ExportedEvent",
        "namespace": "aigc.audit.export",
        "doc": "One exported audit event: its exact signed bytes and their place in their batch.",
        "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "family", "type": "string", "doc": "Avro full name of the event's schema."},
            {"name": "producer_id", "type": "string"},
            {"name": "batch_sequence", "type": "long"},
            {"name": "leaf_index", "type": "int", "doc": "The event's leaf in its batch's tree."},
            {
                "name": "event_bytes",
                "type": "bytes",
                "doc": "The single-object encoding exactly as the producer signed it.",
            },
            {"name": "inclusion_proof", "type": proof_type, "doc": proof_doc},
        ],
    }


EXPORTED_EVENT_SCHEMA: dict[str, Any] = _exported_event_schema(
    "bytes",
    "RFC 6962 audit path of leaf_index up to the batch's merkle_root: the sibling hashes, "
    "32 bytes each, leaf to root, concatenated.",
)
EXPORTED_EVENT_SCHEMA_V1: dict[str, Any] = _exported_event_schema(
    {"type": "array", "items": "bytes"},
    "RFC 6962 audit path of leaf_index up to the batch's merkle_root.",
)
"""How bundles of format 1 wrote their events (read, never written)."""
PARSED_EXPORTED_EVENT = parse_schema(EXPORTED_EVENT_SCHEMA, {})
PARSED_EXPORTED_EVENT_V1 = parse_schema(EXPORTED_EVENT_SCHEMA_V1, {})
AVRO_CODEC = "deflate"
AVRO_BLOCK_BYTES = 1 << 20
"""Records per Avro block: about this many bytes of them (before compression)."""


def avro_path(stem: str) -> str:
    return f"{EVENTS_DIR}/{stem}.avro"


def jsonl_path(stem: str) -> str:
    return f"{EVENTS_DIR}/{stem}.jsonl"


# --- times ---------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def iso_to_us(text: str) -> int:
    """Exact microseconds of an ISO 8601 time with an offset; FormatError otherwise."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise FormatError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise FormatError(f"time {text!r} has no UTC offset")
    return (value - _EPOCH) // _US


def json_bytes(value: Any) -> bytes:
    """A JSON document as bundles write it: UTF-8, indented, keys sorted, newline-terminated."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def json_list_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    """A JSON list with one compact record a line (big lists stay readable and diffable)."""
    lines = [
        json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(", ", ": ")) for r in records
    ]
    if not lines:
        return b"[]\n"
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode()


def _field(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, Mapping):
        raise FormatError(f"{what} is not a JSON object")
    if name not in obj:
        raise FormatError(f"{what} has no {name!r}")
    value = obj[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise FormatError(f"{what}: {name!r} is not a {kind}")
    if not isinstance(value, kind):
        raise FormatError(f"{what}: {name!r} is not a {getattr(kind, '__name__', kind)}")
    return value


def _hex(obj: Mapping[str, Any], name: str, what: str, size: int | None = None) -> bytes:
    text = _field(obj, name, str, what)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise FormatError(f"{what}: {name!r} is not hex") from None
    if size is not None and len(raw) != size:
        raise FormatError(f"{what}: {name!r} is {len(raw)} bytes, not {size}")
    return raw


def _opt_int(obj: Mapping[str, Any], name: str, what: str) -> int | None:
    if obj.get(name) is None:
        return None
    value: int = _field(obj, name, int, what)  # _field checked it is an int
    return value


# --- keys.json -----------------------------------------------------------------------------


def registration_to_json(reg: KeyRegistration) -> dict[str, Any]:
    return {
        "key_id": reg.key_id,
        "producer_id": reg.producer_id,
        "public_key": reg.public_key.hex(),
        "valid_from_us": reg.valid_from_us,
        "valid_until_us": reg.valid_until_us,
        "revoked_at_us": reg.revoked_at_us,
        "registered_at_us": reg.registered_at_us,
        "root_key_id": reg.root_key_id,
        "signature": reg.signature.hex(),
    }


def registration_from_json(obj: Any) -> KeyRegistration:
    what = "a key registration"
    if isinstance(obj, Mapping) and isinstance(obj.get("key_id"), str):
        what = f"registration of key {obj['key_id']}"
    return KeyRegistration(
        key_id=_field(obj, "key_id", str, what),
        producer_id=_field(obj, "producer_id", str, what),
        public_key=_hex(obj, "public_key", what, 32),
        valid_from_us=_field(obj, "valid_from_us", int, what),
        valid_until_us=_opt_int(obj, "valid_until_us", what),
        revoked_at_us=_opt_int(obj, "revoked_at_us", what),
        registered_at_us=_field(obj, "registered_at_us", int, what),
        root_key_id=_field(obj, "root_key_id", str, what),
        signature=_hex(obj, "signature", what),
    )


# --- batches.json --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BundleBatch:
    """One batch of ``batches.json``: the signed head, where it sat on the bus, and its proof
    of inclusion in a checkpoint of its partition's tree."""

    producer_id: str
    key_id: str
    sequence: int
    prev_digest: bytes
    created_at_us: int
    event_count: int
    merkle_root: bytes
    signature: bytes
    topic: str
    partition: int
    offset: int
    tree_index: int
    checkpoint_origin: str
    checkpoint_size: int
    checkpoint_proof: tuple[bytes, ...]

    @property
    def name(self) -> str:
        return f"{self.producer_id}#{self.sequence}"

    @property
    def head(self) -> BatchHead:
        return BatchHead(
            producer_id=self.producer_id,
            key_id=self.key_id,
            sequence=self.sequence,
            prev_digest=self.prev_digest,
            created_at_us=self.created_at_us,
            event_count=self.event_count,
            merkle_root=self.merkle_root,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "producer_id": self.producer_id,
            "key_id": self.key_id,
            "sequence": self.sequence,
            "prev_digest": self.prev_digest.hex(),
            "created_at_us": self.created_at_us,
            "event_count": self.event_count,
            "merkle_root": self.merkle_root.hex(),
            "signature": self.signature.hex(),
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "tree_index": self.tree_index,
            "checkpoint": {"origin": self.checkpoint_origin, "tree_size": self.checkpoint_size},
            "checkpoint_proof": [p.hex() for p in self.checkpoint_proof],
        }

    @classmethod
    def from_json(cls, obj: Any) -> BundleBatch:
        what = "a batch"
        if isinstance(obj, Mapping) and "producer_id" in obj and "sequence" in obj:
            what = f"batch {obj['producer_id']}#{obj['sequence']}"
        checkpoint = _field(obj, "checkpoint", Mapping, what)
        proof = _field(obj, "checkpoint_proof", list, what)
        if not all(isinstance(p, str) for p in proof):
            raise FormatError(f"{what}: checkpoint_proof is not a list of hex strings")
        try:
            proof_bytes = tuple(bytes.fromhex(p) for p in proof)
        except ValueError:
            raise FormatError(f"{what}: checkpoint_proof is not hex") from None
        return cls(
            producer_id=_field(obj, "producer_id", str, what),
            key_id=_field(obj, "key_id", str, what),
            sequence=_field(obj, "sequence", int, what),
            prev_digest=_hex(obj, "prev_digest", what, 32),
            created_at_us=_field(obj, "created_at_us", int, what),
            event_count=_field(obj, "event_count", int, what),
            merkle_root=_hex(obj, "merkle_root", what, 32),
            signature=_hex(obj, "signature", what),
            topic=_field(obj, "topic", str, what),
            partition=_field(obj, "partition", int, what),
            offset=_field(obj, "offset", int, what),
            tree_index=_field(obj, "tree_index", int, what),
            checkpoint_origin=_field(checkpoint, "origin", str, f"{what} checkpoint"),
            checkpoint_size=_field(checkpoint, "tree_size", int, f"{what} checkpoint"),
            checkpoint_proof=proof_bytes,
        )


# --- checkpoints.json ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class CheckpointChain:
    """One partition's checkpoints (signed notes, ascending by tree size) and the consistency
    proof between each consecutive pair."""

    origin: str
    notes: tuple[str, ...]
    consistency: tuple[ConsistencyProof, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "checkpoints": list(self.notes),
            "consistency": [
                {
                    "old_size": c.old_size,
                    "new_size": c.new_size,
                    "proof": [p.hex() for p in c.proof],
                }
                for c in self.consistency
            ],
        }

    @classmethod
    def from_json(cls, obj: Any) -> CheckpointChain:
        what = "a checkpoint chain"
        if isinstance(obj, Mapping) and isinstance(obj.get("origin"), str):
            what = f"checkpoints of {obj['origin']}"
        notes = _field(obj, "checkpoints", list, what)
        if not all(isinstance(n, str) for n in notes):
            raise FormatError(f"{what}: checkpoints is not a list of notes")
        proofs = []
        for item in _field(obj, "consistency", list, what):
            hexes = _field(item, "proof", list, f"{what} consistency proof")
            try:
                proof = tuple(bytes.fromhex(p) for p in hexes)
            except (TypeError, ValueError):
                raise FormatError(f"{what}: a consistency proof is not hex") from None
            proofs.append(
                ConsistencyProof(
                    _field(item, "old_size", int, f"{what} consistency proof"),
                    _field(item, "new_size", int, f"{what} consistency proof"),
                    proof,
                )
            )
        return cls(_field(obj, "origin", str, what), tuple(notes), tuple(proofs))


# --- manifest ------------------------------------------------------------------------------


def signature_bytes(key_id: str, signature: bytes) -> bytes:
    """The content of ``manifest.sig``."""
    return json_bytes({"key_id": key_id, "signature": signature.hex()})


def parse_signature(data: bytes) -> tuple[str, bytes]:
    """(key id, signature) of ``manifest.sig``; FormatError if it is not one."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # see parse_json
        raise FormatError(f"{MANIFEST_SIG} is not JSON") from None
    return _field(obj, "key_id", str, MANIFEST_SIG), _hex(obj, "signature", MANIFEST_SIG, 64)


def parse_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{name} is not UTF-8 JSON ({exc})") from None
    except RecursionError:  # json nests by recursion: "[" * 100_000 is a crash, not a value
        raise FormatError(f"{name} is not JSON a bundle holds (nested too deeply)") from None
