-- title: Erasure of a subject's personal information
-- articles: Art. 11; Draft 11
-- description: What the log holds on the deletion of one subject's personal information, as recorded by as_of: each delete request in its latest state (record delete_request), legal holds on the subject (record legal_hold: a hold placed keeps records beyond the request), and every moderation record or complaint that carries evidence sealed with the subject's data key (record sealed_evidence: ciphertext, readable only while that key exists; after_erasure marks one sealed after the first completed deletion). Generations keep only digests of inputs and outputs. The log records no destruction of the subject's key: the crypto-shredding itself must be shown from the key store.
-- param subject: String                (the pseudonymous subject id)
-- param as_of: DateTime64(6) = now     (judge the log as it stood at this time)
WITH
    deletions AS
    (
        SELECT *
        FROM audit.data_handling
        WHERE event_type = 'personal_information_request'
            AND request_kind = 'delete'
            AND subject = {subject:String}
            AND isNotNull(request_id)
            AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
        ORDER BY request_id, occurred_at DESC, event_id DESC
        LIMIT 1 BY request_id
    ),
    holds AS
    (
        SELECT *
        FROM audit.data_handling
        WHERE event_type = 'legal_hold'
            AND hold_scope = 'subject'
            AND hold_target = {subject:String}
            AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
        ORDER BY hold_id, occurred_at DESC, event_id DESC
        LIMIT 1 BY hold_id
    ),
    (
        SELECT minIf(completed_at, status = 'completed')
        FROM deletions
    ) AS erased_at
SELECT occurred_at, record, service_id, ref, status, detail, erased_at, after_erasure, event_id
FROM
(
    SELECT
        occurred_at,
        'delete_request' AS record,
        toString(service_id) AS service_id,
        assumeNotNull(request_id) AS ref,
        ifNull(status, '') AS status,
        concat(
            'received ', ifNull(formatDateTime(received_at, '%F %T'), '-'),
            ', due ', ifNull(formatDateTime(due_at, '%F %T'), '-'),
            if(isNull(completed_at), '',
               concat(', closed ', formatDateTime(assumeNotNull(completed_at), '%F %T'))),
            if(isNull(outcome), '', concat(': ', assumeNotNull(outcome)))
        ) AS detail,
        false AS after_erasure,
        event_id
    FROM deletions

    UNION ALL

    SELECT
        occurred_at,
        'legal_hold' AS record,
        toString(service_id) AS service_id,
        ifNull(hold_id, '') AS ref,
        ifNull(hold_action, '') AS status,
        concat(ifNull(hold_reason, ''),
               if(isNull(requested_by), '', concat(', requested by ', assumeNotNull(requested_by))))
            AS detail,
        false AS after_erasure,
        event_id
    FROM holds

    UNION ALL

    SELECT
        occurred_at,
        'sealed_evidence' AS record,
        toString(service_id) AS service_id,
        if(event_type = 'complaint', ifNull(complaint_id, case_id), case_id) AS ref,
        toString(event_type) AS status,
        concat(toString(length(assumeNotNull(sealed_evidence))), ' sealed bytes') AS detail,
        ifNull(occurred_at > erased_at, false) AS after_erasure,
        event_id
    FROM audit.moderation_actions
    WHERE subject = {subject:String}
        AND isNotNull(sealed_evidence)
        AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
)
ORDER BY occurred_at, record, event_id
