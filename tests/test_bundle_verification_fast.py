"""The fast path of check 6 only ever agrees with the exact check.

The compiled line checks answer True only for the renderer's own line (on every field kind, and
on mutated bytes); the batched proof checks accept only proofs ``included`` accepts; and a
bundle, clean or tampered with in any way, gets the same checks and the same problems, in the
same order, from the exact check alone, from the fast path in this process and from the fast
path in two worker processes, while a clean bundle never falls back to the exact check.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastavro import reader, writer

from aigc_audit.consumers.bundle.export.exporter import export_bundle
from aigc_audit.consumers.bundle.export.store_reader import TreeLevels
from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.format.line_compiler import compile_line_renderers, constant_fields
from aigc_audit.consumers.bundle.verify import BundleVerification, fast_events, verify_bundle
from aigc_audit.consumers.bundle.verify import event_checks as event_checks_module
from aigc_audit.consumers.bundle.verify.inclusion import (
    complete_batch_paths,
    included,
    leaf_hashes,
    proof_hashes,
    proofs_lead_to_root,
)
from aigc_audit.consumers.query.selection import Selection
from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.events import (
    AgreementAcceptance,
    AuditEvent,
    Complaint,
    ImplicitLabel,
    Rectification,
    RetentionPurge,
)
from aigc_audit.producers.signing import SigningKey, load_public_key
from tests.harness import T0, Harness, generation
from tests.test_export_bundle import moderation, pi_request, safety_evaluation, sanction

# --- the compiled line checks --------------------------------------------------------------


def sample_events() -> list[AuditEvent]:
    """One of each shape: every family, nulls and values in the unions, nested records, arrays,
    long strings, strings JSON escapes, non-ASCII text, times on and off the second."""
    label = ImplicitLabel(content_producer="provider-001", produce_id="img-0")
    case = moderation(3).model_copy(
        update={
            "rectification": Rectification(
                ticket_id="t-1",
                opened_at=T0,
                due_at=T0 + timedelta(days=3),
                closed_at=T0 + timedelta(days=1, microseconds=7),
            )
        }
    )
    complaint = Complaint(
        case_id="c-1",
        complaint_id="c-1",
        channel="in_app",
        target_ref="req-1",
        subject="subject-4",
        received_at=T0,
        due_by=T0 + timedelta(days=15),
        occurred_at=T0,
    )
    purge = RetentionPurge(
        scope="generations", cutoff=T0 - timedelta(days=400), records_purged=12, reason="ttl"
    )
    return [
        generation(1, implicit_label=label, occurred_at=T0 + timedelta(microseconds=123)),
        generation(2, output_sha256=None, input_tokens=None, latency_ms=70_000),
        generation(3, request_id="r" * 200, subject="长" * 30),  # long, non-ASCII
        generation(4, request_id='say "hi"'),  # JSON escapes it
        generation(5, request_id="back\\slash", subject="tab\there"),
        generation(6, request_id="😀 ünïcode ✓", occurred_at=datetime(1969, 7, 20, tzinfo=UTC)),
        generation(7, occurred_at=datetime(2400, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)),
        generation(8, input_tokens=2**40, output_tokens=0),
        case,
        complaint,
        sanction(1, case),
        sanction(2, complaint).model_copy(update={"evidence": ()}),
        pi_request(2),
        pi_request(3),
        safety_evaluation(),
        purge,
        AgreementAcceptance(
            subject="s",
            agreement_id="user-agreement",
            agreement_version="4.3",
            accepted_at=T0,
            channel="app",
        ),
    ]


@dataclasses.dataclass
class Rendered:
    fullname: str
    data: bytes
    event_id: bytes
    producer_id: bytes
    line: bytes


def rendered(catalogue: SchemaCatalogue, event: AuditEvent) -> Rendered:
    data = catalogue.encode(event.SCHEMA, event.to_record(service_id="s", producer_id="p-1"))
    fullname, record = fmt.EventRenderer(catalogue).decode(data)
    event_id = str(event.event_id)
    line = fmt.event_json_line(event_id, record).encode()
    return Rendered(fullname, data, event_id.encode(), b"p-1", line)


def exact_line(
    catalogue: SchemaCatalogue, family: str, data: bytes, event_id: bytes, producer_id: bytes
) -> bytes | None:
    """The line the exact check accepts for these bytes (None when it names a problem)."""
    try:
        fullname, record = fmt.EventRenderer(catalogue).decode(data)
    except AuditError:
        return None
    head = record.get("head")
    if fullname != family or not isinstance(head, dict):
        return None
    if head.get("event_id") != event_id.decode() or head.get("producer_id") != producer_id.decode():
        return None
    try:
        return fmt.event_json_line(event_id.decode(), record).encode()
    except (ValueError, TypeError):
        return None


def answers(
    renderers: tuple[Any, ...], data: bytes, eid: bytes, pid: bytes, line: bytes
) -> list[bool]:
    """Per renderer, whether it says ``line`` (valid UTF-8) is the line of these bytes."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return [False] * len(renderers)
    out = []
    for render in renderers:
        try:
            out.append(render(data, eid, pid) == line)
        except Exception:
            out.append(False)
    return out


