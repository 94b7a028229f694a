"""Export bundles from the real pipeline, verified offline; every kind of tampering is caught and
named by the check it breaks, while the checks it does not touch still pass."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastavro import reader, writer

from aigc_audit.consumers.bundle.export.exporter import ExportError, export_bundle
from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify import (
    BundleError,
    BundleVerification,
    format_checks,
    verify_bundle,
)
from aigc_audit.consumers.checkpoints.note import parse_note, sign_checkpoint
from aigc_audit.consumers.ingest.materialiser import Materialiser
from aigc_audit.consumers.keys.registry import (
    CHECKPOINT_KEY_OWNER,
    EXPORT_KEY_OWNER,
    PLATFORM_KEY_PREFIX,
)
from aigc_audit.consumers.query.selection import Selection
from aigc_audit.consumers.store.tables import FAMILY_TABLES
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.events import (
    AuditEvent,
    Complaint,
    ImplicitLabel,
    ModerationAction,
    PersonalInformationRequest,
    Rectification,
    RetentionPurge,
    SafetyEvaluation,
    UserSanction,
)
from aigc_audit.producers.signing import SigningKey, load_public_key, sign_registration
from tests.harness import T0, Harness, generation

pytestmark = [pytest.mark.chdb, pytest.mark.e2e]

ALL_CHECKS = (1, 2, 3, 4, 5, 6, 7)


def moderation(n: int) -> ModerationAction:
    detected = T0 + timedelta(minutes=n)
    return ModerationAction(
        case_id=f"case-{n}",
        target="generation",
        target_ref=f"req-{n}",
        subject=f"subject-{n % 7}",
        model_name="chat-model",
        model_version="1.0",
        detection_source="output_filter",
        risk_category="A.1.6",
        action="block_generation",
        detected_at=detected,
        acted_at=detected + timedelta(seconds=30),
        occurred_at=detected + timedelta(seconds=30),
    )


def sanction(n: int, evidence: AuditEvent) -> UserSanction:
    return UserSanction(
        sanction_id=f"s-{n}",
        subject=f"subject-{n % 7}",
        action="warning",
        reason_category="A.1.6",
        evidence=[str(evidence.event_id)],
        effective_from=T0 + timedelta(hours=n),
        occurred_at=T0 + timedelta(hours=n),
    )


def pi_request(n: int) -> PersonalInformationRequest:
    done = n % 2 == 0
    return PersonalInformationRequest(
        subject=f"subject-{n % 7}",
        request_id=f"pir-{n}",
        request_kind="delete",
        received_at=T0 + timedelta(days=n),
        due_at=T0 + timedelta(days=n + 21),
        status="completed" if done else "received",
        completed_at=T0 + timedelta(days=n + 3) if done else None,
        occurred_at=T0 + timedelta(days=n, minutes=5),
    )


def safety_evaluation() -> SafetyEvaluation:
    return SafetyEvaluation(
        model_name="chat-model",
        model_version="1.0",
        generated_test_size=2000,
        qualified_rate=0.96,
        should_refuse_test_size=1000,
        refusal_rate=0.97,
        should_answer_test_size=1000,
        false_refusal_rate=0.02,
        occurred_at=T0 + timedelta(days=2),
    )


@dataclasses.dataclass
class Exported:
    h: Harness
    root_public_key: bytes
    export_key: SigningKey
    events: list[tuple[str, AuditEvent]]
    """(producer id, event) of everything emitted."""
    bundle: Path
    bundle_zip: Path

    def ids(self, keep: Callable[[AuditEvent], bool]) -> set[str]:
        return {str(e.event_id) for _, e in self.events if keep(e)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    base = tmp_path_factory.mktemp("export")
    h = Harness(base / "data", batch_size=7)
    export_key = h.deployment.export_key()
    events: list[tuple[str, AuditEvent]] = []

    def emit(producer: str, batch: list[Any], size: int) -> None:
        h.emit(producer, batch, batch_size=size)
        events.extend((producer, e) for e in batch)

    # Three rounds, each materialised: every partition gets several checkpoints.
    emit("chat-1", [generation(n) for n in range(0, 80)], 7)
    mods = [moderation(n) for n in range(20)]
    emit("mod-1", mods, 5)
    h.materialise()
    emit("chat-1", [generation(n) for n in range(80, 160)], 9)
    emit("mod-1", [sanction(n, mods[n]) for n in range(8)], 3)
    emit("gov-1", [pi_request(n) for n in range(5)] + [safety_evaluation()], 4)
    h.materialise()
    emit("chat-1", [generation(n) for n in range(160, 200)], 6)
    h.materialise()
    assert h.count("checkpoints") >= 3
    export_bundle(
        h.deployment.store(),
        Selection(),
        base / "bundle",
        export_key=export_key,
        exported_by="inspector@example",
        report_html="<html><body>report</body></html>",
    )
    export_bundle(
        h.deployment.store(),
        Selection(),
        base / "bundle.zip",
        export_key=export_key,
        exported_by="inspector@example",
    )
    root = load_public_key(h.settings.root_public_key_path)
    yield Exported(h, root, export_key, events, base / "bundle", base / "bundle.zip")
    h.close()


@pytest.fixture
def bundle(exported: Exported, tmp_path: Path) -> Path:
    """A private copy of the directory bundle, free to tamper with."""
    return Path(shutil.copytree(exported.bundle, tmp_path / "bundle"))


# --- helpers -------------------------------------------------------------------------------


def verify(path: Path, exported: Exported) -> BundleVerification:
    return verify_bundle(path, exported.root_public_key)


def failed(result: BundleVerification) -> set[int]:
    return {int(c.name.split(".")[0]) for c in result.checks if not c.ok}


def detail(result: BundleVerification, number: int) -> str:
    check = result.check(number)
    return " | ".join([check.detail, *check.problems])


def exported_ids(path: Path) -> list[str]:
    ids = []
    for avro in sorted((path / "events").glob("*.avro")):
        with avro.open("rb") as fh:
            ids += [r["event_id"] for r in reader(fh)]
    return ids


def rewrite_avro(
    path: Path, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> None:
    with path.open("rb") as fh:
        records = list(reader(fh))
    records = change(records)
    with path.open("wb") as fh:
        writer(fh, fmt.PARSED_EXPORTED_EVENT, records, codec=fmt.AVRO_CODEC)


def update_manifest_entry(bundle: Path, name: str) -> bytes:
    """Put ``name``'s new hash and size in the manifest (without signing it again)."""
    manifest = json.loads((bundle / fmt.MANIFEST).read_bytes())
    data = (bundle / name).read_bytes()
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["bytes"] = len(data)
    raw = fmt.json_bytes(manifest)
    (bundle / fmt.MANIFEST).write_bytes(raw)
    return raw


