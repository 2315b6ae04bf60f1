//! Benign behaviours that look unusual but must stay quiet, and their [`BenignLabel`]s:
//!
//! - `auth_retry`: an `auth.token` failure ("token expired"; sometimes "invalid secret", also
//!   on `auth.login`) retried successfully seconds later;
//! - `key_rotation_revoke` / `key_rotation_rotate`: `credential.create` of a new key, traffic
//!   moving to it within minutes, then `credential.revoke` of the old key about an hour after
//!   its last use, or `credential.rotate` with the old key fading out over 10-30 minutes;
//! - `new_ip_known_network`: a new host inside a /24 the account already uses;
//! - `holiday_gap`: a business-hours account idle for 2-5 days (labelled at start and resume);
//! - `gradual_growth`: rate and volume growing 1-3%/day (labelled at the start and every
//!   evaluated day, so a false alert on any day finds it);
//! - `isolated_denied`: one or two denials from a misconfigured scope;
//! - `weekly_report`: the Monday export of weekly-report accounts.
//!
//! Planning changes the world (holidays, growth, rotations, hosts) and stays off accounts that
//! incidents use, so a label never explains away an attack.

use std::collections::BTreeSet;

use super::catalog::{self, ActionKind};
use super::clock;
use super::profiles::{Account, CredentialType, ExtraHost, Rotation, RotationEnding, World};
use super::rng::{Rng, Stream};
use super::{BenignLabel, Event, Outcome, Resource};
use crate::detection::time::{civil_from_days, format_rfc3339, DAY, HOUR, MINUTE, SECOND};

