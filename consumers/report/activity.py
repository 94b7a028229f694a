"""Sections on what the service generated: volumes (1), labels (6), algorithm filing (7).

All three read one aggregate pass over the selected ``generations`` (:func:`generation_stats`,
GROUPING SETS in the store); Python only picks columns and adds display names. The events
timeline of section 1 reads ``events`` itself.
"""

from __future__ import annotations

from typing import Any

from aigc_audit.consumers.report.model import Chart, Column, Fact, Figure, Section
from aigc_audit.consumers.report.names import modality_name
from aigc_audit.consumers.report.scope import Scope, period_bucket

MEDIA = ("image", "video", "audio")
"""Modalities whose output must carry labels (Art. 12; Labelling Measures, GB 45438-2025)."""

UNFILED = "(isNull(filing_number) OR trimBoth(ifNull(filing_number, '')) = '')"
MODEL = "concat(toString(model_name), ' ', toString(model_version))"
FAMILY_COLUMNS = (
    ("generations", "aigc.audit.Generation", "生成 · generations"),
    ("moderation", "aigc.audit.ModerationAction", "处置与投诉 · moderation"),
    ("sanctions", "aigc.audit.UserSanction", "用户处置 · sanctions"),
    ("data_handling", "aigc.audit.DataHandling", "数据处理 · data handling"),
)
GROUPINGS = ("service", "model", "modality", "all")

STATS_SQL = """
SELECT
    multiIf(grouping(service) = 0, 'service', grouping(model) = 0, 'model',
            grouping(modality) = 0, 'modality', 'all') AS grouping_set,
    multiIf(grouping_set = 'service', service, grouping_set = 'model', model,
            grouping_set = 'modality', modality, '') AS key,
    count() AS generations,
    uniqExact(cityHash64(subject)) AS subjects,
    countIf(minor_mode) AS minor_mode,
    countIf(safety_verdict IN ('refused', 'blocked')) AS stopped,
    countIf(safety_verdict != 'passed') AS not_passed,
    countIf(channel = 'api') AS via_api,
    countIf(explicit_label AND implicit_label) AS both_labels,
    countIf(explicit_label AND NOT implicit_label) AS explicit_only,
    countIf(NOT explicit_label AND implicit_label) AS implicit_only,
    countIf(NOT explicit_label AND NOT implicit_label) AS neither,
    countIf(explicit_label) / count() AS explicit_share,
    countIf(implicit_label) / count() AS implicit_share,
    countIf(unlabelled_on_request) AS on_request,
    countIf(modality IN {{rep_media:Array(String)}}
            AND (NOT implicit_label OR (NOT explicit_label AND NOT unlabelled_on_request))) AS gaps,
    countIf(NOT unfiled) AS filed,
    countIf(unfiled) AS unfiled_count,
    uniqExactIf(cityHash64(subject), unfiled) AS unfiled_subjects,
    arrayStringConcat(arraySort(groupUniqArrayIf(filing, NOT unfiled)), ', ') AS numbers,
    arrayStringConcat(arraySort(groupUniqArray(service)), ', ') AS services,
    if(unfiled_count > 0, minIf(occurred_at, unfiled), NULL) AS first_unfiled,
    if(unfiled_count > 0, maxIf(occurred_at, unfiled), NULL) AS last_unfiled
FROM
(
    SELECT toString(service_id) AS service, {model} AS model, toString(modality) AS modality,
           subject, minor_mode, safety_verdict, channel, explicit_label, implicit_label,
           unlabelled_on_request, {unfiled} AS unfiled, ifNull(filing_number, '') AS filing,
           occurred_at
    FROM {table}
    WHERE {selected}
)
GROUP BY GROUPING SETS ((service), (model), (modality), ())
ORDER BY grouping_set, generations DESC, key
"""


def generation_stats(scope: Scope) -> dict[str, list[dict[str, Any]]]:
    """One pass over the selected generations, grouped by service, by model version, by
    modality and overall (``GROUPING SETS``): every count that sections 1, 6 and 7 show.

    Distinct subjects are counted by their 64-bit hash, which is over twice as fast as by the
    string; two of a million subjects collide with odds of about one in thirty million.

    Returns the rows of each grouping (``service``, ``model``, ``modality``, ``all``) as dicts,
    largest first, the grouping's value under ``key``; memoised on the scope.
    """
    if "generations" not in scope.cache:
        sql = STATS_SQL.format(
            model=MODEL,
            unfiled=UNFILED,
            table=scope.table("generations"),
            selected=scope.selected("generations"),
        )
        stats: dict[str, list[dict[str, Any]]] = {name: [] for name in GROUPINGS}
        for record in scope.records(sql, {"rep_media": list(MEDIA)}):
            if record["generations"]:
                stats[record["grouping_set"]].append(record)
        scope.cache["generations"] = stats
    cached: dict[str, list[dict[str, Any]]] = scope.cache["generations"]  # the stats above
    return cached


