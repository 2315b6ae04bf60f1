//! The `auditwatch` binary on files.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use crate::support::{binary, generate, generate_with, replay};

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

/// One CloudTrail record per line, from the fixtures: a key created by an admin for another
/// user, revoked with `DeleteAccessKey` and used afterwards is caught twice; a log file on one line among others is dead-lettered with the
/// hint to split it.
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
    assert_eq!(alerts.len(), 2, "{stdout}");
    // The admin created the key for another user.
    assert_eq!(alerts[0]["detector"], "credential-for-other");
    assert_eq!(alerts[0]["account"], "arn:aws:iam::111122223333:user/ops-admin");
    assert_eq!(alerts[0]["evidence"]["baseline"]["created_for"], "arn:aws:iam::111122223333:user/svc-reporting");
    assert_eq!(alerts[1]["detector"], "revoked-key-use");
    assert_eq!(alerts[1]["account"], "arn:aws:iam::111122223333:user/svc-reporting");
    assert_eq!(alerts[1]["credential_id"], "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(alerts[1]["tenant"], "111122223333");
    let entry: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!((entry["kind"].as_str(), entry["field"].as_str()), (Some("invalid_field"), Some("Records")));
    assert!(entry["reason"].as_str().unwrap().contains("split it so that each message holds one record"), "{entry}");

    // The same lines read as native events are all rejected; an unknown format is a usage error.
    let (ok, stdout, stderr) = replay(&[], Some(input.as_bytes()));
    assert!(!ok && stdout.is_empty() && stderr.contains("5 bad line(s)"), "{stderr}");
    assert!(stderr.contains("error: no event decoded from -: first problem, at line 1: field `source`"), "{stderr}");
    assert!(stderr.contains("hint: is this the right --format? (read as `native`"), "{stderr}");
    let (ok, _, stderr) = replay(&["--format", "cef"], Some(b""));
    assert!(!ok && stderr.contains("unknown input format `cef`"), "{stderr}");
}

/// An admin who signed in to the console with MFA signs in without it a week later: one
/// `sign-in-without-mfa` alert. An AWS service's own event in the same log file is retained,
/// counted, and no account.
#[test]
fn a_console_sign_in_without_mfa_after_a_week_with_it_is_found() {
    let with_mfa = cloudtrail_fixture("console-login-with-mfa.json");
    let without = cloudtrail_fixture("console-login-without-mfa.json");
    let service = cloudtrail_fixture("aws-service-event.json");
    let file = serde_json::json!({"Records": [with_mfa, service, without]}).to_string();
    let (ok, stdout, stderr) = replay(&["--format", "cloudtrail"], Some(file.as_bytes()));
    assert!(ok, "{stderr}");
    let alerts: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    let alert = &alerts[0];
    assert_eq!(
        (alert["detector"].as_str(), alert["category"].as_str()),
        (Some("sign-in-without-mfa"), Some("credential_misuse"))
    );
    assert_eq!(alert["account"], "arn:aws:iam::111122223333:user/ops-admin");
    assert_eq!(alert["source_ip"], "203.0.113.140");
    assert_eq!(alert["evidence"]["baseline"]["last_sign_in_with_mfa"], "2026-01-12T08:00:00.000Z", "{alert:#}");
    assert!(stderr.contains("1 event(s) made by a provider's service on its own, retained, not judged"), "{stderr}");
    assert!(stderr.contains("1 accounts tracked"), "the service is not an account: {stderr}");

    // Without the earlier sign-in there is nothing to break.
    let file = serde_json::json!({"Records": [cloudtrail_fixture("console-login-without-mfa.json")]}).to_string();
    let (ok, stdout, stderr) = replay(&["--format", "cloudtrail"], Some(file.as_bytes()));
    assert!(ok && stdout.is_empty(), "{stdout}{stderr}");
}

fn cloudtrail_fixture(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What the key story raises: the admin creating a key for another user, then the key used after
/// its deletion.
const KEY_STORY_ALERTS: [&str; 2] = ["\"credential-for-other\"", "\"revoked-key-use\""];

/// A key created (by an admin, for another user), deleted, then used: a `credential-for-other`
/// and a `revoked-key-use` alert when read in this order.
fn revoked_key_records() -> Vec<serde_json::Value> {
    let mut late_use = cloudtrail_fixture("iam-user-get-object.json");
    late_use["eventTime"] = "2026-01-19T12:00:00Z".into();
    late_use["sourceIPAddress"] = "192.0.2.99".into();
    vec![cloudtrail_fixture("create-access-key.json"), cloudtrail_fixture("delete-access-key.json"), late_use]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn detectors_of(stdout: &str) -> Vec<String> {
    stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["detector"].to_string()).collect()
}

/// A CloudTrail log file as S3 stores it: `{"Records": [...]}` on one line, gzip-compressed.
#[test]
fn replay_reads_a_gzip_cloudtrail_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("111122223333_CloudTrail_us-east-1_20260119T1200Z_a1b2.json.gz");
    let log = serde_json::json!({"Records": revoked_key_records()}).to_string();
    std::fs::write(&file, gzip(log.as_bytes())).unwrap();
    let (ok, stdout, stderr) = replay(&["--format", "cloudtrail", file.to_str().unwrap()], None);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("replayed 3 events from 1 file(s); 0 bad line(s)"), "{stderr}");
    assert_eq!(detectors_of(&stdout), KEY_STORY_ALERTS, "{stdout}");
}

