"""Checks 1 and 2: the manifest's signature, and every file against the manifest."""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Mapping
from typing import Any

from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify.result import Problems, short_id
from aigc_audit.consumers.bundle.verify.source import Unreadable, reason_of
from aigc_audit.consumers.bundle.verify.verifier_base import VerifierBase
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.signing import verify_registration, verify_signature


class ManifestChecks(VerifierBase):
    # -- 1 ----------------------------------------------------------------------------------

    def _check_manifest(self, problem: Problems) -> str:
        """1. manifest signature: the manifest is signed by a registered export key"""
        if self.manifest is None:
            problem(self.manifest_error or f"{fmt.MANIFEST} is missing")
            return ""
        manifest = self.manifest
        if manifest.get("format") not in fmt.FORMATS:
            problem(f"unknown bundle format {manifest.get('format')!r}, expected {fmt.FORMAT}")
        try:
            key_id, signature = fmt.parse_signature(self.source.read(fmt.MANIFEST_SIG))
        except (Unreadable, fmt.FormatError) as exc:
            problem(str(exc))
            return ""
        export_key_id = manifest.get("export_key_id")
        if key_id != export_key_id:
            problem(f"{fmt.MANIFEST_SIG} names key {key_id}, the manifest {export_key_id}")
        if manifest.get("root_key_id") != self.root_id:
            problem(
                f"the bundle names root key {manifest.get('root_key_id')}, "
                f"not the trusted root {self.root_id}"
            )
        if self.registrations is None:
            problem(f"the export key's registration cannot be read: {self.keys_error}")
            return ""
        reg = self._latest(self.registrations, key_id)
        if reg is None:
            problem(f"the export key {key_id} has no registration in {fmt.KEYS_FILE}")
            return ""
        try:
            verify_registration(self.root, reg)
        except AuditError as exc:
            problem(f"the export key {key_id} is not registered by the root: {exc}")
            return ""
        if reg.producer_id != fmt.EXPORT_KEY_OWNER:
            problem(f"key {key_id} is registered to {reg.producer_id}, not {fmt.EXPORT_KEY_OWNER}")
        exported_at = manifest.get("exported_at")
        try:
            valid, why = reg.is_valid_at(fmt.iso_to_us(str(exported_at)))
            if not valid:
                problem(f"the export key {key_id} was not valid at {exported_at} ({why})")
        except fmt.FormatError as exc:
            problem(f"exported_at: {exc}")
        try:
            verify_signature(reg.public_key, self.source.read(fmt.MANIFEST), signature)
        except AuditError:
            problem(f"the signature over {fmt.MANIFEST} does not verify under key {key_id}")
        return (
            f"signed by export key {short_id(key_id)} (registered by root {short_id(self.root_id)})"
            f", exported {exported_at} by {manifest.get('exported_by')}"
        )

    # -- 2 ----------------------------------------------------------------------------------

    def _hash(self, name: str) -> tuple[int, Any]:
        """The size and SHA-256 of a file of the bundle (a file of its own is mapped in
        memory rather than copied out block by block)."""
        digest = hashlib.sha256()
        path = self.source.path(name)
        if path is not None:
            with path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size:
                    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                        view = memoryview(data)
                        try:
                            for at in range(0, size, 8 << 20):
                                digest.update(view[at : at + (8 << 20)])
                        finally:
                            view.release()
            return size, digest
        size = 0
        with self.source.open(name) as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
                size += len(block)
        return size, digest

    def _check_files(self, problem: Problems) -> str:
        """2. files: every file matches its SHA-256 in the manifest"""
        for name in self.source.duplicates:
            problem(f"the zip holds {name} more than once")
        if self.manifest is None:
            problem(f"no readable {fmt.MANIFEST} to check the files against")
            return ""
        listed = self.manifest.get("files")
        if not isinstance(listed, list):
            problem(f"{fmt.MANIFEST} has no list of files")
            return ""
        names: set[str] = set()
        total = 0
        for entry in listed:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str):
                problem(f"a manifest file entry is malformed: {entry!r:.80}")
                continue
            name = entry["path"]
            if name in names:
                problem(f"{name} is listed twice")
            names.add(name)
            if not self.source.has(name):
                problem(f"{name} is missing")
                continue
            try:
                size, digest = self._hash(name)
            except Exception as exc:  # a damaged zip member
                problem(f"{name} cannot be read ({reason_of(exc)})")
                continue
            total += size
            if size != entry.get("bytes"):
                problem(f"{name} is {size} bytes, the manifest says {entry.get('bytes')}")
            if digest.hexdigest() != entry.get("sha256"):
                problem(f"{name} does not match its SHA-256 in the manifest")
        for name in self.source.names():
            if name not in names and name not in (fmt.MANIFEST, fmt.MANIFEST_SIG):
                problem(f"{name} is not listed in the manifest")
        ignored = self.source.ignored
        note = f" (ignored OS metadata: {', '.join(ignored[:3])})" if ignored else ""
        return f"{len(names)} files ({total:,} bytes) match their SHA-256 in the manifest{note}"
