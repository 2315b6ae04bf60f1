//! The engine: per-account state, the detectors, and the decisions that turn findings into
//! alerts (ids, one alert per incident, cooldown).
//!
//! Pure and deterministic: given the same events in the same order it produces the same alerts,
//! whatever the wall clock says. It passes over an event a provider's service made on its own
//! ([`AuditEvent::by_provider_service`]), which is retained but is no account's. For each
//! other event it
//! 1. rejects it if it is older than the allowed lateness behind its account's newest event;
//! 2. rolls the account's hourly and weekly buckets forward and counts the event into the
//!    open hour (so windows include it);
//! 3. runs every selected detector against the baseline as it was *before* the event;
//! 4. learns from the event (activity, credential facts, lifecycle);
//! 5. folds findings into open incidents: a repeat within the cooldown of the last one only
//!    increments the incident's count; anything else raises a new alert. Findings on failed or
//!    denied calls of many accounts that share a cause (system and reason) are one incident
//!    across accounts, raised once ([`shared_cause`]). A volume or off-hours finding on the
//!    same day of the month and hour as one a month before is a recurrence, not an alert
//!    ([`calendar`]).
//!
//! State is bounded: accounts, credentials and spray sources have ceilings (counted in
//! [`EngineStats`] when reached), idle entries expire, and every per-account structure is
//! fixed-size. Keys are 64-bit hashes of (tenant, name), so no name is stored twice.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::detection::alert::{alert_id, evidence_sql, Alert, Evidence, MAX_EVIDENCE_EVENTS};
use crate::detection::baseline::{country_code, AccountBaseline, CredentialProfile, UseSource};
use crate::detection::calendar::{self, MonthlyCalendar};
use crate::detection::catch_up::{self, CatchUp};
use crate::detection::definition::{Category, Detector, DetectorKind};
use crate::detection::detect::call_rate::CallRate;
use crate::detection::detect::failed_auth::BurstCounter;
use crate::detection::detect::spray::SprayCounter;
use crate::detection::detect::sustained_excess::{self, ExcessCusum};
use crate::detection::detect::{
    call_rate, created_for_other, credential, data_volume, failed_auth, mfa_omitted, off_hours, rare_action,
    session_origin, spray, Context, Finding,
};
use crate::detection::terms::{AccountTerms, TermKind};
use crate::detection::time::{self, Duration, Millis, DAY, HOUR};
use crate::input::event::{AuditEvent, Lifecycle, Outcome};

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
    /// Provider ranges are loaded (IP enrichment), so an address without `source.provider` is
    /// outside every provider's: `session_origin` may then judge an instance role's first use.
    pub provider_ranges: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_accounts: 1_000_000,
            max_credentials: 2_000_000,
            max_spray_sources: 100_000,
            idle_expiry: Duration(35 * DAY),
            allowed_lateness: Duration(HOUR),
            provider_ranges: false,
        }
    }
}

/// Counters for metrics and the replay summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    pub events: u64,
    pub late_events: u64,
    /// Events a provider's service made on its own, passed over.
    pub provider_service_events: u64,
    /// Events of accounts not tracked because `max_accounts` was reached.
    pub untracked_account_events: u64,
    pub untracked_credential_events: u64,
    pub alerts: u64,
    /// By [`Category::index`].
    pub alerts_by_category: [u64; Category::ALL.len()],
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
    /// Exactly as long as it must be (a `Vec` would add 8 bytes to every account).
    bursts: Box<[(u16, BurstCounter)]>,
    /// Call rates of the `call_rate` detectors whose class it called, by detector index.
    rates: Box<[(u16, CallRate)]>,
    /// The CUSUM of the (one) `sustained_excess` detector.
    excess: ExcessCusum,
    /// Terms of `rare_action` and principals of `credential_created_for_other` it used.
    terms: AccountTerms,
    /// Where its volume and off-hours findings fell in the month.
    calendar: MonthlyCalendar,
    /// The backlog it may work off after an absence, while that window is open.
    catch_up: Option<Box<CatchUp>>,
    /// Its last working clock hour (see [`catch_up::working_hour`]): absences are measured from it.
    worked_hour: u32,
}

