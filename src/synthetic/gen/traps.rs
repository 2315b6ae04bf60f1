//! The hard set's benign traps, and their [`BenignLabel`]s:
//!
//! - `outage`: the token service fails for 8-20 minutes; every main-tenant account that
//!   authenticates meanwhile fails (`service unavailable`) and retries, 12-40 times, then gets
//!   in. One outage in the warm-up, one in the judged days: at most one alert is wanted.
//! - `monthly_job`: a business-hours account's export on the first local day of each month
//!   at night, another's on the last local day in working hours, each 15-40x its usual hourly
//!   volume. The history holds the first run; the judged days the second.
//! - `shared_key`: three accounts of one tenant use one key from the first day (a CI key);
//!   labelled at the start and on every judged day.
//! - `dst_change`: the local clock of an account moves an hour (the run crosses the US and
//!   the EU change).
//! - `holiday_return`: the first working day after a holiday starts with a backlog, 1.8-2.6x
//!   the usual rate for 3-5 hours (every holiday of the hard set, among them one that ends in
//!   the history and one that ends in the judged days).
//! - `key_rotation_overlap`: two rotations of one account's key, the second begun 2-5 hours
//!   after the first, each old key marked rotated, used by fewer and fewer workers for 6-14
//!   hours (three keys in use at once) and revoked after its last use. One in the history,
//!   one in the judged days.
//!
//! Traps stay off accounts that incidents use and off accounts that other benign behaviours
//! already changed (holidays, growth, rotations).

use std::collections::BTreeSet;

use super::benign::label;
use super::catalog::{self, ProfileKind};
use super::profiles::{Account, CatchUp, MonthlyJob, Rotation, RotationEnding, Schedule, World};
use super::rng::{Rng, Stream};
use super::{BenignLabel, Event, Outcome};
use crate::detection::time::{civil_from_days, HOUR, MINUTE, SECOND};

#[derive(Debug)]
pub(crate) struct Outage {
    accounts: Vec<usize>,
    start_ms: i64,
    duration_ms: i64,
}

fn untouched(world: &World, reserved: &BTreeSet<usize>, account: usize) -> bool {
    let a = &world.accounts[account];
    !reserved.contains(&account)
        && a.holidays.is_empty()
        && a.rotations.is_empty()
        && a.growth_per_day == 0.0
        && a.monthly_job.is_none()
        && a.shares_key_of.is_none()
}

