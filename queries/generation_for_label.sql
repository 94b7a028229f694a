-- title: Generation behind a content label
-- articles: Art. 12; Draft 16
-- description: The generation that wrote a given content id (ProduceID of the implicit label, GB 45438-2025), so that a label found in the wild leads back to its request, model version and subject.
-- param produce_id: String   (the ProduceID read from the content's AIGC metadata)
SELECT
    occurred_at,
    service_id,
    request_id,
    model_name,
    model_version,
    filing_number,
    modality,
    subject,
    label_value,
    content_producer,
    produce_id,
    reserved_code1,
    explicit_label,
    event_id
FROM audit.generations
WHERE produce_id = {produce_id:String}
ORDER BY occurred_at, event_id
