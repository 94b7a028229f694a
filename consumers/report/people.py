"""Sections on users and the public: sanctions with their evidence (4), complaints and
personal-information requests against their deadlines (5).

Sanctions are counted per step (each recorded measure). Complaints and requests are emitted
again at each change of state, so each counts once, in its latest state among the selected
events; "past due" is judged at the report's judging time.
"""

from __future__ import annotations

from typing import Any

from aigc_audit.consumers.report.model import NONE_FOUND, Chart, Column, Fact, Figure, Section
from aigc_audit.consumers.report.names import (
    SANCTIONS,
    request_kind_name,
    risk_short,
    sanction_name,
)
from aigc_audit.consumers.report.scope import AS_OF, Scope

LADDER = list(SANCTIONS)
"""Sanction steps in the order of the ladder (warning … termination, then reinstatement)."""


def _by_action(scope: Scope) -> list[tuple[Any, ...]]:
    table, selected = scope.table("user_sanctions"), scope.selected("user_sanctions")
    rows = scope.rows(
        f"SELECT toString(action) AS action, count() AS steps, uniqExact(subject) AS subjects, "
        f"countIf(action != 'reinstatement' AND notEmpty(evidence)) AS with_evidence, "
        f"countIf(action != 'reinstatement' AND empty(evidence)) AS without_evidence, "
        f"countIf(action = 'reinstatement') AS not_required, "
        f"sum(length(evidence)) AS evidence_ids, countIf(reported) AS reported, "
        f"countIf(NOT records_preserved) AS not_preserved FROM {table} WHERE {selected} "
        f"GROUP BY action ORDER BY indexOf({{rep_ladder:Array(String)}}, action) = 0, "
        f"indexOf({{rep_ladder:Array(String)}}, action), action",
        {"rep_ladder": LADDER},
    )
    # Evidence ids that name no moderation action anywhere in the log (not only the selection).
    missing = dict(
        scope.rows(
            f"SELECT toString(action) AS action, countIf(isNull(toUUIDOrNull(e)) OR "
            f"toUUIDOrZero(e) NOT IN (SELECT event_id FROM {scope.table('moderation_actions')})) "
            f"FROM {table} ARRAY JOIN evidence AS e WHERE {selected} GROUP BY action"
        )
    )
    return [
        (action, sanction_name(action), *rest[:6], missing.get(action, 0), *rest[6:])
        for action, *rest in rows
    ]


def sanctions(scope: Scope) -> Section:
    """4. User sanctions by action and reason, the evidence behind each, and reports."""
    table, selected = scope.table("user_sanctions"), scope.selected("user_sanctions")
    by_action = _by_action(scope)
    by_reason = [
        (code, risk_short(code), steps, subjects, reported)
        for code, steps, subjects, reported in scope.rows(
            f"SELECT toString(reason_category) AS code, count() AS steps, "
            f"uniqExact(subject) AS subjects, countIf(reported) AS reported FROM {table} "
            f"WHERE {selected} GROUP BY code ORDER BY steps DESC, code"
        )
    ]
    no_evidence = scope.rows(
        f"SELECT sanction_id, subject, toString(action), toString(reason_category), "
        f"effective_from, toString(service_id) FROM {table} WHERE {selected} "
        f"AND action != 'reinstatement' AND empty(evidence) "
        f"ORDER BY effective_from, sanction_id LIMIT 25"
    )
    steps = Column("steps", "处置次数 · Steps", "int")
    subjects = Column("subjects", "用户数 · Subjects", "int")
    reported = Column("reported", "已报告 · Reported", "int")
    figures = [
        Figure(
            "by_action",
            "按处置措施及其证据 · By measure, with its evidence",
            (
                Column("action", "措施代码 · Measure"),
                Column("name", "措施 · Name"),
                steps,
                subjects,
                Column("with_evidence", "有证据 · With evidence", "int", "good"),
                Column("without_evidence", "无证据 · Without evidence", "int", "bad"),
                Column("not_required", "无需证据(恢复) · Not required", "int", "neutral"),
                Column("evidence_ids", "证据条数 · Evidence ids", "int"),
                Column(
                    "evidence_unresolved", "日志中找不到的证据 · Ids not in the log", "int", "bad"
                ),
                reported,
                Column("not_preserved", "未保存记录 · Records not preserved", "int", "bad"),
            ),
            by_action,
            Chart("stacked", "name", ("with_evidence", "without_evidence", "not_required")),
            note="证据为内容处置事件的编号；无法在日志中找到的编号单独列出。 · Evidence is the ids "
            "of moderation actions; ids that match no moderation action in the log are counted.",
        ),
        Figure(
            "by_reason",
            "按原因 (风险类别) · By reason (risk category)",
            (
                Column("code", "编码 · Code"),
                Column("name", "风险 · Risk"),
                steps,
                subjects,
                reported,
            ),
            by_reason,
            Chart("bar", "name", ("steps",)),
        ),
        Figure(
            "without_evidence",
            "无证据的处置（最早的25项） · Sanctions without evidence (oldest 25)",
            (
                Column("sanction_id", "处置编号 · Sanction"),
                Column("subject", "用户 · Subject"),
                Column("action", "措施 · Measure"),
                Column("reason", "原因 · Reason"),
                Column("effective_from", "生效时间 · Effective from", "datetime"),
                Column("service", "服务 · Service"),
            ),
            no_evidence,
            empty=NONE_FOUND,
        ),
    ]
    section = Section(
        "sanctions",
        4,
        "用户违法行为处置",
        "User sanctions and their evidence",
        "Art. 14 ¶2; Draft 19",
        figures,
    )
    if not by_action:
        return section
    missing = sum(int(r[5]) for r in by_action)
    unresolved = sum(int(r[8]) for r in by_action)
    section.facts = [
        Fact("steps", "处置次数 · Sanction steps", sum(int(r[2]) for r in by_action)),
        Fact(
            "without_evidence",
            "无证据 · Without evidence",
            missing,
            tone="bad" if missing else "good",
        ),
        Fact(
            "evidence_unresolved",
            "证据无法追溯 · Evidence ids not in the log",
            unresolved,
            tone="bad" if unresolved else "good",
        ),
        Fact("reported", "已报告 · Reported to the authority", sum(int(r[9]) for r in by_action)),
    ]
    if missing:
        section.findings.append(
            f"{missing} 项处置未记录证据 · {missing} sanction steps record no evidence."
        )
    if unresolved:
        section.findings.append(
            f"{unresolved} 条证据编号在日志中找不到对应的内容处置 · {unresolved} evidence ids "
            "match no moderation action in the log."
        )
    return section


