//! Deterministic synthetic audit traffic of automation accounts, with labelled incidents.
//!
//! `generate` writes events as JSON lines (the audit-event contract, `schemas/audit-event.schema.json`: `id`, `time`
//! as RFC 3339 UTC with milliseconds, `account`, `action`, `outcome`, `credential`, `source`,
//! `target`, `bytes`, `records`, optional `reason`, `tenant`), in non-decreasing event time, and
//! returns [`Labels`]: the incidents it injected and the benign behaviours that a detector
//! must stay quiet about. Labels serialize to JSON for `auditwatch gen` and `eval`.
//!
//! Invariants:
//! - Same [`GenOptions`] give the same bytes, on any platform, forever: a hand-written PRNG
//!   (`rng`), IEEE-exact math, and daylight-saving rules written out (`clock`).
//! - Memory stays small: the world and the incidents are planned up front, then traffic is
//!   generated and written one UTC day at a time.
//! - Incidents happen only after the warm-up and carry no marker: same actions, user agents,
//!   reasons and id scheme as ordinary traffic.
//!
//! Layout: `profiles` (accounts, keys, networks), `activity` (how an event is built, when an
//! account is busy), `traffic` (ordinary behaviour per profile), `benign` (rotations,
//! retries, holidays... and their labels), `traps` (the hard set's outages, monthly jobs,
//! shared key), `incidents` (attacks and their labels), `writer`
//! (JSON lines), `catalog` (systems, names, networks), `clock` (time zones; dates and
//! weekdays come from `detection::time`), `rng`.

mod activity;
mod benign;
mod catalog;
mod clock;
mod incidents;
mod profiles;
mod rng;
mod traffic;
mod traps;
mod writer;

use serde::{Deserialize, Serialize};

use crate::detection::time::format_rfc3339;

use profiles::World;
use rng::{Rng, Stream};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    pub seed: u64,
    pub accounts: usize,
    pub days: u32,
    /// First instant of the run; days are 24-hour periods from here.
    pub start: chrono::DateTime<chrono::Utc>,
    /// Days at the start without incidents, where detectors learn their baselines.
    pub warmup_days: u32,
    /// Adds the hard set: attacks kept under every short-window threshold (low-and-slow
    /// sprays, sustained modest exfiltration, night sessions across an hour boundary, slow
    /// probing) and benign traps (an outage across accounts, monthly jobs, a key shared from
    /// the start, daylight-saving changes).
    pub hard: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 1,
            accounts: 100,
            days: 21,
            // 2026-01-05T00:00:00Z, a Monday.
            start: chrono::DateTime::from_timestamp(1_767_571_200, 0).unwrap_or_default(),
            warmup_days: 14,
            hard: false,
        }
    }
}

impl GenOptions {
    /// The hard set: 80 accounts, 45 days of history and 7 judged days from Monday
    /// 2026-02-09, so the history holds a month end and a month start (Feb 28, Mar 1) three
    /// weeks in, after every baseline's warm-up, and the judged days the next ones (Mar 31,
    /// Apr 1); the run crosses both the US and the EU daylight-saving change (Mar 8, Mar 29).
    pub fn hard(seed: u64) -> GenOptions {
        GenOptions {
            seed,
            accounts: 80,
            days: 52,
            start: chrono::DateTime::from_timestamp(1_770_595_200, 0).unwrap_or_default(),
            warmup_days: 45,
            hard: true,
        }
    }
}

