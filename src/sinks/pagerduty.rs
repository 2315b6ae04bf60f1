//! Grouped notifications to PagerDuty's Events API v2
//! (<https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>): a firing
//! notification sends `trigger`, a resolved one `resolve` (when `send_resolved`), both with
//! the group key as `dedup_key`, so one group is one PagerDuty alert for its whole life and a
//! storm pages once. PagerDuty answers 202; 400 (invalid event) is dead-lettered, 429 and 5xx
//! are retried. The routing key is a credential and never appears in a reason or in `Debug`.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::alerting::notification::{Notification, Status};
use crate::config::{PagerDutyOutput, Secret};
use crate::sinks::http::{cut, redact, Endpoint};
use crate::sinks::DeliveryError;

/// PagerDuty's limits on `payload.summary` and `dedup_key`.
const SUMMARY_CHARS: usize = 1024;
const DEDUP_KEY_CHARS: usize = 255;

#[derive(Debug)]
pub struct PagerDutySink {
    endpoint: Endpoint,
    routing_key: Secret,
    send_resolved: bool,
}

impl PagerDutySink {
    pub fn new(config: &PagerDutyOutput, env: &dyn Fn(&str) -> Option<String>) -> Result<PagerDutySink, String> {
        let routing_key = config.routing_key.resolve(env).map_err(|e| format!("`routing_key`: {e}"))?;
        let endpoint = Endpoint::new("url", &config.url, config.allow_http, config.timeout)?;
        Ok(PagerDutySink { endpoint, routing_key, send_resolved: config.send_resolved })
    }

    pub fn notify(&mut self, notification: &Notification) -> Result<(), DeliveryError> {
        // The worker asks `sends_resolved` first; a resolution that slips through is not ours
        // to send.
        if notification.status == Status::Resolved && !self.send_resolved {
            return Ok(());
        }
        let event = event(notification, self.routing_key.expose());
        // A JSON value always serializes.
        let body = serde_json::to_vec(&event).unwrap_or_default();
        self.endpoint.post_json(body, Default::default()).map_err(|mut e| {
            e.reason = redact(e.reason, &[self.routing_key.expose()]);
            e
        })
    }

    pub fn sends_resolved(&self) -> bool {
        self.send_resolved
    }
}

/// The Events API v2 event for `n`.
pub fn event(n: &Notification, routing_key: &str) -> Value {
    let dedup_key = dedup_key(&n.group_key);
    if n.status == Status::Resolved {
        // A resolve needs nothing else: PagerDuty finds the alert by `dedup_key`.
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key});
    }
    let a = n.headline();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let summary = match a["summary"].as_str() {
        Some(s) if !s.is_empty() => format!("{}: {s}", n.title()),
        _ => n.title(),
    };
    let timestamp = a["detected_at"].as_str().or_else(|| a["time"].as_str()).unwrap_or("");
    let mut payload = json!({
        "summary": cut(&summary, SUMMARY_CHARS),
        "source": "auditwatch",
        "severity": severity(n.severity()),
        "component": text(&a["account"]),
        "group": text(&a["detector"]),
        "class": text(&a["category"]),
        "custom_details": {
            "notification_id": n.id,
            "labels": n.labels.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "summary": a["summary"],
            "observed": a["observed"],
            "expected": a["expected"],
            "window_start": a["window_start"],
            "window_end": a["window_end"],
            "evidence": a["evidence"],
            "alert_ids": n.alerts.iter().map(|a| a["id"].clone()).collect::<Vec<_>>(),
            "new_alerts": n.new_alerts,
            "total_alerts": n.total_alerts,
        },
    });
    // PagerDuty rejects a timestamp it cannot parse; without one it uses the time received.
    if !timestamp.is_empty() {
        payload["timestamp"] = json!(timestamp);
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "client": "auditwatch",
    })
}

/// Alert severities on PagerDuty's scale.
fn severity(severity: &str) -> &'static str {
    match severity {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    }
}