STATES = (
    Column("on_time", "按期 · On time", "int", "good"),
    Column("late", "逾期完成 · Late", "int", "warn"),
    Column("open", "未到期 · Open, not yet due", "int", "neutral"),
    Column("overdue", "逾期未办 · Open past due", "int", "bad"),
)
STATE_KEYS = tuple(c.key for c in STATES)


def _complaints(scope: Scope) -> list[tuple[Any, ...]]:
    latest = scope.latest(
        "moderation_actions",
        "complaint_id",
        "event_type = 'complaint' AND isNotNull(complaint_id)",
        "complaint_id, complaint_channel AS channel, complaint_received_at AS received, "
        "complaint_due_by AS due, complaint_feedback_at AS feedback",
    )
    return scope.rows(
        f"SELECT ifNull(channel, '(none)') AS ch, count() AS complaints, "
        f"countIf(isNotNull(feedback) AND NOT ifNull(feedback > due, false)) AS on_time, "
        f"countIf(isNotNull(feedback) AND ifNull(feedback > due, false)) AS late, "
        f"countIf(isNull(feedback) AND NOT ifNull(due < {AS_OF}, false)) AS open, "
        f"countIf(isNull(feedback) AND ifNull(due < {AS_OF}, false)) AS overdue, "
        f"quantileExactInclusiveIf(0.5)(hours, isNotNull(hours)) AS p50, "
        f"quantileExactInclusiveIf(0.9)(hours, isNotNull(hours)) AS p90, max(hours) AS slowest "
        f"FROM (SELECT *, dateDiff('microsecond', received, feedback) / 3.6e9 AS hours "
        f"FROM ({latest})) GROUP BY ch ORDER BY complaints DESC, ch"
    )


def _requests(scope: Scope) -> list[tuple[Any, ...]]:
    latest = scope.latest(
        "data_handling",
        "request_id",
        "event_type = 'personal_information_request' AND isNotNull(request_id)",
        "request_id, request_kind, status, received_at, due_at, completed_at",
    )
    rows = scope.rows(
        f"SELECT ifNull(request_kind, '') AS kind, count() AS requests, "
        f"countIf(closed AND NOT ifNull(completed_at > due_at, false)) AS on_time, "
        f"countIf(closed AND ifNull(completed_at > due_at, false)) AS late, "
        f"countIf(NOT closed AND NOT ifNull(due_at < {AS_OF}, false)) AS open, "
        f"countIf(NOT closed AND ifNull(due_at < {AS_OF}, false)) AS overdue, "
        f"countIf(status = 'refused') AS refused, "
        f"quantileExactInclusiveIf(0.5)(days, closed AND isNotNull(days)) AS p50, "
        f"maxIf(days, closed AND isNotNull(days)) AS slowest "
        f"FROM (SELECT *, ifNull(status, '') IN ('completed', 'refused') AS closed, "
        f"dateDiff('microsecond', received_at, completed_at) / 8.64e10 AS days "
        f"FROM ({latest})) GROUP BY kind ORDER BY requests DESC, kind"
    )
    return [(kind, request_kind_name(kind), *rest) for kind, *rest in rows]


