//! The service pipeline against librdkafka's in-process mock cluster.
//!
//! The mock cluster keeps only about the last 5 MB of each partition, so these tests keep the
//! produced volume small: about 56k messages over 8 partitions, under 3 MB each.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;

use auditwatch::admin::metrics::Metrics;
use auditwatch::config::{self, Config};
use auditwatch::pipeline::{Control, RunSummary};

use crate::support::{account_of, committed, end_offsets, flush, generate, produce, producer, read_all, wait_until};

const PARTITIONS: i32 = 8;

fn config(bootstrap: &str, state: &std::path::Path, group: &str, alerts_topic: &str) -> Config {
    crate::support::service_config(
        bootstrap,
        state,
        group,
        &format!("[[outputs]]\ntype = \"kafka\"\ntopic = \"{alerts_topic}\"\n"),
    )
}

/// Run a pipeline until `control.handled` reaches `stop_at` (it counts across runs).
fn run_until(config: &Config, control: &Control, stop_at: u64) -> RunSummary {
    let metrics = Arc::new(Metrics::new(&config.topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>()));
    crate::support::run_until_done(config, control, metrics, || control.handled.load(Ordering::Relaxed) >= stop_at)
}

/// The last 40% of a 21-day scenario (where the incidents are), with garbage interleaved.
fn traffic() -> Vec<(Vec<u8>, Vec<u8>)> {
    let (lines, _) = generate(11, 12, 21);
    let mut out = Vec::new();
    for (i, line) in lines[lines.len() * 3 / 5..].iter().enumerate() {
        out.push((account_of(line), line.clone()));
        if i % 5_000 == 17 {
            out.push((b"junk".to_vec(), b"{\"time\": oops".to_vec()));
            out.push((b"junk".to_vec(), b"\xff\xfe not utf-8".to_vec()));
        }
    }
    out
}

/// Produce `messages`, staying at most `AHEAD` messages ahead of the slowest reader: the mock
/// cluster would prune what nobody read yet.
fn feed(bootstrap: &str, messages: &[(Vec<u8>, Vec<u8>)], slowest: impl Fn() -> u64) {
    const AHEAD: u64 = 8_000;
    let producer = producer(bootstrap);
    for (i, (key, payload)) in messages.iter().enumerate() {
        while i as u64 > slowest() + AHEAD {
            std::thread::sleep(Duration::from_millis(2));
        }
        produce(&producer, "audit.events", key, payload);
    }
    flush(&producer);
}

fn counts(messages: &[(Vec<u8>, Vec<u8>)]) -> (u64, u64) {
    let garbage = messages.iter().filter(|(k, _)| k == b"junk").count() as u64;
    (messages.len() as u64 - garbage, garbage)
}

fn cluster() -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, String) {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit.events", PARTITIONS, 1).unwrap();
    for t in ["audit.deadletter", "alerts.a", "alerts.b"] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    (cluster, bootstrap)
}

#[test]
fn pipeline_dead_letters_garbage_delivers_alerts_and_commits_offsets() {
    let (_cluster, bootstrap) = cluster();
    let messages = traffic();
    let (good, garbage) = counts(&messages);
    let state = tempfile::tempdir().unwrap();
    let config = config(&bootstrap, state.path(), "g1", "alerts.a");
    let control = Control::default();
    let summary = std::thread::scope(|s| {
        s.spawn(|| feed(&bootstrap, &messages, || control.handled.load(Ordering::Relaxed)));
        run_until(&config, &control, good + garbage)
    });
    assert_eq!(summary.events, good);
    assert_eq!(summary.dead_letters, garbage);

    let dead = read_all(&bootstrap, "audit.deadletter", 1);
    assert_eq!(dead.len() as u64, garbage);
    for d in &dead {
        assert_eq!(d.header("auditwatch.source.topic"), Some("audit.events"));
        assert!(d.header("auditwatch.source.offset").is_some_and(|o| o.parse::<i64>().is_ok()));
        assert!(matches!(d.header("auditwatch.kind"), Some("malformed_json" | "invalid_utf8")), "{d:?}");
        assert!(d.payload == b"{\"time\": oops" || d.payload == b"\xff\xfe not utf-8", "original bytes kept");
    }
    let alerts = read_all(&bootstrap, "alerts.a", 1);
    assert!(summary.sinks_drained);
    assert_eq!(alerts.len() as u64, summary.alerts);
    assert!(!alerts.is_empty());
    for a in &alerts {
        let body: serde_json::Value = serde_json::from_slice(&a.payload).unwrap();
        assert_eq!(body["account"].as_str().unwrap().as_bytes(), a.key.as_slice(), "alerts are keyed by account");
    }
    // Everything handled is covered by the final checkpoint and committed.
    // (An empty partition has nothing to commit: -1 there.)
    let committed: Vec<i64> =
        committed(&bootstrap, "g1", "audit.events", PARTITIONS).into_iter().map(|o| o.max(0)).collect();
    assert_eq!(committed, end_offsets(&bootstrap, "audit.events", PARTITIONS));
    let checkpoint = auditwatch::state::checkpoint::read(state.path()).unwrap().unwrap();
    let next: u64 = checkpoint.offsets.iter().map(|o| o.next_offset as u64).sum();
    assert_eq!(next, good + garbage);
}

