-- title: A subject's full history
-- articles: Art. 14 ¶2; Art. 11; Art. 15; Draft 19
-- description: Every recorded event about one pseudonymous subject, across generations, moderation actions and complaints, user sanctions and data handling, in time order with a one-line summary each; the evidence trail behind each sanction step.
-- param subject: String   (the pseudonymous subject id)
SELECT occurred_at, family, event_type, service_id, ref, summary, event_id
FROM
(
    SELECT
        occurred_at,
        'generation' AS family,
        'generation' AS event_type,
        toString(service_id) AS service_id,
        request_id AS ref,
        concat(
            toString(modality), ' by ', toString(model_name), ' ', toString(model_version),
            ' via ', toString(channel), ': ', toString(safety_verdict),
            if(minor_mode, ', minor mode', ''),
            if(unlabelled_on_request, ', unlabelled on request', '')
        ) AS summary,
        event_id
    FROM audit.generations
    WHERE subject = {subject:String}

    UNION ALL

    SELECT
        occurred_at,
        'moderation_action' AS family,
        toString(event_type) AS event_type,
        toString(service_id) AS service_id,
        if(event_type = 'complaint', ifNull(complaint_id, case_id), case_id) AS ref,
        if(
            event_type = 'complaint',
            concat(
                'complaint ', ifNull(complaint_id, '?'), ' via ', ifNull(complaint_channel, '?'),
                ', due ', ifNull(formatDateTime(complaint_due_by, '%F %T'), '-'),
                if(isNull(complaint_feedback_at), ', no feedback yet',
                   concat(', feedback ', formatDateTime(assumeNotNull(complaint_feedback_at), '%F %T')))
            ),
            concat(
                toString(action), ' (', ifNull(risk_category, 'unclassified'), ') on ',
                toString(target), ' ', target_ref, ', detected by ', toString(detection_source),
                if(isNull(acted_at), ', not yet acted', ''),
                if(isNull(rectification_ticket), '', concat(', rectification ', assumeNotNull(rectification_ticket))),
                if(reported, concat(', reported to ', ifNull(authority, 'the authority')), '')
            )
        ) AS summary,
        event_id
    FROM audit.moderation_actions
    WHERE subject = {subject:String}

    UNION ALL

    SELECT
        occurred_at,
        'user_sanction' AS family,
        'user_sanction' AS event_type,
        toString(service_id) AS service_id,
        sanction_id AS ref,
        concat(
            toString(action), ' (', toString(reason_category), ') from ',
            formatDateTime(effective_from, '%F %T'),
            if(isNull(effective_until), '',
               concat(' until ', formatDateTime(assumeNotNull(effective_until), '%F %T'))),
            if(empty(restricted_functions), '',
               concat(', restricts ', arrayStringConcat(restricted_functions, ','))),
            ', evidence: ', toString(length(evidence)),
            if(reported, concat(', reported to ', ifNull(authority, 'the authority')), '')
        ) AS summary,
        event_id
    FROM audit.user_sanctions
    WHERE subject = {subject:String}

    UNION ALL

    SELECT
        occurred_at,
        'data_handling' AS family,
        toString(event_type) AS event_type,
        toString(service_id) AS service_id,
        coalesce(request_id, dataset_id, reference, agreement_id, '') AS ref,
        multiIf(
            event_type = 'personal_information_request',
            concat(
                ifNull(request_kind, '?'), ' request ', ifNull(status, '?'),
                ', due ', ifNull(formatDateTime(due_at, '%F %T'), '-'),
                if(isNull(completed_at), '',
                   concat(', closed ', formatDateTime(assumeNotNull(completed_at), '%F %T')))
            ),
            event_type = 'identity_verification',
            concat(
                'identity ', if(ifNull(verified, false), 'verified', 'not verified'),
                ' by ', ifNull(method, '?')
            ),
            event_type = 'agreement_acceptance',
            concat(
                'accepted ', ifNull(agreement_id, '?'), ' version ', ifNull(agreement_version, '?'),
                ' via ', ifNull(channel, '?')
            ),
            concat(toString(event_type), ifNull(concat(': ', scope), ''))
        ) AS summary,
        event_id
    FROM audit.data_handling
    WHERE subject = {subject:String}
)
ORDER BY occurred_at, event_id
