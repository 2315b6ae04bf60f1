//! `auditwatch run` as a process against a real Kafka-protocol broker (tansu).
//!
//! Events are produced with rdkafka, the binary consumes them, and the tests read back the
//! alerts topic, the dead-letter topic and the committed offsets. The input topic has one
//! partition where two runs must see the same order and give the same alert ids, and four
//! where two instances share it.
//!
//! tansu 0.6 quirks found here (also in the README's known limits): a fetch from an offset inside a record
//! batch returns data from the *next* batch on (records in between are skipped), and the high
//! watermark it reports lags the last offset. Real Kafka does neither. The tests therefore
//! produce one record per batch, so resuming at any checkpointed offset is exact, and compare
//! offsets with the produced count rather than the watermark.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{
    self, account_of, committed, create_topics, flush, generate, http_get, metric, produce, read_all, wait_until, Tansu,
};

struct Service {
    child: Child,
    admin: String,
}

impl Service {
    fn start(config: &Path, admin: &str) -> Service {
        let child = Command::new(support::binary())
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let service = Service { child, admin: admin.to_string() };
        wait_until("the admin server", Duration::from_secs(30), || {
            http_get(&service.admin, "/healthz").is_some_and(|(s, _)| s == 200)
        });
        service
    }

    /// Messages handled since this process started (events and dead letters).
    fn handled(&self) -> u64 {
        http_get(&self.admin, "/metrics")
            .map(|(_, body)| {
                (metric(&body, "auditwatch_events_total") + metric(&body, "auditwatch_dead_letters_total")) as u64
            })
            .unwrap_or(0)
    }

    fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The services' Kafka session timeout: how long the group keeps a killed member.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

fn write_config(dir: &Path, bootstrap: &str, group: &str, alerts: &str, admin: &str) -> std::path::PathBuf {
    write_config_every(dir, bootstrap, group, alerts, admin, "1s")
}

fn write_config_every(
    dir: &Path,
    bootstrap: &str,
    group: &str,
    alerts: &str,
    admin: &str,
    checkpoint_interval: &str,
) -> std::path::PathBuf {
    support::write_file(
        &dir.join("auditwatch.toml"),
        &format!(
            r#"
[kafka]
brokers = "{bootstrap}"
group_id = "{group}"
batch_size = 1000
# A killed member is given up on after 6 s instead of 45 s, so a restart rejoins sooner.
[kafka.client]
"session.timeout.ms" = "{session}"
[[topics]]
name = "audit.events"
[dead_letter]
topic = "audit.deadletter"
[state]
dir = "{state}"
checkpoint_interval = "{checkpoint_interval}"
shutdown_timeout = "20s"
[[outputs]]
type = "kafka"
topic = "{alerts}"
[[outputs]]
type = "file"
path = "{file}"
[admin]
listen = "{admin}"
"#,
            session = SESSION_TIMEOUT.as_millis(),
            state = dir.join("state").display(),
            file = dir.join("alerts.jsonl").display(),
        ),
    )
}

/// Produce the second half of a generated scenario (incidents included) with garbage mixed in.
fn produce_traffic(bootstrap: &str) -> (u64, u64) {
    let (lines, _) = generate(21, 12, 21);
    let producer = support::producer_with(bootstrap, &[("batch.num.messages", "1"), ("linger.ms", "0")]);
    let (mut good, mut garbage) = (0, 0);
    for (i, line) in lines[lines.len() / 2..].iter().enumerate() {
        produce(&producer, "audit.events", &account_of(line), line);
        good += 1;
        if i % 7_919 == 100 {
            produce(&producer, "audit.events", b"junk", b"[\"not\", \"an\", \"event\"]");
            garbage += 1;
        }
    }
    flush(&producer);
    (good, garbage)
}

fn alert_ids(bootstrap: &str, topic: &str) -> Vec<String> {
    read_all(bootstrap, topic, 1)
        .iter()
        .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

/// Engine event count in a state directory's checkpoint.
fn checkpointed_events(state: &Path) -> u64 {
    let checkpoint = auditwatch::state::checkpoint::read(state).unwrap().expect("a checkpoint");
    let engine = auditwatch::detection::engine::Engine::restore(
        auditwatch::detection::pack::load().unwrap(),
        Default::default(),
        &mut auditwatch::state::codec::Reader::new(checkpoint.section("engine").expect("an engine section")),
    )
    .unwrap();
    engine.stats().events
}

#[test]
fn garbage_is_dead_lettered_and_sigterm_leaves_a_committed_checkpoint() {
    let broker = Tansu::start();
    create_topics(&broker.bootstrap, &[("audit.events", 1), ("audit.deadletter", 1), ("alerts", 1)]);
    let (good, garbage) = produce_traffic(&broker.bootstrap);
    let dir = tempfile::tempdir().unwrap();
    let admin = format!("127.0.0.1:{}", support::free_port());
    let config = write_config(dir.path(), &broker.bootstrap, "e2e-term", "alerts", &admin);
    let mut service = Service::start(&config, &admin);
    // Stop it mid-stream: SIGTERM while it still has two thirds to read.
    wait_until("some progress", Duration::from_secs(120), || service.handled() > (good + garbage) / 3);
    assert!(http_get(&admin, "/readyz").is_some());
    let status = service.signal("-TERM");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let checkpoint = auditwatch::state::checkpoint::read(&dir.path().join("state")).unwrap().unwrap();
    let committed = committed(&broker.bootstrap, "e2e-term", "audit.events", 1);
    assert_eq!(committed, vec![checkpoint.offsets[0].next_offset], "every checkpointed offset is committed");
    assert!(committed[0] < (good + garbage) as i64, "it was stopped mid-stream");

    // Restart and finish: every garbage message is dead-lettered, every good one processed.
    let mut service = Service::start(&config, &admin);
    wait_until("the rest to be checkpointed", Duration::from_secs(180), || {
        committed_after(&broker.bootstrap, "e2e-term") >= (good + garbage) as i64
    });
    assert!(service.signal("-TERM").success());
    // (Compared with the produced count: tansu 0.6 reports a high watermark a little below the
    // last offset, e.g. 89436 or 89616 for 89638 messages.)
    assert_eq!(support::committed(&broker.bootstrap, "e2e-term", "audit.events", 1), vec![(good + garbage) as i64]);
    let dead = read_all(&broker.bootstrap, "audit.deadletter", 1);
    assert_eq!(dead.len() as u64, garbage);
    assert!(dead.iter().all(|d| d.header("auditwatch.kind") == Some("not_an_object")
        && d.header("auditwatch.source.partition") == Some("0")));
    assert_eq!(checkpointed_events(&dir.path().join("state")), good);
    let ids = alert_ids(&broker.bootstrap, "alerts");
    assert!(!ids.is_empty());
    assert_eq!(
        ids.len(),
        ids.iter().collect::<BTreeSet<_>>().len(),
        "a clean stop checkpoints, so the restart sends no alert twice"
    );
}

fn committed_after(bootstrap: &str, group: &str) -> i64 {
    committed(bootstrap, group, "audit.events", 1)[0]
}

#[test]
fn kill_nine_and_restart_loses_nothing_and_repeats_nothing() {
    let broker = Tansu::start();
    create_topics(
        &broker.bootstrap,
        &[("audit.events", 1), ("audit.deadletter", 1), ("alerts.straight", 1), ("alerts.crashed", 1)],
    );
    let (good, garbage) = produce_traffic(&broker.bootstrap);
    let total = (good + garbage) as i64;

    // The reference: one uninterrupted run.
    let straight = tempfile::tempdir().unwrap();
    let admin = format!("127.0.0.1:{}", support::free_port());
    let mut service = Service::start(
        &write_config(straight.path(), &broker.bootstrap, "straight", "alerts.straight", &admin),
        &admin,
    );
    wait_until("the uninterrupted run", Duration::from_secs(240), || {
        committed_after(&broker.bootstrap, "straight") >= total
    });
    assert!(service.signal("-TERM").success());

    // The same input, killed with SIGKILL three times mid-stream and restarted each time.
    let crashed = tempfile::tempdir().unwrap();
    let admin = format!("127.0.0.1:{}", support::free_port());
    let config = write_config(crashed.path(), &broker.bootstrap, "crashed", "alerts.crashed", &admin);
    // This run also retains: the kills land during the store's writes too.
    let store = crashed.path().join("store");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}[store]\ndir = \"{}\"\n", store.display())).unwrap();
    for round in 1..=3 {
        // Where this process starts reading: the group's offset, or further where the last
        // checkpoint got before its commit was cut short by the kill.
        let checkpointed = auditwatch::state::checkpoint::read(&crashed.path().join("state"))
            .unwrap()
            .and_then(|cp| cp.offsets.first().map(|o| o.next_offset))
            .unwrap_or(0);
        let before = committed_after(&broker.bootstrap, "crashed").max(checkpointed).max(0);
        let mut service = Service::start(&config, &admin);
        let target = before + (total - before) / 3;
        // A generous bound: a loaded machine reads slowly.
        wait_until(&format!("round {round}: progress before the kill"), Duration::from_secs(300), || {
            before + service.handled() as i64 >= target
        });
        let status = service.signal("-KILL");
        assert!(!status.success(), "round {round}: killed");
        // Restart only once the group has given up on the killed member, as an orchestrator's
        // restart backoff would. tansu 0.6, joined within the dead member's session, can form
        // a generation that hands the partition to the dead member and never rebalances when
        // that session ends (seen: the restart assigned 0 partitions for minutes).
        std::thread::sleep(SESSION_TIMEOUT + Duration::from_secs(2));
    }
    let mut service = Service::start(&config, &admin);
    wait_until("the crashed run to finish", Duration::from_secs(240), || {
        committed_after(&broker.bootstrap, "crashed") >= total
    });
    assert!(service.signal("-TERM").success());

    // Nothing skipped: all offsets committed, and the state counted every good event once.
    assert_eq!(committed(&broker.bootstrap, "crashed", "audit.events", 1), vec![total]);
    assert_eq!(checkpointed_events(&crashed.path().join("state")), good);
    assert_eq!(checkpointed_events(&straight.path().join("state")), good);
    // Nothing missing: the same alert ids; a duplicate can only be the same id again.
    let reference: BTreeSet<String> = alert_ids(&broker.bootstrap, "alerts.straight").into_iter().collect();
    let delivered = alert_ids(&broker.bootstrap, "alerts.crashed");
    let distinct: BTreeSet<String> = delivered.iter().cloned().collect();
    assert!(!reference.is_empty());
    assert_eq!(distinct, reference);
    // The file sink of the crashed run: every alert, each id once.
    let in_file: Vec<String> = std::fs::read_to_string(crashed.path().join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(in_file.iter().cloned().collect::<BTreeSet<_>>(), reference, "the file sink got every alert");
    assert_eq!(in_file.len(), reference.len(), "the file sink holds each id once");
    // The store: every file readable by duckdb and pyarrow, every good event once.
    let (duckdb, pyarrow) = crate::store::read_back(&store);
    for (engine, seen) in [("duckdb", &duckdb), ("pyarrow", &pyarrow)] {
        assert_eq!(seen["events"].as_u64(), Some(good), "{engine}: {seen}");
        assert_eq!(seen["distinct_ids"].as_u64(), Some(good), "{engine}: no event twice: {seen}");
        assert_eq!(seen["dead_letters"].as_u64(), Some(garbage), "{engine}: {seen}");
    }
    eprintln!(
        "kill -9 x3: {} alerts, {} duplicates on the alerts topic (same ids)",
        distinct.len(),
        delivered.len() - distinct.len()
    );
}

