//! Alerting through the service: routes, silences and masking on the mock cluster (each output
//! gets the alerts its routes send it, masked as configured, minus what an active silence holds
//! back; an expired silence holds back nothing); a storm grouped into one notification to a
//! real Slack-style receiver; a webhook answering 500, 429 and 400 through the worker (retried,
//! `Retry-After` honoured, dead-lettered with the reason); a restart in the middle of retries
//! against a real webhook receiver
//! and SMTP server (each alert once per output); `auditwatch alert test` against them, with no
//! secret printed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::Value;

use auditwatch::admin::metrics::Metrics;
use auditwatch::alerting::route::Router;
use auditwatch::alerting::silence::{SilenceFile, Silences};
use auditwatch::config::AlertMatcher;
use auditwatch::pipeline::Control;
use auditwatch::sinks::worker::{self, Plan};
use auditwatch::sinks::Sink;
use auditwatch::state::outbox::{Outbox, OutboxOptions};

use crate::support::{account_of, flush, generate, produce, producer, run_until_done, service_config, Peer};

fn read_alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The last fifth of a generated scenario, made to raise the same alerts in every run: each
/// account's events stay in order on its partition, but partitions interleave as they arrive.
/// - The uses of keys that more than one account holds are left out: whether such a use is
///   foreign is learned from the key's first uses across accounts, so it depends on that order.
/// - The key lifecycle of the earlier four fifths comes first, so a key revoked there and used
///   in the slice raises `revoked-key-use`: the scenario's credential misuse.
fn scenario() -> Vec<Vec<u8>> {
    let (lines, _) = generate(5, 8, 21);
    let events: Vec<Value> = lines.iter().map(|l| serde_json::from_slice(l).unwrap()).collect();
    let key = |e: &Value| e["credential"]["id"].as_str().map(str::to_string);
    let mut holders: std::collections::HashMap<String, BTreeSet<String>> = Default::default();
    for event in &events {
        if let Some(key) = key(event) {
            holders.entry(key).or_default().insert(event["account"].as_str().unwrap().to_string());
        }
    }
    let shared = |e: &Value| key(e).is_some_and(|k| holders[&k].len() > 1);
    let lifecycle = |e: &Value| e["action"].as_str().is_some_and(|a| a.starts_with("credential."));
    let split = lines.len() * 4 / 5;
    let history = events[..split].iter().zip(&lines).filter(|(e, _)| lifecycle(e) && !shared(e));
    let slice = events[split..].iter().zip(&lines[split..]).filter(|(e, _)| !shared(e));
    history.chain(slice).map(|(_, line)| line.clone()).collect()
}

/// A mock cluster holding [`scenario`] on `audit.events`, and how many messages that is.
fn cluster_with_scenario() -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, u64) {
    let cluster = MockCluster::new(1).unwrap();
    // Four partitions: the mock broker keeps only the last 5 MiB of each.
    cluster.create_topic("audit.events", 4, 1).unwrap();
    cluster.create_topic("audit.deadletter", 1, 1).unwrap();
    let lines = scenario();
    let producer = producer(&cluster.bootstrap_servers());
    for line in &lines {
        produce(&producer, "audit.events", &account_of(line), line);
    }
    flush(&producer);
    (cluster, lines.len() as u64)
}