impl AccountState {
    fn new(t: Millis) -> AccountState {
        AccountState {
            baseline: AccountBaseline::new(t),
            partition: NO_PARTITION,
            bursts: Box::default(),
            rates: Box::default(),
            excess: ExcessCusum::default(),
            terms: AccountTerms::default(),
            calendar: MonthlyCalendar::default(),
            catch_up: None,
            worked_hour: time::hour_index(t) as u32,
        }
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
    /// Accounts failing recently, by shared cause (tenant, system, outcome, reason).
    causes: IdMap<CauseWindow>,
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
            causes: IdMap::default(),
            watermark: time::MIN_TIME,
            swept_hour: 0,
            stats: EngineStats::default(),
        }
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
        if event.by_provider_service() {
            self.stats.provider_service_events += 1;
            return Ok(());
        }
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
        let AccountState { baseline, bursts, rates, excess, terms, calendar, catch_up: backlog, worked_hour, .. } =
            state;
        let t = event.time.max(baseline.last_seen);
        baseline.advance(t);
        baseline.count(
            event.bytes.unwrap_or(0),
            event.records.unwrap_or(0),
            event.outcome == Outcome::Failure,
            event.outcome == Outcome::Denied,
        );
        if backlog.as_ref().is_some_and(|c| !c.open(t)) {
            *backlog = None;
        }
        if let Some(c) = backlog {
            c.count(event.bytes.unwrap_or(0));
        }
        if event.outcome == Outcome::Success && catch_up::working_hour(baseline, t) {
            if let Some(opened) = CatchUp::after_absence(baseline, i64::from(*worked_hour) * HOUR, t) {
                *backlog = Some(Box::new(opened));
            }
            *worked_hour = time::hour_index(t) as u32;
        }

        // Key ids are global: a key presented under another tenant is the same key.
        let credential_key = event.credential.as_ref().map(|c| key_of(&[c.id.as_bytes()]));
        let is_use = event.lifecycle().is_none();
        // A failed authentication did not get in with the key: it says nothing about where
        // the key is really used or by whom (a spray presents other accounts' key ids).
        let authenticated_use = is_use && event.outcome != Outcome::Failure;
        let profile = credential_key.and_then(|k| self.credentials.get(&k)).map(|p| &**p);
        let key = event.credential.as_ref().map(|c| c.id.as_ref()).unwrap_or("");
        let mut findings: Vec<(usize, Finding)> = Vec::new();
        // Terms to learn once every detector has judged the event against the old history.
        let mut learned: Vec<(TermKind, u64)> = Vec::new();
        for (index, detector) in self.detectors.iter().enumerate() {
            if !detector.select.matches(event) {
                continue;
            }
            let ctx =
                Context { event, t, account: baseline, warmed_up: t - baseline.first_seen >= detector.warmup.millis() };

            let finding = match &detector.kind {
                DetectorKind::FailureBurst(p) if event.outcome == p.outcome => {
                    failed_auth::burst(&ctx, p, slot(bursts, index))
                }
                DetectorKind::FailureBurst(_) => None,
                DetectorKind::PasswordSpray(p) => match event.source.ip {
                    Some(ip) if event.outcome == Outcome::Failure => {
                        let source_key = key_of(&[&(index as u64).to_le_bytes(), &ip_bytes(ip)]);
                        let room = self.sprays.len() < self.options.max_spray_sources;
                        match self.sprays.get_mut(&source_key) {
                            Some(counter) => spray::spray(&ctx, p, account_key, counter),
                            None if room => {
                                spray::spray(&ctx, p, account_key, self.sprays.entry(source_key).or_default())
                            }
                            None => None,
                        }
                    }
                    _ => None,
                },
                DetectorKind::VolumeBurst(p) => data_volume::burst(&ctx, p),
                DetectorKind::SustainedVolume(p) => data_volume::sustained(&ctx, p),
                DetectorKind::SustainedExcess(p) => sustained_excess::check(&ctx, p, excess),
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
                DetectorKind::RareAction(p) => rare_action::term(event, p).and_then(|term| {
                    learned.push((TermKind::Used, term.hash));
                    rare_action::check(&ctx, p, &term, terms)
                }),
                DetectorKind::CallRate(p) if call_rate::counts(event, p) => {
                    let rate = slot(rates, index);
                    let calls = rate.add(t, p.window.millis());
                    call_rate::check(&ctx, p, calls, rate.usual(t), rate.hours())
                }
                DetectorKind::CallRate(_) => None,
                DetectorKind::CredentialCreatedForOther(p) => created_for_other::target(event, p).and_then(|target| {
                    // The principal's account key: what erasure of that principal looks for.
                    let principal = key_of(&[tenant, target.principal.as_bytes()]);
                    learned.push((TermKind::CreatedFor, principal));
                    let known = terms.contains(TermKind::CreatedFor, principal);
                    created_for_other::check(&ctx, p, &target, known, terms.count(TermKind::CreatedFor))
                }),
                DetectorKind::SessionOrigin(p) if authenticated_use => {
                    session_origin::check(&ctx, p, key, profile, self.options.provider_ranges)
                }
                DetectorKind::SessionOrigin(_) => None,
                DetectorKind::MfaOmitted(p) => mfa_omitted::sign_in(event, p).and_then(|term| {
                    learned.push((TermKind::SignIn, term));
                    let last_with_mfa = terms.last_used(TermKind::SignIn, mfa_omitted::WITH_MFA);
                    let ever_without = terms.contains(TermKind::SignIn, mfa_omitted::WITHOUT_MFA);
                    mfa_omitted::check(&ctx, term, last_with_mfa, ever_without)
                }),
            };
            if let Some(finding) = finding {
                findings.push((index, finding));
            }
        }
        // A backlog after an absence, and a monthly job from its second month on, are normal.
        let caught_up = backlog.as_ref().is_some_and(|c| c.explains(baseline, t));
        findings.retain(|(index, _)| {
            let category = self.detectors[*index].category;
            let backlog = category == Category::DataVolume && caught_up;
            !(backlog || calendar::applies_to(category) && calendar.recurs(t))
        });

