-- title: Legal holds in force
-- articles: Art. 14 ¶2; Art. 19
-- description: Subjects and moderation cases whose records are under a legal hold at as_of (the latest place or release of each hold target wins), with who asked for it and why; held records must outlive their retention period. event_id is the event that placed the hold.
-- param as_of: DateTime64(6) = now     (judge the holds as they stood at this time)
WITH holds AS
(
    SELECT *
    FROM audit.data_handling
    WHERE event_type = 'legal_hold'
        AND isNotNull(hold_target)
        AND occurred_at <= {as_of:DateTime64(6, 'UTC')}
    ORDER BY hold_scope, hold_target, occurred_at DESC, event_id DESC
    LIMIT 1 BY hold_scope, hold_target
)
SELECT
    assumeNotNull(hold_scope) AS scope,
    assumeNotNull(hold_target) AS target,
    hold_id,
    hold_reason AS reason,
    requested_by,
    service_id,
    occurred_at AS placed_at,
    event_id
FROM holds
WHERE hold_action = 'place'
ORDER BY placed_at, scope, target
