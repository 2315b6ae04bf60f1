//! `auditwatch forget` over a replayed store: every trace of the account and its keys is gone,
//! checked by query and by reading every value of every file; the rest is intact; a second
//! run finds nothing more.

use std::path::Path;
use std::process::Command;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::{binary, generate};

fn auditwatch(args: &[&str]) -> String {
    let out = Command::new(binary()).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The rows of a CSV answer, without its header.
fn rows(store: &Path, sql: &str) -> Vec<String> {
    auditwatch(&["query", "--format", "csv", "--store", store.to_str().unwrap(), sql])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Every text and binary value of every Parquet file of the store that contains `needle`.
fn traces(store: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["events", "dead_letters", "alerts"] {
        for day in std::fs::read_dir(store.join(table)).unwrap() {
            for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
                for batch in reader.build().unwrap() {
                    let batch = batch.unwrap();
                    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                        for i in 0..column.len() {
                            let hit = column.is_valid(i)
                                && match field.data_type() {
                                    DataType::Utf8 => column.as_string::<i32>().value(i).contains(needle),
                                    DataType::Binary => {
                                        String::from_utf8_lossy(column.as_binary::<i32>().value(i)).contains(needle)
                                    }
                                    _ => false,
                                };
                            if hit {
                                found.push(format!("{}: {}", path.display(), field.name()));
                            }
                        }
                    }
                }
            }
        }
    }
    found
}

#[test]
fn forget_leaves_no_trace_of_the_account_or_its_keys_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, _) = generate(8, 8, 21);
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join(&b'\n')).unwrap();
    let store = dir.path().join("store");
    auditwatch(&["replay", "--store", store.to_str().unwrap(), input.to_str().unwrap()]);

    // An account with alerts, whose key other alerts may name.
    let account =
        rows(&store, "SELECT account FROM alerts GROUP BY account ORDER BY count(*) DESC, account LIMIT 1").remove(0);
    let keys = rows(
        &store,
        &format!("SELECT DISTINCT credential_id FROM events WHERE account = '{account}' AND credential_id IS NOT NULL"),
    );
    assert!(!keys.is_empty());
    let total: usize = rows(&store, "SELECT count(*) FROM events")[0].parse().unwrap();
    let keys_list = keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(",");
    let theirs: usize = rows(
        &store,
        &format!("SELECT count(*) FROM events WHERE account = '{account}' OR credential_id IN ({keys_list}) OR credential_owner = '{account}'"),
    )[0]
    .parse()
    .unwrap();
    assert!(!traces(&store, &account).is_empty(), "the account is in the store before");

    let report = auditwatch(&["forget", "--store", store.to_str().unwrap(), "--account", &account]);
    assert!(report.contains("event(s)"), "{report}");
    for key in std::iter::once(&account).chain(&keys) {
        assert_eq!(traces(&store, key), Vec::<String>::new(), "{key} left in the store");
    }
    let left: usize = rows(&store, "SELECT count(*) FROM events")[0].parse().unwrap();
    assert!(left <= total - theirs && left > total / 2, "{left} of {total} events left; {theirs} were the account's");
    assert!(
        rows(&store, "SELECT count(*) FROM alerts")[0].parse::<usize>().unwrap() > 0,
        "other accounts' alerts stay"
    );
    let temporaries = walk(&store).into_iter().filter(|p| p.contains(".tmp-")).count();
    assert_eq!(temporaries, 0);

    let again = auditwatch(&["forget", "--store", store.to_str().unwrap(), "--account", &account]);
    assert!(again.contains(": 0 event(s), 0 dead letter(s), 0 alert(s) removed; 0 other alert(s) redacted"), "{again}");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// With `--config`, the service's checkpoint loses the account's state too, and the store its
/// rows; what the service learned of the others stays.
#[test]
fn forget_with_the_service_config_also_edits_the_checkpoint() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("audit.events", 2, 1).unwrap();
    cluster.create_topic("audit.deadletter", 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let (lines, _) = generate(9, 4, 10);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("store");
    let port = crate::support::free_port();
    let extra = format!("[store]\ndir = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\n", store.display());
    let config = crate::support::service_config(&bootstrap, state.path(), "forget", &extra);
    let control = auditwatch::pipeline::Control::default();
    let metrics = Arc::new(auditwatch::admin::metrics::Metrics::new(&["audit.events".to_string()]));
    std::thread::scope(|s| {
        s.spawn(|| {
            let producer = crate::support::producer(&bootstrap);
            for (i, line) in lines.iter().enumerate() {
                while i as u64 > control.handled.load(Ordering::Relaxed) + 8_000 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                crate::support::produce(&producer, "audit.events", &crate::support::account_of(line), line);
            }
            crate::support::flush(&producer);
        });
        crate::support::run_until_done(&config, &control, metrics, || {
            control.handled.load(Ordering::Relaxed) >= lines.len() as u64
        });
    });
    let account = rows(&store, "SELECT account FROM events GROUP BY account ORDER BY account LIMIT 1").remove(0);
    let engine = |dir: &Path| {
        let checkpoint = auditwatch::state::checkpoint::read(dir).unwrap().unwrap();
        let engine = auditwatch::state::engine_state::EngineState::restore(
            Some(&checkpoint),
            auditwatch::detection::pack::load().unwrap(),
            auditwatch::detection::engine::EngineOptions::default(),
        )
        .unwrap()
        .engine;
        (engine.accounts_tracked(), engine.credentials_tracked())
    };
    let (accounts, keys) = engine(state.path());
    assert_eq!(accounts, 4);

    let file = state.path().join("auditwatch.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\ngroup_id = \"forget\"\n[[topics]]\nname = \"audit.events\"\n[dead_letter]\ntopic = \"audit.deadletter\"\n[state]\ndir = \"{}\"\n{extra}",
            state.path().display()
        ),
    )
    .unwrap();
    let report = auditwatch(&["forget", "--config", file.to_str().unwrap(), "--account", &account]);
    assert!(report.contains("account state dropped"), "{report}");
    let (accounts_after, keys_after) = engine(state.path());
    assert_eq!(accounts_after, 3, "{report}");
    assert!(keys_after < keys, "its keys' state went too: {keys} -> {keys_after}");
    assert_eq!(traces(&store, &account), Vec::<String>::new());
    assert_eq!(rows(&store, &format!("SELECT count(*) FROM events WHERE account = '{account}'")), ["0"]);
}
