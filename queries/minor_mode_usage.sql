-- title: Usage in minor mode
-- articles: Art. 10
-- description: Per service and model, the generations in [from, to) and how many of them were served in minor mode (the service's mode for minors), their share, how many subjects used minor mode, their average and busiest day (the most minor-mode generations one subject made on one UTC day, a sign of over-reliance), and how many minor-mode requests were refused, flagged or blocked. A service whose generations never carry the minor-mode flag shows 0.
-- param from: DateTime64(6)                 (start of the window, inclusive)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
-- param service_id: String = ''             (only this service; empty for every service)
WITH per_subject_day AS
(
    -- One scan: minor-mode generations per subject and UTC day, the rest per model version.
    SELECT
        service_id,
        model_name,
        model_version,
        minor_mode,
        if(minor_mode, subject, '') AS minor_subject,
        if(minor_mode, toDate(occurred_at), toDate(0)) AS minor_day,
        count() AS n,
        countIf(safety_verdict != 'passed') AS n_not_passed
    FROM audit.generations
    WHERE occurred_at >= {from:DateTime64(6, 'UTC')}
        AND occurred_at < {to:DateTime64(6, 'UTC')}
        AND ({service_id:String} = '' OR service_id = {service_id:String})
    GROUP BY service_id, model_name, model_version, minor_mode, minor_subject, minor_day
),
totals AS
(
    SELECT
        service_id,
        model_name,
        model_version,
        sum(n) AS generations,
        sumIf(n, minor_mode) AS minor_mode_generations,
        uniqExactIf(minor_subject, minor_mode) AS minor_mode_subjects,
        maxIf(n, minor_mode) AS max_per_subject_day,
        sumIf(n_not_passed, minor_mode) AS minor_mode_not_passed
    FROM per_subject_day
    GROUP BY service_id, model_name, model_version
)
SELECT
    service_id,
    model_name,
    model_version,
    generations,
    minor_mode_generations,
    round(minor_mode_generations / generations, 4) AS minor_mode_share,
    minor_mode_subjects,
    if(minor_mode_subjects = 0, 0,
       round(minor_mode_generations / minor_mode_subjects, 2)) AS per_subject,
    max_per_subject_day,
    minor_mode_not_passed
FROM totals
ORDER BY service_id, model_name, model_version
