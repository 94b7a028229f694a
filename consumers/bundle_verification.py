"""Verifies an export bundle offline, with nothing but the bundle and the provider's root key.

Seven numbered checks run in order and each is recorded, pass or fail; a failure never stops the
others, so one run reports everything that is wrong:

1. manifest signature: the manifest is signed by an export key the root registered, valid then;
2. files: every file has the SHA-256 and size the manifest lists, and no file is unlisted;
3. keys: every registration in ``keys.json`` is signed by the root key;
4. checkpoints: every checkpoint is signed by a registered checkpoint key, and each partition's
   checkpoints are consistent (each tree extends the one before);
5. batches: each batch head is signed by its producer's key, valid at the batch's time, and is
   a leaf of a signed checkpoint;
6. events: each event's exact bytes lead, with their inclusion proof, to their batch's signed
   Merkle root; they decode under the bundled schemas as the event they claim to be; the JSON
   Lines copy says the same;
7. counts: the manifest's counts are what the bundle holds.

The proofs chain from the root key to every event byte: root → key registrations → batch
signatures and checkpoint signatures → Merkle roots → events. Nothing here needs the store, a
network, or anything from the provider beyond the root public key. Imports are limited to the
standard library, fastavro, cryptography and the client library.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from fastavro import reader as avro_reader
from fastavro.schema import to_parsing_canonical_form

from consumers.checkpoints.note import open_checkpoint
from consumers.export import bundle_format as fmt
from producers.codec import SchemaCatalogue
from producers.errors import AuditError
from producers.merkle import leaf_hash, verify_consistency, verify_inclusion
from producers.signing import (
    KeyRegistration,
    batch_digest,
    batch_signing_input,
    key_id_for,
    verify_registration,
    verify_signature,
)

MAX_PROBLEMS = 200
"""Problems kept per check (all are counted)."""
SHOWN_PROBLEMS = 3
"""Problems a check's detail line names."""

_BUNDLE_FILES = (
    fmt.MANIFEST,
    fmt.MANIFEST_SIG,
    fmt.BATCHES_FILE,
    fmt.CHECKPOINTS_FILE,
    fmt.KEYS_FILE,
)


class BundleError(AuditError):
    """The path is not a bundle at all (missing, or neither a bundle directory nor a zip)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    problems: tuple[str, ...] = ()
    """Every problem found (up to MAX_PROBLEMS), the first of them in ``detail``."""


@dataclass
class BundleVerification:
    path: Path
    checks: list[Check] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    """What the bundle holds: events (and by family), batches, checkpoints, keys."""
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def check(self, number: int) -> Check:
        """The check whose name starts with ``number``."""
        for check in self.checks:
            if check.name.startswith(f"{number}."):
                return check
        raise KeyError(number)


def _short(key_id: str) -> str:
    return f"{key_id[:8]}…" if len(key_id) > 8 else key_id


def _n(count: Any, noun: str) -> str:
    plural = noun + ("es" if noun.endswith(("s", "ch")) else "s")
    return f"{count} {noun if count == 1 else plural}"


def format_checks(result: BundleVerification) -> list[str]:
    """One line per check: ``✓ 1. manifest signature: ...`` or ``✗ 6. events: ...``."""
    return [f"{'✓' if c.ok else '✗'} {c.name}: {c.detail}" for c in result.checks]


# --- the bundle as a set of files ----------------------------------------------------------


class _Unreadable(Exception):
    pass


class _Source:
    """The files of a bundle, by their posix path inside it."""

    label: str
    damage: str | None = None
    duplicates: tuple[str, ...] = ()
    ignored: list[str]
    """Files a file manager left (``.DS_Store``...): named in check 2, otherwise ignored."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def schemas_root(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def has(self, name: str) -> bool:
        return name in self._name_set

    @property
    def _name_set(self) -> set[str]:
        cached = getattr(self, "_names_cache", None)
        if cached is None:
            cached = set(self.names())
            self._names_cache = cached
        return cached

    def read(self, name: str) -> bytes:
        if not self.has(name):
            raise _Unreadable(f"{name} is missing")
        try:
            with self.open(name) as fh:
                return fh.read()
        except Exception as exc:  # zipfile raises assorted errors for damaged members
            raise _Unreadable(f"{name} cannot be read ({_reason(exc)})") from None


