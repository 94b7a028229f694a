-- title: Time from detection to action, case by case
-- articles: Art. 14 ¶1; Draft 13
-- description: Moderation cases (other than no_action) detected in [from, to), each in its latest recorded state, with the seconds from detection to action; cases not yet acted on come first, then the slowest, the first 1,000 unless limit says otherwise. Narrow to a risk category (a code such as A.1.6, or a whole category such as A.1) and to cases that took at least min_seconds. Per-category averages and percentiles are in incidents_by_risk_category. event_id is the event that recorded each case's latest state.
-- param from: DateTime64(6)                 (start of the detection window, inclusive)
-- param to: DateTime64(6) = now             (end of the detection window, exclusive)
-- param service_id: String = ''             (only this service; empty for every service)
-- param category: String = ''               (a risk code or category prefix such as A.1; empty for all)
-- param min_seconds: Float64 = 0            (only cases acted on at least this many seconds after detection; cases not acted on are always listed)
-- param limit: UInt64 = 1000                (at most this many cases, in the order above; 0 for every case)
WITH
    latest AS
    (
        -- The latest state of each case detected in the window: its event id.
        SELECT max((occurred_at, event_id)).2 AS event_id
        FROM audit.moderation_actions
        WHERE event_type = 'moderation_action'
            AND case_id IN
            (
                SELECT case_id
                FROM audit.moderation_actions
                WHERE event_type = 'moderation_action'
                    AND detected_at >= {from:DateTime64(6, 'UTC')}
                    AND detected_at < {to:DateTime64(6, 'UTC')}
            )
        GROUP BY case_id
    ),
    cases AS
    (
        SELECT
            case_id, service_id, risk_category, action, detection_source, detected_at, acted_at,
            model_name, model_version, subject, event_id
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
    dateDiff('microsecond', detected_at, acted_at) / 1e6 AS seconds_to_action,
    model_name,
    model_version,
    subject,
    event_id
FROM cases
WHERE action != 'no_action'
    AND detected_at >= {from:DateTime64(6, 'UTC')}
    AND detected_at < {to:DateTime64(6, 'UTC')}
    AND ({service_id:String} = '' OR service_id = {service_id:String})
    AND ({category:String} = ''
        OR risk_category = {category:String}
        OR startsWith(risk_category, concat({category:String}, '.')))
    AND (isNull(acted_at) OR seconds_to_action >= {min_seconds:Float64})
ORDER BY isNotNull(seconds_to_action), seconds_to_action DESC, detected_at, case_id
LIMIT if({limit:UInt64} = 0, 18446744073709551615, {limit:UInt64})
