"""Fuzzing the offline bundle verifier, ``consumers.bundle.verify.verify_bundle`` (with
``consumers.bundle.format.records``'s parsers under it), on hostile bundles built from scratch:
every JSON file of a bundle holding any bytes (deep nesting, non-UTF-8, duplicate keys, huge
documents), zips with ``..`` and absolute member names, symlinks in a bundle directory.

The contract: a failing verdict (``result.ok`` False) or BundleError, never another exception,
never a file written outside the verifier's working directory, never an accepted bundle; and
on a real small bundle from the real pipeline (chDB), any file or the zip itself mutated.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aigc_audit.consumers.bundle.export.exporter import export_bundle
from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify import BundleError, verify_bundle
from aigc_audit.consumers.bundle.verify.source import MAX_DOCUMENT_BYTES
from aigc_audit.consumers.query.selection import Selection
from aigc_audit.producers.codec import SchemaCatalogue
from aigc_audit.producers.errors import SchemaError
from aigc_audit.producers.signing import SigningKey, load_public_key
from tests.harness import Harness, generation

ROOT = SigningKey.generate().public_key
JSON_FILES = (fmt.MANIFEST, fmt.MANIFEST_SIG, fmt.BATCHES_FILE, fmt.CHECKPOINTS_FILE, fmt.KEYS_FILE)
SLOW = max(10, settings.default.max_examples // 4)  # a verification costs milliseconds


def refused(path: Path) -> None:
    """The verifier on ``path``: a failing verdict or BundleError, nothing else."""
    try:
        result = verify_bundle(path, ROOT, workers=1)
    except BundleError:
        return
    assert not result.ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
hostile_json = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"[" * 100_000,
            b'{"a":' * 50_000,
            b'{"format": 1, "format": 2, "files": [], "files": {}}',
            b"\xff\xfe{}",
            b'{"files": [{"path": "../../etc/passwd", "sha256": "00", "bytes": 1}]}',
            b'{"files": [{"path": "/etc/passwd", "sha256": "00", "bytes": 1}]}',
            b'[{"key_id": "' + b"a" * 100_000 + b'"}]',
            b"[" + b"{}," * 100_000 + b"{}]",
            b'"\\ud800"',
            b"1" * 5000,
        ]
    ),
)


@settings(max_examples=SLOW)
@given(st.dictionaries(st.sampled_from(JSON_FILES), hostile_json, min_size=1))
@example({fmt.MANIFEST: b"[" * 100_000})  # regression: RecursionError out of verify_bundle
@example({fmt.KEYS_FILE: b"[" * 100_000})
@example({fmt.MANIFEST_SIG: b"[" * 100_000})
def test_hostile_json_files_in_a_directory(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes]
) -> None:
    base = tmp_path_factory.mktemp("bundle")
    bundle = base / "bundle"
    bundle.mkdir()
    for name, data in files.items():
        (bundle / name).write_bytes(data)
    refused(bundle)
    assert sorted(p.name for p in base.iterdir()) == ["bundle"]  # nothing written beside it


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # duplicates are the point
@settings(max_examples=SLOW)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    *JSON_FILES,
                    "../escape.json",
                    "/abs/manifest.json",
                    "events/../../x.avro",
                    "events/generations.avro",
                    "schemas/../manifest.json",
                    "C:\\win\\manifest.json",
                ]
            ),
            hostile_json,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_hostile_zip(
    tmp_path_factory: pytest.TempPathFactory, members: list[tuple[str, bytes]]
) -> None:
    base = tmp_path_factory.mktemp("zip")
    work = base / "work"
    work.mkdir()
    path = base / "bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name)  # ZipInfo keeps '..' and '/' that writestr would strip
            zf.writestr(info, data)
    cwd = Path.cwd()
    os.chdir(work)
    try:
        refused(path)
    finally:
        os.chdir(cwd)
    assert sorted(p.name for p in base.iterdir()) == ["bundle.zip", "work"]
    assert not any(work.iterdir())


def test_symlinks_out_of_a_bundle_directory(tmp_path: Path) -> None:
    """A bundle whose files are symlinks (to a device, a FIFO, a file outside, a loop) is
    refused and nothing hangs: a symlink to /dev/zero or a FIFO is not a file of the bundle."""
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    os.mkfifo(tmp_path / "fifo")
    bundle = tmp_path / "bundle"
    (bundle / "events").mkdir(parents=True)
    (bundle / fmt.MANIFEST).symlink_to(outside)
    (bundle / fmt.KEYS_FILE).symlink_to("/dev/zero")
    (bundle / fmt.CHECKPOINTS_FILE).symlink_to(tmp_path / "fifo")
    (bundle / fmt.BATCHES_FILE).symlink_to(bundle / fmt.BATCHES_FILE)  # a loop
    (bundle / "events" / "up").symlink_to(tmp_path, target_is_directory=True)
    refused(bundle)


def test_huge_manifest_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    entry = {"path": "x", "sha256": "0" * 64, "bytes": 1}
    (bundle / fmt.MANIFEST).write_bytes(json.dumps({"files": [entry] * 200_000}).encode())
    refused(bundle)


# --- a real bundle, mutated ----------------------------------------------------------------


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


@dataclass(repr=False)
class RealBundle:
    root: bytes
    directory: Path
    zip: Path
    files: dict[str, bytes]
    """The directory bundle's files."""
    zip_members: dict[str, bytes]
    """The zip bundle's members (another export of the same selection: its own bytes)."""

    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example
        return f"RealBundle({self.directory})"


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBundle]:
    """One small bundle from the real pipeline (chDB is slow: built once for the module)."""
    base = tmp_path_factory.mktemp("real")
    h = Harness(base / "data", batch_size=4)
    try:
        export_key = h.deployment.export_key()
        h.emit("chat-1", [generation(n) for n in range(9)], batch_size=4)
        h.materialise()
        for target in (base / "bundle", base / "bundle.zip"):
            export_bundle(
                h.deployment.store(),
                Selection(),
                target,
                export_key=export_key,
                exported_by="fuzz@example",
                report_html="<html></html>",
            )
        root = load_public_key(h.settings.root_public_key_path)
    finally:
        h.close()
    directory = base / "bundle"
    files = {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    assert verify_bundle(directory, root, workers=1).ok
    assert verify_bundle(base / "bundle.zip", root, workers=1).ok
    yield RealBundle(root, directory, base / "bundle.zip", files, _members(base / "bundle.zip"))


def _same_signature(a: bytes, b: bytes) -> bool:
    try:
        return fmt.parse_signature(a) == fmt.parse_signature(b)
    except fmt.FormatError:
        return False


@settings(max_examples=SLOW)
@given(data=st.data())
def test_mutated_file_of_a_real_bundle(
    real: RealBundle,
    kit: types.SimpleNamespace,
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    """Any file of a real bundle mutated: refused, unless the change leaves the signed content
    identical. One such file exists: manifest.sig is JSON that nothing signs or hashes (it holds
    the signature), so JSON-insignificant changes to it (whitespace, key order, hex case) keep
    the same key id and signature; every other file is covered by the manifest's SHA-256."""
    name = data.draw(st.sampled_from(sorted(real.files)))
    original = real.files[name]
    mutated = data.draw(kit.mutated(original))
    bundle = tmp_path_factory.mktemp("mut") / "bundle"
    shutil.copytree(real.directory, bundle)
    (bundle / name).write_bytes(mutated)
    result = verify_bundle(bundle, real.root, workers=1)
    if result.ok:
        assert mutated == original or (
            name == fmt.MANIFEST_SIG and _same_signature(mutated, original)
        ), (name, mutated[:200])


@settings(max_examples=SLOW)
@given(data=st.data())
def test_mutated_zip_of_a_real_bundle(
    real: RealBundle,
    kit: types.SimpleNamespace,
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    """The zip's own bytes mutated: refused, unless every member reads back as it was (a
    header's timestamp or extra field, a deflate block's redundant bit: zip metadata nothing
    signs), or only manifest.sig changed as above."""
    original = real.zip.read_bytes()
    path = tmp_path_factory.mktemp("zipmut") / "bundle.zip"
    path.write_bytes(data.draw(kit.mutated(original)))
    try:
        result = verify_bundle(path, real.root, workers=1)
    except BundleError:
        return
    if result.ok:
        members = _members(path)
        expected = real.zip_members
        assert members.keys() == expected.keys()
        for name, content in members.items():
            assert content == expected[name] or (
                name == fmt.MANIFEST_SIG and _same_signature(content, expected[name])
            ), name


def _bomb(path: Path, declared: int) -> None:
    """A zip whose manifest.json declares ``declared`` bytes in its local header and central
    directory (what an honest zip bomb declares: the size it inflates to)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(fmt.MANIFEST, b" " * 1000)
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 22 : local + 26] = declared.to_bytes(4, "little")
    data[central + 24 : central + 28] = declared.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_zip_bomb_is_refused_without_inflating(tmp_path: Path, bounded: Any) -> None:
    """Regression: the verifier read a bundle's JSON documents whole, whatever their size: a
    manifest.json that inflates to 3 GiB was inflated into memory. Now its declared size is
    judged first."""
    path = tmp_path / "bomb.zip"
    _bomb(path, 3 << 30)
    outcome = bounded(lambda: verify_bundle(path, ROOT, workers=1))
    assert outcome.error is None, outcome
    assert not outcome.result.ok
    assert "more than the" in outcome.result.check(1).detail, outcome.result.check(1)
    assert outcome.seconds < 2 and outcome.peak_bytes < 64 << 20, outcome


def test_real_size_bomb_is_refused(tmp_path: Path, bounded: Any) -> None:
    """A manifest.json past the bound, for real (a directory bundle), is refused unread."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with (bundle / fmt.MANIFEST).open("wb") as fh:
        fh.truncate(MAX_DOCUMENT_BYTES + 1)  # sparse: no disk used
    outcome = bounded(lambda: verify_bundle(bundle, ROOT, workers=1))
    assert outcome.error is None and not outcome.result.ok, outcome
    assert outcome.peak_bytes < 64 << 20, outcome


# --- the bundle's schema files: SchemaCatalogue loads them from the bundle -----------------


def _nested_type(depth: int) -> bytes:
    return (b'{"type": ' * depth) + b'"string"' + b"}" * depth


avro_schemas = st.recursive(
    st.sampled_from(["string", "int", "long", "bytes", "null", "aigc.audit.Nope", "EventHead"]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.fixed_dictionaries({"type": st.just("array"), "items": inner}),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["record", "error", "enum", "fixed", "map"]),
                "name": st.sampled_from(["A", "aigc.audit.EventHead", "", "1x", "a.b.c"]),
                "fields": st.lists(
                    st.fixed_dictionaries({"name": st.text(max_size=4), "type": inner}),
                    max_size=3,
                ),
                "symbols": st.lists(st.text(max_size=3), max_size=3),
                "size": st.sampled_from([0, -1, 32, 2**62]),
                "values": inner,
            }
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=SLOW)
@given(
    st.one_of(
        avro_schemas.map(lambda s: json.dumps(s).encode()),
        hostile_json,
        st.sampled_from([_nested_type(5000), b'{"type": "record", "name": "X", "fields": 7}']),
    )
)
@example(b"[" * 100_000)  # regression: RecursionError out of SchemaCatalogue, not SchemaError
@example(_nested_type(5000))
def test_hostile_schema_file(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """A bundle's schemas/ directory is untrusted bytes, loaded by SchemaCatalogue: it loads
    or raises SchemaError, nothing else."""
    directory = tmp_path_factory.mktemp("schemas")
    (directory / "aigc.audit.Hostile.avsc").write_bytes(data)
    with contextlib.suppress(SchemaError):
        SchemaCatalogue(directory)