def pick(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """The values of ``keys`` from each record, as table rows."""
    return [tuple(row[k] for k in keys) for row in rows]


def _timeline(scope: Scope) -> Figure:
    """Selected events per day (per week or month over long periods), by family, gaps filled
    with zero so that an outage of the trail shows as a hole."""
    span, count = scope.one(
        f"SELECT dateDiff('day', min(occurred_at), max(occurred_at)), count() "
        f"FROM {scope.table('events')} WHERE {scope.events_where}"
    )
    bucket, step, zh, en = period_bucket(span, "occurred_at")
    counts = ", ".join(f"countIf(family = '{full}') AS {key}" for key, full, _ in FAMILY_COLUMNS)
    rows = (
        scope.rows(
            f"SELECT {bucket} AS period, {counts}, count() AS total "
            f"FROM {scope.table('events')} WHERE {scope.events_where} "
            f"GROUP BY period ORDER BY period WITH FILL STEP {step}"
        )
        if count
        else []
    )
    columns = (
        Column("period", "时段 · Period (UTC)"),
        *(Column(key, label, "int") for key, _, label in FAMILY_COLUMNS),
        Column("total", "合计 · Total", "int"),
    )
    chart = Chart("columns", "period", tuple(key for key, _, _ in FAMILY_COLUMNS))
    return Figure("events_per_period", f"{zh}事件数 · Events {en}", columns, rows, chart)


def volumes(scope: Scope) -> Section:
    """1. Generation volumes by service, model version and modality, and events over time."""
    stats = generation_stats(scope)
    gens = Column("generations", "生成数 · Generations", "int")
    subj = Column("subjects", "用户数 · Subjects", "int")
    figures = [
        Figure(
            "by_service",
            "按服务 · By service",
            (
                Column("service", "服务 · Service"),
                gens,
                subj,
                Column("minor_mode", "未成年人模式 · Minor mode", "int"),
            ),
            pick(stats["service"], ("key", "generations", "subjects", "minor_mode")),
            Chart("bar", "service", ("generations",)),
        ),
        Figure(
            "by_model",
            "按模型版本 · By model version",
            (
                Column("model", "模型 · Model and version"),
                gens,
                subj,
                Column("not_passed", "未通过安全判定 · Refused, flagged or blocked", "int"),
            ),
            pick(stats["model"], ("key", "generations", "subjects", "not_passed")),
            Chart("bar", "model", ("generations",)),
        ),
        Figure(
            "by_modality",
            "按模态 · By modality",
            (
                Column("modality", "模态代码 · Modality"),
                Column("name", "名称 · Name"),
                gens,
                subj,
                Column("via_api", "API 调用 · Via API", "int"),
            ),
            [
                (
                    row["key"],
                    modality_name(row["key"]),
                    row["generations"],
                    row["subjects"],
                    row["via_api"],
                )
                for row in stats["modality"]
            ],
            Chart("bar", "name", ("generations",)),
        ),
        _timeline(scope),
    ]
    section = Section(
        "volumes",
        1,
        "生成内容数量",
        "Generation volumes",
        "Art. 4(5), 10, 19; Draft 4(4)",
        figures,
    )
    if stats["all"]:
        total = stats["all"][0]
        section.facts = [
            Fact("generations", "生成数 · Generations", total["generations"]),
            Fact("subjects", "用户数 · Subjects", total["subjects"]),
            Fact("minor_mode", "未成年人模式生成 · Minor-mode generations", total["minor_mode"]),
            Fact("refused_or_blocked", "拒答或拦截 · Refused or blocked", total["stopped"]),
        ]
    return section


LABEL_COLUMNS = (
    Column("generations", "生成数 · Generations", "int"),
    Column("both_labels", "显式+隐式 · Both labels", "int", "good"),
    Column("explicit_only", "仅显式 · Explicit only", "int", "warn"),
    Column("implicit_only", "仅隐式 · Implicit only", "int", "warn"),
    Column("neither", "无标识 · Neither", "int", "bad"),
    Column("explicit_share", "显式覆盖率 · Explicit share", "percent"),
    Column("implicit_share", "隐式覆盖率 · Implicit share", "percent"),
    Column("on_request", "应用户要求无显式标识 · Unlabelled on request", "int"),
    Column("gaps", "缺少应有标识(图/视/音) · Missing required label", "int", "bad"),
)
LABEL_KEYS = tuple(c.key for c in LABEL_COLUMNS)
STACK = ("both_labels", "explicit_only", "implicit_only", "neither")


def labels(scope: Scope) -> Section:
    """6. Explicit and implicit label coverage per modality and per model version."""
    stats = generation_stats(scope)
    figures = [
        Figure(
            "by_modality",
            "按模态 · By modality",
            (
                Column("modality", "模态代码 · Modality"),
                Column("name", "名称 · Name"),
                *LABEL_COLUMNS,
            ),
            [
                (row["key"], modality_name(row["key"]), *(row[k] for k in LABEL_KEYS))
                for row in stats["modality"]
            ],
            Chart("stacked", "name", STACK),
            note="图片、视频、音频须有隐式标识，且除用户依协议要求外须有显式标识。 · Images, video "
            "and audio need an implicit label, and an explicit one unless the user asked for "
            "unlabelled output under the user agreement.",
        ),
        Figure(
            "by_model",
            "按模型版本 · By model version",
            (Column("model", "模型 · Model and version"), *LABEL_COLUMNS),
            pick(stats["model"], ("key", *LABEL_KEYS)),
            Chart("stacked", "model", STACK),
        ),
    ]
    section = Section(
        "labels",
        6,
        "生成内容标识",
        "Labelling of generated content",
        "Art. 12; Draft 16",
        figures,
    )
    if not stats["all"]:
        return section
    total = stats["all"][0]
    gaps = int(total["gaps"])
    section.facts = [
        Fact(
            "explicit_share",
            "显式标识覆盖率 · Explicit label share",
            total["explicit_share"],
            "percent",
        ),
        Fact(
            "implicit_share",
            "隐式标识覆盖率 · Implicit label share",
            total["implicit_share"],
            "percent",
        ),
        Fact(
            "media_gaps",
            "图/视/音缺少标识 · Media missing a label",
            gaps,
            tone="bad" if gaps else "good",
        ),
    ]
    if gaps:
        section.findings.append(
            f"{gaps} 条图片/视频/音频生成缺少应有的标识 · {gaps} image, video or audio "
            "generations lack a required label."
        )
    return section


FILING_KEYS = (
    "key",
    "generations",
    "filed",
    "unfiled_count",
    "unfiled_subjects",
    "numbers",
    "services",
    "first_unfiled",
    "last_unfiled",
)


def filing(scope: Scope) -> Section:
    """7. Generations by model versions without an algorithm filing number (备案号)."""
    models = sorted(
        generation_stats(scope)["model"],
        key=lambda r: (-r["unfiled_count"], -r["generations"], r["key"]),
    )
    figure = Figure(
        "by_model",
        "按模型版本的备案情况 · Filing status by model version",
        (
            Column("model", "模型 · Model and version"),
            Column("generations", "生成数 · Generations", "int"),
            Column("filed", "有备案号 · With filing number", "int", "good"),
            Column("unfiled", "无备案号 · Without filing number", "int", "bad"),
            Column("subjects", "无备案时服务用户 · Subjects served unfiled", "int"),
            Column("filing_numbers", "备案号 · Filing numbers"),
            Column("services", "服务 · Services"),
            Column("first_unfiled", "首次无备案 · First unfiled", "datetime"),
            Column("last_unfiled", "最近无备案 · Last unfiled", "datetime"),
        ),
        pick(models, FILING_KEYS),
        Chart("stacked", "model", ("filed", "unfiled")),
    )
    section = Section("filing", 7, "算法备案", "Algorithm filing", "Art. 17; Draft 6", [figure])
    if not models:
        return section
    unfiled = sum(int(r["unfiled_count"]) for r in models)
    unfiled_models = sum(1 for r in models if r["unfiled_count"])
    section.facts = [
        Fact(
            "unfiled_generations",
            "无备案号的生成 · Generations without filing",
            unfiled,
            tone="bad" if unfiled else "good",
        ),
        Fact(
            "unfiled_models",
            "无备案号的模型版本 · Model versions without filing",
            unfiled_models,
            tone="bad" if unfiled_models else "good",
        ),
    ]
    if unfiled:
        section.findings.append(
            f"{unfiled_models} 个模型版本在无备案号的情况下生成了 {unfiled} 条内容 · "
            f"{unfiled_models} model version(s) produced {unfiled} generations without a "
            "filing number."
        )
    return section
