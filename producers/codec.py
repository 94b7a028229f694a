"""Avro single-object encoding over a catalogue of the ``schemas`` directory.

Wire form of one record: ``C3 01`` || 8-byte CRC-64-AVRO fingerprint of the schema's Parsing
Canonical Form, little-endian || Avro binary body. A reader needs no registry: the fingerprint
names the schema among those in the catalogue.

Every ``*.avsc`` file holds one top-level schema; a file may use named types (records, enums,
fixed) defined in any other file of the directory, in any order. Each top-level record is made
self-contained by inlining such definitions at first use, so its canonical form and fingerprint
are what any other Avro implementation computes for it.

Schemas evolve under Avro's rules. Each released snapshot, ``released/vN/`` under the directory,
is loaded too, as *writer* schemas keyed by their fingerprints: bytes written under an older
version of a record decode by Avro schema resolution into the record's current schema (fields
added since take their defaults), so events already on the bus and in stores keep decoding
after a schema change. Encoding always writes the current schema.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from aigc_audit.producers.errors import (
    DecodeError,
    EventValidationError,
    SchemaError,
    UnknownSchemaError,
)

MAGIC = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(MAGIC) + FINGERPRINT_SIZE

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})


class _Unresolved(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _without(schema: Any, key: str) -> Any:
    """Copy ``schema`` without ``key`` at any level (default values are left untouched)."""
    if isinstance(schema, list):
        return [_without(s, key) for s in schema]
    if isinstance(schema, dict):
        return {k: v if k == "default" else _without(v, key) for k, v in schema.items() if k != key}
    return schema


def _qualify(schema: Any, namespace: str, defs: dict[str, Any], dups: list[str]) -> Any:
    """Copy ``schema`` with every type name made a fullname; collect named definitions."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES or "." in schema or not namespace:
            return schema
        return f"{namespace}.{schema}"
    if isinstance(schema, list):
        return [_qualify(s, namespace, defs, dups) for s in schema]
    if not isinstance(schema, dict):
        raise SchemaError(f"not a schema: {schema!r}")
    kind = schema.get("type")
    out = dict(schema)
    if kind in _NAMED:
        name = schema["name"]
        if "." in name:
            full = name
        else:
            namespace = schema.get("namespace", namespace) or ""
            full = f"{namespace}.{name}" if namespace else name
        namespace = full.rpartition(".")[0]
        out["name"] = full
        out.pop("namespace", None)
        if kind in ("record", "error"):
            out["fields"] = [
                {**f, "type": _qualify(f["type"], namespace, defs, dups)} for f in schema["fields"]
            ]
        if full in defs and _without(defs[full], "doc") != _without(out, "doc"):
            dups.append(full)
        defs[full] = out
    elif kind == "array":
        out["items"] = _qualify(schema["items"], namespace, defs, dups)
    elif kind == "map":
        out["values"] = _qualify(schema["values"], namespace, defs, dups)
    elif kind is not None:
        # {"type": <schema>} wraps another schema, possibly a bare name.
        out["type"] = _qualify(kind, namespace, defs, dups)
    return out