_OS_METADATA = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _os_metadata(name: str) -> bool:
    """Files a file manager leaves in a folder it shows (never part of a bundle)."""
    path = PurePosixPath(name)
    return path.name in _OS_METADATA or path.parts[0] == "__MACOSX" or path.name.startswith("._")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _DirSource(_Source):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self._names = [n for n in names if not _os_metadata(n)]
        self.ignored = [n for n in names if _os_metadata(n)]

    def names(self) -> list[str]:
        return self._names

    def open(self, name: str) -> IO[bytes]:
        return (self.root / name).open("rb")

    def schemas_root(self) -> Any:
        return self.root / fmt.SCHEMAS_DIR


class _ZipSource(_Source):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        self._zip: zipfile.ZipFile | None = None
        self._names: list[str] = []
        self.ignored = []
        try:
            self._zip = zipfile.ZipFile(path)
            infos = [i for i in self._zip.infolist() if not i.is_dir()]
        except Exception as exc:  # BadZipFile, or a damaged directory's assorted errors
            self.damage = f"the zip file is damaged ({_reason(exc)})"
            return
        names = [i.filename for i in infos]
        seen: set[str] = set()
        self.duplicates = tuple(sorted({n for n in names if n in seen or seen.add(n)}))
        self._names = sorted(n for n in set(names) if not _os_metadata(n))
        self.ignored = sorted(n for n in set(names) if _os_metadata(n))

    def names(self) -> list[str]:
        return self._names

    def open(self, name: str) -> IO[bytes]:
        assert self._zip is not None
        return self._zip.open(name)

    def schemas_root(self) -> Any:
        assert self._zip is not None
        return zipfile.Path(self._zip, f"{fmt.SCHEMAS_DIR}/")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _open_source(path: Path) -> _Source:
    if not path.exists():
        raise BundleError(f"{path} does not exist")
    if path.is_dir():
        source: _Source = _DirSource(path)
    elif zipfile.is_zipfile(path):
        source = _ZipSource(path)
    else:
        raise BundleError(f"{path} is not an export bundle: neither a directory nor a zip file")
    if source.damage is None and not any(
        n in _BUNDLE_FILES or n.startswith(f"{fmt.EVENTS_DIR}/") for n in source.names()
    ):
        source.close()
        raise BundleError(f"{path} is not an export bundle: it holds no {fmt.MANIFEST}")
    return source


