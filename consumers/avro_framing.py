"""The shape of an Avro body, checked without decoding it: where each value starts and ends.

The engine that decodes generation events (:mod:`consumers.generation_ingest`) reads a union
index other than 0 or 1 as null, where fastavro refuses it; a body the engine would read is not
always one fastavro would. This walks a body the way a decoder would, compiled once per schema
into straight-line Python, and checks every structural choice fastavro checks: union and enum
indexes in range, booleans 0 or 1, lengths that fit, varints that end, and the body ending
exactly at its last byte. It builds no values: it only moves a position, at a third of the cost
of decoding. What it leaves to the engine: the values themselves, and UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class FramingError(ValueError):
    """The bytes are not a body of the schema."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint of at most 10 bytes at ``pos``: (value, next position)."""
    shift = 0
    raw = 0
    for _ in range(10):
        byte = data[pos]  # IndexError past the end: the caller's FramingError
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
    raise FramingError("a varint longer than 10 bytes")


class _Compiler:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.named: dict[str, Any] = {}
        self.depth = 1

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def varint(self, target: str) -> None:
        # Most varints are one byte: read it inline, call out only for longer ones.
        self.emit("x = d[p]")
        self.emit("if x < 128:")
        self.emit(f"    {target} = (x >> 1) ^ -(x & 1); p += 1")
        self.emit("else:")
        self.emit(f"    {target}, p = _varint(d, p)")

    def skip_varint(self) -> None:
        # Its value is not needed: step over the bytes with the continuation bit, inline.
        self.emit("q = p")
        self.emit("while d[p] > 127: p += 1")
        self.emit("p += 1")
        self.emit("if p - q > 10: raise FramingError('a varint longer than 10 bytes')")

    def length(self) -> None:
        # A one-byte length is even (zigzag: odd would be negative) and is half the byte.
        self.emit("x = d[p]")
        self.emit("if x < 128:")
        self.emit("    if x & 1: raise FramingError('a negative length')")
        self.emit("    p += 1 + (x >> 1)")
        self.emit("else:")
        self.emit("    n, p = _varint(d, p)")
        self.emit("    if n < 0: raise FramingError('a negative length')")
        self.emit("    p += n")

    def value(self, schema: Any) -> None:
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, list):
            self.union(schema)
            return
        kind = schema if isinstance(schema, str) else schema["type"]
        if isinstance(schema, Mapping) and "name" in schema:
            self.named.setdefault(schema["name"], schema)
        if kind == "null":
            return
        if kind == "boolean":
            self.emit("if d[p] > 1: raise FramingError('a boolean that is not 0 or 1')")
            self.emit("p += 1")
        elif kind in ("int", "long"):
            self.skip_varint()
        elif kind in ("string", "bytes"):
            self.length()
        elif kind == "float":
            self.emit("p += 4")
        elif kind == "double":
            self.emit("p += 8")
        elif kind == "fixed":
            self.emit(f"p += {int(schema['size'])}")
        elif kind == "enum":
            self.varint("n")
            count = len(schema["symbols"])
            self.emit(f"if not 0 <= n < {count}: raise FramingError('an enum index out of range')")
        elif kind == "record":
            for field in schema["fields"]:
                self.value(field["type"])
        else:  # arrays and maps: generations have none; write their walk when one appears
            raise FramingError(f"no framing for an Avro {kind}")

    def union(self, branches: list[Any]) -> None:
        self.varint("n")
        self.emit(
            f"if not 0 <= n < {len(branches)}: raise FramingError('a union index out of range')"
        )
        for index, branch in enumerate(branches):
            self.emit(f"{'if' if index == 0 else 'elif'} n == {index}:")
            self.depth += 1
            start = len(self.lines)
            self.value(branch)
            if len(self.lines) == start:
                self.emit("pass")
            self.depth -= 1


def compile_framing(schema: Mapping[str, Any]) -> Callable[[bytes, int], None]:
    """A check that ``data[start:]`` is exactly one body of ``schema`` (Parsing Canonical Form,
    named types inlined at first use); raises FramingError when it is not.

    Example::

        check = compile_framing(json.loads(catalogue.canonical_form("aigc.audit.Generation")))
        check(event_bytes, 10)  # after the single-object header
    """
    compiler = _Compiler()
    compiler.value(schema)
    body = "\n".join(compiler.lines)
    source = (
        "def check(d, p):\n"
        "    try:\n"
        + "\n".join("    " + line for line in body.splitlines())
        + "\n    except IndexError:\n"
        "        raise FramingError('the body ends inside a value') from None\n"
        "    if p != len(d):\n"
        "        raise FramingError(f'{len(d) - p} bytes after the body' if p < len(d) "
        "else 'the body ends inside a value')\n"
    )
    scope: dict[str, Any] = {"FramingError": FramingError, "_varint": _varint}
    exec(compile(source, "<avro framing>", "exec"), scope)
    return scope["check"]
