//! Detector logic, one module per category or detector type. Each function judges one event
//! against the baseline *as it was before the event* and returns a [`Finding`] when it fires;
//! turning findings into alerts (ids, dedup, cooldown) and learning from the event are the
//! engine's job.
//!
//! Functions here are pure: they read event time from the [`Context`], never the clock.

pub mod call_rate;
pub mod created_for_other;
pub mod credential;
pub mod data_volume;
pub mod failed_auth;
pub mod mfa_omitted;
pub mod off_hours;
pub mod rare_action;
pub mod session_origin;
pub mod spray;
pub mod sustained_excess;

use serde_json::{Map, Value};

use crate::detection::baseline::AccountBaseline;
use crate::detection::time::Millis;
use crate::input::event::AuditEvent;

/// What a detector hands to the engine when it fires.
#[derive(Clone, Debug, Default)]
pub struct Finding {
    /// What the incident is about, for dedup and the alert id (`acme/svc-crm`, `source 1.2.3.4`).
    pub subject: String,
    pub observed: f64,
    pub expected: f64,
    pub score: f64,
    pub window_start: Millis,
    pub window_end: Millis,
    pub summary: String,
    pub baseline: Map<String, Value>,
    pub new: Vec<String>,
    /// Ids of the events behind it; the engine adds the triggering event.
    pub event_ids: Vec<String>,
    /// SQL condition selecting the evidence (`account = '...' AND outcome = 'failure'`).
    pub sql_filter: String,
}

/// The event being judged and what is known about its account.
pub struct Context<'a, 'e> {
    pub event: &'a AuditEvent<'e>,
    /// Event time, clamped so an account's time never runs backwards (late events).
    pub t: Millis,
    pub account: &'a AccountBaseline,
    /// The account has more history than the detector's warm-up asks for.
    pub warmed_up: bool,
}

impl Context<'_, '_> {
    /// Dedup subject for per-account incidents.
    pub fn account_subject(&self) -> String {
        format!("{}/{}", self.event.tenant(), self.event.account)
    }

    /// SQL condition for this account's events.
    pub fn account_filter(&self) -> String {
        let account = format!("account = {}", crate::detection::alert::sql_literal(&self.event.account));
        match &self.event.tenant {
            Some(tenant) => format!("tenant = {} AND {account}", crate::detection::alert::sql_literal(tenant)),
            None => account,
        }
    }
}

/// Build a JSON map from (key, value) pairs.
pub fn facts<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// "3 days", "5 h", "12 min" for summaries.
pub fn human_duration(ms: Millis) -> String {
    use crate::detection::time::{DAY, HOUR, MINUTE};
    if ms >= 2 * DAY {
        format!("{} days", ms / DAY)
    } else if ms >= 2 * HOUR {
        format!("{} h", ms / HOUR)
    } else {
        format!("{} min", (ms / MINUTE).max(1))
    }
}