def resign_manifest(bundle: Path, key: SigningKey) -> None:
    raw = (bundle / fmt.MANIFEST).read_bytes()
    (bundle / fmt.MANIFEST_SIG).write_bytes(fmt.signature_bytes(key.key_id, key.sign(raw)))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --- clean bundles -------------------------------------------------------------------------


def test_clean_bundle_verifies_as_directory_and_zip(exported: Exported) -> None:
    for path in (exported.bundle, exported.bundle_zip):
        result = verify(path, exported)
        assert result.ok, format_checks(result)
        assert [c.name.split(".")[0] for c in result.checks] == [str(n) for n in ALL_CHECKS]
        assert result.counts["events"] == len(exported.events) == 234
        assert result.counts["events_by_family"] == {
            "data_handling": 6,
            "generations": 200,
            "moderation_actions": 20,
            "user_sanctions": 8,
        }
        assert result.counts["keys"] == 5  # 3 producers, the checkpoint key, the export key
        assert result.counts["checkpoints"] >= 2
        lines = format_checks(result)
        assert all(line.startswith("✓ ") for line in lines)
        assert lines[0].startswith("✓ 1. manifest signature: signed by export key ")
    assert sorted(exported_ids(exported.bundle)) == sorted(exported.ids(lambda e: True))


