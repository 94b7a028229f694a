-- title: Model rectifications overdue
-- articles: Art. 14 ¶1; Draft 15
-- description: Rectification tickets (optimisation training of a model after illegal content) whose latest state recorded by as_of is not closed and whose due date is before as_of, most overdue first, with the cases behind each ticket. event_id is the event that recorded each ticket's latest state.
-- param as_of: DateTime64(6) = now     (judge the log as it stood at this time)
-- param service_id: String = ''        (only this service; empty for every service)
WITH
    rows AS
    (
        SELECT *
        FROM audit.moderation_actions
        WHERE isNotNull(rectification_ticket)
            AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
    ),
    tickets AS
    (
        SELECT *
        FROM rows
        ORDER BY rectification_ticket, occurred_at DESC, event_id DESC
        LIMIT 1 BY rectification_ticket
    ),
    ticket_cases AS
    (
        SELECT rectification_ticket, arraySort(groupUniqArray(case_id)) AS case_ids
        FROM rows
        GROUP BY rectification_ticket
    )
SELECT
    t.rectification_ticket AS ticket,
    t.service_id AS service_id,
    c.case_ids AS case_ids,
    t.risk_category AS risk_category,
    t.model_name AS model_name,
    t.model_version AS model_version,
    t.rectification_opened_at AS opened_at,
    t.rectification_due_at AS due_at,
    round(dateDiff('microsecond', assumeNotNull(t.rectification_due_at),
                   {as_of:DateTime64(6, 'UTC')}) / 8.64e10, 2) AS days_overdue,
    t.event_id AS event_id
FROM tickets AS t
INNER JOIN ticket_cases AS c ON c.rectification_ticket = t.rectification_ticket
WHERE (isNull(t.rectification_closed_at) OR t.rectification_closed_at > {as_of:DateTime64(6, 'UTC')})
    AND t.rectification_due_at < {as_of:DateTime64(6, 'UTC')}
    AND ({service_id:String} = '' OR t.service_id = {service_id:String})
ORDER BY due_at, ticket
