//! The engine: per-account state, the detectors, and the decisions that turn findings into
//! alerts (ids, one alert per incident, cooldown).
//!
//! Pure and deterministic: given the same events in the same order it produces the same alerts,
//! whatever the wall clock says. For each event it
//! 1. rejects it if it is older than the allowed lateness behind its account's newest event;
//! 2. rolls the account's hourly and weekly buckets forward and counts the event into the
//!    open hour (so windows include it);
//! 3. runs every selected detector against the baseline as it was *before* the event;
//! 4. learns from the event (activity, credential facts, lifecycle);
//! 5. folds findings into open incidents: a repeat within the cooldown of the last one only
//!    increments the incident's count; anything else raises a new alert.
//!
//! State is bounded: accounts, credentials and spray sources have ceilings (counted in
//! [`EngineStats`] when reached), idle entries expire, and every per-account structure is
//! fixed-size. Keys are 64-bit hashes of (tenant, name), so no name is stored twice.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::alert::{alert_id, evidence_sql, Alert, Evidence, MAX_EVIDENCE_EVENTS};
use crate::baseline::{country_code, AccountBaseline, CredentialProfile};
use crate::codec::{CodecError, Reader, Writer};
use crate::definition::{Category, Detector, DetectorKind};
use crate::detect::failed_auth::{BurstCounter, SprayCounter};
use crate::detect::{credential, data_volume, failed_auth, off_hours, Context, Finding};
use crate::event::{AuditEvent, Lifecycle, Outcome};
use crate::time::{self, Duration, Millis, DAY, HOUR};

/// Limits and tolerances; the defaults suit a large deployment.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub max_accounts: usize,
    pub max_credentials: usize,
    pub max_spray_sources: usize,
    /// Accounts and keys unseen for this long are forgotten.
    pub idle_expiry: Duration,
    /// Events older than their account's newest event minus this are rejected as late.
    pub allowed_lateness: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_accounts: 1_000_000,
            max_credentials: 2_000_000,
            max_spray_sources: 100_000,
            idle_expiry: Duration(35 * DAY),
            allowed_lateness: Duration(HOUR),
        }
    }
}

/// Counters for metrics and the replay summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    pub events: u64,
    pub late_events: u64,
    /// Events of accounts not tracked because `max_accounts` was reached.
    pub untracked_account_events: u64,
    pub untracked_credential_events: u64,
    pub alerts: u64,
    pub alerts_by_category: [u64; 4],
    /// Findings folded into an already open incident.
    pub folded_repeats: u64,
    /// Accounts seen on a partition other than the one they were last seen on.
    pub account_partition_changes: u64,
}

/// The event was later than the allowed lateness.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "event time is {behind_ms} ms behind the newest event of its account, more than the allowed lateness of {allowed}"
)]
pub struct LateEvent {
    pub behind_ms: Millis,
    pub allowed: Duration,
}

/// Keys are already xxh3 hashes; hashing them again would only cost time.
#[derive(Default, Clone)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Clone)]
struct AccountState {
    baseline: AccountBaseline,
    /// Partition the account was last read from (`NO_PARTITION` outside Kafka).
    partition: u32,
    /// Burst counters of the detectors that saw this account fail, by detector index.
    bursts: Vec<(u16, BurstCounter)>,
}

impl AccountState {
    fn new(t: Millis) -> AccountState {
        AccountState { baseline: AccountBaseline::new(t), partition: NO_PARTITION, bursts: Vec::new() }
    }
}

#[derive(Clone)]
struct OpenIncident {
    last: Millis,
    cooldown: Millis,
    count: u32,
}

#[derive(Clone)]
pub struct Engine {
    detectors: Vec<Detector>,
    options: EngineOptions,
    /// How long a new key's users are learned (the longest `learn_users_for`).
    learn_users_for: Millis,
    accounts: IdMap<Box<AccountState>>,
    /// Boxed: a map's spare capacity then costs a pointer per slot, not a whole profile.
    credentials: IdMap<Box<CredentialProfile>>,
    sprays: IdMap<SprayCounter>,
    incidents: IdMap<OpenIncident>,
    watermark: Millis,
    swept_hour: i64,
    stats: EngineStats,
}

