"""Shared set-up of the decoder fuzz tests (tests/security/test_fuzz_*.py).

Hypothesis profiles:

- ``ci`` (the default): a fixed, derandomized set of examples per property, sized so that
  every fuzz file together runs well under 90 s on two cores;
- ``soak``: many more random (not derandomized) examples, for a long run by hand:
  ``HYPOTHESIS_PROFILE=soak .venv/bin/python -m pytest tests/security -k fuzz``.

Tests that are slow per example (a bundle verification, a materialiser poll) scale their own
``max_examples`` from ``settings.default.max_examples`` so the soak profile scales them too.

A hang must fail the run, not stall CI: hypothesis's ``deadline`` only judges an example that
returns, and a loop inside a C extension (fastavro, chDB) holds the GIL, so no Python-level
timer could interrupt it. faulthandler's watchdog is a C thread that needs no GIL: if one test
takes longer than ``HARD_TIMEOUT_S`` it prints every thread's stack and exits the process with
an error.
"""

from __future__ import annotations

import faulthandler
import os
import struct
import sys
import time
import tracemalloc
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    deadline=1000,  # ms; a decoder takes microseconds, so only a real slowness trips it
    print_blob=True,
)
settings.register_profile(
    "soak",
    max_examples=20_000,
    derandomize=False,
    deadline=2000,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

HARD_TIMEOUT_S = 600 if settings.default.max_examples > 1000 else 120
"""Longest any one fuzz test may run before the watchdog ends the process."""


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(HARD_TIMEOUT_S, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


T = TypeVar("T")


@dataclass(frozen=True)
class Bounded:
    """What one bounded call did: its result or exception, its time and its peak allocation."""

    result: Any
    error: BaseException | None
    seconds: float
    peak_bytes: int


def bounded_call(fn: Callable[[], T]) -> Bounded:
    """Run ``fn`` once, measuring wall time and the peak of Python allocations during it.

    tracemalloc sees every allocation made through Python's allocators, which is where a bytes,
    str or list object of a bomb's declared size would be made (fastavro builds Python objects).
    """
    tracemalloc.start()
    start = time.perf_counter()
    try:
        try:
            return_value: Any = fn()
            error: BaseException | None = None
        except Exception as exc:  # the caller judges which types are allowed
            return_value, error = None, exc
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return Bounded(return_value, error, seconds, peak)


@pytest.fixture(scope="session")
def bounded() -> Callable[[Callable[[], Any]], Bounded]:
    return bounded_call


# --- Avro, independently of fastavro: a strict reference reader and a hostile writer --------
#
# Both work on a schema's Parsing Canonical Form (JSON, named types defined at first use, no
# logical types: the values fastavro returns with logical_types=False).

Schema = Any


class Invalid(Exception):
    """Bytes the Avro specification does not allow, by the strict reader's judgement."""


INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_PRIMS = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def zigzag(n: int) -> bytes:
    """The Avro varint of any integer, even one outside 64 bits (a hostile writer's need)."""
    z = (n << 1) ^ (n >> 70) if n < 0 else n << 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def named_types(schema: Schema, names: dict[str, Schema] | None = None) -> dict[str, Schema]:
    """Every named type of a canonical-form schema, by fullname."""
    names = {} if names is None else names
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, names)
    elif isinstance(schema, dict):
        if "name" in schema:
            names[schema["name"]] = schema
        for field in schema.get("fields", ()):
            named_types(field["type"], names)
        for key in ("items", "values"):
            if key in schema:
                named_types(schema[key], names)
    return names


class StrictReader:
    """Reads Avro binary exactly as the specification allows, nothing more: an int in 32 bits,
    a long in at most 10 bytes and 64 bits, a boolean byte 0 or 1, union and enum indexes in
    range, lengths non-negative and within the data, strings UTF-8."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.names = named_types(schema)

    def read(self, data: bytes) -> Any:
        self.data, self.pos = data, 0
        value = self._value(self.schema)
        if self.pos != len(data):
            raise Invalid(f"{len(data) - self.pos} trailing bytes")
        return value

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise Invalid(f"{n} bytes wanted at {self.pos}, {len(self.data) - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def _long(self) -> int:
        z, shift = 0, 0
        for i in range(10):
            b = self._take(1)[0]
            if i == 9 and b > 1:
                raise Invalid("varint beyond 64 bits")
            z |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return (z >> 1) ^ -(z & 1)
        raise Invalid("varint longer than 10 bytes")

    def _value(self, schema: Schema) -> Any:
        if isinstance(schema, str) and schema not in _PRIMS:
            schema = self.names[schema]
        if isinstance(schema, list):
            index = self._long()
            if not 0 <= index < len(schema):
                raise Invalid(f"union index {index} of {len(schema)} branches")
            return self._value(schema[index])
        kind = schema if isinstance(schema, str) else schema["type"]
        if kind == "null":
            return None
        if kind == "boolean":
            b = self._take(1)[0]
            if b > 1:
                raise Invalid(f"boolean byte {b}")
            return b == 1
        if kind in ("int", "long"):
            n = self._long()
            if kind == "int" and not INT_MIN <= n <= INT_MAX:
                raise Invalid(f"int {n} out of 32 bits")
            return n
        if kind == "float":
            return struct.unpack("<f", self._take(4))[0]
        if kind == "double":
            return struct.unpack("<d", self._take(8))[0]
        if kind == "bytes":
            return self._take(self._long())
        if kind == "string":
            try:
                return self._take(self._long()).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Invalid(f"string not UTF-8: {exc}") from None
        if kind == "fixed":
            return self._take(schema["size"])
        if kind == "enum":
            index = self._long()
            if not 0 <= index < len(schema["symbols"]):
                raise Invalid(f"enum index {index} of {len(schema['symbols'])} symbols")
            return schema["symbols"][index]
        if kind == "record":
            return {f["name"]: self._value(f["type"]) for f in schema["fields"]}
        if kind in ("array", "map"):
            items: list[Any] = []
            entries: dict[str, Any] = {}
            while True:
                count = self._long()
                if count == 0:
                    return items if kind == "array" else entries
                size = None
                if count < 0:
                    count = -count
                    size = self._long()
                    if size < 0:
                        raise Invalid("negative block size")
                if count > len(self.data) - self.pos:  # every item of ours takes a byte or more
                    raise Invalid(f"block of {count} items in {len(self.data) - self.pos} bytes")
                start = self.pos
                for _ in range(count):
                    if kind == "array":
                        items.append(self._value(schema["items"]))
                    else:
                        key = self._value("string")
                        entries[key] = self._value(schema["values"])
                if size is not None and size != self.pos - start:
                    raise Invalid(f"block size {size}, its items take {self.pos - start}")
        raise AssertionError(f"unknown type {schema!r}")


def same_value(a: Any, b: Any) -> bool:
    """Equality of decoded values, a NaN equal to itself (floats come back bit for bit)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _branch(schema: list[Schema], value: Any) -> int:
    """The union branch a value of ours belongs to: our unions are ["null", X]."""
    if value is None:
        return schema.index("null")
    return next(i for i, b in enumerate(schema) if b != "null")


BOMBS = (2**62, 2**40, 2**31, -1, -(2**40), -(2**62), 2**63 - 1, -(2**63), 2**64, 2**70)
"""Declared lengths, counts and indexes no honest writer writes: memory and hang bombs."""


def _encode_value(schema: Schema, names: dict[str, Schema], value: Any) -> bytes:
    """Plain Avro binary of a value of ours (what a correct writer writes)."""
    if isinstance(schema, str) and schema not in _PRIMS:
        schema = names[schema]
    if isinstance(schema, list):
        i = _branch(schema, value)
        return zigzag(i) + _encode_value(schema[i], names, value)
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind == "null":
        return b""
    if kind == "boolean":
        return b"\x01" if value else b"\x00"
    if kind in ("int", "long"):
        return zigzag(value)
    if kind == "float":
        return struct.pack("<f", value)
    if kind == "double":
        return struct.pack("<d", value)
    if kind == "bytes":
        return zigzag(len(value)) + value
    if kind == "string":
        raw = value.encode("utf-8")
        return zigzag(len(raw)) + raw
    if kind == "fixed":
        return bytes(value)
    if kind == "enum":
        return zigzag(schema["symbols"].index(value))
    if kind == "record":
        return b"".join(_encode_value(f["type"], names, value[f["name"]]) for f in schema["fields"])
    if kind == "array":
        if not value:
            return b"\x00"
        items = b"".join(_encode_value(schema["items"], names, v) for v in value)
        return zigzag(len(value)) + items + b"\x00"
    raise AssertionError(f"unknown type {schema!r}")


def encode_value(schema: Schema, value: Any) -> bytes:
    return _encode_value(schema, named_types(schema), value)


@st.composite
def hostile_encoding(draw: st.DrawFn, schema: Schema, value: Any, rate: int = 12) -> bytes:
    """The encoding of ``value`` (a valid record) with hostile tokens put in at random nodes,
    about one node in ``rate``: a lie in every place a decoder trusts a number it read."""
    names = named_types(schema)

    def node(s: Schema, v: Any) -> bytes:
        if isinstance(s, str) and s not in _PRIMS:
            s = names[s]
        kind = "union" if isinstance(s, list) else s if isinstance(s, str) else s["type"]
        if draw(st.integers(0, rate - 1)) != 0:  # this node honest, its children may lie
            if kind == "union":
                i = _branch(s, v)
                return zigzag(i) + node(s[i], v)
            if kind == "record":
                return b"".join(node(f["type"], v[f["name"]]) for f in s["fields"])
            if kind == "array" and v:
                return zigzag(len(v)) + b"".join(node(s["items"], x) for x in v) + b"\x00"
            return _encode_value(s, names, v)
        bomb = draw(st.sampled_from(BOMBS))
        lie = draw(st.integers(0, 3))
        if lie == 0:  # raw garbage where this value goes
            return draw(st.binary(max_size=12))
        if kind == "union":
            index = bomb if lie == 1 else draw(st.sampled_from([-1, -2, len(s), len(s) + 1]))
            # then the value's own branch, or bytes that belong to none
            rest = node(s[_branch(s, v)], v) if draw(st.booleans()) else draw(st.binary(max_size=8))
            return zigzag(index) + rest
        if kind == "enum":
            n = len(s["symbols"])
            return zigzag(bomb if lie == 1 else draw(st.sampled_from([-1, -n, n, n + 7])))
        if kind == "int":
            return zigzag(draw(st.sampled_from([INT_MAX + 1, INT_MIN - 1, 2**40, LONG_MIN])))
        if kind == "long":
            if lie == 1:  # a varint running past 10 bytes, or past 64 bits in its 10th
                return b"\xff" * draw(st.integers(9, 30)) + draw(
                    st.sampled_from([b"\x01", b"\x7f"])
                )
            return zigzag(draw(st.sampled_from([LONG_MAX + 1, LONG_MIN - 1, 2**70])))
        if kind == "boolean":
            return bytes([draw(st.integers(2, 255))])
        if kind in ("string", "bytes"):
            if lie == 1:  # a length bomb, then a little data
                return zigzag(bomb) + draw(st.binary(max_size=6))
            if kind == "string":  # the right length, bytes that are not UTF-8
                bad = draw(
                    st.sampled_from(
                        [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x80b"]
                    )
                )
                return zigzag(len(bad)) + bad
            return zigzag(-draw(st.integers(1, 5))) + draw(st.binary(max_size=6))
        if kind == "array":
            if lie == 1:
                return zigzag(bomb) + draw(st.binary(max_size=6))
            count = draw(st.integers(1, 3))
            size = draw(st.sampled_from([-1, 0, 2**62, 3]))
            items = b"".join(_encode_value(s["items"], names, x) for x in (v or [""])[:count])
            return zigzag(-count) + zigzag(size) + items + b"\x00"
        if kind == "fixed":
            return draw(st.binary(max_size=s["size"] - 1))
        return draw(st.binary(min_size=1, max_size=8))  # a record or null: bytes that lie

    return node(schema, value)


@st.composite
def mutated(draw: st.DrawFn, data: bytes, keep: int = 0) -> bytes:
    """``data`` with one to four byte-level mutations (flip, set, insert, delete, truncate,
    duplicate a slice) anywhere after its first ``keep`` bytes."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 5))
        at = draw(st.integers(keep, max(keep, len(out))))
        if op == 0 and at < len(out):
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1 and at < len(out):
            out[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x02]))
        elif op == 2:
            out[at:at] = draw(st.binary(min_size=1, max_size=10))
        elif op == 3:
            del out[at : at + draw(st.integers(1, 8))]
        elif op == 4:
            del out[at:]
        else:
            out[at:at] = out[at : at + draw(st.integers(1, 16))]
    return bytes(out)


class _Kit(types.SimpleNamespace):
    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example
        return "kit"


@pytest.fixture(scope="session")
def kit() -> types.SimpleNamespace:
    """The Avro toolkit above, for the fuzz files (a conftest is not importable by name: pytest
    imports every conftest.py of the tree as one module name, the last one loaded wins)."""
    return _Kit(
        Invalid=Invalid,
        StrictReader=StrictReader,
        same_value=same_value,
        zigzag=zigzag,
        encode_value=encode_value,
        hostile_encoding=hostile_encoding,
        mutated=mutated,
        BOMBS=BOMBS,
    )
