-- title: Usage in minor mode
-- articles: Art. 10
-- description: Per service and model, the generations in [from, to) and how many of them were served in minor mode (the service's mode for minors), their share, how many subjects used minor mode, their average and busiest day (the most minor-mode generations one subject made on one UTC day, a sign of over-reliance), and how many minor-mode requests were refused, flagged or blocked. A service whose generations never carry the minor-mode flag shows 0.
-- param from: DateTime64(6)                 (start of the window, inclusive)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
-- param service_id: String = ''             (only this service; empty for every service)
WITH
    totals AS
    (
        SELECT
            service_id,
            model_name,
            model_version,
            count() AS generations,
            countIf(minor_mode) AS minor_mode_generations,
            uniqExactIf(subject, minor_mode) AS minor_mode_subjects,
            countIf(minor_mode AND safety_verdict != 'passed') AS minor_mode_not_passed
        FROM audit.generations
        WHERE occurred_at >= {from:DateTime64(6, 'UTC')}
            AND occurred_at < {to:DateTime64(6, 'UTC')}
            AND ({service_id:String} = '' OR service_id = {service_id:String})
        GROUP BY service_id, model_name, model_version
    ),
    busiest AS
    (
        SELECT service_id, model_name, model_version, max(per_day) AS max_per_subject_day
        FROM
        (
            SELECT service_id, model_name, model_version, count() AS per_day
            FROM audit.generations
            WHERE minor_mode
                AND occurred_at >= {from:DateTime64(6, 'UTC')}
                AND occurred_at < {to:DateTime64(6, 'UTC')}
                AND ({service_id:String} = '' OR service_id = {service_id:String})
            GROUP BY service_id, model_name, model_version, subject, toDate(occurred_at)
        )
        GROUP BY service_id, model_name, model_version
    )
SELECT
    t.service_id AS service_id,
    t.model_name AS model_name,
    t.model_version AS model_version,
    t.generations AS generations,
    t.minor_mode_generations AS minor_mode_generations,
    round(t.minor_mode_generations / t.generations, 4) AS minor_mode_share,
    t.minor_mode_subjects AS minor_mode_subjects,
    if(t.minor_mode_subjects = 0, 0,
       round(t.minor_mode_generations / t.minor_mode_subjects, 2)) AS per_subject,
    ifNull(b.max_per_subject_day, 0) AS max_per_subject_day,
    t.minor_mode_not_passed AS minor_mode_not_passed
FROM totals AS t
LEFT JOIN busiest AS b
    ON b.service_id = t.service_id
    AND b.model_name = t.model_name
    AND b.model_version = t.model_version
ORDER BY service_id, model_name, model_version
