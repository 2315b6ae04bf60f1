//! The webhook, Slack and PagerDuty sinks against a real HTTP receiver (`tests/peers/receiver.py`),
//! which verifies Standard Webhooks signatures with the `standardwebhooks` library and checks
//! the fields Slack's and PagerDuty's documentation require. Sinks are built from their config
//! structs and called directly; retries are the worker's business, so each test looks at one
//! outcome at a time.

use std::time::Duration;

use serde_json::{json, Value};

use auditwatch::alerting::notification::{Notification, Status};
use auditwatch::config::{PagerDutyOutput, SecretRef, SlackOutput, WebhookOutput};
use auditwatch::sinks::pagerduty::PagerDutySink;
use auditwatch::sinks::slack::SlackSink;
use auditwatch::sinks::webhook::WebhookSink;
use auditwatch::sinks::DeliveryError;
use auditwatch::state::outbox::Entry;

use crate::support::{free_port, Peer};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtb25seQ==";
/// 32 characters, as PagerDuty wants.
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00";
/// The secret part of a Slack webhook URL.
const SLACK_TOKEN: &str = "T0000SECRET/B0000SECRET/XXXXsekritXXXX";

/// The receiver and the base URL it listens on.
fn receiver(args: &[&str]) -> (Peer, String) {
    let peer = Peer::start("receiver.py", args);
    let port = peer.records()[0]["port"].as_u64().expect("the receiver prints its port first");
    (peer, format!("http://127.0.0.1:{port}"))
}

/// The requests the receiver reported (after its port line), once there are `n`.
fn requests(peer: &Peer, n: usize) -> Vec<Value> {
    peer.wait_records(n + 1, Duration::from_secs(20)).split_off(1)
}

/// Secrets come from these "environment variables".
fn env(var: &str) -> Option<String> {
    match var {
        "SECRET" => Some(SECRET.to_string()),
        "OTHER_SECRET" => Some(OTHER_SECRET.to_string()),
        "ROUTING_KEY" => Some(ROUTING_KEY.to_string()),
        _ => None,
    }
}

fn secret(var: &str) -> SecretRef {
    SecretRef::Env { env: var.to_string() }
}

fn webhook(url: &str, secrets: &[&str], timeout_ms: i64) -> WebhookSink {
    let config = WebhookOutput {
        name: None,
        mask: None,
        url: format!("{url}/alerts"),
        secrets: secrets.iter().map(|s| secret(s)).collect(),
        headers: [("x-team".to_string(), "secops".to_string())].into_iter().collect(),
        timeout: auditwatch::detection::time::Duration(timeout_ms),
        allow_http: true,
    };
    WebhookSink::new(&config, &env).unwrap()
}

fn slack(url: &str) -> SlackSink {
    let config = SlackOutput {
        name: None,
        mask: None,
        webhook_url: secret("SLACK_URL"),
        timeout: auditwatch::detection::time::Duration(5000),
        allow_http: true,
    };
    SlackSink::new(&config, &|var| (var == "SLACK_URL").then(|| format!("{url}/services/{SLACK_TOKEN}"))).unwrap()
}

fn pagerduty(url: &str, routing_key: &str) -> PagerDutySink {
    let config = PagerDutyOutput {
        name: None,
        mask: None,
        routing_key: secret(routing_key),
        url: format!("{url}/v2/enqueue"),
        send_resolved: true,
        timeout: auditwatch::detection::time::Duration(5000),
        allow_http: true,
    };
    PagerDutySink::new(&config, &|var| if var == "SHORT_KEY" { Some("short-key-sekrit".to_string()) } else { env(var) })
        .unwrap()
}

