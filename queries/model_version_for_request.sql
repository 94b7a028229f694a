-- title: Model version behind a request
-- articles: Art. 4; Art. 17; Draft 4
-- description: Which model name and version (and filing number) answered a given request id, with when, for which service and subject, and the safety verdict; normally one row.
-- param request_id: String   (the request id as the service logged it)
SELECT
    occurred_at,
    service_id,
    request_id,
    model_name,
    model_version,
    filing_number,
    modality,
    channel,
    subject,
    safety_verdict,
    produce_id,
    event_id
FROM audit.generations
WHERE request_id = {request_id:String}
ORDER BY occurred_at, event_id
