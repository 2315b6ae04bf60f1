//! Attacks injected after the warm-up, and their [`Incident`] labels.
//!
//! Planning picks accounts, days and sizes for every incident kind (at least twice each,
//! more for larger runs), spread over the evaluated days and, where it can, one incident per
//! account so that labels do not overlap. Rendering turns a plan into events built by the
//! same code as ordinary traffic: no attribute, action, user agent or id scheme marks them.

use std::collections::BTreeSet;

use super::catalog::{self, ProfileKind, SYSTEMS, USER_AGENTS};
use super::clock;
use super::profiles::{Account, Rotation, RotationEnding, World};
use super::rng::Rng;
use super::{Event, Incident, Outcome};
use crate::detection::time::{DAY, HOUR, MINUTE, SECOND};

mod render;

pub(crate) use render::render;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IncidentKind {
    FailedAuthBurst,
    DeniedBurst,
    PasswordSpray,
    BulkExport,
    SlowExfil,
    OffHours,
    RevokedKeyUse,
    ForeignKey,
    NewNetwork,
    // The hard set's attacks, each kept under the short-window thresholds of its category.
    LowSlowSpray,
    SustainedExfil,
    NightSession,
    SlowProbing,
}

impl IncidentKind {
    pub(crate) const ALL: [IncidentKind; 9] = [
        IncidentKind::FailedAuthBurst,
        IncidentKind::DeniedBurst,
        IncidentKind::PasswordSpray,
        IncidentKind::BulkExport,
        IncidentKind::SlowExfil,
        IncidentKind::OffHours,
        IncidentKind::RevokedKeyUse,
        IncidentKind::ForeignKey,
        IncidentKind::NewNetwork,
    ];
    /// Added by `GenOptions::hard`.
    pub(crate) const HARD: [IncidentKind; 4] = [
        IncidentKind::LowSlowSpray,
        IncidentKind::SustainedExfil,
        IncidentKind::NightSession,
        IncidentKind::SlowProbing,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            IncidentKind::FailedAuthBurst => "failed_auth_burst",
            IncidentKind::DeniedBurst => "denied_burst",
            IncidentKind::PasswordSpray => "password_spray",
            IncidentKind::BulkExport => "bulk_export",
            IncidentKind::SlowExfil => "slow_exfil",
            IncidentKind::OffHours => "off_hours",
            IncidentKind::RevokedKeyUse => "revoked_key_use",
            IncidentKind::ForeignKey => "foreign_key",
            IncidentKind::NewNetwork => "new_network",
            IncidentKind::LowSlowSpray => "low_slow_spray",
            IncidentKind::SustainedExfil => "sustained_exfil",
            IncidentKind::NightSession => "night_session",
            IncidentKind::SlowProbing => "slow_probing",
        }
    }

    pub(crate) fn category(self) -> &'static str {
        match self {
            IncidentKind::FailedAuthBurst
            | IncidentKind::DeniedBurst
            | IncidentKind::PasswordSpray
            | IncidentKind::LowSlowSpray
            | IncidentKind::SlowProbing => "failed_auth",
            IncidentKind::BulkExport | IncidentKind::SlowExfil | IncidentKind::SustainedExfil => "data_volume",
            IncidentKind::OffHours | IncidentKind::NightSession => "off_hours",
            IncidentKind::RevokedKeyUse | IncidentKind::ForeignKey | IncidentKind::NewNetwork => "credential_misuse",
        }
    }

    /// Accounts whose normal behaviour makes this incident meaningful.
    fn fits(self, account: &Account) -> bool {
        let pure_business = account.profile == ProfileKind::BusinessHours;
        match self {
            IncidentKind::FailedAuthBurst
            | IncidentKind::PasswordSpray
            | IncidentKind::LowSlowSpray
            | IncidentKind::RevokedKeyUse => true,
            // Need a busy time to hide in; a nightly job's few minutes are too short.
            IncidentKind::DeniedBurst
            | IncidentKind::SlowProbing
            | IncidentKind::ForeignKey
            | IncidentKind::NewNetwork => account.profile != ProfileKind::NightlyJob,
            // Weekly-report accounts export big volumes every Monday: not a fair victim.
            IncidentKind::BulkExport => {
                pure_business || matches!(account.profile, ProfileKind::HourlyCron | ProfileKind::AlwaysOn)
            }
            IncidentKind::SlowExfil => pure_business || account.profile == ProfileKind::AlwaysOn,
            // Twice a trickle is still a trickle: an account moving a few hundred KB an hour
            // or more, in its working hours (the detector ignores hours under 200 KB).
            IncidentKind::SustainedExfil => {
                let hourly = 60.0 * account.base_rate_per_minute(12.0) * account.mean_event_bytes();
                (pure_business || account.profile == ProfileKind::AlwaysOn) && hourly >= 300e3
            }
            // Off-hours only means something for an account with hours.
            IncidentKind::OffHours | IncidentKind::NightSession => pure_business,
        }
    }
}

