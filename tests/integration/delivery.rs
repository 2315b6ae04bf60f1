//! Alert and dead-letter delivery through the outbox, on the mock cluster: a Kafka topic that
//! refuses produce requests, and a sink that blocks.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use auditwatch::admin::metrics::Metrics;
use auditwatch::pipeline::Control;

use crate::support::{
    account_of, committed, end_offsets, flush, generate, produce, producer, read_all, run_until_done, service_config,
    wait_until,
};

const PARTITIONS: i32 = 8;

/// The last fifth of a scenario with incidents, garbage every 3000 messages, all produced up
/// front: about 20k messages over 8 partitions, small enough for the mock cluster to keep (it
/// prunes partitions past about 5 MB). Returns the cluster, its address, and (good, garbage).
fn cluster_with_traffic() -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, String, u64, u64) {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit.events", PARTITIONS, 1).unwrap();
    for t in ["audit.deadletter", "alerts.k"] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let (lines, _) = generate(5, 8, 21);
    let producer = producer(&bootstrap);
    let (mut good, mut garbage) = (0, 0);
    for (i, line) in lines[lines.len() * 4 / 5..].iter().enumerate() {
        produce(&producer, "audit.events", &account_of(line), line);
        good += 1;
        if i % 3_000 == 11 {
            produce(&producer, "audit.events", b"junk", b"{\"time\": oops");
            garbage += 1;
        }
    }
    flush(&producer);
    (cluster, bootstrap, good, garbage)
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(&["audit.events".to_string()]))
}

fn ids(messages: &[crate::support::Received]) -> Vec<String> {
    messages
        .iter()
        .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

/// The lowest offset of a dead letter, per partition of the input topic.
fn first_garbage(dead: &[crate::support::Received]) -> Vec<i64> {
    let mut first = vec![i64::MAX; PARTITIONS as usize];
    for d in dead {
        let p: usize = d.header("auditwatch.source.partition").unwrap().parse().unwrap();
        let o: i64 = d.header("auditwatch.source.offset").unwrap().parse().unwrap();
        first[p] = first[p].min(o);
    }
    first
}

#[test]
fn a_kafka_topic_refusing_produce_requests_loses_nothing_and_commits_no_dead_letter_before_it_lands() {
    let (cluster, bootstrap, good, garbage) = cluster_with_traffic();
    let total = good + garbage;
    let outputs = "[[outputs]]\ntype = \"kafka\"\ntopic = \"alerts.k\"\n";
    let state = tempfile::tempdir().unwrap();
    let config = service_config(&bootstrap, state.path(), "refused", outputs);
    let control = Control::default();

    // The reference: where the dead letters come from, once delivered. Read from a second,
    // error-free run at the end; here, every produce request fails for the whole first run.
    cluster
        .request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 5000]);
    let first_metrics = metrics();
    let first =
        run_until_done(&config, &control, first_metrics.clone(), || control.handled.load(Ordering::Relaxed) >= total);
    assert_eq!((first.events, first.dead_letters), (good, garbage), "intake went on while nothing could be produced");
    assert!(first.alerts > 0);
    assert!(!first.sinks_drained, "nothing could be delivered");
    let failures = first_metrics.render(0);
    assert!(
        failures
            .lines()
            .any(|l| l.starts_with("auditwatch_sink_failures_total{sink=\"kafka-alerts.k\",kind=\"transient\"}")
                && !l.ends_with(" 0")),
        "the alert sink saw its failures:\n{failures}"
    );
    assert!(read_all(&bootstrap, "alerts.k", 1).is_empty() && read_all(&bootstrap, "audit.deadletter", 1).is_empty());
    let committed_while_refused = committed(&bootstrap, "refused", "audit.events", PARTITIONS);

    // The errors clear: a restart delivers every alert and dead letter once, and commits all.
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let second_metrics = metrics();
    let second = run_until_done(&config, &control, second_metrics, || {
        control.handled.load(Ordering::Relaxed) >= 2 * total
            && committed(&bootstrap, "refused", "audit.events", PARTITIONS)
                .iter()
                .map(|&c| c.max(0) as u64)
                .sum::<u64>()
                >= total
    });
    assert!(second.sinks_drained);
    assert_eq!(second.alerts, 0, "the replayed alerts were in the outbox already");
    let dead = read_all(&bootstrap, "audit.deadletter", 1);
    assert_eq!(dead.len() as u64, garbage, "every dead letter, once");
    // No offset was committed past a dead letter that had not landed: while the dead-letter
    // topic refused everything, no partition was committed past its first bad message.
    for (p, (&committed, first)) in committed_while_refused.iter().zip(first_garbage(&dead)).enumerate() {
        assert!(
            committed <= first.min(i64::MAX - 1),
            "partition {p} committed {committed}, past its dead letter at {first}"
        );
    }
    assert!(
        committed_while_refused.iter().all(|&c| c <= 0),
        "a failed epoch commits nothing: {committed_while_refused:?}"
    );
    let alerts = ids(&read_all(&bootstrap, "alerts.k", 1));
    assert_eq!(alerts.len() as u64, first.alerts, "every alert raised in the first run arrives");
    assert_eq!(alerts.iter().collect::<BTreeSet<_>>().len(), alerts.len(), "each once");
    let committed: Vec<i64> =
        committed(&bootstrap, "refused", "audit.events", PARTITIONS).into_iter().map(|o| o.max(0)).collect();
    assert_eq!(committed, end_offsets(&bootstrap, "audit.events", PARTITIONS));
}

