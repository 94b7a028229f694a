"""Fuzzing the offline bundle verifier, ``consumers.bundle_verification.verify_bundle`` (with
``consumers.export.bundle_format``'s parsers under it), on hostile bundles built from scratch:
every JSON file of a bundle holding any bytes (deep nesting, non-UTF-8, duplicate keys, huge
documents), zips with ``..`` and absolute member names, symlinks in a bundle directory.

The contract: a failing verdict (``result.ok`` False) or BundleError, never another exception,
never a file written outside the verifier's working directory, never an accepted bundle.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consumers.bundle_verification import BundleError, verify_bundle
from consumers.export import bundle_format as fmt
from producers.signing import SigningKey

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
