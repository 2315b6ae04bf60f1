//! The alert contract (output): one JSON object per alert, the same body for every sink.
//!
//! `id` is deterministic: a hash of the detector name, the incident's subject and the id of the
//! event that made it fire, so replays and restarts give the same id and sinks can deduplicate.
//! `detected_at` is the only wall-clock field; the engine leaves it empty and the output stage
//! stamps it, which keeps the engine deterministic. See `schemas/alert.schema.json`.

use serde::Serialize;

use crate::detection::definition::{Category, Severity};
use crate::detection::time::{Millis, Rfc3339};

/// At most this many event ids travel in an alert; the SQL query finds the rest.
pub const MAX_EVIDENCE_EVENTS: usize = 10;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Alert {
    pub id: String,
    pub detector: String,
    pub category: Category,
    pub severity: Severity,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub time: Millis,
    #[serde(serialize_with = "rfc3339")]
    pub window_start: Millis,
    #[serde(serialize_with = "rfc3339")]
    pub window_end: Millis,
    pub observed: f64,
    pub expected: f64,
    pub score: f64,
    pub summary: String,
    pub evidence: Evidence,
    /// Wall-clock time the alert was raised; stamped by the output stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct Evidence {
    /// Ids of the events that made it fire (bounded, newest last).
    pub event_ids: Vec<String>,
    /// Facts about the baseline the event was judged against.
    pub baseline: serde_json::Map<String, serde_json::Value>,
    /// What was new or unusual (a network, an owner, an hour of the week).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<String>,
    /// A ready-to-run query over the retained events (`auditwatch query`).
    pub sql: String,
    /// What the responder should do (from the detector definition).
    pub runbook: String,
}

fn rfc3339<S: serde::Serializer>(t: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Rfc3339(*t))
}

/// Deterministic alert id: the same detector, subject and triggering event give the same id.
pub fn alert_id(detector: &str, subject: &str, trigger_event_id: &str) -> String {
    let mut buf = Vec::with_capacity(detector.len() + subject.len() + trigger_event_id.len() + 2);
    for part in [detector, subject, trigger_event_id] {
        buf.extend_from_slice(part.as_bytes());
        buf.push(0);
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf))
}

/// A SQL string literal with quotes doubled.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `SELECT ... FROM events WHERE <subject> AND time in window`, ready for `auditwatch query`.
pub fn evidence_sql(subject_filter: &str, window_start: Millis, window_end: Millis) -> String {
    format!(
        "SELECT id, time, account, action, outcome, credential_id, source_ip, bytes, records FROM events WHERE {subject_filter} AND time BETWEEN TIMESTAMP '{}' AND TIMESTAMP '{}' ORDER BY time",
        Rfc3339(window_start),
        Rfc3339(window_end)
    )
}

/// Human-readable sizes for summaries: `4.1 GB`, `12 MB`, `830 B`.
pub fn human_bytes(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = v.max(0.0);
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if v >= 10.0 || unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn human_count(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_separated() {
        assert_eq!(alert_id("d", "acct", "e1"), alert_id("d", "acct", "e1"));
        assert_ne!(alert_id("d", "acct", "e1"), alert_id("d", "acct", "e2"));
        // The separator keeps ("ab","c") apart from ("a","bc").
        assert_ne!(alert_id("d", "ab", "c"), alert_id("d", "a", "bc"));
        assert_eq!(alert_id("d", "a", "b").len(), 32);
    }

    #[test]
    fn sql_quotes_are_escaped() {
        assert_eq!(sql_literal("o'neil"), "'o''neil'");
        let sql = evidence_sql("account = 'a'", 0, 60_000);
        assert!(sql.contains("BETWEEN TIMESTAMP '1970-01-01T00:00:00.000Z' AND TIMESTAMP '1970-01-01T00:01:00.000Z'"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(4_100_000_000.0), "4.1 GB");
        assert_eq!(human_bytes(12_000_000.0), "12 MB");
        assert_eq!(human_bytes(830.0), "830 B");
        assert_eq!(human_count(35.0), "35");
    }
}
