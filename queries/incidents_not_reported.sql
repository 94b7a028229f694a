-- title: Illegal-content incidents not reported
-- articles: Art. 14 ¶1; Draft 13
-- description: Moderation cases in risk category A.1 (content violating core socialist values, i.e. illegal content) detected before as_of whose latest state recorded by as_of is not reported to the authority, oldest first, with hours since detection. event_id is the event that recorded each case's latest state.
-- param as_of: DateTime64(6) = now     (judge the log as it stood at this time)
-- param service_id: String = ''        (only this service; empty for every service)
WITH
    latest AS
    (
        -- The state of each case recorded last by as_of: its event id.
        SELECT max((occurred_at, event_id)).2 AS event_id
        FROM audit.moderation_actions
        WHERE event_type = 'moderation_action'
            AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
        GROUP BY case_id
    ),
    cases AS
    (
        SELECT
            case_id, service_id, risk_category, action, detection_source, detected_at, acted_at,
            reported, reported_at, model_name, model_version, subject, target, target_ref,
            event_id
        FROM audit.moderation_actions
        WHERE event_type = 'moderation_action' AND event_id IN (SELECT event_id FROM latest)
        -- one row even where a retried insert left a duplicate not yet merged away
        LIMIT 1 BY event_id
    )
SELECT
    case_id,
    service_id,
    risk_category,
    action,
    detection_source,
    detected_at,
    acted_at,
    round(dateDiff('microsecond', detected_at, {as_of:DateTime64(6, 'UTC')}) / 3.6e9, 2)
        AS hours_since_detection,
    model_name,
    model_version,
    subject,
    target,
    target_ref,
    event_id
FROM cases
WHERE (risk_category = 'A.1' OR startsWith(risk_category, 'A.1.'))
    AND NOT (reported AND ifNull(reported_at <= {as_of:DateTime64(6, 'UTC')}, true))
    AND detected_at < {as_of:DateTime64(6, 'UTC')}
    AND ({service_id:String} = '' OR service_id = {service_id:String})
ORDER BY detected_at, case_id
