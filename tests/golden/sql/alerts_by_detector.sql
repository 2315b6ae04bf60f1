-- Alerts per detector, with their accounts.
SELECT detector, category, severity, count(*) AS alerts, count(DISTINCT account) AS accounts
FROM alerts
GROUP BY detector, category, severity
ORDER BY detector, severity
