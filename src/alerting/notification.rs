//! A notification: what the outputs people read (email, Slack, PagerDuty) receive instead of
//! single alerts. One notification stands for a group of alerts (by default: one detector about
//! one account), so a storm pages once with a count, and later notifications carry only what
//! is new.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many alerts travel in one notification; the count says how many there were.
pub const MAX_ALERTS_PER_NOTIFICATION: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// New alerts, or a reminder that the group is still open.
    Firing,
    /// The group saw no new alert for its `resolve_timeout` and is closed.
    Resolved,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per notification, stable across a restart: the group key and the sequence.
    pub id: String,
    /// Identifies the group for its whole life (PagerDuty's `dedup_key`).
    pub group_key: String,
    /// The route that grouped it.
    pub route: String,
    pub status: Status,
    /// 1 for a group's first notification, then 2, 3, ...
    pub sequence: u64,
    /// The values the group is keyed on, in `group_by` order: `("account", "ci-deploy")`.
    pub labels: Vec<(String, String)>,
    /// Alerts new since the previous notification, oldest first, at most
    /// [`MAX_ALERTS_PER_NOTIFICATION`] (the newest kept). Masked for this output. Empty for a
    /// reminder or a resolution.
    pub alerts: Vec<Value>,
    /// How many alerts arrived since the previous notification (may exceed `alerts.len()`).
    pub new_alerts: u64,
    /// How many alerts the group holds in all.
    pub total_alerts: u64,
    /// The group's most recent alert (masked), for context in reminders and resolutions.
    pub latest: Value,
}

impl Notification {
    /// The most severe of the new alerts, else the latest: what the subject line leads with.
    pub fn headline(&self) -> &Value {
        self.alerts.iter().max_by_key(|a| severity_rank(a["severity"].as_str().unwrap_or(""))).unwrap_or(&self.latest)
    }

    /// `high`, `critical`, ...: the headline alert's severity.
    pub fn severity(&self) -> &str {
        self.headline()["severity"].as_str().unwrap_or("unknown")
    }

    /// `[auditwatch] HIGH credential_misuse: ci-deploy (12 alerts)`; the subject of every
    /// rendering (email subject, Slack header, PagerDuty summary).
    pub fn title(&self) -> String {
        let a = self.headline();
        let count = match (self.status, self.new_alerts) {
            (Status::Resolved, _) => " resolved".to_string(),
            (Status::Firing, 0) => format!(" still open ({} alerts)", self.total_alerts),
            (Status::Firing, 1) => String::new(),
            (Status::Firing, n) => format!(" ({n} alerts)"),
        };
        format!(
            "[auditwatch] {} {}: {}{}",
            self.severity().to_ascii_uppercase(),
            a["category"].as_str().unwrap_or(""),
            a["account"].as_str().unwrap_or(""),
            count
        )
    }
}

pub fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}
