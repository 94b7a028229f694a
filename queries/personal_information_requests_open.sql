-- title: Open and late personal-information requests
-- articles: Art. 11; Draft 11
-- description: Personal-information requests (access, copy, correct, supplement, delete) whose latest status recorded by as_of is neither completed nor refused, flagged late when due before as_of, and requests closed after their due date (late), with days late. event_id is the event that recorded each request's latest status.
-- param as_of: DateTime64(6) = now     (judge the log as it stood at this time)
-- param service_id: String = ''        (only this service; empty for every service)
WITH requests AS
(
    SELECT *
    FROM audit.data_handling
    WHERE event_type = 'personal_information_request'
        AND isNotNull(request_id)
        AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
    ORDER BY request_id, occurred_at DESC, event_id DESC
    LIMIT 1 BY request_id
)
SELECT
    assumeNotNull(request_id) AS request_id,
    service_id,
    subject,
    request_kind,
    status,
    received_at,
    due_at,
    completed_at,
    status NOT IN ('completed', 'refused') AS open,
    if(open, due_at < {as_of:DateTime64(6, 'UTC')}, completed_at > due_at) AS late,
    if(late,
       round(dateDiff('microsecond', assumeNotNull(due_at),
                      if(open, {as_of:DateTime64(6, 'UTC')}, assumeNotNull(completed_at))) / 8.64e10, 2),
       0) AS days_late,
    event_id
FROM requests
WHERE (open OR completed_at > due_at)
    AND ({service_id:String} = '' OR service_id = {service_id:String})
ORDER BY due_at, request_id
