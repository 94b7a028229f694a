"""The JSON Lines form of an event computed straight from its Avro bytes, by Python code
generated once per schema: no decoded record, no JSON encoder, several times cheaper than
:class:`~consumers.bundle.format.event_json.EventRenderer` (decode, convert, encode).

It is an accelerator that may only ever agree with the renderer. :func:`compile_line_renderers`
returns functions ``render(event_bytes, event_id, producer_id) -> bytes | None``; one returns
bytes only when the bytes are a complete current-schema encoding of the family with nothing left
over, their head names ``event_id`` and ``producer_id`` (UTF-8 bytes), and the result is the
renderer's line for them, UTF-8 encoded, provided the result is valid UTF-8 (the caller checks
that on the lines it compares, all at once). Anything it is not sure of (a released schema's
fingerprint, a string that JSON escapes, a non-shortest varint, a value beyond what it renders,
a malformed body) makes it return None or raise: the caller then asks the renderer, which
decides. ``tests/test_bundle_verification_fast.py`` holds it to that on every field kind and on
mutated bytes.

How the renderer writes a value, which the generated code mirrors: strings as they are (JSON
escapes none of the strings accepted here), enums as their symbol, booleans, ints and longs as
JSON numbers, floats by ``repr``, bytes and fixed as lowercase hex, timestamp-micros as ISO 8601
UTC, unions as their branch's value, records as objects in schema order, arrays as lists.

Fields that hold the same value from one event to the next (the model, the service, the
verdict...: :func:`constant_fields` finds them in a sample) are read as one segment: when the
bytes at that place are those of the segment last read, its rendering is taken as it was.
The same bytes always read the same way, so this is exact whatever the sample said.
"""

from __future__ import annotations

import binascii
import json
import re
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aigc_audit.producers.codec import HEADER_SIZE, MAGIC, SchemaCatalogue