def compiled(catalogue: SchemaCatalogue, fullname: str, sample: list[bytes]) -> list[Any]:
    """The renderers without segments, and with segments learnt from ``sample``."""
    constant = constant_fields(catalogue, fullname, sample)
    return [
        *compile_line_renderers(catalogue, fullname),
        *compile_line_renderers(catalogue, fullname, constant),
    ]


def test_line_checks_answer_true_exactly_for_the_renderers_line() -> None:
    catalogue = default_catalogue()
    fast_hits = 0
    for event in sample_events():
        r = rendered(catalogue, event)
        checks = compiled(catalogue, r.fullname, [r.data, r.data])
        assert len(checks) == 4, r.fullname
        got = answers(checks, r.data, r.event_id, r.producer_id, r.line)
        escaped = any(c in r.line.decode()[14:] for c in ('\\"', "\\\\", "\\t"))
        if escaped:
            assert not any(got)  # left to the renderer
        else:
            assert got[1] and got[3], (r.fullname, r.line)
            fast_hits += got[0]
            # Segments read from their cache the second time: the same line.
            assert answers(checks, r.data, r.event_id, r.producer_id, r.line) == got
        # Anything else: another event id or producer, another line, a line end left on.
        other = b"0" * len(r.event_id)
        assert not any(answers(checks, r.data, other, r.producer_id, r.line))
        assert not any(answers(checks, r.data, r.event_id, b"p-2", r.line))
        assert not any(answers(checks, r.data, r.event_id, r.producer_id, r.line + b"\r"))
        assert not any(answers(checks, r.data, r.event_id, r.producer_id, r.line[:-1]))
        assert not any(answers(checks, r.data + b"\0", r.event_id, r.producer_id, r.line))
    assert fast_hits >= 10


def test_line_checks_never_accept_what_the_renderer_does_not() -> None:
    """Mutated bytes (a flipped bit, a byte dropped or added, cut short) against the original
    line and against the renderer's line for them: True only where the renderer says the same."""
    catalogue = default_catalogue()
    rng = random.Random(6)
    accepted = 0
    for event in sample_events():
        r = rendered(catalogue, event)
        # Segments learnt from the event itself: mutated bytes meet their caches.
        checks = compiled(catalogue, r.fullname, [r.data, r.data])
        for _ in range(400):
            data = bytearray(r.data)
            at = rng.randrange(len(data))
            kind = rng.randrange(4)
            if kind == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                del data[at]
            elif kind == 2:
                data.insert(at, rng.randrange(256))
            else:
                del data[at:]
            mutated = bytes(data)
            exact = exact_line(catalogue, r.fullname, mutated, r.event_id, r.producer_id)
            for line in {r.line, exact or r.line}:
                got = answers(checks, mutated, r.event_id, r.producer_id, line)
                if any(got):
                    assert exact == line, (r.fullname, kind, at)
                    accepted += 1
    assert accepted > 500  # most bytes (a digit, a letter) are still an event, and rendered