# --- problems ------------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0

    def __call__(self, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(message)

    def check(self, name: str, ok_detail: str) -> Check:
        if not self.count:
            return Check(name, True, ok_detail)
        shown = "; ".join(self.items[:SHOWN_PROBLEMS])
        if self.count > SHOWN_PROBLEMS:
            shown += f" (and {self.count - SHOWN_PROBLEMS} more)"
        return Check(name, False, shown, tuple(self.items))


# --- inclusion proofs, many per batch ------------------------------------------------------

_sha256 = hashlib.sha256


def _included(
    leaf: bytes,
    index: int,
    size: int,
    proof: list[bytes],
    root: bytes,
    memo: dict[int, tuple[bytes, list[bytes]]],
) -> bool:
    """RFC 9162 §2.1.3.2 inclusion of ``leaf`` at ``index``, remembering every node a proof
    has established: a later proof that reaches an established node with the same remaining
    path is done there (so a whole batch costs about one hash per event, not log2 n)."""
    fn, sn, r, level = index, size - 1, leaf, 0
    trail = []
    for pos, p in enumerate(proof):
        if sn == 0 or len(p) != 32:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
                level += 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
        level += 1
        key = fn << 6 | level
        known = memo.get(key)
        if known is not None and known[0] == r and known[1] == proof[pos + 1 :]:
            for k, value, rest in trail:
                memo[k] = (value, proof[rest:])
            return True
        trail.append((key, r, pos + 1))
    if sn != 0 or r != root or len(leaf) != 32:
        return False
    for k, value, rest in trail:
        memo[k] = (value, proof[rest:])
    return True


@dataclass
class _BatchState:
    name: str
    producer_id: str
    merkle_root: bytes
    event_count: int
    ok: bool
    memo: dict[int, tuple[bytes, list[bytes]]] = field(default_factory=dict)
    seen: bytearray = field(default_factory=bytearray)


# --- the verifier --------------------------------------------------------------------------


def _same_json(line: str, rendered: str) -> bool:
    try:
        return json.loads(line) == json.loads(rendered)
    except ValueError:
        return False


class _Verifier:
    def __init__(self, source: _Source, root_public_key: bytes) -> None:
        self.source = source
        self.root = root_public_key
        self.root_id = key_id_for(root_public_key)
        self.result = BundleVerification(Path(source.label))
        self.manifest: dict[str, Any] | None = None
        self.manifest_error: str | None = None
        self.registrations: list[KeyRegistration] | None = None
        self.keys_error: str | None = None
        self.trusted: dict[str, KeyRegistration] = {}
        self.checkpoint_roots: dict[tuple[str, int], bytes] = {}
        self.batches: dict[tuple[str, int], _BatchState] = {}
        self.found: dict[str, Any] = {}

    def run(self) -> BundleVerification:
        self._load()
        for step in (
            self._check_manifest,
            self._check_files,
            self._check_keys,
            self._check_checkpoints,
            self._check_batches,
            self._check_events,
            self._check_counts,
        ):
            name, ok_detail = step.__doc__.split(":", 1) if step.__doc__ else ("?", "")
            problems = _Problems()
            try:
                detail = step(problems)
            except Exception as exc:  # a bundle crafted to break the verifier fails, not crashes
                problems(f"cannot be checked: {type(exc).__name__}: {_reason(exc)}")
                detail = ""
            self.result.checks.append(problems.check(name.strip(), detail or ok_detail.strip()))
        self.result.counts = self.found
        self.result.manifest = self.manifest
        return self.result

    # -- shared inputs ----------------------------------------------------------------------

    def _read_json(self, name: str) -> Any:
        try:
            return fmt.parse_json(self.source.read(name), name)
        except _Unreadable as exc:
            raise fmt.FormatError(str(exc)) from None

    def _load(self) -> None:
        if self.source.damage:
            self.manifest_error = self.source.damage
        else:
            try:
                manifest = self._read_json(fmt.MANIFEST)
                if not isinstance(manifest, dict):
                    raise fmt.FormatError(f"{fmt.MANIFEST} is not a JSON object")
                self.manifest = manifest
            except fmt.FormatError as exc:
                self.manifest_error = str(exc)
        try:
            data = self._read_json(fmt.KEYS_FILE)
            if not isinstance(data, list):
                raise fmt.FormatError(f"{fmt.KEYS_FILE} is not a JSON list")
            self.registrations = [fmt.registration_from_json(item) for item in data]
        except fmt.FormatError as exc:
            self.keys_error = str(exc)

    def _latest(self, regs: list[KeyRegistration], key_id: str) -> KeyRegistration | None:
        found = [r for r in regs if r.key_id == key_id]
        return max(found, key=lambda r: r.registered_at_us) if found else None

    # -- 1 ----------------------------------------------------------------------------------

    def _check_manifest(self, problem: _Problems) -> str:
        """1. manifest signature: the manifest is signed by a registered export key"""
        if self.manifest is None:
            problem(self.manifest_error or f"{fmt.MANIFEST} is missing")
            return ""
        manifest = self.manifest
        if manifest.get("format") != fmt.FORMAT:
            problem(f"unknown bundle format {manifest.get('format')!r}, expected {fmt.FORMAT}")
        try:
            key_id, signature = fmt.parse_signature(self.source.read(fmt.MANIFEST_SIG))
        except (_Unreadable, fmt.FormatError) as exc:
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
            f"signed by export key {_short(key_id)} (registered by root {_short(self.root_id)})"
            f", exported {exported_at} by {manifest.get('exported_by')}"
        )

    # -- 2 ----------------------------------------------------------------------------------

    def _check_files(self, problem: _Problems) -> str:
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
            digest = hashlib.sha256()
            size = 0
            try:
                with self.source.open(name) as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
                        size += len(block)
            except Exception as exc:  # a damaged zip member
                problem(f"{name} cannot be read ({_reason(exc)})")
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

    # -- 3 ----------------------------------------------------------------------------------

    def _check_keys(self, problem: _Problems) -> str:
        """3. keys: every key registration is signed by the root"""
        if self.registrations is None:
            problem(self.keys_error or f"{fmt.KEYS_FILE} is missing")
            self.found["keys"] = 0
            return ""
        self.found["keys"] = len(self.registrations)
        for reg in self.registrations:
            try:
                verify_registration(self.root, reg)
            except AuditError as exc:
                problem(
                    f"key {reg.key_id} ({reg.producer_id}) is not registered by the trusted "
                    f"root {_short(self.root_id)}: {exc}"
                )
                continue
            held = self.trusted.get(reg.key_id)
            if held is None or reg.registered_at_us >= held.registered_at_us:
                self.trusted[reg.key_id] = reg
        producers = sorted({r.producer_id for r in self.trusted.values()})
        return (
            f"{_n(len(self.registrations), 'registration')} signed by root "
            f"{_short(self.root_id)}"
            f" ({', '.join(producers)})"
        )

    # -- 4 ----------------------------------------------------------------------------------

    def _check_checkpoints(self, problem: _Problems) -> str:
        """4. checkpoints: every checkpoint is signed by the checkpoint key and consistent"""
        self.found["checkpoints"] = 0
        try:
            data = self._read_json(fmt.CHECKPOINTS_FILE)
            if not isinstance(data, list):
                raise fmt.FormatError(f"{fmt.CHECKPOINTS_FILE} is not a JSON list")
            chains = [fmt.CheckpointChain.from_json(item) for item in data]
        except fmt.FormatError as exc:
            problem(str(exc))
            return ""
        keys = [
            r.public_key for r in self.trusted.values() if r.producer_id == fmt.CHECKPOINT_KEY_OWNER
        ]
        signers: set[str] = set()
        origins: set[str] = set()
        for chain in chains:
            self.found["checkpoints"] += len(chain.notes)
            if chain.origin in origins:
                problem(f"{chain.origin} is listed twice")
            origins.add(chain.origin)
            opened: list[tuple[int, bytes] | None] = []
            for note in chain.notes:
                try:
                    checkpoint, public_key = open_checkpoint(note, keys)
                except AuditError as exc:
                    text = str(exc)
                    if "signed by no trusted key" in text:
                        text += (
                            f"; only root-registered {fmt.CHECKPOINT_KEY_OWNER} keys are trusted"
                        )
                    elif not text.startswith("checkpoint "):  # malformed: name the chain
                        text = f"a checkpoint of {chain.origin}: {text}"
                    problem(text)
                    opened.append(None)
                    continue
                signers.add(key_id_for(public_key))
                if checkpoint.origin != chain.origin:
                    problem(f"{chain.origin}: a checkpoint of {checkpoint.origin} is listed")
                    opened.append(None)
                    continue
                size, root = checkpoint.tree_size, checkpoint.root_hash
                known = self.checkpoint_roots.get((chain.origin, size))
                if known is not None and known != root:
                    problem(f"{chain.origin}: two different roots for tree size {size}")
                self.checkpoint_roots[(chain.origin, size)] = root
                opened.append((size, root))
            if len(chain.consistency) != max(len(chain.notes) - 1, 0):
                problem(
                    f"{chain.origin}: {len(chain.consistency)} consistency proofs for "
                    f"{len(chain.notes)} checkpoints"
                )
            for i, proof in enumerate(chain.consistency[: max(len(opened) - 1, 0)]):
                old, new = opened[i], opened[i + 1]
                if old is None or new is None:
                    continue
                if (proof.old_size, proof.new_size) != (old[0], new[0]):
                    problem(
                        f"{chain.origin}: consistency proof {i} is from {proof.old_size} to "
                        f"{proof.new_size}, not {old[0]} to {new[0]}"
                    )
                    continue
                try:
                    verify_consistency(old[0], new[0], old[1], new[1], list(proof.proof))
                except AuditError as exc:
                    problem(
                        f"{chain.origin}: checkpoint {new[0]} is not consistent with {old[0]}: "
                        f"{exc}"
                    )
        names = ", ".join(_short(k) for k in sorted(signers)) or "no key"
        return (
            f"{_n(self.found['checkpoints'], 'checkpoint')} of "
            f"{_n(len(chains), 'partition')}, signed by "
            f"checkpoint key {names}, each consistent with the one before"
        )

    # -- 5 ----------------------------------------------------------------------------------

    def _check_batches(self, problem: _Problems) -> str:
        """5. batches: every batch is signed by its producer's key and in a checkpoint"""
        self.found["batches"] = 0
        try:
            data = self._read_json(fmt.BATCHES_FILE)
            if not isinstance(data, list):
                raise fmt.FormatError(f"{fmt.BATCHES_FILE} is not a JSON list")
        except fmt.FormatError as exc:
            problem(str(exc))
            return ""
        self.found["batches"] = len(data)
        batches: dict[tuple[str, int], fmt.BundleBatch] = {}
        producers: set[str] = set()
        for item in data:
            try:
                batch = fmt.BundleBatch.from_json(item)
            except fmt.FormatError as exc:
                problem(str(exc))
                continue
            key = (batch.producer_id, batch.sequence)
            reason = self._batch_problem(batch)
            if key in batches or key in self.batches:
                reason = reason or f"batch {batch.name} is listed twice"
            if reason:
                problem(reason)
            batches[key] = batch
            producers.add(batch.producer_id)
            self.batches[key] = _BatchState(
                batch.name,
                batch.producer_id,
                batch.merkle_root,
                batch.event_count,
                reason is None,
                seen=bytearray(max(batch.event_count, 0)),
            )
        for (producer, seq), batch in sorted(batches.items()):
            before = batches.get((producer, seq - 1))
            if before is not None and batch.prev_digest != batch_digest(before.head):
                problem(f"batch {batch.name} does not link to {before.name} (its chain is broken)")
                self.batches[(producer, seq)].ok = False
        return (
            f"{_n(len(data), 'batch')} of {_n(len(producers), 'producer')}: "
            "signatures by registered keys "
            "valid at the time, each a leaf of a signed checkpoint"
        )

    def _batch_problem(self, batch: fmt.BundleBatch) -> str | None:
        name = batch.name
        if batch.producer_id.startswith(fmt.PLATFORM_KEY_PREFIX):
            return f"batch {name} claims a platform producer id"
        reg = self.trusted.get(batch.key_id)
        if reg is None:
            listed = any(r.key_id == batch.key_id for r in self.registrations or ())
            why = "whose registration the root did not sign" if listed else "not in keys.json"
            return f"batch {name} is signed by key {batch.key_id}, {why}"
        if reg.producer_id != batch.producer_id:
            return f"batch {name} is signed by key {reg.key_id} of {reg.producer_id}"
        valid, why = reg.is_valid_at(batch.created_at_us)
        if not valid:
            return f"batch {name}: key {reg.key_id} was not valid at the batch's time ({why})"
        try:
            signing_input = batch_signing_input(batch.head)
        except ValueError as exc:
            return f"batch {name} has a malformed head: {exc}"
        try:
            verify_signature(reg.public_key, signing_input, batch.signature)
        except AuditError:
            return f"batch {name}: the signature does not verify under key {reg.key_id}"
        origin, size = batch.checkpoint_origin, batch.checkpoint_size
        if not origin.endswith(f"/{batch.topic}/{batch.partition}"):
            return f"batch {name} of {batch.topic}/{batch.partition} cites checkpoint {origin}"
        root = self.checkpoint_roots.get((origin, size))
        if root is None:
            return f"batch {name} cites checkpoint {origin} @ {size}, not a verified checkpoint"
        try:
            verify_inclusion(
                leaf_hash(batch_digest(batch.head)),
                batch.tree_index,
                size,
                list(batch.checkpoint_proof),
                root,
            )
        except AuditError:
            return f"batch {name} is not in checkpoint {origin} @ {size} (inclusion proof fails)"
        return None

    # -- 6 ----------------------------------------------------------------------------------

    def _check_events(self, problem: _Problems) -> str:
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
        for stem in sorted(stems):
            family = fmt.FAMILY_BY_STEM.get(stem)
            if family is None:
                problem(f"{fmt.EVENTS_DIR}/{stem}.* is not an event family file")
                continue
            self.found["events_by_family"][stem] = self._check_family(
                stem, family, catalogue, problem
            )
        self.found["events"] = sum(self.found["events_by_family"].values())
        families = ", ".join(f"{n} {s}" for s, n in self.found["events_by_family"].items())
        return (
            f"{self.found['events']} events ({families or 'none'}): each proven in its signed "
            "batch, decoded with the bundled schemas, matching the JSON Lines copy"
        )

    def _jsonl_lines(self, name: str, problem: _Problems) -> Iterator[str] | None:
        if not self.source.has(name):
            problem(f"{name} is missing")
            return None

        def lines() -> Iterator[str]:
            try:
                with self.source.open(name) as fh:
                    for raw in fh:
                        yield raw.decode("utf-8").rstrip("\r\n")
            except Exception as exc:  # damaged member, bad UTF-8
                problem(f"{name} cannot be read ({_reason(exc)})")

        return lines()

    def _check_family(
        self, stem: str, family: str, catalogue: SchemaCatalogue | None, problem: _Problems
    ) -> int:
        avro_name, jsonl_name = fmt.avro_path(stem), fmt.jsonl_path(stem)
        if not self.source.has(avro_name):
            problem(f"{avro_name} is missing")
            return 0
        lines = self._jsonl_lines(jsonl_name, problem)
        n = 0
        try:
            fh = self.source.open(avro_name)
        except Exception as exc:  # a damaged zip member
            problem(f"{avro_name} cannot be read ({_reason(exc)})")
            return 0
        with fh:
            try:
                records = avro_reader(fh)
                writer_schema = to_parsing_canonical_form(records.writer_schema)
            except Exception as exc:
                problem(f"{avro_name} is not an Avro container file ({_reason(exc)})")
                return 0
            if writer_schema != _EXPORTED_CANONICAL:
                problem(f"{avro_name} does not hold {fmt.EXPORTED_EVENT} records")
                return 0
            try:
                n = self._check_records(avro_name, family, records, lines, catalogue, problem)
            except _Damaged as exc:
                problem(f"{avro_name} is damaged after record {exc.count} ({exc.reason})")
                n = exc.count
        if lines is not None:
            extra = sum(1 for _ in lines)
            if extra:
                problem(f"{jsonl_name} has {extra} more lines than {avro_name} has events")
        return n

    def _check_records(
        self,
        avro_name: str,
        family: str,
        records: Iterator[dict[str, Any]],
        lines: Iterator[str] | None,
        catalogue: SchemaCatalogue | None,
        problem: _Problems,
    ) -> int:
        # The hot loop of a large bundle: names bound locally, messages built only on failure.
        batches_get = self.batches.get
        renderer = fmt.EventRenderer(catalogue) if catalogue is not None else None
        decode = renderer.decode if renderer is not None else None
        render = fmt.event_json_line
        sha256 = hashlib.sha256
        jsonl_name = avro_name[: -len(".avro")] + ".jsonl"

        def bad(event_id: str, message: str) -> None:
            problem(f"event {event_id[:8]}… in {avro_name}{message}")

        n = 0
        last: _BatchState | None = None
        lines_done = lines is None
        iterator = iter(records)
        while True:
            try:
                rec = next(iterator)
            except StopIteration:
                break
            except Exception as exc:  # a damaged block: what follows cannot be read
                raise _Damaged(n, _reason(exc)) from None
            n += 1
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
                if batch is not last:
                    # Events come batch by batch: the memo of the batch left is not needed
                    # again (if it is, the proofs are simply checked in full).
                    if last is not None:
                        last.memo.clear()
                    last = batch
                batch.seen[index] = 1
                leaf = sha256(b"\x00" + data).digest()
                proof = rec["inclusion_proof"]
                if not _included(
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
            if lines_done:
                continue
            line = next(lines, None)  # type: ignore[arg-type]
            if line is None:
                problem(f"{jsonl_name} ends before event {n} ({event_id[:8]}…)")
                lines_done = True
            elif rendered is not None:
                if line != rendered and not _same_json(line, rendered):
                    problem(f"line {n} of {jsonl_name} does not match event {event_id[:8]}…")
            elif not _line_names(line, event_id):
                problem(f"line {n} of {jsonl_name} is not event {event_id[:8]}…")
        return n

    # -- 7 ----------------------------------------------------------------------------------

    def _check_counts(self, problem: _Problems) -> str:
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


class _Damaged(Exception):
    def __init__(self, count: int, reason: str) -> None:
        super().__init__(reason)
        self.count = count
        self.reason = reason


def _line_names(line: str, event_id: str) -> bool:
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("event_id") == event_id


_EXPORTED_CANONICAL = to_parsing_canonical_form(fmt.PARSED_EXPORTED_EVENT)


def verify_bundle(path: str | os.PathLike[str], root_public_key: bytes) -> BundleVerification:
    """Run every check on the bundle at ``path`` (a directory or a .zip) against the
    provider's raw 32-byte Ed25519 root public key.

    A bad bundle never raises: its failed checks say what is wrong. Raises BundleError only
    when ``path`` does not exist or is not a bundle at all.
    """
    if len(root_public_key) != 32:
        raise BundleError(f"the root public key is {len(root_public_key)} bytes, not 32")
    source = _open_source(Path(path))
    try:
        return _Verifier(source, bytes(root_public_key)).run()
    finally:
        source.close()
