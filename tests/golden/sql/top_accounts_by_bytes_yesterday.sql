-- Top accounts by bytes on the day before the newest day.
SELECT account, sum(bytes) AS bytes
FROM events
WHERE dt = (SELECT max(dt) FROM events) - INTERVAL '1 day'
GROUP BY account
ORDER BY bytes DESC, account
LIMIT 5