/// Run the last fifth of a generated scenario through a fresh pipeline with `outputs` (and
/// routes), returning its metrics once every message is handled.
fn run(state: &Path, outputs: &str) -> Arc<Metrics> {
    let (cluster, total) = cluster_with_scenario();
    let bootstrap = cluster.bootstrap_servers();
    let config = service_config(&bootstrap, state, "alerting", outputs);
    let control = Control::default();
    let metrics = Arc::new(Metrics::new(&["audit.events".to_string()]));
    let summary =
        run_until_done(&config, &control, metrics.clone(), || control.handled.load(Ordering::Relaxed) >= total);
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
    assert!(reference.iter().any(|a| a["detector"] == "revoked-key-use"), "the scenario misuses a credential");
    assert!(!reference.iter().any(|a| a["detector"] == "foreign-key-use"), "and no shared key is in it");
    assert!(reference.iter().any(|a| !urgent(&a)), "and raises other alerts");

    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let mut silences = SilenceFile::default();
    let only = |account: &str| AlertMatcher { account: vec![account.to_string()], ..Default::default() };
    silences.add(
        only(&silenced),
        "maintenance".into(),
        "test".into(),
        now - chrono::Duration::hours(1),
        now + chrono::Duration::hours(1),
    );
    silences.add(
        only(&expired),
        "over".into(),
        "test".into(),
        now - chrono::Duration::hours(2),
        now - chrono::Duration::hours(1),
    );
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
    let by_id: std::collections::HashMap<&str, &Value> =
        reference.iter().map(|a| (a["id"].as_str().unwrap(), a)).collect();
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

/// A Python peer and the port it printed first.
fn peer(script: &str, args: &[&str]) -> (Peer, u16) {
    let peer = Peer::start(script, args);
    let port = peer.records()[0]["port"].as_u64().expect("a peer prints its port first") as u16;
    (peer, port)
}

/// What a peer received, after its port line.
fn received(peer: &Peer) -> Vec<Value> {
    peer.records().split_off(1)
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// 1000 alerts about one account within a moment: the outputs people read get one
/// notification with the count; ten more alerts later give one update carrying only those ten.
#[test]
fn a_storm_about_one_account_is_one_notification_then_an_update_with_only_what_is_new() {
    let (slack, port) = peer("receiver.py", &["--mode", "slack"]);
    let dir = tempfile::tempdir().unwrap();
    let url_file = crate::support::write_file(&dir.path().join("slack-url"), &format!("http://127.0.0.1:{port}/hook"));
    let state = dir.path().join("state");
    let config = service_config(
        "localhost:9",
        &state,
        "storm",
        &format!(
            r#"
[[outputs]]
name = "chat"
type = "slack"
webhook_url = {{ file = "{}" }}
allow_http = true
[[routes]]
name = "all"
outputs = ["chat"]
group_wait = "1s"
group_interval = "2s"
"#,
            url_file.display()
        ),
    );
    let mut outbox = Outbox::open(&state, "alerts", &["chat".to_string()], None, OutboxOptions::default()).unwrap();
    let append = |outbox: &mut Outbox, from: u64, to: u64| {
        for i in from..to {
            let mut alert = auditwatch::alerting::probe::sample_alert(&AlertMatcher::default());
            alert["id"] = serde_json::json!(format!("storm-{i}"));
            alert["account"] = serde_json::json!("ci-deploy");
            alert["detector"] = serde_json::json!("failed-auth-burst");
            assert!(outbox
                .append(&format!("storm-{i}"), b"ci-deploy", &serde_json::to_vec(&alert).unwrap(), &[])
                .unwrap());
        }
        outbox.publish().unwrap();
    };
    append(&mut outbox, 0, 1000);
    let plan = Plan {
        router: Arc::new(Router::new(&config).unwrap()),
        silences: Silences::new(config.silences_file()),
        mask: config.outputs[0].masked(),
    };
    let sink = Sink::open(&config.outputs[0], "chat", &config).unwrap();
    let metrics = Arc::new(Metrics::new(&[]));
    let worker =
        worker::spawn(sink, outbox.reader("chat"), metrics.sink("chat"), &state.join("outbox/alerts"), Some(plan))
            .unwrap();

    let first = slack.wait_records(2, Duration::from_secs(30));
    assert!(first[1]["body"]["text"].as_str().unwrap().contains("(1000 alerts)"), "{}", first[1]["body"]);
    append(&mut outbox, 1000, 1010);
    let second = slack.wait_records(3, Duration::from_secs(30));
    let text = second[2]["body"]["text"].as_str().unwrap();
    assert!(text.contains("(10 alerts)"), "the update carries only what is new: {text}");
    // Nothing else comes once the group has nothing new (two more group intervals).
    std::thread::sleep(Duration::from_secs(4));
    let all = received(&slack);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|r| r["status"] == 200));
    outbox.stop_workers();
    worker.join().unwrap();
}

