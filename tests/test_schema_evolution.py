"""Schema evolution in practice: bytes written with a released schema (``schemas/released/vN``)
keep decoding after the schemas change, resolved into the current schema; new bytes are always
written with the current one.

`test_schema_compatibility.py` checks that the current schemas *can* read every release; these
tests check that the catalogue, and the pipeline behind it, *do*: the v1 bytes are built with
fastavro straight from ``schemas/released/v1``, as a producer running the released library wrote
them.
"""

from __future__ import annotations

import io
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

from aigc_audit.consumers.store.rows import data_handling_row
from aigc_audit.producers.codec import MAGIC, SchemaCatalogue, default_catalogue
from aigc_audit.producers.errors import UnknownSchemaError
from aigc_audit.producers.events import AgreementAcceptance, IdentityVerification

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
V1 = SCHEMAS / "released" / "v1"
DATA_HANDLING = "aigc.audit.DataHandling"
T = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
T_US = int(T.timestamp()) * 1_000_000 + T.microsecond


def v1_schema(fullname: str) -> Any:
    return load_schema(str(V1 / f"{fullname}.avsc"))


def v1_fingerprint(fullname: str) -> bytes:
    canonical = to_parsing_canonical_form(v1_schema(fullname))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def v1_encode(fullname: str, record: dict[str, Any]) -> bytes:
    """Single-object encoding of ``record`` with the released v1 schema, by fastavro alone."""
    buf = io.BytesIO()
    buf.write(MAGIC + v1_fingerprint(fullname))
    fastavro.schemaless_writer(buf, v1_schema(fullname), record)
    return buf.getvalue()


def v1_data_handling(event_type: str, detail: dict[str, Any], **head: Any) -> dict[str, Any]:
    """A v1 DataHandling record: every v1 detail field null but ``event_type``'s."""
    fields = [f["name"] for f in v1_schema(DATA_HANDLING)["fields"]]
    record: dict[str, Any] = dict.fromkeys(f for f in fields if f not in ("head", "subject"))
    record[event_type] = detail
    return {
        "head": {
            "event_id": str(uuid.UUID(int=7)),
            "event_type": event_type,
            "occurred_at": T,
            "service_id": "svc",
            "producer_id": "svc-1",
            "schema_version": 1,
            **head,
        },
        "subject": "subj-1",
        **record,
    }


VERIFIED = {"method": "mobile_number", "verified": True}


def test_the_schema_changed_since_v1() -> None:
    """Otherwise the tests below would prove nothing."""
    catalogue = default_catalogue()
    assert catalogue.releases[0] == "v1"
    assert v1_fingerprint(DATA_HANDLING) != catalogue.fingerprint(DATA_HANDLING)
    fields = {f["name"] for f in v1_schema(DATA_HANDLING)["fields"]}
    assert "agreement_acceptance" not in fields


def test_v1_bytes_decode_into_the_current_schema() -> None:
    data = v1_encode(DATA_HANDLING, v1_data_handling("identity_verification", VERIFIED))
    catalogue = default_catalogue()
    fullname, record = catalogue.decode(data)
    assert fullname == DATA_HANDLING
    assert catalogue.by_fingerprint(data[2:10]) == DATA_HANDLING
    assert not catalogue.is_current(data[2:10])
    # the field added since v1 takes its default; everything written is read back
    assert record["agreement_acceptance"] is None
    assert record["identity_verification"] == VERIFIED
    assert record["subject"] == "subj-1"
    assert record["head"]["event_type"] == "identity_verification"
    assert record["head"]["event_id"] == uuid.UUID(int=7)
    assert record["head"]["occurred_at"] == T
    assert record["head"]["schema_version"] == 1
    current_fields = [f["name"] for f in catalogue.schema(DATA_HANDLING)["fields"]]
    assert list(record) == current_fields
    # and the materialiser's row of it is the row of the same event written today
    row = data_handling_row(record)
    assert row["method"] == "mobile_number" and row["verified"] is True
    assert "agreement_id" not in row