/// The group key, or its SHA-256 when longer than PagerDuty keeps (the same for the trigger
/// and the resolve either way).
fn dedup_key(group_key: &str) -> String {
    if group_key.chars().count() <= DEDUP_KEY_CHARS {
        group_key.to_string()
    } else {
        Sha256::digest(group_key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretRef;

    fn alert(id: &str, severity: &str) -> Value {
        json!({
            "id": id, "detector": "failed_auth_burst", "category": "failed_auth", "severity": severity,
            "account": "ci-deploy", "time": "2024-05-01T10:00:00Z", "detected_at": "2024-05-01T10:00:02.000Z",
            "window_start": "2024-05-01T09:50:00Z", "window_end": "2024-05-01T10:00:00Z",
            "observed": 42.0, "expected": 3.5, "score": 9.1, "summary": "42 failed logins",
            "evidence": {"event_ids": ["e1"], "baseline": {}, "sql": "SELECT 1", "runbook": "Lock the account."}
        })
    }

    fn notification(status: Status, alerts: Vec<Value>) -> Notification {
        Notification {
            id: "g1-1".to_string(),
            group_key: "g1".to_string(),
            route: "default".to_string(),
            status,
            sequence: 1,
            labels: vec![("account".to_string(), "ci-deploy".to_string())],
            new_alerts: alerts.len() as u64,
            total_alerts: alerts.len() as u64,
            latest: alerts.last().cloned().unwrap_or(Value::Null),
            alerts,
        }
    }

    #[test]
    fn trigger_has_the_documented_fields() {
        let e = event(&notification(Status::Firing, vec![alert("a1", "medium"), alert("a2", "high")]), "KEY");
        assert_eq!(e["routing_key"], "KEY");
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], "g1");
        assert_eq!(e["client"], "auditwatch");
        let p = &e["payload"];
        assert_eq!(p["summary"], "[auditwatch] HIGH failed_auth: ci-deploy (2 alerts): 42 failed logins");
        assert_eq!(p["source"], "auditwatch");
        assert_eq!(p["severity"], "error");
        assert_eq!(p["timestamp"], "2024-05-01T10:00:02.000Z");
        assert_eq!(p["component"], "ci-deploy");
        assert_eq!(p["group"], "failed_auth_burst");
        assert_eq!(p["class"], "failed_auth");
        let d = &p["custom_details"];
        assert_eq!(d["alert_ids"], json!(["a1", "a2"]));
        assert_eq!((d["observed"].as_f64(), d["expected"].as_f64()), (Some(42.0), Some(3.5)));
        assert_eq!(d["evidence"]["runbook"], "Lock the account.");
        assert_eq!((d["new_alerts"].as_u64(), d["total_alerts"].as_u64()), (Some(2), Some(2)));
        assert_eq!(d["labels"]["account"], "ci-deploy");
    }

    #[test]
    fn severities_map_to_pagerduty_scale() {
        for (ours, theirs) in [("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info")] {
            let e = event(&notification(Status::Firing, vec![alert("a", ours)]), "K");
            assert_eq!(e["payload"]["severity"], theirs, "{ours}");
        }
    }

    #[test]
    fn resolve_carries_only_the_key_and_the_dedup_key() {
        let mut n = notification(Status::Resolved, vec![]);
        n.latest = alert("a1", "high");
        assert_eq!(event(&n, "K"), json!({"routing_key": "K", "event_action": "resolve", "dedup_key": "g1"}));
    }

    #[test]
    fn long_summaries_and_keys_are_cut_to_pagerduty_limits() {
        let mut a = alert("a", "low");
        a["summary"] = json!("s".repeat(5000));
        let mut n = notification(Status::Firing, vec![a]);
        n.group_key = "k".repeat(300);
        let e = event(&n, "K");
        assert_eq!(e["payload"]["summary"].as_str().unwrap().chars().count(), SUMMARY_CHARS);
        let key = e["dedup_key"].as_str().unwrap();
        assert_eq!(key.len(), 64);
        n.status = Status::Resolved;
        assert_eq!(event(&n, "K")["dedup_key"], key, "trigger and resolve share the key");
    }

    #[test]
    fn routing_key_is_resolved_and_never_shown() {
        let env = |_: &str| Some("R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00".to_string());
        let config = PagerDutyOutput {
            name: None,
            mask: None,
            routing_key: SecretRef::Env { env: "PD_KEY".to_string() },
            url: "https://events.pagerduty.com/v2/enqueue".to_string(),
            send_resolved: false,
            timeout: crate::detection::time::Duration(1000),
            allow_http: false,
        };
        let sink = PagerDutySink::new(&config, &env).unwrap();
        assert!(!sink.sends_resolved());
        let debug = format!("{sink:?}");
        assert!(!debug.contains("R0UT1NG") && debug.contains("***"), "{debug}");
        let e = PagerDutySink::new(&config, &|_: &str| None).unwrap_err();
        assert!(e.starts_with("`routing_key`: MISSING: env PD_KEY"), "{e}");
    }
}