#[test]
fn a_blocked_sink_stalls_neither_intake_nor_the_other_sinks_and_gets_its_backlog_in_order() {
    let (_cluster, bootstrap, good, garbage) = cluster_with_traffic();
    let total = good + garbage;
    let dir = tempfile::tempdir().unwrap();
    let (fifo, plain) = (dir.path().join("blocked.fifo"), dir.path().join("plain.jsonl"));
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let outputs = format!(
        "[[outputs]]\ntype = \"file\"\npath = \"{}\"\n[[outputs]]\ntype = \"file\"\npath = \"{}\"\n",
        fifo.display(),
        plain.display()
    );
    let config = service_config(&bootstrap, &dir.path().join("state"), "blocked", &outputs);
    let control = Control::default();
    let lines = |path: &Path| std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0);
    let summary = std::thread::scope(|s| {
        let run = s.spawn(|| {
            run_until_done(&config, &control, metrics(), || {
                // Intake finishes and the other sink gets every alert while nobody reads the FIFO.
                control.handled.load(Ordering::Relaxed) >= total && lines(&plain) > 0 && {
                    let before = lines(&plain);
                    std::thread::sleep(Duration::from_millis(1500));
                    lines(&plain) == before
                }
            })
        });
        // Unblock once the run stopped intake: the FIFO's worker then delivers its backlog.
        wait_until("intake to finish", Duration::from_secs(180), || control.shutdown.load(Ordering::Relaxed));
        let reader = BufReader::new(std::fs::File::open(&fifo).unwrap());
        let expected = lines(&plain);
        let received: Vec<String> = reader.lines().take(expected).map(Result::unwrap).collect();
        (run.join().unwrap(), received)
    });
    let (summary, received) = summary;
    assert_eq!(summary.events, good);
    let plain: Vec<String> = std::fs::read_to_string(&plain).unwrap().lines().map(str::to_string).collect();
    assert_eq!(plain.len() as u64, summary.alerts, "the plain file got every alert");
    let id =
        |line: &String| serde_json::from_str::<serde_json::Value>(line).unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(
        received.iter().map(id).collect::<Vec<_>>(),
        plain.iter().map(id).collect::<Vec<_>>(),
        "the backlog, in order, each id once"
    );
}
