-- JSON access to the raw document agrees with the normalized columns (mind the parentheses:
-- `->>` binds looser than `=`).
SELECT count(*) AS events, sum(CASE WHEN (raw->>'action') = action THEN 1 ELSE 0 END) AS raw_action_agrees
FROM events
