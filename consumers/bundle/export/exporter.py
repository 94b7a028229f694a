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
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigc_audit.consumers.bundle.export.bundle_files import (
    FamilyFiles,
    copy_schemas,
    prepare_output,
    sha256_file,
)
from aigc_audit.consumers.bundle.export.errors import ExportError
from aigc_audit.consumers.bundle.export.proofs import checkpoint_chains, prove_batches
from aigc_audit.consumers.bundle.export.store_reader import (
    StoredBatch,
    StoreReader,
    TreeLevels,
    batch_chunks,
)
from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.checkpoints.note import CheckpointError, open_checkpoint
from aigc_audit.consumers.query.selection import Selection
from aigc_audit.consumers.store.base import Store
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.merkle import leaf_hash
from aigc_audit.producers.signing import SigningKey


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
    as_zip, work = prepare_output(out)
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
    reader = StoreReader(store, selection)
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
    partitions = prove_batches(reader, batches)
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
    families = FamilyFiles(root)
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
    chains = checkpoint_chains(partitions)
    (root / fmt.CHECKPOINTS_FILE).write_bytes(fmt.json_bytes([chain.to_json() for chain in chains]))
    regs = sorted(registrations.values(), key=lambda r: (r.producer_id, r.key_id))
    (root / fmt.KEYS_FILE).write_bytes(
        fmt.json_list_bytes(fmt.registration_to_json(r) for r in regs)
    )
    copy_schemas(root / fmt.SCHEMAS_DIR)
    if report_html is not None:
        (root / fmt.REPORT_FILE).write_text(report_html, encoding="utf-8")

    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        files.append({"path": name, "sha256": sha256_file(path), "bytes": path.stat().st_size})
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


def _write_events(
    reader: StoreReader,
    batches: list[StoredBatch],
    families: FamilyFiles,
    progress: Callable[[int], None] | None,
    renderer: fmt.EventRenderer,
) -> int:
    by_key = {(b.producer_id, b.sequence): b for b in batches}
    done = 0
    for chunk in batch_chunks(batches):
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
    batch: StoredBatch,
    rows: Sequence[tuple[Any, ...]],
    families: FamilyFiles,
    renderer: fmt.EventRenderer,
) -> int:
    leaves = [bytes.fromhex(r[3]) for r in rows]
    if [int(r[2]) for r in rows] != list(range(batch.event_count)):
        raise ExportError(
            f"the store holds {len(rows)} event rows of batch {batch.name}, not its "
            f"{batch.event_count} events: their inclusion proofs cannot be made"
        )
    tree = TreeLevels(leaves)
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
                "inclusion_proof": b"".join(tree.path(index)),
            },
            renderer.line(event_id, record),
        )
        written += 1
    return written