const NO_PARTITION: u32 = u32::MAX;

/// A 64-bit key for a sequence of names: each part seeds the hash of the next, which keeps
/// ("ab", "c") apart from ("a", "bc") and costs one short one-shot hash per part.
fn key_of(parts: &[&[u8]]) -> u64 {
    parts.iter().fold(0x6175_6469_7477_6174, |seed, part| xxhash_rust::xxh3::xxh3_64_with_seed(part, seed))
}

/// Short non-zero id of an account inside credential profiles.
fn short_key(key: u64) -> u32 {
    (key as u32) | 1
}

impl Engine {
    pub fn new(detectors: Vec<Detector>, options: EngineOptions) -> Engine {
        let learn_users_for = detectors
            .iter()
            .filter_map(|d| match &d.kind {
                DetectorKind::ForeignCredential(p) => Some(p.learn_users_for.millis()),
                _ => None,
            })
            .max()
            .unwrap_or(HOUR);
        Engine {
            detectors,
            options,
            learn_users_for,
            accounts: IdMap::default(),
            credentials: IdMap::default(),
            sprays: IdMap::default(),
            incidents: IdMap::default(),
            watermark: time::MIN_TIME,
            swept_hour: 0,
            stats: EngineStats::default(),
        }
    }

    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn accounts_tracked(&self) -> usize {
        self.accounts.len()
    }

    pub fn credentials_tracked(&self) -> usize {
        self.credentials.len()
    }

    /// Judge one event, learn from it, and append any new alerts to `alerts`.
    pub fn process(&mut self, event: &AuditEvent, alerts: &mut Vec<Alert>) -> Result<(), LateEvent> {
        self.process_from(event, None, alerts)
    }