def test_v1_bytes_decode_without_logical_types() -> None:
    data = v1_encode(DATA_HANDLING, v1_data_handling("identity_verification", VERIFIED))
    fullname, record = default_catalogue().decode(data, logical_types=False)
    assert fullname == DATA_HANDLING
    assert record["head"]["occurred_at"] == T_US
    assert record["head"]["event_id"] == str(uuid.UUID(int=7))
    assert record["agreement_acceptance"] is None


def test_every_changed_v1_record_decodes() -> None:
    """A change to a shared type (EventHead's event types) changes every family's fingerprint."""
    catalogue = default_catalogue()
    changed = 0
    for file in sorted(V1.glob("*.avsc")):
        schema = v1_schema(file.stem)
        if schema["type"] != "record":
            continue
        fp = v1_fingerprint(file.stem)
        assert catalogue.by_fingerprint(fp) == file.stem
        changed += not catalogue.is_current(fp)
    assert changed >= 5  # the four event families and EventHead itself


def test_unchanged_records_share_their_fingerprint() -> None:
    catalogue = default_catalogue()
    for name in ("aigc.audit.SignedBatch", "aigc.audit.KeyRegistration"):
        assert v1_fingerprint(name) == catalogue.fingerprint(name)
        assert catalogue.is_current(v1_fingerprint(name))


def test_re_encoding_writes_the_current_schema() -> None:
    catalogue = default_catalogue()
    data = v1_encode(DATA_HANDLING, v1_data_handling("identity_verification", VERIFIED))
    _, record = catalogue.decode(data)
    again = catalogue.encode(DATA_HANDLING, record)
    assert again[2:10] == catalogue.fingerprint(DATA_HANDLING)
    assert catalogue.decode(again) == (DATA_HANDLING, record)


def test_the_current_encoding_round_trips() -> None:
    catalogue = default_catalogue()
    event = AgreementAcceptance(
        subject="subj-1",
        agreement_id="user-agreement",
        agreement_version="4.3",
        accepted_at=T,
        channel="web",
        occurred_at=T + timedelta(seconds=1),
    )
    record = event.to_record(service_id="svc", producer_id="svc-1")
    data = catalogue.encode(DATA_HANDLING, record)
    assert data[2:10] == catalogue.fingerprint(DATA_HANDLING)
    assert catalogue.is_current(data[2:10])
    fullname, decoded = catalogue.decode(data)
    assert fullname == DATA_HANDLING
    assert decoded["head"]["event_type"] == "agreement_acceptance"
    assert decoded["agreement_acceptance"] == {
        "agreement_id": "user-agreement",
        "agreement_version": "4.3",
        "accepted_at": T,
        "channel": "web",
    }
    assert data_handling_row(decoded)["agreement_version"] == "4.3"
    _, raw = catalogue.decode(data, logical_types=False)
    assert raw["agreement_acceptance"]["accepted_at"] == T_US
    # an existing kind written today decodes too
    verified = IdentityVerification(subject="s", method="face_match", verified=True)
    data = catalogue.encode(DATA_HANDLING, verified.to_record(service_id="s", producer_id="s-1"))
    assert catalogue.decode(data)[1]["identity_verification"]["method"] == "face_match"


def test_a_fingerprint_in_no_version_is_unknown() -> None:
    data = v1_encode(DATA_HANDLING, v1_data_handling("identity_verification", VERIFIED))
    forged = data[:2] + bytes(8) + data[10:]
    with pytest.raises(UnknownSchemaError, match="unknown schema fingerprint 0000000000000000"):
        default_catalogue().decode(forged)
    with pytest.raises(UnknownSchemaError):
        default_catalogue().by_fingerprint(bytes(8))


def _copy(target: Path, *, released: bool) -> Path:
    target.mkdir()
    for file in SCHEMAS.glob("*.avsc"):
        shutil.copy(file, target / file.name)
    if released:
        shutil.copytree(V1, target / "released" / "v1")
    return target


def test_a_directory_with_released_snapshots_reads_them(tmp_path: Path) -> None:
    """A bundle's ``schemas/`` folder (or any directory given) works like the package."""
    data = v1_encode(DATA_HANDLING, v1_data_handling("identity_verification", VERIFIED))
    catalogue = SchemaCatalogue(_copy(tmp_path / "schemas", released=True))
    assert catalogue.releases == ("v1",)
    assert catalogue.decode(data)[1]["agreement_acceptance"] is None
    # without the snapshot, the old fingerprint names nothing
    bare = SchemaCatalogue(_copy(tmp_path / "bare", released=False))
    assert bare.releases == ()
    with pytest.raises(UnknownSchemaError):
        bare.decode(data)


