"""Event encoders compiled from Avro schemas: what :meth:`SchemaCatalogue.encode` writes, faster.

:class:`RecordEncoder` writes an event's single-object encoding byte for byte as
``catalogue.encode(event.SCHEMA, event.to_record(...))`` does (fastavro), several times faster:
for each event kind it generates, once, a Python function from the kind's Avro schema and its
:meth:`~producers.events.AuditEvent.record_layout` that reads the model's attributes directly
(no ``to_record`` dict), folds every constant run of bytes (the marker and fingerprint, the
event type, the client's service and producer ids, the nulls of unused fields) into one
precomputed ``bytes``, looks varints of small ints and enum indexes up in tables, picks a
``["null", X]`` union's branch by ``is None``, writes timestamp-micros with fastavro's integer
arithmetic on the datetime, and a uuid as its 36-character text.

It never writes bytes fastavro would not: whatever the compiler does not handle (other logical
types, maps, floats, unions other than ``["null", X]``, a kind whose layout cannot be trusted)
makes the whole kind go through fastavro, and a value the compiled code does not accept
exactly (a type a validated model would not hold, an int out of range, a string without a UTF-8
form) makes that one event go through fastavro, which then encodes it or refuses it.
"""

from __future__ import annotations

import struct
import threading
import typing
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from aigc_audit.producers.codec import MAGIC, SchemaCatalogue
from aigc_audit.producers.errors import EventValidationError, SchemaError
from aigc_audit.producers.events.base import (
    Attr,
    AuditEvent,
    Const,
    Nested,
    Param,
    RecordLayout,
    Source,
)

Encoder = Callable[[Any], bytes]

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


class UnsupportedSchema(Exception):
    """The compiler cannot write this schema or trust this layout: fastavro writes the kind."""


class Misfit(Exception):
    """Raised by compiled code for a value it does not write: fastavro decides about it."""


# --- varints -----------------------------------------------------------------------------------


def _varint(z: int) -> bytes:
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# Two 7-bit groups per table look-up: every int of a record (lengths, counts, enum indexes,
# tokens, latencies) is below 2**13 and takes one look-up; a timestamp takes four.
_LOW: list[bytes] = [_varint(z) for z in range(1 << 14)]
"""The whole varint of ``z < 2**14``."""
_GROUPS: list[bytes] = [bytes(((z & 0x7F) | 0x80, (z >> 7) | 0x80)) for z in range(1 << 14)]
"""The low 14 bits of a longer varint, both bytes with their continuation bit."""
_LEN: list[bytes] = _LOW[::2][: 1 << 13]
"""The zig-zag varint of a length ``n < 2**13`` (a non-negative long is zig-zagged to ``2n``)."""
LENGTH_PREFIXES: tuple[bytes, ...] = tuple(_LEN)
"""``LENGTH_PREFIXES[n]`` is what precedes ``n < 8192`` bytes of Avro ``bytes`` or ``string``."""


