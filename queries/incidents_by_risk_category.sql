-- title: Incidents by risk category
-- articles: Art. 4; Art. 14 ¶1; Draft 4; Draft 13
-- description: Moderation cases (other than no_action) detected in [from, to), counted per TC260-003 risk code and category, with the models involved and the time from detection to action (average, median, p95, maximum in seconds) and how many cases are not yet acted on. Each case counts once, in its latest recorded state.
-- param from: DateTime64(6)                 (start of the detection window, inclusive)
-- param to: DateTime64(6) = now             (end of the detection window, exclusive)
-- param service_id: String = ''             (only this service; empty for every service)
WITH cases AS
(
    SELECT
        case_id,
        ifNull(risk_category, 'unclassified') AS code,
        if(isNull(model_name), '(unknown model)',
           concat(assumeNotNull(model_name), ' ', ifNull(model_version, '?'))) AS model,
        dateDiff('microsecond', detected_at, acted_at) / 1e6 AS seconds_to_action,
        action,
        detected_at,
        service_id
    FROM audit.moderation_actions
    WHERE event_type = 'moderation_action'
    ORDER BY case_id, occurred_at DESC, event_id DESC
    LIMIT 1 BY case_id
)
SELECT
    if(code = 'unclassified', 'unclassified',
       arrayStringConcat(arraySlice(splitByChar('.', code), 1, 2), '.')) AS category,
    code AS risk_category,
    count() AS cases,
    arraySort(groupUniqArray(model)) AS models,
    countIf(isNull(seconds_to_action)) AS not_acted,
    avg(seconds_to_action) AS avg_seconds_to_action,
    quantileExactInclusive(0.5)(seconds_to_action) AS p50_seconds_to_action,
    quantileExactInclusive(0.95)(seconds_to_action) AS p95_seconds_to_action,
    max(seconds_to_action) AS max_seconds_to_action
FROM cases
WHERE action != 'no_action'
    AND detected_at >= {from:DateTime64(6, 'UTC')}
    AND detected_at < {to:DateTime64(6, 'UTC')}
    AND ({service_id:String} = '' OR service_id = {service_id:String})
GROUP BY category, risk_category
ORDER BY category, risk_category
