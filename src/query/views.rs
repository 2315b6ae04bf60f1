//! The `accounts` and `credentials` tables: views over `events`, so they cover everything the
//! store holds and need no checkpoint (the engine keys its state by a hash of each name, and a
//! replayed store has no checkpoint at all). Lifecycle events (`credential.*`) name the key
//! acted on, not a key presented, so they count as a key's lifecycle and never as its use.

/// Per account: when it was seen, how much it does, and when it is usually active.
/// `usual_hours_of_week` lists, comma-separated, the hours of the week (0 = Monday 00:00 UTC)
/// in which the account acted in at least two different weeks. Lists are text, so that every
/// output format (CSV too) carries them.
pub const ACCOUNTS: &str = "
WITH hourly AS (
    SELECT tenant, account, date_trunc('hour', time) AS hour,
           min(time) AS first_time, max(time) AS last_time,
           count(*) AS events,
           sum(coalesce(bytes, 0)) AS bytes,
           sum(CASE WHEN outcome = 'success' THEN 0 ELSE 1 END) AS failures,
           sum(CASE WHEN access_kind(action) = 'write' THEN 1 ELSE 0 END) AS writes
    FROM events GROUP BY tenant, account, date_trunc('hour', time)
),
week_hours AS (
    SELECT tenant, account,
           CAST((date_part('dow', hour) + 6) % 7 * 24 + date_part('hour', hour) AS BIGINT) AS hour_of_week,
           count(DISTINCT date_trunc('week', hour)) AS weeks
    FROM hourly GROUP BY 1, 2, 3
),
usual AS (
    SELECT tenant, account,
           string_agg(CAST(hour_of_week AS VARCHAR), ',' ORDER BY hour_of_week) AS usual_hours_of_week
    FROM week_hours WHERE weeks >= 2 GROUP BY tenant, account
)
SELECT h.tenant, h.account,
       min(h.first_time) AS first_seen,
       max(h.last_time) AS last_seen,
       CAST(sum(h.events) AS BIGINT) AS events,
       count(*) AS active_hours,
       CAST(sum(h.bytes) AS BIGINT) AS bytes,
       CAST(median(h.bytes) AS BIGINT) AS usual_hourly_bytes,
       CAST(sum(h.failures) AS DOUBLE) / CAST(sum(h.events) AS DOUBLE) AS failure_rate,
       CAST(sum(h.writes) AS BIGINT) AS writes,
       max(u.usual_hours_of_week) AS usual_hours_of_week
FROM hourly h
LEFT JOIN usual u ON h.account = u.account AND h.tenant IS NOT DISTINCT FROM u.tenant
GROUP BY h.tenant, h.account
";

/// Per key: owner, users (comma-separated), networks, use, and lifecycle.
pub const CREDENTIALS: &str = "
SELECT tenant, credential_id,
       max(credential_kind) AS kind,
       max(credential_owner) AS owner,
       string_agg(DISTINCT account, ',' ORDER BY account) FILTER (WHERE action NOT LIKE 'credential.%') AS users,
       count(DISTINCT network(source_ip, source_asn)) FILTER (WHERE action NOT LIKE 'credential.%') AS networks,
       min(time) FILTER (WHERE action NOT LIKE 'credential.%') AS first_use,
       max(time) FILTER (WHERE action NOT LIKE 'credential.%') AS last_use,
       count(*) FILTER (WHERE action NOT LIKE 'credential.%') AS uses,
       min(time) FILTER (WHERE action = 'credential.create') AS created,
       max(time) FILTER (WHERE action = 'credential.rotate') AS rotated,
       min(time) FILTER (WHERE action = 'credential.revoke') AS revoked
FROM events
WHERE credential_id IS NOT NULL
GROUP BY tenant, credential_id
";
