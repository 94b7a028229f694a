"""bind_params: a query's parameters from command-line strings, typed, defaulted and checked;
run_query passes them as parameters, never in the SQL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from aigc_audit.consumers.query.pack import (
    PLACEHOLDER_TYPES,
    NamedQuery,
    QueryParamError,
    bind_params,
    parse_query,
    run_query,
)
from aigc_audit.consumers.store.base import QueryResult
from tests.query_pack_fixtures import (
    BODY,
    HEADER,
)

# --------------------------------------------------------------------------------------------
# bind_params

DEMO = parse_query("demo", HEADER + BODY)


def _typed_query(ptype: str) -> NamedQuery:
    sql_type = PLACEHOLDER_TYPES[ptype]
    return parse_query(
        "typed",
        f"-- title: T\n-- articles: Art. 1\n-- description: D\n-- param v: {ptype}\n"
        f"SELECT {{v:{sql_type}}}",
    )


def test_bind_params_fills_defaults() -> None:
    before = datetime.now(UTC)
    bound = bind_params(DEMO, {"service_id": "svc"})
    after = datetime.now(UTC)
    assert bound.keys() == {"as_of", "service_id", "label", "limit"}
    assert bound["service_id"] == "svc"
    assert bound["label"] == ""
    assert bound["limit"] == 10
    as_of = bound["as_of"]
    assert isinstance(as_of, datetime) and as_of.tzinfo is not None
    assert before <= as_of <= after


def test_bind_params_missing_required() -> None:
    with pytest.raises(QueryParamError, match=r"needs parameter: service_id \(String\)$"):
        bind_params(DEMO, {})


def test_bind_params_unknown_name_lists_known_ones() -> None:
    with pytest.raises(
        QueryParamError,
        match=r"unknown parameter 'servce_id' .*; known: as_of, service_id, label, limit$",
    ):
        bind_params(DEMO, {"service_id": "svc", "servce_id": "x"})


@pytest.mark.parametrize("value", ["ten", "-1", "4294967296", "1.5", ""])
def test_bind_params_ill_typed_int(value: str) -> None:
    with pytest.raises(QueryParamError) as raised:
        bind_params(DEMO, {"service_id": "svc", "limit": value})
    message = str(raised.value)
    assert f"parameter 'limit': {value!r} is not a valid UInt32" in message
    assert "from 0 to 4294967295" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-01", "2026-11-01T25:00", "01/11/2026", "1800-01-01", "2026"]
)
def test_bind_params_bad_datetime(value: str) -> None:
    with pytest.raises(
        QueryParamError, match=r"^parameter 'as_of': .* not a valid DateTime64\(6\)"
    ):
        bind_params(DEMO, {"service_id": "svc", "as_of": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:00:00", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01 08:00", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01T08:00:00Z", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01T16:00:00+08:00", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01T03:00:00.25-05:00", datetime(2026, 11, 1, 8, 0, 0, 250000, tzinfo=UTC)),
        (
            datetime(2026, 11, 1, 16, tzinfo=timezone(timedelta(hours=8))),
            datetime(2026, 11, 1, 8, tzinfo=UTC),
        ),
    ],
)
def test_bind_params_converts_times_to_utc(value: object, expected: datetime) -> None:
    bound = bind_params(DEMO, {"service_id": "svc", "as_of": value})["as_of"]
    assert bound == expected
    assert isinstance(bound, datetime) and bound.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("ptype", "text", "expected"),
    [
        ("String", "a b", "a b"),
        ("UInt64", "18446744073709551615", 2**64 - 1),
        ("Int64", "-5", -5),
        ("Float64", "0.95", 0.95),
        ("Date", "2026-11-01", date(2026, 11, 1)),
        ("Bool", "true", True),
        ("Bool", "0", False),
        ("Bool", "FALSE", False),
    ],
)
def test_bind_params_types(ptype: str, text: str, expected: object) -> None:
    query = _typed_query(ptype)
    assert bind_params(query, {"v": text}) == {"v": expected}
    # binding is idempotent: already-typed values pass unchanged
    assert bind_params(query, bind_params(query, {"v": text})) == {"v": expected}


@pytest.mark.parametrize(
    ("ptype", "text"),
    [
        ("UInt64", "18446744073709551616"),
        ("Int64", "9223372036854775808"),
        ("Float64", "nan"),
        ("Float64", "abc"),
        ("Date", "2026-02-30"),
        ("Date", "2026-11-01T00:00"),
        ("Bool", "yes"),
    ],
)
def test_bind_params_refuses_ill_typed(ptype: str, text: str) -> None:
    with pytest.raises(QueryParamError, match=rf"'v': {text!r} is not a valid {ptype}"):
        bind_params(_typed_query(ptype), {"v": text})


class _RecordingStore:
    database = "audit"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Mapping[str, Any] | None]] = []

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        self.calls.append((sql, params))
        return QueryResult((), (), [])


def test_run_query_passes_values_as_parameters_never_in_the_sql() -> None:
    recorder = _RecordingStore()
    hostile = "x' OR 1=1 --"
    run_query(recorder, DEMO, {"service_id": hostile, "as_of": "2026-11-01"})  # type: ignore[arg-type]
    [(sql, params)] = recorder.calls
    assert sql == DEMO.sql
    assert params == {
        "as_of": datetime(2026, 11, 1, tzinfo=UTC),
        "service_id": hostile,
        "label": "",
        "limit": 10,
    }
