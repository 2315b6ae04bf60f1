//! Rendering: a planned incident turned into events, built by the same code as ordinary traffic
//! (no attribute, action, user agent or id scheme marks them), and its label.

use super::*;
use crate::detection::time::{format_rfc3339, weekday_name};

/// `830 B`, `12.4 KB`, `3.1 MB`, `1.2 GB`.
fn human_bytes(bytes: f64) -> String {
    match bytes {
        b if b < 1e3 => format!("{b:.0} B"),
        b if b < 1e6 => format!("{:.1} KB", b / 1e3),
        b if b < 1e9 => format!("{:.1} MB", b / 1e6),
        b => format!("{:.1} GB", b / 1e9),
    }
}

/// Turns a plan into events (appended to `out`) and its label (with an empty id), keyed by
/// start time. None when no event of the incident falls inside the run.
pub(crate) fn render(
    world: &World,
    plan: &IncidentPlan,
    rng: &mut Rng,
    out: &mut Vec<Event>,
) -> Option<(i64, Incident)> {
    let mut events: Vec<Event> = Vec::new();
    let name = |account: usize| world.accounts[account].name.clone();
    let ip = |(network, host): (usize, u8)| world.networks[network].ip(host);
    let key_id = |key: usize| world.credentials.get(key).map(|c| c.id.clone());
    let spread = |rng: &mut Rng, start_ms: i64, duration_ms: i64| start_ms + rng.range_i64(0, duration_ms);

    let (kind, accounts, source_ip, credential_id, description) = match plan {
        &IncidentPlan::FailedAuthBurst { account, start_ms, duration_ms, attempts, source, user_agent } => {
            for _ in 0..attempts {
                let time_ms = spread(rng, start_ms, duration_ms);
                let mut event =
                    world.auth_event(account, time_ms, Outcome::Failure, Some(catalog::REASON_INVALID_SECRET), rng);
                (event.network, event.host, event.user_agent) = (source.0 as u32, source.1, user_agent);
                events.push(event);
            }
            let key = world.accounts[account].credential_at(start_ms, rng);
            let action = world.accounts[account].credential_type.auth_action();
            let description = format!(
                "{attempts} {action} failures (invalid secret) against {} from {} in {:.1} min",
                name(account),
                ip(source),
                duration_ms as f64 / MINUTE as f64
            );
            (IncidentKind::FailedAuthBurst, vec![name(account)], Some(ip(source)), key_id(key), description)
        }
        &IncidentPlan::DeniedBurst { kind, account, start_ms, duration_ms, attempts } => {
            let mut systems = BTreeSet::new();
            // Slow probing paces itself: one call per slot, about a minute each.
            let slot_ms = duration_ms / attempts.max(1) as i64;
            for i in 0..attempts {
                let time_ms = match kind {
                    IncidentKind::SlowProbing => spread(rng, start_ms + i as i64 * slot_ms, slot_ms),
                    _ => spread(rng, start_ms, duration_ms),
                };
                // Probing: actions of other systems, on resources all over the place.
                let catalog = &SYSTEMS[rng.index(SYSTEMS.len())];
                let action = &catalog.actions[rng.index(catalog.actions.len())];
                let resource = world.ordinary_resource(catalog, rng);
                let mut event = world.event(account, time_ms, action.name, catalog.system, resource, rng);
                event.outcome = Outcome::Denied;
                event.reason = Some(catalog::REASON_INSUFFICIENT_SCOPE);
                systems.insert(catalog.system);
                events.push(event);
            }
            let key = world.accounts[account].credential_at(start_ms, rng);
            let description = format!(
                "{attempts} denied calls on {} systems by {} in {:.1} min: permission probing with its own key from its usual network",
                systems.len(),
                name(account),
                duration_ms as f64 / MINUTE as f64
            );
            (kind, vec![name(account)], None, key_id(key), description)
        }
        IncidentPlan::PasswordSpray { kind, victims, start_ms, duration_ms, source, user_agent } => {
            let mut attempts = 0;
            // A low-and-slow spray paces itself: one victim per slot of the duration.
            let slot_ms = *duration_ms / victims.len().max(1) as i64;
            for (i, &victim) in victims.iter().enumerate() {
                let slot_start = *start_ms + i as i64 * slot_ms;
                for _ in 0..rng.range(1, 2) {
                    let time_ms = match kind {
                        IncidentKind::LowSlowSpray => spread(rng, slot_start, slot_ms),
                        _ => spread(rng, *start_ms, *duration_ms),
                    };
                    let mut event =
                        world.auth_event(victim, time_ms, Outcome::Failure, Some(catalog::REASON_INVALID_SECRET), rng);
                    (event.network, event.host, event.user_agent) = (source.0 as u32, source.1, *user_agent);
                    events.push(event);
                    attempts += 1;
                }
            }
            let description = format!(
                "{} failed {attempts} times across {} accounts in {:.1} min (1-2 guesses each)",
                ip(*source),
                victims.len(),
                *duration_ms as f64 / MINUTE as f64
            );
            (*kind, victims.iter().map(|&v| name(v)).collect(), Some(ip(*source)), None, description)
        }
        &IncidentPlan::BulkExport { account, start_ms, duration_ms, events: count, factor } => {
            let acct = &world.accounts[account];
            let hourly = world.typical_hourly_bytes(account, start_ms);
            let total = hourly * factor;
            events.push(world.auth_event(account, start_ms, Outcome::Success, None, rng));
            let action = acct.system.export_action();
            for _ in 0..count {
                let time_ms = spread(rng, start_ms + SECOND, duration_ms);
                let mut event = world.action_event(account, time_ms, action, rng);
                event.bytes = (total / count as f64 * rng.uniform_range(0.7, 1.3)).round() as u64;
                event.records = acct.records_for(event.bytes, rng);
                events.push(event);
            }
            let moved: u64 = events.iter().map(|e| e.bytes).sum();
            let description = format!(
                "{} moved {} in {:.1} min with {count} {} calls: {:.0}x its usual hourly volume ({})",
                name(account),
                human_bytes(moved as f64),
                duration_ms as f64 / MINUTE as f64,
                action.name,
                moved as f64 / hourly.max(1.0),
                human_bytes(hourly)
            );
            let key = acct.credential_at(start_ms, rng);
            (IncidentKind::BulkExport, vec![name(account)], None, key_id(key), description)
        }
        &IncidentPlan::SlowExfil { kind, account, start_ms, duration_ms, factor } => {
            events = world.extra_rate_events(account, start_ms, start_ms + duration_ms, factor - 1.0, rng);
            let extra: u64 = events.iter().map(|e| e.bytes).sum();
            let hours = duration_ms as f64 / HOUR as f64;
            let description = format!(
                "{} ran at {factor:.1}x its usual rate for {hours:.1} h in ordinary-sized events: {} extra, {} events on top of its normal traffic",
                name(account),
                human_bytes(extra as f64),
                events.len()
            );
            let key = world.accounts[account].credential_at(start_ms, rng);
            (kind, vec![name(account)], None, key_id(key), description)
        }
        &IncidentPlan::OffHours { kind, account, start_ms, duration_ms, events: count } => {
            events.push(world.auth_event(account, start_ms, Outcome::Success, None, rng));
            // A night session keeps half its calls on each side of the hour boundary.
            let boundary = (start_ms.div_euclid(HOUR) + 1) * HOUR;
            for i in 0..count {
                let time_ms = match kind {
                    IncidentKind::NightSession if i < count / 2 => {
                        spread(rng, start_ms + SECOND, boundary - start_ms - SECOND)
                    }
                    IncidentKind::NightSession => spread(rng, boundary, start_ms + duration_ms - boundary),
                    _ => spread(rng, start_ms + SECOND, duration_ms),
                };
                events.push(world.ordinary_event(account, time_ms, rng));
            }
            let acct = &world.accounts[account];
            let local = acct.zone.to_local(start_ms);
            let local_day = local.div_euclid(DAY);
            let description = format!(
                "{} (weekday business hours, {}) made {count} ordinary calls from {} local on {} ({}), over {:.0} min, from its usual network",
                name(account),
                acct.zone.name,
                clock::local_hhmm(local),
                weekday_name(local_day),
                if clock::is_weekend(local_day) { "weekend" } else { "night" },
                duration_ms as f64 / MINUTE as f64
            );
            let key = acct.credential_at(start_ms, rng);
            (kind, vec![name(account)], None, key_id(key), description)
        }
        &IncidentPlan::RevokedKeyUse { account, key, revoked_ms, start_ms, duration_ms, events: count } => {
            for _ in 0..count {
                let mut event = world.ordinary_event(account, spread(rng, start_ms, duration_ms), rng);
                event.credential = Some(key as u32);
                events.push(event);
            }
            let description = format!(
                "{} used key {} again {:.1} days after it was revoked ({}): {count} calls over {:.0} min",
                name(account),
                key_id(key).unwrap_or_default(),
                (start_ms - revoked_ms) as f64 / DAY as f64,
                format_rfc3339(revoked_ms),
                duration_ms as f64 / MINUTE as f64
            );
            (IncidentKind::RevokedKeyUse, vec![name(account)], None, key_id(key), description)
        }
        &IncidentPlan::ForeignKey { account, owner, start_ms, duration_ms, events: count } => {
            let owner_key = world.accounts[owner].credential_at(start_ms, rng);
            for _ in 0..count {
                let mut event = world.ordinary_event(account, spread(rng, start_ms, duration_ms), rng);
                event.credential = Some(owner_key as u32);
                events.push(event);
            }
            let description = format!(
                "{} presented {}'s key {} in {count} calls; its log {} credential.owner",
                name(account),
                name(owner),
                key_id(owner_key).unwrap_or_default(),
                if world.accounts[account].logs_owner { "records" } else { "omits" }
            );
            (IncidentKind::ForeignKey, vec![name(account), name(owner)], None, key_id(owner_key), description)
        }
        &IncidentPlan::NewNetwork { account, start_ms, duration_ms, events: count, source } => {
            for _ in 0..count {
                let mut event = world.ordinary_event(account, spread(rng, start_ms, duration_ms), rng);
                (event.network, event.host) = (source.0 as u32, source.1);
                events.push(event);
            }
            let network = &world.networks[source.0];
            let acct = &world.accounts[account];
            let key = acct.credential_at(start_ms, rng);
            let description = format!(
                "{}'s key used from {} (AS{}, {}), a network, ASN and country it never used (home: {}); {count} calls over {:.0} min",
                name(account),
                ip(source),
                network.asn,
                network.country,
                acct.networks
                    .iter()
                    .map(|n| {
                        let home = &world.networks[n.network];
                        format!("AS{} {}", home.asn, home.country)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                duration_ms as f64 / MINUTE as f64
            );
            (IncidentKind::NewNetwork, vec![name(account)], Some(ip(source)), key_id(key), description)
        }
    };

    events.retain(|e| (world.start_ms..world.end_ms).contains(&e.time_ms));
    let start_ms = events.iter().map(|e| e.time_ms).min()?;
    let end_ms = events.iter().map(|e| e.time_ms).max()?;
    let tenants: BTreeSet<&str> = events.iter().map(|e| world.accounts[e.account as usize].tenant).collect();
    out.extend(events);
    let incident = Incident {
        id: String::new(),
        kind: kind.name().to_string(),
        category: kind.category().to_string(),
        accounts,
        tenant: (tenants.len() == 1).then(|| tenants.iter().next().map(|t| t.to_string())).flatten(),
        source_ip,
        credential_id,
        start: format_rfc3339(start_ms),
        end: format_rfc3339(end_ms),
        description,
    };
    Some((start_ms, incident))
}
