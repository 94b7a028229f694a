"""The named inspection queries: the pack parses, every query runs on chDB, and answers exactly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.query.pack import (
    PLACEHOLDER_TYPES,
    NamedQuery,
    QueryPackError,
    QueryParamError,
    UnknownQueryError,
    bind_params,
    get_query,
    load_query_pack,
    parse_query,
    placeholders,
    run_query,
)
from aigc_audit.consumers.store.base import QueryResult
from aigc_audit.consumers.store.tables import (
    BATCHES,
    CHAIN_FINDINGS,
    DATA_HANDLING,
    GENERATIONS,
    MODERATION_ACTIONS,
    QUARANTINE,
    USER_SANCTIONS,
)
from tests.store_rows import (
    agreement_acceptance,
    annotation_check,
    batch,
    complaint,
    finding,
    generation,
    identity_verification,
    insert,
    legal_hold,
    moderation,
    out,
    pi_request,
    quarantined,
    safety_evaluation,
    sanction,
    training_intake,
    ts,
    update,
)

PACK = load_query_pack()

REQUIRED = (
    "subject_history",
    "incidents_by_risk_category",
    "incidents_not_reported",
    "rectifications_overdue",
    "sanctions_in_force",
    "complaints_overdue",
    "personal_information_requests_open",
    "label_coverage",
    "generations_without_filing",
    "trail_integrity",
)

EXTRAS = (
    "model_version_for_request",
    "generation_for_label",
    "training_data_provenance",
    "safety_evaluations",
    "annotation_quality",
    "unlabelled_output_recipients",
    "legal_holds_in_force",
    "minor_mode_usage",
    "subject_erasure",
    "trail_outages",
    "time_to_action",
    "time_to_feedback",
    "rectifications_open",
    "sanction_history",
    "agreement_in_force",
)

DOMAIN_ANSWERS = {
    "Art. 4: incidents per category and period": "incidents_by_risk_category",
    "Art. 4: which model produced them": "incidents_by_risk_category",
    "Art. 4: the same for discrimination (risk category A.2)": "incidents_by_risk_category",
    "Art. 4: which model version answered a given request": "model_version_for_request",
    "Art. 7: provenance of every data set behind a model version": "training_data_provenance",
    "Art. 8: annotation quality per model version": "annotation_quality",
    "Art. 9: which agreement a subject had accepted at a given time": "agreement_in_force",
    "Art. 10: usage by minor-mode sessions": "minor_mode_usage",
    "Art. 11: open and late personal-information requests": "personal_information_requests_open",
    "Art. 11: proof that a deleted subject's data can no longer be read": "subject_erasure",
    "Art. 12: label coverage per modality, model and period": "label_coverage",
    "Art. 12: the generation behind a label id": "generation_for_label",
    "Art. 13: outages of the audit trail itself": "trail_outages",
    "Art. 14 ¶1: time from detection to action": "time_to_action",
    "Art. 14 ¶1: incidents not yet reported": "incidents_not_reported",
    "Art. 14 ¶1: rectifications still open (Draft 15: within 3 months)": "rectifications_open",
    "Art. 14 ¶2: a subject's full sanction history and the evidence behind each step": (
        "sanction_history"
    ),
    "Art. 14 ¶2: sanctions in force at a given time": "sanctions_in_force",
    "Art. 15: complaints past their deadline": "complaints_overdue",
    "Art. 15: time to feedback": "time_to_feedback",
    "Art. 17: generations by models without a filing number": "generations_without_filing",
}
"""Each "what must be answerable" entry of the domain brief's record-keeping table, and the named
query that answers it. The query's ``-- articles:`` header must name the article."""

DOMAIN_NOT_A_QUERY = {
    "Art. 19: an export bundle that the inspector can verify offline, and a readable report": (
        "the export bundle and its report, not a query"
    ),
    "Art. 21: none": "penalties: nothing to record",
}
"""The entries no query answers, and why."""

PER_EVENT = (
    "subject_history",
    "sanction_history",
    "subject_erasure",
    "incidents_not_reported",
    "time_to_action",
    "rectifications_overdue",
    "rectifications_open",
    "sanctions_in_force",
    "complaints_overdue",
    "personal_information_requests_open",
    "generation_for_label",
    "model_version_for_request",
    "legal_holds_in_force",
    "safety_evaluations",
    "training_data_provenance",
    "agreement_in_force",
)
"""Queries whose rows are each about one event: they carry its ``event_id`` (a UUID), so that an
export can select "the events of a named query" (``SELECT toUUID(event_id) FROM (<query>)``)."""

AGGREGATES = (
    "incidents_by_risk_category",
    "label_coverage",
    "generations_without_filing",
    "unlabelled_output_recipients",
    "annotation_quality",
    "minor_mode_usage",
    "time_to_feedback",
    "trail_integrity",
    "trail_outages",
)
"""Queries whose rows count or summarise many events (or batches): no ``event_id``."""

SAMPLE_VALUES = {
    "String": "x",
    "UInt32": "1",
    "UInt64": "1",
    "Int64": "-1",
    "Float64": "0.5",
    "Date": "2026-03-01",
    "DateTime64(6)": "2026-03-01T00:00:00Z",
    "Bool": "true",
}

DATA_TABLES = (
    GENERATIONS,
    MODERATION_ACTIONS,
    USER_SANCTIONS,
    DATA_HANDLING,
    BATCHES,
    QUARANTINE,
    CHAIN_FINDINGS,
)


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chDB session for the module (chDB allows one per process; opening is slow)."""
    pytest.importorskip("chdb")
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    store = EmbeddedStore(Path(tmp_path_factory.mktemp("query-pack")) / "store")
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def store(module_store: Any) -> Any:
    """The module's store with every data table emptied, so each test sees only its own rows."""
    for table in DATA_TABLES:
        module_store.command(f"TRUNCATE TABLE {module_store.database}.{table.name}")
    return module_store


def run(store: Any, name: str, **params: str) -> list[dict[str, Any]]:
    """Run a pack query with command-line style string params; rows as dicts."""
    return run_query(store, PACK[name], params).as_dicts()


# --------------------------------------------------------------------------------------------
# (a) the pack itself


def test_pack_holds_the_required_queries() -> None:
    assert set(PACK) >= {*REQUIRED, *EXTRAS}


@pytest.mark.parametrize(("entry", "name"), sorted(DOMAIN_ANSWERS.items()))
def test_domain_answer_is_a_query_of_its_article(entry: str, name: str) -> None:
    article, question = entry.split(": ", 1)
    assert question
    assert name in PACK, f"{entry!r}: no query {name!r} in the pack"
    assert article in PACK[name].articles, f"{name} does not name {article}"


def test_domain_entries_are_answered_or_explained_once() -> None:
    assert not set(DOMAIN_ANSWERS) & set(DOMAIN_NOT_A_QUERY)
    assert all(why for why in DOMAIN_NOT_A_QUERY.values())


def test_every_query_is_per_event_or_an_aggregate() -> None:
    assert not set(PER_EVENT) & set(AGGREGATES)
    assert set(PER_EVENT) | set(AGGREGATES) == set(PACK)


@pytest.mark.parametrize("name", sorted(PACK))
def test_query_header_and_placeholders(name: str) -> None:
    query = PACK[name]
    assert query.name == name
    assert query.title and query.description
    assert query.articles and all(a.startswith(("Art.", "Draft")) for a in query.articles)
    used = placeholders(query.sql)
    declared = {p.name: p for p in query.params}
    assert set(used) == set(declared)
    for pname, types in used.items():
        assert types == {PLACEHOLDER_TYPES[declared[pname].type]}
    for param in query.params:
        assert param.doc, f"{name}.{param.name} has no doc"
    assert "audit." in query.sql
    assert not query.sql.rstrip().endswith(";")
    assert "FINAL" not in query.sql.upper().split()


HEADER = (
    "-- title: T\n"
    "-- articles: Art. 15; Draft 13\n"
    "-- description: What it answers,\n"
    "--   continued here.\n"
    "-- param as_of: DateTime64(6) = now   (the time (UTC) to judge at)\n"
    "-- param service_id: String           (required)\n"
    "-- param label: String = ''\n"
    "-- param limit: UInt32 = 10\n"
)
BODY = (
    "SELECT {service_id:String}, {label:String}, {limit:UInt32}, "
    "{as_of:DateTime64(6, 'UTC')} FROM audit.generations;\n"
)