/// A JSON array and a pretty-printed log file, on standard input; a pretty-printed record.
#[test]
fn replay_reads_a_json_array_a_pretty_log_file_and_a_pretty_record() {
    let records = revoked_key_records();
    let array = serde_json::to_string_pretty(&records).unwrap();
    let pretty_log = serde_json::to_string_pretty(&serde_json::json!({"Records": records})).unwrap();
    for input in [array, pretty_log] {
        let (ok, stdout, stderr) = replay(&["--format", "cloudtrail"], Some(input.as_bytes()));
        assert!(ok, "{stderr}");
        assert!(stderr.contains("replayed 3 events from 1 file(s); 0 bad line(s)"), "{stderr}");
        assert_eq!(detectors_of(&stdout), KEY_STORY_ALERTS, "{stdout}");
    }
    let record = serde_json::to_string_pretty(&cloudtrail_fixture("access-denied.json")).unwrap();
    assert!(record.lines().count() > 10);
    let (ok, _, stderr) = replay(&["--format", "cloudtrail"], Some(record.as_bytes()));
    assert!(ok && stderr.contains("replayed 1 events from 1 file(s); 0 bad line(s)"), "{stderr}");
}

/// A directory is read in name order: the key's creation, deletion and use are in three files
/// whose names sort in that order (written in the reverse order), each with a bad record; the
/// dead letters come in name order, and the alert needs the deletion before the use.
#[test]
fn replay_reads_every_file_of_a_directory_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let records = revoked_key_records();
    std::fs::write(dir.path().join("c-use.json.gz"), gzip(format!("not json\n{}\n", records[2]).as_bytes())).unwrap();
    let delete = serde_json::to_string_pretty(&serde_json::json!([{"eventVersion": "1.09"}, records[1]])).unwrap();
    std::fs::write(dir.path().join("b-delete.json"), delete).unwrap();
    std::fs::write(dir.path().join("a-create.jsonl"), format!("{}\n[]\n", records[0])).unwrap();
    std::fs::create_dir(dir.path().join("d-subdirectory")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let dead = elsewhere.path().join("dead.jsonl");
    let args = ["--format", "cloudtrail", "--dead-letter", dead.to_str().unwrap(), dir.path().to_str().unwrap()];
    let (ok, stdout, stderr) = replay(&args, None);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("replayed 3 events from 3 file(s); 3 bad line(s)"), "{stderr}");
    assert_eq!(detectors_of(&stdout), KEY_STORY_ALERTS, "{stdout}");
    let sources: Vec<String> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| {
            let source = &serde_json::from_str::<serde_json::Value>(l).unwrap()["source"];
            let file = Path::new(source["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned();
            format!("{file} {} {}", source["line"], source["index"])
        })
        .collect();
    assert_eq!(sources, ["a-create.jsonl 2 null", "b-delete.json null 0", "c-use.json.gz 1 null"]);
}

