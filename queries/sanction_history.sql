-- title: A subject's sanction history and its evidence
-- articles: Art. 14 ¶2; Draft 19
-- description: Every recorded sanction step against one subject (warning, function restriction, suspension, termination, reinstatement), in the order they took effect, each followed by the moderation actions its evidence names (role evidence), as they were recorded. A step whose evidence names an event the log does not hold lists those ids in missing_evidence. step_event_id is the step a row belongs to; event_id is the event the row is about (the step, or the moderation action behind it), so exporting this query exports the steps with their evidence.
-- param subject: String   (the pseudonymous subject id)
WITH
    steps AS
    (
        SELECT
            event_id,
            occurred_at,
            toString(service_id) AS service_id,
            sanction_id,
            toString(action) AS action,
            toString(reason_category) AS reason_category,
            restricted_functions,
            evidence,
            effective_from,
            effective_until,
            records_preserved,
            reported,
            authority
        FROM audit.user_sanctions
        WHERE subject = {subject:String}
    ),
    evidence AS
    (
        SELECT
            event_id,
            occurred_at,
            toString(service_id) AS service_id,
            toString(event_type) AS event_type,
            case_id,
            toString(action) AS action,
            risk_category,
            toString(target) AS target,
            target_ref,
            detected_at,
            acted_at,
            reported,
            authority
        FROM audit.moderation_actions
        WHERE event_id IN
        (
            SELECT toUUIDOrZero(arrayJoin(evidence))
            FROM audit.user_sanctions
            WHERE subject = {subject:String}
        )
        LIMIT 1 BY event_id
    ),
    (SELECT groupArray(event_id) FROM evidence) AS found
SELECT
    sanction_id,
    step_event_id,
    role,
    occurred_at,
    service_id,
    action,
    category,
    effective_from,
    effective_until,
    case_id,
    detail,
    missing_evidence,
    event_id
FROM
(
    SELECT
        sanction_id,
        event_id AS step_event_id,
        'step' AS role,
        0 AS role_order,
        effective_from AS step_from,
        occurred_at AS step_at,
        occurred_at,
        service_id,
        action,
        CAST(reason_category AS Nullable(String)) AS category,
        CAST(effective_from AS Nullable(DateTime64(6, 'UTC'))) AS effective_from,
        effective_until,
        CAST(NULL AS Nullable(String)) AS case_id,
        concat(
            if(empty(restricted_functions), '',
               concat('restricts ', arrayStringConcat(restricted_functions, ','), ', ')),
            'evidence: ', toString(length(evidence)),
            if(records_preserved, ', records preserved', ', records not preserved'),
            if(reported, concat(', reported to ', ifNull(authority, 'the authority')), '')
        ) AS detail,
        arrayFilter(e -> NOT has(found, toUUIDOrZero(e)), evidence) AS missing_evidence,
        event_id
    FROM steps

    UNION ALL

    SELECT
        s.sanction_id AS sanction_id,
        s.event_id AS step_event_id,
        'evidence' AS role,
        1 AS role_order,
        s.effective_from AS step_from,
        s.occurred_at AS step_at,
        m.occurred_at AS occurred_at,
        m.service_id AS service_id,
        m.action AS action,
        m.risk_category AS category,
        CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS effective_from,
        CAST(NULL AS Nullable(DateTime64(6, 'UTC'))) AS effective_until,
        CAST(m.case_id AS Nullable(String)) AS case_id,
        concat(
            m.event_type, ' on ', m.target, ' ', m.target_ref,
            ', detected ', formatDateTime(m.detected_at, '%F %T'),
            if(isNull(m.acted_at), ', not yet acted',
               concat(', acted ', formatDateTime(assumeNotNull(m.acted_at), '%F %T'))),
            if(m.reported, concat(', reported to ', ifNull(m.authority, 'the authority')), '')
        ) AS detail,
        CAST([] AS Array(String)) AS missing_evidence,
        m.event_id AS event_id
    FROM
    (
        SELECT *, toUUIDOrZero(named) AS named_id
        FROM steps
        ARRAY JOIN evidence AS named
    ) AS s
    INNER JOIN evidence AS m ON m.event_id = s.named_id
)
ORDER BY step_from, step_at, step_event_id, role_order, occurred_at, event_id
