//! Inline tests carried by detector definitions (`[[tests]]` in `detectors/*.toml`).
//!
//! A test gives background `history` (regular traffic that builds a baseline: an account,
//! a schedule, a period, volumes, a key and its networks), explicit `events` (JSON lines, the
//! input contract), and the alerts its detector must raise (`expect`, in order; `[]` for a
//! negative test). `auditwatch detectors test` runs each test through a fresh engine holding
//! only that detector, as if provider ranges were loaded: an event whose address is a
//! provider's says so in `source.provider`.

use serde::Deserialize;
use serde_json::json;

use crate::detection::alert::Alert;
use crate::detection::definition::Detector;
use crate::detection::engine::{Engine, EngineOptions};
use crate::detection::schedule::{Schedule, ScheduleConfig};
use crate::detection::time::{self, Duration, Millis, DAY};
use crate::input::event::{decode, DEFAULT_MAX_EVENT_BYTES};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineTest {
    pub name: String,
    #[serde(default)]
    pub history: Vec<History>,
    #[serde(default)]
    pub events: String,
    pub expect: Vec<Expected>,
    /// Alerts before this time (RFC 3339) are not judged, e.g. those of a noisy history's
    /// first hours.
    pub judge_from: Option<String>,
}

/// Regular background traffic for one account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    pub account: String,
    pub tenant: Option<String>,
    /// RFC 3339 start; the history runs `days` days from there.
    pub from: String,
    pub days: u32,
    #[serde(default = "every_day")]
    pub weekdays: String,
    #[serde(default = "all_day")]
    pub hours: String,
    #[serde(default = "utc")]
    pub timezone: String,
    pub every: Duration,
    #[serde(default = "default_action")]
    pub action: String,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub records: u64,
    /// Daily growth of volumes, e.g. 0.03 for 3% a day.
    #[serde(default)]
    pub growth_per_day: f64,
    /// Days (counted from `from`, starting at 0) with no activity: holidays.
    #[serde(default)]
    pub skip_days: Vec<u32>,
    /// Every Nth slot is a failed token refresh followed by a successful retry.
    pub failure_every: Option<u32>,
    pub credential: Option<String>,
    /// Include `credential.owner` (= the account) in the events.
    #[serde(default)]
    pub owner: bool,
    /// Source addresses used in turn.
    #[serde(default)]
    pub ips: Vec<String>,
    pub asn: Option<u32>,
    pub country: Option<String>,
}

fn every_day() -> String {
    "mon-sun".into()
}
fn all_day() -> String {
    "00:00-24:00".into()
}
fn utc() -> String {
    "UTC".into()
}
fn default_action() -> String {
    "api.call".into()
}

/// An alert the detector must raise; unset fields match anything.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub account: Option<String>,
    pub credential_id: Option<String>,
    pub source_ip: Option<String>,
    /// Text the summary must contain.
    pub summary_contains: Option<String>,
}

impl InlineTest {
    /// Problems as (field, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(Err(e)) = self.judge_from.as_deref().map(time::parse_rfc3339) {
            problems.push(("judge_from".to_string(), e.to_string()));
        }
        for (i, h) in self.history.iter().enumerate() {
            if let Err(e) = time::parse_rfc3339(&h.from) {
                problems.push((format!("history[{i}].from"), e.to_string()));
            }
            if let Err((field, message)) = h.schedule() {
                problems.push((format!("history[{i}].{field}"), message));
            }
            if h.every.millis() <= 0 {
                problems.push((format!("history[{i}].every"), "must be longer than 0s".into()));
            }
        }
        for (n, line) in self.event_lines() {
            if let Err(e) = decode(line.as_bytes(), DEFAULT_MAX_EVENT_BYTES) {
                problems.push((format!("events line {n}"), e.to_string()));
            }
        }
        problems
    }

    fn event_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.events.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty())
    }

    /// All input lines, in time order (history first on ties).
    pub fn input(&self) -> Vec<(Millis, String)> {
        let mut lines: Vec<(Millis, String)> = self.history.iter().flat_map(History::events).collect();
        for (_, line) in self.event_lines() {
            if let Ok(e) = decode(line.as_bytes(), DEFAULT_MAX_EVENT_BYTES) {
                lines.push((e.time, line.to_string()));
            }
        }
        lines.sort_by_key(|(t, _)| *t);
        lines
    }

    /// The engine options tests run under: the defaults, with provider ranges loaded.
    pub fn engine_options() -> EngineOptions {
        EngineOptions { provider_ranges: true, ..EngineOptions::default() }
    }

    /// Run against one detector; `Err` says what differed.
    pub fn run(&self, detector: &Detector) -> Result<Vec<Alert>, String> {
        let mut engine = Engine::new(vec![detector.clone()], Self::engine_options());
        let mut alerts = Vec::new();
        for (_, line) in self.input() {
            let event = decode(line.as_bytes(), DEFAULT_MAX_EVENT_BYTES).map_err(|e| e.to_string())?;
            engine.process(&event, &mut alerts).map_err(|e| e.to_string())?;
        }
        let judge_from = self.judge_from.as_deref().and_then(|t| time::parse_rfc3339(t).ok()).unwrap_or(time::MIN_TIME);
        alerts.retain(|a| a.time >= judge_from);
        let describe = |alerts: &[Alert]| {
            alerts
                .iter()
                .map(|a| format!("  {} {}: {}", time::Rfc3339(a.time), a.account, a.summary))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if alerts.len() != self.expect.len() {
            return Err(format!(
                "expected {} alert(s), got {}:\n{}",
                self.expect.len(),
                alerts.len(),
                describe(&alerts)
            ));
        }
        for (i, (want, got)) in self.expect.iter().zip(&alerts).enumerate() {
            let mismatch = |field: &str, want: &str, got: Option<&str>| {
                format!("alert {i}: {field} is {got:?}, expected {want:?}\n{}", describe(&alerts))
            };
            if let Some(a) = &want.account {
                if a != &got.account {
                    return Err(mismatch("account", a, Some(&got.account)));
                }
            }
            if let Some(c) = &want.credential_id {
                if Some(c) != got.credential_id.as_ref() {
                    return Err(mismatch("credential_id", c, got.credential_id.as_deref()));
                }
            }
            if let Some(ip) = &want.source_ip {
                if Some(ip) != got.source_ip.as_ref() {
                    return Err(mismatch("source_ip", ip, got.source_ip.as_deref()));
                }
            }
            if let Some(text) = &want.summary_contains {
                if !got.summary.contains(text.as_str()) {
                    return Err(mismatch("summary", text, Some(&got.summary)));
                }
            }
        }
        Ok(alerts)
    }
}