#[derive(Debug)]
pub(crate) enum IncidentPlan {
    FailedAuthBurst {
        account: usize,
        start_ms: i64,
        duration_ms: i64,
        attempts: u64,
        source: (usize, u8),
        user_agent: &'static str,
    },
    DeniedBurst {
        /// `DeniedBurst` or the slower `SlowProbing`.
        kind: IncidentKind,
        account: usize,
        start_ms: i64,
        duration_ms: i64,
        attempts: u64,
    },
    PasswordSpray {
        /// `PasswordSpray` or the slower `LowSlowSpray`.
        kind: IncidentKind,
        victims: Vec<usize>,
        start_ms: i64,
        duration_ms: i64,
        source: (usize, u8),
        user_agent: &'static str,
    },
    BulkExport {
        account: usize,
        start_ms: i64,
        duration_ms: i64,
        events: u64,
        factor: f64,
    },
    SlowExfil {
        /// `SlowExfil` or the gentler `SustainedExfil`.
        kind: IncidentKind,
        account: usize,
        start_ms: i64,
        duration_ms: i64,
        factor: f64,
    },
    OffHours {
        /// `OffHours` or the shorter `NightSession`.
        kind: IncidentKind,
        account: usize,
        start_ms: i64,
        duration_ms: i64,
        events: u64,
    },
    RevokedKeyUse {
        account: usize,
        key: usize,
        revoked_ms: i64,
        start_ms: i64,
        duration_ms: i64,
        events: u64,
    },
    ForeignKey {
        account: usize,
        owner: usize,
        start_ms: i64,
        duration_ms: i64,
        events: u64,
    },
    NewNetwork {
        account: usize,
        start_ms: i64,
        duration_ms: i64,
        events: u64,
        source: (usize, u8),
    },
}

/// Accounts any incident touches as actor or key owner (spray victims excluded: an attacker
/// merely guessing their secret changes nothing about them).
pub(crate) fn accounts_involved(plans: &[IncidentPlan]) -> BTreeSet<usize> {
    plans
        .iter()
        .flat_map(|plan| match plan {
            IncidentPlan::PasswordSpray { .. } => vec![],
            IncidentPlan::ForeignKey { account, owner, .. } => vec![*account, *owner],
            IncidentPlan::FailedAuthBurst { account, .. }
            | IncidentPlan::DeniedBurst { account, .. }
            | IncidentPlan::BulkExport { account, .. }
            | IncidentPlan::SlowExfil { account, .. }
            | IncidentPlan::OffHours { account, .. }
            | IncidentPlan::RevokedKeyUse { account, .. }
            | IncidentPlan::NewNetwork { account, .. } => vec![*account],
        })
        .collect()
}

struct Planner {
    reserved: BTreeSet<usize>,
    /// Accounts with failed-auth incidents: spray victims avoid them so labels do not overlap.
    failed_auth_accounts: BTreeSet<usize>,
    used_external_ips: BTreeSet<(usize, u8)>,
    foreign_keys_planned: usize,
}

