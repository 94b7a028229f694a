-- title: Label coverage of generated content
-- articles: Art. 12; Draft 16
-- description: Per modality and model version, for generations in [from, to): how many carried an explicit (visible) label and an implicit (metadata) label and their shares, how many carried neither, and how many were delivered unlabelled at the user's request (Labelling Measures art. 9).
-- param from: DateTime64(6)                 (start of the window, inclusive)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
-- param service_id: String = ''             (only this service; empty for every service)
SELECT
    modality,
    model_name,
    model_version,
    count() AS generations,
    countIf(explicit_label) AS explicit_labels,
    round(explicit_labels / generations, 4) AS explicit_share,
    countIf(implicit_label) AS implicit_labels,
    round(implicit_labels / generations, 4) AS implicit_share,
    countIf(NOT explicit_label AND NOT implicit_label) AS unlabelled,
    countIf(unlabelled_on_request) AS unlabelled_on_request
FROM audit.generations
WHERE occurred_at >= {from:DateTime64(6, 'UTC')}
    AND occurred_at < {to:DateTime64(6, 'UTC')}
    AND ({service_id:String} = '' OR service_id = {service_id:String})
GROUP BY modality, model_name, model_version
ORDER BY modality, model_name, model_version
