"""The decoded, readable copy of each event (``events/<family>.jsonl``): one JSON object per
line, ``event_id`` first, then the record's fields in schema order; times as ISO 8601 and bytes
as hex. The exporter writes it and the verifier re-renders every event to compare."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aigc_audit.consumers.bundle.format.errors import FormatError
from aigc_audit.producers.codec import SchemaCatalogue
from aigc_audit.producers.errors import DecodeError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        item = _converter(schema["items"], named)
        return None if item is None else (lambda v: [None if x is None else item(x) for x in v])
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
