-- title: Annotation quality per model version
-- articles: Art. 8; Art. 19; Draft 8
-- description: Per model version, the sampled annotation quality checks recorded in [from, to): how many checks on how many data sets, the total sample, the sample-weighted and the lowest accuracy, and the annotation rules version last checked.
-- param from: DateTime64(6) = 1970-01-01    (start of the window, inclusive; default the beginning)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
SELECT
    ifNull(model_name, '(no model)') AS model_name,
    ifNull(model_version, '') AS model_version,
    count() AS checks,
    uniqExact(dataset_id) AS datasets,
    sum(sample_size) AS sampled,
    round(sum(sample_size * sampled_accuracy) / sum(sample_size), 4) AS weighted_accuracy,
    min(sampled_accuracy) AS min_accuracy,
    argMax(rules_version, occurred_at) AS latest_rules_version,
    max(occurred_at) AS last_checked_at
FROM audit.data_handling
WHERE event_type = 'annotation_quality_check'
    AND occurred_at >= {from:DateTime64(6, 'UTC')}
    AND occurred_at < {to:DateTime64(6, 'UTC')}
GROUP BY model_name, model_version
ORDER BY model_name, model_version