def test_parse_query_reads_the_header() -> None:
    query = parse_query("demo", HEADER + BODY)
    assert query.title == "T"
    assert query.articles == ("Art. 15", "Draft 13")
    assert query.description == "What it answers, continued here."
    assert [(p.name, p.type, p.default, p.doc) for p in query.params] == [
        ("as_of", "DateTime64(6)", "now", "the time (UTC) to judge at"),
        ("service_id", "String", None, "required"),
        ("label", "String", "", ""),
        ("limit", "UInt32", "10", ""),
    ]
    assert query.sql == BODY.strip().rstrip(";")


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        (HEADER.replace("-- title: T\n", "") + BODY, "misses 'title'"),
        (HEADER.replace("-- articles: Art. 15; Draft 13\n", "") + BODY, "misses 'articles'"),
        (HEADER + "-- owner: me\n" + BODY, "unknown header key 'owner'"),
        (HEADER + "-- title: again\n" + BODY, "given twice"),
        (HEADER.replace("UInt32 = 10", "Int8 = 10") + BODY, "unknown type 'Int8'"),
        (HEADER.replace("UInt32 = 10", "UInt32 = ten") + BODY, "bad default"),
        (HEADER.replace("label: String", "limit: String") + BODY, "declared twice"),
        (HEADER + "-- param extra: Bool\n" + BODY, "not used in the SQL: extra"),
        (HEADER + BODY + "WHERE {missing:String}", "not declared as params: missing"),
        (
            HEADER + BODY.replace("DateTime64(6, 'UTC')", "DateTime64(6)"),
            "must be written {as_of:DateTime64(6, 'UTC')}",
        ),
        (HEADER + BODY.replace("{limit:UInt32}", "{limit:UInt64}"), "'UInt64'"),
        (HEADER + "-- param : String\n" + BODY, "malformed param line"),
        (HEADER + "--\n" + BODY, "malformed header line"),
        (HEADER, "no SQL"),
    ],
)
def test_parse_query_refuses_malformed_files(text: str, fault: str) -> None:
    with pytest.raises(QueryPackError, match=r"^query 'demo': ") as raised:
        parse_query("demo", text)
    assert fault in str(raised.value)
    assert "\n" not in str(raised.value)


def test_parse_query_refuses_a_bad_name() -> None:
    with pytest.raises(QueryPackError, match="snake_case"):
        parse_query("Bad-Name", HEADER + BODY)


def test_unknown_query_suggests_close_names() -> None:
    with pytest.raises(UnknownQueryError, match="did you mean complaints_overdue"):
        get_query("complaint_overdue")
    with pytest.raises(UnknownQueryError, match="known queries: label_coverage"):
        get_query("zzz", {"label_coverage": PACK["label_coverage"]})
    assert get_query("label_coverage") == PACK["label_coverage"]


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


# --------------------------------------------------------------------------------------------
# (b) every query runs on chDB


def _all_params(query: NamedQuery) -> dict[str, str]:
    return {p.name: SAMPLE_VALUES[p.type] for p in query.params}


def _populate(store: Any) -> None:
    """A row or two of every kind, all about subject, request, model and data set "x"."""
    case = moderation(
        occurred_at=ts("2026-02-10"),
        subject="x",
        sealed_evidence=b"\x00sealed",
        rectification_ticket="RT-x",
        rectification_opened_at=ts("2026-02-10"),
        rectification_due_at=ts("2026-05-10"),
    )
    insert(
        store,
        GENERATIONS,
        [
            generation(
                subject="x",
                filing_number=None,
                request_id="x",
                produce_id="x",
                explicit_label=False,
                unlabelled_on_request=True,
            )
        ],
    )
    insert(store, MODERATION_ACTIONS, [case, update(case, occurred_at=ts("2026-02-11"))])
    insert(store, MODERATION_ACTIONS, [complaint(subject="x", occurred_at=ts("2026-02-01"))])
    insert(store, USER_SANCTIONS, [sanction(subject="x", occurred_at=ts("2026-02-01"))])
    insert(
        store,
        DATA_HANDLING,
        [
            pi_request(subject="x", occurred_at=ts("2026-02-01")),
            training_intake(model_name="x", dataset_id="x"),
            annotation_check(dataset_id="x"),
            safety_evaluation(model_name="x"),
            identity_verification(subject="x"),
            legal_hold(hold_target="x"),
            agreement_acceptance(subject="x", agreement_id="x"),
        ],
    )
    insert(store, BATCHES, [batch()])
    insert(store, QUARANTINE, [quarantined(), quarantined(offset=1001, producer_id=None)])
    insert(store, CHAIN_FINDINGS, [finding()])


def _over_data_params(query: NamedQuery) -> dict[str, str]:
    """Required strings "x", a window over everything, and the judging time 2026-06-01."""
    given: dict[str, str] = {}
    for param in query.params:
        if param.name == "from":
            given[param.name] = "2000-01-01"
        elif param.name == "to":
            given[param.name] = "2100-01-01"
        elif param.type == "DateTime64(6)":
            given[param.name] = "2026-06-01"
        elif param.required:
            given[param.name] = SAMPLE_VALUES[param.type]
    return given


@pytest.mark.chdb
@pytest.mark.parametrize("name", sorted(PACK))
def test_every_query_runs_on_an_empty_store(store: Any, name: str) -> None:
    result = run_query(store, PACK[name], _all_params(PACK[name]))
    assert result.rows == []


@pytest.mark.chdb
def test_every_query_runs_over_data(store: Any) -> None:
    _populate(store)
    answered = set()
    for name, query in PACK.items():
        result = run_query(store, query, _over_data_params(query))
        assert len(result.columns) == len(result.types), name
        assert all(len(row) == len(result.columns) for row in result.rows), name
        if result.rows:
            answered.add(name)
    assert answered >= {*REQUIRED, *EXTRAS}


@pytest.mark.chdb
def test_per_event_queries_return_the_ids_of_stored_events(store: Any) -> None:
    _populate(store)
    stored = {
        str(row[0])
        for table in (GENERATIONS, MODERATION_ACTIONS, USER_SANCTIONS, DATA_HANDLING)
        for row in store.query(f"SELECT event_id FROM {store.database}.{table.name}").rows
    }
    for name in PER_EVENT:
        query = PACK[name]
        params = bind_params(query, _over_data_params(query))
        result = run_query(store, query, params)
        types = dict(zip(result.columns, result.types, strict=True))
        assert types.get("event_id") == "UUID", name
        ids = [row["event_id"] for row in result.as_dicts()]
        assert ids, f"{name} answers nothing over the sample data"
        assert all(str(uuid.UUID(i)) == i for i in ids), name
        assert set(ids) <= stored, name
        # what an export runs to select the events of a named query
        exported = store.query(f"SELECT toUUID(event_id) FROM ({query.sql})", params).rows
        assert sorted(str(r[0]) for r in exported) == sorted(ids), name
    for name in AGGREGATES:
        result = run_query(store, PACK[name], _over_data_params(PACK[name]))
        assert "event_id" not in result.columns, name


@pytest.mark.chdb
def test_time_params_do_not_depend_on_the_session_time_zone(store: Any) -> None:
    insert(store, MODERATION_ACTIONS, [complaint(complaint_id="k", occurred_at=ts("2026-03-01"))])
    # due 2026-03-08 00:00 UTC: overdue one microsecond later, not at the due time itself.
    at_due = {"as_of": "2026-03-08T00:00:00Z"}
    just_after = {"as_of": "2026-03-08T08:00:00.000001+08:00"}
    store.command("SET session_timezone = 'Asia/Shanghai'")
    try:
        assert run(store, "complaints_overdue", **at_due) == []
        assert [r["complaint_id"] for r in run(store, "complaints_overdue", **just_after)] == ["k"]
    finally:
        store.command("SET session_timezone = ''")


# --------------------------------------------------------------------------------------------
# (c) exact answers


