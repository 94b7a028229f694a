"""The query pack itself: it holds the queries the domain brief asks for, each under its article,
and parse_query reads a query file's header and placeholders or refuses it in one line."""

from __future__ import annotations

import pytest

from aigc_audit.consumers.query.pack import (
    PLACEHOLDER_TYPES,
    QueryPackError,
    UnknownQueryError,
    get_query,
    parse_query,
    placeholders,
)
from tests.query_pack_fixtures import (
    AGGREGATES,
    BODY,
    EXTRAS,
    HEADER,
    PACK,
    PER_EVENT,
    REQUIRED,
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