/// Plans the traps: monthly jobs and the shared key change the world; outages are returned.
pub(crate) fn plan(world: &mut World, reserved: &BTreeSet<usize>, rng: &mut Rng) -> Vec<Outage> {
    let mut taken = reserved.clone();
    let pure_business = |a: &Account| a.profile == ProfileKind::BusinessHours;
    for last_day in [false, true] {
        let free: Vec<usize> = (0..world.accounts.len())
            .filter(|&a| untouched(world, &taken, a) && pure_business(&world.accounts[a]))
            .collect();
        let Some(&account) = rng.pick(&free) else {
            continue;
        };
        // The month start runs at night, the month end during the working day.
        let local_start_ms = if last_day { rng.range_i64(11 * HOUR, 14 * HOUR) } else { rng.range_i64(HOUR, 3 * HOUR) };
        world.accounts[account].monthly_job =
            Some(MonthlyJob { last_day, local_start_ms, factor: rng.uniform_range(15.0, 40.0) });
        taken.insert(account);
    }

    // A CI key: three accounts of one tenant and credential type, none a nightly job (its
    // users must overlap in time to look shared), all presenting the first one's key.
    let free: Vec<usize> = (0..world.accounts.len())
        .filter(|&a| untouched(world, &taken, a) && world.accounts[a].profile != ProfileKind::NightlyJob)
        .collect();
    if let Some(&first) = rng.pick(&free) {
        let (tenant, kind) = (world.accounts[first].tenant, world.accounts[first].credential_type);
        let mut others: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&a| a != first && world.accounts[a].tenant == tenant && world.accounts[a].credential_type == kind)
            .collect();
        rng.shuffle(&mut others);
        if others.len() >= 2 {
            let key = world.accounts[first].initial_credential;
            for &other in &others[..2] {
                world.accounts[other].initial_credential = key;
                world.accounts[other].shares_key_of = Some(first);
                taken.insert(other);
            }
            taken.insert(first);
        }
    }

    let evaluated = world.evaluated_days();
    let mut outages = Vec::new();
    for period in [0..evaluated.start, evaluated.clone()] {
        if period.is_empty() {
            continue;
        }
        let day = rng.range(u64::from(period.start), u64::from(period.end - 1)) as u32;
        let duration_ms = rng.range_i64(8 * MINUTE, 20 * MINUTE);
        // When some business account of the main tenant is at work: most of the fleet is busy.
        let anchors: Vec<usize> = (0..world.accounts.len())
            .filter(|&a| world.accounts[a].tenant == catalog::TENANT_MAIN && world.accounts[a].is_business())
            .collect();
        let Some(&anchor) = rng.pick(&anchors) else {
            continue;
        };
        let Some(start_ms) = world.active_window(anchor, day, period, duration_ms, rng) else {
            continue;
        };
        let accounts: Vec<usize> = (0..world.accounts.len())
            .filter(|&a| {
                world.accounts[a].tenant == catalog::TENANT_MAIN
                    && !reserved.contains(&a)
                    && busy(world, a, start_ms, duration_ms)
            })
            .collect();
        if accounts.len() >= 4 {
            outages.push(Outage { accounts, start_ms, duration_ms });
        }
    }

    // A holiday that ends in each period (the ordinary holidays may end after the run).
    for period in [0..evaluated.start, evaluated.clone()] {
        let free: Vec<usize> = (0..world.accounts.len())
            .filter(|&a| untouched(world, &taken, a) && pure_business(&world.accounts[a]))
            .collect();
        let Some(&account) = rng.pick(&free) else {
            continue;
        };
        let day = rng.range(u64::from(period.start) + 1, u64::from(period.end) - 2) as u32;
        let noon = world.day_start(day) + 12 * HOUR;
        let acct = &mut world.accounts[account];
        let mut back = acct.zone.local_day(noon);
        while super::clock::is_weekend(back) {
            back += 1;
        }
        let mut last = back - 1;
        while super::clock::is_weekend(last) {
            last -= 1;
        }
        acct.holidays.push((last - rng.range_i64(1, 4), last));
        taken.insert(account);
    }

    // Every holiday ends with a backlog: the first working hours back run at 1.8-2.6x.
    for acct in world.accounts.iter_mut().filter(|a| !a.holidays.is_empty()) {
        acct.catch_up =
            Some(CatchUp { factor: rng.uniform_range(1.8, 2.6), duration_ms: rng.range_i64(3 * HOUR, 5 * HOUR) });
    }

    // Overlapping rotations, one in the history and one in the judged days.
    for period in [0..evaluated.start, evaluated] {
        let free: Vec<usize> = (0..world.accounts.len())
            .filter(|&a| untouched(world, &taken, a) && world.accounts[a].profile != ProfileKind::NightlyJob)
            .collect();
        let Some(&account) = rng.pick(&free) else {
            continue;
        };
        let day = rng.range(u64::from(period.start), u64::from(period.end - 1)) as u32;
        let Some(first_created_ms) = world.active_window(account, day, period, 90 * MINUTE, rng) else {
            continue;
        };
        let mut created_ms = first_created_ms;
        let mut old = world.accounts[account].initial_credential;
        for _ in 0..2 {
            let credential_type = world.accounts[account].credential_type;
            let new = world.new_credential(credential_type, account, rng);
            let switch_ms = created_ms + rng.range_i64(2 * MINUTE, 8 * MINUTE);
            let fade_end_ms = switch_ms + rng.range_i64(6 * HOUR, 14 * HOUR);
            let revoked_ms = fade_end_ms + rng.range_i64(30 * MINUTE, 90 * MINUTE);
            world.accounts[account].rotations.push(Rotation {
                old,
                new,
                created_ms,
                switch_ms,
                fade_end_ms,
                ending: RotationEnding::Overlap { rotated_ms: switch_ms, revoked_ms },
            });
            // The next rotation begins while workers are still moving off the old key.
            created_ms = switch_ms + rng.range_i64(2 * HOUR, 5 * HOUR);
            old = new;
        }
        taken.insert(account);
    }
    outages
}

