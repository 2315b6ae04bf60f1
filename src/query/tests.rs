use arrow::array::AsArray;
use arrow::datatypes::Int64Type;

use super::*;
use crate::detection::alert::Alert;
use crate::detection::definition::Detector;
use crate::detection::engine::Engine;
use crate::detection::inline_test::InlineTest;
use crate::input::formats::InputFormat;
use crate::replay::{replay_reader, CountOnly, Decoding};
use crate::store::{Store, StoreOptions};

fn event(time: &str, account: &str, action: &str, key: &str, ip: &str, bytes: u64) -> String {
    format!(
        r#"{{"time":"{time}","account":"{account}","action":"{action}","outcome":"success","credential":{{"id":"{key}","type":"api_key"}},"source":{{"ip":"{ip}"}},"target":{{"system":"crm"}},"bytes":{bytes},"attributes":{{"region":"eu-west-1"}}}}"#
    )
}

/// Two days of a reader and a writer, a key created and revoked by an admin, one bad line.
fn lines() -> String {
    [
        event("2026-11-01T09:00:00Z", "reader", "crm.contacts.read", "K-READ", "203.0.113.7", 100),
        event("2026-11-01T10:00:00Z", "reader", "crm.contacts.export", "K-READ", "198.51.100.4", 300),
        event("2026-11-02T09:00:00Z", "reader", "crm.contacts.read", "K-READ", "203.0.113.7", 50),
        event("2026-11-01T09:30:00Z", "admin", "credential.create", "K-WRITE", "192.0.2.1", 0),
        event("2026-11-01T11:00:00Z", "writer", "crm.contacts.update", "K-WRITE", "192.0.2.9", 10),
        event("2026-11-02T11:00:00Z", "writer", "crm.contacts.update", "K-WRITE", "192.0.2.9", 20),
        event("2026-11-02T12:00:00Z", "admin", "credential.revoke", "K-WRITE", "192.0.2.1", 0),
        "{\"not\": \"an event\"}".to_string(),
    ]
    .join("\n")
}

/// Replay `input` through `detectors` into the store in `dir`; the alerts raised.
fn replay_into(dir: &Path, detectors: Vec<Detector>, name: &str, input: &str) -> Vec<Alert> {
    let mut store = Store::open(dir, StoreOptions::default()).unwrap();
    let mut engine = Engine::new(detectors, InlineTest::engine_options());
    let decoding = Decoding { format: InputFormat::Native, max_event_bytes: 1 << 20, enricher: None };
    let mut alerts = Vec::new();
    let mut on_alert = |alert| {
        alerts.push(alert);
        Ok(())
    };
    let mut input = input.as_bytes();
    replay_reader(
        &mut engine,
        name,
        &mut input,
        decoding,
        &mut CountOnly,
        Some(&mut store),
        &mut on_alert,
        &mut |_| {},
    )
    .unwrap();
    alerts
}

fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    replay_into(dir.path(), crate::detection::pack::load().unwrap(), "history.jsonl", &lines());
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn query(dir: &Path, limits: Limits, sql: &str) -> Result<Answer, QueryError> {
    runtime().block_on(async { Catalog::open(dir, limits).await?.run(sql).await })
}

