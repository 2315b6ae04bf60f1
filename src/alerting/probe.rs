//! `auditwatch alert test --route NAME`: a sample alert that the route matches, sent through
//! each of the route's outputs as the service would send it (masked, and as a notification for
//! the outputs people read), with what each destination answered. People run it to check a
//! config before an incident depends on it.

use serde_json::{json, Value};

use super::mask::mask;
use super::notification::{Notification, Status};
use super::route::{Route, Router};
use crate::config::{AlertMatcher, Config};
use crate::detection::alert::{alert_id, evidence_sql, sql_literal};
use crate::sinks::{Sink, SinkError};
use crate::state::outbox::Entry;

/// What one output answered.
pub struct ProbeResult {
    pub output: String,
    pub outcome: Result<String, String>,
}

/// Send a sample alert through every output of `route_name`.
pub fn probe_route(config: &Config, route_name: &str) -> Result<Vec<ProbeResult>, String> {
    let router = Router::new(config)?;
    let route = router.named(route_name).ok_or_else(|| {
        let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).chain(["default"]).collect();
        format!("no route is named `{route_name}`; the routes are: {}", names.join(", "))
    })?;
    let alert = sample_alert(&route.matcher.spec().clone());
    let names = config.output_names();
    let mut results = Vec::new();
    for output_name in &route.outputs {
        let Some(index) = names.iter().position(|n| n == output_name) else { continue };
        let output = &config.outputs[index];
        let mut body = alert.clone();
        mask(&mut body, &output.masked());
        let outcome = match Sink::open(output, output_name, config) {
            Err(SinkError::Open { reason, .. }) => Err(format!("cannot open: {reason}")),
            Ok(sink) => send(sink, route, body),
        };
        results.push(ProbeResult { output: output_name.clone(), outcome });
    }
    Ok(results)
}

fn send(sink: Sink, route: &Route, alert: Value) -> Result<String, String> {
    match sink {
        Sink::Feed(mut feed) => {
            let id = alert["id"].as_str().unwrap_or_default().to_string();
            let entry = Entry {
                seq: 0,
                key: alert["account"].as_str().unwrap_or_default().as_bytes().to_vec(),
                body: serde_json::to_vec(&alert).unwrap_or_default(),
                headers: Vec::new(),
                id,
            };
            feed.deliver(&[entry]).map(|()| "delivered".to_string()).map_err(|e| e.reason)
        }
        Sink::Notifier(mut notifier) => {
            let id = alert["id"].as_str().unwrap_or_default().to_string();
            let mut notification = Notification {
                id: format!("{id}-1"),
                group_key: id,
                route: route.name.clone(),
                status: Status::Firing,
                sequence: 1,
                labels: vec![("account".into(), alert["account"].as_str().unwrap_or_default().to_string())],
                alerts: vec![alert.clone()],
                new_alerts: 1,
                total_alerts: 1,
                latest: alert,
            };
            notifier.notify(&notification).map_err(|e| e.reason)?;
            if !notifier.wants_resolved() {
                return Ok("notified".to_string());
            }
            // Close the test incident again, so nobody is left with it open.
            notification.status = Status::Resolved;
            notification.sequence = 2;
            notification.id = format!("{}-2", notification.group_key);
            notification.alerts.clear();
            notification.new_alerts = 0;
            match notifier.notify(&notification) {
                Ok(()) => Ok("notified, then resolved".to_string()),
                Err(e) => Err(format!("notified, but resolving failed: {}", e.reason)),
            }
        }
    }
}

/// An alert the matcher accepts, marked as a test everywhere a person would look.
pub fn sample_alert(matcher: &AlertMatcher) -> Value {
    let account = matcher.account.first().map_or("auditwatch-test".to_string(), |glob| {
        glob.replace('*', "test").replace('?', "x").replace(['[', ']'], "")
    });
    let detector = matcher.detector.first().cloned().unwrap_or_else(|| "auditwatch-test".to_string());
    let category = matcher.category.first().map_or("credential_misuse", |c| c.as_str());
    let severity = matcher.severity.first().map_or("high", |s| s.as_str());
    let now = chrono::Utc::now();
    let t = |d: chrono::Duration| (now - d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let start = (now - chrono::Duration::minutes(10)).timestamp_millis();
    let mut alert = json!({
        "id": alert_id(&detector, &account, &format!("test-{}", now.timestamp_millis())),
        "detector": detector,
        "category": category,
        "severity": severity,
        "account": account,
        "source_ip": "192.0.2.10",
        "credential_id": "AKIATESTTESTTESTTEST",
        "time": t(chrono::Duration::zero()),
        "window_start": t(chrono::Duration::minutes(10)),
        "window_end": t(chrono::Duration::zero()),
        "observed": 42.0,
        "expected": 3.0,
        "score": 0.99,
        "summary": format!("TEST ALERT from `auditwatch alert test`: {account} is fine; this checks delivery only"),
        "evidence": {
            "event_ids": ["test-event"],
            "baseline": { "note": "sample values" },
            "new": ["nothing: this is a test"],
            "sql": evidence_sql(&format!("account = {}", sql_literal(&account)), start, now.timestamp_millis()),
            "runbook": "Nothing to do: this alert was sent by `auditwatch alert test` to check the route."
        },
        "detected_at": t(chrono::Duration::zero()),
    });
    if let Some(tenant) = matcher.tenant.first() {
        alert["tenant"] = json!(tenant);
    }
    alert
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::route::Matcher;
    use crate::detection::definition::{Category, Severity};

    #[test]
    fn the_sample_alert_matches_the_matcher_it_was_made_for() {
        for spec in [
            AlertMatcher::default(),
            AlertMatcher {
                category: vec![Category::FailedAuth],
                severity: vec![Severity::Critical],
                detector: vec!["password-spray".into()],
                account: vec!["ci-*-prod".into()],
                tenant: vec!["acme".into()],
            },
        ] {
            let alert = sample_alert(&spec);
            assert!(Matcher::new(&spec).unwrap().matches(&alert), "{alert}");
        }
    }
}