/// A record that fails inside a log file is dead-lettered with its index; the others go on.
#[test]
fn replay_dead_letters_a_failing_record_of_a_log_file_with_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = revoked_key_records();
    records.insert(1, serde_json::json!({"eventVersion": "1.09", "eventTime": "2026-01-19T11:00:00Z"}));
    let file = dir.path().join("trail.json");
    std::fs::write(&file, serde_json::to_string_pretty(&serde_json::json!({"Records": records})).unwrap()).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let args = ["--format", "cloudtrail", "--dead-letter", dead.to_str().unwrap(), file.to_str().unwrap()];
    let (ok, stdout, stderr) = replay(&args, None);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("replayed 3 events from 1 file(s); 1 bad line(s) or record(s)"), "{stderr}");
    assert_eq!(detectors_of(&stdout), KEY_STORY_ALERTS, "{stdout}");
    let entry: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!(entry["source"], serde_json::json!({"file": file.to_str().unwrap(), "index": 1}), "{entry}");
    assert_eq!(entry["kind"], "missing_field", "{entry}");
    let raw: serde_json::Value = serde_json::from_str(entry["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw, records[1]);
}

fn fixture(dir: &str, name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir).join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `--format auto` on one file of every format: an Okta API token created, used, revoked by
/// Okta and used again (one alert) between CloudTrail, OCSF and native events; a line of no
/// format is dead-lettered saying what each format lacks. `--format okta` reads the Okta lines.
#[test]
fn replay_reads_a_mix_of_formats_with_format_auto() {
    let mut late_use = fixture("okta", "api-token-user-deactivate.json");
    late_use["published"] = "2026-01-19T12:00:00.000Z".into();
    late_use["uuid"] = "late-use".into();
    let okta = [
        fixture("okta", "api-token-create.json"),
        fixture("okta", "api-token-user-deactivate.json"),
        fixture("okta", "api-token-revoke.json"),
        late_use,
    ];
    let others = [
        fixture("cloudtrail", "eventbridge-api-call.json"),
        fixture("ocsf", "api-activity-success.json"),
        fixture("native", "contacts-export.json"),
        serde_json::json!({"time": "2026-01-19T12:30:00Z", "account": "svc-a", "action": "x"}),
    ];
    let mut lines: Vec<String> = okta.iter().map(|l| l.to_string()).collect();
    lines.splice(2..2, others.iter().map(|l| l.to_string()));
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");
    let (ok, stdout, stderr) =
        replay(&["--format", "auto", "--dead-letter", dead.to_str().unwrap()], Some(input.as_bytes()));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("replayed 7 events") && stderr.contains("1 bad line(s)"), "{stderr}");
    let alerts: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let fired: Vec<(&str, &str)> =
        alerts.iter().map(|a| (a["detector"].as_str().unwrap(), a["credential_id"].as_str().unwrap_or(""))).collect();
    assert_eq!(fired, [("revoked-key-use", "00T7hrsyncEXAMPLE4k2")], "{stdout}");
    assert_eq!(alerts[0]["account"], "00u9prov1sEXAMPLE697");
    let entry: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!((entry["kind"].as_str(), entry["source"]["line"].as_u64()), (Some("missing_field"), Some(6)), "{entry}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(reason.starts_with("the message is in no known input format: cloudtrail lacks"), "{reason}");
    assert!(reason.ends_with("native lacks `outcome`"), "{reason}");

    let okta_only: String = okta.iter().map(|l| format!("{l}\n")).collect();
    let (ok, stdout, stderr) = replay(&["--format", "okta"], Some(okta_only.as_bytes()));
    assert!(ok && stderr.contains("replayed 4 events"), "{stderr}");
    assert_eq!(detectors_of(&stdout), ["\"revoked-key-use\""], "{stdout}");
}

/// An input of which nothing decodes exits non-zero with its first problem and a hint; an empty
/// input does not.
#[test]
fn replay_of_an_input_with_no_decodable_event_fails_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let zstd_like = dir.path().join("trail.json.zst");
    std::fs::write(&zstd_like, b"\x28\xb5\x2f\xfd\x00\x58\x91\x00\n\xa1\xff\xfe\x00\x01\n").unwrap();
    let (ok, _, stderr) = replay(&["--format", "cloudtrail", zstd_like.to_str().unwrap()], None);
    assert!(!ok, "{stderr}");
    let expected = format!("error: no event decoded from {}: first problem, at line 1: ", zstd_like.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("hint: the bytes are not UTF-8 text: the input looks compressed or binary"), "{stderr}");

    let ocsf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocsf/api-activity-success.json");
    let (ok, _, stderr) = replay(&["--format", "cloudtrail", ocsf.to_str().unwrap()], None);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("at record 0: field `"), "{stderr}");
    assert!(stderr.contains("hint: is this the right --format? (read as `cloudtrail`"), "{stderr}");

    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, b"").unwrap();
    let (ok, _, stderr) = replay(&["--format", "cloudtrail", empty.to_str().unwrap()], Some(b""));
    assert!(ok && stderr.contains("replayed 0 events"), "{stderr}");
    let (ok, _, stderr) = replay(&["--format", "cloudtrail"], Some(b"{\"Records\": []}"));
    assert!(ok, "{stderr}");
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

/// The shipped pack over a generated run, scored against its labels.
fn quality(options: &auditwatch::synthetic::gen::GenOptions) -> auditwatch::synthetic::eval::EvalReport {
    let (lines, labels) = generate_with(options);
    let mut engine =
        auditwatch::detection::engine::Engine::new(auditwatch::detection::pack::load().unwrap(), Default::default());
    let mut alerts = Vec::new();
    for line in &lines {
        let event = auditwatch::input::event::decode(line, 1 << 20).unwrap();
        engine.process(&event, &mut alerts).unwrap();
    }
    let alerts: Vec<serde_json::Value> = alerts.iter().map(|a| serde_json::to_value(a).unwrap()).collect();
    auditwatch::synthetic::eval::evaluate(&alerts, &labels)
}