        baseline.learn_activity(t);
        for (kind, hash) in learned {
            terms.learn(kind, hash, t);
        }
        self.watermark = self.watermark.max(event.time);
        self.sweep();
        if let (Some(credential), Some(credential_key)) = (&event.credential, credential_key) {
            self.learn_credential(event, credential, credential_key, account_key);
        }
        let cause = shared_cause::cause_key(event, key_of);
        if let Some(cause) = cause {
            if self.causes.len() < shared_cause::MAX_CAUSES || self.causes.contains_key(&cause) {
                self.causes.entry(cause).or_default().add(event.time, account_key, &event.account, event.source.ip);
            }
        }
        for (index, finding) in findings {
            if let Some(alert) = self.decide(index, finding, event, cause) {
                self.stats.alerts += 1;
                self.stats.alerts_by_category[alert.category.index()] += 1;
                alerts.push(alert);
            }
        }
        Ok(())
    }

    fn learn_credential(
        &mut self,
        event: &AuditEvent,
        credential: &crate::input::event::Credential,
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
                profile.created_at.set(t);
            }
            Some(Lifecycle::Rotate) => profile.rotated_at.set(t),
            Some(Lifecycle::Revoke) => profile.revoked_at.set(t),
            None if event.outcome == Outcome::Failure => {}
            None => {
                if let Some(owner) = credential.owner.as_deref() {
                    if !profile.owner_stated {
                        state_owner(profile, owner);
                    }
                }
                let source = &event.source;
                let learn_users = t - profile.first_seen <= self.learn_users_for;
                let from = UseSource {
                    ip: source.ip,
                    asn: source.asn,
                    country: source.country.as_deref().map(country_code),
                    user_agent: source
                        .user_agent
                        .as_deref()
                        .map(|ua| short_key(xxhash_rust::xxh3::xxh3_64(ua.as_bytes()))),
                };
                profile.learn_use(t, short_key(account_key), &event.account, &from, learn_users);
            }
        }
    }

    /// One alert per incident: fold repeats within the cooldown, raise the rest.
    /// A finding on a failed or denied call whose cause many accounts share is one incident
    /// across them: raised once, later accounts fold into it.
    fn decide(&mut self, index: usize, finding: Finding, event: &AuditEvent, cause: Option<u64>) -> Option<Alert> {
        let incident_key = key_of(&[&(index as u64).to_le_bytes(), finding.subject.as_bytes()]);
        let cooldown = self.detectors[index].cooldown.millis();
        if self.fold(incident_key, event.time, cooldown) {
            return None;
        }
        self.incidents.insert(incident_key, OpenIncident { last: event.time, cooldown, count: 1 });
        let per_account = !matches!(self.detectors[index].kind, DetectorKind::PasswordSpray(_));
        let shared = cause
            .filter(|_| per_account)
            .and_then(|cause| Some((cause, self.causes.get(&cause)?.shared(event.time, event)?)));
        let mut finding = finding;
        let mut subject = finding.subject.clone();
        if let Some((cause, shared)) = shared {
            let group_key = key_of(&[&(index as u64).to_le_bytes(), b"shared", &cause.to_le_bytes()]);
            if self.fold(group_key, event.time, cooldown) {
                return None;
            }
            self.incidents.insert(group_key, OpenIncident { last: event.time, cooldown, count: 1 });
            subject = format!("{}/shared {}", event.tenant(), shared.describe());
            finding = shared_finding(finding, &shared, event);
        }
        let detector = &self.detectors[index];
        let mut event_ids = finding.event_ids;
        if !event_ids.iter().any(|id| id == event.id.as_ref()) {
            event_ids.push(event.id.to_string());
        }
        let excess = event_ids.len().saturating_sub(MAX_EVIDENCE_EVENTS);
        event_ids.drain(..excess);
        Some(Alert {
            id: alert_id(&detector.name, &subject, &event.id),
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

    /// Fold a finding into the incident `key` if it is open at `t`; `true` if it was.
    fn fold(&mut self, key: u64, t: Millis, cooldown: Millis) -> bool {
        match self.incidents.get_mut(&key) {
            Some(open) if t - open.last < cooldown => {
                open.last = open.last.max(t);
                open.count += 1;
                self.stats.folded_repeats += 1;
                true
            }
            _ => false,
        }
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
            let retired = c.revoked_at.get().is_some() || c.rotated_at.get().is_some();
            now - c.last_seen < if retired { 4 * idle } else { idle }
        });
        self.sprays.retain(|_, s| now - s.last < DAY);
        self.causes.retain(|_, c| now - c.last < HOUR);
        // Partitions read in parallel are skewed in event time, so the newest time seen can be
        // far ahead of a given account's: forget an incident only when even a skewed account
        // can no longer repeat into it (whether a repeat folds is decided by its own time).
        self.incidents.retain(|_, i| now - i.last < i.cooldown.max(idle));
    }
}

