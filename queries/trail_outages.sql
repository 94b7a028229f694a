-- title: Outages of the audit trail
-- articles: Art. 13; Art. 19; Draft 14
-- description: Periods in [from, to) when a producer's part of the audit trail was broken or silent, one row each, in time order: silence (no batch created for longer than min_silence_seconds between two consecutive batches; missing counts the sequence numbers skipped between them), quarantine bursts (quarantined messages of one producer less than burst_gap_seconds apart, with their reasons) and hash-chain findings such as gaps and forks (missing counts the sequences a gap skips). Totals per producer are in trail_integrity.
-- param from: DateTime64(6) = 1970-01-01    (start of the window, inclusive; default the beginning)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
-- param min_silence_seconds: UInt32 = 3600  (a longer time between two batches of one producer counts as silence)
-- param burst_gap_seconds: UInt32 = 300     (quarantined messages closer than this belong to one burst)
WITH
    batch_steps AS
    (
        SELECT
            toString(producer_id) AS producer,
            created_at,
            sequence,
            lagInFrame(created_at) OVER w AS previous_at,
            lagInFrame(sequence) OVER w AS previous_sequence,
            row_number() OVER w AS n
        FROM audit.batches
        WHERE created_at >= {from:DateTime64(6, 'UTC')} AND created_at < {to:DateTime64(6, 'UTC')}
        WINDOW w AS (PARTITION BY producer_id ORDER BY created_at, sequence
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    ),
    quarantine_steps AS
    (
        SELECT
            ifNull(producer_id, '(unknown)') AS producer,
            received_at,
            topic,
            partition,
            offset,
            toString(reason) AS reason,
            if(row_number() OVER w = 1
               OR dateDiff('microsecond', lagInFrame(received_at) OVER w, received_at)
                  >= {burst_gap_seconds:UInt32} * 1000000, 1, 0) AS starts_burst
        FROM audit.quarantine
        WHERE received_at >= {from:DateTime64(6, 'UTC')} AND received_at < {to:DateTime64(6, 'UTC')}
        WINDOW w AS (PARTITION BY ifNull(producer_id, '(unknown)')
                     ORDER BY received_at, topic, partition, offset
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    ),
    bursts AS
    (
        SELECT
            producer,
            received_at,
            reason,
            sum(starts_burst) OVER (PARTITION BY producer
                                    ORDER BY received_at, topic, partition, offset
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS burst
        FROM quarantine_steps
    )
SELECT
    producer AS producer_id,
    kind,
    started_at,
    ended_at,
    round(dateDiff('microsecond', started_at, ended_at) / 1e6, 3) AS seconds,
    messages,
    missing,
    detail
FROM
(
    SELECT
        producer,
        'silence' AS kind,
        previous_at AS started_at,
        created_at AS ended_at,
        toUInt64(0) AS messages,
        toUInt64(if(sequence > previous_sequence + 1, sequence - previous_sequence - 1, 0))
            AS missing,
        concat('no batch between sequence ', toString(previous_sequence), ' and ',
               toString(sequence)) AS detail
    FROM batch_steps
    WHERE n > 1
        AND dateDiff('microsecond', previous_at, created_at) > {min_silence_seconds:UInt32} * 1000000

    UNION ALL

    SELECT
        producer,
        'quarantine_burst' AS kind,
        started_at,
        ended_at,
        messages,
        toUInt64(0) AS missing,
        arrayStringConcat(
            arrayMap(r -> concat(r, ': ', toString(countEqual(reasons, r))),
                     arraySort(arrayDistinct(reasons))),
            ', ') AS detail
    FROM
    (
        SELECT
            producer,
            min(received_at) AS started_at,
            max(received_at) AS ended_at,
            toUInt64(count()) AS messages,
            groupArray(reason) AS reasons
        FROM bursts
        GROUP BY producer, burst
    )

    UNION ALL

    SELECT
        toString(producer_id) AS producer,
        toString(kind) AS kind,
        received_at AS started_at,
        received_at AS ended_at,
        toUInt64(0) AS messages,
        toUInt64(if(isNotNull(expected_sequence) AND got_sequence > expected_sequence,
                    got_sequence - assumeNotNull(expected_sequence), 0)) AS missing,
        detail
    FROM audit.chain_findings
    WHERE received_at >= {from:DateTime64(6, 'UTC')} AND received_at < {to:DateTime64(6, 'UTC')}
)
ORDER BY started_at, producer_id, kind
