//! When and where an account acts: building an event of an account at a time (its key,
//! network and agent at that moment, an action of its own with a size of its own), finding
//! a time when an account is normally busy, and picking IPs outside every home network.
//! Ordinary traffic, benign behaviours and incidents all build events here, which is what
//! keeps incident traffic free of markers.

use std::collections::BTreeSet;

use super::catalog::{self, ActionKind, ActionSpec, SystemCatalog};
use super::clock;
use super::profiles::{Schedule, World};
use super::rng::Rng;
use super::{Event, Outcome, Resource};
use crate::detection::time::{DAY, HOUR, MINUTE, SECOND};

impl World {
    /// An event of `account` with the given action, using its key, network and agent at `time_ms`.
    pub(crate) fn event(
        &self,
        account: usize,
        time_ms: i64,
        action: &'static str,
        system: &'static str,
        resource: Resource,
        rng: &mut Rng,
    ) -> Event {
        let acct = &self.accounts[account];
        let credential = acct.credential_at(time_ms, rng);
        let (network, host) = acct.pick_source(time_ms, rng);
        Event {
            time_ms,
            account: account as u32,
            action,
            outcome: Outcome::Success,
            credential: Some(credential as u32),
            show_owner: acct.logs_owner,
            network: network as u32,
            host,
            user_agent: acct.user_agent,
            system,
            resource,
            bytes: 0,
            records: 0,
            reason: None,
        }
    }

    /// An event of one of the account's own actions, with bytes and records of its usual size.
    pub(crate) fn action_event(
        &self,
        account: usize,
        time_ms: i64,
        action: &'static ActionSpec,
        rng: &mut Rng,
    ) -> Event {
        let acct = &self.accounts[account];
        let bytes = acct.sample_bytes(action.size, rng);
        let records = if action.kind == ActionKind::Write { rng.range(1, 20) } else { acct.records_for(bytes, rng) };
        let resource = self.ordinary_resource(acct.system, rng);
        let mut event = self.event(account, time_ms, action.name, acct.system.system, resource, rng);
        event.bytes = bytes;
        event.records = records;
        event
    }

    /// What the account does most of the time: one of its actions, drawn by weight.
    pub(crate) fn ordinary_event(&self, account: usize, time_ms: i64, rng: &mut Rng) -> Event {
        let action = self.accounts[account].pick_action(rng);
        self.action_event(account, time_ms, action, rng)
    }

    pub(crate) fn ordinary_resource(&self, system: &'static SystemCatalog, rng: &mut Rng) -> Resource {
        let stem = system.resources.get(rng.index(system.resources.len())).copied().unwrap_or("items");
        Resource::Numbered(stem, rng.range(1, 20_000) as u32)
    }

    /// A successful or failed authentication (`auth.login` for API keys, `auth.token` for OAuth).
    pub(crate) fn auth_event(
        &self,
        account: usize,
        time_ms: i64,
        outcome: Outcome,
        reason: Option<&'static str>,
        rng: &mut Rng,
    ) -> Event {
        let acct = &self.accounts[account];
        let action = acct.credential_type.auth_action();
        let resource = Resource::Plain(if action == catalog::AUTH_TOKEN { "oauth/token" } else { "session" });
        let mut event = self.event(account, time_ms, action, catalog::IDENTITY_SYSTEM, resource, rng);
        event.outcome = outcome;
        event.reason = reason;
        if outcome == Outcome::Success {
            event.bytes = rng.range(700, 1600);
            event.records = 1;
        }
        event
    }

    /// A start time on UTC day `day` (or the nearest day in `allowed`) when the account is
    /// normally busy, such that `[start, start + duration_ms]` is busy too and inside `allowed`.
    pub(crate) fn active_window(
        &self,
        account: usize,
        preferred_day: u32,
        allowed: std::ops::Range<u32>,
        duration_ms: i64,
        rng: &mut Rng,
    ) -> Option<i64> {
        let earliest = self.day_start(allowed.start);
        let latest_end = self.day_start(allowed.end).min(self.end_ms) - 10 * MINUTE;
        days_nearest_first(preferred_day, allowed).find_map(|day| {
            self.active_start_on(account, day, duration_ms, rng)
                .filter(|&start| start >= earliest && start + duration_ms <= latest_end)
        })
    }

