-- The accounts table: volume, failure rate, writes and usual hours per account.
SELECT account, events, active_hours, bytes, usual_hourly_bytes, round(failure_rate, 4) AS failure_rate, writes, usual_hours_of_week
FROM accounts
ORDER BY account
