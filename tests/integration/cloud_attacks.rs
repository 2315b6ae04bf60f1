//! The cloud scenario of `tests/scenarios/cloud_attacks.py` through `replay`: three weeks of
//! one AWS account's automation and administrators (instance roles, a monitoring SaaS, service
//! users, a rotation job, nightly shared snapshots, a log pipeline, CI with a key rotation, an
//! admin with MFA), then twelve attacks, as a directory of gzip CloudTrail log files and as
//! OCSF; an Okta org's integrations and admins, then six attacks, as Okta System Log. In each
//! format, and again with `--format auto`:
//! - every attack raises its detector's alert on its account, with an attack event in the
//!   evidence;
//! - the benign history after the 7-day warm-up raises at most one false alert per 100
//!   account-days (an alert is false when the event that raised it is not an attack's).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::replay;

fn generate(dir: &Path) -> Value {
    let python = std::env::var("AUDITWATCH_PYTHON").unwrap_or_else(|_| {
        panic!("AUDITWATCH_PYTHON is not set: run the tests with ./test.sh, which builds the venv of Python peers")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/cloud_attacks.py");
    let out = Command::new(python).arg(script).arg(dir).args(["--seed", "1"]).output().unwrap();
    assert!(out.status.success(), "cloud_attacks.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap()
}

fn alerts_of(format: &str, input: &Path) -> Vec<Value> {
    let (ok, stdout, stderr) = replay(&["--format", format, input.to_str().unwrap()], None);
    assert!(ok, "{format}: {stderr}");
    assert!(stderr.contains("; 0 bad line(s)"), "{format}: {stderr}");
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Check one format's alerts against its labels; returns (false alerts after the warm-up,
/// account-days judged) for the report in the failure message.
fn judge(format: &str, alerts: &[Value], labels: &Value, judged_from: &str) -> (usize, f64) {
    let attacks = labels[format]["attacks"].as_array().unwrap();
    let attack_ids: HashSet<&str> =
        attacks.iter().flat_map(|a| a["ids"].as_array().unwrap()).map(|id| id.as_str().unwrap()).collect();
    for attack in attacks {
        let ids: HashSet<&str> = attack["ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap()).collect();
        let caught = alerts.iter().any(|a| {
            a["detector"] == attack["detector"]
                && a["account"] == attack["account"]
                && a["evidence"]["event_ids"].as_array().unwrap().iter().any(|id| ids.contains(id.as_str().unwrap()))
        });
        assert!(
            caught,
            "{format}: `{}` raised no {} alert on {}",
            attack["name"], attack["detector"], attack["account"]
        );
    }
    // The engine puts the event that raised the alert last.
    let raised_by =
        |a: &Value| a["evidence"]["event_ids"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    let false_alerts: Vec<&Value> = alerts
        .iter()
        .filter(|a| !attack_ids.contains(raised_by(a).as_str()))
        .filter(|a| a["time"].as_str().unwrap() >= judged_from)
        .collect();
    let account_days = labels[format]["account_days"].as_f64().unwrap();
    let summaries: Vec<String> =
        false_alerts.iter().map(|a| format!("{} {} {}", a["time"], a["detector"], a["summary"])).collect();
    assert!(
        false_alerts.len() as f64 <= account_days / 100.0,
        "{format}: {} false alerts in {account_days} account-days: {summaries:#?}",
        false_alerts.len()
    );
    (false_alerts.len(), account_days)
}

#[test]
fn every_cloud_attack_raises_its_alert_and_the_benign_history_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let labels = generate(dir.path());
    // The first day after the warm-up, as the alerts write times.
    let start = chrono::DateTime::parse_from_rfc3339(labels["start"].as_str().unwrap()).unwrap();
    let judged_from = (start + chrono::Duration::days(labels["warmup_days"].as_i64().unwrap()))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    for (format, input) in [("cloudtrail", "cloudtrail"), ("ocsf", "ocsf.jsonl"), ("okta", "okta.jsonl")] {
        let input = dir.path().join(input);
        let alerts = alerts_of(format, &input);
        judge(format, &alerts, &labels, &judged_from);
        // Auto-detection reads each document as its own format: the same alerts.
        let ids = |alerts: &[Value]| -> BTreeSet<String> {
            alerts.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
        };
        assert_eq!(ids(&alerts_of("auto", &input)), ids(&alerts), "{format} read with --format auto");
    }
}

/// Each AWS attack technique of `techniques.json`, alone, in the benign history
/// (`history.jsonl`: the scenario without its attacks, one CloudTrail record per line): the
/// detector it names raises an alert with one of its events in the evidence.
#[test]
fn each_aws_attack_technique_alone_in_three_weeks_of_benign_history_raises_its_alert() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let text = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    let history: Vec<&str> = text.lines().collect();
    let time = |record: &Value| record["eventTime"].as_str().unwrap().to_string();
    let times: Vec<String> = history.iter().map(|l| time(&serde_json::from_str(l).unwrap())).collect();
    let catalogue: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("techniques.json")).unwrap()).unwrap();
    assert!(catalogue.len() >= 35, "{} techniques", catalogue.len());
    for technique in &catalogue {
        let records = technique["records"].as_array().unwrap();
        let ids: HashSet<&str> = records.iter().map(|r| r["eventID"].as_str().unwrap()).collect();
        let at = times.partition_point(|t| *t <= time(&records[0]));
        let mut input: Vec<String> = history[..at].iter().map(|l| l.to_string()).collect();
        input.extend(records.iter().map(Value::to_string));
        input.extend(history[at..].iter().map(|l| l.to_string()));
        let (ok, stdout, stderr) = replay(&["--format", "cloudtrail"], Some(input.join("\n").as_bytes()));
        assert!(ok && stderr.contains("; 0 bad line(s)"), "{}: {stderr}", technique["name"]);
        let raised: BTreeSet<String> = stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|a| {
                a["evidence"]["event_ids"].as_array().unwrap().iter().any(|id| ids.contains(id.as_str().unwrap()))
            })
            .map(|a| a["detector"].as_str().unwrap().to_string())
            .collect();
        let detector = technique["expect"].as_str().unwrap();
        assert!(raised.contains(detector), "{}: raised {raised:?}", technique["name"]);
    }
}
