-- The credentials table: owner, users, networks, use and lifecycle per key.
SELECT credential_id, owner, users, networks, uses, created IS NOT NULL AS created, rotated IS NOT NULL AS rotated, revoked IS NOT NULL AS revoked
FROM credentials
ORDER BY credential_id
LIMIT 20