/// Whether the account authenticates during `[start, start + duration]`.
fn busy(world: &World, account: usize, start_ms: i64, duration_ms: i64) -> bool {
    let a = &world.accounts[account];
    let local_day = a.zone.local_day(start_ms);
    match a.schedule {
        Schedule::AlwaysOn { .. } => true,
        Schedule::BusinessHours { .. } => {
            let hour = a.zone.local_hour(start_ms);
            !super::clock::is_weekend(local_day) && !a.is_holiday(local_day) && (9.5..16.5).contains(&hour)
        }
        Schedule::HourlyCron { minute, .. } => {
            let run = start_ms.div_euclid(HOUR) * HOUR + minute * MINUTE;
            (start_ms..start_ms + duration_ms).contains(&run)
                || (start_ms..start_ms + duration_ms).contains(&(run + HOUR))
        }
        Schedule::NightlyJob { .. } => false,
    }
}

/// Events of the outages (appended to `out`) and the labels of every trap in the run.
pub(crate) fn render(world: &World, outages: &[Outage], out: &mut Vec<Event>) -> Vec<BenignLabel> {
    let mut labels = Vec::new();
    let in_run = |t: i64| (world.start_ms..world.end_ms).contains(&t);
    for (index, outage) in outages.iter().enumerate() {
        let mut rng = Rng::stream(world.seed, Stream::BenignEvents, 2 << 32 | index as u64, 0);
        for &account in &outage.accounts {
            let failures = rng.range(12, 40);
            for _ in 0..failures {
                let t = outage.start_ms + rng.range_i64(0, outage.duration_ms);
                out.push(world.auth_event(account, t, Outcome::Failure, Some(catalog::REASON_UNAVAILABLE), &mut rng));
            }
            let back = outage.start_ms + outage.duration_ms + rng.range_i64(5 * SECOND, MINUTE);
            out.push(world.auth_event(account, back, Outcome::Success, None, &mut rng));
            let description = format!(
                "token service outage of {:.0} min across {} accounts: {failures} retries failed ({}), then in",
                outage.duration_ms as f64 / MINUTE as f64,
                outage.accounts.len(),
                catalog::REASON_UNAVAILABLE
            );
            labels.push(label(world, "outage", account, outage.start_ms, description));
        }
    }

    for (account, acct) in world.accounts.iter().enumerate() {
        for local_day in acct.zone.local_day(world.start_ms)..=acct.zone.local_day(world.end_ms) {
            if let Some(run) = world.monthly_run(account, local_day) {
                if in_run(run.start_ms) {
                    let (year, month, day) = civil_from_days(local_day);
                    let description = format!(
                        "monthly export on {year:04}-{month:02}-{day:02} ({} of the month, local): {} calls, {:.0}x its usual hourly volume",
                        if day == 1 { "first day" } else { "last day" },
                        run.events,
                        run.factor
                    );
                    labels.push(label(world, "monthly_job", account, run.start_ms, description));
                }
            }
        }
        let key = acct.shares_key_of.unwrap_or(account);
        let users: Vec<&str> = (0..world.accounts.len())
            .filter(|&a| a == key || world.accounts[a].shares_key_of == Some(key))
            .map(|a| world.accounts[a].name.as_str())
            .collect();
        if users.len() > 1 {
            let description = format!(
                "key {} used by {} since the first day (a shared CI key)",
                world.credentials[acct.initial_credential].id,
                users.join(", ")
            );
            for time_ms in std::iter::once(world.start_ms).chain(world.evaluated_days().map(|d| world.day_start(d))) {
                labels.push(label(world, "shared_key", account, time_ms, description.clone()));
            }
        }
        if let Some(catch_up) = acct.catch_up {
            for day in acct.holiday_returns() {
                let time_ms = acct.zone.at(day, 9 * HOUR);
                if in_run(time_ms) {
                    let description = format!(
                        "back from a holiday: the backlog runs at {:.1}x the usual rate for {:.1} h",
                        catch_up.factor,
                        catch_up.duration_ms as f64 / HOUR as f64
                    );
                    labels.push(label(world, "holiday_return", account, time_ms, description));
                }
            }
        }
        // Hour steps of the local clock.
        let mut t = world.start_ms;
        while t + HOUR < world.end_ms {
            let (before, after) = (acct.zone.offset_at(t), acct.zone.offset_at(t + HOUR));
            if before != after {
                let shift = if after > before { "forward" } else { "back" };
                let description = format!("{} clocks moved {shift} one hour (daylight saving)", acct.zone.name);
                labels.push(label(world, "dst_change", account, t + HOUR, description));
            }
            t += HOUR;
        }
    }
    labels
}