def test_a_zipped_schema_directory_reads_its_released_snapshots(tmp_path: Path) -> None:
    source = _copy(tmp_path / "schemas", released=True)
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(source.rglob("*.avsc")):
            zf.write(file, f"schemas/{file.relative_to(source).as_posix()}")
    data = v1_encode(DATA_HANDLING, v1_data_handling("identity_verification", VERIFIED))
    with zipfile.ZipFile(archive) as zf:
        catalogue = SchemaCatalogue(zipfile.Path(zf, "schemas/"))
        assert catalogue.releases == ("v1",)
        assert catalogue.decode(data)[0] == DATA_HANDLING


def test_a_later_release_identical_to_an_earlier_one_adds_nothing(tmp_path: Path) -> None:
    root = _copy(tmp_path / "schemas", released=True)
    shutil.copytree(V1, root / "released" / "v2")
    shutil.copytree(root, root / "released" / "v3", ignore=shutil.ignore_patterns("released"))
    catalogue = SchemaCatalogue(root)
    assert catalogue.releases == ("v1", "v2", "v3")
    assert catalogue._writers.keys() == default_catalogue()._writers.keys()


# -- the pipeline: v1 events on the bus are materialised, not quarantined ----------------------


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("chdb")
    from tests.harness import Harness

    h = Harness(tmp_path / "data")
    yield h
    h.close()


@pytest.mark.chdb
def test_v1_events_on_the_bus_are_materialised(harness: Any) -> None:
    from aigc_audit.consumers.query.pack import bind_params, get_query, run_query

    h = harness
    old = v1_encode(
        DATA_HANDLING,
        v1_data_handling(
            "identity_verification",
            VERIFIED,
            event_id=str(uuid.UUID(int=1)),
            service_id="svc",
            producer_id="svc-1",
        ),
    )
    new = h.encode(
        AgreementAcceptance(
            subject="subj-1",
            agreement_id="user-agreement",
            agreement_version="4.3",
            accepted_at=T,
            channel="app",
            occurred_at=T,
        ),
        "svc-1",
    )
    (batch,) = h.chain("svc-1", [[old, new]])
    h.publish_batch(batch)
    stats = h.materialise()
    assert stats.events_materialised == 2
    assert h.count("quarantine") == 0
    assert h.count("data_handling") == 2
    fingerprints = dict(
        h.query("SELECT event_type, hex(schema_fingerprint) FROM audit.events").rows
    )
    assert fingerprints == {
        "identity_verification": v1_fingerprint(DATA_HANDLING).hex().upper(),
        "agreement_acceptance": default_catalogue().fingerprint(DATA_HANDLING).hex().upper(),
    }
    query = get_query("agreement_in_force")
    rows = run_query(
        h.deployment.store(), query, bind_params(query, {"at": "2026-03-02", "subject": "subj-1"})
    ).as_dicts()
    assert [(r["agreement_id"], r["agreement_version"], r["channel"]) for r in rows] == [
        ("user-agreement", "4.3", "app")
    ]

    # Both versions verify in an export bundle, the old one through the released schemas the
    # bundle carries, and both verify in the store.
    from aigc_audit.consumers.bundle.export import export_bundle
    from aigc_audit.consumers.bundle.verify import verify_bundle
    from aigc_audit.consumers.query.selection import Selection
    from aigc_audit.consumers.store_verification import verify_store
    from aigc_audit.producers.signing import load_public_key

    root = load_public_key(h.settings.root_public_key_path)
    store = h.deployment.store()
    bundle = h.settings.data_dir.parent / "bundle"
    export_bundle(
        store, Selection(), bundle, export_key=h.deployment.export_key(), exported_by="test"
    )
    assert (bundle / "schemas" / "released" / "v1" / f"{DATA_HANDLING}.avsc").is_file()
    verified = verify_bundle(bundle, root)
    assert verified.ok, [c for c in verified.checks if not c.ok]
    assert verified.counts["events"] == 2
    assert verify_store(store, root).ok
