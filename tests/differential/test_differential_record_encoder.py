"""Pair (d): the producers' compiled event encoders (``producers.record_encoder``,
``RecordEncoder``'s code generated per event kind, what the client writes) against fastavro
(``SchemaCatalogue.encode`` of ``event.to_record(...)``, the general path); and the batch
encoder's splice (``SignedBatch._encode_spliced``: fastavro writes the batch without its events,
they go in between) against fastavro writing the whole batch.

The contract: compiled code returns bytes only when they are fastavro's bytes for the event, and
``RecordEncoder.encode`` returns fastavro's bytes or refuses exactly what fastavro refuses.
Events of every kind (the demo's simulated traffic, and a legal hold) have any of their fields,
or of their nested records' fields, replaced by a hypothesis value: valid ones (through the
model's validation), and ones no validated model holds (``model_copy`` skips validation): wrong
types, ints beyond 32 or 64 bits, naive and zoned datetimes, times at the ends of the calendar,
lone surrogates, NaN and infinities, bytes of the wrong length, empty and odd sequences.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from aigc_audit.consumers.demo.simulation import SimulationPlan, collect
from aigc_audit.producers.batch import SIGNED_BATCH, SignedBatch
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.events import EVENT_KINDS, AuditEvent, LegalHold
from aigc_audit.producers.record_encoder import RecordEncoder
from tests.differential.avro_values import LONG_EDGES, texts
from tests.differential.conftest import scaled

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

CATALOGUE = default_catalogue()
SERVICE, PRODUCER = "chat", "chat-1"
ENCODER = RecordEncoder(CATALOGUE, service_id=SERVICE, producer_id=PRODUCER)


def _base_events() -> list[AuditEvent]:
    """One event of each kind (the first of each in the demo's traffic), plus a legal hold."""
    events, _ = collect(SimulationPlan.small(seed=7))
    found: dict[type, AuditEvent] = {}
    for _, event in events:
        found.setdefault(type(event), event)
    found[LegalHold] = LegalHold(
        hold_id="h-1",
        hold_scope="subject",
        hold_target="subject-3",
        hold_action="place",
        hold_reason="inspection",
        requested_by="Beijing CAC",
    )
    return list(found.values())


BASE = _base_events()
assert {type(e) for e in BASE} == set(EVENT_KINDS.values())

datetimes = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=8)), timezone.min])),
    st.sampled_from(
        [
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(1970, 1, 1, tzinfo=UTC),
        ]
    ),
)
any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(LONG_EDGES),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 2**31, -(2**31) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(["lone \ud800 surrogate", "\udfff", ""]),
    st.binary(max_size=40),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32).map(bytearray),
    datetimes,
    st.integers(0, 2**62),  # a time as micros
    st.uuids(),
    st.uuids().map(str),
    st.lists(texts, max_size=3),
    st.lists(texts, max_size=3).map(tuple),
    st.just(()),
    st.dictionaries(texts, texts, max_size=2),
)


def like(current: Any) -> st.SearchStrategy[Any]:
    """Values of the current value's own kind, edges first (then any value at all)."""
    if isinstance(current, bool):
        return st.one_of(st.booleans(), st.sampled_from([0, 1, None]))
    if isinstance(current, int):
        return st.one_of(
            st.sampled_from(LONG_EDGES), st.integers(-(2**64), 2**64), st.booleans(), st.floats()
        )
    if isinstance(current, float):
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers())
    if isinstance(current, bytes):
        n = len(current)
        return st.one_of(
            st.binary(min_size=n, max_size=n),
            st.binary(max_size=n + 2),
            st.binary(min_size=n, max_size=n).map(bytearray),
            st.binary(min_size=n, max_size=n).map(memoryview),
        )
    if isinstance(current, Enum):
        return st.one_of(
            st.sampled_from(list(type(current))),
            st.sampled_from([m.value for m in type(current)]),
            texts,
        )
    if isinstance(current, str):
        return st.one_of(texts, st.sampled_from(["lone \ud800 surrogate", "\udfff", "\x00"]))
    if isinstance(current, datetime):
        return st.one_of(datetimes, st.integers(0, 2**62), st.dates())
    if isinstance(current, tuple | list):
        return st.one_of(
            st.just(()),
            st.lists(st.sampled_from(current) if current else texts, max_size=4).map(tuple),
            st.lists(st.sampled_from(current) if current else texts, max_size=4),
            st.lists(any_value, max_size=2).map(tuple),
        )
    return any_value