Render = Callable[[bytes, bytes, bytes], "bytes | None"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BIG = 1 << 40
"""A string length that runs past any body: the slice comes out short and the final position
check fails, so a long (multi-byte) length needs no branch on the fast variant."""
_NEVER = b"\xff" * 65536
"""What a segment's bytes are before it is first read: no event's bytes start so."""


class Slow(Exception):
    """The bytes hold something the generated code does not render: ask the renderer."""


class _Unsupported(Exception):
    pass


def _long(b: bytes, p: int) -> tuple[int, int]:
    """A zig-zag varint at ``p`` of at most 9 bytes in its shortest form, and the position
    after it; Slow otherwise (the renderer knows what fastavro makes of the rest)."""
    c = b[p]
    n = c & 0x7F
    shift = 7
    p += 1
    while c & 0x80:
        if shift > 56:
            raise Slow
        c = b[p]
        n |= (c & 0x7F) << shift
        shift += 7
        p += 1
    if shift > 7 and not c:
        raise Slow  # a trailing zero group: not the shortest encoding
    return (n >> 1) ^ -(n & 1), p


def _int(b: bytes, p: int) -> tuple[bytes, int]:
    v, p = _long(b, p)
    if not -2147483648 <= v <= 2147483647:
        raise Slow
    return b"%d" % v, p


def _lng(b: bytes, p: int) -> tuple[bytes, int]:
    v, p = _long(b, p)
    return b"%d" % v, p


_SECONDS: dict[int, bytes] = {}
"""The rendering (up to the fraction) of each second met so far: '"YYYY-MM-DDTHH:MM:SS'."""


_DAYS: dict[int, bytes] = {}
"""The rendering of each day met so far: 'YYYY-MM-DD'."""


def _second(second: int) -> bytes:
    day, rest = divmod(second, 86_400)
    text = _DAYS.get(day)
    if text is None:
        try:
            text = (_EPOCH + timedelta(days=day)).isoformat()[:10].encode()
        except OverflowError:
            raise Slow from None
        if len(_DAYS) >= 100_000:
            _DAYS.clear()
        _DAYS[day] = text
    hour, rest = divmod(rest, 3_600)
    if len(_SECONDS) >= 200_000:
        _SECONDS.clear()
    rendered = _SECONDS[second] = b'"%sT%02d:%02d:%02d' % (text, hour, rest // 60, rest % 60)
    return rendered


_NEAR: dict[bytes, tuple[int, bytes]] = {}
"""Bytes 2 to 7 of 8-byte timestamp varints met so far: where the lowest time they allow
falls in its second (microseconds), and that second's rendering."""


def _ts(b: bytes, p: int) -> tuple[bytes, int]:
    """A timestamp-micros long rendered as the renderer does: datetime.isoformat (UTC)."""
    near = _NEAR.get(b[p + 2 : p + 8])
    if near is not None:
        c0 = b[p]
        c1 = b[p + 1]
        if c0 & c1 & 0x80 and not c0 & 1:  # two more 7-bit groups; not a negative time
            micros = near[0] + (((c0 & 0x7F) | (c1 & 0x7F) << 7) >> 1)
            if micros < 1_000_000:
                if micros:
                    return b'%s.%06d+00:00"' % (near[1], micros), p + 8
                return near[1] + b'+00:00"', p + 8
    return _ts_slowly(b, p)


def _ts_slowly(b: bytes, p: int) -> tuple[bytes, int]:
    x = int.from_bytes(b[p : p + 8], "little")
    shape = x & 0x8080808080808080 == 0x0080808080808080 and x >> 56
    if shape:
        # An 8-byte varint: gather its eight 7-bit groups at once.
        x &= 0x7F7F7F7F7F7F7F7F
        x = (x & 0x007F007F007F007F) | ((x & 0x7F007F007F007F00) >> 1)
        x = (x & 0x00003FFF00003FFF) | ((x & 0x3FFF00003FFF0000) >> 2)
        x = (x & 0x000000000FFFFFFF) | ((x & 0x0FFFFFFF00000000) >> 4)
        v = (x >> 1) ^ -(x & 1)
        end = p + 8
    else:
        v, end = _long(b, p)
    second, micros = divmod(v, 1_000_000)
    text = _SECONDS.get(second) or _second(second)
    if shape and not x & 1:
        # Remember where this varint's bytes 2 to 7 start (their lowest time) in the second.
        low = v - ((x & 0x3FFF) >> 1)
        low_second, low_micros = divmod(low, 1_000_000)
        if len(_NEAR) >= 200_000:
            _NEAR.clear()
        _NEAR[b[p + 2 : p + 8]] = (low_micros, _SECONDS.get(low_second) or _second(low_second))
    if micros:
        return b'%s.%06d+00:00"' % (text, micros), end
    return text + b'+00:00"', end


def _slen(b: bytes, p: int) -> tuple[int, int]:
    """(start, end) of a string or bytes value whose length is at ``p``."""
    n, start = _long(b, p)
    if n < 0:
        raise Slow
    return start, start + n


_HALF = tuple((i >> 1) if i < 128 and not i & 1 else _BIG for i in range(256))
_LONG1 = tuple(b"%d" % ((i >> 1) ^ -(i & 1)) if i < 128 else None for i in range(256))
"""A one-byte varint rendered; None when the varint is longer."""
_LONG2 = {
    bytes((lo | 0x80, hi)): b"%d" % (((lo | hi << 7) >> 1) ^ -((lo | hi << 7) & 1))
    for lo in range(128)
    for hi in range(1, 128)
}
"""Two-byte varints (in their shortest form) rendered."""
_BOOL = (b"false", b"true") + (None,) * 254


def _union_numbers(branch: int) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """The union index of ``branch`` followed by a one-byte, or a two-byte, varint: rendered."""
    index = bytes([2 * branch])
    one = {index + bytes([c]): b"%d" % ((c >> 1) ^ -(c & 1)) for c in range(128)}
    two = {index + k: v for k, v in _LONG2.items()}
    return one, two


_UNION_NUMBERS = {branch: _union_numbers(branch) for branch in (0, 1)}
"""For a union of null and an int or long, by the number's branch."""
_BAD = re.compile(rb'[\x00-\x1f"\\]').search
"""What JSON would escape in a string (or what ends one): such strings go to the renderer."""
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "string", "bytes"})


