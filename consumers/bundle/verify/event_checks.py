"""Checks 6 and 7: every event's bytes proven in its batch, decoded under the bundled schemas
and matching the JSON Lines copy; the manifest's counts.

Check 6 reads each events file in chunks of Avro blocks. A chunk first goes through the fast
path (``fast_events``), in worker processes when the bundle is big enough: it says only whether
the chunk is clean. A chunk that is not is read again by the exact check below, event by event,
which names each problem; so the problems are the same, in the same order, whichever way and
in however many processes a bundle is checked.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, cast

from fastavro import reader as avro_reader
from fastavro.schema import to_parsing_canonical_form

from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify import fast_events as fast
from aigc_audit.consumers.bundle.verify.inclusion import BatchState, included, proof_hashes
from aigc_audit.consumers.bundle.verify.result import Problems
from aigc_audit.consumers.bundle.verify.source import BundleSource, reason_of
from aigc_audit.consumers.bundle.verify.verifier_base import VerifierBase, same_json
from aigc_audit.producers.codec import SchemaCatalogue
from aigc_audit.producers.errors import AuditError

POOL_MIN_BYTES = 4 << 20
"""Events files (Avro) smaller than this are checked in this process alone when ``workers``
is not given: starting processes would cost more than they save."""


class _LineStream:
    """The lines of a JSON Lines file from byte ``offset`` on, as check 6 reads them: decoded,
    without their line end. A file that cannot be read is named once, and ends there."""

    def __init__(self, source: BundleSource, name: str, problem: Problems, offset: int = 0):
        self.source = source
        self.name = name
        self.problem = problem
        self.offset = offset
        """Byte offset of the next line."""
        self.ended = False
        self._fh: Any = None
        self._lines: Iterator[bytes] | None = None

    def __iter__(self) -> _LineStream:
        return self

    def __next__(self) -> str:
        if self.ended:
            raise StopIteration
        try:
            if self._lines is None:
                self._fh = self.source.open_at(self.name, self.offset)
                self._lines = iter(self._fh)
            raw = next(self._lines)
            self.offset += len(raw)
            return raw.decode("utf-8").rstrip("\r\n")
        except StopIteration:
            self.close()
            raise
        except Exception as exc:  # damaged member, bad UTF-8
            self.problem(f"{self.name} cannot be read ({reason_of(exc)})")
            self.close()
            raise StopIteration from None

    def close(self) -> None:
        self.ended = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass
class _Exact:
    """Where the exact check is in an events file."""

    lines: _LineStream | None
    lines_done: bool
    n: int = 0
    last: BatchState | None = None


ChunkGetter = Callable[[int], fast.ChunkResult]
"""A chunk's fast result, given where in the JSON Lines file the chunk before ended."""


@dataclass
class _Plan:
    """An events file the fast path reads: its container and its chunks."""

    stem: str
    family: str
    avro_name: str
    jsonl_name: str
    container: fast.Container
    chunks: Callable[[], Iterator[tuple[Callable[[], bytes], ChunkGetter]]]
    tail: Callable[[], bytes]
    """The bytes after the last well-formed block, once ``chunks`` is exhausted."""
    jsonl_size: int | None
    close: Callable[[], None]