def test_bundle_layout_and_manifest(exported: Exported) -> None:
    bundle = exported.bundle
    manifest = json.loads((bundle / fmt.MANIFEST).read_text())
    assert manifest["format"] == fmt.FORMAT
    assert manifest["exported_by"] == "inspector@example"
    assert manifest["export_key_id"] == exported.export_key.key_id
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert on_disk - listed == {fmt.MANIFEST, fmt.MANIFEST_SIG}
    assert {
        "batches.json",
        "checkpoints.json",
        "keys.json",
        "report.html",
        "events/generations.avro",
        "events/generations.jsonl",
        "schemas/aigc.audit.Generation.avsc",
    } <= listed
    keys = json.loads((bundle / fmt.KEYS_FILE).read_text())
    assert {k["producer_id"] for k in keys} == {
        "chat-1",
        "gov-1",
        "mod-1",
        CHECKPOINT_KEY_OWNER,
        EXPORT_KEY_OWNER,
    }
    # Each batch cites the smallest checkpoint that covers it; each partition's chain of
    # checkpoints ends with its latest one and has a consistency proof per step.
    chains = json.loads((bundle / fmt.CHECKPOINTS_FILE).read_text())
    sizes = {c["origin"]: [parse_note(n)[0].tree_size for n in c["checkpoints"]] for c in chains}
    assert all(len(s) >= 2 and s == sorted(s) for s in sizes.values())
    assert all(len(c["consistency"]) == len(c["checkpoints"]) - 1 for c in chains)
    for batch in json.loads((bundle / fmt.BATCHES_FILE).read_text()):
        cited = batch["checkpoint"]["tree_size"]
        smaller = [s for s in sizes[batch["checkpoint"]["origin"]] if s < cited]
        assert batch["tree_index"] < cited
        assert all(s <= batch["tree_index"] for s in smaller)
    # The JSON Lines copy: one decoded event per line, same order as the Avro file.
    lines = (bundle / "events/moderation_actions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["event_id"] == first["head"]["event_id"]
    assert first["detected_at"].startswith("2026-10-01T08:")
    with (bundle / "events/moderation_actions.avro").open("rb") as fh:
        in_avro = [r["event_id"] for r in reader(fh)]
    assert [json.loads(line)["event_id"] for line in lines] == in_avro


def test_moved_bundle_verifies_with_only_the_root_public_key(
    exported: Exported, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "inspector" / "inbox"
    elsewhere.mkdir(parents=True)
    moved = Path(shutil.copytree(exported.bundle, elsewhere / "bundle"))
    moved_zip = Path(shutil.copy(exported.bundle_zip, elsewhere / "evidence.zip"))
    root_bytes = bytes(exported.root_public_key)
    assert verify_bundle(moved, root_bytes).ok
    assert verify_bundle(moved_zip, root_bytes).ok
    # Another provider's root trusts none of it.
    other = verify_bundle(moved, SigningKey.generate().public_key)
    assert not other.ok and {1, 3, 4, 5} <= failed(other)


def test_bundle_format_mirrors_the_platform_names() -> None:
    # The verifier may not import the store or the key registry: its copies must agree.
    assert {f: t.name for f, t in FAMILY_TABLES.items()} == fmt.FAMILY_FILES
    assert (fmt.CHECKPOINT_KEY_OWNER, fmt.EXPORT_KEY_OWNER) == (
        CHECKPOINT_KEY_OWNER,
        EXPORT_KEY_OWNER,
    )
    assert fmt.PLATFORM_KEY_PREFIX == PLATFORM_KEY_PREFIX


def test_verifier_needs_no_store() -> None:
    code = (
        "import sys, aigc_audit.consumers.bundle.verify\n"
        "bad = [m for m in sys.modules if m.startswith(('chdb', 'clickhouse_connect', "
        "'aigc_audit.consumers.store', 'aigc_audit.consumers.bundle.export.exporter', "
        "'kafka'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


@pytest.mark.parametrize(
    ("selection", "keep"),
    [
        (
            Selection(subject="subject-3"),
            lambda e: getattr(e, "subject", None) == "subject-3",
        ),
        (Selection(families=("ModerationAction",)), lambda e: isinstance(e, ModerationAction)),
        (
            Selection(since=T0 + timedelta(seconds=30), until=T0 + timedelta(seconds=95)),
            lambda e: T0 + timedelta(seconds=30) <= e.occurred_at < T0 + timedelta(seconds=95),
        ),
        (
            Selection(families=("UserSanction",), subject="subject-2"),
            lambda e: isinstance(e, UserSanction) and e.subject == "subject-2",
        ),
    ],
    ids=["subject", "family", "time-range", "family-and-subject"],
)
def test_selection_exports_exactly_the_selected_events(
    exported: Exported, tmp_path: Path, selection: Selection, keep: Callable[[Any], bool]
) -> None:
    expected = exported.ids(keep)
    assert 0 < len(expected) < len(exported.events)
    seen: list[int] = []
    summary = export_bundle(
        exported.h.deployment.store(),
        selection,
        tmp_path / "selected.zip",
        export_key=exported.export_key,
        exported_by="test",
        progress=seen.append,
    )
    assert summary.events == len(expected) and seen[-1] == len(expected)
    result = verify(tmp_path / "selected.zip", exported)
    assert result.ok, format_checks(result)
    assert result.counts["events"] == len(expected)
    with zipfile.ZipFile(tmp_path / "selected.zip") as zf:
        zf.extractall(tmp_path / "unzipped")
    ids = exported_ids(tmp_path / "unzipped")
    assert len(ids) == len(set(ids)) and set(ids) == expected
    manifest = json.loads((tmp_path / "unzipped" / fmt.MANIFEST).read_text())
    assert manifest["selection"] == selection.describe()
    # Only the batches holding selected events travel, each with its signed head.
    batches = json.loads((tmp_path / "unzipped" / fmt.BATCHES_FILE).read_text())
    assert len(batches) == result.counts["batches"] < 40


def test_json_lines_form_is_the_logical_decoding() -> None:
    """The renderer decodes without logical types and converts by a plan; its lines must say
    exactly what decoding with logical types (datetimes, UUIDs) and writing JSON says."""
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
    events: list[AuditEvent] = [
        generation(1, implicit_label=label, occurred_at=T0 + timedelta(microseconds=123)),
        generation(2, output_sha256=None),
        case,
        complaint,
        sanction(1, case),
        pi_request(2),
        pi_request(3),
        safety_evaluation(),
        purge,
    ]
    catalogue = default_catalogue()
    renderer = fmt.EventRenderer(catalogue)
    for event in events:
        data = catalogue.encode(event.SCHEMA, event.to_record(service_id="s", producer_id="p-1"))
        fullname, record = renderer.decode(data)
        assert fullname == event.SCHEMA
        _, logical = catalogue.decode(data)
        event_id = str(event.event_id)
        assert renderer.line(event_id, record) == fmt.event_json_line(event_id, logical)
        assert json.loads(renderer.line(event_id, record))["head"]["event_id"] == event_id


def test_empty_selection_gives_a_valid_empty_bundle(exported: Exported, tmp_path: Path) -> None:
    summary = export_bundle(
        exported.h.deployment.store(),
        Selection(subject="nobody"),
        tmp_path / "empty",
        export_key=exported.export_key,
        exported_by="test",
    )
    assert (summary.events, summary.batches, summary.keys) == (0, 0, 1)
    result = verify(tmp_path / "empty", exported)
    assert result.ok, format_checks(result)
    assert result.counts["events"] == 0 and not list((tmp_path / "empty").glob("events/*"))


# --- tampering -----------------------------------------------------------------------------


def test_changed_event_byte_is_caught_even_when_the_manifest_is_fixed(
    exported: Exported, bundle: Path
) -> None:
    avro = bundle / "events/generations.avro"
    victim: dict[str, Any] = {}

    def change(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rec = records[17]
        data = bytearray(rec["event_bytes"])
        data[-5] ^= 0x01  # inside the body: the latency, a token count...
        rec["event_bytes"] = bytes(data)
        victim.update(rec)
        return records

    rewrite_avro(avro, change)
    result = verify(bundle, exported)
    assert failed(result) == {2, 6}
    assert "events/generations.avro does not match its SHA-256" in detail(result, 2)
    assert f"event {victim['event_id'][:8]}… in events/generations.avro" in detail(result, 6)
    assert "inclusion proof does not lead to batch chat-1#" in detail(result, 6)

    # The manifest updated with the new hash but not signed again: the signature fails.
    update_manifest_entry(bundle, "events/generations.avro")
    result = verify(bundle, exported)
    assert failed(result) == {1, 6}
    assert "signature over manifest.json does not verify" in detail(result, 1)

    # Even the holder of the export key cannot make a changed event pass.
    resign_manifest(bundle, exported.export_key)
    result = verify(bundle, exported)
    assert failed(result) == {6}
    assert "inclusion proof does not lead to batch chat-1#" in detail(result, 6)
    assert format_checks(result)[5].startswith("✗ 6. events: event ")


def test_dropped_event_is_caught(exported: Exported, bundle: Path) -> None:
    rewrite_avro(
        bundle / "events/moderation_actions.avro", lambda records: records[:4] + records[5:]
    )
    result = verify(bundle, exported)
    assert failed(result) == {2, 6, 7}
    assert "events/moderation_actions.avro does not match its SHA-256" in detail(result, 2)
    assert "line 5 of events/moderation_actions.jsonl does not match event" in detail(result, 6)
    assert "manifest counts 234 events, the bundle holds 233" in detail(result, 7)


def test_dropped_file_is_named(exported: Exported, bundle: Path) -> None:
    (bundle / "events/user_sanctions.jsonl").unlink()
    (bundle / "batches.json").unlink()
    result = verify(bundle, exported)
    files = detail(result, 2)
    assert "events/user_sanctions.jsonl is missing" in files
    assert "batches.json is missing" in files
    assert {1, 3, 4} & failed(result) == set()
    assert {2, 5, 6, 7} <= failed(result)


def test_added_file_is_named(exported: Exported, bundle: Path) -> None:
    (bundle / "events" / "extra.jsonl").write_text("{}\n")
    result = verify(bundle, exported)
    assert 2 in failed(result)
    assert "events/extra.jsonl is not listed in the manifest" in detail(result, 2)


def test_file_manager_litter_is_ignored(exported: Exported, bundle: Path) -> None:
    (bundle / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (bundle / "events" / "._generations.avro").write_bytes(b"\0\5\x16\7")
    result = verify(bundle, exported)
    assert result.ok, format_checks(result)
    assert "ignored OS metadata: .DS_Store, events/._generations.avro" in result.check(2).detail


def test_altered_manifest_fails_its_signature(exported: Exported, bundle: Path) -> None:
    manifest = json.loads((bundle / fmt.MANIFEST).read_text())
    manifest["counts"]["events"] -= 1
    manifest["exported_by"] = "someone else"
    (bundle / fmt.MANIFEST).write_bytes(fmt.json_bytes(manifest))
    result = verify(bundle, exported)
    assert failed(result) == {1, 7}
    assert "signature over manifest.json does not verify under key" in detail(result, 1)


def test_key_not_registered_by_the_root_is_named(exported: Exported, bundle: Path) -> None:
    keys = json.loads((bundle / fmt.KEYS_FILE).read_text())
    impostor_root = SigningKey.generate()
    for i, item in enumerate(keys):
        if item["producer_id"] == "mod-1":
            reg = fmt.registration_from_json(item)
            forged = sign_registration(impostor_root, dataclasses.replace(reg, signature=b""))
            keys[i] = fmt.registration_to_json(forged)
            key_id = reg.key_id
    (bundle / fmt.KEYS_FILE).write_bytes(fmt.json_list_bytes(keys))
    update_manifest_entry(bundle, fmt.KEYS_FILE)
    resign_manifest(bundle, exported.export_key)
    result = verify(bundle, exported)
    assert failed(result) == {3, 5}
    assert f"key {key_id} (mod-1) is not registered by the trusted root" in detail(result, 3)
    assert f"is signed by key {key_id}, whose registration the root did not sign" in detail(
        result, 5
    )


def test_forged_checkpoint_is_named(exported: Exported, bundle: Path) -> None:
    chains = json.loads((bundle / fmt.CHECKPOINTS_FILE).read_text())
    chain = chains[0]
    checkpoint, _, _ = parse_note(chain["checkpoints"][0])
    forged = dataclasses.replace(checkpoint, root_hash=bytes(32))

    # 1. The note's text altered, its signature kept.
    signature_lines = chain["checkpoints"][0].partition("\n\n")[2]
    chain["checkpoints"][0] = f"{forged.body()}\n{signature_lines}"
    (bundle / fmt.CHECKPOINTS_FILE).write_bytes(fmt.json_bytes(chains))
    update_manifest_entry(bundle, fmt.CHECKPOINTS_FILE)
    resign_manifest(bundle, exported.export_key)
    result = verify(bundle, exported)
    assert 4 in failed(result) and {1, 2, 3} & failed(result) == set()
    assert f"{checkpoint.origin} @ {checkpoint.tree_size}: signature by" in detail(result, 4)
    assert "does not verify" in detail(result, 4)
    assert 5 in failed(result)  # the batches that cite it have no trusted root to lead to

    # 2. Signed again, under the same key name, by a key the root never registered.
    chain["checkpoints"][0] = sign_checkpoint(forged, SigningKey.generate(), "aigc-audit.local")
    (bundle / fmt.CHECKPOINTS_FILE).write_bytes(fmt.json_bytes(chains))
    update_manifest_entry(bundle, fmt.CHECKPOINTS_FILE)
    resign_manifest(bundle, exported.export_key)
    result = verify(bundle, exported)
    assert 4 in failed(result) and {1, 2, 3} & failed(result) == set()
    assert f"{checkpoint.origin} @ {checkpoint.tree_size} is signed by no trusted key" in detail(
        result, 4
    )


def test_batch_moved_out_of_its_checkpoint_is_caught(exported: Exported, bundle: Path) -> None:
    batches = json.loads((bundle / fmt.BATCHES_FILE).read_text())
    batches[3]["tree_index"] += 1
    (bundle / fmt.BATCHES_FILE).write_bytes(fmt.json_list_bytes(batches))
    update_manifest_entry(bundle, fmt.BATCHES_FILE)
    resign_manifest(bundle, exported.export_key)
    result = verify(bundle, exported)
    assert failed(result) == {5}
    name = f"{batches[3]['producer_id']}#{batches[3]['sequence']}"
    assert f"batch {name} is not in checkpoint" in detail(result, 5)


@pytest.mark.parametrize("where", ["avro", "jsonl", "batches", "manifest"])
def test_flipped_byte_in_a_directory_bundle(exported: Exported, bundle: Path, where: str) -> None:
    path = {
        "avro": bundle / "events/generations.avro",
        "jsonl": bundle / "events/user_sanctions.jsonl",
        "batches": bundle / fmt.BATCHES_FILE,
        "manifest": bundle / fmt.MANIFEST,
    }[where]
    flip(path, path.stat().st_size // 2)
    result = verify(bundle, exported)
    assert not result.ok
    assert failed(result) & {1, 2}


def test_flipped_byte_in_a_zip_bundle(exported: Exported, tmp_path: Path) -> None:
    with zipfile.ZipFile(exported.bundle_zip) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    for name in ("events/generations.avro", "batches.json", "manifest.json", "keys.json"):
        damaged = Path(shutil.copy(exported.bundle_zip, tmp_path / "damaged.zip"))
        info = infos[name]
        # The member's data starts after its local header (30 bytes, name, extra field).
        with damaged.open("rb") as fh:
            fh.seek(info.header_offset + 26)
            name_len, extra_len = (int.from_bytes(fh.read(2), "little") for _ in range(2))
        start = info.header_offset + 30 + name_len + extra_len
        flip(damaged, start + info.compress_size // 2)
        result = verify(damaged, exported)
        assert not result.ok, name
        assert failed(result) & {1, 2}, name
    # And anywhere in the file: a flip either changes what the members hold, and is caught,
    # or lands where the zip carries nothing the evidence depends on (a header's timestamp, a
    # deflate stream's final-block bit or padding) and the members read back identical.
    size = exported.bundle_zip.stat().st_size
    for offset in range(size // 9, size, size // 9):
        damaged = Path(shutil.copy(exported.bundle_zip, tmp_path / "damaged.zip"))
        flip(damaged, offset)
        if verify(damaged, exported).ok:
            assert zip_members(damaged) == zip_members(exported.bundle_zip), offset


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


@pytest.mark.parametrize(
    "name",
    [
        fmt.MANIFEST,
        fmt.MANIFEST_SIG,
        fmt.KEYS_FILE,
        fmt.CHECKPOINTS_FILE,
        fmt.BATCHES_FILE,
        "events/generations.avro",
        "events/generations.jsonl",
        "schemas/aigc.audit.EventHead.avsc",
    ],
)
def test_garbage_in_any_file_fails_checks_never_raises(
    exported: Exported, bundle: Path, name: str
) -> None:
    for garbage in (b"", b"not json", b"{}", b"[]", b'[{"key_id": 7}]', b"[1, [2], null]"):
        (bundle / name).write_bytes(garbage)
        result = verify(bundle, exported)
        assert not result.ok, (name, garbage)
        assert failed(result) & {1, 2}  # the manifest, or a file it lists, is wrong


def test_not_a_bundle(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        verify(tmp_path / "nothing-here", exported)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match="not an export bundle"):
        verify(tmp_path / "notes.txt", exported)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="not an export bundle"):
        verify(tmp_path / "empty", exported)
    # A bundle without its manifest is still a bundle: it fails check 1, and 2 and 7 with it.
    no_manifest = Path(shutil.copytree(exported.bundle, tmp_path / "no-manifest"))
    (no_manifest / fmt.MANIFEST).unlink()
    result = verify(no_manifest, exported)
    assert {1, 2, 7} <= failed(result)
    assert "manifest.json is missing" in detail(result, 1)


# --- export errors -------------------------------------------------------------------------


def test_export_refuses_a_used_output_and_leaves_nothing_behind(
    exported: Exported, tmp_path: Path
) -> None:
    store = exported.h.deployment.store()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export_bundle(
            store, Selection(), tmp_path / "full", export_key=exported.export_key, exported_by="t"
        )
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(
            store,
            Selection(),
            exported.bundle_zip,
            export_key=exported.export_key,
            exported_by="t",
        )
    # An export key the root never registered cannot sign a bundle.
    with pytest.raises(ExportError, match="not in the store's key registry"):
        export_bundle(
            store, Selection(), tmp_path / "b", export_key=SigningKey.generate(), exported_by="t"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_export_refuses_a_batch_no_checkpoint_covers(exported: Exported, tmp_path: Path) -> None:
    # Last in the module: it adds batches no checkpoint covers, far from every other selection.
    h = exported.h
    late = [
        generation(1000 + n, subject="uncovered", occurred_at=T0 + timedelta(days=10, seconds=n))
        for n in range(6)
    ]
    h.emit("late-1", late, batch_size=4)
    events, keys = h.deployment.bus_readers()
    Materialiser(
        store=h.deployment.store(),
        events=events,
        keys=keys,
        root_public_key=exported.root_public_key,
        checkpointer=None,  # a materialiser that has not yet signed what it stored
    ).run_until_idle()
    assert h.count("events", "producer_id = 'late-1'") == 6
    with pytest.raises(
        ExportError, match=r"batch late-1#0 is not covered by a checkpoint yet; run"
    ):
        export_bundle(
            h.deployment.store(),
            Selection(subject="uncovered"),
            tmp_path / "b",
            export_key=exported.export_key,
            exported_by="t",
        )
    assert not (tmp_path / "b").exists()