def _inline(schema: Any, defs: Mapping[str, Any], seen: set[str]) -> Any:
    """Copy a qualified schema, replacing each name's first use by its definition."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES or schema in seen:
            return schema
        if schema not in defs:
            raise _Unresolved(schema)
        return _inline(defs[schema], defs, seen)
    if isinstance(schema, list):
        return [_inline(s, defs, seen) for s in schema]
    kind = schema.get("type")
    out = dict(schema)
    if kind in _NAMED:
        if out["name"] in seen:
            return out["name"]
        # Mark before descending so a recursive record refers to itself by name.
        seen.add(out["name"])
        if kind in ("record", "error"):
            out["fields"] = [{**f, "type": _inline(f["type"], defs, seen)} for f in out["fields"]]
    elif kind == "array":
        out["items"] = _inline(out["items"], defs, seen)
    elif kind == "map":
        out["values"] = _inline(out["values"], defs, seen)
    elif kind is not None:
        inner = _inline(kind, defs, seen)
        if not isinstance(inner, str):
            # A wrapped name just inlined: Avro (and fastavro) want the definition unwrapped.
            return inner
        out["type"] = inner
    return out


INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class IntegerField:
    """An Avro ``int`` or ``long`` of a record schema, found by :func:`integer_fields`."""

    path: tuple[str, ...]
    """Field names from the record to the value (through records and unions)."""
    avro_type: str
    """``int`` or ``long``."""
    logical: bool
    """It carries a logical type (a date, a timestamp)."""
    in_collection: bool
    """It lies inside an array or a map (``path`` then stops at that field)."""


def integer_fields(
    schema: Any,
    path: tuple[str, ...] = (),
    *,
    named: dict[str, Any] | None = None,
    within: frozenset[str] = frozenset(),
    in_collection: bool = False,
) -> list[IntegerField]:
    """Every ``int`` and ``long`` of a parsed (fastavro) record schema: the decoder's 32-bit
    check and the platform's store-column bounds both walk the schema through this one."""
    named = {} if named is None else named
    if isinstance(schema, list):
        return [
            found
            for branch in schema
            for found in integer_fields(
                branch, path, named=named, within=within, in_collection=in_collection
            )
        ]
    if isinstance(schema, str):
        if schema in ("int", "long"):
            return [IntegerField(path, schema, False, in_collection)]
        # A named type used again after its definition: fastavro gives its name only.
        schema = named.get(schema)
    if not isinstance(schema, Mapping):
        return []
    kind = schema.get("type")
    if kind == "record":
        name = schema["name"]
        if name in within:  # a record inside itself: its fields are listed once, above
            return []
        named.setdefault(name, schema)
        return [
            found
            for field in schema["fields"]
            for found in integer_fields(
                field["type"],
                (*path, field["name"]),
                named=named,
                within=within | {name},
                in_collection=in_collection,
            )
        ]
    if kind in ("array", "map"):
        inner = schema["items" if kind == "array" else "values"]
        return integer_fields(inner, path, named=named, within=within, in_collection=True)
    if kind in ("int", "long"):
        return [IntegerField(path, kind, bool(schema.get("logicalType")), in_collection)]
    if isinstance(kind, (str, Mapping, list)):  # {"type": <a schema or a name>} wraps one
        return integer_fields(kind, path, named=named, within=within, in_collection=in_collection)
    return []


def _int_paths(schema: Any) -> list[tuple[str, ...]]:
    """Field-name paths to every ``int`` value of a parsed record schema; our schemas hold no
    int inside an array or a map, and one there is refused rather than left unchecked."""
    ints = [f for f in integer_fields(schema) if f.avro_type == "int"]
    if any(f.in_collection for f in ints):
        raise SchemaError("an int inside an array or a map is not range-checked on decode")
    return [f.path for f in ints]


def _out_of_int_range(record: Any, paths: tuple[tuple[str, ...], ...]) -> str | None:
    """The first int field of ``record`` outside 32 bits, as ``a.b = value``; None if none."""
    for path in paths:
        value = record
        for name in path:
            if not isinstance(value, Mapping):
                break
            value = value.get(name)
        else:
            if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
                return f"{'.'.join(path)} = {value}"
    return None


@dataclass(frozen=True)
class _Entry:
    fullname: str
    parsed: Any
    parsed_raw: Any
    canonical_form: str
    fingerprint: bytes
    source: str
    aliases: tuple[str, ...] = ()
    int_paths: tuple[tuple[str, ...], ...] = ()
    """Where the record holds an Avro ``int``: fastavro reads any varint there, even one far
    beyond 32 bits, which a store's Int32 column then silently truncates; decode refuses it."""


@dataclass(frozen=True)
class _Writer:
    """A released (older) version of a record: how its bytes are read into the current one."""

    entry: _Entry
    """The released schema itself, as written."""
    reader: _Entry
    """The current schema it resolves into (the released one if the record was since removed)."""


RELEASED_DIR = "released"
"""The subdirectory of a schema directory holding released snapshots, ``vN/`` each."""

_RELEASE = re.compile(r"v(\d+)")


def _avsc_files(directory: Traversable) -> list[Traversable]:
    files = (f for f in directory.iterdir() if f.name.endswith(".avsc") and f.is_file())
    return sorted(files, key=lambda f: f.name)


def _release_dirs(root: Traversable) -> list[Traversable]:
    """The released snapshots ``released/vN/`` under ``root``, oldest first; none if absent."""
    try:
        released = root.joinpath(RELEASED_DIR)
        if not released.is_dir():
            return []
        found = [d for d in released.iterdir() if _RELEASE.fullmatch(d.name) and d.is_dir()]
    except OSError as exc:
        raise SchemaError(f"cannot list released schemas in {root}: {exc.strerror}") from exc
    return sorted(found, key=lambda d: int(d.name[1:]))


def _aliases(top: Mapping[str, Any]) -> tuple[str, ...]:
    namespace = top["name"].rpartition(".")[0]
    return tuple(
        a if "." in a or not namespace else f"{namespace}.{a}" for a in top.get("aliases", ())
    )