/// Ground truth of a generated run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    pub seed: u64,
    pub accounts: usize,
    pub days: u32,
    /// RFC 3339.
    pub start: String,
    pub warmup_days: u32,
    pub incidents: Vec<Incident>,
    pub benign: Vec<BenignLabel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `inc-001`, numbered in order of start time.
    pub id: String,
    /// `failed_auth_burst`, `denied_burst`, `password_spray`, `bulk_export`, `slow_exfil`,
    /// `off_hours`, `revoked_key_use`, `foreign_key`, `new_network`; in the hard set also
    /// `low_slow_spray`, `sustained_exfil`, `night_session`, `slow_probing`.
    pub kind: String,
    /// The alert category that should catch it: `failed_auth`, `data_volume`, `off_hours`,
    /// `credential_misuse`.
    pub category: String,
    /// Accounts the incident is about; the acting account first.
    pub accounts: Vec<String>,
    pub tenant: Option<String>,
    pub source_ip: Option<String>,
    pub credential_id: Option<String>,
    /// First and last incident event, RFC 3339 UTC with milliseconds.
    pub start: String,
    pub end: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenignLabel {
    /// `auth_retry`, `key_rotation_revoke`, `key_rotation_rotate`, `new_ip_known_network`,
    /// `holiday_gap`, `gradual_growth`, `isolated_denied`, `weekly_report`; in the hard set also
    /// `outage`, `monthly_job`, `shared_key`, `dst_change`.
    pub kind: String,
    pub account: String,
    pub time: String,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// `target.resource`, kept unformatted until written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Resource {
    Plain(&'static str),
    /// `stem/number`.
    Numbered(&'static str, u32),
    /// `credentials/<key id>`.
    Credential(u32),
}

/// An event before serialization: indices into the world instead of strings, so a day of
/// events stays compact.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) time_ms: i64,
    pub(crate) account: u32,
    pub(crate) action: &'static str,
    pub(crate) outcome: Outcome,
    pub(crate) credential: Option<u32>,
    /// Whether the log fills `credential.owner`.
    pub(crate) show_owner: bool,
    pub(crate) network: u32,
    pub(crate) host: u8,
    pub(crate) user_agent: &'static str,
    pub(crate) system: &'static str,
    pub(crate) resource: Resource,
    pub(crate) bytes: u64,
    pub(crate) records: u64,
    pub(crate) reason: Option<&'static str>,
}

/// Writes events as JSON lines, in event-time order, and returns the labels.
pub fn generate(opts: &GenOptions, events: &mut dyn std::io::Write) -> std::io::Result<Labels> {
    let Plan { world, scripted, labels } = Plan::build(opts);
    let mut writer = writer::EventWriter::new(opts.seed, events);
    let mut carried: Vec<Event> = Vec::new();
    let mut next_scripted = 0;
    for day in 0..world.days {
        let day_start = world.day_start(day);
        let day_end = world.day_start(day + 1).min(world.end_ms);
        let mut batch = std::mem::take(&mut carried);
        for account in 0..world.accounts.len() {
            world.regular_events(account, day_start, day_end, &mut batch);
        }
        let scripted_today = scripted[next_scripted..].partition_point(|e| e.time_ms < day_end);
        batch.extend_from_slice(&scripted[next_scripted..next_scripted + scripted_today]);
        next_scripted += scripted_today;
        // Stable: events with equal times keep a deterministic order.
        batch.sort_by_key(|e| e.time_ms);
        // Units that started today may run into tomorrow; hold those events back.
        carried = batch.split_off(batch.partition_point(|e| e.time_ms < day_end));
        for event in &batch {
            writer.write(&world, event)?;
        }
    }
    writer.finish()?;
    Ok(labels)
}

/// Everything decided before the first event is written.
struct Plan {
    world: World,
    /// Incident and benign events, sorted by time.
    scripted: Vec<Event>,
    labels: Labels,
}

impl Plan {
    fn build(opts: &GenOptions) -> Plan {
        let mut world = World::build(opts);
        // Incidents first: they choose their accounts, and benign changes then stay off them.
        let incident_plans =
            incidents::plan(&mut world, opts.hard, &mut Rng::stream(opts.seed, Stream::IncidentPlan, 0, 0));
        let reserved = incidents::accounts_involved(&incident_plans);
        let benign_plans = benign::plan(&mut world, &reserved, &mut Rng::stream(opts.seed, Stream::BenignPlan, 0, 0));
        let outages = match opts.hard {
            true => traps::plan(&mut world, &reserved, &mut Rng::stream(opts.seed, Stream::BenignPlan, 1, 0)),
            false => Vec::new(),
        };

        // Events are rendered after all planning, so they see every rotation and new host.
        let mut scripted = Vec::new();
        let mut incidents = Vec::new();
        for (index, plan) in incident_plans.iter().enumerate() {
            let mut rng = Rng::stream(opts.seed, Stream::IncidentEvents, index as u64, 0);
            if let Some((start_ms, incident)) = incidents::render(&world, plan, &mut rng, &mut scripted) {
                incidents.push((start_ms, incident));
            }
        }
        let mut benign = benign::render(&world, &benign_plans, &mut scripted);
        if opts.hard {
            benign.extend(traps::render(&world, &outages, &mut scripted));
        }
        scripted.retain(|e| (world.start_ms..world.end_ms).contains(&e.time_ms));
        scripted.sort_by_key(|e| e.time_ms);

        incidents.sort_by(|a, b| (a.0, &a.1.kind, &a.1.accounts).cmp(&(b.0, &b.1.kind, &b.1.accounts)));
        let incidents: Vec<Incident> = incidents
            .into_iter()
            .enumerate()
            .map(|(i, (_, incident))| Incident { id: format!("inc-{:03}", i + 1), ..incident })
            .collect();
        benign.sort_by(|a, b| (&a.time, &a.account, &a.kind).cmp(&(&b.time, &b.account, &b.kind)));
        let labels = Labels {
            seed: opts.seed,
            accounts: opts.accounts,
            days: opts.days,
            start: format_rfc3339(world.start_ms),
            warmup_days: opts.warmup_days,
            incidents,
            benign,
        };
        Plan { world, scripted, labels }
    }
}

#[cfg(test)]
mod tests;