def write_long(n: int) -> bytes:
    """The zig-zag varint of ``n`` as Avro writes an ``int`` or ``long``; OverflowError outside
    the long range, as fastavro raises."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:
        return _LOW[z]
    if z < 0x10000000:
        return _GROUPS[z & 0x3FFF] + _LOW[z >> 14]
    if z < 0x40000000000:
        return _GROUPS[z & 0x3FFF] + _GROUPS[(z >> 14) & 0x3FFF] + _LOW[z >> 28]
    if z < 0x100000000000000:
        return (
            _GROUPS[z & 0x3FFF]
            + _GROUPS[(z >> 14) & 0x3FFF]
            + _GROUPS[(z >> 28) & 0x3FFF]
            + _LOW[z >> 42]
        )
    # Out-of-range ints zig-zag to 2**64 or more, so they all land here.
    if not LONG_MIN <= n <= LONG_MAX:
        raise OverflowError(f"{n} does not fit an Avro long")
    return _varint(z)


def write_int(n: int) -> bytes:
    """:func:`write_long` for an Avro ``int``; Misfit outside its range.

    fastavro writes such an int as a long that readers of an ``int`` refuse: the compiled code
    leaves that to fastavro rather than copy it.
    """
    if not INT_MIN <= n <= INT_MAX:
        raise Misfit(f"{n} does not fit an Avro int")
    return write_long(n)


def uuid_text(value: uuid.UUID) -> bytes:
    """``str(value).encode()``, the way fastavro writes a uuid, in two thirds of the time."""
    digits = b"%032x" % value.int
    return b"-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BOOLEAN = {True: b"\x01", False: b"\x00"}

# What generated code sees besides its own constants.
_RUNTIME: dict[str, Any] = {
    "__builtins__": {
        "len": len,
        "str": str,
        "bytes": bytes,
        "int": int,
        "bool": bool,
        "float": float,
        "list": list,
        "tuple": tuple,
    },
    "_Misfit": Misfit,
    "_long": write_long,
    "_int": write_int,
    "_LEN": _LEN,
    "_BOOLEAN": _BOOLEAN,
    "_EPOCH": _EPOCH,
    "_datetime": datetime,
    "_UUID": uuid.UUID,
    "_uuid_text": uuid_text,
    "_utf8": str.encode,  # unlike value.encode(), refuses anything but a str
    "_double": struct.Struct("<d").pack,
    "_join": b"".join,
    "_END": b"\x00",  # the empty block that ends an array
}


# --- code generation ---------------------------------------------------------------------------


class _Code:
    """One generated function: statements, then one ``b"".join`` of the record's parts.

    Parts are expressions over locals that statements assigned, evaluated by the final join;
    constant runs are merged into one part. A branch or loop collects parts of its own
    (:meth:`collect`) into a local, which is a part of the enclosing code. One tuple joined at
    the end costs a third of what appending each part to a list does.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = dict(_RUNTIME)
        self._lines: list[str] = []
        self._frames: list[list[str]] = [[]]
        self._pending: list[bytes] = [b""]
        self._depth = 1
        self._names = 0

    def name(self, value: Any) -> str:
        """A global of the generated function bound to ``value``."""
        self._names += 1
        name = f"_k{self._names}"
        self.namespace[name] = value
        return name

    def local(self) -> str:
        self._names += 1
        return f"v{self._names}"

    def constant(self, data: bytes) -> None:
        self._pending[-1] += data

    def write(self, expression: str) -> None:
        """Add a part: ``expression``, evaluated when the parts are joined."""
        self._flush()
        self._frames[-1].append(expression)

    def check(self, text: str) -> None:
        """Add a statement: it runs before any part is evaluated."""
        self._lines.append("    " * self._depth + text)

    @contextmanager
    def indented(self, header: str) -> Iterator[None]:
        self.check(header)
        self._depth += 1
        yield
        self._depth -= 1

    @contextmanager
    def collect(self, into: str, *, extend: bool = False) -> Iterator[None]:
        """Parts written inside go to local ``into``: joined into it, or (``extend``) added to
        the list it names."""
        self._frames.append([])
        self._pending.append(b"")
        yield
        self._flush()
        self._pending.pop()
        parts = self._frames.pop()
        if extend:
            joined = f"{into}.append({parts[0]})" if len(parts) == 1 else _extend(into, parts)
            self.check(joined)
        else:
            self.check(f"{into} = {parts[0] if len(parts) == 1 else _joined(parts)}")

    def _flush(self) -> None:
        if self._pending[-1]:
            self._frames[-1].append(self.name(self._pending[-1]))
            self._pending[-1] = b""

    def function(self, name: str) -> Encoder:
        self._flush()
        source = "\n".join(
            [f"def {name}(x):", *self._lines, f"    return {_joined(self._frames[0])}"]
        )
        exec(compile(source, f"<record encoder {name}>", "exec"), self.namespace)
        function: Encoder = self.namespace[name]
        function.source = source  # type: ignore[attr-defined]  # for debugging and tests
        return function


def _joined(parts: list[str]) -> str:
    return f"_join(({', '.join(parts)},))"


def _extend(into: str, parts: list[str]) -> str:
    return f"{into}.extend(({', '.join(parts)},))"


def _nested_model(model: type[BaseModel], attribute: str) -> type[BaseModel] | None:
    """The model class nested in field ``attribute`` (also as ``X | None`` or a sequence of X)."""
    found: set[type[BaseModel]] = set()

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.add(annotation)
        elif typing.get_origin(annotation) is typing.Annotated:
            visit(typing.get_args(annotation)[0])
        else:
            for argument in typing.get_args(annotation):
                visit(argument)

    visit(model.model_fields[attribute].annotation)
    return found.pop() if len(found) == 1 else None


def _kind_of(schema: Any) -> tuple[str, str | None]:
    if isinstance(schema, str):
        return schema, None
    return schema["type"], schema.get("logicalType")