fn alert(id: &str, severity: &str) -> Value {
    json!({
        "id": id, "detector": "failed_auth_burst", "category": "failed_auth", "severity": severity,
        "account": "ci-deploy", "time": "2024-05-01T10:00:00.000Z", "detected_at": "2024-05-01T10:00:02.000Z",
        "window_start": "2024-05-01T09:50:00.000Z", "window_end": "2024-05-01T10:00:00.000Z",
        "observed": 42.0, "expected": 3.5, "score": 9.1,
        "summary": "42 failed logins for ci-deploy in 10m (usually 3.5)",
        "evidence": {
            "event_ids": ["e1", "e2"], "baseline": {"mean": 3.5},
            "sql": "SELECT * FROM events WHERE account = 'ci-deploy' AND time >= '2024-05-01T09:50:00Z'",
            "runbook": "Check whether ci-deploy's token leaked; rotate it."
        }
    })
}

fn entries(ids: &[&str]) -> Vec<Entry> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| Entry {
            seq: i as u64,
            id: id.to_string(),
            key: b"ci-deploy".to_vec(),
            body: serde_json::to_vec(&alert(id, "high")).unwrap(),
            headers: Vec::new(),
        })
        .collect()
}

fn notification(status: Status, alerts: Vec<Value>) -> Notification {
    Notification {
        id: "grp-7f3a:1".to_string(),
        group_key: "grp-7f3a".to_string(),
        route: "default".to_string(),
        status,
        sequence: 1,
        labels: vec![
            ("detector".to_string(), "failed_auth_burst".to_string()),
            ("account".to_string(), "ci-deploy".to_string()),
        ],
        new_alerts: alerts.len() as u64,
        total_alerts: 3,
        latest: alerts.last().cloned().unwrap_or_else(|| alert("a3", "high")),
        alerts,
    }
}

/// No secret, whole or in part, in what a failure or a sink's `Debug` shows.
fn assert_no_secret(text: &str) {
    for s in [SECRET, &SECRET[6..], OTHER_SECRET, &OTHER_SECRET[6..], ROUTING_KEY, SLACK_TOKEN, "sekrit", "short-key"] {
        assert!(!text.contains(s), "a secret leaked into: {text}");
    }
}

#[test]
fn signed_alerts_are_verified_and_a_wrong_secret_is_refused_for_good() {
    let (peer, url) = receiver(&["--secret", SECRET]);
    let mut sink = webhook(&url, &["SECRET"], 5000);
    let batch = entries(&["a1", "a2"]);
    sink.deliver(&batch).unwrap();
    let got = requests(&peer, 2);
    for (request, entry) in got.iter().zip(&batch) {
        assert_eq!(request["path"], "/alerts");
        assert_eq!(request["verified"], true, "{request}");
        assert_eq!(request["headers"]["webhook-id"], entry.id.as_str());
        assert_eq!(request["headers"]["content-type"], "application/json");
        assert_eq!(request["headers"]["x-team"], "secops");
        assert_eq!(request["body"], serde_json::from_slice::<Value>(&entry.body).unwrap());
    }

    let (peer, url) = receiver(&["--secret", OTHER_SECRET]);
    let mut sink = webhook(&url, &["SECRET"], 5000);
    let error = sink.deliver(&entries(&["a1", "a2"])).unwrap_err();
    assert!(error.permanent, "{error:?}");
    assert_eq!(error.confirmed, 0);
    assert!(error.reason.starts_with("HTTP 401: signature"), "{}", error.reason);
    assert_eq!(requests(&peer, 1)[0]["verified"], false);
    assert_no_secret(&format!("{error:?} {sink:?}"));
}

#[test]
fn a_receiver_knowing_only_the_new_secret_accepts_during_rotation() {
    let (peer, url) = receiver(&["--secret", OTHER_SECRET]);
    let mut sink = webhook(&url, &["SECRET", "OTHER_SECRET"], 5000);
    sink.deliver(&entries(&["a1"])).unwrap();
    let request = &requests(&peer, 1)[0];
    assert_eq!(request["verified"], true, "{request}");
    assert_eq!(request["headers"]["webhook-signature"].as_str().unwrap().split(' ').count(), 2);
}