    /// Like `process`, for an event read from a Kafka partition: producers key events by
    /// account, so an account moving between partitions is counted (its state may be split).
    pub fn process_from(
        &mut self,
        event: &AuditEvent,
        partition: Option<u32>,
        alerts: &mut Vec<Alert>,
    ) -> Result<(), LateEvent> {
        let tenant = event.tenant().as_bytes();
        let account_key = key_of(&[tenant, event.account.as_bytes()]);
        let mut untracked;
        // One map lookup in the common case (below the ceiling).
        let state: &mut AccountState = match self.accounts.len() < self.options.max_accounts {
            true => self.accounts.entry(account_key).or_insert_with(|| Box::new(AccountState::new(event.time))),
            false if self.accounts.contains_key(&account_key) => {
                self.accounts.get_mut(&account_key).expect("just checked")
            }
            false => {
                // Over the ceiling: judge the event on a throwaway state so rules still fire.
                self.stats.untracked_account_events += 1;
                untracked = AccountState::new(event.time);
                &mut untracked
            }
        };
        // Lateness is judged per account: its state is what a late event would corrupt, and
        // partitions read in parallel are legitimately skewed against each other.
        let lateness = self.options.allowed_lateness;
        if event.time < state.baseline.last_seen - lateness.millis() {
            self.stats.late_events += 1;
            return Err(LateEvent { behind_ms: state.baseline.last_seen - event.time, allowed: lateness });
        }
        self.stats.events += 1;
        if let Some(partition) = partition {
            if state.partition != partition && state.partition != NO_PARTITION {
                self.stats.account_partition_changes += 1;
            }
            state.partition = partition;
        }
        let AccountState { baseline, bursts, .. } = state;
        let t = event.time.max(baseline.last_seen);
        baseline.advance(t);
        baseline.count(
            event.bytes.unwrap_or(0),
            event.records.unwrap_or(0),
            event.outcome == Outcome::Failure,
            event.outcome == Outcome::Denied,
        );

        // Key ids are global: a key presented under another tenant is the same key.
        let credential_key = event.credential.as_ref().map(|c| key_of(&[c.id.as_bytes()]));
        let is_use = event.lifecycle().is_none();
        // A failed authentication did not get in with the key: it says nothing about where
        // the key is really used or by whom (a spray presents other accounts' key ids).
        let authenticated_use = is_use && event.outcome != Outcome::Failure;
        let profile = credential_key.and_then(|k| self.credentials.get(&k)).map(|p| &**p);
        let key = event.credential.as_ref().map(|c| c.id.as_ref()).unwrap_or("");
        let mut findings: Vec<(usize, Finding)> = Vec::new();
        for (index, detector) in self.detectors.iter().enumerate() {
            if !detector.select.matches(event) {
                continue;
            }
            let ctx =
                Context { event, t, account: baseline, warmed_up: t - baseline.first_seen >= detector.warmup.millis() };

            let finding = match &detector.kind {
                DetectorKind::FailureBurst(p) if event.outcome == p.outcome => {
                    let counter = match bursts.iter().position(|(i, _)| usize::from(*i) == index) {
                        Some(at) => &mut bursts[at].1,
                        None => {
                            bursts.push((index as u16, BurstCounter::default()));
                            &mut bursts.last_mut().expect("just pushed").1
                        }
                    };
                    failed_auth::burst(&ctx, p, counter)
                }
                DetectorKind::FailureBurst(_) => None,
                DetectorKind::PasswordSpray(p) => match event.source.ip {
                    Some(ip) if event.outcome == Outcome::Failure => {
                        let source_key = key_of(&[&(index as u64).to_le_bytes(), &ip_bytes(ip)]);
                        let room = self.sprays.len() < self.options.max_spray_sources;
                        match self.sprays.get_mut(&source_key) {
                            Some(counter) => failed_auth::spray(&ctx, p, account_key, counter),
                            None if room => {
                                failed_auth::spray(&ctx, p, account_key, self.sprays.entry(source_key).or_default())
                            }
                            None => None,
                        }
                    }
                    _ => None,
                },
                DetectorKind::VolumeBurst(p) => data_volume::burst(&ctx, p),
                DetectorKind::SustainedVolume(p) => data_volume::sustained(&ctx, p),
                DetectorKind::OffHours { params, schedules } => off_hours::check(&ctx, params, schedules),
                DetectorKind::RevokedCredential(p) => {
                    profile.filter(|_| is_use).and_then(|prof| credential::revoked(&ctx, p, key, prof))
                }
                DetectorKind::ForeignCredential(p) if authenticated_use && credential_key.is_some() => {
                    credential::foreign(&ctx, p, key, short_key(account_key), profile)
                }
                DetectorKind::ForeignCredential(_) => None,
                DetectorKind::NewNetwork(p) => {
                    profile.filter(|_| authenticated_use).and_then(|prof| credential::new_network(&ctx, p, key, prof))
                }
            };
            if let Some(finding) = finding {
                findings.push((index, finding));
            }
        }

        baseline.learn_activity(t);
        self.watermark = self.watermark.max(event.time);
        self.sweep();
        if let (Some(credential), Some(credential_key)) = (&event.credential, credential_key) {
            self.learn_credential(event, credential, credential_key, account_key);
        }
        for (index, finding) in findings {
            if let Some(alert) = self.decide(index, finding, event) {
                self.stats.alerts += 1;
                self.stats.alerts_by_category[category_index(alert.category)] += 1;
                alerts.push(alert);
            }
        }
        Ok(())
    }

