-- title: Complaints past their deadline
-- articles: Art. 15; Draft 13
-- description: Complaints whose latest state recorded by as_of has no feedback and whose due date is before as_of, and complaints whose feedback came after the due date (late_feedback), with days overdue (to the feedback, or to as_of while still open). event_id is the event that recorded each complaint's latest state.
-- param as_of: DateTime64(6) = now     (judge the log as it stood at this time)
-- param service_id: String = ''        (only this service; empty for every service)
WITH complaints AS
(
    SELECT *
    FROM audit.moderation_actions
    WHERE event_type = 'complaint'
        AND isNotNull(complaint_id)
        AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
    ORDER BY complaint_id, occurred_at DESC, event_id DESC
    LIMIT 1 BY complaint_id
)
SELECT
    assumeNotNull(complaint_id) AS complaint_id,
    service_id,
    case_id,
    subject,
    complaint_channel AS channel,
    complaint_received_at AS received_at,
    complaint_due_by AS due_by,
    complaint_handled_at AS handled_at,
    complaint_feedback_at AS feedback_at,
    isNotNull(complaint_feedback_at) AS late_feedback,
    round(dateDiff('microsecond', assumeNotNull(complaint_due_by),
                   ifNull(complaint_feedback_at, {as_of:DateTime64(6, 'UTC')})) / 8.64e10, 2)
        AS days_overdue,
    event_id
FROM complaints
WHERE (
        (isNull(complaint_feedback_at) AND complaint_due_by < {as_of:DateTime64(6, 'UTC')})
        OR complaint_feedback_at > complaint_due_by
    )
    AND ({service_id:String} = '' OR service_id = {service_id:String})
ORDER BY due_by, complaint_id
