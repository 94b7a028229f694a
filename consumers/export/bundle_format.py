"""The export bundle's layout and records, shared by the writer and the offline verifier.

A bundle is a directory or a zip file holding the same paths::

    manifest.json            what the bundle is: format, selection, counts, every file's SHA-256
    manifest.sig             {"key_id", "signature"}: Ed25519 by the export key over manifest.json
    events/<family>.avro     Avro container of aigc.audit.export.ExportedEvent: the exact signed
                             event bytes with their inclusion proof in their batch's Merkle tree
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

This module imports only the standard library, fastavro and ``producers``: the verifier runs
with nothing but the bundle and the root public key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro import parse_schema

from producers.codec import SchemaCatalogue
from producers.errors import DecodeError
from producers.signing import BatchHead, KeyRegistration

FORMAT = "aigc-audit-bundle/1"

MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
BATCHES_FILE = "batches.json"
CHECKPOINTS_FILE = "checkpoints.json"
KEYS_FILE = "keys.json"
REPORT_FILE = "report.html"
EVENTS_DIR = "events"
SCHEMAS_DIR = "schemas"

PLATFORM_KEY_PREFIX = "aigc-audit."
"""Mirrors ``consumers.key_registry``: producer ids the root gives the platform's own keys."""
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
EXPORTED_EVENT_SCHEMA: dict[str, Any] = {
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
        {
            "name": "inclusion_proof",
            "type": {"type": "array", "items": "bytes"},
            "doc": "RFC 6962 audit path of leaf_index up to the batch's merkle_root.",
        },
    ],
}
PARSED_EXPORTED_EVENT = parse_schema(EXPORTED_EVENT_SCHEMA, {})
AVRO_CODEC = "deflate"


class FormatError(ValueError):
    """A bundle record that is not what the format says (a missing field, bad hex)."""


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


# --- JSON helpers --------------------------------------------------------------------------