    fn learn_credential(
        &mut self,
        event: &AuditEvent,
        credential: &crate::event::Credential,
        credential_key: u64,
        account_key: u64,
    ) {
        let tenant = event.tenant().as_bytes();
        let t = event.time;
        let profile = match self.credentials.len() < self.options.max_credentials {
            true => self.credentials.entry(credential_key).or_insert_with(|| Box::new(CredentialProfile::new(t))),
            false => match self.credentials.get_mut(&credential_key) {
                Some(profile) => profile,
                None => {
                    self.stats.untracked_credential_events += 1;
                    return;
                }
            },
        };
        let state_owner = |profile: &mut CredentialProfile, name: &str| {
            profile.owner = short_key(key_of(&[tenant, name.as_bytes()]));
            profile.owner_name = Some(name.into());
            profile.owner_stated = true;
        };
        match event.lifecycle() {
            Some(Lifecycle::Create) => {
                state_owner(profile, credential.owner.as_deref().unwrap_or(&event.account));
                profile.created_at = Some(t);
            }
            Some(Lifecycle::Rotate) => profile.rotated_at = Some(t),
            Some(Lifecycle::Revoke) => profile.revoked_at = Some(t),
            None if event.outcome == Outcome::Failure => {}
            None => {
                if let Some(owner) = credential.owner.as_deref() {
                    if !profile.owner_stated {
                        state_owner(profile, owner);
                    }
                }
                let source = &event.source;
                let learn_users = t - profile.first_seen <= self.learn_users_for;
                let user_agent =
                    source.user_agent.as_deref().map(|ua| short_key(xxhash_rust::xxh3::xxh3_64(ua.as_bytes())));
                profile.learn_use(
                    t,
                    short_key(account_key),
                    &event.account,
                    source.ip,
                    source.asn,
                    source.country.as_deref().map(country_code),
                    user_agent,
                    learn_users,
                );
            }
        }
    }

    /// One alert per incident: fold repeats within the cooldown, raise the rest.
    fn decide(&mut self, index: usize, finding: Finding, event: &AuditEvent) -> Option<Alert> {
        let detector = &self.detectors[index];
        let incident_key = key_of(&[&(index as u64).to_le_bytes(), finding.subject.as_bytes()]);
        let cooldown = detector.cooldown.millis();
        match self.incidents.get_mut(&incident_key) {
            Some(open) if event.time - open.last < cooldown => {
                open.last = open.last.max(event.time);
                open.count += 1;
                self.stats.folded_repeats += 1;
                return None;
            }
            _ => {
                self.incidents.insert(incident_key, OpenIncident { last: event.time, cooldown, count: 1 });
            }
        }
        let mut event_ids = finding.event_ids;
        if !event_ids.iter().any(|id| id == event.id.as_ref()) {
            event_ids.push(event.id.to_string());
        }
        let excess = event_ids.len().saturating_sub(MAX_EVIDENCE_EVENTS);
        event_ids.drain(..excess);
        Some(Alert {
            id: alert_id(&detector.name, &finding.subject, &event.id),
            detector: detector.name.clone(),
            category: detector.category,
            severity: detector.severity,
            account: event.account.to_string(),
            tenant: event.tenant.as_ref().map(|t| t.to_string()),
            credential_id: event.credential.as_ref().map(|c| c.id.to_string()),
            source_ip: event.source.ip.map(|ip| ip.to_string()),
            time: event.time,
            window_start: finding.window_start,
            window_end: finding.window_end,
            observed: finding.observed,
            expected: finding.expected,
            score: (finding.score * 1000.0).round() / 1000.0,
            summary: finding.summary,
            evidence: Evidence {
                event_ids,
                baseline: finding.baseline,
                new: finding.new,
                sql: evidence_sql(&finding.sql_filter, finding.window_start, finding.window_end),
                runbook: detector.runbook.clone(),
            },
            detected_at: None,
        })
    }

    /// Once per hour of event time, forget what went idle.
    fn sweep(&mut self) {
        let hour = time::hour_index(self.watermark);
        if hour == self.swept_hour {
            return;
        }
        self.swept_hour = hour;
        let now = self.watermark;
        let idle = self.options.idle_expiry.millis();
        self.accounts.retain(|_, s| now - s.baseline.last_seen < idle);
        // Retired keys are remembered longer: their later use is exactly what we look for.
        self.credentials.retain(|_, c| {
            let retired = c.revoked_at.is_some() || c.rotated_at.is_some();
            now - c.last_seen < if retired { 4 * idle } else { idle }
        });
        self.sprays.retain(|_, s| now - s.last < DAY);
        // Partitions read in parallel are skewed in event time, so the newest time seen can be
        // far ahead of a given account's: forget an incident only when even a skewed account
        // can no longer repeat into it (whether a repeat folds is decided by its own time).
        self.incidents.retain(|_, i| now - i.last < i.cooldown.max(idle));
    }
}