def test_line_checks_render_times_as_the_renderer_does() -> None:
    """Times around second boundaries, before 1970, on the second: the compiled renderer's
    remembered seconds and varint prefixes never change what a time renders as."""
    catalogue = default_catalogue()
    rng = random.Random(3)
    base = int(T0.timestamp()) * 1_000_000
    micros = [0, 1, 999_999, 1_000_000, -1, -1_000_001, 2**40, 2**52, 2**55 - 1, 2**55]
    for second in range(50):
        for _ in range(40):
            micros.append(base + second * 1_000_000 + rng.choice([0, rng.randrange(1_000_000)]))
            micros.append(base + second * 1_000_000 - rng.randrange(20_000))
    micros += [rng.randrange(-(2**50), 2**55) for _ in range(500)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    renderers = None
    for value in micros:
        try:
            at = epoch + timedelta(microseconds=value)
        except OverflowError:
            continue
        r = rendered(catalogue, generation(1, occurred_at=at))
        renderers = renderers or compiled(catalogue, r.fullname, [r.data, r.data])
        assert answers(renderers, r.data, r.event_id, r.producer_id, r.line)[::2] == [True, True]


def released(catalogue: SchemaCatalogue, fullname: str) -> list[tuple[bytes, Any]]:
    """(fingerprint, schema) of each released version of ``fullname`` that is not current."""
    return [
        (fp, writer.entry.parsed)
        for fp, writer in catalogue._writers.items()
        if writer.reader.fullname == fullname
    ]


def test_line_checks_read_released_versions_that_read_field_for_field() -> None:
    """Generation's release 1 differs from today's only by the symbols its head's event type
    enum has since gained: its bytes are rendered as the renderer resolves them, mutated ones
    never otherwise. DataHandling has since gained a field: its release 1 is the renderer's."""
    import io

    from fastavro import schemaless_writer

    from aigc_audit.producers.codec import MAGIC

    catalogue = default_catalogue()
    rng = random.Random(12)
    versions = released(catalogue, "aigc.audit.Generation")
    assert versions
    for fp, schema in versions:
        renderers = list(compile_line_renderers(catalogue, "aigc.audit.Generation", (), fp))
        assert len(renderers) == 2
        for n in range(30):
            event = generation(n, input_tokens=n * 97)
            buf = io.BytesIO()
            schemaless_writer(buf, schema, event.to_record(service_id="s", producer_id="p-1"))
            data = MAGIC + fp + buf.getvalue()
            eid = str(event.event_id).encode()
            line = exact_line(catalogue, "aigc.audit.Generation", data, eid, b"p-1")
            assert line is not None
            assert answers(renderers, data, eid, b"p-1", line) == [True, True]
            for _ in range(40):
                mutated = bytearray(data)
                mutated[rng.randrange(10, len(mutated))] ^= 1 << rng.randrange(8)
                exact = exact_line(catalogue, "aigc.audit.Generation", bytes(mutated), eid, b"p-1")
                for candidate in {line, exact or line}:
                    if any(answers(renderers, bytes(mutated), eid, b"p-1", candidate)):
                        assert exact == candidate
    for fp, _ in released(catalogue, "aigc.audit.DataHandling"):
        assert compile_line_renderers(catalogue, "aigc.audit.DataHandling", (), fp) == ()


def test_line_checks_leave_released_schemas_to_the_renderer() -> None:
    catalogue = default_catalogue()
    r = rendered(catalogue, generation(1))
    checks = compiled(catalogue, r.fullname, [r.data, r.data])
    old = r.data[:2] + bytes(8) + r.data[10:]  # another fingerprint
    assert not any(answers(checks, old, r.event_id, r.producer_id, r.line))
    assert compile_line_renderers(catalogue, "aigc.audit.NoSuchRecord") == ()


# --- proofs --------------------------------------------------------------------------------


def test_batched_proofs_agree_with_included() -> None:
    rng = random.Random(9)
    for size in [*range(1, 40), 255, 256, 257, 500]:
        leaves = leaf_hashes([os.urandom(8) for _ in range(size)])
        tree = TreeLevels(leaves)
        paths = [b"".join(tree.path(i)) for i in range(size)]
        assert complete_batch_paths(leaves, tree.root) == paths
        assert complete_batch_paths(leaves, bytes(32)) is None
        for _ in range(10):
            chosen = sorted(rng.sample(range(size), rng.randint(1, size)))
            proofs = [paths[i] for i in chosen]
            mine = [leaves[i] for i in chosen]
            assert proofs_lead_to_root(mine, chosen, proofs, size, tree.root)
            # One hash of one proof changed, cut, or one more: never accepted.
            k = rng.randrange(len(chosen))
            for bad in (
                proofs[k][:-1] + bytes([proofs[k][-1] ^ 1]) if proofs[k] else b"x",
                proofs[k][:-32],
                proofs[k] + bytes(32),
            ):
                if bad == proofs[k]:
                    continue
                changed = [*proofs[:k], bad, *proofs[k + 1 :]]
                assert not proofs_lead_to_root(mine, chosen, changed, size, tree.root)
                assert not included(mine[k], chosen[k], size, proof_hashes(bad), tree.root, {})
            assert not proofs_lead_to_root(mine, chosen, proofs, size, bytes(32))
            if len(chosen) > 1:  # out of leaf order
                assert not proofs_lead_to_root(
                    mine[::-1], chosen[::-1], proofs[::-1], size, tree.root
                )


# --- bundles -------------------------------------------------------------------------------


@dataclasses.dataclass
class Made:
    h: Harness
    root: bytes
    export_key: SigningKey
    bundle: Path
    selected: Path
    """A bundle of some events only: batches split between the bundle and the store."""


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    base = tmp_path_factory.mktemp("fast")
    h = Harness(base / "data")
    gens = [generation(n, subject=f"subject-{n % 5}") for n in range(400)]
    mods = [moderation(n) for n in range(80)]
    h.emit("chat-1", gens[:250], batch_size=40)  # batches of one family
    # Batches mixing two families: each events file holds part of each batch.
    mixed: list[AuditEvent] = [e for pair in zip(gens[250:330], mods, strict=True) for e in pair]
    h.emit("mix-1", mixed, batch_size=30)
    h.emit("chat-2", gens[330:], batch_size=64)
    h.emit("gov-1", [pi_request(n) for n in range(9)] + [safety_evaluation()], batch_size=4)
    h.materialise()
    key = h.deployment.export_key()
    store = h.deployment.store()
    bundle, selected = base / "bundle", base / "selected"
    export_bundle(store, Selection(), bundle, export_key=key, exported_by="test")
    export_bundle(store, Selection(subject="subject-2"), selected, export_key=key, exported_by="t")
    # Small blocks, so that every file has many (and, below, many chunks).
    for path in (bundle, selected):
        for avro in (path / "events").glob("*.avro"):
            rewrite(avro, lambda records: records)
        sign(path, key)
    root = load_public_key(h.settings.root_public_key_path)
    yield Made(h, root, key, bundle, selected)
    h.close()


def rewrite(
    path: Path,
    change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    schema: Any = fmt.PARSED_EXPORTED_EVENT,
    codec: str = fmt.AVRO_CODEC,
) -> None:
    with path.open("rb") as fh:
        records = change(list(reader(fh)))
    with path.open("wb") as fh:
        writer(fh, schema, records, codec=codec, sync_interval=3000)


def change_lines(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))


