"""Section 9: the integrity of the audit trail itself (Art. 13, 19).

Batches, checkpoints, chain findings and quarantine are not events: they describe the whole
log. This section is therefore restricted only by the selection's time range (batches by
``created_at``, checkpoints by ``signed_at``, findings and quarantine by ``received_at``), never
by its subject, families or named query.
"""

from __future__ import annotations

from typing import Any

from aigc_audit.consumers.report.model import NONE_FOUND, Chart, Column, Fact, Figure, Section
from aigc_audit.consumers.report.scope import Scope, period_bucket

KINDS_ZH: dict[str, str] = {
    "chain_gap": "链缺口",
    "chain_fork": "链分叉",
    "chain_reorder": "链乱序",  # written by versions before a finding stopped moving the head
    "replay": "重放",
    "reject_flood": "拒收激增",  # a sustained run of refused messages on one partition
}

SCOPE_NOTE = (
    "本节反映整个日志的健康状况，只按选取的时间范围过滤。 · This section covers the whole log, "
    "restricted only by the selection's time range: the trail's health is not about one subject."
)


def _checkpoints(scope: Scope) -> Figure:
    rows = scope.rows(
        f"SELECT concat(toString(topic), '/', toString(partition)) AS part, tree_size, "
        f"next_offset, lower(hex(root_hash)) AS root_hex, origin, key_id, signed_at, checkpoints "
        f"FROM (SELECT *, count() OVER (PARTITION BY topic, partition) AS checkpoints "
        f"FROM {scope.table('checkpoints')} WHERE {scope.window('signed_at')}) "
        f"ORDER BY topic, partition, tree_size DESC, signed_at DESC LIMIT 1 BY topic, partition"
    )
    return Figure(
        "checkpoints",
        "各分区最新签名检查点 · Latest signed checkpoint per partition",
        (
            Column("partition", "主题/分区 · Topic/partition"),
            Column("tree_size", "树大小(批次) · Tree size (batches)", "int"),
            Column("next_offset", "下一偏移 · Next offset", "int"),
            Column("root_hex", "根哈希 · Root hash (hex)"),
            Column("origin", "来源 · Origin"),
            Column("key_id", "签名密钥 · Key"),
            Column("signed_at", "签名时间 · Signed at", "datetime"),
            Column("checkpoints", "检查点数 · Checkpoints", "int"),
        ),
        rows,
        Chart("bar", "partition", ("tree_size",)),
    )


def _batches(scope: Scope) -> tuple[Figure, Figure]:
    table, window = scope.table("batches"), scope.window("created_at")
    per_producer = scope.rows(
        f"SELECT toString(producer_id) AS producer, count() AS batches, "
        f"sum(event_count) AS events, max(sequence) AS last_sequence, "
        f"max(created_at) AS last_batch_at, uniqExact(key_id) AS keys FROM {table} "
        f"WHERE {window} GROUP BY producer ORDER BY producer"
    )
    (span,) = scope.one(
        f"SELECT dateDiff('day', min(created_at), max(created_at)) FROM {table} WHERE {window}"
    )
    bucket, step, zh, en = period_bucket(span, "created_at")
    timeline = (
        scope.rows(
            f"SELECT {bucket} AS period, count() AS batches, sum(event_count) AS events "
            f"FROM {table} WHERE {window} GROUP BY period ORDER BY period WITH FILL STEP {step}"
        )
        if per_producer
        else []
    )
    return (
        Figure(
            "batches",
            "各生产者已接收的签名批次 · Signed batches accepted per producer",
            (
                Column("producer", "生产者 · Producer"),
                Column("batches", "批次 · Batches", "int"),
                Column("events", "事件 · Events", "int"),
                Column("last_sequence", "最后序号 · Last sequence", "int"),
                Column("last_batch_at", "最后批次时间 · Last batch at", "datetime"),
                Column("keys", "签名密钥数 · Keys used", "int"),
            ),
            per_producer,
            Chart("bar", "producer", ("batches",)),
        ),
        Figure(
            "batches_per_period",
            f"{zh}批次数 · Batches {en}",
            (
                Column("period", "时段 · Period (UTC)"),
                Column("batches", "批次 · Batches", "int"),
                Column("events", "事件 · Events", "int"),
            ),
            timeline,
            Chart("columns", "period", ("batches",)),
            note="无批次的时段可能是审计链路中断。 · A period without batches may be an outage "
            "of the audit trail.",
        ),
    )