impl Engine {
    /// Rough bytes held by the state, for the `state_bytes` metric (the memory bench measures
    /// the real figure with a counting allocator).
    pub fn state_bytes(&self) -> u64 {
        let map_entry = 8 + 8 + 1;
        let accounts = self.accounts.capacity() * map_entry + self.accounts.len() * std::mem::size_of::<AccountState>();
        let bursts: usize = self
            .accounts
            .values()
            .map(|a| a.bursts.capacity() * (std::mem::size_of::<(u16, BurstCounter)>() + 64))
            .sum();
        let credentials = self.credentials.capacity() * (8 + 8 + 1)
            + self.credentials.len() * (std::mem::size_of::<CredentialProfile>() + 24);
        let sprays = self.sprays.len() * 2048;
        (accounts + bursts + credentials + sprays) as u64
    }

    /// Encode the engine's state for a checkpoint. Detectors and options are configuration and
    /// are not saved; per-detector state is saved with the detector names it belongs to.
    pub fn save(&self, w: &mut Writer) {
        w.u32(self.detectors.len() as u32);
        for d in &self.detectors {
            w.str(&d.name);
        }
        w.i64(self.watermark);
        w.i64(self.swept_hour);
        let s = &self.stats;
        for v in [
            s.events,
            s.late_events,
            s.untracked_account_events,
            s.untracked_credential_events,
            s.alerts,
            s.folded_repeats,
            s.account_partition_changes,
        ] {
            w.u64(v);
        }
        for v in s.alerts_by_category {
            w.u64(v);
        }
        w.u32(self.accounts.len() as u32);
        for (key, state) in &self.accounts {
            w.u64(*key);
            state.baseline.save(w);
            w.u32(state.partition);
            w.u32(state.bursts.len() as u32);
            for (index, counter) in &state.bursts {
                w.u16(*index);
                counter.save(w);
            }
        }
        w.u32(self.credentials.len() as u32);
        for (key, profile) in &self.credentials {
            w.u64(*key);
            profile.save(w);
        }
        w.u32(self.sprays.len() as u32);
        for (key, spray) in &self.sprays {
            w.u64(*key);
            spray.save(w);
        }
        w.u32(self.incidents.len() as u32);
        for (key, incident) in &self.incidents {
            w.u64(*key);
            w.i64(incident.last);
            w.i64(incident.cooldown);
            w.u32(incident.count);
        }
    }

    /// Rebuild an engine from `save` output. If the detector set changed since, baselines and
    /// credential profiles are kept, and per-detector state (burst counters, spray windows,
    /// open incidents) starts afresh, because it no longer means the same thing.
    pub fn restore(detectors: Vec<Detector>, options: EngineOptions, r: &mut Reader) -> Result<Engine, CodecError> {
        let mut engine = Engine::new(detectors, options);
        let n = r.count(4)?;
        let names = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
        let same_detectors = names.iter().eq(engine.detectors.iter().map(|d| &d.name));
        engine.watermark = r.i64()?;
        engine.swept_hour = r.i64()?;
        let s = &mut engine.stats;
        for v in [
            &mut s.events,
            &mut s.late_events,
            &mut s.untracked_account_events,
            &mut s.untracked_credential_events,
            &mut s.alerts,
            &mut s.folded_repeats,
            &mut s.account_partition_changes,
        ] {
            *v = r.u64()?;
        }
        for v in &mut s.alerts_by_category {
            *v = r.u64()?;
        }
        let n = r.count(150)?;
        engine.accounts.reserve(n);
        for _ in 0..n {
            let key = r.u64()?;
            let baseline = AccountBaseline::load(r)?;
            let partition = r.u32()?;
            let bursts_n = r.count(30)?;
            let mut bursts = Vec::with_capacity(if same_detectors { bursts_n } else { 0 });
            for _ in 0..bursts_n {
                let index = r.u16()?;
                let counter = BurstCounter::load(r)?;
                if same_detectors {
                    bursts.push((index, counter));
                }
            }
            engine.accounts.insert(key, Box::new(AccountState { baseline, partition, bursts }));
        }
        let n = r.count(100)?;
        engine.credentials.reserve(n);
        for _ in 0..n {
            let key = r.u64()?;
            engine.credentials.insert(key, Box::new(CredentialProfile::load(r)?));
        }
        let n = r.count(24)?;
        for _ in 0..n {
            let key = r.u64()?;
            let spray = SprayCounter::load(r)?;
            if same_detectors {
                engine.sprays.insert(key, spray);
            }
        }
        let n = r.count(28)?;
        for _ in 0..n {
            let (key, last, cooldown, count) = (r.u64()?, r.i64()?, r.i64()?, r.u32()?);
            if same_detectors {
                engine.incidents.insert(key, OpenIncident { last, cooldown, count });
            }
        }
        Ok(engine)
    }
}

