-- title: Training data provenance of a model
-- articles: Art. 7; Art. 8; Art. 19; Draft 7; Draft 8
-- description: Every training data set recorded as taken in for a model (one version, or all): its source, kind, licence or legal basis, whether it holds personal information and on what consent, its size, and the annotation quality checks run on it; personal information without a consent basis is flagged. event_id is the data set's intake event.
-- param model_name: String                  (the model's name)
-- param model_version: String = ''          (one version; empty for every version)
WITH
    intakes AS
    (
        SELECT *
        FROM audit.data_handling
        WHERE event_type = 'training_data_intake'
            AND model_name = {model_name:String}
            AND ({model_version:String} = '' OR model_version = {model_version:String})
    ),
    checks AS
    (
        SELECT
            assumeNotNull(dataset_id) AS dataset_id,
            count() AS annotation_checks,
            sum(sample_size) AS annotation_sampled,
            min(sampled_accuracy) AS min_sampled_accuracy,
            argMax(rules_version, occurred_at) AS latest_rules_version
        FROM audit.data_handling
        WHERE event_type = 'annotation_quality_check' AND isNotNull(dataset_id)
        GROUP BY dataset_id
    )
SELECT
    i.model_name AS model_name,
    i.model_version AS model_version,
    i.dataset_id AS dataset_id,
    i.occurred_at AS taken_in_at,
    i.source AS source,
    i.source_kind AS source_kind,
    i.legal_basis AS legal_basis,
    i.contains_personal_information AS contains_personal_information,
    i.consent_basis AS consent_basis,
    ifNull(i.contains_personal_information, false)
        AND trimBoth(ifNull(i.consent_basis, '')) = '' AS personal_information_without_consent,
    i.size_bytes AS size_bytes,
    i.record_count AS record_count,
    ifNull(c.annotation_checks, 0) AS annotation_checks,
    c.annotation_sampled AS annotation_sampled,
    c.min_sampled_accuracy AS min_sampled_accuracy,
    c.latest_rules_version AS latest_rules_version,
    i.event_id AS event_id
FROM intakes AS i
LEFT JOIN checks AS c ON c.dataset_id = assumeNotNull(i.dataset_id)
ORDER BY model_version, taken_in_at, dataset_id
