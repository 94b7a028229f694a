"""Backward-compatibility check of Avro schemas against the released ones.

A change is backward compatible when the new schema, as reader, can read every datum written
with an old schema, following the Avro specification's "Schema Resolution" rules:

* records are matched by full name, or by a reader alias naming the writer's record; every
  reader field absent from the writer (by name or alias) needs a default; a writer field absent
  from the reader is skipped; common fields resolve recursively;
* enums: every writer symbol must be a reader symbol, unless the reader enum has a default;
* fixed: same name and same size; arrays and maps: items and values resolve recursively;
* unions: every writer branch must resolve to a reader branch (a non-union on either side
  acts as a union of one branch);
* primitives: same type, or a promotion int->long/float/double, long->float/double,
  float->double, string<->bytes;
* logical types resolve as their underlying types, but a change of logical type (e.g.
  timestamp-micros -> timestamp-millis, or a decimal's precision or scale) is refused: the bytes
  still decode, but the value silently changes meaning.

`compare_releases` applies the check to every record of a released snapshot
(``schemas/released/vN/``) against the current ``schemas/`` directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastavro.schema import expand_schema, load_schema

Schema = Any  # a JSON Avro schema: str | list | dict, parsed or expanded by fastavro, or raw

__all__ = ["check_backward_compatible", "compare_releases", "load_schema_dir"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
COMPLEX = NAMED | {"array", "map"}
# Writer type -> the reader types that can read it.
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
LOGICAL_KEYS = ("logicalType", "precision", "scale")
NO_VALUE = "data written by the released schema has no value for it"
NO_VALUE = "data written by the released schema has no value for it"


def _qualify(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class _Normaliser:
    """Copies a schema with full names, qualified aliases and named references inlined."""

    def __init__(self, schema: Schema) -> None:
        self.known: dict[str, dict[str, Any]] = {}
        named = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
        self.pending: dict[str, Schema] = dict(named)

    def __call__(self, schema: Schema, namespace: str = "") -> Schema:
        if isinstance(schema, list):
            return [self(branch, namespace) for branch in schema]
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema
            for name in (_qualify(schema, namespace), schema):
                if name in self.known:
                    return self.known[name]
                if name in self.pending:
                    return self(self.pending.pop(name))
            raise ValueError(f"unknown named type {schema!r}")
        kind = schema["type"]
        if not isinstance(kind, str) or kind not in PRIMITIVES | COMPLEX:
            return self(kind, namespace)  # {"type": <another schema>}
        out = {k: v for k, v in schema.items() if not k.startswith("__") and k != "namespace"}
        if kind in NAMED:
            full = _qualify(schema["name"], schema.get("namespace", namespace))
            namespace = full.rpartition(".")[0]
            out["name"] = full
            out["aliases"] = [_qualify(alias, namespace) for alias in schema.get("aliases", [])]
            self.known[full] = out  # registered before the fields: recursive references find it
        if kind in ("record", "error"):
            out["fields"] = [{**f, "type": self(f["type"], namespace)} for f in schema["fields"]]
        elif kind == "array":
            out["items"] = self(schema["items"], namespace)
        elif kind == "map":
            out["values"] = self(schema["values"], namespace)
        return out


def _kind(schema: Schema) -> str:
    if isinstance(schema, list):
        return "union"
    kind = schema if isinstance(schema, str) else schema["type"]
    return "record" if kind == "error" else kind


def _logical(schema: Schema) -> tuple[Any, ...]:
    return tuple(schema.get(key) for key in LOGICAL_KEYS) if isinstance(schema, dict) else ()


def _describe(schema: Schema) -> str:
    kind = _kind(schema)
    if kind == "union":
        return "union [" + ", ".join(_describe(branch) for branch in schema) + "]"
    if kind in NAMED:
        return f"{kind} {schema['name']}"
    if kind == "array":
        return f"array of {_describe(schema['items'])}"
    if kind == "map":
        return f"map of {_describe(schema['values'])}"
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    return f"{kind} ({logical})" if logical else kind


def _matches(reader: Schema, writer: Schema, *, promote: bool) -> bool:
    """Whether `reader` is the schema that resolves `writer` (the spec's "match")."""
    reader_kind, writer_kind = _kind(reader), _kind(writer)
    if reader_kind in NAMED and reader_kind == writer_kind:
        return writer["name"] == reader["name"] or writer["name"] in reader.get("aliases", ())
    if reader_kind == writer_kind:
        return True
    return promote and reader_kind in PROMOTIONS.get(writer_kind, ())


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self._active: set[tuple[str, str]] = set()  # record pairs being resolved (recursion)

    def resolve(self, reader: Schema, writer: Schema, path: str) -> None:
        """Records why `reader` cannot read what `writer` wrote at `path`."""
        if isinstance(writer, list):  # each writer branch must resolve on its own
            for branch in writer:
                self.resolve(reader, branch, path)
            return
        written = f"{_describe(writer)} written by the released schema"
        if isinstance(reader, list):  # exact match first, then a promotion
            branch = next((b for b in reader if _matches(b, writer, promote=False)), None)
            branch = branch or next((b for b in reader if _matches(b, writer, promote=True)), None)
            if branch is None:
                self._add(path, f"{written} matches no branch of {_describe(reader)}")
            else:
                self.resolve(branch, writer, path)
            return
        if not _matches(reader, writer, promote=True):
            if _kind(reader) == _kind(writer):  # named types of the same kind
                renamed = f"{_kind(writer)} renamed from {writer['name']} to {reader['name']}"
                self._add(path, f"{renamed} without an alias for the released name")
            else:
                self._add(path, f"{written} cannot be read as {_describe(reader)}")
            return
        if _logical(reader) != _logical(writer):
            change = f"logical type changed from {_describe(writer)} to {_describe(reader)}"
            self._add(path, f"{change}: the value would silently change meaning")
        kind = _kind(writer)
        if kind == "record":
            self._record(reader, writer, path)
        elif kind == "enum" and "default" not in reader:
            for symbol in writer["symbols"]:
                if symbol not in reader["symbols"]:
                    self._add(path, f"symbol {symbol!r} written by the released schema is missing")
        elif kind == "fixed" and reader["size"] != writer["size"]:
            self._add(path, f"fixed size changed from {writer['size']} to {reader['size']} bytes")
        elif kind == "array":
            self.resolve(reader["items"], writer["items"], f"{path}[]")
        elif kind == "map":
            self.resolve(reader["values"], writer["values"], f"{path}{{}}")

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        key = (reader["name"], writer["name"])
        if key in self._active:
            return
        self._active.add(key)
        by_name = {field["name"]: field for field in writer["fields"]}
        for field in reader["fields"]:
            field_path = f"{path}.{field['name']}"
            names = [field["name"], *field.get("aliases", ())]
            source = next((by_name[name] for name in names if name in by_name), None)
            if source is not None:
                self.resolve(field["type"], source["type"], field_path)
            elif "default" not in field:
                self._add(field_path, f"new field has no default, and {NO_VALUE}")
        self._active.discard(key)

    def _add(self, path: str, problem: str) -> None:
        message = f"{path}: {problem}"
        if message not in self.problems:
            self.problems.append(message)


def check_backward_compatible(reader: Schema, writer: Schema) -> list[str]:
    """Why the new `reader` schema cannot read data written with the old `writer` schema.

    Both are JSON schemas (fastavro-parsed, expanded, or raw). An empty list means compatible.
    Each message starts with the path of the offending value, e.g.
    ``aigc.audit.Generation.modality: symbol 'video' written by the released schema is missing``.
    """
    reader, writer = _Normaliser(reader)(reader), _Normaliser(writer)(writer)
    path = writer["name"] if _kind(writer) in NAMED else _describe(writer)
    checker = _Checker()
    checker.resolve(reader, writer, path)
    return checker.problems


def load_schema_dir(path: str | Path) -> dict[str, dict[str, Any]]:
    """Full name -> expanded schema of every top-level record in a directory of ``*.avsc``.

    Named types defined in other files of the directory (``<full name>.avsc``) are resolved by
    `fastavro.schema.load_schema` and inlined by `expand_schema`.
    """
    records: dict[str, dict[str, Any]] = {}
    for file in sorted(Path(path).glob("*.avsc")):
        schema = expand_schema(load_schema(str(file)))
        if isinstance(schema, dict) and schema.get("type") in ("record", "error"):
            records[schema["name"]] = schema
    return records


def compare_releases(released_dir: str | Path, current_dir: str | Path) -> dict[str, list[str]]:
    """For every record of `released_dir`, why the current schemas cannot read its data.

    A released record is found in `current_dir` by full name or by a current record's alias;
    a record no longer there is itself reported. Empty lists everywhere mean compatible.
    """
    current = load_schema_dir(current_dir)
    aliases = {
        _qualify(alias, name.rpartition(".")[0]): schema
        for name, schema in current.items()
        for alias in schema.get("aliases", ())
    }
    report: dict[str, list[str]] = {}
    for name, writer in load_schema_dir(released_dir).items():
        reader = current.get(name) or aliases.get(name)
        if reader is None:
            report[name] = [f"{name}: record removed; released data can no longer be read"]
        else:
            report[name] = check_backward_compatible(reader, writer)
    return report