class EventChecks(VerifierBase):
    # -- 6 ----------------------------------------------------------------------------------

    def _check_events(self, problem: Problems) -> str:
        """6. events: every event is in its signed batch and decodes as the JSON copy says"""
        self.found["events"] = 0
        self.found["events_by_family"] = {}
        catalogue: SchemaCatalogue | None = None
        if not any(n.startswith(f"{fmt.SCHEMAS_DIR}/") for n in self.source.names()):
            problem(f"the bundle has no {fmt.SCHEMAS_DIR}/: events cannot be decoded")
        else:
            try:
                catalogue = SchemaCatalogue(self.source.schemas_root())
            except AuditError as exc:
                problem(f"the bundled schemas do not load: {exc}")
        stems = self._event_stems()
        plans = self._early_plans if self._early_batches == self._batch_roots() else None
        if plans is None or catalogue is None:
            self._stop_early()
            plans = None
            if catalogue is not None:
                plans = self._plans(stems, catalogue, self._batch_roots(), pool=False)
        for stem in stems:
            family = fmt.FAMILY_BY_STEM.get(stem)
            if family is None:
                problem(f"{fmt.EVENTS_DIR}/{stem}.* is not an event family file")
                continue
            plan = (plans or {}).get(stem)
            if plan is not None:
                count = self._check_planned(plan, catalogue, problem)
            else:
                count = self._check_family(stem, family, catalogue, problem)
            self.found["events_by_family"][stem] = count
        self.found["events"] = sum(self.found["events_by_family"].values())
        families = ", ".join(f"{n} {s}" for s, n in self.found["events_by_family"].items())
        return (
            f"{self.found['events']} events ({families or 'none'}): each proven in its signed "
            "batch, decoded with the bundled schemas, matching the JSON Lines copy"
        )

    def _event_stems(self) -> list[str]:
        """The events files' stems: those in the bundle, and those the manifest lists."""
        stems = {
            PurePosixPath(n).stem
            for n in self.source.names()
            if n.startswith(f"{fmt.EVENTS_DIR}/") and n.endswith((".avro", ".jsonl"))
        }
        listed = self.manifest.get("files") if self.manifest else None
        for entry in listed if isinstance(listed, list) else ():
            name = entry.get("path") if isinstance(entry, Mapping) else None
            if isinstance(name, str) and name.startswith(f"{fmt.EVENTS_DIR}/"):
                stems.add(PurePosixPath(name).stem)
        return sorted(stems)

    def _batch_roots(self) -> dict[tuple[str, int], tuple[int, bytes]]:
        """Each batch's size and signed root, as check 5 read them."""
        return {key: (b.event_count, b.merkle_root) for key, b in self.batches.items()}

    # -- workers, set going before the checks -------------------------------------------

    _early_plans: dict[str, _Plan] | None = None
    _early_batches: dict[tuple[str, int], tuple[int, bytes]] | None = None
    _pool: ProcessPoolExecutor | None = None
    _all_plans: list[_Plan]

    def _start(self) -> None:
        """With worker processes, set the events' chunks going before the other checks run:
        the workers read ``batches.json`` as check 5 will (check 6 uses their results only if
        check 5 read the same batches)."""
        self._all_plans = []
        try:
            if not self._pool_wanted():
                return
            catalogue = SchemaCatalogue(self.source.schemas_root())
            data = self._read_json(fmt.BATCHES_FILE)
            batches: dict[tuple[str, int], tuple[int, bytes]] = {}
            for item in data if isinstance(data, list) else ():
                try:
                    batch = fmt.BundleBatch.from_json(item)
                except fmt.FormatError:
                    continue
                batches[(batch.producer_id, batch.sequence)] = (
                    batch.event_count,
                    batch.merkle_root,
                )
            self._early_plans = self._plans(self._event_stems(), catalogue, batches, pool=True)
            self._early_batches = batches
        except Exception:  # check 6 then finds its own way, and names what is wrong
            self._stop_early()

    def _stop_early(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self._early_plans = self._early_batches = None

    def _finish(self) -> None:
        self._stop_early()
        for plan in getattr(self, "_all_plans", ()):
            plan.close()
        fast.close_files()

    def _pool_wanted(self) -> bool:
        if self.workers is not None and self.workers <= 1:
            return False
        if self.source.path(fmt.SCHEMAS_DIR) is None:
            return False  # a zip bundle: read once through, here
        if self.workers is None:
            if _cores() < 2:
                return False
            size = 0
            for stem in self._event_stems():
                path = self.source.path(fmt.avro_path(stem))
                if path is not None and path.is_file():
                    size += path.stat().st_size
            return size >= POOL_MIN_BYTES
        return True

    # -- the exact check --------------------------------------------------------------------

    def _check_family(
        self, stem: str, family: str, catalogue: SchemaCatalogue | None, problem: Problems
    ) -> int:
        avro_name, jsonl_name = fmt.avro_path(stem), fmt.jsonl_path(stem)
        if not self.source.has(avro_name):
            problem(f"{avro_name} is missing")
            return 0
        lines: _LineStream | None = None
        if self.source.has(jsonl_name):
            lines = _LineStream(self.source, jsonl_name, problem)
        else:
            problem(f"{jsonl_name} is missing")
        state = _Exact(lines, lines is None)
        try:
            fh = self.source.open(avro_name)
        except Exception as exc:  # a damaged zip member
            problem(f"{avro_name} cannot be read ({reason_of(exc)})")
            return 0
        with fh:
            try:
                records = avro_reader(fh)
                writer_schema = to_parsing_canonical_form(records.writer_schema)
            except Exception as exc:
                problem(f"{avro_name} is not an Avro container file ({reason_of(exc)})")
                return 0
            if writer_schema not in EXPORTED_CANONICAL:
                problem(f"{avro_name} does not hold {fmt.EXPORTED_EVENT} records")
                return 0
            renderer = fmt.EventRenderer(catalogue) if catalogue is not None else None
            try:
                # the writer schema is the exported event's (checked above): dicts
                exported = cast("Iterator[dict[str, Any]]", records)
                self._check_records(avro_name, family, exported, state, renderer, problem)
            except Damaged as exc:
                problem(f"{avro_name} is damaged after record {exc.count} ({exc.reason})")
        if lines is not None:
            extra = sum(1 for _ in lines)
            if extra:
                problem(f"{jsonl_name} has {extra} more lines than {avro_name} has events")
        return state.n

    def _check_records(
        self,
        avro_name: str,
        family: str,
        records: Iterator[dict[str, Any]],
        state: _Exact,
        renderer: fmt.EventRenderer | None,
        problem: Problems,
    ) -> None:
        """Every event of ``records``, one by one, each problem named; ``state`` says where the
        events file and its JSON Lines copy are, and is moved on."""
        batches_get = self.batches.get
        decode = renderer.decode if renderer is not None else None
        render = fmt.event_json_line
        sha256 = hashlib.sha256
        jsonl_name = avro_name[: -len(".avro")] + ".jsonl"
        lines = state.lines

        def bad(event_id: str, message: str) -> None:
            problem(f"event {event_id[:8]}… in {avro_name}{message}")

        iterator = iter(records)
        while True:
            try:
                rec = next(iterator)
            except StopIteration:
                break
            except Exception as exc:  # a damaged block: what follows cannot be read
                raise Damaged(state.n, reason_of(exc)) from None
            state.n += 1
            n = state.n
            event_id = rec["event_id"]
            data = rec["event_bytes"]
            producer_id = rec["producer_id"]
            if rec["family"] != family:
                bad(event_id, f" says it is a {rec['family']}")
            sequence = rec["batch_sequence"]
            batch = batches_get((producer_id, sequence))
            index = rec["leaf_index"]
            if batch is None:
                bad(event_id, f": its batch {producer_id}#{sequence} is not in {fmt.BATCHES_FILE}")
            elif not 0 <= index < batch.event_count:
                bad(event_id, f": leaf {index} is outside batch {batch.name}")
            elif batch.seen[index]:
                bad(event_id, f": leaf {index} of batch {batch.name} is exported twice")
            else:
                if batch is not state.last:
                    # Events come batch by batch: the memo of the batch left is not needed
                    # again (if it is, the proofs are simply checked in full).
                    if state.last is not None:
                        state.last.memo.clear()
                    state.last = batch
                batch.seen[index] = 1
                leaf = sha256(b"\x00" + data).digest()
                proof = proof_hashes(rec["inclusion_proof"])
                if not included(
                    leaf, index, batch.event_count, proof, batch.merkle_root, batch.memo
                ):
                    bad(event_id, f": inclusion proof does not lead to batch {batch.name}'s root")
            rendered = None
            if decode is not None:
                try:
                    fullname, decoded = decode(data)
                except AuditError as exc:
                    bad(event_id, f" does not decode with the bundled schemas: {exc}")
                else:
                    head = decoded.get("head")
                    if fullname != family:
                        bad(event_id, f" decodes as a {fullname}")
                    elif not isinstance(head, dict) or head.get("event_id") != event_id:
                        other = head.get("event_id") if isinstance(head, dict) else None
                        bad(event_id, f": its bytes are event {other}")
                    elif head.get("producer_id") != producer_id:
                        bad(event_id, f": its bytes name producer {head.get('producer_id')}")
                    try:
                        rendered = render(event_id, decoded)
                    except (ValueError, TypeError) as exc:
                        bad(event_id, f" cannot be written as JSON: {exc}")
            if state.lines_done or lines is None:
                continue
            line = next(lines, None)
            if line is None:
                problem(f"{jsonl_name} ends before event {n} ({event_id[:8]}…)")
                state.lines_done = True
            elif rendered is not None:
                if line != rendered and not same_json(line, rendered):
                    problem(f"line {n} of {jsonl_name} does not match event {event_id[:8]}…")
            elif not line_names(line, event_id):
                problem(f"line {n} of {jsonl_name} is not event {event_id[:8]}…")

    # -- the fast path ----------------------------------------------------------------------

    def _plans(
        self,
        stems: list[str],
        catalogue: SchemaCatalogue,
        batches: dict[tuple[str, int], tuple[int, bytes]],
        pool: bool,
    ) -> dict[str, _Plan]:
        """The events files the fast path can read (both files there, a well-formed header of
        format 2 records, a codec it knows), their chunks set going (in worker processes when
        ``pool``, for the files of a directory bundle)."""
        found: dict[str, tuple[str, fast.Container]] = {}
        for stem in stems:
            family = fmt.FAMILY_BY_STEM.get(stem)
            if family is None:
                continue
            avro_name, jsonl_name = fmt.avro_path(stem), fmt.jsonl_path(stem)
            if not (self.source.has(avro_name) and self.source.has(jsonl_name)):
                continue
            try:
                with self.source.open(avro_name) as fh:
                    records = avro_reader(fh)
                    canonical = to_parsing_canonical_form(records.writer_schema)
                    fh.seek(0)
                    container = fast.read_header(fh)
            except Exception:  # the exact check names what is wrong
                continue
            if canonical != EXPORTED_CANONICAL[-1] or container.codec not in ("null", "deflate"):
                continue
            found[stem] = (family, container)
        checker = fast.ChunkChecker(catalogue, batches)
        paths = {stem: self._paths(stem) for stem in found}
        if pool and any(p is not None for p in paths.values()):
            schemas = self.source.path(fmt.SCHEMAS_DIR)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers or _cores(),
                mp_context=_context(),
                initializer=fast.init_worker,
                initargs=(str(schemas), batches),
            )
        plans = {}
        for stem, (family, container) in found.items():
            files = paths[stem]
            if files is not None:
                plans[stem] = self._mapped_plan(stem, family, container, checker, *files)
            else:
                plans[stem] = self._stream_plan(stem, family, container, checker)
            self._all_plans.append(plans[stem])
        return plans

    def _paths(self, stem: str) -> tuple[str, str] | None:
        avro = self.source.path(fmt.avro_path(stem))
        jsonl = self.source.path(fmt.jsonl_path(stem))
        if avro is None or jsonl is None:
            return None
        return str(avro), str(jsonl)

    def _mapped_plan(
        self,
        stem: str,
        family: str,
        container: fast.Container,
        checker: fast.ChunkChecker,
        avro_path: str,
        jsonl_path: str,
    ) -> _Plan:
        """A directory bundle's events file: its chunks known at once (the file is mapped in
        memory) and, with workers, all set going at once."""
        avro = _map(avro_path)
        jsonl_size = os.path.getsize(jsonl_path)
        offsets, stop = fast.scan_blocks(avro, len(container.header), container.sync)
        bounds = fast.chunk_bounds(offsets, stop)
        futures: list[Future[fast.ChunkResult]] = []
        if self._pool is not None:
            first = len(container.header)
            span = max(stop - first, 1)
            for k, (begin, end) in enumerate(bounds):
                task = fast.ChunkTask(
                    family,
                    avro_path,
                    jsonl_path,
                    container,
                    begin,
                    end,
                    0 if k == 0 else None,
                    jsonl_size * (begin - first) // span,
                )
                futures.append(self._pool.submit(fast.run_task, task))

        def chunks() -> Iterator[tuple[Callable[[], bytes], ChunkGetter]]:
            for k, (begin, end) in enumerate(bounds):

                def blocks(begin: int = begin, end: int = end) -> bytes:
                    return avro[begin:end]

                result: ChunkGetter
                if futures:

                    def pooled(_: int, k: int = k) -> fast.ChunkResult:
                        return futures[k].result()

                    result = pooled
                else:

                    def here(at: int, begin: int = begin, end: int = end) -> fast.ChunkResult:
                        task = fast.ChunkTask(
                            family, avro_path, jsonl_path, container, begin, end, at, at
                        )
                        return fast.check_task(checker, task)

                    result = here

                yield blocks, result

        def close() -> None:
            if isinstance(avro, mmap.mmap):
                avro.close()

        return _Plan(
            stem,
            family,
            fmt.avro_path(stem),
            fmt.jsonl_path(stem),
            container,
            chunks,
            lambda: avro[stop:],
            jsonl_size,
            close,
        )

    def _stream_plan(
        self, stem: str, family: str, container: fast.Container, checker: fast.ChunkChecker
    ) -> _Plan:
        """A zip bundle's events file: read once from start to end, here."""
        avro_name, jsonl_name = fmt.avro_path(stem), fmt.jsonl_path(stem)
        opened: list[Any] = []
        leftover: list[bytes] = []
        lines: list[fast.StreamLines] = []

        def line_source(at: int) -> fast.StreamLines:
            if not lines or lines[0].at != at:
                for old in lines:
                    old.fh.close()
                lines[:] = [fast.StreamLines(self.source.open_at(jsonl_name, at), at)]
            return lines[0]

        def chunks() -> Iterator[tuple[Callable[[], bytes], ChunkGetter]]:
            fh = self.source.open_at(avro_name, len(container.header))
            opened.append(fh)
            for data in _stream_blocks(fh, container.sync, leftover):

                def result(at: int, data: bytes = data) -> fast.ChunkResult:
                    try:
                        source = line_source(at)
                    except Exception:  # the exact check names it
                        return fast.UNCLEAN
                    return checker.check(family, container, data, source, at)

                def block(data: bytes = data) -> bytes:
                    return data

                yield block, result

        def close() -> None:
            for fh in opened + [s.fh for s in lines]:
                fh.close()

        return _Plan(
            stem,
            family,
            avro_name,
            jsonl_name,
            container,
            chunks,
            lambda: b"".join(leftover),
            None,
            close,
        )

    def _check_planned(
        self, plan: _Plan, catalogue: SchemaCatalogue | None, problem: Problems
    ) -> int:
        """An events file chunk by chunk: each clean chunk counted, each other one (and what
        follows a damaged block) checked exactly, from where the chunk before left off."""
        renderer = fmt.EventRenderer(catalogue) if catalogue is not None else None
        exact: _Exact | None = None
        """The exact check's state, from the first chunk it checked on."""
        last_exact = False
        """Whether the last chunk was checked exactly (its lines stream is then where the
        next chunk's lines start)."""
        n = 0
        expected = 0  # where the next chunk's lines start in the JSON Lines file
        damaged = False

        def run_exactly(blocks: bytes) -> bool:
            nonlocal exact, expected, n, last_exact
            if exact is None or not (exact.lines_done or last_exact):
                if exact is not None and exact.lines is not None:
                    exact.lines.close()
                lines = _LineStream(self.source, plan.jsonl_name, problem, expected)
                exact = _Exact(lines, False)
            last_exact = True
            exact.n = n
            # the events file's own header, whose schema the plan checked is the exported
            # event's: its records read as dicts
            records = cast(
                "Iterator[dict[str, Any]]", avro_reader(fast.spliced(plan.container, blocks))
            )
            try:
                self._check_records(plan.avro_name, plan.family, records, exact, renderer, problem)
            except Damaged as exc:
                problem(f"{plan.avro_name} is damaged after record {exc.count} ({exc.reason})")
                n = exc.count
                return False
            n = exact.n
            return True

        for blocks, result in plan.chunks():
            if exact is None or not exact.lines_done:
                at = exact.lines.offset if last_exact and exact and exact.lines else expected
                try:
                    found = result(at)
                except Exception:  # a worker that died, say: the exact check takes the chunk
                    found = fast.UNCLEAN
                if self._clean(found, at):
                    n += found.events
                    expected = found.jsonl_end if found.events else at
                    last_exact = False
                    continue
            if not run_exactly(blocks()):
                damaged = True
                break
        if not damaged:
            tail = plan.tail()
            if tail:
                run_exactly(tail)
        if last_exact:
            remaining = exact.lines if exact is not None else None
        elif expected == plan.jsonl_size:
            remaining = None
        else:
            remaining = _LineStream(self.source, plan.jsonl_name, problem, expected)
        if remaining is not None:
            extra = sum(1 for _ in remaining)
            if extra:
                problem(
                    f"{plan.jsonl_name} has {extra} more lines than {plan.avro_name} has events"
                )
        return n

    def _clean(self, result: fast.ChunkResult, expected: int) -> bool:
        """Whether a chunk the fast path found clean joins the one before (its lines start
        where that one's ended) and exports no leaf exported before; its leaves are marked."""
        if not result.clean:
            return False
        if result.events and result.jsonl_start != expected:
            return False
        batches = self.batches
        for producer, sequence, indexes in result.leaves:
            state = batches.get((producer, sequence))
            if state is None:
                return False
            seen = state.seen
            if isinstance(indexes, range):
                if seen.find(1, indexes.start, indexes.stop) >= 0:
                    return False
            elif any(seen[i] for i in indexes):
                return False
        for producer, sequence, indexes in result.leaves:
            seen = batches[(producer, sequence)].seen
            if isinstance(indexes, range):
                seen[indexes.start : indexes.stop] = b"\x01" * len(indexes)
            else:
                for i in indexes:
                    seen[i] = 1
        return True

    # -- 7 ----------------------------------------------------------------------------------

    def _check_counts(self, problem: Problems) -> str:
        """7. counts: the manifest's counts are what the bundle holds"""
        if self.manifest is None:
            problem(f"no readable {fmt.MANIFEST}")
            return ""
        counts = self.manifest.get("counts")
        if not isinstance(counts, Mapping):
            problem(f"{fmt.MANIFEST} has no counts")
            return ""
        found = self.found
        for name in ("events", "batches", "checkpoints", "keys"):
            if counts.get(name) != found.get(name):
                problem(
                    f"the manifest counts {counts.get(name)} {name}, "
                    f"the bundle holds {found.get(name)}"
                )
        claimed = {k: v for k, v in (counts.get("events_by_family") or {}).items() if v}
        held = {k: v for k, v in found.get("events_by_family", {}).items() if v}
        if claimed != held:
            problem(f"the manifest counts events by family {claimed}, the bundle holds {held}")
        return (
            f"{found.get('events')} events, {found.get('batches')} batches, "
            f"{found.get('checkpoints')} checkpoints, {found.get('keys')} keys, "
            "as the manifest says"
        )


