//! The `auditwatch` binary on files.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::support::{binary, generate};

fn replay(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    let mut child = Command::new(binary())
        .arg("replay")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn replay_routes_every_bad_line_to_the_dead_letter_file_and_processes_every_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = |i: usize| {
        format!(
            r#"{{"id":"g{i}","time":"2026-01-05T10:{:02}:00Z","account":"svc-a","action":"auth.login","outcome":"failure","source":{{"ip":"203.0.113.9"}}}}"#,
            i % 60
        )
    };
    let three_mb = format!(
        r#"{{"time":"2026-01-05T10:00:00Z","account":"svc-a","action":"x","outcome":"success","attributes":{{"pad":"{}"}}}}"#,
        "x".repeat(3 << 20)
    );
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"time\": \"2026-01-05T10:00:00Z\", \"account\": ".to_vec(), "malformed_json"),
        (br#"{"time":"2026-01-05T10:00:00Z","action":"x","outcome":"success"}"#.to_vec(), "missing_field"),
        (br#"{"time":"2026-01-05T10:00:00Z","account":42,"action":"x","outcome":"success"}"#.to_vec(), "invalid_field"),
        (br#"{"time":"next tuesday","account":"a","action":"x","outcome":"success"}"#.to_vec(), "invalid_field"),
        (three_mb.into_bytes(), "too_large"),
        (
            b"{\"time\":\"2026-01-05T10:00:00Z\",\"account\":\"\xff\xfe\",\"action\":\"x\",\"outcome\":\"success\"}"
                .to_vec(),
            "invalid_utf8",
        ),
        (b"{}".to_vec(), "missing_field"),
        (b"[1, 2, 3]".to_vec(), "not_an_object"),
    ];
    let mut input = Vec::new();
    let mut expected_bad = Vec::new();
    let mut line = 0;
    for i in 0..40 {
        input.extend_from_slice(good(i).as_bytes());
        input.push(b'\n');
        line += 1;
        if i % 5 == 2 {
            let (raw, kind) = &bad[(i / 5) % bad.len()];
            input.extend_from_slice(raw);
            input.push(b'\n');
            line += 1;
            expected_bad.push((line, raw.clone(), *kind));
        }
    }
    let file = dir.path().join("mixed.jsonl");
    std::fs::write(&file, &input).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let (ok, stdout, stderr) = replay(&[file.to_str().unwrap(), "--dead-letter", dead.to_str().unwrap()], None);
    assert!(ok, "replay failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("replayed 40 events"), "{stderr}");
    assert!(stderr.contains(&format!("{} bad line(s)", expected_bad.len())), "{stderr}");
    assert!(stdout.lines().count() >= 1, "the 40 failures from one address are a burst: {stdout}");

    let entries: Vec<serde_json::Value> =
        std::fs::read_to_string(&dead).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), expected_bad.len());
    for (entry, (line, raw, kind)) in entries.iter().zip(&expected_bad) {
        assert_eq!(entry["kind"], *kind, "{entry}");
        assert_eq!(entry["source"]["line"], *line as u64);
        assert_eq!(entry["source"]["file"], file.to_str().unwrap());
        assert!(!entry["reason"].as_str().unwrap().is_empty());
        match std::str::from_utf8(raw) {
            Ok(text) => assert_eq!(entry["raw"], text),
            Err(_) => assert_eq!(
                base64::engine::general_purpose::STANDARD.decode(entry["raw_base64"].as_str().unwrap()).unwrap(),
                *raw
            ),
        }
    }
    let missing = entries.iter().find(|e| e["kind"] == "missing_field").unwrap();
    assert_eq!(missing["reason"], "field `account`: is required but missing");
}

#[test]
fn replay_reads_standard_input_and_exits_non_zero_only_on_io_errors() {
    let (ok, stdout, stderr) =
        replay(&[], Some(b"not json\n{\"time\":0,\"account\":\"a\",\"action\":\"x\",\"outcome\":\"success\"}\n"));
    assert!(ok, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("replayed 1 events") && stderr.contains("1 bad line(s)"), "{stderr}");
    let (ok, _, stderr) = replay(&["/nonexistent/events.jsonl"], None);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/events.jsonl"), "{stderr}");
}

/// One CloudTrail record per line, from the fixtures: a key revoked with `DeleteAccessKey` and
/// used afterwards is caught; a whole log file is dead-lettered with the hint to split it.
#[test]
fn replay_reads_cloudtrail_records_with_format_cloudtrail() {
    let fixture = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail").join(name);
        let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        record
    };
    let mut late_use = fixture("iam-user-get-object.json");
    late_use["eventTime"] = "2026-01-19T12:00:00Z".into();
    late_use["sourceIPAddress"] = "192.0.2.99".into();
    let log_file = serde_json::json!({"Records": [fixture("access-denied.json")]});
    let lines = [
        fixture("eventbridge-api-call.json"),
        fixture("create-access-key.json"),
        fixture("delete-access-key.json"),
        log_file,
        late_use,
    ];
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");
    let args = ["--format", "cloudtrail", "--dead-letter", dead.to_str().unwrap()];
    let (ok, stdout, stderr) = replay(&args, Some(input.as_bytes()));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("replayed 4 events") && stderr.contains("1 bad line(s)"), "{stderr}");
    let alerts: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert_eq!(alerts[0]["detector"], "revoked-key-use");
    assert_eq!(alerts[0]["account"], "arn:aws:iam::111122223333:user/svc-reporting");
    assert_eq!(alerts[0]["credential_id"], "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(alerts[0]["tenant"], "111122223333");
    let entry: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!((entry["kind"].as_str(), entry["field"].as_str()), (Some("invalid_field"), Some("Records")));
    assert!(entry["reason"].as_str().unwrap().contains("split it so that each message holds one record"), "{entry}");

    // The same lines read as native events are all rejected; an unknown format is a usage error.
    let (ok, stdout, stderr) = replay(&[], Some(input.as_bytes()));
    assert!(ok && stdout.is_empty() && stderr.contains("5 bad line(s)"), "{stderr}");
    let (ok, _, stderr) = replay(&["--format", "cef"], Some(b""));
    assert!(!ok && stderr.contains("unknown input format `cef`"), "{stderr}");
}