fn csv(answer: &Answer) -> String {
    let mut out = Vec::new();
    output::write(answer, output::OutputFormat::Csv, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn events_are_queried_by_day_and_time() {
    let dir = store();
    let all = query(dir.path(), Limits::default(), "SELECT count(*) AS n, sum(bytes) AS b FROM events").unwrap();
    assert_eq!(csv(&all), "n,b\n7,480\n");
    let day = query(
        dir.path(),
        Limits::default(),
        "SELECT account, sum(bytes) AS b FROM events WHERE dt = DATE '2026-11-02' GROUP BY account ORDER BY account",
    )
    .unwrap();
    assert_eq!(csv(&day), "account,b\nadmin,0\nreader,50\nwriter,20\n");
    let window = query(
        dir.path(),
        Limits::default(),
        "SELECT count(*) AS n FROM events WHERE time BETWEEN TIMESTAMP '2026-11-01T09:00:00.000Z' AND TIMESTAMP '2026-11-01T10:00:00.000Z'",
    )
    .unwrap();
    assert_eq!(csv(&window), "n\n3\n");
}

#[test]
fn dead_letters_and_json_attributes_are_tables_and_functions() {
    let dir = store();
    let dead = query(dir.path(), Limits::default(), "SELECT kind, field FROM dead_letters").unwrap();
    assert_eq!(csv(&dead), "kind,field\nmissing_field,time\n");
    let region = query(
        dir.path(),
        Limits::default(),
        "SELECT DISTINCT json_get_str(attributes, 'region') AS region, raw->>'account' AS raw_account FROM events WHERE account = 'writer'",
    )
    .unwrap();
    assert_eq!(csv(&region), "region,raw_account\neu-west-1,writer\n");
}

#[test]
fn credentials_separate_use_from_lifecycle() {
    let dir = store();
    let keys = query(
        dir.path(),
        Limits::default(),
        "SELECT credential_id, users, networks, uses, created IS NOT NULL AS c, revoked IS NOT NULL AS r FROM credentials ORDER BY credential_id",
    )
    .unwrap();
    assert_eq!(
        csv(&keys),
        "credential_id,users,networks,uses,c,r\nK-READ,reader,2,3,false,false\nK-WRITE,writer,1,2,true,true\n"
    );
}

#[test]
fn accounts_count_their_writes() {
    let dir = store();
    let accounts = query(
        dir.path(),
        Limits::default(),
        "SELECT account, events, writes, failure_rate FROM accounts ORDER BY account",
    )
    .unwrap();
    assert_eq!(csv(&accounts), "account,events,writes,failure_rate\nadmin,2,0,0.0\nreader,3,0,0.0\nwriter,2,2,0.0\n");
}

#[test]
fn writes_are_refused_before_planning() {
    let dir = store();
    for sql in [
        "INSERT INTO events SELECT * FROM events",
        "CREATE TABLE t AS SELECT 1",
        "COPY events TO '/tmp/out.parquet'",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/tmp'",
        "DROP TABLE events",
        "SET datafusion.execution.batch_size = 1",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
    ] {
        match query(dir.path(), Limits::default(), sql) {
            Err(QueryError::NotReadOnly(_)) => {}
            other => panic!("{sql}: {:?}", other.map(|a| a.rows())),
        }
    }
    assert!(query(dir.path(), Limits::default(), "EXPLAIN SELECT 1").is_ok());
}

#[test]
fn a_bad_query_is_one_line_with_its_position() {
    let dir = store();
    let Err(QueryError::Sql(message)) =
        query(dir.path(), Limits::default(), "SELECT account\nFROM events GROUP account")
    else {
        panic!("a parse error was expected")
    };
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.starts_with("sql parser error: ") && message.contains("found: GROUP at Line: 2, Column: 13"),
        "{message}"
    );
    let Err(QueryError::Sql(message)) = query(dir.path(), Limits::default(), "SELECT account FROM events WHERE") else {
        panic!("a parse error was expected")
    };
    assert!(message.ends_with("found: EOF (the query ends too soon)"), "{message}");
    let Err(QueryError::Sql(message)) = query(dir.path(), Limits::default(), "SELECT nope FROM events") else {
        panic!("a planning error was expected")
    };
    assert!(message.contains("nope"), "{message}");
}

#[test]
fn the_row_limit_cuts_and_says_so() {
    let dir = store();
    let limits = Limits { rows: Some(2), ..Limits::default() };
    let cut = query(dir.path(), limits, "SELECT time FROM events ORDER BY time").unwrap();
    assert_eq!((cut.rows(), cut.truncated), (2, true));
    let whole = query(dir.path(), limits, "SELECT count(*) FROM events").unwrap();
    assert_eq!((whole.rows(), whole.truncated), (1, false));
    let n = whole.batches[0].column(0).as_primitive::<Int64Type>();
    assert_eq!((n.len(), n.value(0)), (1, 7));
}

#[test]
fn an_empty_store_has_empty_tables() {
    let dir = tempfile::tempdir().unwrap();
    let answer = query(dir.path(), Limits::default(), "SELECT count(*) AS n FROM alerts").unwrap();
    assert_eq!(csv(&answer), "n\n0\n");
}

/// Every shipped detector's alerts, raised by its own inline tests over a store, name their
/// events in `evidence.sql`: run as it is, the query returns every event the evidence lists.
#[test]
fn every_detectors_evidence_sql_returns_its_events() {
    let runtime = runtime();
    let mut checked = std::collections::BTreeSet::new();
    for detector in crate::detection::pack::load().unwrap() {
        for test in detector.tests.iter().filter(|t| !t.expect.is_empty()) {
            let dir = tempfile::tempdir().unwrap();
            let input: String = test.input().into_iter().map(|(_, line)| line + "\n").collect();
            let alerts = replay_into(dir.path(), vec![detector.clone()], "inline.jsonl", &input);
            assert!(!alerts.is_empty(), "{} / {} raised nothing", detector.name, test.name);
            runtime.block_on(async {
                let catalog = Catalog::open(dir.path(), Limits::default()).await.unwrap();
                for alert in &alerts {
                    let answer = catalog
                        .run(&alert.evidence.sql)
                        .await
                        .unwrap_or_else(|e| panic!("{} / {}: {}: {e}", detector.name, test.name, alert.evidence.sql));
                    let ids: std::collections::HashSet<String> = answer
                        .batches
                        .iter()
                        .flat_map(|b| b.column_by_name("id").unwrap().as_string::<i32>().iter())
                        .flatten()
                        .map(str::to_string)
                        .collect();
                    for id in &alert.evidence.event_ids {
                        assert!(
                            ids.contains(id),
                            "{} / {}: {id} not in the rows of {}",
                            detector.name,
                            test.name,
                            alert.evidence.sql
                        );
                    }
                    assert!(
                        !alert.evidence.event_ids.is_empty(),
                        "{}: an alert with no evidence events",
                        detector.name
                    );
                }
            });
            checked.insert(detector.name.clone());
        }
    }
    let shipped: std::collections::BTreeSet<String> =
        crate::detection::pack::load().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(checked, shipped, "every shipped detector has a positive inline test that was checked");
}

#[test]
fn an_open_catalog_sees_files_written_after_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let catalog = runtime.block_on(Catalog::open(dir.path(), Limits::default())).unwrap();
    let count = |catalog: &Catalog| csv(&runtime.block_on(catalog.run("SELECT count(*) AS n FROM events")).unwrap());
    assert_eq!(count(&catalog), "n\n0\n");
    replay_into(dir.path(), crate::detection::pack::load().unwrap(), "late.jsonl", &lines());
    assert_eq!(count(&catalog), "n\n7\n");
}
