-- Events and bytes per day partition.
SELECT dt, count(*) AS events, sum(bytes) AS bytes FROM events GROUP BY dt ORDER BY dt