/// The acceptance bar on one seed of ordinary traffic: every incident caught with the right
/// category, at most 1 false alert per 100 account-days after warm-up, median alerts per
/// incident at most 2.
#[test]
fn detection_quality_on_generated_traffic() {
    let report =
        quality(&auditwatch::synthetic::gen::GenOptions { seed: 3, accounts: 100, days: 21, ..Default::default() });
    assert!(report.pass.all, "{report}");
}

/// The same bar on three seeds of the hard set (80 accounts, 45 days of history, 7 judged
/// days; low-and-slow attacks, an outage, monthly jobs, a shared key), run side by side.
#[test]
fn detection_quality_on_the_hard_set() {
    let reports: Vec<_> = std::thread::scope(|scope| {
        let runs =
            [1, 2, 3].map(|seed| scope.spawn(move || quality(&auditwatch::synthetic::gen::GenOptions::hard(seed))));
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    for report in &reports {
        assert!(report.incidents.len() >= 20, "seed {}: {} incidents", report.seed, report.incidents.len());
        let kinds: std::collections::BTreeSet<&str> = report.incidents.iter().map(|i| i.kind.as_str()).collect();
        for hard in ["low_slow_spray", "sustained_exfil", "night_session", "slow_probing"] {
            assert!(kinds.contains(hard), "seed {}: no {hard} incident", report.seed);
        }
    }
    for report in &reports {
        assert!(report.pass.all, "seed {}:\n{report}", report.seed);
    }
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

/// Three weeks of 5-minute rows with a daily and weekly shape and some noise, one spike in the
/// last week: the spike scores highest, the periodic part after the warm-up stays low. The
/// score is on the sliding hour, so the rows after the spike share its hour and are excused.
#[test]
fn series_scores_an_injected_spike_highest_and_the_periodic_part_low() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("series.csv");
    let start = chrono::NaiveDate::from_ymd_opt(2014, 4, 7).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let spike_row = (2 * 7 + 2) * 288 + 120; // the last Wednesday, 10:00
    let mut csv = String::from("timestamp,value\n");
    let mut noise: u64 = 7;
    for row in 0..3 * 7 * 288 {
        let t = start + chrono::Duration::minutes(5 * row as i64);
        let hour = row / 12 % 24;
        let weekday = row / 288 % 7;
        let level = match (weekday < 5, (8..18).contains(&hour)) {
            (true, true) => 60.0,
            (true, false) => 15.0,
            (false, _) => 8.0,
        };
        noise = noise.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wobble = 0.8 + 0.4 * (noise >> 40) as f64 / (1u64 << 24) as f64;
        let value = if row == spike_row { 900.0 } else { level * wobble };
        csv.push_str(&format!("{},{value:.3}\n", t.format("%Y-%m-%d %H:%M:%S")));
    }
    std::fs::write(&input, &csv).unwrap();
    let output = dir.path().join("scores.csv");
    let out = Command::new(binary())
        .args(["series", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(&output).unwrap();
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score"));
    let scores: Vec<f64> = lines.map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(scores.len(), 3 * 7 * 288);
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(scores[..288].iter().all(|s| *s == 0.0), "the first week is warm-up");
    let spike = scores[spike_row];
    // Rows whose sliding hour holds the spike (its hour and the next) are excused.
    let periodic: Vec<f64> =
        (7 * 288..scores.len()).filter(|r| !(spike_row..spike_row + 24).contains(r)).map(|r| scores[r]).collect();
    let high = periodic.iter().filter(|s| **s > 0.5).count();
    assert!(high * 100 < periodic.len(), "{high} of {} periodic rows scored above 0.5", periodic.len());
    let periodic_max = periodic.iter().copied().fold(0.0, f64::max);
    assert!(spike > 0.9 && spike > periodic_max, "spike {spike}, periodic max {periodic_max}");
    let hour_of_spike = scores[spike_row..spike_row + 12].iter().copied().fold(0.0, f64::max);
    assert!(
        spike >= hour_of_spike - 0.01,
        "the spike's own row is (about) its hour's highest: {spike} {hour_of_spike}"
    );

    // Without --output the rows go to stdout; a bad row names its line and field.
    let out = Command::new(binary()).args(["series", "--input", input.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), written);
    std::fs::write(&input, "timestamp,value\n2014-04-07 00:00:00,1\n2014-04-07 00:05:00,n/a\n").unwrap();
    let out = Command::new(binary()).args(["series", "--input", input.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 3: value: \"n/a\" is not a number"), "{stderr}");
}