def _json(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode()


class _Generator:
    """Writes the body of ``render``: straight-line code reading the bytes at ``p`` into local
    variables, then one join of the line's pieces (literals and variables, in order)."""

    def __init__(self, long_strings: bool, constant: Collection[str]) -> None:
        self.long_strings = long_strings
        self.constant = constant
        self.code: list[str] = []
        self.env: dict[str, Any] = {}
        self.indent = 2
        self.count = 0
        self.pieces: list[str | bytes] = []
        """Expressions of the current scope's output, literals merged."""
        self.strings: list[str] = []
        """Variables holding raw strings, checked together for what JSON escapes."""
        self.preset: list[str] = []
        """String variables set only in a union branch: empty unless the branch runs."""
        self.cells: list[str] = []
        """Segment caches: variables that live from one call to the next."""
        self.depth = 0
        self.loops = 0

    def var(self, prefix: str = "v") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def line(self, text: str) -> None:
        self.code.append("    " * self.indent + text)

    def const(self, value: Any) -> str:
        name = f"K{len(self.env)}"
        self.env[name] = value
        return name

    def lit(self, data: bytes) -> None:
        if self.pieces and isinstance(self.pieces[-1], bytes):
            self.pieces[-1] += data
        else:
            self.pieces.append(data)

    def dyn(self, expr: str) -> None:
        self.pieces.append(expr)

    @staticmethod
    def joined(pieces: list[str | bytes]) -> str:
        exprs = [repr(p) if isinstance(p, bytes) else p for p in pieces]
        if len(exprs) == 1:
            return exprs[0]
        return f"b''.join(({', '.join(exprs)},))"

    def scoped(self, build: Callable[[], None]) -> str:
        """Run ``build`` with a fresh output; return the expression joining it."""
        outer = self.pieces
        self.pieces = []
        self.depth += 1
        build()
        self.depth -= 1
        inner, self.pieces = self.pieces, outer
        return self.joined(inner)

    # -- values --------------------------------------------------------------------------

    def resolve(self, schema: Any, named: dict[str, Any]) -> Any:
        while isinstance(schema, str) and schema in named:
            schema = named[schema]
        while isinstance(schema, Mapping) and isinstance(schema.get("type"), list | Mapping):
            if schema.get("logicalType") is not None:
                break
            schema = schema["type"]
        return schema

    def value(
        self, schema: Any, named: dict[str, Any], role: str | None = None, path: str | None = None
    ) -> None:
        if isinstance(schema, str):
            if schema in named:
                return self.value(named[schema], named, role, path)
            if schema in _PRIMITIVES:
                return self.primitive(schema, None, role)
            raise _Unsupported(schema)
        if isinstance(schema, list):
            return self.union(schema, named, role)
        if not isinstance(schema, Mapping):
            raise _Unsupported(repr(schema))
        kind = schema.get("type")
        if kind in ("record", "error"):
            named[schema["name"]] = schema
            return self.record(schema, named, role, path)
        if role in ("event_id", "producer_id", "head") and kind != "string":
            raise _Unsupported("a head field that is not a string")
        if kind == "enum":
            named[schema["name"]] = schema
            return self.enum(schema["symbols"])
        if kind == "fixed":
            named[schema["name"]] = schema
            return self.fixed(int(schema["size"]))
        if kind == "array":
            return self.array(schema["items"], named)
        if isinstance(kind, str) and kind in _PRIMITIVES:
            return self.primitive(kind, schema.get("logicalType"), role)
        if isinstance(kind, list | Mapping):
            return self.value(kind, named, role, path)
        raise _Unsupported(repr(schema))

    def record(
        self,
        schema: Mapping[str, Any],
        named: dict[str, Any],
        role: str | None,
        path: str | None,
    ) -> None:
        """A record's object; ``path`` (its fields' names' prefix) when its fields may form
        segments (it is the event or a record field of one, not in a union or an array)."""
        if role in ("event_id", "producer_id"):
            raise _Unsupported("a head field that is not a string")
        opened = role == "top"  # the line's own object, opened by the event_id member
        if not opened:
            self.lit(b"{")
        fields = list(schema["fields"])
        i = 0
        while i < len(fields):
            run: list[Mapping[str, Any]] = []
            while (
                path is not None
                and i + len(run) < len(fields)
                and f"{path}{fields[i + len(run)]['name']}" in self.constant
                and not (role == "top" and fields[i + len(run)]["name"] == "head")
                and not (role == "head" and fields[i + len(run)]["name"] == "event_id")
            ):
                run.append(fields[i + len(run)])
            if len(run) >= 2:
                self.segment(run, i, opened, named, role)
                i += len(run)
                continue
            self.field(fields[i], i, opened, named, role, path)
            i += 1
        self.lit(b"}")

    def field(
        self,
        f: Mapping[str, Any],
        i: int,
        opened: bool,
        named: dict[str, Any],
        role: str | None,
        path: str | None,
    ) -> None:
        if i or opened:
            self.lit(b",")
        self.lit(_json(f["name"]) + b":")
        sub = None
        if role == "top" and f["name"] == "head":
            sub = "head"
        elif role == "head" and f["name"] in ("event_id", "producer_id"):
            sub = f["name"]
        inner = None
        if path is not None and isinstance(self.resolve(f["type"], named), Mapping):
            inner = f"{path}{f['name']}."
        self.value(f["type"], named, sub, inner)

    def segment(
        self,
        run: list[Mapping[str, Any]],
        first: int,
        opened: bool,
        named: dict[str, Any],
        role: str | None,
    ) -> None:
        """Fields read as one: their rendering reused while their bytes stay the same."""
        k = len(self.cells)
        cached, size, out = f"c{k}", f"n{k}", f"r{k}"
        names = [cached, size, out]
        producer = role == "head" and any(f["name"] == "producer_id" for f in run)
        if producer:
            names.append(f"q{k}")
        self.cells.extend(names)
        self.line(f"if b.startswith({cached}, p):")
        self.line(f"    p += {size}")
        if producer:
            self.line(f"    if q{k} != pid: return None")
        self.line("else:")
        self.indent += 1
        start = self.var("s")
        self.line(f"{start} = p")
        outer_pieces, outer_strings, outer_preset = self.pieces, self.strings, self.preset
        self.pieces, self.strings, self.preset = [], [], []
        mark = len(self.code)
        for offset, f in enumerate(run):
            self.field(f, first + offset, opened, named, role, None)
        expr = self.joined(self.pieces)
        strings = self.strings
        self.code[mark:mark] = ["    " * self.indent + f"{v} = b''" for v in self.preset]
        self.pieces, self.strings, self.preset = outer_pieces, outer_strings, outer_preset
        if strings:
            self.line(f"if BAD(b''.join(({', '.join(strings)},))) is not None: return None")
        targets = f"{cached}, {size}, {out}" + (f", q{k}" if producer else "")
        values = f"b[{start}:p], p - {start}, {expr}" + (", pid" if producer else "")
        self.line(f"{targets} = {values}")
        self.indent -= 1
        self.dyn(out)

    def primitive(self, kind: str, logical: str | None, role: str | None) -> None:
        if role in ("event_id", "producer_id") and kind != "string":
            raise _Unsupported("a head field that is not a string")
        v = self.var()
        if kind == "null":
            self.lit(b"null")
        elif kind == "boolean":
            self.line(f"{v} = BOOL[b[p]]; p += 1")
            self.dyn(v)
        elif kind == "long" and logical == "timestamp-micros":
            self.line(f"{v}, p = _ts(b, p)")
            self.dyn(v)
        elif kind in ("int", "long"):
            if logical is not None:
                raise _Unsupported(logical)
            self.line(f"{v} = LONG1[b[p]]")
            self.line(f"if {v} is None:")
            self.line(f"    {v} = LONG2(b[p : p + 2])")
            self.line(f"    if {v} is None: {v}, p = {'_int' if kind == 'int' else '_lng'}(b, p)")
            self.line("    else: p += 2")
            self.line("else: p += 1")
            self.dyn(v)
        elif kind in ("float", "double"):
            if logical is not None:
                raise _Unsupported(logical)
            size, code = (4, "<f") if kind == "float" else (8, "<d")
            unpack = self.const(struct.Struct(code).unpack_from)
            self.line(f"{v}, = {unpack}(b, p); p += {size}")
            self.line(f"if {v} - {v} != 0.0: raise Slow")  # NaN and infinities
            self.line(f"{v} = repr({v}).encode()")
            self.dyn(v)
        elif kind in ("string", "bytes"):
            if logical is not None and not (kind == "string" and logical == "uuid"):
                raise _Unsupported(logical)
            if self.long_strings:
                self.line(f"s, p = _slen(b, p); {v} = b[s:p]")
            else:
                self.line(f"s = p + 1; p = s + HALF[b[p]]; {v} = b[s:p]")
            if kind == "bytes":
                self.lit(b'"')
                self.dyn(f"hexlify({v})")
                self.lit(b'"')
                return
            if self.loops:
                self.line(f"if BAD({v}): raise Slow")
            else:
                self.strings.append(v)
                if self.depth:
                    self.preset.append(v)
            if role == "event_id":
                self.line(f"if {v} != eid: return None")
            elif role == "producer_id":
                self.line(f"if {v} != pid: return None")
            self.lit(b'"')
            self.dyn(v)
            self.lit(b'"')
        else:
            raise _Unsupported(kind)

    def enum(self, symbols: list[str]) -> None:
        rendered = [_json(s) for s in symbols]
        table = tuple(
            rendered[i >> 1] if i < 128 and not i & 1 and i >> 1 < len(rendered) else None
            for i in range(256)
        )
        v = self.var()
        self.line(f"{v} = {self.const(table)}[b[p]]; p += 1")
        self.dyn(v)

    def fixed(self, size: int) -> None:
        v = self.var()
        self.line(f"{v} = hexlify(b[p : p + {size}]); p += {size}")
        self.lit(b'"')
        self.dyn(v)
        self.lit(b'"')

    def union(self, branches: list[Any], named: dict[str, Any], role: str | None) -> None:
        if role in ("event_id", "producer_id", "head"):
            raise _Unsupported("a head field in a union")
        u, out = self.var("u"), self.var()
        if len(branches) == 2 and "null" in branches:
            branch = 1 - branches.index("null")
            other = self.resolve(branches[branch], named)
            if isinstance(other, Mapping) and other.get("logicalType") is None:
                other = other.get("type")
            if other in ("int", "long"):
                # The usual small number: its branch and its value read at once.
                one, two = (self.const(t.get) for t in _UNION_NUMBERS[branch])
                self.line(f"{out} = {two}(b[p : p + 3])")
                self.line(f"if {out} is not None: p += 3")
                self.line("else:")
                self.line(f"    {out} = {one}(b[p : p + 2])")
                self.line(f"    if {out} is not None: p += 2")
                self.line("    else:")
                self.indent += 2
                self.union_general(u, out, branches, named)
                self.indent -= 2
                self.dyn(out)
                return
        self.union_general(u, out, branches, named)
        self.dyn(out)

    def union_general(self, u: str, out: str, branches: list[Any], named: dict[str, Any]) -> None:
        self.line(f"{u} = b[p]; p += 1")
        first = True
        nulls = [i for i, branch in enumerate(branches) if branch == "null"]
        for i, branch in enumerate(branches):
            if branch == "null":
                continue
            self.line(f"{'if' if first else 'elif'} {u} == {2 * i}:")
            first = False
            self.indent += 1

            def build(branch: Any = branch) -> None:
                self.value(branch, named)

            expr = self.scoped(build)
            self.line(f"{out} = {expr}")
            self.indent -= 1
        # null (when the union has it), otherwise None: a join of None raises.
        table = self.const(
            tuple(b"null" if nulls and j == 2 * nulls[0] else None for j in range(256))
        )
        if first:
            self.line(f"{out} = {table}[{u}]")
        else:
            self.line(f"else: {out} = {table}[{u}]")

    def array(self, items: Any, named: dict[str, Any]) -> None:
        out, count = self.var("a"), self.var("c")
        self.line(f"{out} = []")
        self.line("while True:")
        self.indent += 1
        self.line(f"{count}, p = _long(b, p)")
        self.line(f"if not {count}: break")
        self.line(f"if {count} < 0: raise Slow")  # blocks with byte sizes: the renderer's
        self.line(f"for _ in range({count}):")
        self.indent += 1
        self.loops += 1
        expr = self.scoped(lambda: self.value(items, named))
        self.loops -= 1
        self.line(f"{out}.append({expr})")
        self.indent -= 2
        self.lit(b"[")
        self.dyn(f"b','.join({out})")
        self.lit(b"]")


def _source(
    schema: Mapping[str, Any], long_strings: bool, constant: Collection[str] = ()
) -> tuple[str, dict[str, Any]]:
    gen = _Generator(long_strings, constant)
    gen.lit(b'{"event_id":"')
    gen.dyn("eid")
    gen.lit(b'"')
    gen.record(schema, {schema["name"]: schema}, "top", "")
    strings = ", ".join(["eid", *gen.strings])
    cells = gen.cells
    src = "\n".join(
        [
            "def make():",
            *[f"    {c} = {'NEVER' if c.startswith('c') else 'None'}" for c in cells],
            "    def render(b, eid, pid):",
            *([f"        nonlocal {', '.join(cells)}"] if cells else []),
            "        if not b.startswith(HEADER): return None",
            f"        p = {HEADER_SIZE}",
            *[f"        {v} = b''" for v in gen.preset],
            *gen.code,
            "        if p != len(b): return None",
            f"        if BAD(b''.join(({strings},))) is not None: return None",
            f"        return {gen.joined(gen.pieces)}",
            "    return render",
            "",
        ]
    )
    return src, gen.env


def compile_line_renderers(
    catalogue: SchemaCatalogue,
    fullname: str,
    constant: Collection[str] = (),
    fingerprint: bytes | None = None,
) -> tuple[Render, ...]:
    """The generated renderers of ``fullname``, fastest first (the first takes only strings
    shorter than 64 bytes), reading the ``constant`` fields (dotted paths, from
    :func:`constant_fields`) as segments. They read bytes of the current schema or, given its
    ``fingerprint``, of a released version of it that reads into the current one field for
    field (say, an enum since given more symbols): bytes of another version are the
    renderer's. Empty when the schema holds something they do not render (a map, a logical
    type other than uuid and timestamp-micros, recursion), or no head with a string event_id
    and producer_id."""
    from aigc_audit.consumers.bundle.format.event_json import EventRenderer, _is_recursive

    try:
        schema = catalogue.schema(fullname)
        current = catalogue.fingerprint(fullname)
    except Exception:
        return ()
    raw, _ = EventRenderer(catalogue)._plan(fullname)
    if not raw or _is_recursive(schema, set(), set()):
        return ()
    if fingerprint is not None and bytes(fingerprint) != current:
        written = _released(catalogue, fullname, bytes(fingerprint))
        if written is None:
            return ()
        schema, current = written, bytes(fingerprint)
    fields = {f["name"]: f for f in schema.get("fields", ())}
    if "event_id" in fields or "head" not in fields:
        return ()
    renderers = []
    for long_strings in (False, True):
        try:
            src, env = _source(schema, long_strings, constant)
        except (_Unsupported, KeyError, TypeError, ValueError):
            return ()
        if "!= eid" not in src or "!= pid" not in src:
            return ()  # the head has no string event_id and producer_id
        namespace = dict(
            env,
            HEADER=MAGIC + current,
            NEVER=_NEVER,
            Slow=Slow,
            BOOL=_BOOL,
            LONG1=_LONG1,
            LONG2=_LONG2.get,
            HALF=_HALF,
            BAD=_BAD,
            hexlify=binascii.hexlify,
            _ts=_ts,
            _int=_int,
            _lng=_lng,
            _long=_long,
            _slen=_slen,
        )
        exec(compile(src, f"<line renderer of {fullname}>", "exec"), namespace)
        renderers.append(namespace["make"]())
    return tuple(renderers)


def _released(catalogue: SchemaCatalogue, fullname: str, fingerprint: bytes) -> Any:
    """The released schema written under ``fingerprint``, when bytes of it read into
    ``fullname``'s current schema field for field, as they were written: the same records (by
    name, fields in the same order), unions, fixed sizes, types and logical types, and enums
    whose every symbol the current enum has. (Then its rendering is the current one's.)"""
    try:
        # The catalogue's own resolution of the fingerprint (a released writer, its reader).
        writer, reader = catalogue._resolve(fingerprint)
    except Exception:
        return None
    if reader.fullname != fullname or writer is reader:
        return None
    if not _alike(writer.parsed, reader.parsed, {}, {}):
        return None
    return writer.parsed


def _alike(w: Any, r: Any, wnamed: dict[str, Any], rnamed: dict[str, Any]) -> bool:
    if isinstance(w, str) and w in wnamed:
        w = wnamed[w]
    if isinstance(r, str) and r in rnamed:
        r = rnamed[r]
    if isinstance(w, str) or isinstance(r, str):
        return isinstance(w, str) and w == r and w in _PRIMITIVES
    if isinstance(w, list) or isinstance(r, list):
        return (
            isinstance(w, list)
            and isinstance(r, list)
            and len(w) == len(r)
            and all(_alike(a, b, wnamed, rnamed) for a, b in zip(w, r, strict=True))
        )
    if not (isinstance(w, Mapping) and isinstance(r, Mapping)):
        return False
    kind = w.get("type")
    if kind != r.get("type") and not (isinstance(kind, list | Mapping)):
        return False
    if w.get("logicalType") != r.get("logicalType"):
        return False
    if kind in ("record", "error", "enum", "fixed"):
        if w.get("name") != r.get("name"):
            return False
        wnamed[w["name"]], rnamed[r["name"]] = w, r
    if kind in ("record", "error"):
        wf, rf = w["fields"], r["fields"]
        return len(wf) == len(rf) and all(
            a["name"] == b["name"] and _alike(a["type"], b["type"], wnamed, rnamed)
            for a, b in zip(wf, rf, strict=True)
        )
    if kind == "enum":
        return set(w["symbols"]) <= set(r["symbols"])
    if kind == "fixed":
        return w.get("size") == r.get("size")
    if kind == "array":
        return _alike(w["items"], r["items"], wnamed, rnamed)
    if kind == "map":
        return _alike(w["values"], r["values"], wnamed, rnamed)
    if isinstance(kind, list | Mapping):
        return _alike(kind, r.get("type"), wnamed, rnamed)
    return kind in _PRIMITIVES


def constant_fields(
    catalogue: SchemaCatalogue, fullname: str, samples: Sequence[bytes]
) -> frozenset[str]:
    """The fields (dotted paths through records) that hold one value in every sample (of the
    first sample's schema version): those worth reading as segments."""
    records = []
    version = bytes(samples[0][:HEADER_SIZE]) if samples else b""
    for data in samples:
        if not data.startswith(version):
            continue
        try:
            name, record = catalogue.decode(data, logical_types=False)
        except Exception:  # a sample that does not decode says nothing
            continue
        if name == fullname:
            records.append(record)
    if len(records) < 2:
        return frozenset()
    found: set[str] = set()

    def walk(values: list[dict[str, Any]], prefix: str) -> None:
        for key in values[0]:
            column = [v.get(key) for v in values]
            if all(c == column[0] for c in column[1:]):
                found.add(prefix + key)
            elif all(isinstance(c, dict) for c in column):
                # every entry is a dict (checked just above), which mypy cannot see
                walk(cast("list[dict[str, Any]]", column), f"{prefix}{key}.")

    walk(records, "")
    return frozenset(found)
