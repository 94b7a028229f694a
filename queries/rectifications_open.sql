-- title: Model rectifications still open
-- articles: Art. 14 ¶1; Draft 15
-- description: Rectification tickets (optimisation training of a model after illegal content) whose latest state recorded by as_of is not closed, oldest first, with the cases behind each ticket, days open, whether the recorded due date has passed (and by how many days), and whether the ticket has been open longer than the 3 months of Draft 15 (an optional policy, shown for information). event_id is the event that recorded each ticket's latest state.
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
    round(dateDiff('microsecond', assumeNotNull(t.rectification_opened_at),
                   {as_of:DateTime64(6, 'UTC')}) / 8.64e10, 2) AS days_open,
    ifNull(t.rectification_due_at < {as_of:DateTime64(6, 'UTC')}, false) AS overdue,
    if(overdue,
       round(dateDiff('microsecond', assumeNotNull(t.rectification_due_at),
                      {as_of:DateTime64(6, 'UTC')}) / 8.64e10, 2),
       0) AS days_overdue,
    ifNull(addMonths(t.rectification_opened_at, 3) < {as_of:DateTime64(6, 'UTC')}, false)
        AS beyond_three_months,
    t.event_id AS event_id
FROM tickets AS t
INNER JOIN ticket_cases AS c ON c.rectification_ticket = t.rectification_ticket
WHERE (isNull(t.rectification_closed_at) OR t.rectification_closed_at > {as_of:DateTime64(6, 'UTC')})
    AND ({service_id:String} = '' OR t.service_id = {service_id:String})
ORDER BY opened_at, ticket
