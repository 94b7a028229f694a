"""A correctly signed event whose int or long does not fit its store column is refused at step 6.

Avro's int and long are signed 32 and 64 bits; the store keeps counts in unsigned columns, a
latency in a UInt32, ``head.schema_version`` in a UInt16. Such an event (from a buggy producer,
or anyone holding a producer's key) crashed the Python path's Arrow insert with OverflowError,
stopping the materialiser, and was stored wrapped by the engine path (-5 as
18446744073709551611, 70000 as 4464). Both paths now quarantine it as ``malformed_event``,
naming the field, the value and the column, and still take the extreme values that fit.

The bounds are derived from the column types of ``consumers/store/tables.py``; this file keeps
its own table of what they must be (:data:`EXPECTED`), so a wrong derivation fails here.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro import schemaless_writer

from aigc_audit.consumers.ingest.engine_path import GenerationIngest, _range_check
from aigc_audit.consumers.ingest.engine_schema import EngineView, strict_unions
from aigc_audit.consumers.ingest.logical_values import (
    LogicalChecks,
    RangeField,
    column_bounds,
    compile_range_check,
    integer_leaves,
    store_columns,
)
from aigc_audit.consumers.store.embedded import EmbeddedStore
from aigc_audit.consumers.store.rows import BusPosition, DecodedEvent, batch_rows
from aigc_audit.consumers.store.tables import ALL_TABLES, FAMILY_TABLES
from aigc_audit.consumers.store_verification.canonical import actual_row, canonical_select
from aigc_audit.producers.batch import seal_batch
from aigc_audit.producers.codec import HEADER_SIZE, default_catalogue
from aigc_audit.producers.events import (
    AnnotationQualityCheck,
    AuditEvent,
    AuthorityDisclosure,
    ModerationAction,
    RetentionPurge,
    SafetyEvaluation,
    TrainingDataIntake,
    UserSanction,
)
from aigc_audit.producers.signing import SigningKey
from aigc_audit.producers.transports.base import BusMessage
from tests.harness import T0, Harness, generation

pytestmark = pytest.mark.chdb

PRODUCER = "chat-1"
LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)

GEN = "aigc.audit.Generation"
MOD = "aigc.audit.ModerationAction"
SAN = "aigc.audit.UserSanction"
DH = "aigc.audit.DataHandling"

U64 = "Nullable(UInt64)"
EXPECTED: dict[tuple[str, tuple[str, ...]], tuple[str, str, int, int]] = {
    (GEN, ("head", "schema_version")): ("events.schema_version", "UInt16", 0, 65_535),
    (GEN, ("input_tokens",)): ("generations.input_tokens", U64, 0, LONG_MAX),
    (GEN, ("output_tokens",)): ("generations.output_tokens", U64, 0, LONG_MAX),
    (GEN, ("output_bytes",)): ("generations.output_bytes", U64, 0, LONG_MAX),
    (GEN, ("latency_ms",)): ("generations.latency_ms", "UInt32", 0, INT_MAX),
    (MOD, ("head", "schema_version")): ("events.schema_version", "UInt16", 0, 65_535),
    (SAN, ("head", "schema_version")): ("events.schema_version", "UInt16", 0, 65_535),
    (DH, ("head", "schema_version")): ("events.schema_version", "UInt16", 0, 65_535),
    **{
        (DH, (detail, name)): (f"data_handling.{name}", U64, 0, LONG_MAX)
        for detail, name in (
            ("training_data_intake", "size_bytes"),
            ("training_data_intake", "record_count"),
            ("annotation_quality_check", "sample_size"),
            ("safety_evaluation", "generated_test_size"),
            ("safety_evaluation", "should_refuse_test_size"),
            ("safety_evaluation", "should_answer_test_size"),
            ("retention_purge", "records_purged"),
            ("authority_disclosure", "records_disclosed"),
        )
    },
}
"""Every integer of an event family whose store column holds less than its Avro type: the
column, its type, and the values it takes (the UInt64 ones capped by Avro's long)."""


def sample(schema: str, path: tuple[str, ...]) -> AuditEvent:
    """A sound event of ``schema`` in which the value at ``path`` is present."""
    if schema == GEN:
        return generation(1, output_bytes=1)
    if schema == MOD:
        return ModerationAction(
            case_id="case-1",
            target="generation",
            target_ref="req-1",
            detection_source="output_filter",
            risk_category="A.1.6",
            action="block_generation",
            detected_at=T0,
            occurred_at=T0,
        )
    if schema == SAN:
        return UserSanction(
            sanction_id="s-1",
            subject="subject-1",
            action="warning",
            reason_category="A.1.6",
            evidence=("case-1",),
            effective_from=T0,
            occurred_at=T0,
        )
    detail = path[0] if path[0] != "head" else "retention_purge"
    return {
        "training_data_intake": lambda: TrainingDataIntake(
            dataset_id="d1",
            source="forum dump",
            source_kind="user_generated",
            legal_basis="user agreement 4.2",
            contains_personal_information=False,
            size_bytes=10,
            record_count=2,
            occurred_at=T0,
        ),
        "annotation_quality_check": lambda: AnnotationQualityCheck(
            dataset_id="d1",
            rules_version="r4",
            sample_size=500,
            sampled_accuracy=0.97,
            occurred_at=T0,
        ),
        "safety_evaluation": lambda: SafetyEvaluation(
            model_name="m",
            model_version="1",
            generated_test_size=1000,
            qualified_rate=0.93,
            should_refuse_test_size=500,
            refusal_rate=0.96,
            should_answer_test_size=500,
            false_refusal_rate=0.03,
            occurred_at=T0,
        ),
        "retention_purge": lambda: RetentionPurge(
            scope="app_logs",
            cutoff=T0 - timedelta(days=400),
            records_purged=7,
            reason="retention ended",
            occurred_at=T0,
        ),
        "authority_disclosure": lambda: AuthorityDisclosure(
            authority="CAC",
            reference="I-1",
            scope="Q3 moderation",
            records_disclosed=12,
            legal_basis="Art. 19",
            occurred_at=T0,
        ),
    }[detail]()


def _set(record: dict[str, Any], path: tuple[str, ...], value: int) -> None:
    for name in path[:-1]:
        record = record[name]
    record[path[-1]] = value


def signed_event(event: AuditEvent, values: Mapping[tuple[str, ...], int]) -> bytes:
    """``event`` encoded with ``values`` written at their paths, as a producer that skipped its
    own model's checks would: valid Avro, signed like any other event."""
    catalogue = default_catalogue()
    record = event.to_record(service_id="chat", producer_id=PRODUCER)
    raw = catalogue.encode(event.SCHEMA, record)
    _, plain = catalogue.decode(raw, logical_types=False)
    for path, value in values.items():
        _set(plain, path, value)
    body = io.BytesIO()
    schemaless_writer(body, catalogue.schema(event.SCHEMA), plain)
    return raw[:HEADER_SIZE] + body.getvalue()


# -- the bounds, derived from the DDL ----------------------------------------------------------


def test_the_bounds_are_the_store_column_types() -> None:
    checks = LogicalChecks(default_catalogue())
    found = {
        (schema, f.path): (f.column, f.column_type, f.low, f.high)
        for schema in FAMILY_TABLES
        for f in checks.ranges(schema)
    }
    assert found == EXPECTED


@pytest.mark.parametrize(
    ("column_type", "bounds"),
    [
        ("UInt8", (0, 255)),
        ("UInt16", (0, 65_535)),
        ("UInt32", (0, 2**32 - 1)),
        ("UInt64", (0, 2**64 - 1)),
        ("Nullable(UInt64)", (0, 2**64 - 1)),
        ("LowCardinality(Nullable(UInt16))", (0, 65_535)),
        ("Int8", (-128, 127)),
        ("Int16", (-32_768, 32_767)),
        ("Int32", (INT_MIN, INT_MAX)),
        ("Int64", (LONG_MIN, LONG_MAX)),
        ("Nullable(Int32)", (INT_MIN, INT_MAX)),
        ("String", None),
        ("DateTime64(6, 'UTC')", None),
        ("Nullable(Float64)", None),
        ("Bool", None),
        ("Array(UInt32)", None),
        ("FixedString(32)", None),
    ],
)
def test_column_bounds(column_type: str, bounds: tuple[int, int] | None) -> None:
    assert column_bounds(column_type) == bounds


def test_every_integer_column_type_of_the_store_has_bounds() -> None:
    """No integer column escapes the parser (a type it did not know would be no check)."""
    for table in ALL_TABLES:
        for name, ctype in table.columns:
            if "Int" in ctype and "Interval" not in ctype and not ctype.startswith("Array"):
                assert column_bounds(ctype) is not None, (table.name, name, ctype)


def test_every_event_integer_has_a_store_column() -> None:
    """Each int and long of each family (timestamps aside) is placed in a column, so a field
    added later cannot go unchecked for want of a name."""
    catalogue = default_catalogue()
    for schema in FAMILY_TABLES:
        for path, _avro in integer_leaves(catalogue.schema(schema)):
            assert store_columns(schema, path), (schema, path)


@pytest.mark.parametrize(("schema", "path"), sorted(EXPECTED))
def test_the_column_named_is_where_rows_put_the_value(schema: str, path: tuple[str, ...]) -> None:
    """store_columns names columns by a rule; consumers.store.rows builds the rows. They agree."""
    marker = 12_345
    raw = signed_event(sample(schema, path), {path: marker})
    catalogue = default_catalogue()
    decoded_schema, record = catalogue.decode(raw, logical_types=False)
    key = SigningKey.generate()
    batch = seal_batch(
        [raw], producer_id=PRODUCER, key=key, sequence=0, prev_digest=bytes(32), created_at_us=0
    )
    rows = batch_rows(
        batch, [DecodedEvent(decoded_schema, raw[2:10], record, raw)], BusPosition("t", 0, 0, 0)
    )
    table, column = EXPECTED[(schema, path)][0].split(".")
    ((row,),) = [r for name, (_t, r) in rows.by_table.items() if name == table]
    assert row[column] == marker


# -- the shared check, for column kinds the store does not use today (Int32, Int16) ------------

SIGNED = [
    RangeField(("a",), "t.a", "Int16", -32_768, 32_767),
    RangeField(("r", "b"), "t.b", "Nullable(Int32)", INT_MIN, INT_MAX),
]
"""Signed narrower columns: an Int16 from an Avro int, an Int32 from a long inside a record."""


def test_python_check_of_signed_bounds() -> None:
    check = compile_range_check(SIGNED)
    for a, b in ((-32_768, INT_MIN), (32_767, INT_MAX), (0, 0), (1, None)):
        assert check({"a": a, "r": {"b": b}}) == -1, (a, b)
    assert check({"a": 5, "r": None}) == -1  # a null record on the way: nothing to check
    for a, b, beyond in (
        (-32_769, 0, 0),
        (32_768, 0, 0),
        (0, INT_MIN - 1, 1),
        (0, INT_MAX + 1, 1),
        (32_768, INT_MAX + 1, 0),  # the first field beyond is the one named
    ):
        assert check({"a": a, "r": {"b": b}}) == beyond, (a, b)


def test_engine_check_of_signed_bounds(tmp_path: Path) -> None:
    """The engine expression of the same fields, over a real Avro file, refuses the same."""
    schema = {
        "type": "record",
        "name": "T",
        "fields": [
            {"name": "a", "type": "int"},
            {"name": "r", "type": ["null", {"type": "record", "name": "R", "fields": [
                {"name": "b", "type": "long"}]}]},
        ],
    }  # fmt: skip
    file_schema = {
        "type": "record",
        "name": "W",
        "fields": [{"name": "n", "type": "long"}, {"name": "event", "type": strict_unions(schema)}],
    }
    rows = [
        (-32_768, INT_MIN),
        (32_767, INT_MAX),
        (0, None),
        (-32_769, 0),
        (32_768, 0),
        (0, INT_MIN - 1),
        (0, INT_MAX + 1),
    ]
    path = tmp_path / "t.avro"
    with path.open("wb") as out:
        fastavro.writer(
            out,
            fastavro.parse_schema(file_schema),
            [
                {"n": n, "event": {"a": a, "r": None if b is None else {"b": b}}}
                for n, (a, b) in enumerate(rows)
            ],
        )
    view = EngineView(schema)
    bad = " OR ".join(_range_check(view, f) for f in SIGNED)
    store = EmbeddedStore(tmp_path / "store")
    try:
        got = store.query(
            f"SELECT n, countIf({bad}) FROM file('{path}', 'Avro') GROUP BY n ORDER BY n"
        ).rows
    finally:
        store.close()
    assert [int(nbad) for _n, nbad in got] == [0, 0, 0, 1, 1, 1, 1]


# -- the store's columns, through the materialiser, on both paths ------------------------------

BEYOND: dict[str, list[int]] = {
    "UInt16": [-1, 65_536, 70_000, INT_MIN, INT_MAX],
    "UInt32": [-1, INT_MIN],
    U64: [-5, -1, LONG_MIN],
}
"""Values an Avro int or long can carry that a column of this type cannot hold."""


def _family_rows(h: Harness, table: str) -> list[str]:
    (found,) = [t for t in ALL_TABLES if t.name == table]
    rows = h.query(f"SELECT {canonical_select(found)} FROM audit.{table}").rows
    return sorted(repr(actual_row(r)) for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize(("schema", "path"), sorted(EXPECTED))
def test_beyond_the_column_is_quarantined_and_the_extremes_are_stored(
    tmp_path: Path, schema: str, path: tuple[str, ...]
) -> None:
    """Each value beyond the column, in its own signed batch, is quarantined as malformed_event
    on the engine path and the Python path alike, nothing of it inserted; then one batch holding
    the column's least and greatest value is accepted, each value stored exactly. The two paths
    leave identical quarantine rows and tables."""
    column, column_type, low, high = EXPECTED[(schema, path)]
    table, name = column.split(".")
    beyond = BEYOND[column_type]
    # The same event bytes into both deployments (fresh event ids otherwise).
    bad = [signed_event(sample(schema, path), {path: value}) for value in beyond]
    extremes = [signed_event(sample(schema, path), {path: value}) for value in (low, high)]
    outcomes = {}
    for engine in (True, False):
        h = Harness(tmp_path / f"engine-{engine}", engine_decoding=engine)
        try:
            for raw in bad:
                h.publish_batch(h.seal(PRODUCER, [raw]))
                stats = h.materialise()  # raised OverflowError on the Python path
                assert stats.engine_decoded == 0
            quarantined = h.query(
                "SELECT offset, reason, detail FROM audit.quarantine ORDER BY offset"
            ).rows
            assert [(int(o), r) for o, r, _ in quarantined] == [
                (i, "malformed_event") for i in range(len(beyond))
            ]
            for (_o, _r, detail), value in zip(quarantined, beyond, strict=True):
                assert detail == (
                    f"event 0: {'.'.join(path)} = {value} does not fit the store column "
                    f"{column} {column_type}"
                )
            assert h.count("batches") == h.count("events") == h.count(table) == 0

            h.publish_batch(h.seal(PRODUCER, extremes))
            stats = h.materialise()
            assert stats.engine_decoded == (2 if engine and schema == GEN else 0)
            stored = h.query(f"SELECT {name} FROM audit.{table} ORDER BY {name}").rows
            assert [int(v) for (v,) in stored] == [low, high]
            assert h.count("batches") == 1
            outcomes[engine] = (
                quarantined,
                _family_rows(h, FAMILY_TABLES[schema].name),
                _family_rows(h, "events"),
            )
        finally:
            h.close()
    assert outcomes[True] == outcomes[False]


def test_the_engine_check_itself_refuses_them(tmp_path: Path) -> None:
    """Not only does the engine path fall back to Python: the engine's own check (the poll's
    SQL) refuses each value beyond a generation column and passes the extremes."""
    catalogue = default_catalogue()
    store = EmbeddedStore(tmp_path / "store")
    store.migrate()
    try:
        ingest = GenerationIngest(store, catalogue, tmp_path / "ingest")
        key = SigningKey.generate()
        cases = [
            (values, ok)
            for (schema, path), (_c, ctype, low, high) in sorted(EXPECTED.items())
            if schema == GEN
            for values, ok in [
                *(({path: v}, False) for v in BEYOND[ctype]),
                ({path: low}, True),
                ({path: high}, True),
            ]
        ]
        for offset, (values, ok) in enumerate(cases):
            raw = signed_event(sample(GEN, ()), values)
            batch = seal_batch(
                [raw],
                producer_id=PRODUCER,
                key=key,
                sequence=offset,
                prev_digest=bytes(32),
                created_at_us=0,
            )
            message = BusMessage(
                topic="t",
                partition=0,
                offset=offset,
                key=None,
                value=batch.encode(catalogue),
                timestamp_us=0,
            )
            poll = ingest.check([message], catalogue)
            try:
                assert poll.is_checked(0) == ok, values
            finally:
                poll.discard()
        assert len(cases) > 15
    finally:
        store.close()