fn ip_bytes(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

pub fn category_index(category: Category) -> usize {
    match category {
        Category::FailedAuth => 0,
        Category::DataVolume => 1,
        Category::OffHours => 2,
        Category::CredentialMisuse => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Reader, Writer};
    use crate::event::decode;
    use crate::time::format_rfc3339;

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    fn event(t: Millis, account: &str, outcome: &str, extra: &str) -> String {
        format!(
            r#"{{"id":"{account}-{t}-{outcome}","time":"{}","account":"{account}","action":"auth.login","outcome":"{outcome}"{extra}}}"#,
            format_rfc3339(t)
        )
    }

    fn run(engine: &mut Engine, lines: &[String]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for line in lines {
            let e = decode(line.as_bytes(), 1 << 20).unwrap();
            let _ = engine.process(&e, &mut alerts);
        }
        alerts
    }

    fn failure_burst(at: Millis, account: &str, n: i64) -> Vec<String> {
        (0..n).map(|i| event(at + i * 1000, account, "failure", r#","source":{"ip":"203.0.113.9"}"#)).collect()
    }

    fn pack() -> Vec<Detector> {
        crate::pack::load().unwrap()
    }

    #[test]
    fn one_alert_per_incident_and_a_new_one_after_the_cooldown() {
        let mut engine = Engine::new(pack(), EngineOptions::default());
        let alerts = run(&mut engine, &failure_burst(MONDAY, "svc-a", 60));
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].detector, "failed-auth-burst");
        assert!(engine.stats().folded_repeats > 0);
        // Still inside the 1h cooldown of the last repeat: folded.
        assert!(run(&mut engine, &failure_burst(MONDAY + 30 * 60_000, "svc-a", 30)).is_empty());
        // Quiet for longer than the cooldown: a new incident.
        let again = run(&mut engine, &failure_burst(MONDAY + 5 * HOUR, "svc-a", 40));
        assert_eq!(again.len(), 1);
        assert_ne!(again[0].id, alerts[0].id);
    }

    #[test]
    fn the_same_events_give_the_same_alert_ids() {
        let lines = failure_burst(MONDAY, "svc-a", 30);
        let first = run(&mut Engine::new(pack(), EngineOptions::default()), &lines);
        let second = run(&mut Engine::new(pack(), EngineOptions::default()), &lines);
        assert_eq!(first, second);
        assert!(!first.is_empty());
    }

    #[test]
    fn late_events_are_judged_per_account() {
        let mut engine = Engine::new(pack(), EngineOptions::default());
        let mut alerts = Vec::new();
        let now = event(MONDAY + 5 * HOUR, "svc-a", "success", "");
        engine.process(&decode(now.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap();
        // Another account may be hours behind (another partition): accepted.
        let other = event(MONDAY, "svc-b", "success", "");
        engine.process(&decode(other.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap();
        // svc-a two hours back: rejected; 30 minutes back: accepted.
        let late = event(MONDAY + 3 * HOUR, "svc-a", "success", "");
        let err = engine.process(&decode(late.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap_err();
        assert_eq!(err.behind_ms, 2 * HOUR);
        let ok = event(MONDAY + 5 * HOUR - 30 * 60_000, "svc-a", "success", "");
        engine.process(&decode(ok.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap();
        assert_eq!(engine.stats().late_events, 1);
    }

    #[test]
    fn account_ceiling_is_counted_and_rules_still_fire() {
        let options = EngineOptions { max_accounts: 1, ..EngineOptions::default() };
        let mut engine = Engine::new(pack(), options);
        run(&mut engine, &[event(MONDAY, "svc-a", "success", "")]);
        let alerts = run(
            &mut engine,
            &[event(MONDAY + 1000, "svc-b", "success", r#","credential":{"id":"K","owner":"svc-a"}"#)],
        );
        assert_eq!(engine.accounts_tracked(), 1);
        assert_eq!(engine.stats().untracked_account_events, 1);
        assert_eq!(alerts.len(), 1, "the foreign-key rule needs no account history");
    }

    #[test]
    fn partition_moves_are_counted() {
        let mut engine = Engine::new(pack(), EngineOptions::default());
        let mut alerts = Vec::new();
        for (i, partition) in [0u32, 0, 3].into_iter().enumerate() {
            let line = event(MONDAY + i as i64, "svc-a", "success", "");
            engine.process_from(&decode(line.as_bytes(), 1 << 20).unwrap(), Some(partition), &mut alerts).unwrap();
        }
        assert_eq!(engine.stats().account_partition_changes, 1);
    }

    #[test]
    fn declared_schedule_overrides_learning() {
        let mut detectors = pack();
        let off_hours = detectors.iter_mut().find(|d| d.name == "off-hours").unwrap();
        let config = crate::schedule::ScheduleConfig {
            accounts: vec!["svc-payroll-*".into()],
            timezone: "Europe/Berlin".into(),
            days: "mon-fri".into(),
            hours: "07:00-19:00".into(),
        };
        if let DetectorKind::OffHours { schedules, .. } = &mut off_hours.kind {
            schedules.push(crate::schedule::Schedule::new(&config).unwrap());
        }
        let mut engine = Engine::new(detectors, EngineOptions::default());
        // Saturday 2026-01-10 03:00 UTC, no history at all: outside the declared hours.
        let saturday = MONDAY + 5 * DAY + 3 * HOUR;
        let lines: Vec<String> =
            (0..3).map(|i| event(saturday + i * 60_000, "svc-payroll-eu", "success", "")).collect();
        let alerts = run(&mut engine, &lines);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].summary.contains("outside its declared schedule"), "{}", alerts[0].summary);
        // Monday 10:00 Berlin is inside: quiet.
        let monday: Vec<String> =
            (0..3).map(|i| event(MONDAY + 7 * DAY + 9 * HOUR + i * 60_000, "svc-payroll-eu", "success", "")).collect();
        assert!(run(&mut engine, &monday).is_empty());
    }

    #[test]
    fn save_and_restore_continue_identically() {
        let history: Vec<String> = (0..24 * 20)
            .map(|h| event(MONDAY + h * HOUR, "svc-a", if h % 7 == 0 { "failure" } else { "success" }, r#","credential":{"id":"K1"},"source":{"ip":"198.51.100.4","asn":64500,"country":"US"},"bytes":100000"#))
            .collect();
        let later: Vec<String> = failure_burst(MONDAY + 20 * DAY + 3 * HOUR, "svc-a", 30)
            .into_iter()
            .chain([event(
                MONDAY + 20 * DAY + 4 * HOUR,
                "svc-a",
                "success",
                r#","credential":{"id":"K1"},"source":{"ip":"203.0.113.4","asn":64511,"country":"RU"}"#,
            )])
            .collect();
        let mut straight = Engine::new(pack(), EngineOptions::default());
        run(&mut straight, &history);
        let mut w = Writer::default();
        straight.save(&mut w);
        let mut restored = Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&w.buf)).unwrap();
        assert_eq!(restored.accounts_tracked(), straight.accounts_tracked());
        assert_eq!(restored.stats(), straight.stats());
        let a = run(&mut straight, &later);
        let b = run(&mut restored, &later);
        assert_eq!(a, b);
        assert_eq!(a.len(), 2, "{a:#?}");
        // A corrupt state is an error, not a panic.
        assert!(Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&w.buf[..w.buf.len() / 2])).is_err());
    }
}
