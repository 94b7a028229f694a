-- title: Integrity of the audit trail
-- articles: Art. 13; Art. 19; Draft 14
-- description: Per producer, in [from, to): signed batches accepted and the events they carried, the last accepted batch, messages quarantined (total and per reason) and findings (total and per kind): hash-chain gaps, forks and replays, which never move a chain's head, and reject floods. A producer with only quarantined messages or findings is listed too; quarantined messages whose producer could not be read show as (unknown).
--   A reject flood (reject_flood) is a run of reject_alert_streak messages refused in a row on one bus partition, about the bus rather than any producer: it is listed under (bus), one finding per run of that length, the detail of its chain_findings row naming the partition, the first and last offsets and the count.
-- param from: DateTime64(6) = 1970-01-01    (start of the window, inclusive; default the beginning)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
WITH
    sources AS
    (
        SELECT
            toString(producer_id) AS producer,
            'batch' AS source,
            toUInt64(event_count) AS events,
            CAST(created_at AS Nullable(DateTime64(6, 'UTC'))) AS batch_at,
            CAST(sequence AS Nullable(UInt64)) AS batch_sequence,
            '' AS label
        FROM audit.batches
        WHERE created_at >= {from:DateTime64(6, 'UTC')} AND created_at < {to:DateTime64(6, 'UTC')}

        UNION ALL

        SELECT
            ifNull(producer_id, '(unknown)') AS producer,
            'quarantine' AS source,
            toUInt64(0) AS events,
            CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS batch_at,
            CAST(NULL AS Nullable(UInt64)) AS batch_sequence,
            toString(reason) AS label
        FROM audit.quarantine
        WHERE received_at >= {from:DateTime64(6, 'UTC')} AND received_at < {to:DateTime64(6, 'UTC')}

        UNION ALL

        SELECT
            toString(producer_id) AS producer,
            'finding' AS source,
            toUInt64(0) AS events,
            CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS batch_at,
            CAST(NULL AS Nullable(UInt64)) AS batch_sequence,
            toString(kind) AS label
        FROM audit.chain_findings
        WHERE received_at >= {from:DateTime64(6, 'UTC')} AND received_at < {to:DateTime64(6, 'UTC')}
    ),
    per_producer AS
    (
        SELECT
            producer,
            countIf(source = 'batch') AS batches,
            sum(events) AS events,
            max(batch_at) AS last_batch_at,
            max(batch_sequence) AS last_sequence,
            countIf(source = 'quarantine') AS quarantined,
            groupArrayIf(label, source = 'quarantine') AS reasons,
            countIf(source = 'finding') AS chain_findings,
            groupArrayIf(label, source = 'finding') AS kinds
        FROM sources
        GROUP BY producer
    )
SELECT
    producer AS producer_id,
    batches,
    events,
    last_batch_at,
    last_sequence,
    quarantined,
    arrayMap(r -> concat(r, ': ', toString(countEqual(reasons, r))),
             arraySort(arrayDistinct(reasons))) AS quarantined_by_reason,
    chain_findings,
    countEqual(kinds, 'chain_gap') AS gaps,
    countEqual(kinds, 'chain_fork') AS forks,
    arrayMap(k -> concat(k, ': ', toString(countEqual(kinds, k))),
             arraySort(arrayDistinct(kinds))) AS findings_by_kind
FROM per_producer
ORDER BY producer_id
