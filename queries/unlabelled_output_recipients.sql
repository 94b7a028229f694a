-- title: Recipients of unlabelled output
-- articles: Art. 12; Draft 16
-- description: Who received generated content without an explicit label at their own request in [from, to) (Labelling Measures art. 9 requires these logs for at least six months): per subject and service, how many such generations, of which modalities, first and last.
-- param from: DateTime64(6)                 (start of the window, inclusive)
-- param to: DateTime64(6) = now             (end of the window, exclusive)
SELECT
    subject,
    service_id,
    count() AS generations,
    arraySort(groupUniqArray(toString(modality))) AS modalities,
    min(occurred_at) AS first_at,
    max(occurred_at) AS last_at
FROM audit.generations
WHERE unlabelled_on_request
    AND occurred_at >= {from:DateTime64(6, 'UTC')}
    AND occurred_at < {to:DateTime64(6, 'UTC')}
GROUP BY subject, service_id
ORDER BY subject, service_id