def sign(bundle: Path, key: SigningKey) -> None:
    """The manifest made to list the files as they now are, and signed again: only the checks
    of the events can find what changed."""
    manifest = json.loads((bundle / fmt.MANIFEST).read_bytes())
    for entry in manifest["files"]:
        data = (bundle / entry["path"]).read_bytes()
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["bytes"] = len(data)
    raw = fmt.json_bytes(manifest)
    (bundle / fmt.MANIFEST).write_bytes(raw)
    (bundle / fmt.MANIFEST_SIG).write_bytes(fmt.signature_bytes(key.key_id, key.sign(raw)))


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_events, "CHUNK_BYTES", 4000)


@dataclasses.dataclass
class Runs:
    exact: BundleVerification
    inline: BundleVerification
    pooled: BundleVerification
    inline_exact_calls: int
    pooled_exact_calls: int


def verify_three_ways(path: Path, made: Made, monkeypatch: pytest.MonkeyPatch) -> Runs:
    """The bundle verified by the exact check alone, then by the fast path in this process and
    in two workers: the three agree on everything."""
    calls = [0]
    real = event_checks_module.EventChecks._check_records

    def counted(self: Any, *args: Any) -> None:
        calls[0] += 1
        real(self, *args)

    monkeypatch.setattr(event_checks_module.EventChecks, "_check_records", counted)
    with monkeypatch.context() as m:
        m.setattr(fast_events.ChunkChecker, "check", lambda *a, **k: fast_events.UNCLEAN)
        exact = verify_bundle(path, made.root, workers=1)
    calls[0] = 0
    inline = verify_bundle(path, made.root, workers=1)
    inline_calls, calls[0] = calls[0], 0
    pooled = verify_bundle(path, made.root, workers=2)
    for other in (inline, pooled):
        assert other.checks == exact.checks
        assert other.counts == exact.counts
    return Runs(exact, inline, pooled, inline_calls, calls[0])


