"""Sections on illegal and harmful content: incidents and the time to act (2), reports to the
authority (3).

A moderation case is emitted again each time its state changes (acted on, reported, rectified),
so both sections count each case once, in its latest state among the selected events. Cases a
reviewer closed with ``no_action`` are not incidents.
"""

from __future__ import annotations

from typing import Any

from aigc_audit.consumers.report.model import NONE_FOUND, Chart, Column, Fact, Figure, Section
from aigc_audit.consumers.report.names import (
    category_name,
    category_short,
    risk_name,
    risk_short,
    source_name,
)
from aigc_audit.consumers.report.scope import AS_OF, Scope

CASE_COLUMNS = (
    "case_id, risk_category, action, detection_source, detected_at, acted_at, model_name, "
    "model_version, reported, authority, reported_at, subject, target, target_ref"
)
CATEGORY = (
    "if(isNull(risk_category), 'unclassified', substring(assumeNotNull(risk_category), 1, 3))"
)
CODE = "ifNull(risk_category, 'unclassified')"
ILLEGAL = "(risk_category = 'A.1' OR startsWith(ifNull(risk_category, ''), 'A.1.'))"
"""TC260-003 category A.1: content the law prohibits (Art. 4(1)), which must be reported."""
UNREPORTED = f"NOT (reported AND ifNull(reported_at <= {AS_OF}, true))"
MODEL = (
    "if(isNull(model_name), '(unknown model)', "
    "concat(assumeNotNull(model_name), ' ', ifNull(model_version, '?')))"
)
TOTAL = "all"


def incidents_sql(scope: Scope) -> str:
    """Each selected moderation case in its latest state, other than no_action."""
    cases = scope.latest(
        "moderation_actions", "case_id", "event_type = 'moderation_action'", CASE_COLUMNS
    )
    return f"SELECT * FROM ({cases}) WHERE action != 'no_action'"


def _time_to_action(scope: Scope, incidents: str) -> list[tuple[Any, ...]]:
    rows = scope.rows(
        f"SELECT category, count() AS cases, countIf(isNull(acted_at)) AS not_acted, "
        f"quantileExactInclusiveIf(0.5)(secs, isNotNull(secs)) AS p50, "
        f"quantileExactInclusiveIf(0.9)(secs, isNotNull(secs)) AS p90, max(secs) AS slowest "
        f"FROM (SELECT {CATEGORY} AS category, acted_at, "
        f"dateDiff('microsecond', detected_at, acted_at) / 1e6 AS secs FROM ({incidents})) "
        f"GROUP BY ROLLUP(category) ORDER BY category = '', category"
    )
    named = []
    for category, cases, not_acted, p50, p90, slowest in rows:
        if not cases:
            continue
        label = "全部 · all categories" if category == "" else category_name(category)
        short = "全部 all" if category == "" else category_short(category)
        named.append((category or TOTAL, label, short, cases, not_acted, p50, p90, slowest))
    return named


