-- title: Service agreement in force per subject
-- articles: Art. 9; Draft 5
-- description: Which version of the service agreement each subject had accepted at a given time: per subject and agreement, the latest acceptance with accepted_at at or before `at` (a version accepted later is not yet in force), with when and where (channel) it was accepted and the service that recorded it. Subjects with no acceptance by then have no row. event_id is the acceptance event.
-- param at: DateTime64(6) = now       (the time the agreement must have been accepted by)
-- param subject: String = ''          (only this subject; empty for every subject)
-- param agreement_id: String = ''     (only this agreement, e.g. user-agreement; empty for every agreement)
WITH acceptances AS
(
    SELECT *
    FROM audit.data_handling
    WHERE event_type = 'agreement_acceptance'
        AND isNotNull(subject)
        AND isNotNull(agreement_id)
        AND accepted_at <= {at:DateTime64(6, 'UTC')}
        AND ({subject:String} = '' OR subject = {subject:String})
        AND ({agreement_id:String} = '' OR agreement_id = {agreement_id:String})
    ORDER BY subject, agreement_id, accepted_at DESC, occurred_at DESC, event_id DESC
    LIMIT 1 BY subject, agreement_id
)
SELECT
    assumeNotNull(subject) AS subject,
    assumeNotNull(agreement_id) AS agreement_id,
    assumeNotNull(agreement_version) AS agreement_version,
    assumeNotNull(accepted_at) AS accepted_at,
    assumeNotNull(channel) AS channel,
    service_id,
    event_id
FROM acceptances
ORDER BY subject, agreement_id