def detail(result: BundleVerification, number: int) -> str:
    check = result.check(number)
    return " | ".join([check.detail, *check.problems])


def failed(result: BundleVerification) -> set[int]:
    return {int(c.name.split(".")[0]) for c in result.checks if not c.ok}


@pytest.fixture
def bundle(made: Made, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made.bundle, tmp_path / "bundle"))


@pytest.mark.chdb
@pytest.mark.e2e
@pytest.mark.parametrize("which", ["bundle", "selected"])
def test_clean_bundles_never_fall_back(
    made: Made, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = made.bundle if which == "bundle" else made.selected
    runs = verify_three_ways(path, made, monkeypatch)
    assert runs.exact.ok and runs.inline.ok and runs.pooled.ok
    assert runs.inline_exact_calls == runs.pooled_exact_calls == 0
    if which == "bundle":
        assert runs.exact.counts["events_by_family"] == {
            "data_handling": 10,
            "generations": 400,
            "moderation_actions": 80,
        }


def records_of(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        return list(reader(fh))


@pytest.mark.chdb
@pytest.mark.e2e
def test_tampered_event_byte(made: Made, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def change(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        data = bytearray(records[217]["event_bytes"])
        data[-3] ^= 0x01
        records[217]["event_bytes"] = bytes(data)
        return records

    rewrite(bundle / "events/generations.avro", change)
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert failed(runs.inline) == {6}
    assert "inclusion proof does not lead to batch" in detail(runs.inline, 6)
    assert "line 218 of events/generations.jsonl does not match" in detail(runs.inline, 6)
    assert runs.inline_exact_calls == 1  # only the chunk holding it


@pytest.mark.chdb
@pytest.mark.e2e
@pytest.mark.parametrize("family", ["generations", "moderation_actions"])
def test_tampered_proof(
    made: Made, bundle: Path, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        proof = bytearray(records[33]["inclusion_proof"])
        proof[40] ^= 0x80
        records[33]["inclusion_proof"] = bytes(proof)
        records[50]["inclusion_proof"] += bytes(32)  # one hash too many
        return records

    rewrite(bundle / f"events/{family}.avro", change)
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert failed(runs.inline) == {6}
    assert runs.inline.check(6).problems == runs.exact.check(6).problems
    assert len(runs.inline.check(6).problems) == 2
    assert all("inclusion proof does not lead" in p for p in runs.inline.check(6).problems)


@pytest.mark.chdb
@pytest.mark.e2e
def test_missing_event_of_a_complete_batch(
    made: Made, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite(bundle / "events/generations.avro", lambda records: records[:90] + records[91:])
    change_lines(bundle / "events/generations.jsonl", lambda lines: lines[:90] + lines[91:])
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    # Every other event of the batch is still proven; only the count is short.
    assert failed(runs.inline) == {7}
    assert "the manifest counts 490 events, the bundle holds 489" in detail(runs.inline, 7)


@pytest.mark.chdb
@pytest.mark.e2e
def test_wrong_json_line(made: Made, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def change(lines: list[bytes]) -> list[bytes]:
        lines[120] = lines[120].replace(b'"latency_ms":300', b'"latency_ms":301')
        lines[300] = lines[300].replace(b'"channel":"app"', b'"channel": "app"')  # same JSON
        return lines

    change_lines(bundle / "events/generations.jsonl", change)
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert failed(runs.inline) == {6}
    event_id = records_of(bundle / "events/generations.avro")[120]["event_id"]
    assert runs.inline.check(6).problems == (
        f"line 121 of events/generations.jsonl does not match event {event_id[:8]}…",
    )


@pytest.mark.chdb
@pytest.mark.e2e
def test_reordered_events(made: Made, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def swap(items: list[Any]) -> list[Any]:
        items[10], items[11] = items[11], items[10]
        return items

    # In the Avro file only: the lines no longer match.
    rewrite(bundle / "events/moderation_actions.avro", swap)
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert failed(runs.inline) == {6}
    assert "line 11 of events/moderation_actions.jsonl does not match" in detail(runs.inline, 6)
    # In both: nothing is wrong (the order of a batch's events is not evidence).
    change_lines(bundle / "events/moderation_actions.jsonl", swap)
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert runs.inline.ok


@pytest.mark.chdb
@pytest.mark.e2e
def test_event_exported_twice_in_far_apart_chunks(
    made: Made, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite(bundle / "events/generations.avro", lambda records: [*records, records[3]])
    change_lines(bundle / "events/generations.jsonl", lambda lines: [*lines, lines[3]])
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert failed(runs.inline) == {6, 7}
    assert "is exported twice" in detail(runs.inline, 6)


@pytest.mark.chdb
@pytest.mark.e2e
@pytest.mark.parametrize("how", ["extra", "short", "crlf", "bad-utf8", "no-final-newline"])
def test_json_lines_file_out_of_step(
    made: Made, bundle: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = bundle / "events/generations.jsonl"
    if how == "extra":
        change_lines(path, lambda lines: [*lines, b"{}\n", b"\n"])
    elif how == "short":
        change_lines(path, lambda lines: lines[:-7])
    elif how == "crlf":
        change_lines(path, lambda lines: [line.replace(b"\n", b"\r\n") for line in lines])
    elif how == "bad-utf8":
        change_lines(path, lambda lines: [*lines[:200], b"\xff" + lines[200], *lines[201:]])
    else:
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    if how in ("crlf", "no-final-newline"):
        assert runs.inline.ok  # the exact check reads them so
    else:
        assert failed(runs.inline) == {6}


@pytest.mark.chdb
@pytest.mark.e2e
def test_damaged_block(made: Made, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = bundle / "events/generations.avro"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert 6 in failed(runs.inline)


@pytest.mark.chdb
@pytest.mark.e2e
def test_format_1_events_still_verify(
    made: Made, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def to_v1(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            record["inclusion_proof"] = proof_hashes(record["inclusion_proof"])
        return records

    for avro in (bundle / "events").glob("*.avro"):
        rewrite(avro, to_v1, schema=fmt.PARSED_EXPORTED_EVENT_V1)
    manifest = json.loads((bundle / fmt.MANIFEST).read_bytes())
    manifest["format"] = fmt.FORMATS[0]
    (bundle / fmt.MANIFEST).write_bytes(fmt.json_bytes(manifest))
    sign(bundle, made.export_key)
    runs = verify_three_ways(bundle, made, monkeypatch)
    assert runs.inline.ok


@pytest.mark.chdb
@pytest.mark.e2e
def test_zip_bundles_read_once_through(
    made: Made, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def zipped(source: Path, target: Path) -> Path:
        with zipfile.ZipFile(target, "w") as zf:
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(source).as_posix(), zipfile.ZIP_DEFLATED)
        return target

    runs = verify_three_ways(zipped(bundle, tmp_path / "clean.zip"), made, monkeypatch)
    assert runs.inline.ok and runs.inline_exact_calls == 0

    def change(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[5]["event_bytes"] = records[5]["event_bytes"][:-1] + b"\x07"
        return records

    rewrite(bundle / "events/generations.avro", change)
    sign(bundle, made.export_key)
    runs = verify_three_ways(zipped(bundle, tmp_path / "bad.zip"), made, monkeypatch)
    assert failed(runs.inline) == {6}
    assert runs.inline_exact_calls == 1


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        verify_bundle(tmp_path, bytes(32), workers=0)
