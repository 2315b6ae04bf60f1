//! The retention store read back by other engines: the Parquet files `auditwatch replay
//! --store` and the service write, read by duckdb and by pyarrow (`tests/peers/read_parquet.py`),
//! must hold every good event exactly once, with the counts and sums computed here from the
//! input, and every alert, whose `evidence.sql` runs as it is over the store.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::Value;

use auditwatch::admin::metrics::Metrics;
use auditwatch::pipeline::Control;

use crate::support::{account_of, binary, flush, generate, produce, producer, run_until_done, service_config, Peer};

const JUNK: &[&[u8]] = &[b"{\"time\": oops", b"\xff\xfe not utf-8"];

/// Generated traffic with junk interleaved: (key, payload).
fn traffic(seed: u64, accounts: usize, days: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (lines, _) = generate(seed, accounts, days);
    let mut out = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        out.push((account_of(&line), line));
        if i % 2_000 == 7 {
            out.push((b"junk".to_vec(), JUNK[i % 2].to_vec()));
        }
    }
    out
}

/// (events, sum of `bytes`, junk) as the decoder sees the input.
fn expected(messages: &[(Vec<u8>, Vec<u8>)]) -> (u64, u64, u64) {
    let (mut events, mut bytes, mut junk) = (0, 0, 0);
    for (_, payload) in messages {
        match auditwatch::input::event::decode(payload, 1 << 20) {
            Ok(event) => {
                events += 1;
                bytes += event.bytes.unwrap_or(0);
            }
            Err(_) => junk += 1,
        }
    }
    (events, bytes, junk)
}

/// What duckdb and pyarrow each read from the store.
pub(crate) fn read_back(store: &Path) -> (Value, Value) {
    let peer = Peer::start("read_parquet.py", &[store.to_str().unwrap()]);
    let report = peer.wait_records(1, Duration::from_secs(120)).remove(0);
    (report["duckdb"].clone(), report["pyarrow"].clone())
}

/// Both engines read exactly these events, dead letters and alerts, each event and alert once,
/// files sorted.
#[track_caller]
fn assert_read_back(store: &Path, (events, bytes, junk): (u64, u64, u64), alerts: u64) {
    let (duckdb, pyarrow) = read_back(store);
    for (engine, seen) in [("duckdb", &duckdb), ("pyarrow", &pyarrow)] {
        assert_eq!(seen["events"].as_u64(), Some(events), "{engine}: {seen}");
        assert_eq!(seen["sum_bytes"].as_u64(), Some(bytes), "{engine}: {seen}");
        assert_eq!(seen["distinct_ids"].as_u64(), Some(events), "{engine}: every event once: {seen}");
        assert_eq!(seen["dead_letters"].as_u64(), Some(junk), "{engine}: {seen}");
        assert_eq!(seen["sorted"].as_bool(), Some(true), "{engine}: rows by account then time: {seen}");
        assert_eq!(seen["alerts"].as_u64(), Some(alerts), "{engine}: {seen}");
        assert_eq!(seen["alert_ids"].as_u64(), Some(alerts), "{engine}: every alert once: {seen}");
        assert!(seen["days"].as_u64() > Some(1), "{engine}: a partition per day: {seen}");
    }
    // An alert's evidence.sql runs as it is over the store, and its evidence events are there.
    assert_eq!(duckdb["evidence_sql_empty"].as_u64(), Some(0), "{duckdb}");
    assert_eq!(duckdb["evidence_ids_missing"].as_u64(), Some(0), "{duckdb}");
}

/// Every file of the store (temporary ones too), with its bytes.
fn files(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for table in ["events", "dead_letters", "alerts"] {
        for day in std::fs::read_dir(store.join(table)).unwrap() {
            for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                let name = path.strip_prefix(store).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn replay_with_a_store_is_read_back_by_duckdb_and_pyarrow_and_a_second_replay_replaces_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let messages = traffic(11, 3, 21);
    let input = dir.path().join("events.jsonl");
    let text: Vec<u8> = messages.iter().flat_map(|(_, line)| line.iter().copied().chain([b'\n'])).collect();
    std::fs::write(&input, text).unwrap();
    let store = dir.path().join("store");
    let replay = || {
        let out = Command::new(binary())
            .args(["replay", "--store", store.to_str().unwrap(), input.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64
    };
    let alerts = replay();
    let expected = expected(&messages);
    assert!(expected.0 > 10_000 && expected.2 >= 2 && alerts > 0, "{expected:?}, {alerts} alerts");
    assert_read_back(&store, expected, alerts);
    let first = files(&store);
    assert!(first.keys().all(|name| name.ends_with(".parquet") && !name.contains(".tmp-")), "{:?}", first.keys());

    assert_eq!(replay(), alerts);
    let second = files(&store);
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>(), "the same files");
    assert!(first == second, "with the same bytes");
    assert_read_back(&store, expected, alerts);
}

#[test]
fn after_a_clean_run_the_service_store_holds_every_good_event_once() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit.events", 4, 1).unwrap();
    cluster.create_topic("audit.deadletter", 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let messages = traffic(11, 3, 21);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("store");
    let config = service_config(
        &bootstrap,
        state.path(),
        "store",
        &format!(
            "[store]\ndir = \"{}\"\n[[outputs]]\ntype = \"file\"\npath = \"{}\"\n",
            store.display(),
            state.path().join("alerts.jsonl").display()
        ),
    );
    let control = Control::default();
    let metrics = Arc::new(Metrics::new(&["audit.events".to_string()]));
    let total = messages.len() as u64;
    let summary = std::thread::scope(|s| {
        s.spawn(|| {
            // Stay near the reader: the mock cluster keeps only the last 5 MB of a partition.
            let producer = producer(&bootstrap);
            for (i, (key, payload)) in messages.iter().enumerate() {
                while i as u64 > control.handled.load(Ordering::Relaxed) + 8_000 {
                    std::thread::sleep(Duration::from_millis(2));
                }
                produce(&producer, "audit.events", key, payload);
            }
            flush(&producer);
        });
        run_until_done(&config, &control, metrics, || control.handled.load(Ordering::Relaxed) >= total)
    });
    let expected = expected(&messages);
    assert_eq!((summary.events, summary.dead_letters), (expected.0, expected.2));
    assert!(summary.checkpoints >= 1 && summary.alerts > 0);
    assert_read_back(&store, expected, summary.alerts);
    let names = files(&store);
    assert!(names.keys().all(|n| n.contains("/audit.events-")), "named by topic and partition: {:?}", names.keys());
}
