"""Hypothesis strategies for records of any schema of the catalogue, edge values included, and
for byte-level damage to their encodings: what the differential tests feed a fast path and its
exact twin."""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from typing import Any

from fastavro import schemaless_writer
from hypothesis import strategies as st

from aigc_audit.producers.codec import MAGIC, SchemaCatalogue
from aigc_audit.producers.events import FAMILY_SCHEMAS

FAMILIES = tuple(FAMILY_SCHEMAS)

INT_EDGES = (0, 1, -1, 63, 64, -64, -65, 127, 128, 2**31 - 1, -(2**31), 8191, 8192)
LONG_EDGES = (*INT_EDGES, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, -(2**63), 2**40)
MICROS_EDGES = (
    0,
    -1,
    1,
    999_999,
    1_000_000,
    -1_000_001,
    1_790_000_000_000_000,  # 2026
    253_402_300_799_999_999,  # 9999-12-31T23:59:59.999999
    253_402_300_800_000_000,  # one past: no datetime holds it
    -62_135_596_800_000_000,  # 0001-01-01
    -62_135_596_800_000_001,
    2**63 - 1,
    -(2**63),
)

texts = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80),  # any code point
    st.sampled_from(
        [
            "",
            "a",
            'say "hi"',
            "back\\slash",
            "tab\there",
            "nl\n",
            "\x00",
            "\x7f",
            "长" * 30,
            "😀 ünïcode ✓",
            "\u2028\u2029",
            "\ufeff",
            "r" * 70,
            "é" * 40,
        ]
    ),
)
uuids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.sampled_from(["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"]),
)
plain_texts = st.text(alphabet="abcxyzXYZ0189-_./: 长ü😀", max_size=20)
plain_doubles = st.floats(-1e6, 1e6, allow_nan=False)
doubles = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e308, 5e-324, 0.1]),
)


def _resolve(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in named:
        return named[schema]
    return schema


def values(
    schema: Any, named: dict[str, Any] | None = None, wild: bool | str = True
) -> st.SearchStrategy[Any]:
    """Any value of the (parsed) Avro ``schema``: edge values likely when ``wild``, else the
    values real traffic holds (short text, times of this century, small counts); with
    ``wild="numbers"``, edge numbers and times in tame text."""
    named = {} if named is None else named
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        return st.one_of([values(b, named, wild) for b in schema])
    if isinstance(schema, str):
        return _primitive(schema, None, wild)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if kind in ("record", "error"):
        named[schema["name"]] = schema
        fields = {f["name"]: values(f["type"], named, wild) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        named[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        named[schema["name"]] = schema
        size = schema["size"]
        return st.binary(min_size=size, max_size=size)
    if kind == "array":
        return st.lists(values(schema["items"], named, wild), max_size=3)
    if kind == "map":
        return st.dictionaries(texts, values(schema["values"], named, wild), max_size=3)
    if isinstance(kind, list | Mapping):
        return values(kind, named, wild)
    return _primitive(kind, logical, wild)


def _primitive(kind: str, logical: str | None, wild: bool | str = True) -> st.SearchStrategy[Any]:
    if wild == "numbers" and kind == "string":
        wild = False  # tame text, so that the edge numbers reach the fast paths
    if not wild:
        tame = {
            "int": st.integers(0, 60_000),
            "long": st.integers(0, 2**40),
            "double": plain_doubles,
            "float": plain_doubles,
            "string": st.uuids().map(str) if logical == "uuid" else plain_texts,
        }
        if kind == "long" and logical == "timestamp-micros":
            return st.integers(1_600_000_000_000_000, 1_900_000_000_000_000)
        if kind in tame:
            return tame[kind]
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "int":
        return st.one_of(st.sampled_from(INT_EDGES), st.integers(-(2**31), 2**31 - 1))
    if kind == "long":
        if logical == "timestamp-micros":
            return st.one_of(
                st.sampled_from(MICROS_EDGES),
                st.integers(-(2**50), 2**55),
                st.integers(1_700_000_000_000_000, 1_800_000_000_000_000),
            )
        return st.one_of(st.sampled_from(LONG_EDGES), st.integers(-(2**63), 2**63 - 1))
    if kind in ("float", "double"):
        return doubles
    if kind == "string":
        return uuids if logical == "uuid" else texts
    if kind == "bytes":
        return st.binary(max_size=40)
    raise ValueError(kind)


def records(catalogue: SchemaCatalogue, fullname: str) -> st.SearchStrategy[dict[str, Any]]:
    """Records of ``fullname``'s current schema (logical values as their underlying type),
    a third as real traffic, a third with edge values, a third with edge numbers only."""
    schema = catalogue.schema(fullname)
    return st.one_of(
        values(schema, wild=False), values(schema, wild=True), values(schema, wild="numbers")
    )


def encode(catalogue: SchemaCatalogue, fullname: str, record: Mapping[str, Any]) -> bytes:
    """The single-object encoding of ``record``, written by fastavro (no validation)."""
    buf = io.BytesIO()
    buf.write(MAGIC + catalogue.fingerprint(fullname))
    schemaless_writer(buf, catalogue.schema(fullname), record)
    return buf.getvalue()


@st.composite
def damaged(draw: st.DrawFn, data: bytes, start: int = 0) -> bytes:
    """``data`` unchanged, or with one of: a byte flipped or set, a byte dropped or added,
    cut short, a run duplicated."""
    kind = draw(st.sampled_from(["same", "flip", "set", "drop", "insert", "cut", "dup"]))
    out = bytearray(data)
    if kind == "same" or len(out) <= start:
        return bytes(out)
    at = draw(st.integers(start, len(out) - 1))
    if kind == "flip":
        out[at] ^= 1 << draw(st.integers(0, 7))
    elif kind == "set":
        out[at] = draw(st.integers(0, 255))
    elif kind == "drop":
        del out[at]
    elif kind == "insert":
        out.insert(at, draw(st.integers(0, 255)))
    elif kind == "cut":
        del out[at:]
    else:
        out[at:at] = out[at : at + draw(st.integers(1, 8))]
    return bytes(out)


def fresh_uuid(n: int) -> str:
    """A UUID text unique to ``n`` (deterministic, so hypothesis replays the same bytes)."""
    return str(uuid.UUID(int=(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)))