class _Compiler:
    def __init__(self, named: Mapping[str, Any], params: Mapping[str, str]) -> None:
        self._named = named
        self._params = params

    def _resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema in self._named:
            return self._named[schema]
        return schema

    def record(
        self,
        code: _Code,
        schema: Mapping[str, Any],
        layout: RecordLayout,
        obj: str,
        model: type[BaseModel],
    ) -> None:
        names = [field["name"] for field in schema["fields"]]
        extra = set(layout) - set(names)
        if extra:
            raise UnsupportedSchema(f"{schema['name']} has no field {', '.join(sorted(extra))}")
        for field in schema["fields"]:
            source = layout.get(field["name"])
            if source is None:
                if "default" not in field:
                    raise UnsupportedSchema(f"nothing to write in {schema['name']}.{field['name']}")
                source = Const(field["default"])
            self.source(code, field["type"], source, obj, model)

    def source(
        self, code: _Code, schema: Any, source: Source, obj: str, model: type[BaseModel]
    ) -> None:
        if isinstance(source, Const):
            code.constant(self.constant(schema, source.value))
        elif isinstance(source, Param):
            if source.name not in self._params:
                raise UnsupportedSchema(f"no value for parameter {source.name}")
            code.constant(self.constant(schema, self._params[source.name]))
        elif isinstance(source, Attr):
            if source.name not in model.model_fields or not source.name.isidentifier():
                raise UnsupportedSchema(f"{model.__name__} has no field {source.name}")
            var = code.local()
            code.check(f"{var} = {obj}.{source.name}")
            self.value(code, schema, var, _nested_model(model, source.name))
        elif isinstance(source, Nested):
            schema = self._resolve(schema)
            if isinstance(schema, list):
                # A nested record read from the enclosing object is never null.
                if len(schema) != 2 or "null" not in schema:
                    raise UnsupportedSchema(f"union {schema}")
                index = 1 - schema.index("null")
                code.constant(write_long(index))
                schema = self._resolve(schema[index])
            if _kind_of(schema)[0] != "record":
                raise UnsupportedSchema(f"a nested record written as {schema}")
            self.record(code, schema, source.fields, obj, model)
        else:
            raise UnsupportedSchema(f"unknown source {source!r}")

    def constant(self, schema: Any, value: Any) -> bytes:
        """The encoding of ``value``, computed once by code generated the same way."""
        schema = self._resolve(schema)
        if value is None and isinstance(schema, list) and "null" in schema:
            # Without generating the other branch, which may be a record of no known model.
            return write_long(schema.index("null"))
        code = _Code()
        self.value(code, schema, "x", None)
        try:
            return code.function("constant")(value)
        except Exception as exc:
            raise UnsupportedSchema(f"constant {value!r} does not fit {schema}: {exc!r}") from exc

    def value(
        self,
        code: _Code,
        schema: Any,
        var: str,
        model: type[BaseModel] | None,
        in_union: bool = False,
    ) -> None:
        """Write the value held by local ``var``; ``model`` is the class a record value has.

        In a union the checks are exact types: fastavro picks the branch by validating the
        value, so the code may only write what that validation accepts.
        """
        schema = self._resolve(schema)
        if isinstance(schema, list):
            if in_union:
                raise UnsupportedSchema("a union in a union")
            self._union(code, schema, var, model)
            return
        kind, logical = _kind_of(schema)
        if logical == "timestamp-micros" and kind == "long":
            code.check(
                f"if {var}.__class__ is not _datetime or {var}.tzinfo is None: raise _Misfit"
            )
            delta = code.local()
            code.check(f"{delta} = {var} - _EPOCH")
            # fastavro's own arithmetic: exact, where a float timestamp() would round.
            code.write(
                f"_long(({delta}.days * 86400 + {delta}.seconds) * 1000000 + {delta}.microseconds)"
            )
        elif logical == "uuid" and kind == "string":
            code.check(f"if {var}.__class__ is not _UUID: raise _Misfit")
            code.constant(_LEN[36])  # the text of a UUID is always 36 ASCII characters
            code.write(f"_uuid_text({var})")
        elif logical is not None:
            raise UnsupportedSchema(f"logical type {logical} of {kind}")
        elif kind == "null":
            code.check(f"if {var} is not None: raise _Misfit")
        elif kind == "boolean":
            # In a union or not: _BOOLEAN[0] and [1] would write an int fastavro refuses.
            code.check(f"if {var}.__class__ is not bool: raise _Misfit")
            code.write(f"_BOOLEAN[{var}]")
        elif kind in ("int", "long"):
            if in_union:
                code.check(f"if {var}.__class__ is not int: raise _Misfit")
            code.write(f"_{kind}({var})")
        elif kind == "double":
            code.check(f"if {var}.__class__ is not float: raise _Misfit")
            code.write(f"_double({var})")
        elif kind == "string":
            self._length_prefixed(code, f"_utf8({var})")
        elif kind == "bytes":
            code.check(f"if {var}.__class__ is not bytes: raise _Misfit")
            self._length_prefixed(code, var)
        elif kind == "fixed":
            size = int(schema["size"])
            code.check(f"if {var}.__class__ is not bytes or len({var}) != {size}: raise _Misfit")
            code.write(var)
        elif kind == "enum":
            table = {symbol: write_long(i) for i, symbol in enumerate(schema["symbols"])}
            code.write(f"{code.name(table)}[{var}]")
        elif kind == "array" and not in_union:  # fastavro reads a tuple in a union as (name, value)
            code.check(
                f"if {var}.__class__ is not tuple and {var}.__class__ is not list: raise _Misfit"
            )
            array, item = code.local(), code.local()
            with code.indented(f"if {var}:"):
                code.check(f"{array} = [_long(len({var}))]")
                with code.indented(f"for {item} in {var}:"), code.collect(array, extend=True):
                    self.value(code, schema["items"], item, model)
                code.check(f"{array}.append(_END)")
                code.check(f"{array} = _join({array})")
            with code.indented("else:"):
                code.check(f"{array} = _END")
            code.write(array)
        elif kind == "record":
            if model is None:
                raise UnsupportedSchema(f"no model class for record {schema['name']}")
            code.check(f"if {var}.__class__ is not {code.name(model)}: raise _Misfit")
            layout = {name: Attr(name) for name in model.model_fields}
            self.record(code, schema, layout, var, model)
        else:
            raise UnsupportedSchema(f"type {kind}")

    def _length_prefixed(self, code: _Code, expression: str) -> None:
        data, size = code.local(), code.local()
        code.check(f"{data} = {expression}")
        code.check(f"{size} = len({data})")
        code.write(f"_LEN[{size}] if {size} < {len(_LEN)} else _long({size})")
        code.write(data)

    def _union(
        self, code: _Code, schema: list[Any], var: str, model: type[BaseModel] | None
    ) -> None:
        if len(schema) != 2 or "null" not in schema:
            raise UnsupportedSchema(f"union {schema}")
        null = schema.index("null")
        written = code.local()
        with code.indented(f"if {var} is None:"):
            code.check(f"{written} = {code.name(write_long(null))}")
        with code.indented("else:"), code.collect(written):
            code.constant(write_long(1 - null))
            self.value(code, schema[1 - null], var, model, in_union=True)
        code.write(written)


