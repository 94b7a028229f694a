"""Schemas evolve under Avro's rules: the current schemas must read data written with every
released snapshot in ``schemas/released/vN/``.

`test_current_schemas_read_every_release` is the guard that refuses a breaking change; the other
tests show that the checker catches breaking changes, accepts compatible ones, and agrees with
fastavro decoding real data.
"""

from __future__ import annotations

import copy
import io
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import expand_schema, load_schema

from aigc_audit.schemas.compatibility import (
    check_backward_compatible,
    compare_releases,
    load_schema_dir,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
RELEASES = sorted(p for p in (SCHEMAS / "released").glob("v*") if p.is_dir())
V1 = SCHEMAS / "released" / "v1"
RELEASED_RECORD_FILES = [
    file
    for release in RELEASES
    for file in sorted(release.glob("*.avsc"))
    if json.loads(file.read_text(encoding="utf-8")).get("type") == "record"
]

SAMPLE_PRIMITIVES: dict[str, Any] = {
    "null": None,
    "boolean": True,
    "int": 7,
    "long": 1_700_000_000_000_000,
    "float": 0.5,
    "double": 0.25,
    "bytes": b"\x01\x02",
    "string": "sample",
}


def sample(schema: Any, *, nulls: bool = False) -> Any:
    """A valid datum for an expanded schema.

    The first enum symbol, a zero-filled fixed, one-element arrays and maps; a union takes its
    first non-null branch, or null when `nulls` is set and the union allows it.
    """
    if isinstance(schema, list):
        branches = [branch for branch in schema if branch != "null"]
        if not branches or (nulls and "null" in schema):
            return None
        return sample(branches[0], nulls=nulls)
    if isinstance(schema, str):
        return SAMPLE_PRIMITIVES[schema]
    logical, kind = schema.get("logicalType"), schema["type"]
    if logical == "uuid":
        return str(uuid.UUID(int=1))
    if logical == "decimal":
        return Decimal(0)
    if kind in ("record", "error"):
        return {f["name"]: sample(f["type"], nulls=nulls) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "fixed":
        return bytes(schema["size"])
    if kind == "array":
        return [sample(schema["items"], nulls=nulls)]
    if kind == "map":
        return {"key": sample(schema["values"], nulls=nulls)}
    return sample(kind, nulls=nulls)


def parseable(schema: Any, seen: set[str] | None = None) -> Any:
    """The expanded schema with each named type defined once (fastavro refuses redefinitions)."""
    seen = set() if seen is None else seen
    if isinstance(schema, list):
        return [parseable(branch, seen) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if not k.startswith("__")}
    if out.get("type") in ("record", "error", "enum", "fixed"):
        if out["name"] in seen:
            return out["name"]
        seen.add(out["name"])
    if "fields" in out:
        out["fields"] = [{**f, "type": parseable(f["type"], seen)} for f in out["fields"]]
    for key in ("items", "values"):
        if key in out:
            out[key] = parseable(out[key], seen)
    return out


def round_trip(writer: Any, reader: Any, *, nulls: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Writes a sample datum with `writer` (parsed), reads it back with `writer` and `reader`."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer, sample(expand_schema(writer), nulls=nulls))
    size = buffer.tell()
    buffer.seek(0)
    as_written = fastavro.schemaless_reader(buffer, writer, writer)
    buffer.seek(0)
    as_read = fastavro.schemaless_reader(buffer, writer, reader)
    assert buffer.tell() == size, "the reader did not consume the whole datum"
    return as_written, as_read


def field(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in record["fields"] if f["name"] == name)


def nested(record: dict[str, Any], *names: str) -> dict[str, Any]:
    """The field reached through record fields `names` (union fields: their record branch)."""
    for name in names[:-1]:
        record = field(record, name)["type"]
        if isinstance(record, list):
            record = next(b for b in record if isinstance(b, dict) and b["type"] == "record")
    return field(record, names[-1])


@pytest.fixture(scope="module")
def released() -> dict[str, dict[str, Any]]:
    return load_schema_dir(V1)


# (a) The guard.


def test_a_release_snapshot_exists() -> None:
    assert V1.is_dir()
    assert RELEASED_RECORD_FILES


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_current_schemas_read_every_release(release: Path) -> None:
    report = compare_releases(release, SCHEMAS)
    assert report, f"{release} holds no record schema"
    problems = [problem for problems in report.values() for problem in problems]
    assert not problems, (
        f"schemas/ is not backward compatible with released {release.name}; evolve it under "
        "Avro's rules (new fields need defaults, never remove enum symbols, ...):\n"
        + "\n".join(problems)
    )


def test_load_schema_dir_expands_shared_types(released: dict[str, dict[str, Any]]) -> None:
    assert "aigc.audit.Generation" in released
    assert "aigc.audit.Sha256" not in released  # a fixed, not a record
    generation = released["aigc.audit.Generation"]
    assert field(generation, "head")["type"]["name"] == "aigc.audit.EventHead"
    assert field(generation, "input_sha256")["type"]["size"] == 32


def test_removed_record_is_reported(tmp_path: Path) -> None:
    for file in SCHEMAS.glob("*.avsc"):
        if file.name != "aigc.audit.KeyRegistration.avsc":
            (tmp_path / file.name).write_bytes(file.read_bytes())
    report = compare_releases(V1, tmp_path)
    assert report["aigc.audit.KeyRegistration"] == [
        "aigc.audit.KeyRegistration: record removed; released data can no longer be read"
    ]


# (b) The checker against mutations of the released schemas.

Mutation = Callable[[dict[str, Any]], Any]

BREAKING: list[tuple[str, str, Mutation, str]] = [
    (
        "field added without default",
        "aigc.audit.Generation",
        lambda s: s["fields"].append({"name": "region", "type": "string"}),
        "aigc.audit.Generation.region: new field has no default",
    ),
    (
        "string to int",
        "aigc.audit.Generation",
        lambda s: field(s, "request_id").update(type="int"),
        "aigc.audit.Generation.request_id: string written by the released schema cannot be "
        "read as int",
    ),
    (
        "enum symbol removed",
        "aigc.audit.Generation",
        lambda s: field(s, "modality")["type"]["symbols"].remove("video"),
        "aigc.audit.Generation.modality: symbol 'video' written by the released schema is missing",
    ),
    (
        "enum symbol removed in a shared type",
        "aigc.audit.ModerationAction",
        lambda s: nested(s, "head", "event_type")["type"]["symbols"].remove("complaint"),
        "aigc.audit.ModerationAction.head.event_type: symbol 'complaint'",
    ),
    (
        "fixed size changed",
        "aigc.audit.KeyRegistration",
        lambda s: field(s, "public_key")["type"].update(size=33),
        "aigc.audit.KeyRegistration.public_key: fixed size changed from 32 to 33 bytes",
    ),
    (
        "fixed size changed in a union",
        "aigc.audit.Generation",
        lambda s: field(s, "output_sha256")["type"][1].update(size=64),
        "aigc.audit.Generation.output_sha256: fixed size changed from 32 to 64 bytes",
    ),
    (
        "nullable field narrowed",
        "aigc.audit.Generation",
        lambda s: field(s, "filing_number").update(type="string", default=""),
        "aigc.audit.Generation.filing_number: null written by the released schema cannot be "
        "read as string",
    ),
    (
        "timestamp-micros to timestamp-millis",
        "aigc.audit.KeyRegistration",
        lambda s: field(s, "valid_from")["type"].update(logicalType="timestamp-millis"),
        "aigc.audit.KeyRegistration.valid_from: logical type changed from long (timestamp-micros) "
        "to long (timestamp-millis)",
    ),
    (
        "timestamp-micros to timestamp-millis in a nullable field",
        "aigc.audit.AuthorityReport",
        lambda s: field(s, "reported_at")["type"][1].update(logicalType="timestamp-millis"),
        "aigc.audit.AuthorityReport.reported_at: logical type changed",
    ),
    (
        "record renamed",
        "aigc.audit.Generation",
        lambda s: s.update(name="aigc.audit.GenerationV2"),
        "aigc.audit.Generation: record renamed from aigc.audit.Generation to "
        "aigc.audit.GenerationV2 without an alias",
    ),
    (
        "nested record renamed",
        "aigc.audit.ModerationAction",
        lambda s: field(s, "rectification")["type"][1].update(name="aigc.audit.Fix"),
        "aigc.audit.ModerationAction.rectification: record aigc.audit.Rectification written by "
        "the released schema matches no branch",
    ),
    (
        "array items changed",
        "aigc.audit.UserSanction",
        lambda s: field(s, "evidence")["type"].update(items="int"),
        "aigc.audit.UserSanction.evidence[]: string written by the released schema cannot be "
        "read as int",
    ),
    (
        "long narrowed to int",
        "aigc.audit.SignedBatch",
        lambda s: field(s, "sequence").update(type="int"),
        "aigc.audit.SignedBatch.sequence: long written by the released schema cannot be read "
        "as int",
    ),
]

COMPATIBLE: list[tuple[str, str, Mutation]] = [
    (
        "field added with default",
        "aigc.audit.Generation",
        lambda s: s["fields"].append(
            {"name": "region", "type": ["null", "string"], "default": None}
        ),
    ),
    (
        "enum symbol added",
        "aigc.audit.Generation",
        lambda s: field(s, "modality")["type"]["symbols"].append("three_d"),
    ),
    ("int to long", "aigc.audit.Generation", lambda s: field(s, "latency_ms").update(type="long")),
    (
        "int to long in a shared type",
        "aigc.audit.UserSanction",
        lambda s: nested(s, "head", "schema_version").update(type="long"),
    ),
    (
        "widened to a union",
        "aigc.audit.Generation",
        lambda s: field(s, "request_id").update(type=["null", "string"]),
    ),
    (
        "union gains a branch",
        "aigc.audit.Generation",
        lambda s: field(s, "input_tokens")["type"].append("string"),
    ),
    (
        "string to bytes",
        "aigc.audit.Generation",
        lambda s: field(s, "subject").update(type="bytes"),
    ),
    (
        "field removed",
        "aigc.audit.Generation",
        lambda s: s["fields"].remove(field(s, "minor_mode")),
    ),
    (
        "record renamed with an alias",
        "aigc.audit.Generation",
        lambda s: s.update(name="aigc.audit.GenerationV2", aliases=["aigc.audit.Generation"]),
    ),
    (
        "field renamed with an alias",
        "aigc.audit.Generation",
        lambda s: field(s, "subject").update(name="subject_id", aliases=["subject"]),
    ),
    (
        "enum symbol removed but the enum has a default",
        "aigc.audit.Generation",
        lambda s: field(s, "modality")["type"].update(
            symbols=["text", "image", "audio", "code", "other"], default="other"
        ),
    ),
]


def mutate(released: dict[str, dict[str, Any]], name: str, change: Mutation) -> dict[str, Any]:
    schema = copy.deepcopy(released[name])
    change(schema)
    return schema


@pytest.mark.parametrize(
    ("record", "change", "expected"), [c[1:] for c in BREAKING], ids=[c[0] for c in BREAKING]
)
def test_checker_refuses_breaking_change(
    released: dict[str, dict[str, Any]], record: str, change: Mutation, expected: str
) -> None:
    problems = check_backward_compatible(mutate(released, record, change), released[record])
    assert any(problem.startswith(expected) for problem in problems), problems


@pytest.mark.parametrize(
    ("record", "change"), [c[1:] for c in COMPATIBLE], ids=[c[0] for c in COMPATIBLE]
)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
def test_checker_accepts_compatible_change(
    released: dict[str, dict[str, Any]], record: str, change: Mutation, nulls: bool
) -> None:
    new = mutate(released, record, change)
    assert check_backward_compatible(new, released[record]) == []
    # fastavro agrees: data written with the released schema reads with the changed one.
    writer = fastavro.parse_schema(parseable(released[record]))
    fastavro_reader = fastavro.parse_schema(parseable(new))
    round_trip(writer, fastavro_reader, nulls=nulls)


def test_unchanged_schema_is_compatible(released: dict[str, dict[str, Any]]) -> None:
    for schema in released.values():
        assert check_backward_compatible(schema, schema) == []


def test_checker_handles_raw_schemas_with_namespaces_and_recursion() -> None:
    def node(value_type: str) -> dict[str, Any]:
        return {
            "type": "record",
            "name": "Node",
            "namespace": "t",
            "fields": [
                {"name": "value", "type": value_type},
                {"name": "next", "type": ["null", "Node"], "default": None},
            ],
        }

    assert check_backward_compatible(node("long"), node("int")) == []
    assert check_backward_compatible(node("int"), node("long")) == [
        "t.Node.value: long written by the released schema cannot be read as int"
    ]


# (c) Real data: every released record, written with the released schema, reads with the current.


@pytest.mark.parametrize(
    "released_file", RELEASED_RECORD_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}"
)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
def test_released_data_reads_with_current_schema(released_file: Path, nulls: bool) -> None:
    current_file = SCHEMAS / released_file.name
    assert current_file.exists(), f"{released_file.stem} was removed from schemas/"
    writer, reader = load_schema(str(released_file)), load_schema(str(current_file))
    as_written, as_read = round_trip(writer, reader, nulls=nulls)

    old_fields = {f["name"]: f for f in expand_schema(writer)["fields"]}
    for new_field in expand_schema(reader)["fields"]:
        name = new_field["name"]
        assert name in as_read
        if name not in old_fields:
            assert as_read[name] == new_field["default"]
        elif new_field["type"] == old_fields[name]["type"]:
            assert as_read[name] == as_written[name]