/// The webhook answers 500 and the SMTP relay is down while alerts come in; the service stops
/// in the middle of its retries. After a restart with both destinations back, every alert
/// reaches the webhook exactly once and every alert is in exactly one email.
#[test]
fn a_restart_in_the_middle_of_retries_delivers_each_alert_once_per_output() {
    let (cluster, total) = cluster_with_scenario();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = crate::support::write_file(&dir.path().join("secret"), SECRET);
    let record = dir.path().join("record.jsonl");
    let outputs = |webhook_port: u16, smtp_port: u16| {
        format!(
            r#"
[[outputs]]
name = "record"
type = "file"
path = "{record}"
[[outputs]]
name = "soar"
type = "webhook"
url = "http://127.0.0.1:{webhook_port}/alerts"
allow_http = true
secrets = [{{ file = "{secret}" }}]
timeout = "2s"
[[outputs]]
name = "oncall"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "auditwatch@example.com"
to = ["oncall@example.com"]
timeout = "2s"
[[routes]]
name = "all"
outputs = ["record", "soar", "oncall"]
group_wait = "0s"
group_interval = "1s"
"#,
            record = record.display(),
            secret = secret_file.display(),
        )
    };
    let state = dir.path().join("state");
    let metrics = Arc::new(Metrics::new(&["audit.events".to_string()]));

    // First run: the webhook fails every request, nothing listens for SMTP.
    let (failing, failing_port) = peer("receiver.py", &["--secret", SECRET, "--script", "500"]);
    let config = service_config(&bootstrap, &state, "retries", &outputs(failing_port, crate::support::free_port()));
    let control = Control::default();
    let first = run_until_done(&config, &control, metrics.clone(), || {
        control.handled.load(Ordering::Relaxed) >= total && !received(&failing).is_empty()
    });
    assert!(first.alerts > 0);
    assert!(!first.sinks_drained, "the webhook and the email could not deliver");
    let expected = ids(&read_alerts(&record));
    assert_eq!(expected.len() as u64, first.alerts, "the file output got every alert");
    assert!(received(&failing).iter().all(|r| r["status"] == 500 && r["verified"] == true));
    drop(failing);

    // Second run: both destinations answer.
    let (webhook, webhook_port) = peer("receiver.py", &["--secret", SECRET]);
    let (smtp, smtp_port) = peer("smtp_server.py", &[]);
    let config = service_config(&bootstrap, &state, "retries", &outputs(webhook_port, smtp_port));
    let alert_ids_in_mail = |smtp: &Peer| -> Vec<String> {
        received(smtp)
            .iter()
            .flat_map(|m| {
                let text = m["data"].as_str().unwrap_or("").replace("=\r\n", "").replace("=\n", "");
                expected.iter().filter(|id| text.contains(id.as_str())).cloned().collect::<Vec<_>>()
            })
            .collect()
    };
    let second = run_until_done(&config, &control, metrics, || {
        received(&webhook).len() >= expected.len() && alert_ids_in_mail(&smtp).len() >= expected.len()
    });
    assert_eq!(second.alerts, 0, "nothing new was raised: the checkpoint covered every event");
    let delivered: Vec<String> = received(&webhook)
        .iter()
        .filter(|r| r["status"] == 200 && r["verified"] == true)
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered.len(), expected.len(), "each alert once at the webhook: {delivered:?}");
    assert_eq!(delivered.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let mailed = alert_ids_in_mail(&smtp);
    assert_eq!(mailed.len(), expected.len(), "each alert in exactly one email: {mailed:?}");
    assert_eq!(mailed.into_iter().collect::<BTreeSet<_>>(), expected);
}