def _findings(scope: Scope) -> Figure:
    cells = scope.rows(
        f"SELECT toString(producer_id) AS producer, toString(kind) AS kind, count() AS n "
        f"FROM {scope.table('chain_findings')} WHERE {scope.window('received_at')} "
        f"GROUP BY producer, kind ORDER BY producer, kind"
    )
    kinds = sorted({kind for _, kind, _ in cells})
    table: dict[str, dict[str, int]] = {}
    for producer, kind, n in cells:
        table.setdefault(producer, {})[kind] = int(n)
    rows: list[tuple[Any, ...]] = [
        (producer, *(counts.get(k, 0) for k in kinds), sum(counts.values()))
        for producer, counts in table.items()
    ]
    columns = (
        Column("producer", "生产者 · Producer"),
        *(Column(k, f"{KINDS_ZH.get(k, '')} {k}".strip(), "int") for k in kinds),
        Column("total", "合计 · Total", "int", "bad"),
    )
    return Figure(
        "chain_findings",
        "哈希链问题（按类型和生产者） · Hash-chain findings by kind and producer",
        columns,
        rows,
        Chart("stacked", "producer", tuple(kinds)) if kinds else None,
        empty=NONE_FOUND,
    )


def _quarantine(scope: Scope) -> Figure:
    rows = scope.rows(
        f"SELECT toString(reason) AS reason, count() AS messages, "
        f"uniqExact(ifNull(producer_id, '(unknown)')) AS producers, "
        f"min(received_at) AS first_at, "
        f"max(received_at) AS last_at FROM {scope.table('quarantine')} "
        f"WHERE {scope.window('received_at')} GROUP BY reason ORDER BY messages DESC, reason"
    )
    return Figure(
        "quarantine",
        "隔离的消息（按原因） · Quarantined messages by reason",
        (
            Column("reason", "原因 · Reason"),
            Column("messages", "消息数 · Messages", "int", "bad"),
            Column("producers", "生产者 · Producers", "int"),
            Column("first_at", "最早 · First", "datetime"),
            Column("last_at", "最近 · Last", "datetime"),
        ),
        rows,
        Chart("bar", "reason", ("messages",)),
        note="验证失败的消息进入隔离区，从不丢弃。 · Messages that fail verification are kept "
        "in quarantine, never dropped.",
        empty=NONE_FOUND,
    )


def trail(scope: Scope) -> Section:
    """9. Checkpoints, batches, chain findings and quarantine over the selection's time range."""
    batches, timeline = _batches(scope)
    figures = [_checkpoints(scope), batches, timeline, _findings(scope), _quarantine(scope)]
    section = Section(
        "trail",
        9,
        "审计日志自身的完整性",
        "Integrity of the audit trail",
        "Art. 13, 19; Draft 14, 17",
        figures,
        scope_note=SCOPE_NOTE,
    )
    if section.empty:
        return section
    findings = sum(int(r[-1]) for r in section.figure("chain_findings").rows)
    quarantined = sum(int(r[1]) for r in section.figure("quarantine").rows)
    checkpoints = section.figure("checkpoints")
    section.facts = [
        Fact("batches", "签名批次 · Signed batches", sum(int(r[1]) for r in batches.rows)),
        Fact(
            "batch_events", "批次中的事件 · Events in batches", sum(int(r[2]) for r in batches.rows)
        ),
        Fact(
            "partitions",
            "有检查点的分区 · Partitions checkpointed",
            len(checkpoints.rows),
            tone=None if checkpoints.rows else "warn",
        ),
        Fact(
            "chain_findings",
            "哈希链问题 · Chain findings",
            findings,
            tone="bad" if findings else "good",
        ),
        Fact(
            "quarantined",
            "隔离消息 · Quarantined",
            quarantined,
            tone="bad" if quarantined else "good",
        ),
    ]
    if findings:
        section.findings.append(
            f"哈希链发现 {findings} 个问题（缺口、分叉或乱序） · {findings} hash-chain findings "
            "(gaps, forks or reordering)."
        )
    if quarantined:
        section.findings.append(
            f"{quarantined} 条消息未通过验证而被隔离 · {quarantined} messages failed verification "
            "and are held in quarantine."
        )
    if batches.rows and not checkpoints.rows:
        section.findings.append("没有签名检查点 · No signed checkpoint in this time range.")
    return section