#[derive(Debug)]
pub(crate) enum BenignPlan {
    AuthRetry { account: usize, time_ms: i64, retry_after_ms: i64, reason: &'static str },
    IsolatedDenied { account: usize, time_ms: i64, second_after_ms: Option<i64> },
    NewHost { account: usize, time_ms: i64, network: usize, host: u8 },
}

/// A random account that fits and is not in `taken`.
fn pick_free(world: &World, taken: &BTreeSet<usize>, fits: impl Fn(&Account) -> bool, rng: &mut Rng) -> Option<usize> {
    let free: Vec<usize> =
        (0..world.accounts.len()).filter(|a| !taken.contains(a) && fits(&world.accounts[*a])).collect();
    rng.pick(&free).copied()
}

/// `per_account_day * accounts * days`, rounded, at least `minimum`.
fn scaled(world: &World, per_account_day: f64, minimum: usize) -> usize {
    let exact = per_account_day * world.accounts.len() as f64 * f64::from(world.days);
    (exact.round() as usize).max(minimum)
}

/// Plans the benign behaviours. `reserved`: accounts incidents use.
pub(crate) fn plan(world: &mut World, reserved: &BTreeSet<usize>, rng: &mut Rng) -> Vec<BenignPlan> {
    if world.accounts.is_empty() || world.days == 0 {
        return Vec::new();
    }
    let days = world.days;
    let all_days = 0..days;
    let evaluated = world.evaluated_days();
    // Even-numbered items land after warm-up, where false alerts are counted; odd-numbered
    // ones in the warm-up, so that nothing a benign behaviour does is first seen in an attack.
    // Returns the day and the period it was drawn from, to keep active-time searches inside.
    let spread_day = |i: usize, rng: &mut Rng| -> (u32, std::ops::Range<u32>) {
        let period = if i.is_multiple_of(2) { evaluated.clone() } else { 0..evaluated.start };
        let period = if period.is_empty() { 0..days } else { period };
        (rng.range(u64::from(period.start), u64::from(period.end - 1)) as u32, period)
    };
    // Accounts carrying a lasting change (holiday, growth, rotation) get only one.
    let mut changed: BTreeSet<usize> = reserved.clone();

    let holiday_count = ((world.accounts.len() as f64 * 0.04).round() as usize).max(2);
    for i in 0..holiday_count {
        let Some(account) = pick_free(world, &changed, Account::is_business, rng) else {
            break;
        };
        let (day, _) = spread_day(i, rng);
        let acct = &mut world.accounts[account];
        // Starts on a working day (a gap over a weekend alone would change nothing), inside the run.
        let chosen = acct.zone.local_day(world.start_ms + i64::from(day) * DAY + 12 * HOUR);
        let mut first = chosen;
        while clock::is_weekend(first) {
            first += 1;
        }
        if acct.zone.at(first, 9 * HOUR) >= world.end_ms {
            first = chosen;
            while clock::is_weekend(first) {
                first -= 1;
            }
        }
        let length = rng.range(2, 5) as i64;
        acct.holidays.push((first, first + length - 1));
        changed.insert(account);
    }

    let growth_count = ((world.accounts.len() as f64 * 0.05).round() as usize).max(1);
    for _ in 0..growth_count {
        let fits = |a: &Account| {
            a.profile == catalog::ProfileKind::BusinessHours
                || matches!(a.profile, catalog::ProfileKind::AlwaysOn | catalog::ProfileKind::HourlyCron)
        };
        let Some(account) = pick_free(world, &changed, fits, rng) else {
            break;
        };
        world.accounts[account].growth_per_day = rng.uniform_range(0.01, 0.03);
        changed.insert(account);
    }

    // Pairs (one revoke, one rotate) alternate between evaluated period and warm-up.
    let rotation_count = scaled(world, 1.0 / 350.0, 4);
    for i in 0..rotation_count {
        let Some(account) = pick_free(world, &changed, |a| a.rotations.is_empty(), rng) else {
            break;
        };
        let (day, period) = spread_day(i / 2, rng);
        let Some(created_ms) = world.active_window(account, day, period, 90 * MINUTE, rng) else {
            continue;
        };
        let credential_type = world.accounts[account].credential_type;
        let old = world.accounts[account].initial_credential;
        let new = world.new_credential(credential_type, account, rng);
        let rotation = if i.is_multiple_of(2) {
            let switch_ms = created_ms + rng.range_i64(2 * MINUTE, 8 * MINUTE);
            let revoked_ms = switch_ms + rng.range_i64(55 * MINUTE, 75 * MINUTE);
            Rotation {
                old,
                new,
                created_ms,
                switch_ms,
                fade_end_ms: switch_ms,
                ending: RotationEnding::Revoke { at_ms: revoked_ms },
            }
        } else {
            let rotated_ms = created_ms + rng.range_i64(MINUTE, 3 * MINUTE);
            let fade_end_ms = rotated_ms + rng.range_i64(10 * MINUTE, 30 * MINUTE);
            Rotation {
                old,
                new,
                created_ms,
                switch_ms: rotated_ms,
                fade_end_ms,
                ending: RotationEnding::Rotate { at_ms: rotated_ms },
            }
        };
        world.accounts[account].rotations.push(rotation);
        changed.insert(account);
    }

    let mut plans = Vec::new();
    for i in 0..scaled(world, 1.0 / 300.0, 2) {
        let Some(account) = pick_free(world, reserved, |_| true, rng) else {
            break;
        };
        let (day, period) = spread_day(i, rng);
        let Some(time_ms) = world.active_window(account, day, period, MINUTE, rng) else {
            continue;
        };
        let acct = &mut world.accounts[account];
        let slot = rng.index(acct.networks.len());
        let Some(home) = acct.networks.get(slot) else {
            continue;
        };
        let host = loop {
            let host = rng.range(2, 254) as u8;
            let known = home.hosts.contains(&host) || acct.extra_hosts.iter().any(|e| e.slot == slot && e.host == host);
            if !known {
                break host;
            }
        };
        let network = home.network;
        acct.extra_hosts.push(ExtraHost { since_ms: time_ms, slot, host });
        plans.push(BenignPlan::NewHost { account, time_ms, network, host });
    }

    for i in 0..scaled(world, 1.0 / 350.0, 2) {
        let Some(account) = pick_free(world, reserved, |_| true, rng) else {
            break;
        };
        let (day, period) = spread_day(i, rng);
        let Some(time_ms) = world.active_window(account, day, period, 5 * MINUTE, rng) else {
            continue;
        };
        let second_after_ms = rng.chance(0.4).then(|| rng.range_i64(5 * SECOND, 3 * MINUTE));
        plans.push(BenignPlan::IsolatedDenied { account, time_ms, second_after_ms });
    }

    // A few failed authentications a day across the fleet, each retried successfully: mostly
    // expired OAuth tokens, sometimes a secret rolled out late (API keys, some OAuth clients).
    let retries_per_day = (world.accounts.len() as f64 / 30.0).round().max(1.0) as usize;
    for day in all_days.clone() {
        for _ in 0..retries_per_day {
            let oauth = |a: &Account| a.credential_type == CredentialType::OauthToken;
            let prefer_oauth = rng.chance(0.75);
            let Some(account) = pick_free(world, reserved, |a| oauth(a) == prefer_oauth, rng) else {
                continue;
            };
            let Some(time_ms) = world.active_window(account, day, day..day + 1, MINUTE, rng) else {
                continue;
            };
            let expired = oauth(&world.accounts[account]) && rng.chance(0.8);
            let reason = if expired { catalog::REASON_TOKEN_EXPIRED } else { catalog::REASON_INVALID_SECRET };
            let retry_after_ms = rng.range_i64(SECOND, 30 * SECOND);
            plans.push(BenignPlan::AuthRetry { account, time_ms, retry_after_ms, reason });
        }
    }
    plans
}

pub(crate) fn label(world: &World, kind: &str, account: usize, time_ms: i64, description: String) -> BenignLabel {
    BenignLabel {
        kind: kind.to_string(),
        account: world.accounts[account].name.clone(),
        time: format_rfc3339(time_ms),
        description,
    }
}

fn local_date(day: i64) -> String {
    let (year, month, day) = civil_from_days(day);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Events of the planned behaviours and of every key rotation (appended to `out`), and the
/// labels of all benign behaviours that fall inside the run.
pub(crate) fn render(world: &World, plans: &[BenignPlan], out: &mut Vec<Event>) -> Vec<BenignLabel> {
    let mut labels = Vec::new();
    let in_run = |t: i64| (world.start_ms..world.end_ms).contains(&t);
    for (account, acct) in world.accounts.iter().enumerate() {
        render_rotations(world, account, out, &mut labels);

        for &(first, last) in &acct.holidays {
            let length = last - first + 1;
            let gap_start = acct.zone.at(first, 0);
            let mut resume_day = last + 1;
            while clock::is_weekend(resume_day) {
                resume_day += 1;
            }
            let resume = acct.zone.at(resume_day, 9 * HOUR);
            let dates = format!("{}..{}", local_date(first), local_date(last));
            if in_run(gap_start) {
                labels.push(label(
                    world,
                    "holiday_gap",
                    account,
                    gap_start,
                    format!("idle for {length} days ({dates}, local): holiday"),
                ));
            }
            if in_run(resume) {
                labels.push(label(
                    world,
                    "holiday_gap",
                    account,
                    resume,
                    format!("back at work after {length} idle days ({dates}, local)"),
                ));
            }
        }

        if acct.growth_per_day > 0.0 {
            let percent = acct.growth_per_day * 100.0;
            labels.push(label(
                world,
                "gradual_growth",
                account,
                world.start_ms,
                format!("rate and volume grow {percent:.1}%/day"),
            ));
            for day in world.evaluated_days() {
                let time_ms = world.day_start(day);
                let description =
                    format!("rate and volume at {:.2}x of day 0 (grow {percent:.1}%/day)", world.growth(acct, time_ms));
                labels.push(label(world, "gradual_growth", account, time_ms, description));
            }
        }

        for local_day in acct.zone.local_day(world.start_ms)..=acct.zone.local_day(world.end_ms) {
            let Some(run) = world.weekly_export_run(account, local_day) else {
                continue;
            };
            if in_run(run.start_ms) {
                let description = format!(
                    "Monday report export: {} {} calls, ~{:.0} MB in {:.0} min, {:.0}x its usual hourly volume",
                    run.events,
                    acct.system.export_action().name,
                    run.total_bytes / 1e6,
                    run.duration_ms as f64 / MINUTE as f64,
                    run.factor
                );
                labels.push(label(world, "weekly_report", account, run.start_ms, description));
            }
        }
    }

    for (index, plan) in plans.iter().enumerate() {
        let mut rng = Rng::stream(world.seed, Stream::BenignEvents, index as u64, 0);
        match *plan {
            BenignPlan::AuthRetry { account, time_ms, retry_after_ms, reason } => {
                out.push(world.auth_event(account, time_ms, Outcome::Failure, Some(reason), &mut rng));
                out.push(world.auth_event(account, time_ms + retry_after_ms, Outcome::Success, None, &mut rng));
                let action = world.accounts[account].credential_type.auth_action();
                let seconds = retry_after_ms as f64 / SECOND as f64;
                let description = format!("{action} failed ({reason}), retried successfully {seconds:.1} s later");
                labels.push(label(world, "auth_retry", account, time_ms, description));
            }
            BenignPlan::IsolatedDenied { account, time_ms, second_after_ms } => {
                let acct = &world.accounts[account];
                // A scope that lacks write or export rights, hit by a call the job rarely makes.
                let rare = acct
                    .system
                    .actions
                    .iter()
                    .find(|a| a.kind == ActionKind::Write)
                    .unwrap_or(acct.system.export_action());
                let times = std::iter::once(time_ms).chain(second_after_ms.map(|after| time_ms + after));
                let mut count = 0;
                for t in times {
                    let mut event = world.action_event(account, t, rare, &mut rng);
                    event.outcome = Outcome::Denied;
                    event.reason = Some(catalog::REASON_INSUFFICIENT_SCOPE);
                    (event.bytes, event.records) = (0, 0);
                    out.push(event);
                    count += 1;
                }
                let description =
                    format!("{count} denied {} (insufficient scope): a misconfigured scope, not retried", rare.name);
                labels.push(label(world, "isolated_denied", account, time_ms, description));
            }
            BenignPlan::NewHost { account, time_ms, network, host } => {
                let mut event = world.ordinary_event(account, time_ms, &mut rng);
                (event.network, event.host) = (network as u32, host);
                out.push(event);
                let net = &world.networks[network];
                let [a, b, c] = net.prefix;
                let description = format!(
                    "first call from {}, a new host inside its known network {a}.{b}.{c}.0/24 (AS{})",
                    net.ip(host),
                    net.asn
                );
                labels.push(label(world, "new_ip_known_network", account, time_ms, description));
            }
        }
    }
    labels
}

fn render_rotations(world: &World, account: usize, out: &mut Vec<Event>, labels: &mut Vec<BenignLabel>) {
    for (index, rotation) in world.accounts[account].rotations.iter().enumerate() {
        let mut rng = Rng::stream(world.seed, Stream::BenignEvents, 1 << 32 | account as u64, index as i64);
        let key = |credential: usize| world.credentials.get(credential).map(|c| c.id.as_str()).unwrap_or_default();
        let lifecycle = |action, time_ms, credential: usize, rng: &mut Rng| {
            let resource = Resource::Credential(credential as u32);
            let mut event = world.event(account, time_ms, action, catalog::IDENTITY_SYSTEM, resource, rng);
            event.credential = Some(credential as u32);
            event.records = 1;
            event
        };
        let in_run = |t: i64| (world.start_ms..world.end_ms).contains(&t);
        out.push(lifecycle(catalog::CREDENTIAL_CREATE, rotation.created_ms, rotation.new, &mut rng));
        let (kind, description) = match rotation.ending {
            RotationEnding::Revoke { at_ms } => {
                out.push(lifecycle(catalog::CREDENTIAL_REVOKE, at_ms, rotation.old, &mut rng));
                (
                    "key_rotation_revoke",
                    format!(
                        "new key {} created, traffic moved off {} {:.0} min later; old key revoked {:.0} min after the switch",
                        key(rotation.new),
                        key(rotation.old),
                        (rotation.switch_ms - rotation.created_ms) as f64 / MINUTE as f64,
                        (at_ms - rotation.switch_ms) as f64 / MINUTE as f64
                    ),
                )
            }
            RotationEnding::Rotate { at_ms } => {
                out.push(lifecycle(catalog::CREDENTIAL_ROTATE, at_ms, rotation.old, &mut rng));
                (
                    "key_rotation_rotate",
                    format!(
                        "new key {} created; {} marked rotated and still used for up to {:.0} min while workers move over",
                        key(rotation.new),
                        key(rotation.old),
                        (rotation.fade_end_ms - at_ms) as f64 / MINUTE as f64
                    ),
                )
            }
            RotationEnding::Overlap { rotated_ms, revoked_ms } => {
                out.push(lifecycle(catalog::CREDENTIAL_ROTATE, rotated_ms, rotation.old, &mut rng));
                if in_run(revoked_ms) {
                    out.push(lifecycle(catalog::CREDENTIAL_REVOKE, revoked_ms, rotation.old, &mut rng));
                }
                (
                    "key_rotation_overlap",
                    format!(
                        "new key {} created; {} marked rotated, used by fewer workers for {:.1} h while other rotations overlap, revoked after its last use",
                        key(rotation.new),
                        key(rotation.old),
                        (rotation.fade_end_ms - rotated_ms) as f64 / HOUR as f64
                    ),
                )
            }
        };
        if in_run(rotation.created_ms) {
            labels.push(label(world, kind, account, rotation.created_ms, description));
        }
    }
}
