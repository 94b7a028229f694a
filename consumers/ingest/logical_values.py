"""The checks Avro logical types imply, without building the logical values.

The materialiser decodes events without logical types (integers for times, text for UUIDs:
:mod:`consumers.store.rows`), which would also drop the checks that building a datetime and a UUID
made: an event whose ``event_id`` is not a UUID, or whose time lies outside any calendar, was
refused as malformed and must still be. These are those checks, over the fields that carry a
logical type, found once per schema.

They also refuse an integer its store column cannot hold: Avro's ``int`` and ``long`` are
signed 32 and 64 bits, but a count lands in an unsigned column (``Nullable(UInt64)``), a
latency in a ``UInt32``, the head's ``schema_version`` in a ``UInt16``. A signed event with
``output_tokens = -5`` is a valid Avro long, and would crash the Arrow insert (OverflowError)
or, decoded by the engine, be stored wrapped (18446744073709551611). The bounds come from the
column types in :mod:`consumers.store.tables`, the one definition of the store, so the check
can never disagree with the DDL; :mod:`consumers.ingest.engine_path` makes the engine apply the
same bounds (:meth:`LogicalChecks.ranges`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aigc_audit.consumers.store.tables import EVENTS, FAMILY_TABLES
from aigc_audit.producers.codec import SchemaCatalogue, integer_fields

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


AVRO_BOUNDS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
"""What an Avro int and long hold (fastavro reads a long into 64 bits, the codec refuses an int
beyond 32): a column bound beyond these can never be reached, so it is no check."""

_WRAPPER = re.compile(r"(?:Nullable|LowCardinality)\((.*)\)")
_INTEGER = re.compile(r"(U?)Int(8|16|32|64|128|256)")


def column_bounds(column_type: str) -> tuple[int, int] | None:
    """The least and greatest integer a store column of ``column_type`` (a ClickHouse type, as
    :mod:`consumers.store.tables` writes them) holds; None for a column that is no integer."""
    while (wrapped := _WRAPPER.fullmatch(column_type)) is not None:
        column_type = wrapped.group(1)
    integer = _INTEGER.fullmatch(column_type)
    if integer is None:
        return None
    bits = int(integer.group(2))
    if integer.group(1):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@dataclass(frozen=True)
class RangeField:
    """An int or long of a record schema that lands in a narrower (or unsigned) store column."""

    path: tuple[str, ...]
    """Field names from the record to the value (a null on the way: nothing to check)."""
    column: str
    """``table.column``, the column the value is stored in."""
    column_type: str
    low: int
    high: int
    """The values the column holds that the Avro type can carry, inclusive."""


def integer_leaves(schema: Any) -> list[tuple[tuple[str, ...], str]]:
    """(path, ``int`` or ``long``) of every integer without a logical type in a parsed
    (fastavro) record schema, through records and unions. Timestamps are left out: their
    calendar check is :func:`logical_fields`', and their columns are no integers. (Arrays and
    maps hold none in our schemas, and have no integer columns.)"""
    return [
        (f.path, f.avro_type)
        for f in integer_fields(schema)
        if not f.logical and not f.in_collection
    ]


def store_columns(fullname: str, path: tuple[str, ...]) -> list[tuple[str, str]]:
    """(``table.column``, type) of the store columns the value at ``path`` of a ``fullname``
    event is written to, named as :mod:`consumers.store.rows` names them: the head's fields in
    ``events`` and the family's table, a top-level field under its own name, a nested one as
    ``<record>_<field>`` where the family's table has that column, else under its own name (a
    data-handling detail's fields, the authority report's). ``tests/security/
    test_event_value_ranges.py`` holds this naming to the rows :mod:`consumers.store.rows`
    builds."""
    family = FAMILY_TABLES[fullname]
    tables = (EVENTS, family) if path[0] == "head" else (family,)
    found = []
    for table in tables:
        types = dict(table.columns)
        for name in ("_".join(path[1:] if path[0] == "head" else path), path[-1]):
            if name in types:
                found.append((f"{table.name}.{name}", types[name]))
                break
    return found


def range_fields(fullname: str, schema: Any) -> list[RangeField]:
    """Every integer of the ``fullname`` event schema whose store column holds less than its
    Avro type does, with the bounds of that column."""
    out = []
    for path, avro in integer_leaves(schema):
        avro_low, avro_high = AVRO_BOUNDS[avro]
        for column, column_type in store_columns(fullname, path):
            bounds = column_bounds(column_type)
            if bounds is None:
                continue
            low, high = max(bounds[0], avro_low), min(bounds[1], avro_high)
            if (low, high) != (avro_low, avro_high):
                out.append(RangeField(path, column, column_type, low, high))
    return out


_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def compile_range_check(fields: Sequence[RangeField]) -> Callable[[Mapping[str, Any]], int]:
    """A function of a decoded record: the index in ``fields`` of the first value beyond its
    bounds, -1 when every value fits.

    Generated once per schema as straight-line code, a dict lookup or two and a chained
    comparison a field: this runs for every event on the hot path, where a loop over the
    fields (tuple unpacking, a path walk) cost three times as much (~0.75 µs a generation
    against ~0.25). Only Avro names (checked) and integers go into the code."""
    lines = ["def check(record):"]
    for index, field in enumerate(fields):
        if not all(_AVRO_NAME.fullmatch(name) for name in field.path):
            raise ValueError(f"not an Avro field path: {field.path!r}")
        lines.append(f"    value = record.get({field.path[0]!r})")
        for name in field.path[1:]:  # through a record, or a union of null and a record
            lines.append(f"    value = value.get({name!r}) if value.__class__ is dict else None")
        lines.append(f"    if value is not None and not {field.low} <= value <= {field.high}:")
        lines.append(f"        return {index}")
    lines.append("    return -1")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # our code: Avro names (checked above) and integers
    check: Callable[[Mapping[str, Any]], int] = namespace["check"]
    return check


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
        self._ranges: dict[str, list[RangeField]] = {}
        self._compiled: dict[str, Callable[[Mapping[str, Any]], int]] = {}

    def fields(self, fullname: str) -> list[LogicalField]:
        found = self._fields.get(fullname)
        if found is None:
            found = self._fields[fullname] = logical_fields(self._catalogue.schema(fullname))
        return found

    def ranges(self, fullname: str) -> list[RangeField]:
        """The integers of an event family whose store column is narrower than Avro's type."""
        found = self._ranges.get(fullname)
        if found is None:
            schema = self._catalogue.schema(fullname)
            found = self._ranges[fullname] = range_fields(fullname, schema)
        return found

    def _range_check(self, fullname: str) -> Callable[[Mapping[str, Any]], int]:
        found = self._compiled.get(fullname)
        if found is None:
            found = self._compiled[fullname] = compile_range_check(self.ranges(fullname))
        return found

    def check(self, fullname: str, record: Mapping[str, Any]) -> None:
        """Raise ValueError when a logical value of ``record`` is not one, or an integer does
        not fit its store column."""
        if fullname in FAMILY_TABLES:  # other records (a batch, a key) have no store columns
            beyond = self._range_check(fullname)(record)
            if beyond >= 0:
                ranged = self.ranges(fullname)[beyond]
                raise ValueError(
                    f"{'.'.join(ranged.path)} = {_value(record, ranged.path)} does not fit the "
                    f"store column {ranged.column} {ranged.column_type}"
                )
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