def _overdue(scope: Scope) -> list[tuple[Any, ...]]:
    complaints = scope.latest(
        "moderation_actions",
        "complaint_id",
        "event_type = 'complaint' AND isNotNull(complaint_id)",
        "complaint_id AS ref, complaint_received_at AS received, complaint_due_by AS due, "
        "complaint_feedback_at AS done, toString(service_id) AS service",
    )
    requests = scope.latest(
        "data_handling",
        "request_id",
        "event_type = 'personal_information_request' AND isNotNull(request_id)",
        "request_id AS ref, received_at AS received, due_at AS due, "
        "if(ifNull(status, '') IN ('completed', 'refused'), "
        "ifNull(completed_at, occurred_at), NULL) AS done, toString(service_id) AS service",
    )
    return scope.rows(
        f"SELECT kind, ref, received, due, "
        f"dateDiff('microsecond', assumeNotNull(due), {AS_OF}) / 8.64e10 AS days, service FROM ("
        f"SELECT '投诉 complaint' AS kind, * FROM ({complaints}) UNION ALL "
        f"SELECT '个人信息请求 PI request' AS kind, * FROM ({requests})) "
        f"WHERE isNull(done) AND due < {AS_OF} ORDER BY due, ref LIMIT 25"
    )


def deadlines(scope: Scope) -> Section:
    """5. Complaints (Art. 15) and personal-information requests (Art. 11) against deadlines."""
    complaints = _complaints(scope)
    requests = _requests(scope)
    figures = [
        Figure(
            "complaints",
            "投诉举报的处理时限 · Complaints against their feedback deadline",
            (
                Column("channel", "渠道 · Channel"),
                Column("complaints", "投诉数 · Complaints", "int"),
                *STATES,
                Column("p50_hours", "反馈用时中位数 · Median time to feedback", "hours"),
                Column("p90_hours", "反馈用时 p90 · p90 time to feedback", "hours"),
                Column("max_hours", "最长 · Longest", "hours"),
            ),
            complaints,
            Chart("stacked", "channel", STATE_KEYS),
        ),
        Figure(
            "requests",
            "个人信息权利请求的处理时限 · Personal-information requests against their deadline",
            (
                Column("kind", "类型代码 · Kind"),
                Column("name", "类型 · Request"),
                Column("requests", "请求数 · Requests", "int"),
                *STATES,
                Column("refused", "拒绝 · Refused", "int"),
                Column("p50_days", "办结用时中位数 · Median time to close", "days"),
                Column("max_days", "最长 · Longest", "days"),
            ),
            requests,
            Chart("stacked", "name", STATE_KEYS),
            note="默认期限为15个工作日，除非提供者公布了更短的期限。 · The default deadline is 15 "
            "working days unless the provider publishes a shorter one.",
        ),
        Figure(
            "overdue",
            "逾期未办（最早的25项） · Open past their deadline (oldest 25)",
            (
                Column("kind", "类别 · Kind"),
                Column("ref", "编号 · Id"),
                Column("received", "收到时间 · Received", "datetime"),
                Column("due", "期限 · Due", "datetime"),
                Column("days", "逾期 · Overdue by", "days", "bad"),
                Column("service", "服务 · Service"),
            ),
            _overdue(scope) if complaints or requests else [],
            empty=NONE_FOUND,
        ),
    ]
    section = Section(
        "deadlines",
        5,
        "投诉举报与个人信息请求",
        "Complaints and personal-information requests",
        "Art. 15, 11; Draft 13, 11",
        figures,
    )
    if not complaints and not requests:
        return section
    c_overdue = sum(int(r[5]) for r in complaints)
    r_overdue = sum(int(r[6]) for r in requests)
    late = sum(int(r[3]) for r in complaints) + sum(int(r[4]) for r in requests)
    section.facts = [
        Fact("complaints", "投诉数 · Complaints", sum(int(r[1]) for r in complaints)),
        Fact(
            "complaints_overdue",
            "投诉逾期未反馈 · Complaints past due",
            c_overdue,
            tone="bad" if c_overdue else "good",
        ),
        Fact("requests", "个人信息请求 · PI requests", sum(int(r[2]) for r in requests)),
        Fact(
            "requests_overdue",
            "请求逾期未办 · Requests past due",
            r_overdue,
            tone="bad" if r_overdue else "good",
        ),
        Fact("closed_late", "逾期办结 · Closed late", late, tone="warn" if late else None),
    ]
    if c_overdue or r_overdue:
        section.findings.append(
            f"{c_overdue} 件投诉、{r_overdue} 项个人信息请求已过期限仍未办结 · {c_overdue} "
            f"complaints and {r_overdue} personal-information requests are open past their "
            "deadline."
        )
    return section