/// Plans every incident (with `hard`, the hard set's kinds too). Adds to `world` the key
/// rotations that revoked-key incidents need.
pub(crate) fn plan(world: &mut World, hard: bool, rng: &mut Rng) -> Vec<IncidentPlan> {
    let evaluated = world.evaluated_days();
    if evaluated.is_empty() || world.accounts.is_empty() {
        return Vec::new();
    }
    let evaluated_len = evaluated.len();
    let per_kind = 2 + world.accounts.len() * evaluated_len / 1000;
    let kinds = IncidentKind::ALL.iter().chain(if hard { &IncidentKind::HARD[..] } else { &[] });
    let mut jobs: Vec<IncidentKind> = kinds.flat_map(|&kind| std::iter::repeat_n(kind, per_kind)).collect();
    rng.shuffle(&mut jobs);
    // Shuffled kinds walk the evaluated days in order: every day gets a mix.
    let preferred_days: Vec<u32> =
        (0..jobs.len()).map(|i| evaluated.start + (i * evaluated_len / jobs.len()) as u32).collect();
    // Sprays last, so their victims can avoid accounts with other failed-auth incidents.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| matches!(jobs[i], IncidentKind::PasswordSpray | IncidentKind::LowSlowSpray));

    let mut planner = Planner {
        reserved: BTreeSet::new(),
        failed_auth_accounts: BTreeSet::new(),
        used_external_ips: BTreeSet::new(),
        foreign_keys_planned: 0,
    };
    let mut plans = Vec::with_capacity(jobs.len());
    for index in order {
        if let Some(plan) = planner.plan_one(world, jobs[index], preferred_days[index], rng) {
            for account in accounts_involved(std::slice::from_ref(&plan)) {
                planner.reserved.insert(account);
                if jobs[index].category() == "failed_auth" {
                    planner.failed_auth_accounts.insert(account);
                }
            }
            plans.push(plan);
        }
    }
    plans
}

impl Planner {
    /// A random fitting account, preferring ones no other incident uses.
    fn choose(&self, world: &World, fits: impl Fn(&Account) -> bool, rng: &mut Rng) -> Option<usize> {
        let fitting: Vec<usize> = (0..world.accounts.len()).filter(|&a| fits(&world.accounts[a])).collect();
        let fresh: Vec<usize> = fitting.iter().copied().filter(|a| !self.reserved.contains(a)).collect();
        rng.pick(if fresh.is_empty() { &fitting } else { &fresh }).copied()
    }

