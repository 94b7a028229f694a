"""Check 6 on the fast path: a run of an events file's Avro blocks (a *chunk*) checked at once,
in this process or in a worker process, without a Python object per event beyond its bytes.

A chunk comes out *clean* only when the exact check (``event_checks``) would find nothing wrong
with any of its events: every record reads; each event's batch is in ``batches.json``, its leaf
inside the batch and not exported twice in the chunk; its bytes lead with its proof to the
batch's signed root (for a batch whose every event is in the chunk: its whole tree is rebuilt
from the events and every proof must be the tree's audit path); its bytes decode as the family
with their head naming the event and its producer; and its JSON Lines line is the rendering of
the bytes. The chunk's leaves are returned so that the caller can tell a leaf exported twice
across chunks. Anything else (a damaged block, a tampered event, an odd line) makes the chunk
unclean, and the caller runs the exact check over it, which names every problem as it always
has: the fast path only ever decides that there is nothing to report.
"""

from __future__ import annotations

import io
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import IO, Any, cast

from fastavro import parse_schema, schemaless_reader

from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.format.line_compiler import (
    Render,
    compile_line_renderers,
    constant_fields,
)
from aigc_audit.consumers.bundle.verify.inclusion import (
    complete_batch_paths,
    leaf_hashes,
    proofs_lead_to_root,
)
from aigc_audit.producers.codec import HEADER_SIZE, SchemaCatalogue
from aigc_audit.producers.errors import AuditError

CHUNK_BYTES = 1 << 20
"""Avro bytes per chunk (some 8,000 events): small enough to keep every worker busy to the
end, large enough that a chunk's fixed costs do not count."""

