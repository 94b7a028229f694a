"""Single-object encoding, the schema catalogue, and SignedBatch / KeyRegistration round trips."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.producers.batch import SIGNED_BATCH, SignedBatch, seal_batch
from aigc_audit.producers.codec import MAGIC, SchemaCatalogue, default_catalogue
from aigc_audit.producers.errors import (
    DecodeError,
    EventValidationError,
    MerkleError,
    SchemaError,
    SignatureError,
    UnknownSchemaError,
)
from aigc_audit.producers.key_registration_codec import decode_registration, encode_registration
from aigc_audit.producers.merkle import merkle_root
from aigc_audit.producers.signing import (
    GENESIS_DIGEST,
    KeyRegistration,
    SigningKey,
    sign_registration,
    verify_registration,
)

SCHEMAS = resources.files("aigc_audit.schemas")
OWN_FILES = ("aigc.audit.SignedBatch.avsc", "aigc.audit.KeyRegistration.avsc")


# --- an independent CRC-64-AVRO and Parsing Canonical Form, straight from the Avro spec ---

_EMPTY64 = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY64 & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


_PRIMITIVE = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def pcf(schema: Any, ns: str = "", seen: set[str] | None = None) -> str:
    """Parsing Canonical Form of a self-contained schema (Avro spec, "Transforming into PCF")."""
    seen = set() if seen is None else seen
    if isinstance(schema, list):
        return "[" + ",".join(pcf(s, ns, seen) for s in schema) + "]"
    if isinstance(schema, str):
        if schema in _PRIMITIVE:
            return json.dumps(schema)
        return json.dumps(schema if "." in schema or not ns else f"{ns}.{schema}")
    kind = schema["type"]
    if kind in _PRIMITIVE:
        return json.dumps(kind)
    if kind == "array":
        return '{"type":"array","items":' + pcf(schema["items"], ns, seen) + "}"
    if kind == "map":
        return '{"type":"map","values":' + pcf(schema["values"], ns, seen) + "}"
    name = schema["name"]
    if "." not in name:
        ns = schema.get("namespace", ns)
        name = f"{ns}.{name}" if ns else name
    ns = name.rpartition(".")[0]
    if name in seen:
        return json.dumps(name)
    seen.add(name)
    head = '{"name":' + json.dumps(name) + ',"type":' + json.dumps(kind)
    if kind == "fixed":
        return head + ',"size":' + str(schema["size"]) + "}"
    if kind == "enum":
        return head + ',"symbols":' + json.dumps(schema["symbols"], separators=(",", ":")) + "}"
    fields = ",".join(
        '{"name":' + json.dumps(f["name"]) + ',"type":' + pcf(f["type"], ns, seen) + "}"
        for f in schema["fields"]
    )
    return head + ',"fields":[' + fields + "]}"


# Published vectors: apache/avro share/test/data/schema-tests.txt (signed Java longs).
@pytest.mark.parametrize(
    ("canonical", "java_long"),
    [
        ('"null"', 7195948357588979594),
        ('"boolean"', -6970731678124411036),
        ('"int"', 8247732601305521295),
        ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
        (
            '{"name":"PigValue","type":"record","fields":[{"name":"value",'
            '"type":["null","int","long","PigValue"]}]}',
            -1759257747318642341,
        ),
    ],
)
def test_reference_crc64_matches_avro_vectors(canonical: str, java_long: int) -> None:
    assert crc64_avro(canonical.encode()) == java_long % 2**64


# --- fixtures ---


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> SchemaCatalogue:
    """Only this module's schemas, so a colleague's half-written schema cannot break these."""
    directory = tmp_path_factory.mktemp("own-schemas")
    for name in OWN_FILES:
        (directory / name).write_text(SCHEMAS.joinpath(name).read_text(encoding="utf-8"))
    return SchemaCatalogue(directory)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def _batch(key: SigningKey, n: int = 5, **changes: Any) -> SignedBatch:
    events = [bytes([i]) * i for i in range(n)]  # includes an empty event
    args: dict[str, Any] = {
        "producer_id": "svc-chat-生成",
        "key": key,
        "sequence": 7,
        "prev_digest": bytes(range(32)),
        "created_at_us": 1_717_171_717_171_717,
    }
    args.update(changes)
    return seal_batch(events, **args)


# --- fingerprints and the catalogue ---


@pytest.mark.parametrize("name", ["aigc.audit.SignedBatch", "aigc.audit.KeyRegistration"])
def test_fingerprint_is_little_endian_crc64_of_canonical_form(
    catalogue: SchemaCatalogue, name: str
) -> None:
    raw = json.loads(SCHEMAS.joinpath(f"{name}.avsc").read_text(encoding="utf-8"))
    canonical = pcf(raw)
    assert catalogue.canonical_form(name) == canonical
    expected = crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert catalogue.fingerprint(name) == expected
    assert catalogue.by_fingerprint(expected) == name


def test_default_catalogue_is_cached_and_loads_the_package(catalogue: SchemaCatalogue) -> None:
    default = default_catalogue()
    assert default is default_catalogue()
    for name in ("aigc.audit.SignedBatch", "aigc.audit.KeyRegistration"):
        assert default.fingerprint(name) == catalogue.fingerprint(name)


def test_unknown_names_and_fingerprints(catalogue: SchemaCatalogue) -> None:
    with pytest.raises(SchemaError, match=r"no schema named aigc\.audit\.Nope"):
        catalogue.schema("aigc.audit.Nope")
    with pytest.raises(SchemaError):
        catalogue.encode("aigc.audit.Nope", {})
    with pytest.raises(UnknownSchemaError):
        catalogue.by_fingerprint(bytes(8))


def _write(directory: Path, name: str, schema: Any) -> None:
    (directory / name).write_text(json.dumps(schema))


def test_cross_file_references_resolve_in_any_order(tmp_path: Path) -> None:
    # "a.Zed" sorts first yet needs t.Parent, which needs t.Child and the fixed nested in it.
    child = {
        "type": "record",
        "name": "Child",
        "namespace": "t",
        "fields": [{"name": "h", "type": {"type": "fixed", "name": "Hash", "size": 4}}],
    }
    parent = {
        "type": "record",
        "name": "t.Parent",
        "fields": [
            {"name": "child", "type": "Child"},
            {"name": "again", "type": ["null", "t.Child"], "default": None},
            {"name": "hash", "type": "Hash"},
        ],
    }
    zed = {
        "type": "record",
        "name": "Zed",
        "namespace": "a",
        "fields": [{"name": "p", "type": "t.Parent"}],
    }
    _write(tmp_path, "t.Child.avsc", child)
    _write(tmp_path, "t.Parent.avsc", parent)
    _write(tmp_path, "a.Zed.avsc", zed)
    cat = SchemaCatalogue(tmp_path)
    assert cat.names == ["a.Zed", "t.Child", "t.Parent"]

    # What the catalogue should see: each definition inlined at its first use.
    parent_inlined = {**parent, "fields": [{"name": "child", "type": child}, *parent["fields"][1:]]}
    inlined = {**zed, "fields": [{"name": "p", "type": parent_inlined}]}
    assert cat.canonical_form("a.Zed") == pcf(inlined)
    assert cat.fingerprint("a.Zed") == crc64_avro(pcf(inlined).encode()).to_bytes(8, "little")

    record = {"p": {"child": {"h": b"abcd"}, "again": {"h": b"efgh"}, "hash": b"ijkl"}}
    assert cat.decode(cat.encode("a.Zed", record)) == ("a.Zed", record)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is unreadable"),
        ('{"type": "record", "name": "X"}', "is unreadable"),
        ('{"type": "record", "name": "X", "fields": [{"name": "f", "type": "Y"}]}', "type Y"),
        (
            '{"type": "record", "name": "X", "fields": [{"name": "f", "type": '
            '{"type": "fixed", "name": "F"}}]}',
            "not a valid",
        ),
    ],
)
def test_bad_schema_file_raises_schema_error_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    shutil.copy(str(SCHEMAS.joinpath(OWN_FILES[0])), tmp_path / OWN_FILES[0])
    (tmp_path / "aigc.audit.Broken.avsc").write_text(content)
    with pytest.raises(SchemaError, match=message) as info:
        SchemaCatalogue(tmp_path)
    assert "aigc.audit.Broken.avsc" in str(info.value)


def test_missing_directory_and_duplicate_records_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot list schema directory"):
        SchemaCatalogue(tmp_path / "absent")
    record = {"type": "record", "name": "R", "namespace": "n", "fields": []}
    _write(tmp_path, "n.R.avsc", record)
    _write(tmp_path, "n.R2.avsc", record)
    with pytest.raises(SchemaError, match=r"both define n\.R"):
        SchemaCatalogue(tmp_path)


def test_wrapped_and_bare_name_references(tmp_path: Path) -> None:
    _write(tmp_path, "n.H.avsc", {"type": "fixed", "name": "H", "namespace": "n", "size": 2})
    record = {
        "type": "record",
        "name": "R",
        "namespace": "n",
        "fields": [{"name": "a", "type": {"type": "H"}}, {"name": "b", "type": "H"}],
    }
    _write(tmp_path, "n.R.avsc", record)
    cat = SchemaCatalogue(tmp_path)
    assert cat.names == ["n.R"]  # a top-level fixed is a definition, not an encodable record
    assert cat.canonical_form("n.R") == (
        '{"name":"n.R","type":"record","fields":[{"name":"a","type":'
        '{"name":"n.H","type":"fixed","size":2}},{"name":"b","type":"n.H"}]}'
    )


def test_conflicting_definitions_are_refused(tmp_path: Path) -> None:
    fixed = {"type": "fixed", "name": "H", "size": 4}
    _write(
        tmp_path,
        "A.avsc",
        {"type": "record", "name": "A", "fields": [{"name": "h", "type": fixed}]},
    )
    _write(
        tmp_path,
        "B.avsc",
        {"type": "record", "name": "B", "fields": [{"name": "h", "type": {**fixed, "size": 8}}]},
    )
    with pytest.raises(SchemaError, match="redefines H"):
        SchemaCatalogue(tmp_path)


# --- encoding and decoding ---


def test_encode_writes_marker_and_fingerprint(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    data = _batch(key).encode(catalogue)
    assert data[:2] == MAGIC == b"\xc3\x01"
    assert data[2:10] == catalogue.fingerprint(SIGNED_BATCH)


@pytest.mark.parametrize("created_at_us", [0, 1_717_171_717_171_717, -(2**63), 2**63 - 1])
def test_signed_batch_round_trip_is_exact(
    catalogue: SchemaCatalogue, key: SigningKey, created_at_us: int
) -> None:
    batch = _batch(key, created_at_us=created_at_us)
    data = batch.encode(catalogue)
    decoded = SignedBatch.decode(data, catalogue)
    assert decoded == batch
    assert decoded.encode(catalogue) == data
    assert decoded.digest == batch.digest
    decoded.verify(key.public_key)


def test_plain_decode_gives_logical_values(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    batch = _batch(key, created_at_us=1_000_001)
    name, record = catalogue.decode(batch.encode(catalogue))
    assert name == SIGNED_BATCH
    assert record["created_at"] == dt.datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=dt.UTC)
    assert (
        catalogue.decode(batch.encode(catalogue), logical_types=False)[1]["created_at"] == 1_000_001
    )


def _by_fastavro(catalogue: SchemaCatalogue, data: bytes) -> bytes:
    """What fastavro writes for the record ``data`` holds."""
    return catalogue.encode(SIGNED_BATCH, catalogue.decode(data, logical_types=False)[1])


@pytest.mark.parametrize(
    "events",
    [
        [b""],
        [bytes([i]) * i for i in range(70)],  # the count takes two varint bytes past 63
        [b"x" * 8191, b"y" * 8192, b"z" * 100_000, b""],  # lengths past the prefix table
        [i.to_bytes(4, "big") for i in range(5000)],
        [bytearray(b"mutable"), memoryview(b"view")],
    ],
    ids=["one-empty", "seventy", "long-events", "five-thousand", "not-bytes"],
)
def test_batch_bytes_are_fastavros(
    catalogue: SchemaCatalogue, key: SigningKey, events: list[bytes]
) -> None:
    batch = seal_batch(
        events,
        producer_id="p-生成",
        key=key,
        sequence=2**40,
        prev_digest=bytes(32),
        created_at_us=-1,
    )
    assert all(type(e) is bytes for e in batch.events)
    data = batch.encode(catalogue)
    assert data == _by_fastavro(catalogue, data)
    assert SignedBatch.decode(data, catalogue) == batch


def test_a_batch_schema_with_more_after_the_events_is_written_by_fastavro(
    tmp_path: Path, key: SigningKey
) -> None:
    raw = json.loads(SCHEMAS.joinpath(OWN_FILES[0]).read_text(encoding="utf-8"))
    raw["fields"].append({"name": "note", "type": "string", "default": "n"})
    (tmp_path / OWN_FILES[0]).write_text(json.dumps(raw))
    other = SchemaCatalogue(tmp_path)
    data = _batch(key).encode(other)
    assert data == _by_fastavro(other, data)
    assert other.decode(data)[1]["note"] == "n"
    assert SignedBatch.decode(data, other) == _batch(key)


def test_seal_batch_builds_a_verifiable_chain(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    first = _batch(key, sequence=0, prev_digest=GENESIS_DIGEST)
    second = _batch(key, sequence=1, prev_digest=first.digest)
    assert first.key_id == key.key_id
    assert first.merkle_root == merkle_root(first.events)
    assert first.head.event_count == 5
    assert SignedBatch.decode(second.encode(catalogue), catalogue).prev_digest == first.digest
    big = seal_batch(
        [i.to_bytes(4, "big") for i in range(5000)],
        producer_id="p",
        key=key,
        sequence=0,
        prev_digest=GENESIS_DIGEST,
        created_at_us=0,
    )
    SignedBatch.decode(big.encode(catalogue), catalogue).verify(key.public_key)
    with pytest.raises(ValueError, match="at least one event"):
        _batch(key, n=0)


def test_verify_catches_changed_events_and_heads(key: SigningKey) -> None:
    batch = _batch(key)
    with pytest.raises(MerkleError):
        dataclasses.replace(batch, events=(*batch.events[:-1], b"forged")).verify(key.public_key)
    with pytest.raises(SignatureError):
        dataclasses.replace(batch, sequence=8).verify(key.public_key)
    with pytest.raises(SignatureError):
        batch.verify(SigningKey.generate().public_key)


def test_decode_rejects_garbage(catalogue: SchemaCatalogue) -> None:
    for data in (b"", b"\xc3", b"\xc3\x01\x00", b"hello, world, not avro"):
        with pytest.raises(DecodeError, match="not single-object encoded"):
            catalogue.decode(data)


def test_decode_rejects_wrong_marker(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    data = _batch(key).encode(catalogue)
    for marker in (b"\xc3\x02", b"\xc2\x01", b"\x01\xc3"):
        with pytest.raises(DecodeError, match="not single-object encoded"):
            SignedBatch.decode(marker + data[2:], catalogue)


def test_decode_rejects_unknown_fingerprint(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    data = bytearray(_batch(key).encode(catalogue))
    data[2] ^= 0xFF
    with pytest.raises(UnknownSchemaError, match="unknown schema fingerprint"):
        SignedBatch.decode(bytes(data), catalogue)
    # Big-endian fingerprints (a common mistake) are unknown too.
    data = _batch(key).encode(catalogue)
    with pytest.raises(UnknownSchemaError):
        catalogue.decode(data[:2] + data[2:10][::-1] + data[10:])


def test_decode_rejects_every_truncation(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    data = _batch(key).encode(catalogue)
    for cut in range(10, len(data)):
        with pytest.raises(DecodeError, match="malformed Avro body") as info:
            SignedBatch.decode(data[:cut], catalogue)
        assert not isinstance(info.value, UnknownSchemaError)


def test_decode_rejects_trailing_bytes(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    data = _batch(key).encode(catalogue)
    for extra in (b"\x00", b"garbage"):
        with pytest.raises(DecodeError, match="trailing"):
            SignedBatch.decode(data + extra, catalogue)


def test_decode_rejects_bad_utf8_and_wrong_record(
    catalogue: SchemaCatalogue, key: SigningKey
) -> None:
    data = bytearray(_batch(key).encode(catalogue))
    # Body starts with format_version (1 byte), then producer_id's length and first byte.
    data[12] = 0xFF
    with pytest.raises(DecodeError, match="malformed Avro body"):
        SignedBatch.decode(bytes(data), catalogue)
    reg = sign_registration(key, _registration(SigningKey.generate()))
    with pytest.raises(DecodeError, match=r"expected a aigc\.audit\.SignedBatch"):
        SignedBatch.decode(encode_registration(reg, catalogue), catalogue)
    future = dataclasses.replace(_batch(key), format_version=2).encode(catalogue)
    with pytest.raises(DecodeError, match="format_version 2"):
        SignedBatch.decode(future, catalogue)


def test_encode_rejects_misfit_records(catalogue: SchemaCatalogue, key: SigningKey) -> None:
    with pytest.raises(EventValidationError, match="SignedBatch"):
        dataclasses.replace(_batch(key), signature=b"short").encode(catalogue)
    with pytest.raises(EventValidationError):
        catalogue.encode(SIGNED_BATCH, {"format_version": 1})
    good = catalogue.decode(_batch(key).encode(catalogue), logical_types=False)[1]
    with pytest.raises(EventValidationError, match="more fields"):
        catalogue.encode(SIGNED_BATCH, {**good, "surprise": 1})


# --- key registrations ---


def _registration(producer: SigningKey, **changes: Any) -> KeyRegistration:
    reg = KeyRegistration(
        key_id=producer.key_id,
        producer_id="svc-chat",
        public_key=producer.public_key,
        valid_from_us=1_700_000_000_000_000,
        registered_at_us=1_699_999_999_000_000,
    )
    return dataclasses.replace(reg, **changes)


@pytest.mark.parametrize(
    "changes",
    [{}, {"valid_until_us": 1_800_000_000_000_000, "revoked_at_us": 1_750_000_000_000_000}],
)
def test_registration_round_trip(
    catalogue: SchemaCatalogue, key: SigningKey, changes: dict[str, Any]
) -> None:
    reg = sign_registration(key, _registration(SigningKey.generate(), **changes))
    data = encode_registration(reg, catalogue)
    decoded = decode_registration(data, catalogue)
    assert decoded == reg
    verify_registration(key.public_key, decoded)
    with pytest.raises(DecodeError, match=r"expected a aigc\.audit\.KeyRegistration"):
        decode_registration(_batch(key).encode(catalogue), catalogue)
    with pytest.raises(EventValidationError):
        encode_registration(_registration(SigningKey.generate()), catalogue)  # unsigned
