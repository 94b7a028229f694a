"""Writes an export bundle (layout: ``bundle_format``) of the events a selection names.

The store is read in chunks of whole batches, never one query per event: a chunk's rows are
every event of its batches (the leaf hashes of the events not selected are the siblings the
selected ones need for their inclusion proofs), with the exact bytes of the selected ones. The
batches' partition trees are rebuilt from the signed heads in ``batches`` (never from the stored
digest column), and every proof written is checked against the store's signed roots first, so
a store that does not add up fails the export rather than producing a bundle that fails
verification.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

from fastavro.write import Writer

from consumers.checkpoints.note import CheckpointError, open_checkpoint, parse_note
from consumers.errors import PlatformError
from consumers.export import bundle_format as fmt
from consumers.selection import Selection
from consumers.store.base import Store
from producers.codec import default_catalogue
from producers.errors import AuditError
from producers.merkle import consistency_proof, leaf_hash, node_hash, root_from_leaf_hashes
from producers.signing import BatchHead, KeyRegistration, SigningKey, batch_digest

CHUNK_EVENTS = 50_000
"""Rows (events of whole batches) read from the store per query."""
CHUNK_RANGES = 200
"""At most this many producer sequence ranges in one chunk query."""


class ExportError(PlatformError):
    """The export cannot be written: a bad output path, or a store that cannot prove the
    selected events (a batch no checkpoint covers yet, a missing key registration)."""


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    events: int
    events_by_family: dict[str, int]
    batches: int
    checkpoints: int
    keys: int
    files: int
    bytes: int
    seconds: float


# --- small Merkle helpers ------------------------------------------------------------------


class _Levels:
    """Every level of an RFC 6962 tree, built once; audit paths read from it."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self.levels: list[Sequence[bytes]] = [leaves]
        level = leaves
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def root(self) -> bytes:
        return root_from_leaf_hashes(self.levels[0]) if self.size == 0 else self.levels[-1][0]

    def path(self, index: int) -> list[bytes]:
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof


# --- reading the store ---------------------------------------------------------------------


def _micros(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass
class _Batch:
    producer_id: str
    sequence: int
    key_id: str
    prev_digest: bytes
    created_at_us: int
    event_count: int
    merkle_root: bytes
    signature: bytes
    topic: str
    partition: int
    offset: int
    selected: int = 0
    tree_index: int = -1
    checkpoint: _Checkpoint | None = None
    proof: list[bytes] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.producer_id}#{self.sequence}"

    @property
    def head(self) -> BatchHead:
        return BatchHead(
            producer_id=self.producer_id,
            key_id=self.key_id,
            sequence=self.sequence,
            prev_digest=self.prev_digest,
            created_at_us=self.created_at_us,
            event_count=self.event_count,
            merkle_root=self.merkle_root,
        )


@dataclass(frozen=True)
class _Checkpoint:
    origin: str
    tree_size: int
    next_offset: int
    root: bytes
    key_id: str
    note: str