@pytest.mark.chdb
def test_subject_history(store: Any) -> None:
    gen = generation(subject="subj-h", request_id="req-h1", occurred_at=ts("2026-03-01 10:00"))
    case = moderation(
        subject="subj-h",
        case_id="case-h1",
        target_ref="req-h1",
        occurred_at=ts("2026-03-01 10:05"),
    )
    cmp = complaint(subject="subj-h", complaint_id="cmp-h1", occurred_at=ts("2026-03-01 11:00"))
    sanc = sanction(
        subject="subj-h",
        sanction_id="san-h1",
        evidence=[str(case["event_id"])],
        occurred_at=ts("2026-03-01 12:00"),
    )
    pir = pi_request(subject="subj-h", request_id="pir-h1", occurred_at=ts("2026-03-02 09:00"))
    idv = identity_verification(subject="subj-h", occurred_at=ts("2026-02-28 09:00"))
    insert(store, GENERATIONS, [gen, generation(subject="someone-else")])
    insert(store, MODERATION_ACTIONS, [case, cmp, moderation(subject="someone-else")])
    insert(store, USER_SANCTIONS, [sanc])
    insert(store, DATA_HANDLING, [pir, idv, pi_request(subject="someone-else")])

    rows = run(store, "subject_history", subject="subj-h")
    got = [
        (r["occurred_at"], r["family"], r["event_type"], r["service_id"], r["ref"], r["summary"])
        for r in rows
    ]
    assert got == [
        (
            out("2026-02-28 09:00"),
            "data_handling",
            "identity_verification",
            "svc-chat",
            "",
            "identity verified by mobile_number",
        ),
        (
            out("2026-03-01 10:00"),
            "generation",
            "generation",
            "svc-chat",
            "req-h1",
            "text by chat-model 1.0 via app: passed",
        ),
        (
            out("2026-03-01 10:05"),
            "moderation_action",
            "moderation_action",
            "svc-chat",
            "case-h1",
            "block_generation (A.1.6) on generation req-h1, detected by output_filter",
        ),
        (
            out("2026-03-01 11:00"),
            "moderation_action",
            "complaint",
            "svc-chat",
            "cmp-h1",
            "complaint cmp-h1 via in_app, due 2026-03-08 11:00:00, no feedback yet",
        ),
        (
            out("2026-03-01 12:00"),
            "user_sanction",
            "user_sanction",
            "svc-chat",
            "san-h1",
            "suspension (A.1.6) from 2026-03-01 12:00:00, evidence: 1",
        ),
        (
            out("2026-03-02 09:00"),
            "data_handling",
            "personal_information_request",
            "svc-chat",
            "pir-h1",
            "delete request received, due 2026-03-17 09:00:00",
        ),
    ]
    assert [r["event_id"] for r in rows] == [
        str(x["event_id"]) for x in (idv, gen, case, cmp, sanc, pir)
    ]


@pytest.mark.chdb
def test_subject_history_shows_agreement_acceptances(store: Any) -> None:
    acc = agreement_acceptance(subject="subj-h", agreement_version="2.1", channel="web")
    insert(store, DATA_HANDLING, [acc, agreement_acceptance(subject="someone-else")])
    rows = run(store, "subject_history", subject="subj-h")
    assert [(r["event_type"], r["ref"], r["summary"], r["event_id"]) for r in rows] == [
        (
            "agreement_acceptance",
            "user-terms",
            "accepted user-terms version 2.1 via web",
            str(acc["event_id"]),
        )
    ]


def _case(case_id: str, code: str | None, detected: str, seconds: float | None, **kw: Any) -> dict:
    at = ts(detected)
    acted = None if seconds is None else at + timedelta(seconds=seconds)
    return moderation(
        case_id=case_id, risk_category=code, occurred_at=at, detected_at=at, acted_at=acted, **kw
    )


@pytest.mark.chdb
def test_incidents_by_risk_category(store: Any) -> None:
    c1 = _case("c1", "A.1.6", "2026-04-02 10:00", None)
    c7 = _case("c7", "A.1.1", "2026-04-06 10:00", None, action="no_action")
    rows = [
        c1,
        update(c1, occurred_at=ts("2026-04-02 10:01"), acted_at=ts("2026-04-02 10:01")),
        _case("c2", "A.1.6", "2026-04-03 10:00", 120, model_version="2.0"),
        _case("c3", "A.1.6", "2026-04-04 10:00", None),
        _case("c4", "A.2.5", "2026-04-05 10:00", 30, model_name="image-model"),
        _case("c5", "A.1.6", "2026-04-05 11:00", 5, action="no_action"),
        _case("c6", "A.1.1", "2026-03-31 23:59", 5),
        _case("c8", "A.1.1", "2026-05-01 00:00", 5),
        c7,
        update(
            c7,
            occurred_at=ts("2026-04-06 10:05"),
            action="delete",
            acted_at=ts("2026-04-06 10:00:10"),
        ),
        complaint(occurred_at=ts("2026-04-07"), risk_category="A.1.6"),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "incidents_by_risk_category", **{"from": "2026-04-01", "to": "2026-05-01"})
    assert got == [
        {
            "category": "A.1",
            "risk_category": "A.1.1",
            "cases": 1,
            "models": ["chat-model 1.0"],
            "not_acted": 0,
            "avg_seconds_to_action": 10.0,
            "p50_seconds_to_action": 10.0,
            "p95_seconds_to_action": 10.0,
            "max_seconds_to_action": 10.0,
        },
        {
            "category": "A.1",
            "risk_category": "A.1.6",
            "cases": 3,
            "models": ["chat-model 1.0", "chat-model 2.0"],
            "not_acted": 1,
            "avg_seconds_to_action": 90.0,
            "p50_seconds_to_action": 90.0,
            "p95_seconds_to_action": pytest.approx(117.0),
            "max_seconds_to_action": 120.0,
        },
        {
            "category": "A.2",
            "risk_category": "A.2.5",
            "cases": 1,
            "models": ["image-model 1.0"],
            "not_acted": 0,
            "avg_seconds_to_action": 30.0,
            "p50_seconds_to_action": 30.0,
            "p95_seconds_to_action": 30.0,
            "max_seconds_to_action": 30.0,
        },
    ]
    only_other = run(
        store, "incidents_by_risk_category", **{"from": "2026-04-01", "service_id": "svc-other"}
    )
    assert only_other == []


@pytest.mark.chdb
def test_incidents_not_reported(store: Any) -> None:
    n2 = _case("n2", "A.1.3", "2026-04-02", 1)
    n4 = _case("n4", "A.1.7", "2026-04-09", 1)
    reported = {"reported": True, "authority": "Beijing CAC", "report_reference": "R-1"}
    n1 = _case("n1", "A.1.6", "2026-04-01", 1)
    rows = [
        n1,
        n2,
        update(n2, occurred_at=ts("2026-04-03"), reported_at=ts("2026-04-03"), **reported),
        _case("n3", "A.2.5", "2026-04-01", 1),
        n4,
        update(n4, occurred_at=ts("2026-04-11"), reported_at=ts("2026-04-11"), **reported),
        _case("n5", "A.1.6", "2026-04-11", 1),
    ]
    insert(store, MODERATION_ACTIONS, rows)

    at_10 = run(store, "incidents_not_reported", as_of="2026-04-10")
    assert [(r["case_id"], r["risk_category"], r["hours_since_detection"]) for r in at_10] == [
        ("n1", "A.1.6", 216.0),
        ("n4", "A.1.7", 24.0),  # reported only on 04-11: still unreported at 04-10
    ]
    assert at_10[0] | {"hours_since_detection": None} == {
        "case_id": "n1",
        "service_id": "svc-chat",
        "risk_category": "A.1.6",
        "action": "block_generation",
        "detection_source": "output_filter",
        "detected_at": out("2026-04-01"),
        "acted_at": out("2026-04-01 00:00:01"),
        "hours_since_detection": None,
        "model_name": "chat-model",
        "model_version": "1.0",
        "subject": "subj-1",
        "target": "generation",
        "target_ref": "req-1",
        "event_id": str(n1["event_id"]),
    }
    # n4's latest state by 04-10 is its first event; its report on 04-11 is not yet recorded
    assert at_10[1]["event_id"] == str(n4["event_id"])
    at_12 = run(store, "incidents_not_reported", as_of="2026-04-12")
    assert [r["case_id"] for r in at_12] == ["n1", "n5"]


def _ticket(case_id: str, ticket: str, opened: str, due: str, **kw: Any) -> dict:
    return moderation(
        case_id=case_id,
        occurred_at=ts(opened),
        rectification_ticket=ticket,
        rectification_opened_at=ts(opened),
        rectification_due_at=ts(due),
        **kw,
    )


