"""Pair (a): check 6 of the bundle verifier on its fast path (``consumers.bundle.verify
.fast_events``: a chunk of Avro blocks checked at once, which only says "clean") against the
exact check (``consumers.bundle.verify.event_checks``: every event, one by one, each problem
named), which takes every chunk the fast path does not call clean.

The contract: the verification of any bundle, every check and every problem in its order and
the counts, is the same with the fast path as with the exact check alone (in this process and
in worker processes). One real bundle is exported from a small deployment (chDB) once; each
example damages a copy: event bytes or proofs flipped, leaf indexes changed, JSON lines altered,
dropped, duplicated or added, events dropped, duplicated or reordered (in one file or both),
raw bytes of an events file flipped; the manifest is signed again so that only checks 6 and 7
can tell.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from fastavro import reader, writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigc_audit.consumers.bundle.export.exporter import export_bundle
from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify import BundleVerification, fast_events, verify_bundle
from aigc_audit.consumers.query.selection import Selection
from aigc_audit.producers.events import AuditEvent, ModerationAction
from aigc_audit.producers.signing import SigningKey, load_public_key
from tests.differential.conftest import scaled
from tests.harness import T0, Harness, generation

pytestmark = [pytest.mark.chdb, pytest.mark.e2e]

FILES = ("generations", "moderation_actions")


@dataclass
class Made:
    root: bytes
    key: SigningKey
    bundle: Path
    work: Path


def moderation(n: int) -> ModerationAction:
    return ModerationAction(
        case_id=f"case-{n}",
        target="generation",
        target_ref=f"req-{n}",
        detection_source="output_filter",
        risk_category="A.1.6",
        action="block_generation",
        detected_at=T0,
        acted_at=T0,
    )


def rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    """The events file written again (small blocks, so that a file has many chunks)."""
    with path.open("wb") as fh:
        writer(fh, fmt.PARSED_EXPORTED_EVENT, records, codec=fmt.AVRO_CODEC, sync_interval=1500)


def sign(bundle: Path, key: SigningKey) -> None:
    """The manifest listing the files as they now are, signed again."""
    manifest = json.loads((bundle / fmt.MANIFEST).read_bytes())
    for entry in manifest["files"]:
        data = (bundle / entry["path"]).read_bytes()
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["bytes"] = len(data)
    raw = fmt.json_bytes(manifest)
    (bundle / fmt.MANIFEST).write_bytes(raw)
    (bundle / fmt.MANIFEST_SIG).write_bytes(fmt.signature_bytes(key.key_id, key.sign(raw)))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    base = tmp_path_factory.mktemp("differential-bundle")
    h = Harness(base / "data")
    try:
        gens = [generation(n, subject=f"subject-{n % 5}") for n in range(90)]
        h.emit("chat-1", gens[:50], batch_size=16)  # batches of one family
        mixed: list[AuditEvent] = [
            e for pair in zip(gens[50:70], map(moderation, range(20)), strict=True) for e in pair
        ]
        h.emit("mix-1", mixed, batch_size=12)  # batches split between the two files
        h.emit("chat-2", gens[70:], batch_size=7)
        h.materialise()
        key = h.deployment.export_key()
        bundle = base / "bundle"
        export_bundle(h.deployment.store(), Selection(), bundle, export_key=key, exported_by="t")
        for stem in FILES:
            path = bundle / fmt.avro_path(stem)
            with path.open("rb") as fh:
                rewrite(path, list(reader(fh)))
        sign(bundle, key)
        root = load_public_key(h.settings.root_public_key_path)
    finally:
        h.close()
    with mock.patch.object(fast_events, "CHUNK_BYTES", 3000):  # several chunks a file
        yield Made(root, key, bundle, base)


# --- damage --------------------------------------------------------------------------------


def _flip(data: bytes, at: int, bit: int) -> bytes:
    out = bytearray(data)
    if out:
        out[at % len(out)] ^= 1 << bit
    return bytes(out)


@st.composite
def change(draw: st.DrawFn) -> tuple[str, str, int, int, int]:
    """(what, which file, where, another where, a bit)."""
    what = draw(
        st.sampled_from(
            [
                "event byte",
                "proof byte",
                "proof longer",
                "proof shorter",
                "leaf index",
                "line altered",
                "line same json",
                "line dropped",
                "line doubled",
                "line added",
                "event dropped",
                "event dropped in both",
                "event doubled in both",
                "events swapped",
                "events swapped in both",
                "lines swapped",
                "raw avro byte",
                "crlf",
            ]
        )
    )
    return (
        what,
        draw(st.sampled_from(FILES)),
        draw(st.integers(0, 10_000)),
        draw(st.integers(0, 10_000)),
        draw(st.integers(0, 7)),
    )


def damage(bundle: Path, how: tuple[str, str, int, int, int]) -> None:
    what, stem, at, other, bit = how
    avro, jsonl = bundle / fmt.avro_path(stem), bundle / fmt.jsonl_path(stem)
    with avro.open("rb") as fh:
        recs = list(reader(fh))
    lines = jsonl.read_bytes().splitlines(keepends=True)
    i, j = at % len(recs), other % len(recs)
    rec = recs[i]
    if what == "event byte":
        rec["event_bytes"] = _flip(rec["event_bytes"], other, bit)
    elif what == "proof byte":
        rec["inclusion_proof"] = _flip(rec["inclusion_proof"], other, bit)
    elif what == "proof longer":
        rec["inclusion_proof"] += bytes(32)
    elif what == "proof shorter":
        rec["inclusion_proof"] = rec["inclusion_proof"][:-32]
    elif what == "leaf index":
        rec["leaf_index"] += 1 + other % 3
    elif what == "line altered":
        lines[i] = (
            lines[i]
            .replace(b'"latency_ms":', b'"latency_ms":1', 1)
            .replace(b'"action":"', b'"action":"x', 1)
        )
    elif what == "line same json":
        lines[i] = lines[i].replace(b'","', b'", "', 1)
    elif what == "line dropped":
        del lines[i]
    elif what == "line doubled":
        lines.insert(i, lines[i])
    elif what == "line added":
        lines.append(b'{"event_id":"x"}\n')
    elif what == "event dropped":
        del recs[i]
    elif what == "event dropped in both":
        del recs[i]
        del lines[i]
    elif what == "event doubled in both":
        recs.insert(j, recs[i])
        lines.insert(j, lines[i])
    elif what == "events swapped":
        recs[i], recs[j] = recs[j], recs[i]
    elif what == "events swapped in both":
        recs[i], recs[j] = recs[j], recs[i]
        lines[i], lines[j] = lines[j], lines[i]
    elif what == "lines swapped":
        lines[i], lines[j] = lines[j], lines[i]
    elif what == "crlf":
        lines[i] = lines[i].rstrip(b"\n") + b"\r\n"
    rewrite(avro, recs)
    jsonl.write_bytes(b"".join(lines))
    if what == "raw avro byte":
        data = avro.read_bytes()
        avro.write_bytes(_flip(data, 400 + at % max(1, len(data) - 400), bit))


def exact_only(path: Path, root: bytes) -> BundleVerification:
    """The bundle verified with every chunk left to the exact check."""
    with mock.patch.object(fast_events.ChunkChecker, "check", lambda *a, **k: fast_events.UNCLEAN):
        return verify_bundle(path, root, workers=1)


def same(fast: BundleVerification, exact: BundleVerification) -> None:
    assert [(c.name, c.ok, c.problems) for c in fast.checks] == [
        (c.name, c.ok, c.problems) for c in exact.checks
    ]
    assert fast.checks == exact.checks
    assert fast.counts == exact.counts
    assert fast.ok == exact.ok


SEEN = {"clean": 0, "failed": 0}


@settings(
    max_examples=scaled(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(change(), min_size=0, max_size=3), st.integers(0, 10**9))
def test_fast_and_exact_checks_give_one_verdict(
    made: Made, changes: list[tuple[str, str, int, int, int]], n: int
) -> None:
    bundle = made.work / f"copy-{n}"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(made.bundle, bundle)
    try:
        for how in changes:
            damage(bundle, how)
        sign(bundle, made.key)
        exact = exact_only(bundle, made.root)
        fast = verify_bundle(bundle, made.root, workers=1)
        same(fast, exact)
        SEEN["clean" if exact.ok else "failed"] += 1
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


@settings(
    max_examples=scaled(8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(change(), min_size=1, max_size=2), st.booleans())
def test_worker_processes_and_zips_give_the_same_verdict(
    made: Made, changes: list[tuple[str, str, int, int, int]], as_zip: bool
) -> None:
    """The same with the chunks checked in two worker processes (a directory) or streamed
    (a zip bundle)."""
    bundle = made.work / "copy-pooled"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(made.bundle, bundle)
    try:
        for how in changes:
            damage(bundle, how)
        sign(bundle, made.key)
        path = Path(shutil.make_archive(str(bundle), "zip", bundle)) if as_zip else bundle
        exact = exact_only(path, made.root)
        fast = verify_bundle(path, made.root, workers=1 if as_zip else 2)
        same(fast, exact)
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
        Path(f"{bundle}.zip").unlink(missing_ok=True)


def test_the_clean_bundle_is_clean_on_the_fast_path(made: Made) -> None:
    """Not vacuous: the property above met clean and failing bundles (it runs first), and the
    undamaged bundle never leaves the fast path."""
    if SEEN["failed"]:
        assert SEEN["clean"] >= 1, SEEN
    calls = []
    real = fast_events.ChunkChecker.check

    def counted(self: Any, *args: Any, **kwargs: Any) -> fast_events.ChunkResult:
        result = real(self, *args, **kwargs)
        calls.append(result.clean)
        return result

    with mock.patch.object(fast_events.ChunkChecker, "check", counted):
        result = verify_bundle(made.bundle, made.root, workers=1)
    assert result.ok
    assert len(calls) > 4 and all(calls)