impl History {
    fn schedule(&self) -> Result<Schedule, (String, String)> {
        let config = ScheduleConfig {
            accounts: vec![self.account.clone()],
            timezone: self.timezone.clone(),
            days: self.weekdays.clone(),
            hours: self.hours.clone(),
        };
        Schedule::new(&config)
            .map_err(|(field, message)| (if field == "days" { "weekdays".into() } else { field }, message))
    }

    /// The background events as JSON lines with their times.
    fn events(&self) -> Vec<(Millis, String)> {
        let (Ok(from), Ok(schedule)) = (time::parse_rfc3339(&self.from), self.schedule()) else { return Vec::new() };
        let every = self.every.millis().max(1);
        let end = from + i64::from(self.days) * DAY;
        let mut out = Vec::new();
        let mut slot: u64 = 0;
        let mut t = from;
        while t < end {
            let day = ((t - from) / DAY) as u32;
            if schedule.contains(t) && !self.skip_days.contains(&day) {
                slot += 1;
                // Deterministic ±30% wobble so the baseline has some spread.
                let wobble =
                    0.7 + 0.6 * ((slot.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64);
                let growth = (1.0 + self.growth_per_day).powi(day as i32);
                let scale = |v: u64| (v as f64 * wobble * growth).round() as u64;
                if self.failure_every.is_some_and(|n| n > 0 && slot.is_multiple_of(u64::from(n))) {
                    out.push((t, self.event(t, slot, "auth.token", "failure", 0, 0, Some("token expired"))));
                    out.push((t + 2_000, self.event(t + 2_000, slot, "auth.token", "success", 0, 0, None)));
                } else {
                    out.push((
                        t,
                        self.event(t, slot, &self.action, "success", scale(self.bytes), scale(self.records), None),
                    ));
                }
            }
            t += every;
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        t: Millis,
        slot: u64,
        action: &str,
        outcome: &str,
        bytes: u64,
        records: u64,
        reason: Option<&str>,
    ) -> String {
        let mut e = json!({
            "id": format!("hist-{}-{t}-{outcome}", self.account),
            "time": time::format_rfc3339(t),
            "account": self.account,
            "action": action,
            "outcome": outcome,
            "bytes": bytes,
            "records": records,
        });
        let obj = e.as_object_mut().expect("literal object");
        if let Some(tenant) = &self.tenant {
            obj.insert("tenant".into(), json!(tenant));
        }
        if let Some(reason) = reason {
            obj.insert("reason".into(), json!(reason));
        }
        if let Some(key) = &self.credential {
            let mut c = json!({"id": key, "type": "api_key"});
            if self.owner {
                c["owner"] = json!(self.account);
            }
            obj.insert("credential".into(), c);
        }
        let mut source = serde_json::Map::new();
        if !self.ips.is_empty() {
            source.insert("ip".into(), json!(self.ips[slot as usize % self.ips.len()]));
        }
        if let Some(asn) = self.asn {
            source.insert("asn".into(), json!(asn));
        }
        if let Some(country) = &self.country {
            source.insert("country".into(), json!(country));
        }
        if !source.is_empty() {
            obj.insert("source".into(), source.into());
        }
        e.to_string()
    }
}