    fn plan_one(&mut self, world: &mut World, kind: IncidentKind, day: u32, rng: &mut Rng) -> Option<IncidentPlan> {
        let evaluated = world.evaluated_days();
        let minutes = |rng: &mut Rng, low: i64, high: i64| rng.range_i64(low * MINUTE, high * MINUTE);
        let plan = match kind {
            IncidentKind::FailedAuthBurst => {
                let account = self.choose(world, |a| kind.fits(a), rng)?;
                let duration_ms = minutes(rng, 2, 10);
                IncidentPlan::FailedAuthBurst {
                    account,
                    start_ms: any_time(world, day, duration_ms, rng)?,
                    duration_ms,
                    attempts: rng.range(30, 300),
                    source: world.external_source(&[], &[], &mut self.used_external_ips, rng)?,
                    user_agent: USER_AGENTS[rng.index(USER_AGENTS.len())],
                }
            }
            IncidentKind::DeniedBurst | IncidentKind::SlowProbing => {
                let account = self.choose(world, |a| kind.fits(a), rng)?;
                // Slow probing: about one denial a minute for most of an hour, under 15 in
                // any 10 minutes.
                let slow = kind == IncidentKind::SlowProbing;
                let duration_ms = if slow { minutes(rng, 45, 58) } else { minutes(rng, 3, 10) };
                let start_ms = world.active_window(account, day, evaluated, duration_ms, rng)?;
                let attempts = if slow { rng.range(40, 55) } else { rng.range(20, 80) };
                IncidentPlan::DeniedBurst { kind, account, start_ms, duration_ms, attempts }
            }
            IncidentKind::PasswordSpray | IncidentKind::LowSlowSpray => {
                let mut candidates: Vec<usize> =
                    (0..world.accounts.len()).filter(|a| !self.failed_auth_accounts.contains(a)).collect();
                if candidates.len() < 2 {
                    return None;
                }
                rng.shuffle(&mut candidates);
                // Low and slow: a few dozen accounts over hours, fewer than 10 in any half hour.
                let (victims, duration_ms) = match kind {
                    IncidentKind::LowSlowSpray => (rng.range(25, 45), minutes(rng, 180, 300)),
                    _ => (rng.range(15, 40), minutes(rng, 10, 30)),
                };
                candidates.truncate(victims as usize);
                candidates.sort_unstable();
                IncidentPlan::PasswordSpray {
                    kind,
                    victims: candidates,
                    start_ms: any_time(world, day, duration_ms, rng)?,
                    duration_ms,
                    source: world.external_source(&[], &[], &mut self.used_external_ips, rng)?,
                    user_agent: USER_AGENTS[rng.index(USER_AGENTS.len())],
                }
            }
            IncidentKind::BulkExport => {
                let account = self.choose(world, |a| kind.fits(a), rng)?;
                let duration_ms = minutes(rng, 5, 15);
                IncidentPlan::BulkExport {
                    account,
                    start_ms: world.active_window(account, day, evaluated, duration_ms, rng)?,
                    duration_ms,
                    events: rng.range(10, 40),
                    factor: rng.uniform_range(20.0, 100.0),
                }
            }
            IncidentKind::SlowExfil | IncidentKind::SustainedExfil => {
                let account = self.choose(world, |a| kind.fits(a), rng)?;
                // Sustained: about twice the usual volume for most of a working day (an
                // always-on account's day is longer).
                let always_on = world.accounts[account].profile == ProfileKind::AlwaysOn;
                let sustained = kind == IncidentKind::SustainedExfil;
                let duration_ms = match (sustained, always_on) {
                    (true, true) => minutes(rng, 420, 540),
                    (true, false) => minutes(rng, 390, 420),
                    (false, _) => minutes(rng, 180, 360),
                };
                let start_ms = world.active_window(account, day, evaluated, duration_ms, rng)?;
                let factor = if sustained { rng.uniform_range(2.0, 2.4) } else { rng.uniform_range(4.0, 8.0) };
                IncidentPlan::SlowExfil { kind, account, start_ms, duration_ms, factor }
            }
            IncidentKind::OffHours => {
                let account = self.choose(world, |a| kind.fits(a), rng)?;
                let duration_ms = minutes(rng, 10, 60);
                IncidentPlan::OffHours {
                    kind,
                    account,
                    start_ms: off_hours_start(world, account, day, duration_ms, rng)?,
                    duration_ms,
                    events: rng.range(5, 40),
                }
            }
            IncidentKind::NightSession => {
                let account = self.choose(world, |a| kind.fits(a), rng)?;
                // Four calls (the sign-in and three more) in a few minutes across a full hour
                // of the night, two on each side, so that neither clock hour holds three.
                let duration_ms = minutes(rng, 4, 14);
                let boundary = off_hours_start(world, account, day, 2 * HOUR, rng)?.div_euclid(HOUR) * HOUR + HOUR;
                IncidentPlan::OffHours {
                    kind,
                    account,
                    start_ms: boundary - rng.range_i64(duration_ms / 3, 2 * duration_ms / 3),
                    duration_ms,
                    events: 3,
                }
            }
            IncidentKind::RevokedKeyUse => self.plan_revoked_key_use(world, day, rng)?,
            IncidentKind::ForeignKey => {
                // Alternate: the log names the real owner, then a log that omits owners.
                let wants_owner_logged = self.foreign_keys_planned.is_multiple_of(2);
                let account = self
                    .choose(world, |a| kind.fits(a) && a.logs_owner == wants_owner_logged, rng)
                    .or_else(|| self.choose(world, |a| kind.fits(a), rng))?;
                let owner = self.choose(world, |_| true, rng).filter(|&o| o != account).or_else(|| {
                    let others: Vec<usize> = (0..world.accounts.len()).filter(|&o| o != account).collect();
                    rng.pick(&others).copied()
                })?;
                let duration_ms = minutes(rng, 5, 30);
                self.foreign_keys_planned += 1;
                IncidentPlan::ForeignKey {
                    account,
                    owner,
                    start_ms: world.active_window(account, day, evaluated, duration_ms, rng)?,
                    duration_ms,
                    events: rng.range(3, 20),
                }
            }
            IncidentKind::NewNetwork => {
                let account = self.choose(world, |a| kind.fits(a), rng)?;
                let duration_ms = minutes(rng, 10, 60);
                let (countries, asns) = {
                    let acct = &world.accounts[account];
                    (acct.countries(world), acct.asns(world))
                };
                IncidentPlan::NewNetwork {
                    account,
                    start_ms: world.active_window(account, day, evaluated, duration_ms, rng)?,
                    duration_ms,
                    events: rng.range(5, 40),
                    source: world.external_source(&countries, &asns, &mut self.used_external_ips, rng)?,
                }
            }
        };
        Some(plan)
    }

