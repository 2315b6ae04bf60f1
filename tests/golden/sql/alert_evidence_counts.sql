-- How many events stand behind each alert's window and subject, by evidence ids.
SELECT a.detector, a.account, count(e.id) AS evidence_events
FROM alerts a
JOIN events e ON e.account = a.account AND e.time BETWEEN a.window_start AND a.window_end
GROUP BY a.id, a.detector, a.account
ORDER BY a.detector, a.account, evidence_events