def json_default(value: Any) -> Any:
    """How decoded Avro values that JSON lacks are written: times ISO 8601, bytes hex."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_EVENT_ENCODER = json.JSONEncoder(
    default=json_default, ensure_ascii=False, separators=(",", ":"), check_circular=False
)


def event_json_line(event_id: str, record: Mapping[str, Any]) -> str:
    """The line of ``events/<family>.jsonl`` for one decoded event (no trailing newline):
    ``{"event_id": ..., <the record's fields in schema order>}``."""
    if "event_id" in record:
        raise FormatError("an event record may not have a top-level field named event_id")
    return _EVENT_ENCODER.encode({"event_id": event_id, **record})


class _Unsupported(Exception):
    pass


_PRIMITIVE_NAMES = frozenset({"null", "boolean", "int", "long", "float", "double", "string"})
_Converter = Callable[[Any], Any]


def _hex_value(value: bytes) -> str:
    return value.hex()


def _iso_micros(value: int) -> str:
    return (_EPOCH + timedelta(microseconds=value)).isoformat()


def _converter(schema: Any, named: dict[str, _Converter | None]) -> _Converter | None:
    """A function turning a value decoded without logical types into its JSON form, or None
    when the value is JSON as it is. Raises _Unsupported for what it does not handle (the
    renderer then decodes with logical types instead)."""
    if isinstance(schema, str):
        if schema in _PRIMITIVE_NAMES:
            return None
        if schema == "bytes":
            return _hex_value
        if schema in named:
            return named[schema]
        raise _Unsupported(schema)
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        converters = [_converter(b, named) for b in branches]
        if len(branches) > 1 and any(c is not None for c in converters):
            raise _Unsupported("a union of several branches that need converting")
        # None stays None: record converters skip None values.
        return converters[0] if converters else None
    if not isinstance(schema, Mapping):
        raise _Unsupported(repr(schema))
    kind = schema.get("type")
    logical = schema.get("logicalType")
    if kind == "long" and logical == "timestamp-micros":
        return _iso_micros
    if kind == "string" and logical == "uuid":
        return None
    if logical is not None:
        raise _Unsupported(logical)
    if kind in ("enum", "fixed"):
        conv = None if kind == "enum" else _hex_value
        named[schema["name"]] = conv
        return conv
    if kind in ("record", "error"):
        named[schema["name"]] = None  # a recursive record is refused below
        pairs = []
        for f in schema["fields"]:
            c = _converter(f["type"], named)
            if c is not None:
                pairs.append((f["name"], c))
        if not pairs:
            return None

        def record(value: dict[str, Any]) -> dict[str, Any]:
            for name, c in pairs:
                v = value[name]
                if v is not None:
                    value[name] = c(v)
            return value

        named[schema["name"]] = record
        return record
    if kind == "array":
        c = _converter(schema["items"], named)
        return None if c is None else (lambda v: [None if x is None else c(x) for x in v])
    if kind == "map":
        c = _converter(schema["values"], named)
        return (
            None
            if c is None
            else (lambda v: {k: None if x is None else c(x) for k, x in v.items()})
        )
    if isinstance(kind, str | list | Mapping):
        return _converter(kind, named)
    raise _Unsupported(repr(kind))


def _is_recursive(schema: Any, open_records: set[str], defined: set[str]) -> bool:
    if isinstance(schema, str):
        return schema in open_records
    if isinstance(schema, list):
        return any(_is_recursive(b, open_records, defined) for b in schema)
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    if kind in ("record", "error"):
        name = schema["name"]
        open_records.add(name)
        found = any(_is_recursive(f["type"], open_records, defined) for f in schema["fields"])
        open_records.discard(name)
        defined.add(name)
        return found
    if kind == "array":
        return _is_recursive(schema["items"], open_records, defined)
    if kind == "map":
        return _is_recursive(schema["values"], open_records, defined)
    if isinstance(kind, list | Mapping):
        return _is_recursive(kind, open_records, defined)
    return False


class EventRenderer:
    """Decodes single-object-encoded events with a catalogue and renders their JSON Lines form.

    The writer and the verifier both render through this class, so a line is a pure function
    of the event bytes and the schema: times ISO 8601 (UTC), bytes and fixed as hex, fields in
    schema order. Events are decoded without logical types and converted by a plan made once
    per schema, which is exact and several times cheaper than decoding to datetimes and UUIDs.
    """

    def __init__(self, catalogue: SchemaCatalogue) -> None:
        self._catalogue = catalogue
        self._plans: dict[str, tuple[bool, _Converter | None]] = {}

    def _plan(self, fullname: str) -> tuple[bool, _Converter | None]:
        plan = self._plans.get(fullname)
        if plan is None:
            schema = self._catalogue.schema(fullname)
            try:
                if _is_recursive(schema, set(), set()):
                    raise _Unsupported("recursive")
                plan = (True, _converter(schema, {}))
            except (_Unsupported, KeyError, TypeError):
                plan = (False, None)
            self._plans[fullname] = plan
        return plan

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(fullname, record) with logical values in their JSON form; raises DecodeError."""
        fullname, record = self._catalogue.decode(data, logical_types=False)
        raw, conv = self._plan(fullname)
        if not raw:
            fullname, record = self._catalogue.decode(data)
        elif conv is not None:
            try:
                record = conv(record)
            except (OverflowError, ValueError) as exc:
                raise DecodeError(f"{fullname}: a value has no JSON form ({exc})") from None
        return fullname, record

    @staticmethod
    def line(event_id: str, record: Mapping[str, Any]) -> str:
        """The JSON Lines form (no newline) of a record from :meth:`decode`."""
        return event_json_line(event_id, record)


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
    return _field(obj, name, int, what)


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
    except (UnicodeDecodeError, ValueError):
        raise FormatError(f"{MANIFEST_SIG} is not JSON") from None
    return _field(obj, "key_id", str, MANIFEST_SIG), _hex(obj, "signature", MANIFEST_SIG, 64)


def parse_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{name} is not UTF-8 JSON ({exc})") from None