#[test]
fn an_outage_is_transient_and_counts_what_was_delivered_before_it() {
    let (peer, url) = receiver(&["--secret", SECRET, "--script", "200,500,200"]);
    let mut sink = webhook(&url, &["SECRET"], 5000);
    let batch = entries(&["a1", "a2", "a3"]);
    let error = sink.deliver(&batch).unwrap_err();
    assert!(!error.permanent, "{error:?}");
    assert_eq!(error.confirmed, 1, "a1 was delivered before a2 failed");
    assert_eq!(error.reason, "HTTP 500: scripted 500");
    assert_eq!(error.retry_after, None);
    // The worker sends the rest again.
    sink.deliver(&batch[1..]).unwrap();
    let ids: Vec<Value> = requests(&peer, 4).iter().map(|r| r["headers"]["webhook-id"].clone()).collect();
    assert_eq!(ids, [json!("a1"), json!("a2"), json!("a2"), json!("a3")]);
}

#[test]
fn too_many_requests_carries_the_retry_after() {
    let (_peer, url) = receiver(&["--script", "429,200", "--retry-after", "2"]);
    let mut sink = webhook(&url, &[], 5000);
    let error = sink.deliver(&entries(&["a1"])).unwrap_err();
    assert!(!error.permanent, "{error:?}");
    assert_eq!(error.retry_after, Some(Duration::from_secs(2)));
    sink.deliver(&entries(&["a1"])).unwrap();
}

#[test]
fn an_answer_slower_than_the_timeout_is_transient() {
    let (_peer, url) = receiver(&["--delay", "5"]);
    let mut sink = webhook(&url, &[], 300);
    let error = sink.deliver(&entries(&["a1"])).unwrap_err();
    assert!(!error.permanent, "{error:?}");
    assert_eq!(error.confirmed, 0);
    assert!(error.reason.contains("timed out"), "{}", error.reason);
}

#[test]
fn a_receiver_that_is_not_there_is_transient() {
    let mut sink = webhook(&format!("http://127.0.0.1:{}", free_port()), &["SECRET"], 2000);
    let error = sink.deliver(&entries(&["a1"])).unwrap_err();
    assert!(!error.permanent, "{error:?}");
    assert!(!error.reason.contains("127.0.0.1"), "no URL in reasons: {}", error.reason);
}

#[test]
fn a_bad_request_is_permanent_with_the_receivers_reason() {
    let (_peer, url) = receiver(&["--script", "400"]);
    let error = webhook(&url, &[], 5000).deliver(&entries(&["a1", "a2"])).unwrap_err();
    assert!(error.permanent, "{error:?}");
    assert_eq!((error.confirmed, error.reason.as_str()), (0, "HTTP 400: scripted 400"));

    // PagerDuty's own check: a routing key of the wrong length.
    let (_peer, url) = receiver(&["--mode", "pagerduty"]);
    let mut sink = pagerduty(&url, "SHORT_KEY");
    let error = sink.notify(&notification(Status::Firing, vec![alert("a1", "high")])).unwrap_err();
    assert!(error.permanent, "{error:?}");
    assert!(error.reason.starts_with("HTTP 400: Length of 'routing_key' is incorrect"), "{}", error.reason);
    assert_no_secret(&format!("{error:?} {sink:?}"));
}