    /// A busy start time inside UTC day `day`, if the account has one that day.
    fn active_start_on(&self, account: usize, day: u32, duration_ms: i64, rng: &mut Rng) -> Option<i64> {
        let acct = &self.accounts[account];
        let zone = acct.zone;
        let day_start = self.day_start(day);
        let this_day = day_start..day_start + DAY;
        if let Schedule::HourlyCron { minute, .. } = acct.schedule {
            let hour = day_start.div_euclid(HOUR) + rng.range_i64(1, 22);
            return Some(hour * HOUR + minute * MINUTE + rng.range_i64(0, 30 * SECOND));
        }
        // Local dates overlapping this UTC day, the one covering its middle first: far from
        // UTC, a local morning or night may fall on the UTC day before or after.
        let middle = zone.local_day(day_start + 12 * HOUR);
        [middle, middle - 1, middle + 1].into_iter().find_map(|local_day| {
            let start = match acct.schedule {
                Schedule::BusinessHours { .. } => {
                    // 09:45-16:45 is inside every jittered working day.
                    let slack = 7 * HOUR - duration_ms;
                    if clock::is_weekend(local_day) || acct.is_holiday(local_day) || slack < 0 {
                        return None;
                    }
                    zone.at(local_day, 9 * HOUR + 45 * MINUTE + rng.range_i64(0, slack))
                }
                Schedule::AlwaysOn { .. } => {
                    let slack = 12 * HOUR - duration_ms;
                    if slack < 0 {
                        return None;
                    }
                    zone.at(local_day, 8 * HOUR + rng.range_i64(0, slack))
                }
                Schedule::NightlyJob { local_start_ms, .. } => {
                    zone.at(local_day, local_start_ms) + rng.range_i64(0, 2 * MINUTE)
                }
                Schedule::HourlyCron { .. } => return None,
            };
            this_day.contains(&start).then_some(start)
        })
    }

    /// An IP in an external network, avoiding the given countries and ASNs and any IP already used.
    pub(crate) fn external_source(
        &self,
        avoid_countries: &[&str],
        avoid_asns: &[u32],
        used: &mut BTreeSet<(usize, u8)>,
        rng: &mut Rng,
    ) -> Option<(usize, u8)> {
        let candidates: Vec<usize> = self
            .external_networks
            .iter()
            .copied()
            .filter(|&n| {
                !avoid_countries.contains(&self.networks[n].country) && !avoid_asns.contains(&self.networks[n].asn)
            })
            .collect();
        for _ in 0..64 {
            let network = *rng.pick(&candidates)?;
            let host = rng.range(2, 254) as u8;
            if used.insert((network, host)) {
                return Some((network, host));
            }
        }
        None
    }
}

/// preferred, preferred+1, preferred-1, preferred+2, ... clipped to `allowed`.
pub(crate) fn days_nearest_first(preferred: u32, allowed: std::ops::Range<u32>) -> impl Iterator<Item = u32> {
    let span = i64::from(allowed.end.saturating_sub(allowed.start));
    (0..2 * span + 1).filter_map(move |step| {
        let offset = if step % 2 == 1 { (step + 1) / 2 } else { -(step / 2) };
        let day = i64::from(preferred) + offset;
        (day >= i64::from(allowed.start) && day < i64::from(allowed.end)).then_some(day as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_nearest_first_alternates_and_clips() {
        let days: Vec<u32> = days_nearest_first(15, 14..18).collect();
        assert_eq!(days, vec![15, 16, 14, 17]);
        assert_eq!(days_nearest_first(3, 5..5).count(), 0);
    }
}