class _Reader:
    def __init__(self, store: Store, selection: Selection) -> None:
        self.store = store
        self.db = store.database
        self.cond, self.params = selection.event_condition(self.db)

    def selected_batches(self) -> list[_Batch]:
        db = self.db
        counts = self.store.query(
            f"SELECT producer_id, batch_sequence, count() FROM {db}.events WHERE {self.cond} "
            "GROUP BY producer_id, batch_sequence",
            self.params,
        ).rows
        rows = self.store.query(
            "SELECT producer_id, sequence, key_id, hex(prev_digest), "
            "toUnixTimestamp64Micro(created_at), event_count, hex(merkle_root), hex(signature), "
            f"topic, partition, offset FROM {db}.batches WHERE (producer_id, sequence) IN "
            f"(SELECT producer_id, batch_sequence FROM {db}.events WHERE {self.cond}) "
            "ORDER BY producer_id, sequence, offset LIMIT 1 BY producer_id, sequence",
            self.params,
        ).rows
        batches = {
            (r[0], int(r[1])): _Batch(
                producer_id=r[0],
                sequence=int(r[1]),
                key_id=r[2],
                prev_digest=bytes.fromhex(r[3]),
                created_at_us=int(r[4]),
                event_count=int(r[5]),
                merkle_root=bytes.fromhex(r[6]),
                signature=bytes.fromhex(r[7]),
                topic=r[8],
                partition=int(r[9]),
                offset=int(r[10]),
            )
            for r in rows
        }
        for producer, seq, n in counts:
            batch = batches.get((producer, int(seq)))
            if batch is None:
                raise ExportError(
                    f"events of batch {producer}#{seq} are in the store but the batch is not"
                )
            batch.selected = int(n)
        return sorted(batches.values(), key=lambda b: (b.producer_id, b.sequence))

    def partition_leaves(self, topic: str, partition: int) -> tuple[list[bytes], list[int]]:
        """Leaf hashes of a partition's tree (its accepted batches in bus order) and their
        offsets, each leaf recomputed from the signed head fields."""
        rows = self.store.query(
            "SELECT producer_id, key_id, sequence, hex(prev_digest), "
            "toUnixTimestamp64Micro(created_at), event_count, hex(merkle_root), offset "
            f"FROM {self.db}.batches WHERE topic = {{xt:String}} AND partition = {{xp:UInt32}} "
            "ORDER BY offset LIMIT 1 BY offset",
            {"xt": topic, "xp": partition},
        ).rows
        leaves = [
            leaf_hash(
                batch_digest(
                    BatchHead(
                        producer_id=r[0],
                        key_id=r[1],
                        sequence=int(r[2]),
                        prev_digest=bytes.fromhex(r[3]),
                        created_at_us=int(r[4]),
                        event_count=int(r[5]),
                        merkle_root=bytes.fromhex(r[6]),
                    )
                )
            )
            for r in rows
        ]
        return leaves, [int(r[7]) for r in rows]

    def checkpoints(self, topic: str, partition: int) -> list[_Checkpoint]:
        rows = self.store.query(
            "SELECT tree_size, next_offset, key_id, note "
            f"FROM {self.db}.checkpoints WHERE topic = {{xt:String}} AND partition = {{xp:UInt32}} "
            "ORDER BY tree_size, next_offset LIMIT 1 BY tree_size, next_offset",
            {"xt": topic, "xp": partition},
        ).rows
        out = []
        for size, next_offset, key_id, note in rows:
            try:
                checkpoint, _, _ = parse_note(note)
            except CheckpointError as exc:
                raise ExportError(
                    f"the stored checkpoint of {topic}/{partition} @ {size} is unreadable: {exc}"
                ) from None
            out.append(
                _Checkpoint(
                    checkpoint.origin,
                    int(size),
                    int(next_offset),
                    checkpoint.root_hash,
                    key_id,
                    note,
                )
            )
        return out

    def registrations(self, key_ids: Sequence[str]) -> dict[str, KeyRegistration]:
        if not key_ids:
            return {}
        rows = self.store.query(
            "SELECT key_id, producer_id, hex(public_key), toUnixTimestamp64Micro(valid_from), "
            "toUnixTimestamp64Micro(valid_until), toUnixTimestamp64Micro(revoked_at), "
            "toUnixTimestamp64Micro(registered_at), root_key_id, hex(signature) "
            f"FROM {self.db}.keys WHERE key_id IN {{xk:Array(String)}} "
            "ORDER BY key_id, registered_at DESC LIMIT 1 BY key_id",
            {"xk": sorted(set(key_ids))},
        ).rows
        return {
            r[0]: KeyRegistration(
                key_id=r[0],
                producer_id=r[1],
                public_key=bytes.fromhex(r[2]),
                valid_from_us=int(r[3]),
                valid_until_us=_micros(r[4]),
                revoked_at_us=_micros(r[5]),
                registered_at_us=int(r[6]),
                root_key_id=r[7],
                signature=bytes.fromhex(r[8]),
            )
            for r in rows
        }

    def event_rows(self, chunk: Sequence[_Batch]) -> list[tuple[Any, ...]]:
        """Every event row of the chunk's batches (ordered by batch and leaf), with the bytes
        (base64) of the selected ones."""
        ranges: dict[str, list[int]] = {}
        for batch in chunk:
            lo_hi = ranges.setdefault(batch.producer_id, [batch.sequence, batch.sequence])
            lo_hi[0] = min(lo_hi[0], batch.sequence)
            lo_hi[1] = max(lo_hi[1], batch.sequence)
        params = dict(self.params)
        terms = []
        for i, (producer, (lo, hi)) in enumerate(sorted(ranges.items())):
            terms.append(
                f"(producer_id = {{xb_p{i}:String}} AND batch_sequence BETWEEN "
                f"{{xb_lo{i}:UInt64}} AND {{xb_hi{i}:UInt64}})"
            )
            params.update({f"xb_p{i}": producer, f"xb_lo{i}": lo, f"xb_hi{i}": hi})
        in_range = " OR ".join(terms)
        db = self.db
        return self.store.query(
            "SELECT producer_id, batch_sequence, leaf_index, hex(leaf_hash), toString(event_id), "
            f"family, if({self.cond}, base64Encode(event_bytes), '') AS bytes64, ({self.cond}) "
            f"FROM {db}.events WHERE ({in_range}) AND (producer_id, batch_sequence) IN "
            f"(SELECT producer_id, batch_sequence FROM {db}.events "
            f"WHERE ({in_range}) AND ({self.cond})) "
            "ORDER BY producer_id, batch_sequence, leaf_index "
            "LIMIT 1 BY producer_id, batch_sequence, leaf_index",
            params,
        ).rows