/// The finding of the account that raised a shared alert, widened to the cause: the accounts,
/// what they share, and evidence that selects all of them.
fn shared_finding(finding: Finding, shared: &SharedCause, event: &AuditEvent) -> Finding {
    use crate::detection::alert::sql_literal;
    let column = |name: &str, value: Option<&str>| match value {
        Some(v) => format!("{name} = {}", sql_literal(v)),
        None => format!("{name} IS NULL"),
    };
    let mut filter = vec![
        column("target_system", shared.system.as_deref()),
        format!("outcome = '{}'", shared.outcome.as_str()),
        column("reason", shared.reason.as_deref()),
    ];
    if let Some(tenant) = &event.tenant {
        filter.insert(0, format!("tenant = {}", sql_literal(tenant)));
    }
    let mut baseline = finding.baseline;
    baseline.insert(
        "shared".into(),
        serde_json::json!({
            "system": shared.system,
            "reason": shared.reason,
            "outcome": shared.outcome.as_str(),
            "source": shared.source.map(|ip| ip.to_string()),
        }),
    );
    baseline.insert("accounts".into(), serde_json::json!(shared.accounts));
    baseline.insert("accounts_failing".into(), serde_json::json!(shared.account_count));
    Finding {
        subject: finding.subject,
        summary: format!("{} Latest: {}", shared.summary(), finding.summary),
        window_start: finding.window_start.min(event.time - shared_cause::CAUSE_WINDOW),
        baseline,
        sql_filter: filter.join(" AND "),
        ..finding
    }
}

/// The state of detector `index` in an account's per-detector slots, made on first use. The
/// slice grows one at a time: most accounts that have such state have it for one detector.
fn slot<T: Default>(slots: &mut Box<[(u16, T)]>, index: usize) -> &mut T {
    let at = match slots.iter().position(|(i, _)| usize::from(*i) == index) {
        Some(at) => at,
        None => {
            let mut grown = std::mem::take(slots).into_vec();
            grown.reserve_exact(1);
            grown.push((index as u16, T::default()));
            *slots = grown.into_boxed_slice();
            slots.len() - 1
        }
    };
    &mut slots[at].1
}

fn ip_bytes(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

mod forget;
pub mod shared_cause;
mod snapshot;

use shared_cause::{CauseWindow, SharedCause};

pub use forget::Forgotten;
#[cfg(test)]
mod tests;
