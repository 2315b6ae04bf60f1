-- Everything the most recently used key did in the last 24 hours of the store.
SELECT time, account, action, outcome, source_ip, bytes
FROM events
WHERE credential_id = (SELECT credential_id FROM events WHERE credential_id IS NOT NULL AND action NOT LIKE 'credential.%' ORDER BY time DESC, credential_id LIMIT 1)
  AND time > (SELECT max(time) FROM events) - INTERVAL '24 hours'
ORDER BY time, action
LIMIT 25
