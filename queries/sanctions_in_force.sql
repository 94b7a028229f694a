-- title: User sanctions in force
-- articles: Art. 14 ¶2; Draft 19
-- description: Sanctions (warning, function restriction, suspension, termination) in force at a given time: for each sanction id the latest step effective by then, unless it is a reinstatement or has expired; with the subject, reason, restricted functions and the evidence behind it. event_id is the step in force.
-- param at: DateTime64(6) = now        (the time the sanctions must be in force at)
-- param service_id: String = ''        (only this service; empty for every service)
-- param subject: String = ''           (only this subject; empty for every subject)
WITH steps AS
(
    SELECT *
    FROM audit.user_sanctions
    WHERE effective_from <= {at:DateTime64(6, 'UTC')}
    ORDER BY sanction_id, effective_from DESC, occurred_at DESC, event_id DESC
    LIMIT 1 BY sanction_id
)
SELECT
    sanction_id,
    subject,
    service_id,
    action,
    reason_category,
    restricted_functions,
    effective_from,
    effective_until,
    length(evidence) AS evidence_count,
    evidence,
    records_preserved,
    reported,
    event_id
FROM steps
WHERE action != 'reinstatement'
    AND (isNull(effective_until) OR effective_until > {at:DateTime64(6, 'UTC')})
    AND ({service_id:String} = '' OR service_id = {service_id:String})
    AND ({subject:String} = '' OR subject = {subject:String})
ORDER BY subject, effective_from, sanction_id