/// `auditwatch alert test` reaches the real SMTP server (STARTTLS, login), a signed webhook and
/// PagerDuty, says what each answered, and exits non-zero when one fails. No secret is printed
/// by it or by `config check`, even with debug logs.
#[test]
fn alert_test_sends_through_every_output_of_a_route_and_prints_no_secret() {
    const PASSWORD: &str = "smtp-Pa55-8c1e";
    const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::support::certificates(dir.path());
    let (smtp, smtp_port) = peer(
        "smtp_server.py",
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--auth-user",
            "mailer",
            "--auth-password",
            PASSWORD,
        ],
    );
    let (webhook, webhook_port) = peer("receiver.py", &["--secret", SECRET]);
    let (pagerduty, pd_port) = peer("receiver.py", &["--mode", "pagerduty"]);
    let (_refusing, refusing_port) = peer("receiver.py", &["--script", "400"]);
    let config = crate::support::write_file(
        &dir.path().join("auditwatch.toml"),
        &format!(
            r#"
[kafka]
brokers = "localhost:9092"
[[topics]]
name = "audit.events"
[dead_letter]
topic = "audit.deadletter"
[state]
dir = "{state}"
[[outputs]]
name = "mail"
type = "email"
host = "localhost"
port = {smtp_port}
ca_file = "{ca}"
username = "mailer"
password = {{ env = "AW_TEST_SMTP_PASSWORD" }}
from = "auditwatch@example.com"
to = ["oncall@example.com"]
[[outputs]]
name = "soar"
type = "webhook"
url = "http://127.0.0.1:{webhook_port}/alerts"
allow_http = true
secrets = [{{ env = "AW_TEST_WEBHOOK_SECRET" }}]
[[outputs]]
name = "pager"
type = "pagerduty"
url = "http://127.0.0.1:{pd_port}/v2/enqueue"
allow_http = true
routing_key = {{ env = "AW_TEST_ROUTING_KEY" }}
[[outputs]]
name = "broken"
type = "webhook"
url = "http://127.0.0.1:{refusing_port}/alerts"
allow_http = true
[[routes]]
name = "oncall"
match = {{ severity = ["critical"], account = ["ci-*"] }}
outputs = ["mail", "soar", "pager"]
[[routes]]
name = "with-broken"
outputs = ["soar", "broken"]
"#,
            state = dir.path().join("state").display(),
            ca = ca.display(),
        ),
    );
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::binary())
            .args(args)
            .env("RUST_LOG", "debug")
            .env("AW_TEST_SMTP_PASSWORD", PASSWORD)
            .env("AW_TEST_WEBHOOK_SECRET", SECRET)
            .env("AW_TEST_ROUTING_KEY", ROUTING_KEY)
            .output()
            .unwrap()
    };
    let config = config.to_str().unwrap();
    let ok = run(&["alert", "test", "--config", config, "--route", "oncall"]);
    let stdout = String::from_utf8_lossy(&ok.stdout).to_string();
    let stderr = String::from_utf8_lossy(&ok.stderr).to_string();
    assert!(ok.status.success(), "{stdout}\n{stderr}");
    for line in ["mail", "soar", "pager"] {
        assert!(stdout.lines().any(|l| l.starts_with(line) && l.contains(" ok: ")), "{line}: {stdout}");
    }
    let mails = received(&smtp);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["tls"], true, "STARTTLS was used");
    assert_eq!(mails[0]["auth_user"], "mailer");
    assert!(mails[0]["subject"].as_str().unwrap().contains("CRITICAL"), "{}", mails[0]["subject"]);
    let hooks = received(&webhook);
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["verified"], true, "the standardwebhooks library verified the signature");
    assert!(hooks[0]["body"]["account"].as_str().unwrap().starts_with("ci-"), "the sample matches the route");
    let pd = received(&pagerduty);
    assert_eq!(pd.iter().map(|r| r["status"].as_u64().unwrap()).collect::<Vec<_>>(), [202, 202], "{pd:?}");
    let actions: Vec<&str> = pd.iter().map(|r| r["body"]["event_action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["trigger", "resolve"], "the test incident is resolved again");

    let failed = run(&["alert", "test", "--config", config, "--route", "with-broken"]);
    let failed_out = String::from_utf8_lossy(&failed.stdout).to_string();
    assert!(!failed.status.success(), "a failing output makes it exit non-zero");
    assert!(
        failed_out.lines().any(|l| l.starts_with("broken") && l.contains("FAILED") && l.contains("400")),
        "{failed_out}"
    );
    assert!(failed_out.lines().any(|l| l.starts_with("soar") && l.contains(" ok: ")), "{failed_out}");

    let check = run(&["config", "check", config]);
    let check_out = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(check.status.success(), "{check_out}");
    assert!(check_out.contains("mail.password <- env AW_TEST_SMTP_PASSWORD: resolved"), "{check_out}");
    let printed = [stdout, stderr, failed_out, String::from_utf8_lossy(&failed.stderr).to_string(), check_out];
    let secret_key = SECRET.trim_start_matches("whsec_");
    for text in &printed {
        for secret in [PASSWORD, secret_key, ROUTING_KEY] {
            assert!(!text.contains(secret), "a secret was printed:\n{text}");
        }
    }
    let parsed = auditwatch::config::load_from(&std::fs::read_to_string(config).unwrap(), "t", &[]).unwrap();
    let debug = format!("{parsed:?}");
    for secret in [PASSWORD, secret_key, ROUTING_KEY] {
        assert!(!debug.contains(secret));
    }
}

/// Through the worker, a webhook answering 500, then 429 with `Retry-After: 2`, then 400, then
/// 200: the first alert is retried, waits as asked, and goes to the output's dead-letter file
/// with the receiver's reason; the second is delivered. The metrics count each kind.
#[test]
fn the_webhook_worker_retries_honours_retry_after_and_dead_letters_a_refusal() {
    let (receiver, port) =
        peer("receiver.py", &["--secret", SECRET, "--script", "500,429,400,200", "--retry-after", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = crate::support::write_file(&dir.path().join("secret"), SECRET);
    let state = dir.path().join("state");
    let config = service_config(
        "localhost:9",
        &state,
        "answers",
        &format!(
            "[[outputs]]\nname = \"soar\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/alerts\"\nallow_http = true\nsecrets = [{{ file = \"{}\" }}]\n",
            secret_file.display()
        ),
    );
    let mut outbox = Outbox::open(&state, "alerts", &["soar".to_string()], None, OutboxOptions::default()).unwrap();
    for id in ["refused", "accepted"] {
        let mut alert = auditwatch::alerting::probe::sample_alert(&AlertMatcher::default());
        alert["id"] = serde_json::json!(id);
        outbox.append(id, b"acct", &serde_json::to_vec(&alert).unwrap(), &[]).unwrap();
    }
    outbox.publish().unwrap();
    let plan = Plan {
        router: Arc::new(Router::new(&config).unwrap()),
        silences: Silences::new(config.silences_file()),
        mask: vec![],
    };
    let metrics = Arc::new(Metrics::new(&[]));
    let outbox_dir = state.join("outbox/alerts");
    let worker = worker::spawn(
        Sink::open(&config.outputs[0], "soar", &config).unwrap(),
        outbox.reader("soar"),
        metrics.sink("soar"),
        &outbox_dir,
        Some(plan),
    )
    .unwrap();
    let requests = receiver.wait_records(5, Duration::from_secs(60)).split_off(1);
    let answered: Vec<(String, u64)> = requests
        .iter()
        .map(|r| (r["headers"]["webhook-id"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap()))
        .collect();
    let expect = |id: &str, status| (id.to_string(), status);
    assert_eq!(
        answered,
        [expect("refused", 500), expect("refused", 429), expect("refused", 400), expect("accepted", 200)]
    );
    assert!(requests.iter().all(|r| r["verified"] == true));
    let waited = requests[2]["at"].as_f64().unwrap() - requests[1]["at"].as_f64().unwrap();
    assert!(waited >= 1.9, "Retry-After: 2 was honoured (waited {waited:.2} s)");

    crate::support::wait_until("the delivery to be confirmed", Duration::from_secs(10), || {
        crate::support::metric(&metrics.render(0), "auditwatch_sink_delivered_total{sink=\"soar\"}") >= 1.0
    });
    outbox.stop_workers();
    worker.join().unwrap();
    let dead: Vec<Value> = std::fs::read_to_string(outbox_dir.join("soar.dead.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], "refused");
    assert!(dead[0]["reason"].as_str().unwrap().contains("400"), "{}", dead[0]["reason"]);
    assert_eq!(dead[0]["entry"]["id"], "refused", "the whole alert is kept");
    let text = metrics.render(0);
    let m = |name: &str| crate::support::metric(&text, name);
    assert_eq!(m("auditwatch_sink_failures_total{sink=\"soar\",kind=\"transient\"}"), 2.0);
    assert_eq!(m("auditwatch_sink_failures_total{sink=\"soar\",kind=\"permanent\"}"), 1.0);
    assert_eq!(m("auditwatch_sink_retries_total{sink=\"soar\"}"), 2.0);
    assert_eq!(m("auditwatch_sink_dead_lettered_total{sink=\"soar\"}"), 1.0);
    assert_eq!(m("auditwatch_sink_delivered_total{sink=\"soar\"}"), 1.0);
}

/// `auditwatch silence add|list|expire` on a silences file: the id it prints lists as active,
/// expires, and then lists only with `--all`; a silence without a matcher or with a bad
/// severity is refused with the reason.
#[test]
fn silence_commands_add_list_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("silences.json");
    let file = file.to_str().unwrap();
    let run = |args: &[&str]| std::process::Command::new(crate::support::binary()).args(args).output().unwrap();
    let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).to_string();
    let added = run(&[
        "silence",
        "add",
        "--file",
        file,
        "--account",
        "ci-*",
        "--reason",
        "freeze",
        "--by",
        "jane",
        "--for",
        "2h",
    ]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let id = text(&added).trim().to_string();
    assert!(id.starts_with("s-"), "{id}");
    let listed = text(&run(&["silence", "list", "--file", file]));
    let line = listed.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("active") && line.contains("jane") && line.contains("ci-*") && line.contains("freeze"),
        "{line}"
    );
    // The service reads the same file: the silence applies to a matching alert.
    let mut silences = Silences::new(file.into());
    let ci = serde_json::json!({"account": "ci-deploy"});
    assert_eq!(silences.silencing(&ci, chrono::Utc::now()), Some(id.as_str()));

    assert!(run(&["silence", "expire", "--file", file, &id]).status.success());
    assert!(!text(&run(&["silence", "list", "--file", file])).contains(&id), "expired ones are hidden");
    let all = text(&run(&["silence", "list", "--file", file, "--all"]));
    assert!(all.lines().any(|l| l.starts_with(&id) && l.contains("expired")), "{all}");
    assert_eq!(Silences::new(file.into()).silencing(&ci, chrono::Utc::now() + chrono::Duration::seconds(1)), None);

    let refused = run(&["silence", "add", "--file", file, "--reason", "x", "--for", "1h"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("at least one matcher"));
    let refused = run(&["silence", "add", "--file", file, "--severity", "urgent", "--reason", "x", "--for", "1h"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`urgent` is not a severity"));
    assert!(!run(&["silence", "expire", "--file", file, "s-nope"]).status.success());
}
