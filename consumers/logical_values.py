"""The checks Avro logical types imply, without building the logical values.

The materialiser decodes events without logical types (integers for times, text for UUIDs:
:mod:`consumers.rows`), which would also drop the checks that building a datetime and a UUID
made: an event whose ``event_id`` is not a UUID, or whose time lies outside any calendar, was
refused as malformed and must still be. These are those checks, over the fields that carry a
logical type, found once per schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from producers.codec import SchemaCatalogue

MIN_MICROS = -62_135_596_800_000_000
"""0001-01-01T00:00:00Z: the first instant a datetime holds."""
MAX_MICROS = 253_402_300_799_999_999
"""9999-12-31T23:59:59.999999Z: the last."""


@dataclass(frozen=True)
class LogicalField:
    path: tuple[str, ...]
    """Field names from the record to the value (a null anywhere on the way: nothing to check)."""
    kind: str
    """``uuid`` or ``timestamp-micros``."""


def logical_fields(schema: Any, path: tuple[str, ...] = ()) -> list[LogicalField]:
    """Every uuid and timestamp-micros value of a parsed (fastavro) record schema."""
    if isinstance(schema, list):
        return [f for branch in schema for f in logical_fields(branch, path)]
    if not isinstance(schema, Mapping):
        return []
    logical = schema.get("logicalType")
    if logical in ("uuid", "timestamp-micros"):
        return [LogicalField(path, logical)]
    if schema.get("type") == "record":
        return [
            f
            for field in schema["fields"]
            for f in logical_fields(field["type"], (*path, field["name"]))
        ]
    if isinstance(schema.get("type"), (Mapping, list)):
        return logical_fields(schema["type"], path)
    return []


def _value(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


class LogicalChecks:
    def __init__(self, catalogue: SchemaCatalogue) -> None:
        self._catalogue = catalogue
        self._fields: dict[str, list[LogicalField]] = {}

    def fields(self, fullname: str) -> list[LogicalField]:
        found = self._fields.get(fullname)
        if found is None:
            found = self._fields[fullname] = logical_fields(self._catalogue.schema(fullname))
        return found

    def check(self, fullname: str, record: Mapping[str, Any]) -> None:
        """Raise ValueError when a logical value of ``record`` is not one."""
        for field in self.fields(fullname):
            value = _value(record, field.path)
            if value is None:
                continue
            where = ".".join(field.path)
            if field.kind == "uuid":
                try:
                    uuid.UUID(value)
                except (ValueError, TypeError, AttributeError):
                    raise ValueError(f"{where} is not a UUID: {value!r}") from None
            elif not MIN_MICROS <= value <= MAX_MICROS:
                raise ValueError(f"{where} is outside any calendar: {value} µs")