#[test]
fn slack_accepts_the_block_kit_message() {
    let (peer, url) = receiver(&["--mode", "slack"]);
    let mut sink = slack(&url);
    sink.notify(&notification(Status::Firing, vec![alert("a1", "medium"), alert("a2", "critical")])).unwrap();
    let request = &requests(&peer, 1)[0];
    assert_eq!(request["status"], 200);
    assert_eq!(request["path"], format!("/services/{SLACK_TOKEN}"));
    let blocks = request["body"]["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["text"]["text"], "[auditwatch] CRITICAL failed_auth: ci-deploy (2 alerts)");
    let all = serde_json::to_string(blocks).unwrap();
    for part in
        ["Check whether ci-deploy's token leaked", "```SELECT * FROM events", "*Observed* 42.0 *vs expected* 3.5"]
    {
        assert!(all.contains(part), "{part} missing from {all}");
    }
    assert_no_secret(&format!("{sink:?}"));
}

#[test]
fn pagerduty_triggers_then_resolves_the_same_alert() {
    let (peer, url) = receiver(&["--mode", "pagerduty"]);
    let mut sink = pagerduty(&url, "ROUTING_KEY");
    assert!(sink.sends_resolved());
    sink.notify(&notification(Status::Firing, vec![alert("a1", "medium"), alert("a2", "high")])).unwrap();
    sink.notify(&notification(Status::Resolved, vec![])).unwrap();
    let got = requests(&peer, 2);
    assert_eq!(got.iter().map(|r| r["status"].clone()).collect::<Vec<_>>(), [json!(202), json!(202)]);
    let (trigger, resolve) = (&got[0]["body"], &got[1]["body"]);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(trigger["dedup_key"], "grp-7f3a");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["payload"]["custom_details"]["alert_ids"], json!(["a1", "a2"]));
    assert_no_secret(&format!("{sink:?}"));
}

#[test]
fn secrets_stay_out_of_reasons_and_debug() {
    // Slack's URL is the credential: refused, unreachable and timed-out requests alike.
    let (_peer, url) = receiver(&["--mode", "slack", "--script", "404"]);
    let mut failures: Vec<DeliveryError> =
        vec![slack(&url).notify(&notification(Status::Firing, vec![alert("a1", "low")])).unwrap_err()];
    let closed = format!("http://127.0.0.1:{}", free_port());
    failures.push(slack(&closed).notify(&notification(Status::Firing, vec![alert("a1", "low")])).unwrap_err());
    failures.push(
        pagerduty(&closed, "ROUTING_KEY").notify(&notification(Status::Firing, vec![alert("a1", "low")])).unwrap_err(),
    );
    failures.push(webhook(&closed, &["SECRET", "OTHER_SECRET"], 2000).deliver(&entries(&["a1"])).unwrap_err());
    assert_eq!(failures[0].reason, "HTTP 404: scripted 404");
    for failure in &failures {
        assert_no_secret(&format!("{failure:?}"));
    }
    let debug = format!(
        "{:?} {:?} {:?}",
        slack(&closed),
        pagerduty(&closed, "ROUTING_KEY"),
        webhook(&closed, &["SECRET", "OTHER_SECRET"], 2000)
    );
    assert!(debug.contains("http://127.0.0.1"), "{debug}");
    assert_no_secret(&debug);
}

#[test]
fn redirects_are_followed_only_to_the_same_host() {
    // Same host (a relative Location): followed, with the body and the signature.
    let (peer, url) = receiver(&["--secret", SECRET, "--redirect", "/alerts=/moved"]);
    webhook(&url, &["SECRET"], 5000).deliver(&entries(&["a1"])).unwrap();
    let got = requests(&peer, 2);
    assert_eq!((got[0]["path"].clone(), got[0]["status"].clone()), (json!("/alerts"), json!(307)));
    assert_eq!((got[1]["path"].clone(), got[1]["verified"].clone()), (json!("/moved"), json!(true)));
    assert_eq!(got[1]["body"]["id"], "a1");

    // Another host (`localhost` is not `127.0.0.1`): not followed, and refused for good.
    let (peer, url) = receiver(&["--redirect", "/alerts=http://localhost:9/moved"]);
    let error = webhook(&url, &[], 5000).deliver(&entries(&["a1"])).unwrap_err();
    assert!(error.permanent, "{error:?}");
    assert!(error.reason.starts_with("HTTP 307") && error.reason.contains("redirect not followed"), "{}", error.reason);
    assert_eq!(requests(&peer, 1)[0]["status"], 307);
}
