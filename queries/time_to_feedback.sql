-- title: Time to feedback on complaints
-- articles: Art. 15; Draft 13
-- description: Per service and channel, the complaints received in [from, to), each in its latest state recorded before to: how many got feedback, how many by their due date, the on-time share of all complaints received, the hours from receipt to feedback (average, median, p95, maximum) and how many are still without feedback, of which how many past their due date at to. The complaints themselves, late or still open, are in complaints_overdue.
-- param from: DateTime64(6)                 (start of the receipt window, inclusive)
-- param to: DateTime64(6) = now             (end of the receipt window, exclusive; the log is judged as it stood then)
-- param service_id: String = ''             (only this service; empty for every service)
WITH complaints AS
(
    SELECT
        complaint_id,
        service_id,
        ifNull(complaint_channel, '(unknown)') AS channel,
        complaint_received_at,
        complaint_due_by,
        complaint_feedback_at,
        dateDiff('microsecond', complaint_received_at, complaint_feedback_at) / 3.6e9
            AS hours_to_feedback
    FROM audit.moderation_actions
    WHERE event_type = 'complaint'
        AND isNotNull(complaint_id)
        AND occurred_at < {to:DateTime64(6, 'UTC')}
        AND complaint_id IN
        (
            SELECT complaint_id
            FROM audit.moderation_actions
            WHERE event_type = 'complaint'
                AND complaint_received_at >= {from:DateTime64(6, 'UTC')}
                AND complaint_received_at < {to:DateTime64(6, 'UTC')}
        )
    ORDER BY complaint_id, occurred_at DESC, event_id DESC
    LIMIT 1 BY complaint_id
)
SELECT
    service_id,
    channel,
    count() AS complaints,
    countIf(isNotNull(complaint_feedback_at)) AS feedback_given,
    countIf(complaint_feedback_at <= complaint_due_by) AS feedback_on_time,
    round(feedback_on_time / complaints, 4) AS on_time_share,
    round(avg(hours_to_feedback), 2) AS avg_hours_to_feedback,
    round(quantileExactInclusive(0.5)(hours_to_feedback), 2) AS p50_hours_to_feedback,
    round(quantileExactInclusive(0.95)(hours_to_feedback), 2) AS p95_hours_to_feedback,
    round(max(hours_to_feedback), 2) AS max_hours_to_feedback,
    countIf(isNull(complaint_feedback_at)) AS without_feedback,
    countIf(isNull(complaint_feedback_at) AND complaint_due_by < {to:DateTime64(6, 'UTC')})
        AS open_past_due
FROM complaints
WHERE complaint_received_at >= {from:DateTime64(6, 'UTC')}
    AND complaint_received_at < {to:DateTime64(6, 'UTC')}
    AND ({service_id:String} = '' OR service_id = {service_id:String})
GROUP BY service_id, channel
ORDER BY service_id, channel