_HEADER_SCHEMA = parse_schema(
    {
        "type": "record",
        "name": "org.apache.avro.file.Header",
        "fields": [
            {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
            {"name": "meta", "type": {"type": "map", "values": "bytes"}},
            {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
        ],
    },
    {},
)
_BIG = 1 << 40
_HALF = tuple((i >> 1) if i < 128 and not i & 1 else _BIG for i in range(256))
"""A one-byte length (of a string or bytes); a length past any block when it is not one."""
_ZIGZAG1 = tuple((i >> 1) ^ -(i & 1) if i < 128 else None for i in range(256))
"""A one-byte varint's value; None when the varint is longer."""
_ZIGZAG2 = {
    bytes((lo | 0x80, hi)): ((lo | hi << 7) >> 1) ^ -((lo | hi << 7) & 1)
    for lo in range(128)
    for hi in range(1, 128)
}
"""Two-byte varints (in their shortest form) and their value."""
_LENGTH2 = {k: v for k, v in _ZIGZAG2.items() if v >= 0}


class Unreadable(Exception):
    """Something the fast path does not read: the exact check takes over."""


# --- the container -------------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    """What an Avro container file's header says, and where its blocks start."""

    header: bytes
    codec: str
    sync: bytes


def read_header(fh: IO[bytes]) -> Container:
    """The header of the container at the start of ``fh``, left positioned at its first block;
    Unreadable if it is not one."""
    try:
        # _HEADER_SCHEMA is a record: fastavro reads it as a dict
        header = cast("dict[str, Any]", schemaless_reader(fh, _HEADER_SCHEMA, None))
        size = fh.tell()
        fh.seek(0)
        raw = fh.read(size)
        meta = header["meta"]
        codec = meta.get("avro.codec", b"null").decode()
        return Container(raw, codec, bytes(header["sync"]))
    except Exception as exc:
        raise Unreadable(str(exc)) from None


def _varint(buf: Any, p: int) -> tuple[int, int]:
    c = buf[p]
    n = c & 0x7F
    shift = 7
    p += 1
    while c & 0x80:
        if shift > 56:
            raise Unreadable("a varint of more than 9 bytes")
        c = buf[p]
        n |= (c & 0x7F) << shift
        shift += 7
        p += 1
    return (n >> 1) ^ -(n & 1), p


def scan_blocks(buf: Any, start: int, sync: bytes) -> tuple[list[int], int]:
    """Offsets of the well-formed blocks from ``start`` on (a non-negative count and size, the
    data, then the file's sync marker), and where the first one that is not starts (the
    buffer's length when all are)."""
    offsets = []
    p, end = start, len(buf)
    while p < end:
        try:
            count, q = _varint(buf, p)
            size, q = _varint(buf, q)
        except (IndexError, Unreadable):
            break
        stop = q + size
        if count < 0 or size < 0 or stop + 16 > end or buf[stop : stop + 16] != sync:
            break
        offsets.append(p)
        p = stop + 16
    return offsets, p


def chunk_bounds(offsets: list[int], stop: int, target: int = 0) -> list[tuple[int, int]]:
    """The blocks grouped in consecutive chunks of about ``target`` bytes."""
    target = target or CHUNK_BYTES
    bounds: list[tuple[int, int]] = []
    if not offsets:
        return bounds
    begin = offsets[0]
    for offset in offsets[1:]:
        if offset - begin >= target:
            bounds.append((begin, offset))
            begin = offset
    bounds.append((begin, stop))
    return bounds


# --- the JSON Lines ------------------------------------------------------------------------


class Lines:
    """Byte ranges of a JSON Lines file: ``read(start, size)`` (short at the end of the file;
    None when the range cannot be read from here) and ``find(needle, start)``."""

    size: int

    def read(self, start: int, size: int) -> bytes | None:
        raise NotImplementedError

    def find(self, needle: bytes, start: int) -> int:
        return -1

    def find_near(self, needle: bytes, guess: int) -> int:
        return self.find(needle, 0)


class FileLines(Lines):
    """A file of its own: any range, at any time (for chunks checked out of order)."""

    WINDOW = 8 << 20

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def read(self, start: int, size: int) -> bytes | None:
        return os.pread(self.fd, size, start)

    def find(self, needle: bytes, start: int) -> int:
        step = self.WINDOW
        while start < self.size:
            window = os.pread(self.fd, step + len(needle), start)
            at = window.find(needle)
            if at >= 0:
                return start + at
            start += step
        return -1

    def find_near(self, needle: bytes, guess: int) -> int:
        """Where ``needle`` is, looking first around ``guess``, then further and further."""
        span = 256 << 10
        low = high = max(0, min(guess, self.size))
        while low > 0 or high < self.size:
            start, stop = max(0, low - span), min(self.size, high + span)
            window = os.pread(self.fd, stop - start, start)
            at = window.find(needle)
            if at >= 0:
                return start + at
            # Next time, the bytes on either side (with an overlap for a needle cut in two).
            low, high = start + len(needle), stop - len(needle)
            span *= 2
        return -1


class StreamLines(Lines):
    """A file read once from start to end (a zip member): each ``read`` must start where the
    one before ended."""

    def __init__(self, fh: IO[bytes], at: int = 0) -> None:
        self.fh = fh
        self.at = at
        self.size = -1

    def read(self, start: int, size: int) -> bytes | None:
        if start != self.at:
            return None
        data = self.fh.read(size)
        self.at += len(data)
        return data


# --- a chunk -------------------------------------------------------------------------------


@dataclass
class ChunkResult:
    clean: bool
    events: int = 0
    jsonl_start: int = -1
    jsonl_end: int = -1
    leaves: list[tuple[str, int, Sequence[int]]] = field(default_factory=list)
    """(producer id, batch sequence, leaf indexes) of the chunk's events, batch by batch."""


UNCLEAN = ChunkResult(False)


class _Columns:
    """The events of a chunk, field by field, and its runs of events of one batch."""

    def __init__(self) -> None:
        self.event_ids: list[bytes] = []
        self.indexes: list[int] = []
        self.events: list[bytes] = []
        self.proofs: list[bytes] = []
        self.runs: list[tuple[bytes, int, int]] = []
        """(producer id, batch sequence, index of the run's first event)."""


def _span(data: bytes, p: int) -> tuple[int, int]:
    """(start, end) of the string or bytes value whose length is at ``p``."""
    c = data[p]
    if c < 128:
        if c & 1:
            raise Unreadable("a negative length")
        return p + 1, p + 1 + (c >> 1)
    n, start = _varint(data, p)
    if n < 0:
        raise Unreadable("a negative length")
    return start, start + n


def _read_events(data: bytes, count: int, family: bytes, out: _Columns, prefix: bytes) -> bytes:
    """Append ``count`` ExportedEvent records (format 2) of ``family`` from ``data``, which
    they must fill exactly; Unreadable (or IndexError) otherwise. ``prefix`` is the encoded
    family, producer and batch of the event before (a batch's events run on across blocks);
    returns that of the last event."""
    event_ids, indexes, events, proofs, runs = (
        out.event_ids,
        out.indexes,
        out.events,
        out.proofs,
        out.runs,
    )
    half, zigzag1, zigzag2, length2 = _HALF, _ZIGZAG1, _ZIGZAG2.get, _LENGTH2.get
    add_id, add_index, add_event, add_proof = (
        event_ids.append,
        indexes.append,
        events.append,
        proofs.append,
    )
    skip = len(prefix)
    p = 0
    for _ in range(count):
        # event_id
        c = data[p]
        if c < 128:
            s = p + 1
            p = s + half[c]
        else:
            s, p = _span(data, p)
        add_id(data[s:p])
        # family, producer_id, batch_sequence: mostly those of the event before
        if skip and data.startswith(prefix, p):
            p += skip
        else:
            q = p
            s, p = _span(data, p)
            if data[s:p] != family:
                raise Unreadable("an event of another family")
            s, p = _span(data, p)
            producer = data[s:p]
            sequence, p = _varint(data, p)
            prefix = data[q:p]
            skip = p - q
            runs.append((producer, sequence, len(events)))
        # leaf_index
        index = zigzag1[data[p]]
        if index is not None:
            p += 1
        else:
            index = zigzag2(data[p : p + 2])
            if index is None:
                index, p = _varint(data, p)
            else:
                p += 2
        add_index(index)
        # event_bytes and inclusion_proof: most often a two-byte length
        n = length2(data[p : p + 2])
        if n is None:
            s, p = _span(data, p)
        else:
            s = p + 2
            p = s + n
        add_event(data[s:p])
        n = length2(data[p : p + 2])
        if n is None:
            s, p = _span(data, p)
        else:
            s = p + 2
            p = s + n
        add_proof(data[s:p])
    if p != len(data):
        raise Unreadable("bytes after a block's records")
    return prefix


def read_chunk(blocks: bytes, container: Container, family: bytes) -> _Columns:
    """Every event of a chunk's blocks; Unreadable if any block is not well formed."""
    out = _Columns()
    p, end = 0, len(blocks)
    codec = container.codec
    prefix = b""
    while p < end:
        count, p = _varint(blocks, p)
        size, p = _varint(blocks, p)
        stop = p + size
        if count < 0 or size < 0 or blocks[stop : stop + 16] != container.sync:
            raise Unreadable("a malformed block")
        data = blocks[p:stop]
        if codec == "deflate":
            # As fastavro reads it: raw deflate (what follows its end, such as the bytes
            # of the zlib trailer fastavro leaves there, is not data).
            inflate = zlib.decompressobj(-15)
            data = inflate.decompress(data)
            if not inflate.eof:
                raise Unreadable("a block that does not inflate to its end")
        elif codec != "null":
            raise Unreadable(f"codec {codec}")
        prefix = _read_events(data, count, family, out, prefix)
        p = stop + 16
    return out


class ChunkChecker:
    """Checks chunks of the events files of one bundle (in whichever process holds it)."""

    SAMPLE = 32
    """Events of a family's first chunk that show which of its fields keep their value."""

    def __init__(
        self, catalogue: SchemaCatalogue, batches: dict[tuple[str, int], tuple[int, bytes]]
    ) -> None:
        self.catalogue = catalogue
        self.renderer = fmt.EventRenderer(catalogue)
        self.batches = {
            (producer.encode(), sequence): (count, root, producer)
            for (producer, sequence), (count, root) in batches.items()
        }
        self._renderers: dict[tuple[str, bytes], tuple[Render, ...]] = {}

    def renderers(self, family: str, sample: Sequence[bytes]) -> tuple[Render, ...]:
        """The compiled renderers for bytes written like ``sample[0]`` (its schema version),
        made the first time from a sample of them."""
        version = bytes(sample[0][2:HEADER_SIZE])
        found = self._renderers.get((family, version))
        if found is None:
            constant = constant_fields(self.catalogue, family, sample[: self.SAMPLE])
            found = self._renderers[(family, version)] = compile_line_renderers(
                self.catalogue, family, constant, version
            )
        return found

    def check(
        self,
        family: str,
        container: Container,
        blocks: bytes,
        lines: Lines,
        jsonl_at: int | None,
        jsonl_guess: int = 0,
    ) -> ChunkResult:
        """Check one chunk (its blocks' bytes) against its lines, which start at byte
        ``jsonl_at`` of the JSON Lines file, or, when None, at the line of the chunk's first
        event (found near ``jsonl_guess``; the caller checks it is where the chunk before
        ended)."""
        try:
            cols = read_chunk(blocks, container, family.encode())
        except (Unreadable, IndexError, ValueError, zlib.error):
            return UNCLEAN
        n = len(cols.events)
        if n == 0:
            return ChunkResult(True, 0, jsonl_at if jsonl_at is not None else -1)
        leaves = self._proven(cols)
        if leaves is None:
            return UNCLEAN
        expected = self._rendered(family, cols)
        if expected is None:
            return UNCLEAN
        start = jsonl_at if jsonl_at is not None else self._find(cols, lines, jsonl_guess)
        if start < 0:
            return UNCLEAN
        try:
            found = lines.read(start, len(expected))
        except OSError:
            return UNCLEAN
        if found != expected or not (found.isascii() or _utf8(found)):
            return UNCLEAN
        return ChunkResult(True, n, start, start + len(expected), leaves)

    @staticmethod
    def _find(cols: _Columns, lines: Lines, guess: int) -> int:
        try:
            first = json.dumps(cols.event_ids[0].decode(), ensure_ascii=False).encode()
        except UnicodeDecodeError:
            return -1
        at = lines.find_near(b'\n{"event_id":' + first, guess)
        return at + 1 if at >= 0 else -1

    def _proven(self, cols: _Columns) -> list[tuple[str, int, Sequence[int]]] | None:
        """Each run's leaves, when every event of the run is proven in its batch."""
        batches = self.batches
        out: list[tuple[str, int, Sequence[int]]] = []
        seen: dict[tuple[bytes, int], bytearray] = {}
        bounds = [r[2] for r in cols.runs[1:]] + [len(cols.events)]
        for (producer, sequence, a), b in zip(cols.runs, bounds, strict=True):
            key = (producer, sequence)
            batch = batches.get(key)
            if batch is None:
                return None
            count, root, name = batch
            indexes = cols.indexes[a:b]
            leaves = leaf_hashes(cols.events[a:b])
            proofs = cols.proofs[a:b]
            if key not in seen and b - a == count and indexes == list(range(count)):
                seen[key] = bytearray(b"\x01" * count)
                if complete_batch_paths(leaves, root) != proofs:
                    return None
                out.append((name, sequence, range(count)))
                continue
            # Some of the batch's events (the others are in other families' files, or not
            # exported): in leaf order, each once, all proven together.
            marks = seen.setdefault(key, bytearray(max(count, 0)))
            for index in indexes:
                if not 0 <= index < count or marks[index]:
                    return None
                marks[index] = 1
            if not proofs_lead_to_root(leaves, indexes, proofs, count, root):
                return None
            out.append((name, sequence, tuple(indexes)))
        return out

    def _rendered(self, family: str, cols: _Columns) -> bytes | None:
        """The chunk's JSON Lines as the renderer writes them (each line and its newline),
        when every event decodes as the family and its head names it and its producer."""
        events, event_ids = cols.events, cols.event_ids
        out: list[bytes] = []
        add = out.append
        bounds = [r[2] for r in cols.runs[1:]] + [len(events)]
        for (producer, _, a), b in zip(cols.runs, bounds, strict=True):
            renderers = self.renderers(family, events[a:b])
            render = renderers[0] if renderers else None
            if render is not None:
                try:
                    run = list(map(render, events[a:b], event_ids[a:b], repeat(producer, b - a)))
                except Exception:  # one event the fast renderer cannot take: one by one
                    run = [None]
                if None not in run:
                    out += cast("list[bytes]", run)  # no None in it, as just checked
                    continue
            version = events[a][:HEADER_SIZE]
            for data, event_id in zip(events[a:b], event_ids[a:b], strict=True):
                line = None
                if not data.startswith(version):  # another schema version: its renderers
                    version = data[:HEADER_SIZE]
                    renderers = self.renderers(family, [data])
                    render = renderers[0] if renderers else None
                if render is not None:
                    try:
                        line = render(data, event_id, producer)
                    except Exception:  # any surprise: the slower ways decide
                        line = None
                if line is None:
                    line = self._rendered_slowly(family, renderers, data, event_id, producer)
                    if line is None:
                        return None
                add(line)
        add(b"")
        return b"\n".join(out)

    def _rendered_slowly(
        self,
        family: str,
        renderers: tuple[Render, ...],
        data: bytes,
        event_id: bytes,
        producer: bytes,
    ) -> bytes | None:
        for render in renderers[1:]:
            try:
                line = render(data, event_id, producer)
            except Exception:  # the renderer decides
                line = None
            if line is not None:
                return line
        # The renderer, as the exact check uses it.
        try:
            eid, pid = event_id.decode(), producer.decode()
            fullname, decoded = self.renderer.decode(data)
        except (UnicodeDecodeError, AuditError):
            return None
        head = decoded.get("head")
        if fullname != family or not isinstance(head, dict):
            return None
        if head.get("event_id") != eid or head.get("producer_id") != pid:
            return None
        try:
            return fmt.event_json_line(eid, decoded).encode()
        except (ValueError, TypeError, UnicodeEncodeError):
            return None


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- worker processes ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    family: str
    avro: str
    jsonl: str
    container: Container
    start: int
    stop: int
    jsonl_at: int | None
    jsonl_guess: int


_CHECKER: ChunkChecker | None = None
_FILES: dict[str, int] = {}


def init_worker(
    schemas: str, batches: dict[tuple[str, int], tuple[int, bytes]]
) -> None:  # pragma: no cover - runs in the worker processes
    global _CHECKER
    _keep_heap()
    _CHECKER = ChunkChecker(SchemaCatalogue(schemas), batches)


def _keep_heap() -> None:
    """Have glibc keep the memory a chunk frees for the next chunk: a chunk's lines and
    events (tens of MB) freed and taken back from the system every time cost as much system
    time as a fifth of the checking. Only in the worker processes, which are ours."""
    try:
        import ctypes
        import platform

        if platform.libc_ver()[0] != "glibc":
            return
        libc = ctypes.CDLL(None)
        m_top_pad, m_trim_threshold = -2, -1  # <malloc.h>
        libc.mallopt(m_top_pad, 256 << 20)
        libc.mallopt(m_trim_threshold, 512 << 20)
    except Exception:  # an optimisation only
        return


def _fd(path: str) -> int:
    fd = _FILES.get(path)
    if fd is None:
        fd = _FILES[path] = os.open(path, os.O_RDONLY)
    return fd


def run_task(task: ChunkTask) -> ChunkResult:
    """Check one chunk of a directory bundle's events file, in a worker."""
    assert _CHECKER is not None
    return check_task(_CHECKER, task)


def check_task(checker: ChunkChecker, task: ChunkTask) -> ChunkResult:
    try:
        blocks = os.pread(_fd(task.avro), task.stop - task.start, task.start)
        lines = FileLines(_fd(task.jsonl))
    except OSError:
        return UNCLEAN
    return checker.check(
        task.family, task.container, blocks, lines, task.jsonl_at, task.jsonl_guess
    )


def close_files() -> None:
    for fd in _FILES.values():
        os.close(fd)
    _FILES.clear()


def spliced(container: Container, blocks: bytes) -> io.BytesIO:
    """A container file of the header and these blocks only (for the exact check)."""
    return io.BytesIO(container.header + blocks)