class SchemaCatalogue:
    """Every top-level record schema of one directory, by fullname and by fingerprint, and
    every released version of them (``released/vN/``) by fingerprint.

    ``encode`` writes a record's current schema; ``decode`` reads bytes of the current schema
    or of any released version, resolving an older version into the current one. A version that
    did not change shares its fingerprint with the current schema and is the same entry.

    Loading raises SchemaError naming the offending file. Instances are immutable after
    construction and safe to share between threads.
    """

    def __init__(self, directory: str | os.PathLike[str] | Traversable | None = None) -> None:
        if directory is None:
            root: Traversable = resources.files("aigc_audit.schemas")
        elif isinstance(directory, str | os.PathLike):
            root = Path(directory)
        else:
            root = directory
        self.directory = root
        self._entries: dict[str, _Entry] = {}
        self._by_fp: dict[bytes, _Entry] = {}
        self._writers: dict[bytes, _Writer] = {}
        for entry in self._read(root, ""):
            self._add(entry)
        releases = _release_dirs(root)
        for release in releases:
            self._add_release(release)
        self.releases: tuple[str, ...] = tuple(r.name for r in releases)
        """The released snapshots loaded (``v1``, ...), oldest first."""

    def _read(self, directory: Traversable, prefix: str) -> list[_Entry]:
        """The top-level records of one directory (``prefix`` names it in errors)."""
        defs: dict[str, Any] = {}
        tops: list[tuple[str, Any]] = []
        try:
            files = _avsc_files(directory)
        except OSError as exc:
            raise SchemaError(f"cannot list schema directory {directory}: {exc.strerror}") from exc
        for file in files:
            name = f"{prefix}{file.name}"
            try:
                raw = json.loads(file.read_text(encoding="utf-8"))
                dups: list[str] = []
                top = _qualify(raw, "", defs, dups)
            # RecursionError: json.loads and _qualify recurse, and a schema file nested some
            # thousand levels deep (a bundle's schemas are untrusted) exhausts the stack.
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise SchemaError(f"schema file {name} is unreadable: {exc!r}") from exc
            except RecursionError:
                raise SchemaError(f"schema file {name} is nested too deeply") from None
            except SchemaError as exc:
                raise SchemaError(f"schema file {name}: {exc}") from exc
            if dups:
                raise SchemaError(f"schema file {name} redefines {', '.join(dups)} differently")
            tops.append((name, top))
        return [
            self._build(source, top, defs)
            for source, top in tops
            if isinstance(top, dict) and top.get("type") in ("record", "error")
        ]

    def _add_release(self, release: Traversable) -> None:
        """Register the records of one released snapshot that differ from every known version."""
        for entry in self._read(release, f"{RELEASED_DIR}/{release.name}/"):
            if entry.fingerprint in self._by_fp or entry.fingerprint in self._writers:
                continue  # unchanged since that version: one schema, one fingerprint
            self._writers[entry.fingerprint] = _Writer(entry, self._reader_for(entry))

    def _reader_for(self, writer: _Entry) -> _Entry:
        """The current record that reads ``writer``'s data: same fullname, or one that names it
        as an alias (a renamed record); the writer itself if the record was removed."""
        current = self._entries.get(writer.fullname)
        if current is not None:
            return current
        for entry in self._entries.values():
            if writer.fullname in entry.aliases:
                return entry
        return writer

    def _build(self, source: str, top: dict[str, Any], defs: Mapping[str, Any]) -> _Entry:
        try:
            full = _inline(top, defs, set())
            parsed = parse_schema(full, {})
            # A twin without logical types decodes timestamps as exact ints (decode's option).
            parsed_raw = parse_schema(_without(full, "logicalType"), {})
            canonical = to_parsing_canonical_form(parsed)
            int_paths = tuple(_int_paths(parsed))
        except _Unresolved as exc:
            raise SchemaError(
                f"schema file {source} uses type {exc.name}, defined in no schema file"
            ) from exc
        except SchemaError as exc:
            raise SchemaError(f"schema file {source}: {exc}") from exc
        except Exception as exc:  # fastavro raises assorted types for a bad schema
            raise SchemaError(f"schema file {source} is not a valid Avro schema: {exc}") from exc
        # fastavro returns the CRC-64-AVRO as hex of its little-endian bytes: the wire order.
        fp = bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO"))
        return _Entry(
            top["name"], parsed, parsed_raw, canonical, fp, source, _aliases(top), int_paths
        )

    def _add(self, entry: _Entry) -> None:
        source, fp = entry.source, entry.fingerprint
        if entry.fullname in self._entries:
            other = self._entries[entry.fullname].source
            raise SchemaError(f"schema files {other} and {source} both define {entry.fullname}")
        if fp in self._by_fp:
            other = self._by_fp[fp].source
            raise SchemaError(f"schema files {other} and {source} have the same fingerprint")
        self._entries[entry.fullname] = entry
        self._by_fp[fp] = entry

    def _entry(self, fullname: str) -> _Entry:
        try:
            return self._entries[fullname]
        except KeyError:
            raise SchemaError(f"no schema named {fullname} in {self.directory}") from None

    @property
    def names(self) -> list[str]:
        """Fullnames of every top-level record, sorted."""
        return sorted(self._entries)

    def schema(self, fullname: str) -> Any:
        """Return the parsed (fastavro) schema of ``fullname``; SchemaError if unknown."""
        return self._entry(fullname).parsed

    def fingerprint(self, fullname: str) -> bytes:
        """Return the 8 fingerprint bytes as written on the wire (little-endian CRC-64-AVRO)."""
        return self._entry(fullname).fingerprint

    def canonical_form(self, fullname: str) -> str:
        """Return the Parsing Canonical Form the fingerprint is computed over."""
        return self._entry(fullname).canonical_form

    def by_fingerprint(self, fp: bytes) -> str:
        """Return the fullname that bytes with fingerprint ``fp`` decode as: the record's, for
        its current schema or a released version of it; UnknownSchemaError if none."""
        return self._resolve(bytes(fp))[1].fullname

    def is_current(self, fp: bytes) -> bool:
        """Whether ``fp`` is the fingerprint of a current schema (not only of a released one)."""
        return bytes(fp) in self._by_fp

    def _resolve(self, fp: bytes) -> tuple[_Entry, _Entry]:
        """(writer, reader) entries for fingerprint ``fp``; UnknownSchemaError if none."""
        entry = self._by_fp.get(fp)
        if entry is not None:
            return entry, entry
        writer = self._writers.get(fp)
        if writer is not None:
            return writer.entry, writer.reader
        raise UnknownSchemaError(f"unknown schema fingerprint {fp.hex()}")

    def encode(self, fullname: str, record: Mapping[str, Any]) -> bytes:
        """Return the single-object encoding of ``record`` under ``fullname``.

        Raises SchemaError for an unknown name and EventValidationError when the record does
        not fit the schema (a missing field without default, an extra field, a wrong type).

        This is the general path, for any record. The client writes events with
        :class:`producers.record_encoder.RecordEncoder` instead: the same bytes, faster.
        """
        entry = self._entry(fullname)
        # A fresh buffer per call keeps encode thread-safe; it costs far less than the writing.
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(entry.fingerprint)
        try:
            schemaless_writer(buf, entry.parsed, record, strict_allow_default=True)
        except Exception as exc:  # fastavro signals a misfit record with assorted types
            raise EventValidationError(f"record does not fit {fullname}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes, *, logical_types: bool = True) -> tuple[str, dict[str, Any]]:
        """Return (fullname, record) of single-object-encoded ``data``, consuming every byte.

        Bytes written with a released, older version of a record (its fingerprint) are read
        into the record's current schema by Avro schema resolution: the record comes back with
        the current fields, those added since set to their defaults, under the current fullname.

        With ``logical_types=False`` logical values come back as their underlying type (e.g.
        timestamp-micros as int), which is exact and never fails on out-of-range values.
        Raises DecodeError (UnknownSchemaError for an unknown fingerprint).
        """
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise DecodeError("not single-object encoded: missing the C3 01 marker or fingerprint")
        writer, reader = self._resolve(bytes(data[2:HEADER_SIZE]))
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        if logical_types:
            writer_schema, reader_schema = writer.parsed, reader.parsed
        else:
            writer_schema, reader_schema = writer.parsed_raw, reader.parsed_raw
        where = reader.fullname if writer is reader else f"{reader.fullname} ({writer.source})"
        try:
            record = schemaless_reader(
                buf, writer_schema, None if writer is reader else reader_schema
            )
        except Exception as exc:  # EOFError, UnicodeDecodeError, OverflowError, ...
            raise DecodeError(f"malformed Avro body for {where}: {exc!r}") from exc
        extra = len(data) - buf.tell()
        if extra:
            raise DecodeError(f"malformed Avro body for {where}: {extra} trailing bytes")
        if reader.int_paths:
            beyond = _out_of_int_range(record, reader.int_paths)
            if beyond is not None:
                raise DecodeError(f"malformed Avro body for {where}: int {beyond} beyond 32 bits")
        # Every catalogue entry is a record schema (the fullname above is a record's), and
        # fastavro reads a record as a dict.
        return reader.fullname, cast("dict[str, Any]", record)


@functools.cache
def default_catalogue() -> SchemaCatalogue:
    """Return the process-wide catalogue of the installed ``schemas`` package (built once)."""
    return SchemaCatalogue()
