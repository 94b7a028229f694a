"""The compiled event encoders: fastavro's bytes exactly, for every kind and every edge, or
fastavro itself; and event models that only validate what Avro can hold."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastavro import parse_schema, schemaless_writer
from pydantic import BaseModel, ValidationError

from aigc_audit.consumers.demo.simulation import SimulationPlan, collect
from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.errors import EventValidationError
from aigc_audit.producers.events import (
    EVENT_KINDS,
    AgreementAcceptance,
    AnnotationQualityCheck,
    AuditEvent,
    AuthorityDisclosure,
    AuthorityReport,
    Complaint,
    Generation,
    IdentityVerification,
    ImplicitLabel,
    LegalHold,
    ModerationAction,
    PersonalInformationRequest,
    Rectification,
    RetentionPurge,
    SafetyEvaluation,
    TrainingDataIntake,
    UserSanction,
)
from aigc_audit.producers.events.base import AVRO_LONG_MAX, MODEL_CONFIG, Attr, Nested
from aigc_audit.producers.record_encoder import (
    Misfit,
    RecordEncoder,
    compile_event_encoder,
    uuid_text,
    write_int,
    write_long,
)

# Events built with model_copy(update=...) skip validation on purpose; pydantic warns when
# dumping what got in.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

CATALOGUE = default_catalogue()
SERVICE, PRODUCER = "chat", "chat-1"
ENCODER = RecordEncoder(CATALOGUE, service_id=SERVICE, producer_id=PRODUCER)

T = datetime(2026, 9, 1, 12, 0, 0, 123456, tzinfo=UTC)
FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
JUST_BEFORE_EPOCH = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
D = hashlib.sha256(b"x").digest()
CHINESE = "生成式人工智能服务备案-北京-20240315"
EMOJI = "🙂 four bytes in UTF-8"
LONG_TEXT = "备" * 5000  # 15,000 bytes: a length past the one-look-up table
BIG = AVRO_LONG_MAX


def fastavro_bytes(
    event: AuditEvent, service_id: str = SERVICE, producer_id: str = PRODUCER
) -> bytes:
    record = event.to_record(service_id=service_id, producer_id=producer_id)
    return CATALOGUE.encode(event.SCHEMA, record)


# --- the events: every kind, optional fields set and unset, extreme values ------------------


def generation(**changes: Any) -> Generation:
    fields: dict[str, Any] = {
        "request_id": "r1",
        "model_name": "m",
        "model_version": "1",
        "modality": "text",
        "channel": "app",
        "subject": "s1",
        "input_sha256": D,
        "explicit_label": True,
        "safety_verdict": "passed",
        "latency_ms": 0,
        "occurred_at": T,
    }
    return Generation(**{**fields, **changes})


def moderation(**changes: Any) -> ModerationAction:
    fields: dict[str, Any] = {
        "case_id": "c1",
        "target": "user_input",
        "target_ref": "r1",
        "detection_source": "input_filter",
        "action": "no_action",
        "detected_at": T,
        "occurred_at": T,
    }
    return ModerationAction(**{**fields, **changes})


def complaint(**changes: Any) -> Complaint:
    fields: dict[str, Any] = {
        "case_id": "k1",
        "complaint_id": "k1",
        "channel": "hotline",
        "target_ref": "r1",
        "received_at": T,
        "due_by": T + timedelta(days=15),
        "occurred_at": T,
    }
    return Complaint(**{**fields, **changes})


def sanction(**changes: Any) -> UserSanction:
    fields: dict[str, Any] = {
        "sanction_id": "x1",
        "subject": "s1",
        "action": "reinstatement",
        "reason_category": "A.1.6",
        "effective_from": T,
        "occurred_at": T,
    }
    return UserSanction(**{**fields, **changes})


REPORTED = AuthorityReport(
    reported=True, authority=CHINESE, reference=LONG_TEXT, reported_at=FAR_PAST
)

CASES: list[tuple[str, AuditEvent]] = [
    ("generation-minimal", generation()),
    (
        "generation-maximal",
        generation(
            filing_number=CHINESE,
            modality="video",
            channel="api",
            subject=EMOJI,
            output_sha256=D[::-1],
            input_tokens=BIG,
            output_tokens=0,
            output_bytes=BIG,
            explicit_label=False,
            implicit_label=ImplicitLabel(
                label="3", content_producer="p-001", produce_id="c-1", reserved_code1=LONG_TEXT
            ),
            unlabelled_on_request=True,
            safety_verdict="blocked",
            minor_mode=True,
            latency_ms=2**31 - 1,
            occurred_at=FAR_FUTURE,
        ),
    ),
    (
        "generation-edges",
        generation(
            filing_number="",
            request_id="r" * 256,
            input_tokens=63,
            output_tokens=64,
            output_bytes=8191,
            implicit_label=ImplicitLabel(content_producer="生成", produce_id="c"),
            occurred_at=FAR_PAST,
            event_id=uuid.UUID(int=0),
        ),
    ),
    (
        "generation-before-epoch",
        generation(
            occurred_at=JUST_BEFORE_EPOCH,
            event_id=uuid.UUID(int=2**128 - 1),
            input_tokens=8192,
            output_tokens=2**28,
            output_bytes=2**56,
        ),
    ),
    ("moderation-minimal", moderation()),
    (
        "moderation-maximal",
        moderation(
            target="generation",
            subject=EMOJI,
            model_name=LONG_TEXT,
            model_version="",
            detection_source="authority_notice",
            risk_category="A.5.2",
            action="block_generation",
            acted_at=FAR_FUTURE,
            reviewer=CHINESE,
            rectification=Rectification(
                ticket_id="t1", opened_at=FAR_PAST, due_at=FAR_FUTURE, closed_at=T
            ),
            authority_report=REPORTED,
            sealed_evidence=b"\x00\xff" * 5000,
        ),
    ),
    ("moderation-empty-evidence", moderation(sealed_evidence=b"", rectification=None)),
    ("complaint-minimal", complaint()),
    (
        "complaint-maximal",
        complaint(
            target="generation",
            subject=CHINESE,
            model_name="m",
            model_version="1",
            risk_category="A.4.6",
            action="delete",
            handled_at=FAR_FUTURE,
            feedback_at=FAR_FUTURE,
            reviewer=LONG_TEXT,
            authority_report=REPORTED,
            received_at=FAR_PAST,
            due_by=FAR_FUTURE,
        ),
    ),
    ("sanction-reinstatement", sanction()),
    (
        "sanction-maximal",
        sanction(
            action="termination",
            subject=CHINESE,
            restricted_functions=["图像生成", EMOJI, ""],
            evidence=[str(uuid.UUID(int=n)) for n in range(100)],
            effective_from=FAR_PAST,
            effective_until=FAR_FUTURE,
            records_preserved=False,
            authority_report=REPORTED,
        ),
    ),
    (
        "pir-received",
        PersonalInformationRequest(
            subject="s1",
            request_id="p1",
            request_kind="access",
            received_at=T,
            due_at=T + timedelta(days=21),
            status="received",
            occurred_at=T,
        ),
    ),
    (
        "pir-completed",
        PersonalInformationRequest(
            subject=LONG_TEXT,
            request_id="p1",
            request_kind="delete",
            received_at=FAR_PAST,
            due_at=FAR_FUTURE,
            status="refused",
            completed_at=JUST_BEFORE_EPOCH,
            outcome=CHINESE,
            occurred_at=T,
        ),
    ),
    (
        "intake-minimal",
        TrainingDataIntake(
            dataset_id="d1",
            source="s",
            source_kind="public_web",
            legal_basis="l",
            contains_personal_information=False,
            size_bytes=0,
            record_count=0,
            occurred_at=T,
        ),
    ),
    (
        "intake-maximal",
        TrainingDataIntake(
            subject="",
            dataset_id=CHINESE,
            source=EMOJI,
            source_kind="proprietary",
            legal_basis="l",
            contains_personal_information=True,
            consent_basis=LONG_TEXT,
            size_bytes=BIG,
            record_count=BIG,
            model_name="m",
            model_version="1",
            occurred_at=FAR_FUTURE,
        ),
    ),
    (
        "annotation-edges",
        AnnotationQualityCheck(
            dataset_id="d1", rules_version="r4", sample_size=1, sampled_accuracy=0.0, occurred_at=T
        ),
    ),
    (
        "annotation-maximal",
        AnnotationQualityCheck(
            dataset_id="d1",
            rules_version="r4",
            sample_size=BIG,
            sampled_accuracy=5e-324,
            model_name=CHINESE,
            model_version="1",
            occurred_at=T,
        ),
    ),
    (
        "safety-evaluation",
        SafetyEvaluation(
            model_name="m",
            model_version="1",
            generated_test_size=BIG,
            qualified_rate=1.0,
            should_refuse_test_size=0,
            refusal_rate=0.1,
            should_answer_test_size=1,
            false_refusal_rate=1 / 3,
            occurred_at=T,
        ),
    ),
    (
        "identity-verification",
        IdentityVerification(subject=EMOJI, method="other", verified=False, occurred_at=T),
    ),
    (
        "retention-purge",
        RetentionPurge(
            scope=CHINESE, cutoff=FAR_PAST, records_purged=BIG, reason="r", occurred_at=T
        ),
    ),
    (
        "authority-disclosure",
        AuthorityDisclosure(
            authority="北京市网信办",
            reference="I-1",
            scope="s",
            records_disclosed=0,
            legal_basis="Art. 19",
            occurred_at=T,
        ),
    ),
    (
        "legal-hold-case",
        LegalHold(
            hold_id="h1",
            hold_scope="case",
            hold_target="c1",
            hold_action="release",
            hold_reason="r",
            occurred_at=T,
        ),
    ),
    (
        "legal-hold-subject",
        LegalHold(
            subject="s1",
            hold_id="h1",
            hold_scope="subject",
            hold_target="s1",
            hold_action="place",
            hold_reason=CHINESE,
            requested_by=LONG_TEXT,
            occurred_at=T,
        ),
    ),
    (
        "agreement-acceptance",
        AgreementAcceptance(
            subject="s1",
            agreement_id="user-terms",
            agreement_version="4.3",
            accepted_at=JUST_BEFORE_EPOCH,
            channel="web",
            occurred_at=T,
        ),
    ),
]


def test_the_cases_cover_every_kind() -> None:
    assert {type(event) for _, event in CASES} == set(EVENT_KINDS.values())


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)  # StrEnum members compare as their symbols
    return value


@pytest.mark.parametrize("event", [e for _, e in CASES], ids=[name for name, _ in CASES])
def test_compiled_code_writes_fastavros_bytes_and_they_decode_back(event: AuditEvent) -> None:
    compiled = ENCODER.prepare(type(event))
    assert compiled is not None, ENCODER.unsupported(type(event))
    expected = fastavro_bytes(event)
    assert compiled(event) == expected
    assert ENCODER.encode(event) == expected
    name, decoded = CATALOGUE.decode(expected)
    assert name == event.SCHEMA
    assert _plain(decoded) == _plain(event.to_record(service_id=SERVICE, producer_id=PRODUCER))


def test_simulated_traffic_of_every_service_encodes_identically() -> None:
    events, _ = collect(SimulationPlan.small(seed=7))
    encoders: dict[str, RecordEncoder] = {}
    kinds = set()
    for service_id, event in events:
        encoder = encoders.setdefault(
            service_id,
            RecordEncoder(CATALOGUE, service_id=service_id, producer_id=f"{service_id}-1"),
        )
        compiled = encoder.prepare(type(event))
        assert compiled is not None
        assert compiled(event) == fastavro_bytes(event, service_id, f"{service_id}-1")
        kinds.add(type(event))
    assert len(kinds) >= 10 and len(encoders) > 1


def test_non_ascii_service_and_producer_ids_are_written_as_fastavro_does() -> None:
    encoder = RecordEncoder(CATALOGUE, service_id="聊天", producer_id="聊天-🙂-1")
    for _, event in CASES:
        assert encoder.encode(event) == fastavro_bytes(event, "聊天", "聊天-🙂-1")
    with pytest.raises(EventValidationError, match="producer_id"):
        RecordEncoder(CATALOGUE, service_id="chat", producer_id="chat-\ud800")


def test_timestamps_in_other_zones_are_exact() -> None:
    # Validation normalises to UTC; model_copy does not validate, so the encoder meets zones.
    shanghai, samoa = timezone(timedelta(hours=8)), timezone(timedelta(hours=-11, minutes=-30))
    for at in (
        datetime(2026, 9, 1, 20, 0, 0, 1, tzinfo=shanghai),
        datetime(1, 1, 2, tzinfo=shanghai),
        datetime(9999, 12, 31, 10, tzinfo=samoa),
        datetime(1969, 12, 31, 12, 29, 59, 999999, tzinfo=samoa),
    ):
        event = generation().model_copy(update={"occurred_at": at})
        compiled = ENCODER.prepare(Generation)
        assert compiled is not None
        assert compiled(event) == fastavro_bytes(event)


@pytest.mark.parametrize(
    "value",
    [
        *(0, 1, -1, 63, -64, 64, -65, 8191, 8192, -8193, 2**27, 2**41, -(2**41), 2**55, 2**62),
        *(2**63 - 1, -(2**63), 1_780_000_000_123_456, -62_135_596_800_000_000),
    ],
)
def test_varints_are_avros(value: int) -> None:
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema("long"), value)
    assert write_long(value) == buf.getvalue()


def test_out_of_range_ints_are_refused() -> None:
    for value in (2**63, -(2**63) - 1, 2**100):
        with pytest.raises(OverflowError):
            write_long(value)
    assert write_int(2**31 - 1) == write_long(2**31 - 1)
    for value in (2**31, -(2**31) - 1):
        with pytest.raises(Misfit):
            write_int(value)


def test_uuid_text_is_str_of_the_uuid() -> None:
    for value in (uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4(), uuid.uuid1()):
        assert uuid_text(value) == str(value).encode()


# --- what the compiled code leaves to fastavro --------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        {"occurred_at": 1_780_000_000_123_456},  # fastavro writes an int as it is
        {"occurred_at": datetime(2026, 9, 1, 12)},  # naive: fastavro's local-time rule
        {"event_id": "01920000-0000-7000-8000-000000000000"},  # a uuid as text
        {"input_sha256": bytearray(D)},
        {"latency_ms": 2**40},  # fastavro writes an int out of range as a long
        {"explicit_label": 1},
    ],
    ids=str,
)
def test_values_compiled_code_does_not_take_are_fastavros_to_write(update: dict) -> None:
    event = generation().model_copy(update=update)  # no validation: anything can get in
    assert ENCODER.encode(event) == fastavro_bytes(event)


@pytest.mark.parametrize(
    "update",
    [
        {"input_tokens": True},  # fastavro's union validation refuses a bool as a long
        {"input_tokens": 2**63},
        {"input_sha256": b"short"},
        {"output_sha256": b"short"},
        {"filing_number": "lone \ud800 surrogate"},
        {"modality": "smell"},
        {"implicit_label": {"label": "1"}},
    ],
    ids=str,
)
def test_what_fastavro_refuses_is_refused_naming_the_event(update: dict) -> None:
    event = generation().model_copy(update=update)
    compiled = ENCODER.prepare(Generation)
    assert compiled is not None
    with pytest.raises(Exception):  # noqa: B017 - whatever it is, compiled code writes nothing
        compiled(event)
    with pytest.raises(EventValidationError, match=f"generation {event.event_id}: cannot encode"):
        ENCODER.encode(event)
    with pytest.raises(EventValidationError):
        fastavro_bytes(event)


class _Plain(Generation):
    pass


class _Redacted(Generation):
    """Overrides body() without saying how in record_layout(): the encoder cannot trust it."""

    def body(self) -> dict[str, Any]:
        return {**super().body(), "subject": "redacted"}


class _RedactedInStep(_Redacted):
    """The same, with a layout in step: compiled again (a constant in place of the field)."""

    @classmethod
    def record_layout(cls) -> Mapping[str, Any]:
        from aigc_audit.producers.events.base import Const

        return {**super().record_layout(), "subject": Const("redacted")}


def test_a_subclass_is_compiled_only_when_its_layout_is_in_step_with_its_record() -> None:
    event = _Plain(**generation().model_dump())
    assert ENCODER.prepare(_Plain) is not None
    assert ENCODER.encode(event) == fastavro_bytes(event)

    redacted = _Redacted(**generation().model_dump())
    assert ENCODER.prepare(_Redacted) is None
    assert "overrides body()" in (ENCODER.unsupported(_Redacted) or "")
    assert ENCODER.encode(redacted) == fastavro_bytes(redacted)
    assert CATALOGUE.decode(ENCODER.encode(redacted))[1]["subject"] == "redacted"

    in_step = _RedactedInStep(**generation().model_dump())
    assert ENCODER.prepare(_RedactedInStep) is not None
    assert ENCODER.encode(in_step) == fastavro_bytes(in_step)


def test_kinds_that_are_not_event_kinds_are_refused() -> None:
    with pytest.raises(EventValidationError, match="not an audit event"):
        ENCODER.prepare(dict)
    with pytest.raises(EventValidationError, match="no EVENT_TYPE"):
        ENCODER.prepare(AuditEvent)


# --- Avro beyond what today's kinds use, in a catalogue of its own ------------------------


def _catalogue_with(tmp_path: Path, fields: list[dict[str, Any]]) -> SchemaCatalogue:
    head = resources.files("aigc_audit.schemas").joinpath("aigc.audit.EventHead.avsc")
    (tmp_path / "aigc.audit.EventHead.avsc").write_text(head.read_text(encoding="utf-8"))
    record = {
        "type": "record",
        "name": "Odd",
        "namespace": "t",
        "fields": [{"name": "head", "type": "aigc.audit.EventHead"}, *fields],
    }
    (tmp_path / "t.Odd.avsc").write_text(json.dumps(record))
    return SchemaCatalogue(tmp_path)


class Item(BaseModel):
    model_config = MODEL_CONFIG

    name: str
    weight: float


class Rich(AuditEvent):
    EVENT_TYPE: ClassVar[str] = "generation"
    SCHEMA: ClassVar[str] = "t.Odd"

    items: tuple[Item, ...] = ()
    note: str | None = "x"
    flag: bool | None = None
    count: int | None = None
    blob: bytes = b""
    ratio: float = 0.5
    small: int = 0
    digest: bytes = bytes(4)
    numbers: tuple[int, ...] = ()


RICH_FIELDS: list[dict[str, Any]] = [
    {
        "name": "items",
        "type": {
            "type": "array",
            "items": {
                "type": "record",
                "name": "Item",
                "fields": [
                    {"name": "name", "type": "string"},
                    {"name": "weight", "type": "double"},
                ],
            },
        },
    },
    {"name": "note", "type": ["string", "null"], "default": "x"},  # null second
    {"name": "flag", "type": ["null", "boolean"], "default": None},
    {"name": "count", "type": ["long", "null"], "default": 0},
    {"name": "blob", "type": "bytes"},
    {"name": "ratio", "type": "double"},
    {"name": "small", "type": "int"},
    {"name": "digest", "type": {"type": "fixed", "name": "Four", "size": 4}},
    {"name": "numbers", "type": {"type": "array", "items": "long"}},
    {"name": "added_later", "type": {"type": "array", "items": "string"}, "default": []},
]


def test_more_of_avro_compiles_to_the_same_bytes(tmp_path: Path) -> None:
    catalogue = _catalogue_with(tmp_path, RICH_FIELDS)
    encoder = RecordEncoder(catalogue, service_id="s", producer_id="p")
    assert encoder.prepare(Rich) is not None, encoder.unsupported(Rich)
    events = [
        Rich(occurred_at=T),
        Rich(
            items=[Item(name="一", weight=-0.0), Item(name="", weight=1e308)],
            note=None,
            flag=False,
            count=-(2**63),
            blob=b"\x00" * 9000,
            ratio=float("inf"),
            small=-(2**31),
            digest=b"abcd",
            numbers=[0, -1, BIG],
            occurred_at=T,
        ),
        Rich(note="", flag=True, count=0, occurred_at=FAR_PAST),
    ]
    for event in events:
        expected = catalogue.encode(Rich.SCHEMA, event.to_record(service_id="s", producer_id="p"))
        assert encoder.encode(event) == expected
        assert catalogue.decode(expected)[1]["added_later"] == []
    # fastavro's union validation: an int is not a boolean, a bool is not a long.
    for update in ({"flag": 1}, {"count": True}):
        with pytest.raises(EventValidationError):
            encoder.encode(events[0].model_copy(update=update))
    # Compiled code writes models; a dict for a record is fastavro's to write.
    odd = events[0].model_copy(update={"items": [{"name": "a", "weight": 1.0}]})
    assert encoder.encode(odd) == catalogue.encode(
        Rich.SCHEMA, odd.to_record(service_id="s", producer_id="p")
    )


class Odd(AuditEvent):
    EVENT_TYPE: ClassVar[str] = "generation"
    SCHEMA: ClassVar[str] = "t.Odd"

    value: Any = None


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "map", "values": "string"}, {"a": "b"}),
        ("float", 1.5),
        (["null", "string", "long"], 5),
        ({"type": "int", "logicalType": "date"}, date(2020, 1, 1)),
        (["null", {"type": "array", "items": "string"}], ["a"]),
        ({"type": "long", "logicalType": "timestamp-millis"}, T),
    ],
    ids=str,
)
def test_what_the_compiler_does_not_know_goes_to_fastavro(
    tmp_path: Path, schema: Any, value: Any
) -> None:
    catalogue = _catalogue_with(tmp_path, [{"name": "value", "type": schema}])
    encoder = RecordEncoder(catalogue, service_id="s", producer_id="p")
    assert encoder.prepare(Odd) is None
    assert encoder.unsupported(Odd)
    event = Odd(value=value, occurred_at=T)
    expected = catalogue.encode(Odd.SCHEMA, event.to_record(service_id="s", producer_id="p"))
    assert encoder.encode(event) == expected


def test_a_field_the_schema_lacks_or_cannot_default_leaves_the_kind_to_fastavro(
    tmp_path: Path,
) -> None:
    catalogue = _catalogue_with(tmp_path, [{"name": "other", "type": "string"}])
    with pytest.raises(Exception, match="no field value"):
        compile_event_encoder(catalogue, Odd, {"service_id": "s", "producer_id": "p"})
    encoder = RecordEncoder(catalogue, service_id="s", producer_id="p")
    assert encoder.prepare(Odd) is None
    with pytest.raises(EventValidationError):
        encoder.encode(Odd(value="v", occurred_at=T))


# --- models that validate always encode ---------------------------------------------------


def _avro_types(kind: type[AuditEvent]) -> dict[tuple[type[BaseModel], str], str]:
    """(model class, attribute) -> the Avro type it is written as, following the layout."""
    schema = CATALOGUE.schema(kind.SCHEMA)
    named = schema["__named_schemas"]
    found: dict[tuple[type[BaseModel], str], str] = {}

    def resolve(s: Any) -> Any:
        return named.get(s, s) if isinstance(s, str) else s

    def branch(s: Any) -> Any:
        s = resolve(s)
        if isinstance(s, list):
            return resolve(next(b for b in s if b != "null"))
        return s

    def walk(record: Any, layout: Mapping[str, Any], model: type[BaseModel]) -> None:
        for field in record["fields"]:
            source = layout.get(field["name"])
            target = branch(field["type"])
            if isinstance(source, Nested):
                walk(target, source.fields, model)
            elif isinstance(source, Attr):
                if isinstance(target, dict) and target.get("type") == "record":
                    value = getattr(EXAMPLES[kind], source.name)
                    assert isinstance(value, BaseModel), f"set {source.name} in the example"
                    sub = type(value)
                    walk(target, {n: Attr(n) for n in sub.model_fields}, sub)
                elif isinstance(target, dict) and target.get("type") == "array":
                    found[(model, source.name)] = f"array of {branch(target['items'])}"
                else:
                    found[(model, source.name)] = (
                        target
                        if isinstance(target, str)
                        else str(target.get("logicalType") or target["type"])
                    )

    walk(schema, kind.record_layout(), kind)
    return found


EXAMPLES: dict[type[AuditEvent], AuditEvent] = {}
for _name, _event in CASES:
    if "maximal" in _name or type(_event) not in EXAMPLES:
        EXAMPLES[type(_event)] = _event

_LIMITS = {"int": 2**31 - 1, "long": 2**63 - 1}


@pytest.mark.parametrize("kind", list(EVENT_KINDS.values()), ids=lambda k: k.__name__)
def test_a_model_refuses_every_value_its_schema_cannot_hold(kind: type[AuditEvent]) -> None:
    """Every int field is bounded by its Avro type, every string is valid Unicode: a model
    that validates encodes. A new field without its bound fails here."""
    example = EXAMPLES[kind]
    types = _avro_types(kind)
    assert types
    for (model, attribute), avro in types.items():
        owner: BaseModel = example if model is kind else _nested(example, model)
        data = owner.model_dump()
        assert model.model_validate(data) is not None

        if avro in _LIMITS:
            limit = _LIMITS[avro]
            at_limit = model.model_validate({**data, attribute: limit})
            if model is kind:
                assert ENCODER.encode(at_limit) == fastavro_bytes(at_limit)  # type: ignore[arg-type]
            _refused(model, {**data, attribute: limit + 1}, "less_than_equal")
        elif avro == "string":
            _refused(model, {**data, attribute: "lone \ud800"}, "string_unicode")
        elif avro == "array of string":
            _refused(model, {**data, attribute: ["ok", "lone \udfff"]}, "string_unicode")


def _refused(model: type[BaseModel], data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert any(e["type"] == error for e in info.value.errors()), info.value


def _nested(event: AuditEvent, model: type[BaseModel]) -> BaseModel:
    for name in type(event).model_fields:
        value = getattr(event, name)
        if type(value) is model:
            return value
    raise AssertionError(f"no {model.__name__} in {event!r}")


def test_timestamps_out_of_range_in_utc_are_a_validation_error() -> None:
    plus8, minus8 = timezone(timedelta(hours=8)), timezone(timedelta(hours=-8))
    for at in (datetime(1, 1, 1, 7, tzinfo=plus8), datetime(9999, 12, 31, 17, tzinfo=minus8)):
        with pytest.raises(ValidationError, match="outside the years 1 to 9999"):
            generation(occurred_at=at)


def test_sanction_lists_are_frozen_once_built() -> None:
    evidence = [str(uuid.uuid4())]
    event = sanction(action="warning", evidence=evidence, restricted_functions=["image"])
    evidence.append("added after the event was built")
    assert event.evidence == (evidence[0],)
    assert event.restricted_functions == ("image",)
