-- Dead letters per kind and field.
SELECT kind, field, count(*) AS n FROM dead_letters GROUP BY kind, field ORDER BY kind, field
