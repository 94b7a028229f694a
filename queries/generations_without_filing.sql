-- title: Generations by models without a filing number
-- articles: Art. 17; Draft 6
-- description: Per service and model version, the generations in [from, to) that carried no algorithm filing number (备案号), with how many subjects they served and when they were first and last seen.
-- param from: DateTime64(6)                 (start of the window, inclusive)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
SELECT
    service_id,
    model_name,
    model_version,
    count() AS generations,
    uniqExact(subject) AS subjects,
    min(occurred_at) AS first_seen,
    max(occurred_at) AS last_seen
FROM audit.generations
WHERE (isNull(filing_number) OR trimBoth(assumeNotNull(filing_number)) = '')
    AND occurred_at >= {from:DateTime64(6, 'UTC')}
    AND occurred_at < {to:DateTime64(6, 'UTC')}
GROUP BY service_id, model_name, model_version
ORDER BY generations DESC, service_id, model_name, model_version
