//! Routing, silences and masking through the service pipeline on the mock cluster: each output
//! gets the alerts its routes send it, masked as configured, minus what an active silence
//! holds back; an expired silence holds back nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rdkafka::mocking::MockCluster;
use serde_json::Value;

use auditwatch::admin::metrics::Metrics;
use auditwatch::alerting::silence::SilenceFile;
use auditwatch::config::AlertMatcher;
use auditwatch::pipeline::Control;

use crate::support::{account_of, flush, generate, produce, producer, run_until_done, service_config};

fn read_alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Run the last fifth of a generated scenario through a fresh pipeline with `outputs` (and
/// routes), returning its metrics once every message is handled.
fn run(state: &Path, outputs: &str) -> Arc<Metrics> {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit.events", 4, 1).unwrap();
    cluster.create_topic("audit.deadletter", 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let (lines, _) = generate(5, 8, 21);
    let producer = producer(&bootstrap);
    let lines = &lines[lines.len() * 4 / 5..];
    for line in lines {
        produce(&producer, "audit.events", &account_of(line), line);
    }
    flush(&producer);
    let config = service_config(&bootstrap, state, "alerting", outputs);
    let control = Control::default();
    let metrics = Arc::new(Metrics::new(&["audit.events".to_string()]));
    let total = lines.len() as u64;
    let summary = run_until_done(&config, &control, metrics.clone(), || control.handled.load(Ordering::Relaxed) >= total);
    assert!(summary.sinks_drained, "every output confirmed its alerts before the stop");
    metrics
}

fn ids(alerts: &[Value]) -> BTreeSet<String> {
    alerts.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn each_output_gets_what_its_routes_send_masked_and_minus_the_active_silences() {
    // The reference: every alert, unrouted and unmasked.
    let reference_dir = tempfile::tempdir().unwrap();
    let all_file = reference_dir.path().join("all.jsonl");
    run(reference_dir.path(), &format!("[[outputs]]\ntype = \"file\"\npath = \"{}\"\n", all_file.display()));
    let reference = read_alerts(&all_file);
    let accounts: BTreeSet<&str> = reference.iter().map(|a| a["account"].as_str().unwrap()).collect();
    assert!(accounts.len() >= 2, "the scenario raises alerts about several accounts: {accounts:?}");
    let mut accounts = accounts.into_iter();
    let (silenced, expired) = (accounts.next().unwrap().to_string(), accounts.next().unwrap().to_string());
    let urgent = |a: &&Value| a["category"] == "credential_misuse";
    assert!(reference.iter().any(|a| urgent(&a)), "the scenario misuses a credential");
    assert!(reference.iter().any(|a| !urgent(&a)), "and raises other alerts");

    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let mut silences = SilenceFile::default();
    let only = |account: &str| AlertMatcher { account: vec![account.to_string()], ..Default::default() };
    silences.add(only(&silenced), "maintenance".into(), "test".into(), now - chrono::Duration::hours(1), now + chrono::Duration::hours(1));
    silences.add(only(&expired), "over".into(), "test".into(), now - chrono::Duration::hours(2), now - chrono::Duration::hours(1));
    silences.write(&dir.path().join("state/silences.json")).unwrap();
    let (feed, pager) = (dir.path().join("feed.jsonl"), dir.path().join("pager.jsonl"));
    let outputs = format!(
        r#"
[[outputs]]
name = "feed"
type = "file"
path = "{}"
[[outputs]]
name = "pager"
type = "file"
path = "{}"
mask = ["source_ip", "credential_id", "email"]
[[routes]]
name = "urgent"
match = {{ category = ["credential_misuse"] }}
outputs = ["pager"]
"#,
        feed.display(),
        pager.display()
    );
    let metrics = run(&dir.path().join("state"), &outputs);

    let kept: Vec<&Value> = reference.iter().filter(|a| a["account"] != silenced.as_str()).collect();
    let want_feed: BTreeSet<String> =
        kept.iter().filter(|a| !urgent(a)).map(|a| a["id"].as_str().unwrap().to_string()).collect();
    let want_pager: BTreeSet<String> = kept.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    let (got_feed, got_pager) = (read_alerts(&feed), read_alerts(&pager));
    assert_eq!(ids(&got_feed), want_feed, "feed: only the default route's alerts, minus the silenced account");
    assert_eq!(ids(&got_pager), want_pager, "pager: urgent ones by its route, the rest by the default route");
    assert!(got_pager.iter().any(|a| a["account"] == expired.as_str()), "an expired silence holds nothing back");

    // Masked where configured, whole elsewhere; ids and SQL untouched.
    let by_id: std::collections::HashMap<&str, &Value> = reference.iter().map(|a| (a["id"].as_str().unwrap(), a)).collect();
    for alert in &got_pager {
        let original = by_id[alert["id"].as_str().unwrap()];
        assert_eq!(alert["evidence"]["sql"], original["evidence"]["sql"]);
        if let Some(ip) = original["source_ip"].as_str() {
            let masked = alert["source_ip"].as_str().unwrap();
            assert!(masked.ends_with("/24") || masked.ends_with("/48"), "{masked}");
            let text = alert.to_string().replace(alert["evidence"]["sql"].as_str().unwrap(), "");
            assert!(!text.contains(&format!("\"{ip}\"")), "{ip} left whole in {text}");
        }
        if let Some(key) = original["credential_id"].as_str().filter(|k| k.chars().count() > 8) {
            assert_ne!(alert["credential_id"].as_str(), Some(key));
        }
    }
    for alert in &got_feed {
        assert_eq!(alert["source_ip"], by_id[alert["id"].as_str().unwrap()]["source_ip"]);
    }

    let text = metrics.render(0);
    let silenced_count = reference.iter().filter(|a| a["account"] == silenced.as_str()).count();
    let silenced_urgent = reference.iter().filter(|a| a["account"] == silenced.as_str()).filter(urgent).count();
    assert_eq!(crate::support::metric(&text, "auditwatch_sink_silenced_total{sink=\"pager\"}"), silenced_count as f64);
    assert_eq!(
        crate::support::metric(&text, "auditwatch_sink_silenced_total{sink=\"feed\"}"),
        (silenced_count - silenced_urgent) as f64
    );
}
