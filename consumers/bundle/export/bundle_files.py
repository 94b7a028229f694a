"""The files of a bundle on disk: per-family event files, hashing, the output path, schemas."""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any

from fastavro.write import Writer

from aigc_audit.consumers.bundle.export.errors import ExportError
from aigc_audit.consumers.bundle.format import records as fmt

# --- writing the files ---------------------------------------------------------------------


class FamilyFiles:
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
            writer = Writer(
                avro,
                fmt.PARSED_EXPORTED_EVENT,
                codec=fmt.AVRO_CODEC,
                sync_interval=fmt.AVRO_BLOCK_BYTES,
            )
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def prepare_output(out_path: Path) -> tuple[bool, Path]:
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


def copy_schemas(target: Path) -> None:
    """The schemas of the installed ``schemas`` package, and its released snapshots
    (``released/v*/``): an event written under an older version of its schema carries that
    version's fingerprint, and the verifier needs that version to read it."""
    _copy_avsc(resources.files("aigc_audit.schemas"), target)


def _copy_avsc(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True)
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".avsc"):
            (target / entry.name).write_bytes(entry.read_bytes())
        elif entry.is_dir() and entry.name == "released":
            for release in sorted(entry.iterdir(), key=lambda e: e.name):
                if release.is_dir():
                    _copy_avsc(release, target / "released" / release.name)
