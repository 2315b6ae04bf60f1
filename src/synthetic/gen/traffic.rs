//! Ordinary traffic of each profile, generated one unit at a time: a business day, a Monday
//! report export, a cron run, a nightly batch, an hour of an always-on integration.
//!
//! Invariant: every unit has an anchor (its earliest possible event) and draws from its own
//! random stream keyed by the unit, so the day loop can ask "which units start in this UTC
//! day?" and get the same events whatever else is generated.

use super::clock;
use super::profiles::{CredentialType, Schedule, World};
use super::rng::{Rng, Stream};
use super::{Event, Outcome};
use crate::detection::time::{civil_from_days, weekday, HOUR, MINUTE, SECOND};

/// Earliest local start of a business day (09:00 minus the largest jitter).
const BUSINESS_ANCHOR_MS: i64 = 8 * HOUR + 30 * MINUTE;
const WEEKLY_EXPORT_ANCHOR_MS: i64 = 6 * HOUR;

/// A Monday report export as planned: shared by the traffic and by its benign label.
#[derive(Debug)]
pub(crate) struct ExportRun {
    pub(crate) start_ms: i64,
    pub(crate) events: u64,
    pub(crate) duration_ms: i64,
    pub(crate) total_bytes: f64,
    pub(crate) factor: f64,
    rng: Rng,
}

impl World {
    /// Ordinary events of `account` for every unit anchored in `[from, to)`. Events may run
    /// past `to`; they are never earlier than `from`.
    pub(crate) fn regular_events(&self, account: usize, from: i64, to: i64, out: &mut Vec<Event>) {
        let acct = &self.accounts[account];
        let zone = acct.zone;
        let local_days = zone.local_day(from) - 1..=zone.local_day(to) + 1;
        let hours = from.div_euclid(HOUR) - 1..=to.div_euclid(HOUR);
        let anchored = |anchor: i64| (from..to).contains(&anchor);
        match acct.schedule {
            Schedule::BusinessHours { weekly_export_factor, .. } => {
                for local_day in local_days {
                    if anchored(zone.at(local_day, BUSINESS_ANCHOR_MS)) {
                        self.business_day(account, local_day, out);
                    }
                    if weekly_export_factor.is_some() && anchored(zone.at(local_day, WEEKLY_EXPORT_ANCHOR_MS)) {
                        if let Some(run) = self.weekly_export_run(account, local_day) {
                            self.export_events(account, run, out);
                        }
                    }
                    if let Some(job) = acct.monthly_job {
                        if anchored(zone.at(local_day, job.local_start_ms)) {
                            if let Some(run) = self.monthly_run(account, local_day) {
                                self.export_events(account, run, out);
                            }
                        }
                    }
                }
            }
            Schedule::HourlyCron { minute, .. } => {
                for hour in hours {
                    let anchor = hour * HOUR + minute * MINUTE;
                    if anchored(anchor) {
                        self.cron_run(account, hour, anchor, out);
                    }
                }
            }
            Schedule::NightlyJob { local_start_ms, .. } => {
                for local_day in local_days {
                    let anchor = zone.at(local_day, local_start_ms);
                    if anchored(anchor) {
                        self.nightly_run(account, local_day, anchor, out);
                    }
                }
            }
            Schedule::AlwaysOn { .. } => {
                for hour in hours {
                    if anchored(hour * HOUR) {
                        self.always_on_hour(account, hour, out);
                    }
                }
            }
        }
    }