class Damaged(Exception):
    def __init__(self, count: int, reason: str) -> None:
        super().__init__(reason)
        self.count = count
        self.reason = reason


def line_names(line: str, event_id: str) -> bool:
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("event_id") == event_id


def _map(path: str) -> bytes | mmap.mmap:
    with open(path, "rb") as fh:
        if not os.fstat(fh.fileno()).st_size:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _stream_blocks(fh: Any, sync: bytes, leftover: list[bytes]) -> Iterator[bytes]:
    """The well-formed blocks of a container read from ``fh`` (at its first block), about a
    chunk at a time; what follows the last of them is left in ``leftover``."""
    buf = b""
    want = fast.CHUNK_BYTES
    eof = False
    while True:
        while not eof and len(buf) < want:
            more = fh.read(want - len(buf))
            if not more:
                eof = True
            buf += more
        _, stop = fast.scan_blocks(buf, 0, sync)
        if stop:
            yield buf[:stop]
            buf = buf[stop:]
            want = fast.CHUNK_BYTES
        elif eof:
            leftover.append(buf)
            return
        else:
            want *= 2  # a block bigger than what was read


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _context() -> Any:
    """How worker processes start: on Linux, forked when this process runs one thread (fast,
    and the caller's script is not imported again), else from a fork server (forking a process
    with threads risks a lock some thread held); spawned where neither exists. (A fork server
    or a spawned worker imports the caller's main module: a script must guard its work with
    ``if __name__ == "__main__"``, as multiprocessing asks.)"""
    import multiprocessing
    import sys
    import threading

    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["aigc_audit.consumers.bundle.verify.fast_events"])
        return context
    return multiprocessing.get_context("spawn")


EXPORTED_CANONICAL = (
    to_parsing_canonical_form(fmt.PARSED_EXPORTED_EVENT_V1),
    to_parsing_canonical_form(fmt.PARSED_EXPORTED_EVENT),
)
"""The ExportedEvent records of format 1 and format 2 (the fast path reads the latter)."""