    /// A planned rotation that ends in a revoke (normally in the warm-up), then the old key
    /// used again by the same account days later.
    fn plan_revoked_key_use(&mut self, world: &mut World, day: u32, rng: &mut Rng) -> Option<IncidentPlan> {
        let evaluated = world.evaluated_days();
        let account = self.choose(
            world,
            |a| IncidentKind::RevokedKeyUse.fits(a) && a.rotations.is_empty() && a.profile != ProfileKind::NightlyJob,
            rng,
        )?;
        // The rotation at least two days before the misuse, at a time the account is busy.
        let latest_rotation_day = day.max(evaluated.start).checked_sub(2)?;
        let rotation_day =
            rng.range(u64::from(latest_rotation_day.saturating_sub(7).max(1)), u64::from(latest_rotation_day)) as u32;
        let created_ms = world.active_window(account, rotation_day, 0..latest_rotation_day + 1, 90 * MINUTE, rng)?;
        let switch_ms = created_ms + rng.range_i64(2 * MINUTE, 8 * MINUTE);
        let revoked_ms = switch_ms + rng.range_i64(55 * MINUTE, 75 * MINUTE);
        let duration_ms = rng.range_i64(5 * MINUTE, 30 * MINUTE);
        let misuse_days = evaluated.start.max(world.day_index(revoked_ms) + 2)..evaluated.end;
        let start_ms = world.active_window(account, day, misuse_days, duration_ms, rng)?;

        let credential_type = world.accounts[account].credential_type;
        let old = world.accounts[account].initial_credential;
        let new = world.new_credential(credential_type, account, rng);
        world.accounts[account].rotations.push(Rotation {
            old,
            new,
            created_ms,
            switch_ms,
            fade_end_ms: switch_ms,
            ending: RotationEnding::Revoke { at_ms: revoked_ms },
        });
        Some(IncidentPlan::RevokedKeyUse {
            account,
            key: old,
            revoked_ms,
            start_ms,
            duration_ms,
            events: rng.range(3, 15),
        })
    }
}

/// Any time of UTC day `day` (attackers keep no schedule), leaving room for the duration.
fn any_time(world: &World, day: u32, duration_ms: i64, rng: &mut Rng) -> Option<i64> {
    let start = world.day_start(day);
    let latest = world.day_start(day + 1).min(world.end_ms) - duration_ms - 10 * MINUTE;
    (latest > start).then(|| rng.range_i64(start, latest))
}

/// 02:00-05:00 local on a weekend or a weeknight, within the evaluated days.
fn off_hours_start(world: &World, account: usize, day: u32, duration_ms: i64, rng: &mut Rng) -> Option<i64> {
    let zone = world.accounts[account].zone;
    let earliest = world.warmup_end_ms;
    let latest_end = world.end_ms - 10 * MINUTE;
    super::activity::days_nearest_first(day, world.evaluated_days()).find_map(|d| {
        let local_day = zone.local_day(world.day_start(d) + 12 * HOUR);
        let slack = (3 * HOUR - duration_ms).max(0);
        let start = zone.at(local_day, 2 * HOUR + rng.range_i64(0, slack));
        (start >= earliest && start + duration_ms <= latest_end).then_some(start)
    })
}
