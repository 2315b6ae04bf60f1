-- Every failure from the address with the most failures.
SELECT time, account, action, outcome, reason
FROM events
WHERE outcome <> 'success'
  AND source_ip = (SELECT source_ip FROM events WHERE outcome <> 'success' GROUP BY source_ip ORDER BY count(*) DESC, source_ip LIMIT 1)
ORDER BY time, account
LIMIT 25