def _owner(kind: type, attribute: str) -> type:
    return next(c for c in kind.__mro__ if attribute in vars(c))


def event_layout(kind: type[AuditEvent]) -> RecordLayout:
    """``kind.record_layout()``, if it can be trusted to describe ``kind.to_record()``: it is
    declared at or below every class that overrides a method ``to_record`` builds on."""
    declared = _owner(kind, "record_layout")
    for method in ("to_record", "head", "body"):
        overridden = _owner(kind, method)
        if not issubclass(declared, overridden):
            raise UnsupportedSchema(
                f"{kind.__name__} overrides {method}() in {overridden.__name__} "
                f"but its record_layout() is {declared.__name__}'s"
            )
    return kind.record_layout()


def compile_event_encoder(
    catalogue: SchemaCatalogue, kind: type[AuditEvent], params: Mapping[str, str]
) -> Encoder:
    """A function writing an event of exactly ``kind`` as ``catalogue.encode`` would, with
    ``params`` (``service_id``, ``producer_id``) in its head.

    Raises UnsupportedSchema when the kind must be left to fastavro. The function raises
    (Misfit or another exception) for an event it does not write; it never writes other bytes.
    """
    schema = catalogue.schema(kind.SCHEMA)
    layout = event_layout(kind)
    code = _Code()
    code.constant(MAGIC + catalogue.fingerprint(kind.SCHEMA))
    _Compiler(schema.get("__named_schemas", {}), params).record(code, schema, layout, "x", kind)
    return code.function(f"encode_{kind.__name__}")