/// Golden alerts for a fixed generated scenario. Regenerate with `UPDATE_GOLDEN=1` after an
/// intended change, and review the diff.
#[test]
fn golden_alerts_for_a_fixed_scenario() {
    let (lines, _) = generate(42, 30, 21);
    let mut input = lines.join(&b'\n');
    input.push(b'\n');
    let (ok, stdout, stderr) = replay(&[], Some(&input));
    assert!(ok, "{stderr}");
    let mut alerts: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for a in &mut alerts {
        assert!(a["detected_at"].is_string());
        a.as_object_mut().unwrap().remove("detected_at");
    }
    let actual: String = alerts.iter().map(|a| format!("{a}\n")).collect();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/replay-seed42-30x21.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).expect("golden file missing: run with UPDATE_GOLDEN=1");
    assert!(!expected.is_empty());
    for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, e, "alert {i} differs from {}", golden.display());
    }
    assert_eq!(actual.lines().count(), expected.lines().count());
}

#[test]
fn detectors_check_reports_every_problem_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        r#"name = "a"
category = "off_hours"
type = "failure_burst"
severity = "high"
description = "d"
runbook = "r"
cooldown = "1h"
[params]
outcome = "failure"
window = "10q"
min_count = 10
max_p_value = 0.5
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("b.toml"), "name = \"b\"\ncategory = \"failed_auth\"\n").unwrap();
    let out = Command::new(binary()).args(["detectors", "check", dir.path().to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a.toml: category:"), "{stderr}");
    assert!(stderr.contains("a.toml: params:") && stderr.contains("unknown unit `q`"), "{stderr}");
    assert!(stderr.contains("b.toml") && stderr.contains("missing field"), "{stderr}");
}

#[test]
fn shipped_detectors_pass_check_and_their_inline_tests() {
    let out = Command::new(binary()).args(["detectors", "test"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    let out = Command::new(binary())
        .args(["detectors", "check", concat!(env!("CARGO_MANIFEST_DIR"), "/detectors")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The acceptance bar on one seed (the note has all three): every incident caught with the
/// right category, at most 1 false alert per 100 account-days after warm-up, median alerts per
/// incident at most 2.
#[test]
fn detection_quality_on_generated_traffic() {
    let (lines, labels) = generate(3, 100, 21);
    let mut engine =
        auditwatch::detection::engine::Engine::new(auditwatch::detection::pack::load().unwrap(), Default::default());
    let mut alerts = Vec::new();
    for line in &lines {
        let event = auditwatch::input::event::decode(line, 1 << 20).unwrap();
        engine.process(&event, &mut alerts).unwrap();
    }
    let alerts: Vec<serde_json::Value> = alerts.iter().map(|a| serde_json::to_value(a).unwrap()).collect();
    let report = auditwatch::synthetic::eval::evaluate(&alerts, &labels);
    assert!(report.pass.all, "{report}");
}

#[test]
fn demo_runs_end_to_end_with_nothing_installed() {
    let out =
        Command::new(binary()).args(["demo", "--accounts", "20", "--days", "21", "--seed", "5"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("in-process Kafka broker"), "{stdout}");
    assert!(stdout.contains("dead-lettered       3"), "the three malformed messages: {stdout}");
    assert!(stdout.contains("auditwatch run --config"), "ends by pointing at a real cluster");
    let alerts = stdout
        .lines()
        .filter(|l| {
            l.contains("] failed_auth")
                || l.contains("] data_volume")
                || l.contains("] off_hours")
                || l.contains("] credential_misuse")
        })
        .count();
    assert!(alerts >= 4, "alerts printed as they fire: {stdout}");
}

#[test]
fn a_missing_config_file_is_one_line_naming_it_without_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-auditwatch.toml");
    for args in [vec!["run", "--config"], vec!["config", "check"]] {
        let out = Command::new(binary())
            .args(&args)
            .arg(&missing)
            .env("RUST_BACKTRACE", "1")
            .env("RUST_LIB_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
        let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(error.len(), 1, "{args:?}: one error line: {stderr}");
        assert!(error[0].contains(&format!("cannot read config file {}", missing.display())), "{args:?}: {stderr}");
        let reason = std::fs::read(&missing).unwrap_err().to_string();
        assert_eq!(error[0].matches(&reason).count(), 1, "{args:?}: the reason, once: {stderr}");
        assert!(!stderr.to_lowercase().contains("stack backtrace"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Caused by"), "{args:?}: the chain is on the one line: {stderr}");
    }
}