@pytest.mark.chdb
def test_rectifications_overdue(store: Any) -> None:
    t1 = _ticket("case-r1", "RT-1", "2026-03-01", "2026-06-01")
    t4 = _ticket("case-r4", "RT-4", "2026-03-20", "2026-06-20", model_version="2.0")
    r3 = _ticket("case-r3", "RT-2", "2026-03-11", "2026-06-10")
    rows = [
        t1,
        update(t1, occurred_at=ts("2026-05-20"), rectification_closed_at=ts("2026-05-20")),
        _ticket("case-r2", "RT-2", "2026-03-10", "2026-06-10"),
        r3,
        _ticket("case-r5", "RT-3", "2026-04-15", "2026-07-15"),
        t4,
        update(t4, occurred_at=ts("2026-07-05"), rectification_closed_at=ts("2026-07-05")),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "rectifications_overdue", as_of="2026-07-01")
    assert got == [
        {
            "ticket": "RT-2",
            "service_id": "svc-chat",
            "case_ids": ["case-r2", "case-r3"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "1.0",
            "opened_at": out("2026-03-11"),
            "due_at": out("2026-06-10"),
            "days_overdue": 21.0,
            "event_id": str(r3["event_id"]),
        },
        {
            "ticket": "RT-4",
            "service_id": "svc-chat",
            "case_ids": ["case-r4"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "2.0",
            "opened_at": out("2026-03-20"),
            "due_at": out("2026-06-20"),
            "days_overdue": 11.0,
            "event_id": str(t4["event_id"]),
        },
    ]
    # closed on 07-05: no longer overdue afterwards
    assert [r["ticket"] for r in run(store, "rectifications_overdue", as_of="2026-07-10")] == [
        "RT-2"
    ]


@pytest.mark.chdb
def test_sanctions_in_force(store: Any) -> None:
    evidence = [str(uuid.uuid4()), str(uuid.uuid4())]
    s1 = sanction(sanction_id="s1", subject="subj-a", occurred_at=ts("2026-03-01"))
    s3 = sanction(
        sanction_id="s3",
        subject="subj-c",
        action="function_restriction",
        reason_category="A.4.3",
        restricted_functions=["image_generation"],
        evidence=evidence,
        occurred_at=ts("2026-03-03"),
        effective_until=ts("2026-04-01"),
    )
    rows = [
        s1,
        update(
            s1,
            occurred_at=ts("2026-03-10"),
            action="reinstatement",
            effective_from=ts("2026-03-10"),
        ),
        sanction(
            sanction_id="s2",
            subject="subj-b",
            action="warning",
            occurred_at=ts("2026-03-02"),
            effective_until=ts("2026-03-05"),
        ),
        s3,
        sanction(
            sanction_id="s4", subject="subj-d", action="termination", occurred_at=ts("2026-03-20")
        ),
    ]
    insert(store, USER_SANCTIONS, rows)

    at_06 = run(store, "sanctions_in_force", at="2026-03-06")
    assert [r["sanction_id"] for r in at_06] == ["s1", "s3"]
    assert at_06[1] == {
        "sanction_id": "s3",
        "subject": "subj-c",
        "service_id": "svc-chat",
        "action": "function_restriction",
        "reason_category": "A.4.3",
        "restricted_functions": ["image_generation"],
        "effective_from": out("2026-03-03"),
        "effective_until": out("2026-04-01"),
        "evidence_count": 2,
        "evidence": evidence,
        "records_preserved": True,
        "reported": False,
        "event_id": str(s3["event_id"]),
    }
    assert at_06[0]["action"] == "suspension" and at_06[0]["effective_until"] is None
    # reinstated on 03-10: s1 is no longer in force
    assert [r["sanction_id"] for r in run(store, "sanctions_in_force", at="2026-03-15")] == ["s3"]
    assert [r["sanction_id"] for r in run(store, "sanctions_in_force", at="2026-03-25")] == [
        "s3",
        "s4",
    ]
    # the reinstatement takes effect at its effective_from exactly
    assert [
        r["sanction_id"] for r in run(store, "sanctions_in_force", at="2026-03-09T23:59:59")
    ] == [
        "s1",
        "s3",
    ]
    only_a = run(store, "sanctions_in_force", at="2026-03-06", subject="subj-a")
    assert [r["sanction_id"] for r in only_a] == ["s1"]


@pytest.mark.chdb
def test_agreement_in_force(store: Any) -> None:
    def accepted(subject: str, version: str, at: str, **kw: Any) -> dict[str, Any]:
        return agreement_acceptance(
            subject=subject, agreement_version=version, occurred_at=ts(at), **kw
        )

    a1 = accepted("subj-a", "1.0", "2026-03-01 09:00")
    a2 = accepted("subj-a", "1.1", "2026-03-15 10:00", channel="web")
    a3 = accepted("subj-a", "2.0", "2026-04-01 08:00")  # after `at`: not yet in force
    privacy = accepted("subj-a", "3", "2026-03-02 09:00", agreement_id="privacy-policy")
    b1 = accepted("subj-b", "1.0", "2026-03-20 12:00", channel="api")
    late = accepted("subj-c", "1.1", "2026-03-25 00:00")  # accepted only after `at` below
    # recorded after `at`, but accepted before it: accepted_at is what counts
    backdated = accepted("subj-d", "1.0", "2026-03-28 00:00", accepted_at=ts("2026-03-05 07:00"))
    other_kinds = [identity_verification(subject="subj-a"), legal_hold(hold_target="subj-a")]
    insert(store, DATA_HANDLING, [a1, a2, a3, privacy, b1, late, backdated, *other_kinds])
    # a retried insert of one event (before ReplacingMergeTree merges it) answers once
    insert(store, DATA_HANDLING, [a2])

    rows = run(store, "agreement_in_force", at="2026-03-20T12:00:00Z")
    assert rows == [
        {
            "subject": "subj-a",
            "agreement_id": "privacy-policy",
            "agreement_version": "3",
            "accepted_at": out("2026-03-02 09:00"),
            "channel": "app",
            "service_id": "svc-chat",
            "event_id": str(privacy["event_id"]),
        },
        {
            "subject": "subj-a",
            "agreement_id": "user-terms",
            "agreement_version": "1.1",
            "accepted_at": out("2026-03-15 10:00"),
            "channel": "web",
            "service_id": "svc-chat",
            "event_id": str(a2["event_id"]),
        },
        {
            "subject": "subj-b",
            "agreement_id": "user-terms",
            "agreement_version": "1.0",
            "accepted_at": out("2026-03-20 12:00"),  # at `at` exactly: in force
            "channel": "api",
            "service_id": "svc-chat",
            "event_id": str(b1["event_id"]),
        },
        {
            "subject": "subj-d",
            "agreement_id": "user-terms",
            "agreement_version": "1.0",
            "accepted_at": out("2026-03-05 07:00"),
            "channel": "app",
            "service_id": "svc-chat",
            "event_id": str(backdated["event_id"]),
        },
    ]

    def versions(**params: str) -> list[tuple[str, str, str]]:
        return [
            (r["subject"], r["agreement_id"], r["agreement_version"])
            for r in run(store, "agreement_in_force", **params)
        ]

    # one subject, one agreement
    only_a = versions(at="2026-03-20", subject="subj-a", agreement_id="user-terms")
    assert only_a == [("subj-a", "user-terms", "1.1")]
    # a microsecond before the 1.1 acceptance, 1.0 was in force
    assert versions(at="2026-03-15T09:59:59.999999Z", subject="subj-a") == [
        ("subj-a", "privacy-policy", "3"),
        ("subj-a", "user-terms", "1.0"),
    ]
    # before anything was accepted, and for a subject that never accepted: no row
    assert versions(at="2026-02-28") == []
    assert versions(at="2026-03-20", subject="subj-nobody") == []
    # later, the later acceptances are in force
    assert versions(at="2026-04-02", agreement_id="user-terms") == [
        ("subj-a", "user-terms", "2.0"),
        ("subj-b", "user-terms", "1.0"),
        ("subj-c", "user-terms", "1.1"),
        ("subj-d", "user-terms", "1.0"),
    ]


@pytest.mark.chdb
def test_complaints_overdue(store: Any) -> None:
    k2 = complaint(complaint_id="k2", occurred_at=ts("2026-03-02"))
    k3 = complaint(complaint_id="k3", occurred_at=ts("2026-03-03"), subject="subj-3")
    k3_answered = update(
        k3,
        occurred_at=ts("2026-03-12"),
        complaint_handled_at=ts("2026-03-11"),
        complaint_feedback_at=ts("2026-03-12"),
    )
    k5 = complaint(complaint_id="k5", occurred_at=ts("2026-03-04"))
    rows = [
        complaint(complaint_id="k1", occurred_at=ts("2026-03-01")),
        k2,
        update(k2, occurred_at=ts("2026-03-05"), complaint_feedback_at=ts("2026-03-05")),
        k3,
        k3_answered,
        complaint(complaint_id="k4", occurred_at=ts("2026-03-15")),
        k5,
        update(k5, occurred_at=ts("2026-03-25"), complaint_feedback_at=ts("2026-03-25")),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "complaints_overdue", as_of="2026-03-20")
    assert [(r["complaint_id"], r["late_feedback"], r["days_overdue"]) for r in got] == [
        ("k1", False, 12.0),
        ("k3", True, 2.0),
        ("k5", False, 9.0),  # feedback only on 03-25: still open at 03-20
    ]
    assert got[1] == {
        "complaint_id": "k3",
        "service_id": "svc-chat",
        "case_id": "case-k3",
        "subject": "subj-3",
        "channel": "in_app",
        "received_at": out("2026-03-03"),
        "due_by": out("2026-03-10"),
        "handled_at": out("2026-03-11"),
        "feedback_at": out("2026-03-12"),
        "late_feedback": True,
        "days_overdue": 2.0,
        "event_id": str(k3_answered["event_id"]),
    }
    later = run(store, "complaints_overdue", as_of="2026-04-01")
    assert [(r["complaint_id"], r["late_feedback"], r["days_overdue"]) for r in later] == [
        ("k1", False, 24.0),
        ("k3", True, 2.0),
        ("k5", True, 14.0),
        ("k4", False, 10.0),
    ]


@pytest.mark.chdb
def test_personal_information_requests_open(store: Any) -> None:
    p2 = pi_request(request_id="p2", occurred_at=ts("2026-03-20"), request_kind="access")
    p3 = pi_request(request_id="p3", occurred_at=ts("2026-03-01"))
    p4 = pi_request(request_id="p4", occurred_at=ts("2026-03-02"), subject="subj-4")
    p4_done = update(
        p4, occurred_at=ts("2026-03-20"), status="completed", completed_at=ts("2026-03-20")
    )
    p5 = pi_request(request_id="p5", occurred_at=ts("2026-03-03"))
    rows = [
        pi_request(request_id="p1", occurred_at=ts("2026-03-01")),
        p2,
        update(p2, occurred_at=ts("2026-03-21"), status="in_progress"),
        p3,
        update(p3, occurred_at=ts("2026-03-10"), status="completed", completed_at=ts("2026-03-10")),
        p4,
        update(p4, occurred_at=ts("2026-03-05"), status="in_progress"),
        p4_done,
        p5,
        update(p5, occurred_at=ts("2026-03-19"), status="refused", completed_at=ts("2026-03-19")),
    ]
    insert(store, DATA_HANDLING, rows)
    got = run(store, "personal_information_requests_open", as_of="2026-04-01")
    summary = [(r["request_id"], r["status"], r["open"], r["late"], r["days_late"]) for r in got]
    assert summary == [
        ("p1", "received", True, True, 16.0),
        ("p4", "completed", False, True, 3.0),
        ("p5", "refused", False, True, 1.0),
        ("p2", "in_progress", True, False, 0.0),
    ]
    assert got[1] == {
        "request_id": "p4",
        "service_id": "svc-chat",
        "subject": "subj-4",
        "request_kind": "delete",
        "status": "completed",
        "received_at": out("2026-03-02"),
        "due_at": out("2026-03-17"),
        "completed_at": out("2026-03-20"),
        "open": False,
        "late": True,
        "days_late": 3.0,
        "event_id": str(p4_done["event_id"]),
    }
    # at 03-15 p4 was in progress and not yet due; p3 and p5 were still open and not yet due
    early = run(store, "personal_information_requests_open", as_of="2026-03-15")
    assert [(r["request_id"], r["status"], r["late"]) for r in early] == [
        ("p1", "received", False),
        ("p4", "in_progress", False),
        ("p5", "received", False),
    ]


@pytest.mark.chdb
def test_label_coverage(store: Any) -> None:
    text = {"occurred_at": ts("2026-04-02")}
    image = {
        "occurred_at": ts("2026-04-03"),
        "modality": "image",
        "model_name": "image-model",
        "model_version": "2.1",
    }
    rows = [
        generation(**text),
        generation(**text, implicit_label=False),
        generation(**text, explicit_label=False, implicit_label=False),
        generation(**image),
        generation(**image, explicit_label=False, unlabelled_on_request=True),
        generation(occurred_at=ts("2026-05-01"), explicit_label=False),
        generation(occurred_at=ts("2026-03-31 23:59:59.999999"), explicit_label=False),
    ]
    insert(store, GENERATIONS, rows)
    got = run(store, "label_coverage", **{"from": "2026-04-01", "to": "2026-05-01"})
    assert got == [
        {
            "modality": "image",
            "model_name": "image-model",
            "model_version": "2.1",
            "generations": 2,
            "explicit_labels": 1,
            "explicit_share": 0.5,
            "implicit_labels": 2,
            "implicit_share": 1.0,
            "unlabelled": 0,
            "unlabelled_on_request": 1,
        },
        {
            "modality": "text",
            "model_name": "chat-model",
            "model_version": "1.0",
            "generations": 3,
            "explicit_labels": 2,
            "explicit_share": 0.6667,
            "implicit_labels": 1,
            "implicit_share": 0.3333,
            "unlabelled": 1,
            "unlabelled_on_request": 0,
        },
    ]


@pytest.mark.chdb
def test_generations_without_filing(store: Any) -> None:
    x = {"service_id": "svc-a", "model_name": "model-x", "model_version": "0.1"}
    rows = [
        generation(**x, filing_number=None, subject="s1", occurred_at=ts("2026-04-02")),
        generation(**x, filing_number=None, subject="s2", occurred_at=ts("2026-04-05")),
        generation(**x, filing_number="", subject="s1", occurred_at=ts("2026-04-06")),
        generation(**x, filing_number=None, occurred_at=ts("2026-05-01")),
        generation(
            service_id="svc-b",
            model_name="model-y",
            filing_number="  ",
            occurred_at=ts("2026-04-03"),
        ),
        generation(service_id="svc-a", occurred_at=ts("2026-04-04")),
    ]
    insert(store, GENERATIONS, rows)
    got = run(store, "generations_without_filing", **{"from": "2026-04-01", "to": "2026-05-01"})
    assert got == [
        {
            **x,
            "generations": 3,
            "subjects": 2,
            "first_seen": out("2026-04-02"),
            "last_seen": out("2026-04-06"),
        },
        {
            "service_id": "svc-b",
            "model_name": "model-y",
            "model_version": "1.0",
            "generations": 1,
            "subjects": 1,
            "first_seen": out("2026-04-03"),
            "last_seen": out("2026-04-03"),
        },
    ]


@pytest.mark.chdb
def test_trail_integrity(store: Any) -> None:
    insert(
        store,
        BATCHES,
        [
            batch(sequence=0, event_count=10, created_at=ts("2026-03-01 10:00")),
            batch(sequence=1, event_count=5, created_at=ts("2026-03-01 10:01")),
            batch(sequence=2, event_count=7, created_at=ts("2026-03-01 10:02")),
        ],
    )
    insert(
        store,
        QUARANTINE,
        [
            quarantined(offset=10),
            quarantined(offset=11),
            quarantined(offset=12, reason="chain_gap"),
            quarantined(offset=13, producer_id="producer-2", reason="merkle_root_mismatch"),
            quarantined(offset=14, producer_id=None, reason="not_a_batch"),
        ],
    )
    insert(
        store,
        CHAIN_FINDINGS,
        [finding(offset=12), finding(offset=20, producer_id="producer-3", kind="chain_fork")],
    )
    got = run(store, "trail_integrity")
    empty: dict[str, Any] = {
        "batches": 0,
        "events": 0,
        "last_batch_at": None,
        "last_sequence": None,
        "quarantined": 0,
        "quarantined_by_reason": [],
        "chain_findings": 0,
        "gaps": 0,
        "forks": 0,
        "findings_by_kind": [],
    }
    assert got == [
        {
            **empty,
            "producer_id": "(unknown)",
            "quarantined": 1,
            "quarantined_by_reason": ["not_a_batch: 1"],
        },
        {
            "producer_id": "producer-1",
            "batches": 3,
            "events": 22,
            "last_batch_at": out("2026-03-01 10:02"),
            "last_sequence": 2,
            "quarantined": 3,
            "quarantined_by_reason": ["bad_signature: 2", "chain_gap: 1"],
            "chain_findings": 1,
            "gaps": 1,
            "forks": 0,
            "findings_by_kind": ["chain_gap: 1"],
        },
        {
            **empty,
            "producer_id": "producer-2",
            "quarantined": 1,
            "quarantined_by_reason": ["merkle_root_mismatch: 1"],
        },
        {
            **empty,
            "producer_id": "producer-3",
            "chain_findings": 1,
            "forks": 1,
            "findings_by_kind": ["chain_fork: 1"],
        },
    ]
    window = run(store, "trail_integrity", **{"from": "2026-03-01T10:00:30", "to": "2026-03-02"})
    assert [(r["producer_id"], r["batches"], r["events"], r["quarantined"]) for r in window] == [
        ("producer-1", 2, 12, 0)
    ]


# --------------------------------------------------------------------------------------------
# extra queries


@pytest.mark.chdb
def test_model_version_for_request(store: Any) -> None:
    insert(
        store,
        GENERATIONS,
        [
            generation(request_id="req-42", model_version="2.3", filing_number=None),
            generation(request_id="req-43"),
        ],
    )
    got = run(store, "model_version_for_request", request_id="req-42")
    assert [(r["model_name"], r["model_version"], r["filing_number"]) for r in got] == [
        ("chat-model", "2.3", None)
    ]


@pytest.mark.chdb
def test_safety_evaluations(store: Any) -> None:
    rows = [
        safety_evaluation(model_version="1.0", occurred_at=ts("2026-01-01"), qualified_rate=0.5),
        safety_evaluation(model_version="1.0", occurred_at=ts("2026-02-01")),
        safety_evaluation(model_version="2.0", generated_test_size=999),
        safety_evaluation(model_version="3.0", refusal_rate=0.94, false_refusal_rate=0.06),
    ]
    insert(store, DATA_HANDLING, rows)
    got = run(store, "safety_evaluations", as_of="2026-06-01")
    checks = [
        tuple(
            r[c]
            for c in (
                "model_version",
                "evaluations",
                "qualified_ok",
                "refusal_ok",
                "false_refusal_ok",
                "meets_all",
            )
        )
        for r in got
    ]
    assert checks == [
        ("1.0", 2, True, True, True, True),
        ("2.0", 1, False, True, True, False),
        ("3.0", 1, True, False, False, False),
    ]
    early = run(store, "safety_evaluations", as_of="2026-01-10")
    assert [(r["model_version"], r["qualified_ok"]) for r in early] == [("1.0", False)]


@pytest.mark.chdb
def test_training_data_provenance(store: Any) -> None:
    rows = [
        training_intake(dataset_id="ds-a", occurred_at=ts("2026-01-01")),
        training_intake(
            dataset_id="ds-b",
            occurred_at=ts("2026-01-02"),
            contains_personal_information=True,
            source_kind="user_generated",
        ),
        training_intake(dataset_id="ds-c", model_version="2.0"),
        annotation_check(dataset_id="ds-a", sample_size=100, sampled_accuracy=0.98),
        annotation_check(dataset_id="ds-a", sample_size=300, sampled_accuracy=0.95),
    ]
    insert(store, DATA_HANDLING, rows)
    got = run(store, "training_data_provenance", model_name="chat-model", model_version="1.0")
    assert [
        (
            r["dataset_id"],
            r["personal_information_without_consent"],
            r["annotation_checks"],
            r["annotation_sampled"],
            r["min_sampled_accuracy"],
        )
        for r in got
    ] == [("ds-a", False, 2, 400, 0.95), ("ds-b", True, 0, None, None)]
    every_version = run(store, "training_data_provenance", model_name="chat-model")
    assert [r["dataset_id"] for r in every_version] == ["ds-a", "ds-b", "ds-c"]


# --------------------------------------------------------------------------------------------
# the rest of the domain brief's "what must be answerable"


@pytest.mark.chdb
def test_time_to_action(store: Any) -> None:
    c1 = _case("c1", "A.1.6", "2026-04-02 10:00", None)
    c1_acted = update(c1, occurred_at=ts("2026-04-02 10:01"), acted_at=ts("2026-04-02 10:01"))
    c2 = _case("c2", "A.1.6", "2026-04-03 10:00", 120, model_version="2.0")
    c3 = _case("c3", "A.1.6", "2026-04-04 10:00", None)
    c4 = _case("c4", "A.2.5", "2026-04-05 10:00", 30, subject="subj-4")
    c9 = _case("c9", "A.1.3", "2026-04-06 10:00", 5, service_id="svc-other")
    rows = [
        c1,
        c1_acted,
        c2,
        c3,
        c4,
        c9,
        _case("c5", "A.1.6", "2026-04-05 11:00", 500, action="no_action"),
        _case("c6", "A.1.1", "2026-03-31 23:59:59.999999", 900),
        _case("c8", "A.1.1", "2026-05-01 00:00", 900),
        complaint(occurred_at=ts("2026-04-07"), risk_category="A.1.6"),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    window = {"from": "2026-04-01", "to": "2026-05-01"}
    got = run(store, "time_to_action", **window)
    assert [(r["case_id"], r["seconds_to_action"], r["event_id"]) for r in got] == [
        ("c3", None, str(c3["event_id"])),  # not acted on: first
        ("c2", 120.0, str(c2["event_id"])),
        ("c1", 60.0, str(c1_acted["event_id"])),  # its latest state
        ("c4", 30.0, str(c4["event_id"])),
        ("c9", 5.0, str(c9["event_id"])),
    ]
    assert got[3] == {
        "case_id": "c4",
        "service_id": "svc-chat",
        "risk_category": "A.2.5",
        "action": "block_generation",
        "detection_source": "output_filter",
        "detected_at": out("2026-04-05 10:00"),
        "acted_at": out("2026-04-05 10:00:30"),
        "seconds_to_action": 30.0,
        "model_name": "chat-model",
        "model_version": "1.0",
        "subject": "subj-4",
        "event_id": str(c4["event_id"]),
    }
    slow_a1 = run(store, "time_to_action", **window, category="A.1", min_seconds="60")
    assert [r["case_id"] for r in slow_a1] == ["c3", "c2", "c1"]
    assert [r["case_id"] for r in run(store, "time_to_action", **window, category="A.2.5")] == [
        "c4"
    ]
    # a code is not a prefix of another: A.1.6 is not A.1.60, A.1 is not A.10
    assert run(store, "time_to_action", **window, category="A.1.60") == []
    other = run(store, "time_to_action", **window, service_id="svc-other")
    assert [r["case_id"] for r in other] == ["c9"]
    # the first cases in the same order; 0 lifts the limit
    first = run(store, "time_to_action", **window, limit="2")
    assert [r["case_id"] for r in first] == ["c3", "c2"]
    assert len(run(store, "time_to_action", **window, limit="0")) == 5


@pytest.mark.chdb
def test_rectifications_open(store: Any) -> None:
    t1 = _ticket("case-r1", "RT-1", "2026-03-01", "2026-06-01")
    r3 = _ticket("case-r3", "RT-2", "2026-03-11", "2026-06-10")
    r5 = _ticket("case-r5", "RT-3", "2026-04-15", "2026-07-15", risk_category="A.1.7")
    t4 = _ticket("case-r4", "RT-4", "2026-03-20", "2026-06-20", model_version="2.0")
    t6 = _ticket("case-r6", "RT-6", "2026-06-01", "2026-09-01", service_id="svc-other")
    rows = [
        t1,
        update(t1, occurred_at=ts("2026-05-20"), rectification_closed_at=ts("2026-05-20")),
        _ticket("case-r2", "RT-2", "2026-03-10", "2026-06-10"),
        r3,
        r5,
        t4,
        update(t4, occurred_at=ts("2026-07-05"), rectification_closed_at=ts("2026-07-05")),
        t6,
        _ticket("case-r7", "RT-7", "2026-07-02", "2026-10-02"),  # opened after as_of
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "rectifications_open", as_of="2026-07-01")
    assert got == [
        {
            "ticket": "RT-2",
            "service_id": "svc-chat",
            "case_ids": ["case-r2", "case-r3"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "1.0",
            "opened_at": out("2026-03-11"),
            "due_at": out("2026-06-10"),
            "days_open": 112.0,
            "overdue": True,
            "days_overdue": 21.0,
            "beyond_three_months": True,
            "event_id": str(r3["event_id"]),
        },
        {
            "ticket": "RT-4",
            "service_id": "svc-chat",
            "case_ids": ["case-r4"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "2.0",
            "opened_at": out("2026-03-20"),
            "due_at": out("2026-06-20"),
            "days_open": 103.0,
            "overdue": True,
            "days_overdue": 11.0,
            "beyond_three_months": True,
            "event_id": str(t4["event_id"]),
        },
        {
            "ticket": "RT-3",
            "service_id": "svc-chat",
            "case_ids": ["case-r5"],
            "risk_category": "A.1.7",
            "model_name": "chat-model",
            "model_version": "1.0",
            "opened_at": out("2026-04-15"),
            "due_at": out("2026-07-15"),
            "days_open": 77.0,
            "overdue": False,
            "days_overdue": 0.0,
            "beyond_three_months": False,
            "event_id": str(r5["event_id"]),
        },
        {
            "ticket": "RT-6",
            "service_id": "svc-other",
            "case_ids": ["case-r6"],
            "risk_category": "A.1.6",
            "model_name": "chat-model",
            "model_version": "1.0",
            "opened_at": out("2026-06-01"),
            "due_at": out("2026-09-01"),
            "days_open": 30.0,
            "overdue": False,
            "days_overdue": 0.0,
            "beyond_three_months": False,
            "event_id": str(t6["event_id"]),
        },
    ]
    # RT-4 closed on 07-05; RT-7 opened on 07-02
    later = run(store, "rectifications_open", as_of="2026-07-10", service_id="svc-chat")
    assert [r["ticket"] for r in later] == ["RT-2", "RT-3", "RT-7"]


@pytest.mark.chdb
def test_time_to_feedback(store: Any) -> None:
    def answered(row: dict, at: str) -> dict:
        return update(row, occurred_at=ts(at), complaint_feedback_at=ts(at))

    k2 = complaint(complaint_id="k2", occurred_at=ts("2026-03-02"))
    k3 = complaint(complaint_id="k3", occurred_at=ts("2026-03-03"))
    k4 = complaint(complaint_id="k4", occurred_at=ts("2026-03-10"), complaint_channel="hotline")
    k6 = complaint(complaint_id="k6", occurred_at=ts("2026-02-27"))
    k7 = complaint(complaint_id="k7", occurred_at=ts("2026-03-20"))
    k8 = complaint(
        complaint_id="k8",
        occurred_at=ts("2026-03-05"),
        complaint_channel="hotline",
        service_id="svc-other",
    )
    rows = [
        complaint(complaint_id="k1", occurred_at=ts("2026-03-01")),  # no feedback, past due
        k2,
        answered(k2, "2026-03-05"),  # 72 h, on time
        k3,
        answered(k3, "2026-03-12"),  # 216 h, late
        k4,
        answered(k4, "2026-03-11"),  # 24 h
        complaint(complaint_id="k5", occurred_at=ts("2026-03-28")),  # open, due 04-04
        k6,
        answered(k6, "2026-03-02"),  # received before the window
        k7,
        answered(k7, "2026-04-02"),  # feedback after the window: still open at its end
        k8,
        answered(k8, "2026-03-06"),
    ]
    insert(store, MODERATION_ACTIONS, rows)
    got = run(store, "time_to_feedback", **{"from": "2026-03-01", "to": "2026-04-01"})
    one_on_time = {
        "complaints": 1,
        "feedback_given": 1,
        "feedback_on_time": 1,
        "on_time_share": 1.0,
        "avg_hours_to_feedback": 24.0,
        "p50_hours_to_feedback": 24.0,
        "p95_hours_to_feedback": 24.0,
        "max_hours_to_feedback": 24.0,
        "without_feedback": 0,
        "open_past_due": 0,
    }
    assert got == [
        {"service_id": "svc-chat", "channel": "hotline", **one_on_time},
        {
            "service_id": "svc-chat",
            "channel": "in_app",
            "complaints": 5,
            "feedback_given": 2,
            "feedback_on_time": 1,
            "on_time_share": 0.2,
            "avg_hours_to_feedback": 144.0,
            "p50_hours_to_feedback": 144.0,
            "p95_hours_to_feedback": 208.8,
            "max_hours_to_feedback": 216.0,
            "without_feedback": 3,
            "open_past_due": 2,
        },
        {"service_id": "svc-other", "channel": "hotline", **one_on_time},
    ]
    only_other = run(
        store,
        "time_to_feedback",
        **{"from": "2026-03-01", "to": "2026-04-01", "service_id": "svc-other"},
    )
    assert [(r["service_id"], r["complaints"]) for r in only_other] == [("svc-other", 1)]


@pytest.mark.chdb
def test_minor_mode_usage(store: Any) -> None:
    minor = {"subject": "subj-a", "minor_mode": True}
    rows = [
        generation(**minor, occurred_at=ts("2026-04-02 10:00")),
        generation(**minor, occurred_at=ts("2026-04-02 11:00"), safety_verdict="refused"),
        generation(**minor, occurred_at=ts("2026-04-02 23:59")),
        generation(**minor, occurred_at=ts("2026-04-03 00:30")),
        generation(subject="subj-b", minor_mode=True, occurred_at=ts("2026-04-02 12:00")),
        generation(subject="subj-c", occurred_at=ts("2026-04-04"), safety_verdict="blocked"),
        generation(subject="subj-c", occurred_at=ts("2026-04-05")),
        generation(service_id="svc-api", occurred_at=ts("2026-04-05")),
        generation(service_id="svc-api", occurred_at=ts("2026-04-06")),
        # outside the window
        generation(**minor, occurred_at=ts("2026-05-01")),
        generation(**minor, occurred_at=ts("2026-03-31 23:59:59.999999")),
    ]
    insert(store, GENERATIONS, rows)
    window = {"from": "2026-04-01", "to": "2026-05-01"}
    model = {"model_name": "chat-model", "model_version": "1.0"}
    api = {
        "service_id": "svc-api",
        **model,
        "generations": 2,
        "minor_mode_generations": 0,
        "minor_mode_share": 0.0,
        "minor_mode_subjects": 0,
        "per_subject": 0.0,
        "max_per_subject_day": 0,
        "minor_mode_not_passed": 0,
    }
    assert run(store, "minor_mode_usage", **window) == [
        api,
        {
            "service_id": "svc-chat",
            **model,
            "generations": 7,
            "minor_mode_generations": 5,
            "minor_mode_share": 0.7143,
            "minor_mode_subjects": 2,
            "per_subject": 2.5,
            "max_per_subject_day": 3,
            "minor_mode_not_passed": 1,
        },
    ]
    assert run(store, "minor_mode_usage", **window, service_id="svc-api") == [api]


@pytest.mark.chdb
def test_sanction_history(store: Any) -> None:
    m1 = moderation(subject="subj-h", case_id="case-1", occurred_at=ts("2026-03-01 10:00"))
    m2 = moderation(
        subject="subj-h",
        case_id="case-2",
        risk_category="A.1.7",
        occurred_at=ts("2026-03-02 10:00"),
        acted_at=None,
        reported=True,
        authority="Beijing CAC",
    )
    m3 = moderation(subject="subj-o", case_id="case-3", occurred_at=ts("2026-03-02 11:00"))
    missing = str(uuid.uuid4())
    s1 = sanction(
        sanction_id="san-1",
        subject="subj-h",
        action="warning",
        evidence=[str(m1["event_id"])],
        occurred_at=ts("2026-03-01 12:00"),
    )
    s2 = sanction(
        sanction_id="san-2",
        subject="subj-h",
        evidence=[str(m1["event_id"]).upper(), str(m2["event_id"]), missing],
        restricted_functions=["image_generation"],
        occurred_at=ts("2026-03-03"),
        reported=True,
        authority="Beijing CAC",
    )
    s2_lifted = update(
        s2,
        occurred_at=ts("2026-03-10"),
        action="reinstatement",
        effective_from=ts("2026-03-10"),
        evidence=[],
        restricted_functions=[],
        reported=False,
        authority=None,
    )
    insert(store, MODERATION_ACTIONS, [m1, m2, m3])
    insert(
        store,
        USER_SANCTIONS,
        [s1, s2, s2_lifted, sanction(subject="subj-o", evidence=[str(m3["event_id"])])],
    )
    got = run(store, "sanction_history", subject="subj-h")

    def step(row: dict, detail: str, missing_evidence: list[str]) -> dict:
        return {
            "sanction_id": row["sanction_id"],
            "step_event_id": str(row["event_id"]),
            "role": "step",
            "occurred_at": out(str(row["occurred_at"])[:19]),
            "service_id": "svc-chat",
            "action": row["action"],
            "category": "A.1.6",
            "effective_from": out(str(row["effective_from"])[:19]),
            "effective_until": None,
            "case_id": None,
            "detail": detail,
            "missing_evidence": missing_evidence,
            "event_id": str(row["event_id"]),
        }

    def evidence(of: dict, row: dict, detail: str) -> dict:
        return {
            "sanction_id": of["sanction_id"],
            "step_event_id": str(of["event_id"]),
            "role": "evidence",
            "occurred_at": out(str(row["occurred_at"])[:19]),
            "service_id": "svc-chat",
            "action": "block_generation",
            "category": row["risk_category"],
            "effective_from": None,
            "effective_until": None,
            "case_id": row["case_id"],
            "detail": detail,
            "missing_evidence": [],
            "event_id": str(row["event_id"]),
        }

    m1_detail = (
        "moderation_action on generation req-1, detected 2026-03-01 10:00:00, "
        "acted 2026-03-01 10:00:00"
    )
    m2_detail = (
        "moderation_action on generation req-1, detected 2026-03-02 10:00:00, not yet acted, "
        "reported to Beijing CAC"
    )
    assert got == [
        step(s1, "evidence: 1, records preserved", []),
        evidence(s1, m1, m1_detail),
        step(
            s2,
            "restricts image_generation, evidence: 3, records preserved, reported to Beijing CAC",
            [missing],
        ),
        evidence(s2, m1, m1_detail),
        evidence(s2, m2, m2_detail),
        step(s2_lifted, "evidence: 0, records preserved", []),
    ]
    assert run(store, "sanction_history", subject="nobody") == []


@pytest.mark.chdb
def test_subject_erasure(store: Any) -> None:
    d1 = pi_request(subject="subj-e", request_id="d1", occurred_at=ts("2026-03-01"))
    d1_done = update(
        d1,
        occurred_at=ts("2026-03-10"),
        status="completed",
        completed_at=ts("2026-03-10"),
        outcome="subject key destroyed",
    )
    d3 = pi_request(subject="subj-e", request_id="d3", occurred_at=ts("2026-03-20"))
    hold = legal_hold(hold_target="subj-e", occurred_at=ts("2026-03-12"))
    released = update(hold, occurred_at=ts("2026-03-25"), hold_action="release")
    sealed = moderation(
        subject="subj-e",
        case_id="case-e",
        occurred_at=ts("2026-03-05"),
        sealed_evidence=b"\x01" * 40,
    )
    sealed_later = complaint(
        subject="subj-e",
        complaint_id="k-e",
        occurred_at=ts("2026-03-15"),
        sealed_evidence=b"\x02" * 28,
    )
    insert(
        store,
        DATA_HANDLING,
        [
            d1,
            d1_done,
            d3,
            hold,
            released,
            pi_request(subject="subj-e", request_kind="access", occurred_at=ts("2026-03-02")),
            pi_request(subject="subj-x", occurred_at=ts("2026-03-02")),
            legal_hold(hold_id="hold-2", occurred_at=ts("2026-03-12")),
        ],
    )
    insert(
        store,
        MODERATION_ACTIONS,
        [
            sealed,
            sealed_later,
            moderation(subject="subj-e", occurred_at=ts("2026-03-06")),  # nothing sealed
            moderation(subject="subj-x", occurred_at=ts("2026-03-06"), sealed_evidence=b"\x01"),
        ],
    )
    got = run(store, "subject_erasure", subject="subj-e", as_of="2026-03-31")
    erased = out("2026-03-10")
    assert got == [
        {
            "occurred_at": out("2026-03-05"),
            "record": "sealed_evidence",
            "service_id": "svc-chat",
            "ref": "case-e",
            "status": "moderation_action",
            "detail": "40 sealed bytes",
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(sealed["event_id"]),
        },
        {
            "occurred_at": out("2026-03-10"),
            "record": "delete_request",
            "service_id": "svc-chat",
            "ref": "d1",
            "status": "completed",
            "detail": (
                "received 2026-03-01 00:00:00, due 2026-03-16 00:00:00, "
                "closed 2026-03-10 00:00:00: subject key destroyed"
            ),
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(d1_done["event_id"]),
        },
        {
            "occurred_at": out("2026-03-15"),
            "record": "sealed_evidence",
            "service_id": "svc-chat",
            "ref": "k-e",
            "status": "complaint",
            "detail": "28 sealed bytes",
            "erased_at": erased,
            "after_erasure": True,
            "event_id": str(sealed_later["event_id"]),
        },
        {
            "occurred_at": out("2026-03-20"),
            "record": "delete_request",
            "service_id": "svc-chat",
            "ref": "d3",
            "status": "received",
            "detail": "received 2026-03-20 00:00:00, due 2026-04-04 00:00:00",
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(d3["event_id"]),
        },
        {
            "occurred_at": out("2026-03-25"),
            "record": "legal_hold",
            "service_id": "svc-chat",
            "ref": "hold-1",
            "status": "release",
            "detail": "authority inquiry, requested by Beijing CAC",
            "erased_at": erased,
            "after_erasure": False,
            "event_id": str(released["event_id"]),
        },
    ]
    # before the deletion was completed: the request as received, nothing erased yet
    early = run(store, "subject_erasure", subject="subj-e", as_of="2026-03-09")
    assert [(r["record"], r["status"], r["erased_at"], r["event_id"]) for r in early] == [
        ("delete_request", "received", None, str(d1["event_id"])),
        ("sealed_evidence", "moderation_action", None, str(sealed["event_id"])),
    ]


@pytest.mark.chdb
def test_trail_outages(store: Any) -> None:
    insert(
        store,
        BATCHES,
        [
            batch(sequence=0, created_at=ts("2026-03-01 10:00")),
            batch(sequence=1, created_at=ts("2026-03-01 10:10")),
            batch(sequence=2, created_at=ts("2026-03-01 12:00")),
            batch(sequence=5, created_at=ts("2026-03-01 14:00")),
            batch(sequence=6, created_at=ts("2026-03-01 14:30")),
            batch(sequence=7, created_at=ts("2026-03-02 09:00")),  # after the window
            batch(producer_id="producer-2", sequence=0, created_at=ts("2026-03-01 09:00")),
            batch(producer_id="producer-2", sequence=1, created_at=ts("2026-03-01 09:30")),
        ],
    )
    insert(
        store,
        QUARANTINE,
        [
            quarantined(offset=10, received_at=ts("2026-03-01 11:00")),
            quarantined(offset=11, received_at=ts("2026-03-01 11:02")),
            quarantined(offset=12, received_at=ts("2026-03-01 11:04"), reason="chain_gap"),
            quarantined(offset=13, received_at=ts("2026-03-01 11:20")),
            quarantined(
                offset=14,
                received_at=ts("2026-03-01 11:01"),
                producer_id=None,
                reason="not_a_batch",
            ),
            quarantined(offset=15, received_at=ts("2026-02-28 11:01")),  # before the window
        ],
    )
    insert(
        store,
        CHAIN_FINDINGS,
        [
            finding(expected_sequence=3, got_sequence=5, received_at=ts("2026-03-01 14:00:00.5")),
            finding(offset=9, received_at=ts("2026-03-02")),  # after the window
        ],
    )

    def outage(producer: str, kind: str, start: str, end: str, seconds: float, **kw: Any) -> dict:
        row = {"messages": 0, "missing": 0, "detail": ""} | kw
        return {
            "producer_id": producer,
            "kind": kind,
            "started_at": out(start),
            "ended_at": out(end),
            "seconds": seconds,
            **row,
        }

    p1 = "producer-1"
    first_silence = outage(
        p1,
        "silence",
        "2026-03-01 10:10",
        "2026-03-01 12:00",
        6600.0,
        detail="no batch between sequence 1 and 2",
    )
    second_silence = outage(
        p1,
        "silence",
        "2026-03-01 12:00",
        "2026-03-01 14:00",
        7200.0,
        missing=2,
        detail="no batch between sequence 2 and 5",
    )
    gap = outage(
        p1,
        "chain_gap",
        "2026-03-01 14:00:00.5",
        "2026-03-01 14:00:00.5",
        0.0,
        missing=2,
        detail="sequences 1..2 missing",
    )
    unknown = outage(
        "(unknown)",
        "quarantine_burst",
        "2026-03-01 11:01",
        "2026-03-01 11:01",
        0.0,
        messages=1,
        detail="not_a_batch: 1",
    )
    late_burst = outage(
        p1,
        "quarantine_burst",
        "2026-03-01 11:20",
        "2026-03-01 11:20",
        0.0,
        messages=1,
        detail="bad_signature: 1",
    )
    window = {"from": "2026-03-01", "to": "2026-03-02"}
    assert run(store, "trail_outages", **window) == [
        first_silence,
        outage(
            p1,
            "quarantine_burst",
            "2026-03-01 11:00",
            "2026-03-01 11:04",
            240.0,
            messages=3,
            detail="bad_signature: 2, chain_gap: 1",
        ),
        unknown,
        late_burst,
        second_silence,
        gap,
    ]
    # a longer silence threshold and a shorter burst gap: the burst splits, one silence remains
    strict = run(
        store, "trail_outages", **window, min_silence_seconds="7000", burst_gap_seconds="60"
    )
    assert [(r["producer_id"], r["kind"], r["started_at"], r["messages"]) for r in strict] == [
        (p1, "quarantine_burst", out("2026-03-01 11:00"), 1),
        ("(unknown)", "quarantine_burst", out("2026-03-01 11:01"), 1),
        (p1, "quarantine_burst", out("2026-03-01 11:02"), 1),
        (p1, "quarantine_burst", out("2026-03-01 11:04"), 1),
        (p1, "quarantine_burst", out("2026-03-01 11:20"), 1),
        (p1, "silence", out("2026-03-01 12:00"), 0),
        (p1, "chain_gap", out("2026-03-01 14:00:00.5"), 0),
    ]