class RecordEncoder:
    """Encodes events for one producer: compiled code per event kind, fastavro where needed.

    Thread-safe. :meth:`encode` returns exactly what ``catalogue.encode(event.SCHEMA,
    event.to_record(service_id=..., producer_id=...))`` returns, and raises EventValidationError
    naming the event when that raises (and :meth:`prepare`'s errors for a kind it has not seen).

    Example::

        encoder = RecordEncoder(default_catalogue(), service_id="chat", producer_id="chat-1")
        encoder.prepare(Generation)  # optional: compiles now rather than at the first event
        data = encoder.encode(generation_event)
    """

    def __init__(self, catalogue: SchemaCatalogue, *, service_id: str, producer_id: str) -> None:
        for what, value in (("service_id", service_id), ("producer_id", producer_id)):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise EventValidationError(f"{what} is not valid Unicode: {exc}") from exc
        self.catalogue = catalogue
        self.service_id = service_id
        self.producer_id = producer_id
        self._compiled: dict[type, Encoder | None] = {}
        self._unsupported: dict[type, str] = {}
        self._compiling = threading.Lock()

    def prepare(self, kind: type) -> Encoder | None:
        """Compile ``kind``'s encoder once; return it, or None if fastavro writes the kind.

        Raises EventValidationError if ``kind`` is not an event kind (an :class:`AuditEvent`
        subclass naming its ``EVENT_TYPE`` and ``SCHEMA``), SchemaError if the catalogue lacks
        its schema.
        """
        try:
            return self._compiled[kind]
        except KeyError:
            pass
        if not (isinstance(kind, type) and issubclass(kind, AuditEvent)):
            raise EventValidationError(f"not an audit event: {kind.__name__}")
        if not isinstance(getattr(kind, "EVENT_TYPE", None), str) or not isinstance(
            getattr(kind, "SCHEMA", None), str
        ):
            raise EventValidationError(f"{kind.__name__} is not an event kind: no EVENT_TYPE")
        self.catalogue.schema(kind.SCHEMA)  # SchemaError now rather than for every event
        with self._compiling:
            if kind not in self._compiled:
                params = {"service_id": self.service_id, "producer_id": self.producer_id}
                try:
                    self._compiled[kind] = compile_event_encoder(self.catalogue, kind, params)
                except (UnsupportedSchema, SchemaError) as exc:
                    self._unsupported[kind] = str(exc)
                    self._compiled[kind] = None
            return self._compiled[kind]

    def unsupported(self, kind: type) -> str | None:
        """Why fastavro writes ``kind`` (None if compiled code does, or not prepared yet)."""
        return self._unsupported.get(kind)

    def encode(self, event: AuditEvent) -> bytes:
        """The single-object encoding of ``event``; EventValidationError if it does not fit."""
        try:
            compiled = self._compiled[event.__class__]
        except KeyError:
            compiled = self.prepare(event.__class__)
        if compiled is not None:
            try:
                return compiled(event)
            except Exception:  # a value compiled code leaves to fastavro
                pass
        return self.encode_general(event)

    def encode_many(self, events: list[AuditEvent]) -> list[bytes]:
        """:meth:`encode` of each event; raises for the first that does not encode."""
        compiled = self._compiled
        try:
            # One comprehension over the compiled functions: the per-call cost of encode()
            # is a tenth of an event's.
            return [compiled[event.__class__](event) for event in events]  # type: ignore[misc]  # a None entry (no compiled encoder) raises TypeError, caught below
        except Exception:  # an unprepared or fastavro-only kind, or a value left to fastavro
            return [self.encode(event) for event in events]

    def encode_general(self, event: AuditEvent) -> bytes:
        """:meth:`encode` through ``to_record`` and fastavro, always."""
        try:
            record = event.to_record(service_id=self.service_id, producer_id=self.producer_id)
            return self.catalogue.encode(event.SCHEMA, record)
        except Exception as exc:
            name = getattr(event, "EVENT_TYPE", type(event).__name__)
            raise EventValidationError(
                f"{name} {getattr(event, 'event_id', '?')}: cannot encode: {exc}"
            ) from exc


__all__ = [
    "LENGTH_PREFIXES",
    "Encoder",
    "Misfit",
    "RecordEncoder",
    "UnsupportedSchema",
    "compile_event_encoder",
    "event_layout",
    "uuid_text",
    "write_int",
    "write_long",
]