/// Two processes in one group share a four-partition topic and get SIGTERM at the same moment,
/// with everything read but nothing committed yet (no checkpoint before shutdown), so one leaves
/// the group while the other is still stopping. Every partition must end committed at its
/// produced count, and each event must be in exactly one of the two final states.
#[test]
fn two_instances_stopped_together_leave_every_partition_committed() {
    const PARTITIONS: i32 = 4;
    let broker = Tansu::start();
    create_topics(&broker.bootstrap, &[("audit.events", PARTITIONS), ("audit.deadletter", 1), ("alerts", 1)]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let admins = [0, 1].map(|_| format!("127.0.0.1:{}", support::free_port()));
    let mut services: Vec<Service> = (0..2)
        .map(|i| {
            let config = write_config_every(dirs[i].path(), &broker.bootstrap, "pair", "alerts", &admins[i], "10m");
            Service::start(&config, &admins[i])
        })
        .collect();
    let assigned =
        |admin: &str| http_get(admin, "/metrics").map_or(0.0, |(_, b)| metric(&b, "auditwatch_partitions_assigned"));
    wait_until("both instances to share the partitions", Duration::from_secs(120), || {
        let held = admins.each_ref().map(|a| assigned(a));
        held.iter().all(|&n| n > 0.0) && held.iter().sum::<f64>() == f64::from(PARTITIONS)
    });

    // Each account on one partition, as keyed producers do; one record per batch (tansu).
    let (lines, _) = generate(23, 12, 21);
    let producer = support::producer_with(&broker.bootstrap, &[("batch.num.messages", "1"), ("linger.ms", "0")]);
    let mut home: std::collections::HashMap<Vec<u8>, i32> = Default::default();
    let mut produced = vec![0i64; PARTITIONS as usize];
    for line in &lines[lines.len() * 3 / 4..] {
        let account = account_of(line);
        let next = home.len() as i32 % PARTITIONS;
        let partition = *home.entry(account.clone()).or_insert(next);
        let record = rdkafka::producer::BaseRecord::to("audit.events").key(&account).payload(line).partition(partition);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        produced[partition as usize] += 1;
    }
    flush(&producer);
    let total: i64 = produced.iter().sum();
    wait_until("the pair to read everything", Duration::from_secs(240), || {
        services.iter().map(|s| s.handled() as i64).sum::<i64>() >= total
    });
    assert!(produced.iter().all(|&n| n > 0), "{produced:?}");
    assert!(
        committed(&broker.bootstrap, "pair", "audit.events", PARTITIONS).iter().all(|&o| o < 1),
        "nothing is committed before the shutdown"
    );

    for service in &services {
        let status = Command::new("kill").args(["-TERM", &service.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }
    for service in &mut services {
        assert!(service.child.wait().unwrap().success(), "graceful shutdown exits 0");
    }
    assert_eq!(committed(&broker.bootstrap, "pair", "audit.events", PARTITIONS), produced);
    let events: u64 = dirs.iter().map(|d| checkpointed_events(&d.path().join("state"))).sum();
    assert_eq!(events as i64, total, "each event applied once, by one of the two");
}

/// `auditwatch run` with a store and `[admin.query]`: `POST /query` answers from the files the
/// running service wrote, with the token only, and the service still stops cleanly.
#[test]
fn post_query_on_the_running_service_answers_from_its_store() {
    let broker = Tansu::start();
    create_topics(&broker.bootstrap, &[("audit.events", 1), ("audit.deadletter", 1), ("alerts", 1)]);
    let (lines, _) = generate(31, 2, 2);
    let producer = support::producer_with(&broker.bootstrap, &[("batch.num.messages", "1"), ("linger.ms", "0")]);
    for line in &lines {
        support::produce(&producer, "audit.events", &account_of(line), line);
    }
    flush(&producer);

    let dir = tempfile::tempdir().unwrap();
    let admin = format!("127.0.0.1:{}", support::free_port());
    let config = write_config(dir.path(), &broker.bootstrap, "query", "alerts", &admin);
    let token = dir.path().join("query-token");
    std::fs::write(&token, "e2e-token\n").unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let extra = format!(
        "[admin.query]\ntoken = {{ file = \"{}\" }}\n[store]\ndir = \"{}\"\n",
        token.display(),
        dir.path().join("store").display()
    );
    std::fs::write(&config, format!("{text}{extra}")).unwrap();
    let mut service = Service::start(&config, &admin);
    let addr: std::net::SocketAddr = admin.parse().unwrap();
    let count = "SELECT count(*) AS n FROM events";
    let last = std::sync::Mutex::new(String::new());
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("the service's store to hold every event", Duration::from_secs(180), || {
            let (status, _, body) = crate::query::post(addr, "/query", Some("e2e-token"), count);
            *last.lock().unwrap() = format!("{status} {body}");
            status == 200
                && serde_json::from_str::<serde_json::Value>(body.trim()).ok().and_then(|v| v["n"].as_u64())
                    == Some(lines.len() as u64)
        })
    }));
    assert!(polled.is_ok(), "{} events produced; the last answer: {}", lines.len(), last.lock().unwrap());
    assert_eq!(crate::query::post(addr, "/query", Some("wrong"), count).0, 401);
    assert_eq!(crate::query::post(addr, "/query", Some("e2e-token"), "DELETE FROM events").0, 400);
    assert!(service.signal("-TERM").success(), "a clean stop with the query runtime");
}
