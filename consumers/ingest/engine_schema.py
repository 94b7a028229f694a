"""How the engine reads generation events strictly: the poll file's schema, and expressions on it.

ClickHouse reads an Avro ``["null", T]`` union into a ``Nullable(T)`` and takes any branch index
other than 1 for null, where fastavro refuses an index out of range. A union of three branches
it reads strictly, into a ``Variant``: an index out of range is an error, and each row says which
branch it holds. So the poll file declares every ``["null", T]`` as ``["null", T, S]``, S a
*sentinel* type no writer ever chose (``boolean``, or ``float`` beside a boolean): the bytes are
read exactly as a writer of ``["null", T]`` wrote them, and a row holding S is an event whose
union index was 2, which fastavro would have refused. That check is :meth:`EngineView.sentinels`.

:class:`EngineView` gives the engine expressions of the values the Python path builds from the
same record: null where the union holds null, the value otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _is_null_union(schema: Any) -> bool:
    return isinstance(schema, list) and len(schema) == 2 and "null" in schema


def _other(union: list[Any]) -> Any:
    return union[1] if union[0] == "null" else union[0]


def _sentinel(other: Any) -> str:
    """The third branch of a ``["null", other]`` union: a type no such writer ever wrote."""
    return "float" if other == "boolean" else "boolean"


def strict_unions(schema: Any) -> Any:
    """``schema`` (Parsing Canonical Form) with every ``["null", T]`` made ``["null", T, S]``.

    The null branch keeps its index, so the same bytes decode to the same values."""
    if isinstance(schema, list):
        if _is_null_union(schema):
            return [*(strict_unions(b) for b in schema), _sentinel(_other(schema))]
        return [strict_unions(b) for b in schema]
    if isinstance(schema, Mapping) and schema.get("type") == "record":
        return {
            **schema,
            "fields": [{**f, "type": strict_unions(f["type"])} for f in schema["fields"]],
        }
    return schema


class EngineView:
    """Expressions over the column ``event`` of a poll file whose schema is ``strict_unions(s)``
    of the record schema ``s`` (Parsing Canonical Form: named types at first use)."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._record = record
        self._named: dict[str, Any] = {}
        self._collect(record)

    def _collect(self, schema: Any) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch)
        elif isinstance(schema, Mapping):
            if "name" in schema and schema.get("type") in ("record", "enum", "fixed"):
                self._named.setdefault(schema["name"], schema)
            if schema.get("type") == "record":
                for f in schema["fields"]:
                    self._collect(f["type"])

    def _resolve(self, schema: Any) -> Any:
        return self._named.get(schema, schema) if isinstance(schema, str) else schema

    def engine_type(self, schema: Any) -> str:
        """The engine's name of the type it reads ``schema`` into (in the poll file)."""
        schema = self._resolve(schema)
        if _is_null_union(schema):
            other = self._resolve(_other(schema))
            members = sorted([self.engine_type(other), self.engine_type(_sentinel(other))])
            return f"Variant({', '.join(members)})"
        primitive = {
            "string": "String",
            "bytes": "String",
            "long": "Int64",
            "int": "Int32",
            "boolean": "Bool",
            "float": "Float32",
            "double": "Float64",
        }
        if isinstance(schema, str) and schema in primitive:
            return primitive[schema]
        if isinstance(schema, Mapping):
            kind = schema["type"]
            if kind == "fixed":
                return f"FixedString({int(schema['size'])})"
            if kind == "record":
                inner = ", ".join(
                    f"{f['name']} {self.engine_type(f['type'])}" for f in schema["fields"]
                )
                return f"Tuple({inner})"
        # Enums, arrays and maps inside a union: generations have none.
        raise ValueError(f"no engine type for {schema!r} here")

    def _field(self, record: Any, name: str) -> Any:
        for f in self._resolve(record)["fields"]:
            if f["name"] == name:
                return f["type"]
        raise KeyError(name)

    def _walk(self, path: tuple[str, ...]) -> tuple[str, Any, list[str]]:
        """(expression, schema, presence conditions) of the value at ``path``; a union on the
        way is entered through its T branch, its presence a condition."""
        expr, schema, present = "event", self._record, []
        for depth, name in enumerate(path):
            schema = self._resolve(self._field(schema, name))
            expr = f"tupleElement({expr}, '{name}')"
            if _is_null_union(schema) and depth < len(path) - 1:
                inner = self._resolve(_other(schema))
                present.append(f"variantType({expr}) != 'None'")
                expr = f"variantElement({expr}, '{self.engine_type(inner)}')"
                schema = inner
        return expr, schema, present

    def value(self, path: tuple[str, ...]) -> str:
        """The value at ``path`` as the Python path has it: null where a union on the way (or
        the value's own) holds null."""
        expr, schema, present = self._walk(path)
        if _is_null_union(schema):
            inner = self._resolve(_other(schema))
            expr = f"variantElement({expr}, '{self.engine_type(inner)}')"
            schema = inner
        if isinstance(schema, Mapping) and schema.get("type") == "enum":
            expr = f"toString({expr})"
        if present:
            return f"if({' AND '.join(present)}, {expr}, NULL)"
        return expr

    def present(self, path: tuple[str, ...]) -> str:
        """Whether the union at ``path`` holds a value (not null)."""
        expr, schema, present = self._walk(path)
        if not _is_null_union(schema):
            raise ValueError(f"{'.'.join(path)} is not a union with null")
        return " AND ".join([*present, f"variantType({expr}) != 'None'"])

    def sentinels(self) -> list[str]:
        """One expression per union that holds when the row holds its sentinel branch: an
        index no writer of the real schema could have written."""
        out: list[str] = []

        def visit(schema: Any, path: tuple[str, ...]) -> None:
            schema = self._resolve(schema)
            if _is_null_union(schema):
                expr, _, present = self._walk(path)
                other = self._resolve(_other(schema))
                sentinel = self.engine_type(_sentinel(other))
                out.append(" AND ".join([*present, f"variantType({expr}) = '{sentinel}'"]))
                visit(other, path)
            elif isinstance(schema, Mapping) and schema.get("type") == "record":
                for f in schema["fields"]:
                    visit(f["type"], (*path, f["name"]))

        visit(self._record, ())
        return out

    def strings(self) -> list[tuple[str, ...]]:
        """Paths of every string value (directly or in a union)."""
        out: list[tuple[str, ...]] = []

        def visit(schema: Any, path: tuple[str, ...]) -> None:
            schema = self._resolve(schema)
            if _is_null_union(schema):
                visit(_other(schema), path)
            elif schema == "string":
                out.append(path)
            elif isinstance(schema, Mapping) and schema.get("type") == "record":
                for f in schema["fields"]:
                    visit(f["type"], (*path, f["name"]))
            elif isinstance(schema, list) or (
                isinstance(schema, Mapping) and schema.get("type") in ("array", "map")
            ):
                raise ValueError(f"no string walk through {schema!r} at {'.'.join(path)}")

        visit(self._record, ())
        return out

    def fields(self) -> set[str]:
        return {f["name"] for f in self._record["fields"]}