def incidents(scope: Scope) -> Section:
    """2. Incidents per TC260-003 risk category and model, and detection-to-action times."""
    sql = incidents_sql(scope)
    by_code = [
        (code, risk_name(code), risk_short(code), cases, not_acted, illegal)
        for code, cases, not_acted, illegal in scope.rows(
            f"SELECT {CODE} AS code, count() AS cases, countIf(isNull(acted_at)) AS not_acted, "
            f"countIf({ILLEGAL}) AS illegal FROM ({sql}) GROUP BY code ORDER BY code"
        )
    ]
    timing = _time_to_action(scope, sql)
    by_model = scope.rows(
        f"SELECT {MODEL} AS model, count() AS cases, countIf({ILLEGAL}) AS illegal, "
        f"countIf(isNull(acted_at)) AS not_acted FROM ({sql}) "
        f"GROUP BY model ORDER BY cases DESC, model"
    )
    by_source = [
        (source, source_name(source), cases)
        for source, cases in scope.rows(
            f"SELECT toString(detection_source) AS source, count() AS cases FROM ({sql}) "
            f"GROUP BY source ORDER BY cases DESC, source"
        )
    ]
    cases = Column("cases", "事件数 · Incidents", "int")
    not_acted = Column("not_acted", "尚未处置 · Not yet acted on", "int", "bad")
    figures = [
        Figure(
            "by_risk",
            "按风险类别 (TC260-003 附录A) · By risk (TC260-003 Appendix A)",
            (
                Column("code", "编码 · Code"),
                Column("name", "风险 · Risk"),
                Column("short", "简称 · Short name"),
                cases,
                not_acted,
                Column("illegal", "违法内容 (A.1) · Illegal content (A.1)", "int"),
            ),
            by_code,
            Chart("bar", "short", ("cases",)),
        ),
        Figure(
            "time_to_action",
            "从发现到处置的时间 · Time from detection to action",
            (
                Column("category", "类别编码 · Category"),
                Column("name", "类别 · Category name"),
                Column("short", "简称 · Short name"),
                cases,
                not_acted,
                Column("p50", "中位数 · p50", "seconds"),
                Column("p90", "90分位 · p90", "seconds"),
                Column("max", "最长 · max", "seconds"),
            ),
            timing,
            Chart("bar", "short", ("p50", "p90")),
            note="时间为处置时间减发现时间；未处置的事件不计入分位数。 · Time is acted_at minus "
            "detected_at; incidents not yet acted on are left out of the percentiles.",
        ),
        Figure(
            "by_model",
            "按模型版本 · By model version",
            (
                Column("model", "模型 · Model and version"),
                cases,
                Column("illegal", "违法内容 (A.1) · Illegal content (A.1)", "int"),
                not_acted,
            ),
            by_model,
            Chart("bar", "model", ("cases",)),
        ),
        Figure(
            "by_source",
            "按发现途径 · By detection source",
            (Column("source", "途径代码 · Source"), Column("name", "途径 · Name"), cases),
            by_source,
            Chart("bar", "name", ("cases",)),
        ),
        _rectifications(scope),
    ]
    section = Section(
        "incidents",
        2,
        "违法不良信息处置",
        "Incidents and time to action",
        "Art. 4(1)-(2), 14 ¶1; Draft 4, 12, 13, 15",
        figures,
    )
    total = sum(int(r[3]) for r in by_code)
    if not total:
        return section
    pending = sum(int(r[4]) for r in by_code)
    overall = next((r for r in timing if r[0] == TOTAL), None)
    section.facts = [
        Fact("incidents", "事件数 · Incidents", total),
        Fact("illegal", "违法内容 (A.1) · Illegal content (A.1)", sum(int(r[5]) for r in by_code)),
        Fact(
            "not_acted", "尚未处置 · Not yet acted on", pending, tone="bad" if pending else "good"
        ),
        Fact(
            "p90_seconds",
            "处置用时 p90 · Time to action p90",
            overall[6] if overall else None,
            "seconds",
        ),
    ]
    if pending:
        section.findings.append(
            f"{pending} 起事件已发现但尚未处置 · {pending} incidents detected but not yet acted on."
        )
    overdue = sum(int(r[-1]) for r in section.figure("rectifications").rows)
    if overdue:
        section.findings.append(
            f"{overdue} 项模型整改已过期限仍未完成 · {overdue} model rectifications are past "
            "their due date and still open."
        )
    return section


def _rectifications(scope: Scope) -> Figure:
    tickets = scope.latest(
        "moderation_actions",
        "rectification_ticket",
        "isNotNull(rectification_ticket)",
        "rectification_ticket, model_name, model_version, rectification_due_at AS due, "
        "rectification_closed_at AS closed_at",
    )
    rows = scope.rows(
        f"SELECT {MODEL} AS model, count() AS tickets, "
        f"countIf(isNotNull(closed_at) AND (isNull(due) OR closed_at <= due)) AS on_time, "
        f"countIf(isNotNull(closed_at) AND closed_at > due) AS late, "
        f"countIf(isNull(closed_at) AND NOT ifNull(due < {AS_OF}, false)) AS open, "
        f"countIf(isNull(closed_at) AND ifNull(due < {AS_OF}, false)) AS overdue "
        f"FROM ({tickets}) GROUP BY model ORDER BY overdue DESC, tickets DESC, model"
    )
    return Figure(
        "rectifications",
        "模型整改单 · Model rectification tickets",
        (
            Column("model", "模型 · Model and version"),
            Column("tickets", "整改单 · Tickets", "int"),
            Column("on_time", "按期完成 · Closed on time", "int", "good"),
            Column("late", "逾期完成 · Closed late", "int", "warn"),
            Column("open", "进行中 · Open, not yet due", "int", "neutral"),
            Column("overdue", "逾期未完成 · Open past due", "int", "bad"),
        ),
        rows,
        Chart("stacked", "model", ("on_time", "late", "open", "overdue")),
        note="整改期限按草案第15条（三个月）为可选政策。 · The due date follows the provider's "
        "policy (Draft 15: three months, optional).",
        empty=NONE_FOUND,
    )