def _chunks(batches: Sequence[_Batch]) -> Iterator[list[_Batch]]:
    chunk: list[_Batch] = []
    rows = 0
    producers: set[str] = set()
    for batch in batches:
        full = rows + batch.event_count > CHUNK_EVENTS
        if chunk and (
            full or (batch.producer_id not in producers and len(producers) >= CHUNK_RANGES)
        ):
            yield chunk
            chunk, rows, producers = [], 0, set()
        chunk.append(batch)
        rows += batch.event_count
        producers.add(batch.producer_id)
    if chunk:
        yield chunk


# --- writing the files ---------------------------------------------------------------------


class _FamilyFiles:
    """The open .avro and .jsonl of each family, created on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: dict[str, tuple[IO[bytes], Writer, IO[str]]] = {}
        self.counts: dict[str, int] = {}

    def write(self, family: str, record: dict[str, Any], line: str) -> None:
        files = self._open.get(family)
        if files is None:
            stem = fmt.FAMILY_FILES[family]
            (self.root / fmt.EVENTS_DIR).mkdir(exist_ok=True)
            # Both stay open across chunks; close() closes them.
            avro = (self.root / fmt.avro_path(stem)).open("wb")
            writer = Writer(avro, fmt.PARSED_EXPORTED_EVENT, codec=fmt.AVRO_CODEC)
            jsonl = (self.root / fmt.jsonl_path(stem)).open("w", encoding="utf-8", newline="\n")
            files = self._open[family] = (avro, writer, jsonl)
            self.counts[stem] = 0
        files[1].write(record)
        files[2].write(line + "\n")
        self.counts[fmt.FAMILY_FILES[family]] += 1

    def close(self) -> None:
        for avro, writer, jsonl in self._open.values():
            writer.flush()
            avro.close()
            jsonl.close()
        self._open.clear()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _prepare_output(out_path: Path) -> tuple[bool, Path]:
    as_zip = out_path.suffix.lower() == ".zip"
    if as_zip:
        if out_path.exists():
            raise ExportError(f"{out_path} already exists; choose a new file name")
    elif out_path.exists():
        if not out_path.is_dir():
            raise ExportError(f"{out_path} exists and is not a directory")
        if any(out_path.iterdir()):
            raise ExportError(f"{out_path} is not empty; choose a new or empty directory")
    parent = out_path.parent
    if not parent.is_dir():
        raise ExportError(f"the directory {parent} does not exist")
    work = parent / f".{out_path.name}.partial-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    return as_zip, work


# --- the export ----------------------------------------------------------------------------


def export_bundle(
    store: Store,
    selection: Selection,
    out_path: str | os.PathLike[str],
    *,
    export_key: SigningKey,
    exported_by: str,
    report_html: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write the bundle of ``selection`` to ``out_path`` (a ``.zip`` file, else a directory
    that must not exist or be empty), its manifest signed with ``export_key``.

    Raises ExportError (one line) when the bundle cannot be made: nothing is left at
    ``out_path`` then. ``progress`` is called with the number of events written so far.
    """
    started = time.monotonic()
    out = Path(out_path)
    as_zip, work = _prepare_output(out)
    try:
        counts = _write_contents(
            store, selection, work, export_key, exported_by, report_html, progress
        )
        files = sorted(p for p in work.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        if as_zip:
            partial = out.with_name(f".{out.name}.partial-{os.getpid()}.zip")
            with zipfile.ZipFile(partial, "w", allowZip64=True) as zf:
                for path in files:
                    name = path.relative_to(work).as_posix()
                    stored = name.endswith(".avro")  # already deflated
                    zf.write(
                        path,
                        name,
                        compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                    )
            os.replace(partial, out)
            shutil.rmtree(work)
        else:
            if out.exists():
                out.rmdir()  # checked empty above
            os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ExportSummary(
        path=out,
        events=counts["events"],
        events_by_family=dict(counts["events_by_family"]),
        batches=counts["batches"],
        checkpoints=counts["checkpoints"],
        keys=counts["keys"],
        files=len(files),
        bytes=size,
        seconds=time.monotonic() - started,
    )


def _write_contents(
    store: Store,
    selection: Selection,
    root: Path,
    export_key: SigningKey,
    exported_by: str,
    report_html: str | None,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    reader = _Reader(store, selection)
    exported_at = datetime.now(UTC)
    exported_at_us = fmt.iso_to_us(exported_at.isoformat())

    # The export key must be registered under the root and valid now.
    export_reg = reader.registrations([export_key.key_id]).get(export_key.key_id)
    if export_reg is None:
        raise ExportError(
            f"the export key {export_key.key_id} is not in the store's key registry yet; "
            "run the materialiser so it reads the registration"
        )
    if export_reg.public_key != export_key.public_key:
        raise ExportError(f"the registration of key {export_key.key_id} is of another key")
    if export_reg.producer_id != fmt.EXPORT_KEY_OWNER:
        raise ExportError(
            f"key {export_key.key_id} is registered to {export_reg.producer_id}, "
            f"not {fmt.EXPORT_KEY_OWNER}"
        )
    valid, why = export_reg.is_valid_at(exported_at_us)
    if not valid:
        raise ExportError(f"the export key {export_key.key_id} is not valid now ({why})")

    batches = reader.selected_batches()
    partitions = _prove_batches(reader, batches)
    checkpoints_used = [c for part in partitions for c in part.checkpoints]

    # keys.json: the batches' producer keys, the checkpoints' keys, the export key.
    wanted = {b.key_id for b in batches} | {c.key_id for c in checkpoints_used}
    registrations = reader.registrations(sorted(wanted))
    registrations[export_reg.key_id] = export_reg
    missing = sorted(wanted - registrations.keys())
    if missing:
        raise ExportError(f"key {missing[0]} is not in the store's key registry")
    for checkpoint in checkpoints_used:
        reg = registrations[checkpoint.key_id]
        if reg.producer_id != fmt.CHECKPOINT_KEY_OWNER:
            raise ExportError(
                f"checkpoint {checkpoint.origin} @ {checkpoint.tree_size} is signed by key "
                f"{reg.key_id} of {reg.producer_id}, not the platform's checkpoint key"
            )
        try:
            open_checkpoint(checkpoint.note, [reg.public_key])
        except CheckpointError as exc:
            raise ExportError(f"a stored checkpoint does not verify: {exc}") from None

    # Events, chunk by chunk.
    families = _FamilyFiles(root)
    try:
        renderer = fmt.EventRenderer(default_catalogue())
        done = _write_events(reader, batches, families, progress, renderer)
    finally:
        families.close()

    (root / fmt.BATCHES_FILE).write_bytes(
        fmt.json_list_bytes(
            fmt.BundleBatch(
                producer_id=b.producer_id,
                key_id=b.key_id,
                sequence=b.sequence,
                prev_digest=b.prev_digest,
                created_at_us=b.created_at_us,
                event_count=b.event_count,
                merkle_root=b.merkle_root,
                signature=b.signature,
                topic=b.topic,
                partition=b.partition,
                offset=b.offset,
                tree_index=b.tree_index,
                checkpoint_origin=b.checkpoint.origin if b.checkpoint else "",
                checkpoint_size=b.checkpoint.tree_size if b.checkpoint else 0,
                checkpoint_proof=tuple(b.proof),
            ).to_json()
            for b in batches
        )
    )
    chains = _checkpoint_chains(partitions)
    (root / fmt.CHECKPOINTS_FILE).write_bytes(fmt.json_bytes([chain.to_json() for chain in chains]))
    regs = sorted(registrations.values(), key=lambda r: (r.producer_id, r.key_id))
    (root / fmt.KEYS_FILE).write_bytes(
        fmt.json_list_bytes(fmt.registration_to_json(r) for r in regs)
    )
    _copy_schemas(root / fmt.SCHEMAS_DIR)
    if report_html is not None:
        (root / fmt.REPORT_FILE).write_text(report_html, encoding="utf-8")

    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        files.append({"path": name, "sha256": _sha256_file(path), "bytes": path.stat().st_size})
    counts = {
        "events": done,
        "events_by_family": dict(sorted(families.counts.items())),
        "batches": len(batches),
        "checkpoints": sum(len(chain.notes) for chain in chains),
        "keys": len(regs),
    }
    manifest = {
        "format": fmt.FORMAT,
        "selection": selection.describe(),
        "exported_at": exported_at.isoformat(),
        "exported_by": exported_by,
        "root_key_id": export_reg.root_key_id,
        "export_key_id": export_key.key_id,
        "counts": counts,
        "files": files,
    }
    manifest_bytes = fmt.json_bytes(manifest)
    (root / fmt.MANIFEST).write_bytes(manifest_bytes)
    (root / fmt.MANIFEST_SIG).write_bytes(
        fmt.signature_bytes(export_key.key_id, export_key.sign(manifest_bytes))
    )
    return counts


@dataclass
class _PartitionProofs:
    topic: str
    partition: int
    leaves: list[bytes]
    checkpoints: list[_Checkpoint]
    """The checkpoints the bundle holds for this partition, ascending."""


def _prove_batches(reader: _Reader, batches: list[_Batch]) -> list[_PartitionProofs]:
    """Give each batch its tree index, covering checkpoint and inclusion proof; return per
    partition the checkpoints the bundle holds (those used, and the latest)."""
    by_partition: dict[tuple[str, int], list[_Batch]] = {}
    for batch in batches:
        by_partition.setdefault((batch.topic, batch.partition), []).append(batch)
    out = []
    for (topic, partition), members in sorted(by_partition.items()):
        # Checkpoints first: every batch they cover was in ``batches`` before they were signed.
        checkpoints = reader.checkpoints(topic, partition)
        leaves, offsets = reader.partition_leaves(topic, partition)
        index_of = {offset: i for i, offset in enumerate(offsets)}
        sizes = [c.tree_size for c in checkpoints]
        chosen: dict[_Checkpoint, list[_Batch]] = {}
        for batch in members:
            batch.tree_index = index_of[batch.offset]
            at = bisect.bisect_right(sizes, batch.tree_index)
            if at == len(checkpoints):
                raise ExportError(
                    f"batch {batch.name} is not covered by a checkpoint yet; "
                    "run the materialiser until it catches up"
                )
            chosen.setdefault(checkpoints[at], []).append(batch)
        chosen.setdefault(checkpoints[-1], [])
        for checkpoint, covered in chosen.items():
            if checkpoint.tree_size > len(leaves):
                raise ExportError(
                    f"checkpoint {checkpoint.origin} @ {checkpoint.tree_size} covers more "
                    f"batches than the store holds of {topic}/{partition} ({len(leaves)})"
                )
            tree = _Levels(leaves[: checkpoint.tree_size])
            if tree.root != checkpoint.root:
                raise ExportError(
                    f"checkpoint {checkpoint.origin} @ {checkpoint.tree_size} does not match "
                    f"the store's batches of {topic}/{partition}"
                )
            for batch in covered:
                batch.checkpoint = checkpoint
                batch.proof = tree.path(batch.tree_index)
        held = sorted(chosen, key=lambda c: (c.tree_size, c.next_offset))
        out.append(_PartitionProofs(topic, partition, leaves, held))
    return out


def _checkpoint_chains(partitions: list[_PartitionProofs]) -> list[fmt.CheckpointChain]:
    chains = []
    for part in partitions:
        notes = part.checkpoints
        proofs = [
            fmt.ConsistencyProof(
                old.tree_size,
                new.tree_size,
                tuple(consistency_proof(part.leaves[: new.tree_size], old.tree_size)),
            )
            for old, new in pairwise(notes)
        ]
        origin = notes[0].origin
        if any(c.origin != origin for c in notes):
            raise ExportError(f"the checkpoints of {part.topic}/{part.partition} name two origins")
        chains.append(fmt.CheckpointChain(origin, tuple(c.note for c in notes), tuple(proofs)))
    return sorted(chains, key=lambda c: c.origin)


def _write_events(
    reader: _Reader,
    batches: list[_Batch],
    families: _FamilyFiles,
    progress: Callable[[int], None] | None,
    renderer: fmt.EventRenderer,
) -> int:
    by_key = {(b.producer_id, b.sequence): b for b in batches}
    done = 0
    for chunk in _chunks(batches):
        rows = reader.event_rows(chunk)
        start = 0
        while start < len(rows):
            producer, seq = rows[start][0], int(rows[start][1])
            end = start
            while end < len(rows) and rows[end][0] == producer and int(rows[end][1]) == seq:
                end += 1
            batch = by_key.get((producer, seq))
            if batch is not None:
                done += _write_batch(batch, rows[start:end], families, renderer)
            start = end
        if progress is not None:
            progress(done)
    expected = sum(b.selected for b in batches)
    if done != expected:
        raise ExportError(f"the store changed during the export: {done} of {expected} events read")
    return done


def _write_batch(
    batch: _Batch,
    rows: Sequence[tuple[Any, ...]],
    families: _FamilyFiles,
    renderer: fmt.EventRenderer,
) -> int:
    leaves = [bytes.fromhex(r[3]) for r in rows]
    if [int(r[2]) for r in rows] != list(range(batch.event_count)):
        raise ExportError(
            f"the store holds {len(rows)} event rows of batch {batch.name}, not its "
            f"{batch.event_count} events: their inclusion proofs cannot be made"
        )
    tree = _Levels(leaves)
    if tree.root != batch.merkle_root:
        raise ExportError(f"the stored events of batch {batch.name} do not hash to its signed root")
    written = 0
    for index, (_, _, _, _, event_id, family, bytes64, selected) in enumerate(rows):
        if not selected:
            continue
        data = base64.b64decode(bytes64)
        if leaf_hash(data) != leaves[index]:
            raise ExportError(f"the stored bytes of event {event_id} do not match its leaf hash")
        try:
            fullname, record = renderer.decode(data)
        except AuditError as exc:
            raise ExportError(f"event {event_id} does not decode: {exc}") from None
        if fullname != family or fullname not in fmt.FAMILY_FILES:
            raise ExportError(f"event {event_id} is a {fullname}, stored as a {family}")
        families.write(
            family,
            {
                "event_id": event_id,
                "family": family,
                "producer_id": batch.producer_id,
                "batch_sequence": batch.sequence,
                "leaf_index": index,
                "event_bytes": data,
                "inclusion_proof": tree.path(index),
            },
            renderer.line(event_id, record),
        )
        written += 1
    return written


def _copy_schemas(target: Path) -> None:
    target.mkdir()
    source = resources.files("schemas")
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".avsc"):
            (target / entry.name).write_bytes(entry.read_bytes())