/// (detector, id) of every alert delivered to `topic`.
fn delivered(bootstrap: &str, topic: &str) -> Vec<(String, String)> {
    read_all(bootstrap, topic, 1)
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            (v["detector"].as_str().unwrap().to_string(), v["id"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Ids of the alerts whose detectors look at one account's events only.
///
/// Partitions interleave differently between runs. Detectors whose state is one account's only
/// see that account's events, in order, so their ids must match exactly. A spray spans accounts
/// and a key can be presented by accounts on different partitions, so for those the order (and
/// so which event fires) may differ; the single-partition e2e crash test compares every id.
fn per_account(alerts: &[(String, String)]) -> BTreeSet<String> {
    const PER_ACCOUNT: [&str; 5] =
        ["failed-auth-burst", "denied-burst", "bulk-export", "slow-exfiltration", "off-hours"];
    alerts.iter().filter(|(d, _)| PER_ACCOUNT.contains(&d.as_str())).map(|(_, id)| id.clone()).collect()
}

#[test]
fn restart_from_checkpoint_repeats_no_alert_and_misses_none() {
    let (_cluster, bootstrap) = cluster();
    let messages = traffic();
    let total = messages.len() as u64;
    let (straight_state, restarted_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (straight, restarted) = (Control::default(), Control::default());
    let config_a = config(&bootstrap, straight_state.path(), "straight", "alerts.a");
    let config_b = config(&bootstrap, restarted_state.path(), "restarted", "alerts.b");
    let (first, second) = std::thread::scope(|s| {
        s.spawn(|| {
            feed(&bootstrap, &messages, || {
                straight.handled.load(Ordering::Relaxed).min(restarted.handled.load(Ordering::Relaxed))
            })
        });
        s.spawn(|| run_until(&config_a, &straight, total));
        let first = run_until(&config_b, &restarted, total / 3);
        let second = run_until(&config_b, &restarted, total);
        (first, second)
    });
    assert!(first.messages >= total / 3 && first.messages < total, "stopped part-way: {}", first.messages);
    assert_eq!(first.messages + second.messages, total, "after a clean stop nothing is read twice and nothing skipped");

    let (a, b) = (delivered(&bootstrap, "alerts.a"), delivered(&bootstrap, "alerts.b"));
    assert_eq!(b.len(), b.iter().collect::<BTreeSet<_>>().len(), "no alert delivered twice");
    assert_eq!(per_account(&a), per_account(&b));
    assert!(!a.is_empty());
}

/// Partitions this instance holds, as its `/metrics` reports them.
fn partitions_assigned(metrics: &Metrics) -> i64 {
    metrics
        .render(0)
        .lines()
        .find_map(|l| l.strip_prefix("auditwatch_partitions_assigned "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_instances_in_one_group_split_the_partitions_and_hand_them_over() {
    let (_cluster, bootstrap) = cluster();
    let messages = traffic();
    let total = messages.len() as u64;
    let (good, _) = counts(&messages);
    let states = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let alone = config(&bootstrap, states[0].path(), "alone", "alerts.a");
    let pair = [
        config(&bootstrap, states[1].path(), "pair", "alerts.b"),
        config(&bootstrap, states[2].path(), "pair", "alerts.b"),
    ];
    let alone_control = Control::default();
    let controls = [Control::default(), Control::default()];
    let stop = [AtomicBool::new(false), AtomicBool::new(false)];
    let metrics =
        [Arc::new(Metrics::new(&["audit.events".to_string()])), Arc::new(Metrics::new(&["audit.events".to_string()]))];
    let pair_handled = || controls.iter().map(|c| c.handled.load(Ordering::Relaxed)).sum::<u64>();
    let summaries = std::thread::scope(|s| {
        let mut instances: Vec<_> = (0..2)
            .map(|i| {
                let (config, control, metrics, stop) = (&pair[i], &controls[i], metrics[i].clone(), &stop[i]);
                s.spawn(move || {
                    crate::support::run_until_done(config, control, metrics, || stop.load(Ordering::Relaxed))
                })
            })
            .collect();
        // Traffic starts once the group has settled with both members, so every partition is
        // read by one instance from its first message on. On a loaded machine the mock
        // cluster's group can take several ~30 s join rounds to settle (seen in CI).
        wait_until("both instances to share the partitions", Duration::from_secs(180), || {
            let held: Vec<i64> = metrics.iter().map(|m| partitions_assigned(m)).collect();
            held.iter().all(|&n| n > 0) && held.iter().sum::<i64>() == i64::from(PARTITIONS)
        });
        s.spawn(|| feed(&bootstrap, &messages, || alone_control.handled.load(Ordering::Relaxed).min(pair_handled())));
        run_until(&alone, &alone_control, total);
        wait_until("the pair to read everything", Duration::from_secs(120), || pair_handled() >= total);
        // The first instance leaves; the second takes its partitions over where the first one's
        // final checkpoint stops, so it reads none of them again.
        stop[0].store(true, Ordering::Relaxed);
        let first = instances.remove(0).join().unwrap();
        wait_until("the second instance to hold every partition", Duration::from_secs(60), || {
            partitions_assigned(&metrics[1]) == i64::from(PARTITIONS)
        });
        stop[1].store(true, Ordering::Relaxed);
        let second = instances.remove(0).join().unwrap();
        [first, second]
    });

    // Each event was applied once, by one of the two, and both did a share.
    assert!(summaries.iter().all(|s| s.events > 0), "{summaries:?}");
    assert_eq!(summaries.iter().map(|s| s.events).sum::<u64>(), good);
    let committed: Vec<i64> =
        committed(&bootstrap, "pair", "audit.events", PARTITIONS).into_iter().map(|o| o.max(0)).collect();
    assert_eq!(committed, end_offsets(&bootstrap, "audit.events", PARTITIONS));
    // An account's state lives with its partition, so the pair raises what one instance raises
    // about single accounts.
    let (a, b) = (delivered(&bootstrap, "alerts.a"), delivered(&bootstrap, "alerts.b"));
    assert_eq!(b.len(), b.iter().collect::<BTreeSet<_>>().len(), "no alert delivered twice");
    assert!(!per_account(&a).is_empty());
    assert_eq!(per_account(&a), per_account(&b));
}

#[test]
fn a_partition_read_on_elsewhere_resumes_at_the_group_offset_not_the_stale_state() {
    let (_cluster, bootstrap) = cluster();
    let messages = traffic();
    let total = messages.len() as u64;
    let (first_state, other_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = config(&bootstrap, first_state.path(), "moves", "alerts.a");
    let other = config(&bootstrap, other_state.path(), "moves", "alerts.b");

    // The first instance reads a third and stops; another one (its own state) reads the rest.
    let (first_control, other_control) = (Control::default(), Control::default());
    let (early, rest) = std::thread::scope(|s| {
        s.spawn(|| {
            feed(&bootstrap, &messages, || {
                first_control.handled.load(Ordering::Relaxed) + other_control.handled.load(Ordering::Relaxed)
            })
        });
        let early = run_until(&first, &first_control, total / 3).messages;
        (early, run_until(&other, &other_control, total - early).messages)
    });
    assert_eq!(early + rest, total);

    // New traffic; the first instance comes back with its checkpoint, which stops a long way
    // behind the group. It must go on from the group's offsets: the events in between were
    // another instance's to judge, and replaying them would raise its alerts again.
    let extra = &messages[..500];
    let producer = producer(&bootstrap);
    for (key, payload) in extra {
        produce(&producer, "audit.events", key, payload);
    }
    flush(&producer);
    let back = run_until(&first, &first_control, early + extra.len() as u64);
    assert_eq!(back.messages, extra.len() as u64, "read only what came after the group's offsets");
    let committed: Vec<i64> =
        committed(&bootstrap, "moves", "audit.events", PARTITIONS).into_iter().map(|o| o.max(0)).collect();
    assert_eq!(committed, end_offsets(&bootstrap, "audit.events", PARTITIONS));
}

/// A CloudTrail record from `tests/fixtures/cloudtrail/`, as one compact JSON message.
fn cloudtrail_fixture(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/cloudtrail/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut record);
    serde_json::to_vec(&record).unwrap()
}

#[test]
fn each_topic_is_decoded_in_its_own_format() {
    let cluster = MockCluster::new(1).unwrap();
    for (topic, partitions) in [("audit.events", 2), ("aws.cloudtrail", 2), ("audit.deadletter", 1), ("alerts", 1)] {
        cluster.create_topic(topic, partitions, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[kafka]
brokers = "{bootstrap}"
group_id = "formats"
[[topics]]
name = "audit.events"
[[topics]]
name = "aws.cloudtrail"
format = "cloudtrail"
[dead_letter]
topic = "audit.deadletter"
[state]
dir = "{}"
[[outputs]]
type = "kafka"
topic = "alerts"
"#,
        state.path().display()
    );
    let config = config::load_from(&text, "test", &[]).unwrap();

    // A key is issued, deleted, and then used again from a new address.
    let created = cloudtrail_fixture("create-access-key", |_| {});
    let deleted = cloudtrail_fixture("delete-access-key", |_| {});
    let used_after = cloudtrail_fixture("iam-user-get-object", |r| {
        r["eventTime"] = "2026-01-19T12:00:00Z".into();
        r["eventID"] = "late-use".into();
        r["sourceIPAddress"] = "192.0.2.99".into();
    });
    let native = br#"{"time":"2026-01-19T12:00:00Z","account":"svc-a","action":"auth.login","outcome":"success"}"#;
    let producer = producer(&bootstrap);
    for record in [&created, &deleted, &used_after] {
        produce(&producer, "aws.cloudtrail", b"svc-reporting", record);
    }
    produce(&producer, "aws.cloudtrail", b"svc-a", native);
    produce(&producer, "audit.events", b"svc-a", native);
    produce(&producer, "audit.events", b"svc-reporting", &created);
    flush(&producer);

    let control = Control::default();
    let summary = run_until(&config, &control, 6);
    assert_eq!((summary.events, summary.dead_letters), (4, 2));

    // Each message in the other topic's format is dead-lettered, with the field its own
    // format misses.
    let mut dead: Vec<(String, String, Vec<u8>)> = read_all(&bootstrap, "audit.deadletter", 1)
        .into_iter()
        .map(|d| {
            let source = d.header("auditwatch.source.topic").unwrap_or_default().to_string();
            let field = d.header("auditwatch.field").unwrap_or_default().to_string();
            (source, field, d.payload)
        })
        .collect();
    dead.sort();
    assert_eq!(
        dead,
        vec![
            ("audit.events".to_string(), "time".to_string(), created.clone()),
            ("aws.cloudtrail".to_string(), "eventTime".to_string(), native.to_vec()),
        ]
    );

    let alerts: Vec<serde_json::Value> =
        read_all(&bootstrap, "alerts", 1).iter().map(|a| serde_json::from_slice(&a.payload).unwrap()).collect();
    let fired: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a["detector"].as_str().unwrap(), a["credential_id"].as_str().unwrap_or_default()))
        .collect();
    // The admin made the key for another user, which was then used after its deletion.
    assert_eq!(
        fired,
        vec![("credential-for-other", "AKIAI44QH8DHBEXAMPLE"), ("revoked-key-use", "AKIAIOSFODNN7EXAMPLE")]
    );
}