def reports(scope: Scope) -> Section:
    """3. Incidents reported to the authority and not, per category and authority."""
    sql = incidents_sql(scope)
    by_category = [
        (category, category_short(category), cases, cases - unreported, unreported, p50, slowest)
        for category, cases, unreported, p50, slowest in scope.rows(
            f"SELECT {CATEGORY} AS category, count() AS cases, countIf({UNREPORTED}) AS open, "
            f"quantileExactInclusiveIf(0.5)(hours, NOT {UNREPORTED}) AS p50, "
            f"maxIf(hours, NOT {UNREPORTED}) AS slowest FROM (SELECT *, dateDiff('microsecond', "
            f"detected_at, reported_at) / 3.6e9 AS hours FROM ({sql})) "
            f"GROUP BY category ORDER BY category"
        )
    ]
    sanctions = scope.table("user_sanctions")
    by_authority = scope.rows(
        f"SELECT if(authority = '', '(未注明 unnamed)', authority) AS name, "
        f"countIf(kind = 'case') AS cases, countIf(kind = 'sanction') AS sanctions, "
        f"count() AS total FROM ("
        f"SELECT ifNull(authority, '') AS authority, 'case' AS kind FROM ({sql}) "
        f"WHERE NOT {UNREPORTED} UNION ALL "
        f"SELECT ifNull(authority, '') AS authority, 'sanction' AS kind FROM {sanctions} "
        f"WHERE reported AND {scope.selected('user_sanctions')}) "
        f"GROUP BY name ORDER BY total DESC, name"
    )
    unreported = [
        (case_id, code, risk_short(code), detected, hours, model, action, source_name(src))
        for case_id, code, detected, hours, model, action, src in scope.rows(
            f"SELECT case_id, {CODE} AS code, detected_at, "
            f"dateDiff('microsecond', detected_at, {AS_OF}) / 3.6e9 AS hours, {MODEL} AS model, "
            f"toString(action), toString(detection_source) FROM ({sql}) "
            f"WHERE {ILLEGAL} AND {UNREPORTED} ORDER BY detected_at, case_id LIMIT 25"
        )
    ]
    open_total, oldest = scope.one(
        f"SELECT count(), max(dateDiff('microsecond', detected_at, {AS_OF}) / 3.6e9) "
        f"FROM ({sql}) WHERE {ILLEGAL} AND {UNREPORTED}"
    )
    figures = [
        Figure(
            "by_category",
            "按风险类别的报告情况 · Reported or not, by risk category",
            (
                Column("category", "类别编码 · Category"),
                Column("name", "类别 · Category name"),
                Column("cases", "事件数 · Incidents", "int"),
                Column("reported", "已报告 · Reported", "int", "good"),
                Column("unreported", "未报告 · Not reported", "int", "warn"),
                Column("p50_hours", "报告用时中位数 · Median time to report", "hours"),
                Column("max_hours", "最长报告用时 · Longest time to report", "hours"),
            ),
            by_category,
            Chart("stacked", "name", ("reported", "unreported")),
            note="须报告的是违法内容 (A.1)；其他类别的报告为自愿。 · Illegal content (A.1) must be "
            "reported; reports in other categories are voluntary.",
        ),
        Figure(
            "by_authority",
            "按主管部门 · By authority",
            (
                Column("authority", "主管部门 · Authority"),
                Column("cases", "内容事件 · Incidents", "int"),
                Column("sanctions", "用户处置 · Sanctions", "int"),
                Column("total", "合计 · Total", "int"),
            ),
            by_authority,
            Chart("stacked", "authority", ("cases", "sanctions")),
            empty="未向主管部门报告 · Nothing reported to an authority",
        ),
        Figure(
            "unreported",
            "尚未报告的违法内容事件（最早的25起） · Illegal-content incidents not yet reported "
            "(oldest 25)",
            (
                Column("case_id", "案件 · Case"),
                Column("code", "编码 · Code"),
                Column("risk", "风险 · Risk"),
                Column("detected_at", "发现时间 · Detected at", "datetime"),
                Column("hours", "距今 · Age at judging time", "hours", "bad"),
                Column("model", "模型 · Model"),
                Column("action", "处置 · Action"),
                Column("source", "发现途径 · Source"),
            ),
            unreported,
            empty=NONE_FOUND,
        ),
    ]
    section = Section(
        "reports",
        3,
        "向主管部门报告",
        "Reports to the authority",
        "Art. 14 ¶1, 14 ¶2; Draft 13",
        figures,
    )
    if not by_category and not by_authority:
        return section
    illegal = sum(int(r[2]) for r in by_category if r[0] == "A.1")
    section.facts = [
        Fact("illegal", "违法内容事件 · Illegal-content incidents", illegal),
        Fact("illegal_reported", "已报告 · Reported", illegal - int(open_total)),
        Fact(
            "illegal_unreported",
            "未报告 · Not reported",
            int(open_total),
            tone="bad" if open_total else "good",
        ),
        Fact(
            "oldest_unreported_hours",
            "最早未报告距今 · Oldest unreported",
            oldest if open_total else None,
            "hours",
        ),
    ]
    if open_total:
        section.findings.append(
            f"{open_total} 起违法内容事件尚未向主管部门报告 · {open_total} illegal-content "
            "incidents have not been reported to the authority."
        )
    return section