def _paths(model: BaseModel, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of ``model`` and of the models nested in it, as paths."""
    out = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        out.append((*prefix, name))
        if isinstance(value, BaseModel):
            out += _paths(value, (*prefix, name))
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            out += _paths(value[0], (*prefix, name, "0"))
    return out


FIELDS = [(n, path) for n, event in enumerate(BASE) for path in _paths(event)]
"""(index in BASE, path of a field): every field of every kind, nested ones too."""


def _replaced(model: Any, path: tuple[str, ...], value: Any, validate: bool) -> Any:
    """``model`` with the field at ``path`` set to ``value`` (validated, or not at all)."""
    name, rest = path[0], path[1:]
    if isinstance(model, tuple):
        k = int(name)
        return (*model[:k], _replaced(model[k], rest, value, validate), *model[k + 1 :])
    if rest:
        value = _replaced(getattr(model, name), rest, value, validate)
    if validate:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return type(model).model_validate({**dict(model), name: value})
    return model.model_copy(update={name: value})


@st.composite
def changed(draw: st.DrawFn, n: int, path: tuple[str, ...]) -> tuple[AuditEvent, bool]:
    """BASE[n] with the field at ``path`` replaced by a value of its kind or any value, through
    the model's validation when it takes the value (and a draw says so), else without; and
    whether it was validated."""
    event = BASE[n]
    current: Any = event
    for name in path:
        current = current[int(name)] if isinstance(current, tuple) else getattr(current, name)
    value = draw(st.one_of(like(current), like(current), any_value))
    if draw(st.booleans()):
        try:
            return _replaced(event, path, value, True), True
        except Exception:  # the model refuses it: the unvalidated event below
            pass
    return _replaced(event, path, value, False), False


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "bytes", call()
    except Exception as exc:
        return "refused", type(exc).__name__


@pytest.mark.parametrize(
    ("n", "path"), FIELDS, ids=[f"{type(BASE[n]).__name__}.{'.'.join(p)}" for n, p in FIELDS]
)
@settings(max_examples=scaled(12), deadline=None)
@given(data=st.data())
def test_compiled_encoders_write_fastavros_bytes_or_nothing(
    n: int, path: tuple[str, ...], data: st.DataObject
) -> None:
    event, _validated = data.draw(changed(n, path))
    kind = type(event)
    compiled = ENCODER.prepare(kind)
    assert compiled is not None, ENCODER.unsupported(kind)
    exact = outcome(
        lambda: CATALOGUE.encode(
            kind.SCHEMA, event.to_record(service_id=SERVICE, producer_id=PRODUCER)
        )
    )
    fast = outcome(lambda: compiled(event))
    if fast[0] == "bytes":
        assert exact == fast, (kind.__name__, event)
    # What the client calls: fastavro's bytes, or a refusal where fastavro refuses.
    client = outcome(lambda: ENCODER.encode(event))
    assert client[0] == exact[0], (kind.__name__, event, client, exact)
    if exact[0] == "bytes":
        assert client == exact
    else:
        assert client[1] == "EventValidationError"
    many = outcome(lambda: ENCODER.encode_many([BASE[0], event]))
    assert many[0] == exact[0]
    if exact[0] == "bytes":
        assert many[1][1] == exact[1]


@settings(max_examples=scaled(80), deadline=None)
@given(st.sampled_from(BASE))
def test_unchanged_events_take_the_compiled_path(event: AuditEvent) -> None:
    """The property above is not vacuous: every kind's compiled code writes its valid events."""
    compiled = ENCODER.prepare(type(event))
    assert compiled is not None
    record = event.to_record(service_id=SERVICE, producer_id=PRODUCER)
    assert compiled(event) == CATALOGUE.encode(event.SCHEMA, record)


events_of_a_batch = st.lists(
    st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"", b"\x00"]),
        st.integers(8180, 8200).map(lambda n: b"e" * n),  # around the length table's end
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=scaled(150), deadline=None)
@given(
    events_of_a_batch,
    st.one_of(st.sampled_from(LONG_EDGES), st.integers(0, 2**63 - 1)),
    st.one_of(st.sampled_from(LONG_EDGES), st.integers(-(2**63), 2**63 - 1)),
    texts,
)
def test_spliced_batches_are_fastavros_bytes(
    events: list[bytes], sequence: int, created_at_us: int, producer_id: str
) -> None:
    batch = SignedBatch(
        producer_id=producer_id,
        key_id="k-1",
        sequence=sequence,
        prev_digest=bytes(32),
        created_at_us=created_at_us,
        events=tuple(events),
        merkle_root=bytes(range(32)),
        signature=bytes(64),
    )
    exact = outcome(lambda: CATALOGUE.encode(SIGNED_BATCH, batch._record(list(events))))
    fast = outcome(lambda: batch.encode(CATALOGUE))
    assert fast == exact


BOOLEAN_FIELDS = [
    (n, path)
    for n, path in FIELDS
    if type(getattr(BASE[n], path[0], None)) is bool and len(path) == 1
]


@settings(max_examples=scaled(40), deadline=None)
@given(st.sampled_from(BOOLEAN_FIELDS), st.sampled_from([0, 1, -1, 2, 0.0, 1.0, "", "true"]))
# Regression: compiled code wrote 0 and 1 outside a union as a boolean (_BOOLEAN[0] is
# _BOOLEAN[False]), where fastavro refuses an int; now it leaves them to fastavro.
@example((5, ("verified",)), 0)
@example((0, ("contains_personal_information",)), 1)
def test_a_boolean_field_holding_something_else_is_fastavros(
    field: tuple[int, tuple[str, ...]], value: Any
) -> None:
    n, path = field
    event = _replaced(BASE[n], path, value, False)
    compiled = ENCODER.prepare(type(event))
    assert compiled is not None
    record = event.to_record(service_id=SERVICE, producer_id=PRODUCER)
    exact = outcome(lambda: CATALOGUE.encode(event.SCHEMA, record))
    fast = outcome(lambda: compiled(event))
    assert fast[0] == "refused" or fast == exact
    assert outcome(lambda: ENCODER.encode(event))[0] == exact[0]