    /// Events before the run starts or after it ends are never written.
    fn in_run(&self, time_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&time_ms)
    }

    fn business_day(&self, account: usize, local_day: i64, out: &mut Vec<Event>) {
        let acct = &self.accounts[account];
        let Schedule::BusinessHours { mean_gap_minutes, .. } = acct.schedule else {
            return;
        };
        if clock::is_weekend(local_day) || acct.is_holiday(local_day) {
            return;
        }
        let mut rng = Rng::stream(self.seed, Stream::BusinessDay, account as u64, local_day);
        let zone = acct.zone;
        let jitter = |rng: &mut Rng| ((rng.normal() * 12.0).clamp(-30.0, 30.0) * MINUTE as f64) as i64;
        let anchor = zone.at(local_day, BUSINESS_ANCHOR_MS);
        let begin = zone.at(local_day, 9 * HOUR + jitter(&mut rng)).max(anchor);
        let end = zone.at(local_day, 17 * HOUR + 30 * MINUTE + jitter(&mut rng));
        let lunch_start = zone.at(local_day, 12 * HOUR + rng.range_i64(-15 * MINUTE, 15 * MINUTE));
        let lunch_end = lunch_start + rng.range_i64(45 * MINUTE, 75 * MINUTE);
        let rate_per_ms = self.growth(acct, begin) / (mean_gap_minutes * MINUTE as f64);
        // After a holiday the backlog is worked off first (hard set).
        let catch_up = acct
            .catch_up
            .filter(|_| acct.holiday_returns().any(|day| day == local_day))
            .map(|c| (begin + c.duration_ms, c.factor));

        // A session starts with authentication; OAuth tokens are refreshed about hourly.
        self.push(out, self.auth_event(account, begin, Outcome::Success, None, &mut rng));
        let oauth = acct.credential_type == CredentialType::OauthToken;
        let mut next_refresh = begin + rng.range_i64(55 * MINUTE, 65 * MINUTE);
        let mut t = begin as f64;
        loop {
            t += match catch_up {
                Some((until, factor)) if (t as i64) < until => rng.exponential(rate_per_ms * factor),
                _ => rng.exponential(rate_per_ms),
            };
            let time_ms = t as i64;
            if time_ms >= end {
                break;
            }
            // Lunch dip by thinning: keep 30% of arrivals.
            if (lunch_start..lunch_end).contains(&time_ms) && !rng.chance(0.3) {
                continue;
            }
            if oauth && time_ms >= next_refresh {
                self.push(out, self.auth_event(account, time_ms, Outcome::Success, None, &mut rng));
                next_refresh = time_ms + rng.range_i64(55 * MINUTE, 65 * MINUTE);
            }
            self.push(out, self.ordinary_event(account, time_ms, &mut rng));
        }
    }

    /// The Monday export of a weekly-report account, if it runs on this local day.
    pub(crate) fn weekly_export_run(&self, account: usize, local_day: i64) -> Option<ExportRun> {
        let acct = &self.accounts[account];
        let Schedule::BusinessHours { mean_gap_minutes, weekly_export_factor: Some(factor) } = acct.schedule else {
            return None;
        };
        if weekday(local_day) != 0 || acct.is_holiday(local_day) {
            return None;
        }
        let mut rng = Rng::stream(self.seed, Stream::WeeklyExport, account as u64, local_day);
        let start_ms = acct.zone.at(local_day, WEEKLY_EXPORT_ANCHOR_MS) + rng.range_i64(0, 30 * MINUTE);
        let hourly_bytes = 60.0 / mean_gap_minutes * self.growth(acct, start_ms) * acct.mean_event_bytes();
        let factor = factor * rng.uniform_range(0.8, 1.2);
        Some(ExportRun {
            start_ms,
            events: rng.range(10, 40),
            duration_ms: rng.range_i64(10 * MINUTE, 40 * MINUTE),
            total_bytes: factor * hourly_bytes,
            factor,
            rng,
        })
    }

    /// The monthly export of an account that has one, if it runs on this local day (the first
    /// or the last of the month; it runs on holidays and weekends too, as a scheduler would).
    pub(crate) fn monthly_run(&self, account: usize, local_day: i64) -> Option<ExportRun> {
        let acct = &self.accounts[account];
        let job = acct.monthly_job?;
        let (_, _, day) = civil_from_days(local_day);
        let (_, _, next_day) = civil_from_days(local_day + 1);
        if (job.last_day && next_day != 1) || (!job.last_day && day != 1) {
            return None;
        }
        let mut rng = Rng::stream(self.seed, Stream::MonthlyJob, account as u64, local_day);
        let start_ms = acct.zone.at(local_day, job.local_start_ms) + rng.range_i64(0, 10 * MINUTE);
        let factor = job.factor * rng.uniform_range(0.8, 1.2);
        Some(ExportRun {
            start_ms,
            events: rng.range(10, 40),
            duration_ms: rng.range_i64(15 * MINUTE, 40 * MINUTE),
            total_bytes: factor * self.typical_hourly_bytes(account, start_ms),
            factor,
            rng,
        })
    }

    /// An export run's events: the Monday report's or a monthly job's.
    fn export_events(&self, account: usize, run: ExportRun, out: &mut Vec<Event>) {
        let ExportRun { start_ms, events, duration_ms, total_bytes, mut rng, .. } = run;
        let acct = &self.accounts[account];
        let action = acct.system.export_action();
        self.push(out, self.auth_event(account, start_ms, Outcome::Success, None, &mut rng));
        let per_event = total_bytes / events as f64;
        for _ in 0..events {
            let time_ms = start_ms + rng.range_i64(1, duration_ms);
            let mut event = self.action_event(account, time_ms, action, &mut rng);
            event.bytes = (per_event * rng.uniform_range(0.7, 1.3)).round() as u64;
            event.records = acct.records_for(event.bytes, &mut rng);
            self.push(out, event);
        }
    }

    fn cron_run(&self, account: usize, hour: i64, anchor: i64, out: &mut Vec<Event>) {
        let acct = &self.accounts[account];
        let Schedule::HourlyCron { burst_events, .. } = acct.schedule else {
            return;
        };
        let mut rng = Rng::stream(self.seed, Stream::CronRun, account as u64, hour);
        let start = anchor + rng.range_i64(0, 20 * SECOND);
        let count = (burst_events * self.growth(acct, start) * rng.uniform_range(0.75, 1.25)).round().max(1.0) as u64;
        let span = rng.range_i64(20 * SECOND, 60 * SECOND);
        if acct.credential_type == CredentialType::OauthToken {
            self.push(out, self.auth_event(account, start, Outcome::Success, None, &mut rng));
        }
        for _ in 0..count {
            let time_ms = start + rng.range_i64(1, span);
            self.push(out, self.ordinary_event(account, time_ms, &mut rng));
        }
    }

    fn nightly_run(&self, account: usize, local_day: i64, anchor: i64, out: &mut Vec<Event>) {
        let acct = &self.accounts[account];
        let Schedule::NightlyJob { batch_events, duration_minutes, .. } = acct.schedule else {
            return;
        };
        let mut rng = Rng::stream(self.seed, Stream::NightlyRun, account as u64, local_day);
        let start = anchor + rng.range_i64(0, 5 * MINUTE);
        let count = (batch_events * self.growth(acct, start) * rng.uniform_range(0.8, 1.2)).round().max(1.0) as u64;
        let span = (duration_minutes * rng.uniform_range(0.8, 1.2) * MINUTE as f64) as i64;
        self.push(out, self.auth_event(account, start, Outcome::Success, None, &mut rng));
        for _ in 0..count {
            let time_ms = start + rng.range_i64(1, span);
            self.push(out, self.ordinary_event(account, time_ms, &mut rng));
        }
    }

    fn always_on_hour(&self, account: usize, hour: i64, out: &mut Vec<Event>) {
        let acct = &self.accounts[account];
        let Schedule::AlwaysOn { token_minute, .. } = acct.schedule else {
            return;
        };
        let mut rng = Rng::stream(self.seed, Stream::AlwaysOnHour, account as u64, hour);
        let hour_start = hour * HOUR;
        if acct.credential_type == CredentialType::OauthToken {
            let refresh = hour_start + token_minute * MINUTE + rng.range_i64(0, 30 * SECOND);
            self.push(out, self.auth_event(account, refresh, Outcome::Success, None, &mut rng));
        }
        let growth = self.growth(acct, hour_start);
        // Piecewise-constant rate per 10-minute slot follows the daily curve closely enough.
        const SLOT_MS: i64 = 10 * MINUTE;
        for slot in 0..6 {
            let slot_start = hour_start + slot * SLOT_MS;
            let slot_end = slot_start + SLOT_MS;
            let local_hour = acct.zone.local_hour(slot_start + SLOT_MS / 2);
            let rate_per_ms = acct.base_rate_per_minute(local_hour) * growth / MINUTE as f64;
            let mut t = slot_start as f64;
            loop {
                t += rng.exponential(rate_per_ms);
                let time_ms = t as i64;
                if time_ms >= slot_end {
                    break;
                }
                self.push(out, self.ordinary_event(account, time_ms, &mut rng));
            }
        }
    }

    fn push(&self, out: &mut Vec<Event>, event: Event) {
        if self.in_run(event.time_ms) {
            out.push(event);
        }
    }

    /// Ordinary events at `extra_factor` times the account's usual rate over a window, on top
    /// of its regular traffic: what slow exfiltration looks like.
    pub(crate) fn extra_rate_events(
        &self,
        account: usize,
        start_ms: i64,
        end_ms: i64,
        extra_factor: f64,
        rng: &mut Rng,
    ) -> Vec<Event> {
        let acct = &self.accounts[account];
        let mut events = Vec::new();
        const SLOT_MS: i64 = 10 * MINUTE;
        let mut slot_start = start_ms;
        while slot_start < end_ms {
            let slot_end = (slot_start + SLOT_MS).min(end_ms);
            let local_hour = acct.zone.local_hour(slot_start);
            let rate_per_ms =
                acct.base_rate_per_minute(local_hour) * self.growth(acct, slot_start) * extra_factor / MINUTE as f64;
            let mut t = slot_start as f64;
            loop {
                t += rng.exponential(rate_per_ms);
                let time_ms = t as i64;
                if time_ms >= slot_end {
                    break;
                }
                // The ordinary action mix keeps each event, and the mean size, ordinary.
                events.push(self.ordinary_event(account, time_ms, rng));
            }
            slot_start = slot_end;
        }
        events
    }
}
