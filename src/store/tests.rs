use std::fs::File;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::input::event::DecodeError;

fn event(id: &str, time: &str, account: &str, bytes: u64) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","time":"{time}","account":"{account}","action":"contacts.export","outcome":"success","credential":{{"id":"AKIA1","type":"api_key"}},"source":{{"ip":"203.0.113.7"}},"target":{{"system":"crm"}},"bytes":{bytes},"attributes":{{"k":[1,2]}}}}"#
    )
    .into_bytes()
}

fn millis(time: &str) -> Millis {
    crate::detection::time::parse_rfc3339(time).unwrap()
}

fn store(dir: &Path, roll_bytes: usize) -> Store {
    Store::open(dir, StoreOptions { roll_bytes, ..StoreOptions::default() }).unwrap()
}

fn kafka(store: &mut Store, partition: i32) -> SourceId {
    store.source(SourceKind::Kafka { topic: "audit.events".into(), partition }, InputFormat::Native)
}

fn push(store: &mut Store, source: SourceId, offset: i64, id: &str, time: &str, account: &str, bytes: u64) {
    keep(store, source, offset, InputFormat::Native, &event(id, time, account, bytes));
}

/// Keep a message as the pipeline does: decoded in `format`, then handed over with its bytes.
fn keep(store: &mut Store, source: SourceId, position: i64, format: InputFormat, raw: &[u8]) {
    let event = crate::input::formats::decode_as(format, raw, usize::MAX).unwrap();
    store.event(source, position, &event, raw);
}

/// Run a checkpoint's work, as the writer thread does.
fn checkpoint(store: &mut Store) -> Result<Vec<u8>, String> {
    store.capture(1)()
}

/// The files of a table, as `dt=.../name`, in name order.
fn files(dir: &Path, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for day in naming::day_dirs(&dir.join(table)).unwrap() {
        for entry in std::fs::read_dir(&day).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            out.push(format!("{}/{name}", day.file_name().unwrap().to_string_lossy()));
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> (RecordBatch, parquet::file::metadata::ParquetMetaData) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let metadata = builder.metadata().as_ref().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    (arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap(), metadata)
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i).to_string())).collect()
}

#[test]
fn a_checkpoint_writes_a_day_file_per_source_sorted_by_account_then_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path(), 1 << 20);
    let p0 = kafka(&mut store, 0);
    push(&mut store, p0, 10, "e1", "2026-01-19T10:00:00Z", "svc-b", 5);
    push(&mut store, p0, 11, "e2", "2026-01-19T09:00:00Z", "svc-b", 7);
    push(&mut store, p0, 12, "e3", "2026-01-19T11:00:00Z", "svc-a", 11);
    push(&mut store, p0, 13, "e4", "2026-01-20T00:00:01Z", "svc-a", 13);
    assert!(files(dir.path(), "events").is_empty(), "nothing is written before the checkpoint");
    assert_eq!(checkpoint(&mut store).unwrap(), Vec::<u8>::new());
    assert_eq!(
        files(dir.path(), "events"),
        [
            "dt=2026-01-19/audit.events-0-00000000000000000010-00000000000000000012.parquet",
            "dt=2026-01-20/audit.events-0-00000000000000000013-00000000000000000013.parquet",
        ]
    );
    let (batch, metadata) = read(&dir.path().join("events").join(&files(dir.path(), "events")[0]));
    assert_eq!(batch.schema(), schema::events());
    let ids: Vec<_> = strings(&batch, "id").into_iter().flatten().collect();
    assert_eq!(ids, ["e3", "e2", "e1"], "by account, then time");
    let times = batch.column_by_name("time").unwrap().as_primitive::<TimestampMillisecondType>();
    assert_eq!(times.value(0), millis("2026-01-19T11:00:00Z"));
    let bytes = batch.column_by_name("bytes").unwrap().as_primitive::<UInt64Type>();
    assert_eq!(bytes.values().iter().sum::<u64>(), 23);
    assert_eq!(strings(&batch, "attributes")[0].as_deref(), Some(r#"{"k":[1,2]}"#));
    assert_eq!(strings(&batch, "credential_id")[0].as_deref(), Some("AKIA1"));
    assert_eq!(strings(&batch, "source_ip")[0].as_deref(), Some("203.0.113.7"));
    assert_eq!(strings(&batch, "target_resource")[0], None);
    assert_eq!(strings(&batch, "origin")[0].as_deref(), Some("audit.events/0/12"));
    let raw = strings(&batch, "raw")[0].clone().unwrap();
    assert_eq!(raw.as_bytes(), event("e3", "2026-01-19T11:00:00Z", "svc-a", 11), "the message as received");
    let group = metadata.row_group(0);
    assert_eq!(group.column(0).compression(), parquet::basic::Compression::ZSTD(Default::default()));
    let sorting: Vec<i32> = group.sorting_columns().unwrap().iter().map(|c| c.column_idx).collect();
    assert_eq!(sorting, [1, 0], "account, then time, in the metadata too");
    let column = |name: &str| group.columns().iter().find(|c| c.column_path().string() == name).unwrap();
    assert!(column("account").statistics().is_some() && column("time").statistics().is_some(), "for pruning");
    for distinct in schema::distinct_columns(Table::Events) {
        assert!(column(distinct).statistics().is_none(), "{distinct}: no min/max of values all distinct");
    }
    assert!(checkpoint(&mut store).is_ok());
    assert_eq!(files(dir.path(), "events").len(), 2, "an empty epoch writes nothing");
}

#[test]
fn an_enriched_event_is_kept_as_the_engine_saw_it() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = dir.path().join("ip-ranges.json");
    std::fs::write(&ranges, r#"{"prefixes":[{"ip_prefix":"203.0.113.0/24","region":"eu-test-1","service":"EC2"}]}"#)
        .unwrap();
    let mut builder = crate::input::enrich::Enricher::builder();
    builder.provider_ranges(crate::input::enrich::Provider::Aws, "aws_ranges", &ranges);
    let enricher = builder.build().unwrap();
    let mut store = store(&dir.path().join("store"), 1 << 20);
    let (plain, enriched) = (kafka(&mut store, 0), kafka(&mut store, 1));
    push(&mut store, plain, 1, "e1", "2026-01-19T10:00:00Z", "svc-a", 1);
    let raw = event("e2", "2026-01-19T10:00:00Z", "svc-a", 1);
    let mut decoded = crate::input::formats::decode_as(InputFormat::Native, &raw, usize::MAX).unwrap();
    enricher.enrich(&mut decoded);
    store.event(enriched, 1, &decoded, &raw);
    store.write_all().unwrap();
    let written = files(&dir.path().join("store"), "events");
    let provider = |file: &String| {
        let (batch, _) = read(&dir.path().join("store/events").join(file));
        strings(&batch, "source_provider")[0].clone()
    };
    assert_eq!(written.len(), 2);
    assert_eq!(provider(&written[0]), None, "not enriched");
    assert_eq!(provider(&written[1]).as_deref(), Some("aws"), "203.0.113.7 is in the AWS ranges");
}

proptest::proptest! {
    /// Rows are written in (account, time, arrival) order, whatever order they came in, also
    /// across the row groups of a file.
    #[test]
    fn rows_are_written_by_account_then_time_then_arrival(
        rows in proptest::collection::vec((0u8..5, 0i64..4), 1..300)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(dir.path(), 1 << 30);
        let p0 = kafka(&mut store, 0);
        for (i, &(account, second)) in rows.iter().enumerate() {
            let time = format!("2026-01-19T10:00:0{second}Z");
            push(&mut store, p0, i as i64, &format!("e{i}"), &time, &format!("svc-{account}"), 1);
        }
        store.write_all().unwrap();
        let (batch, _) = read(&dir.path().join("events").join(&files(dir.path(), "events")[0]));
        let mut expected: Vec<usize> = (0..rows.len()).collect();
        expected.sort_by_key(|&i| (rows[i].0, rows[i].1, i));
        let expected: Vec<String> = expected.into_iter().map(|i| format!("e{i}")).collect();
        let ids: Vec<String> = strings(&batch, "id").into_iter().flatten().collect();
        proptest::prop_assert_eq!(ids, expected);
    }
}

#[test]
fn attributes_are_kept_as_the_producer_wrote_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path(), 1 << 20);
    let p0 = kafka(&mut store, 0);
    let line = r#"{"time":"2026-01-19T10:00:00Z","account":"svc-a","action":"a","outcome":"success","attributes": { "z": 1, "a" : [true] }}"#;
    keep(&mut store, p0, 1, InputFormat::Native, line.as_bytes());
    store.write_all().unwrap();
    let (batch, _) = read(&dir.path().join("events").join(&files(dir.path(), "events")[0]));
    assert_eq!(strings(&batch, "attributes")[0].as_deref(), Some(r#"{ "z": 1, "a" : [true] }"#));
}

#[test]
fn dead_letters_keep_their_reason_and_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path(), 1 << 20);
    let file = store.source(SourceKind::File { name: "in/a.jsonl".into(), records: false }, InputFormat::Native);
    let rejection = Rejection::Decode(DecodeError::too_large(10, 5));
    store.dead_letter(file, 3, Some(millis("2026-01-19T00:00:00Z")), &rejection, b"\xff\xfe");
    store.write_all().unwrap();
    let written = files(dir.path(), "dead_letters");
    assert_eq!(written.len(), 1);
    assert!(written[0].starts_with("dt=2026-01-19/a.jsonl-"), "{written:?}");
    let (batch, _) = read(&dir.path().join("dead_letters").join(&written[0]));
    assert_eq!(batch.schema(), schema::dead_letters());
    assert_eq!(strings(&batch, "kind")[0].as_deref(), Some("too_large"));
    assert_eq!(strings(&batch, "origin")[0].as_deref(), Some("in/a.jsonl:3"));
    assert_eq!(batch.column_by_name("raw").unwrap().as_binary::<i32>().value(0), b"\xff\xfe");
}

/// Under `auto` each row is read back in its own format: the native row keeps its
/// `attributes`, the Okta row (which has none of its own) has none.
#[test]
fn a_source_in_format_auto_keeps_the_attributes_of_its_native_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path(), 1 << 20);
    let mixed = store.source(SourceKind::File { name: "in/mixed.jsonl".into(), records: false }, InputFormat::Auto);
    let okta: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/okta/login-failure.json")).unwrap();
    let okta = okta.to_string();
    keep(&mut store, mixed, 1, InputFormat::Auto, okta.as_bytes());
    keep(&mut store, mixed, 2, InputFormat::Auto, &event("e1", "2026-01-19T10:00:00Z", "svc-a", 1));
    store.write_all().unwrap();
    let written = files(dir.path(), "events");
    let (batch, _) = read(&dir.path().join("events").join(&written[0]));
    let rows: Vec<(Option<String>, Option<String>)> =
        strings(&batch, "account").into_iter().zip(strings(&batch, "attributes")).collect();
    assert_eq!(
        rows,
        [(Some("00u8f2kq1vEXAMPLE697".into()), None), (Some("svc-a".into()), Some(r#"{"k":[1,2]}"#.into()))]
    );
}

#[test]
fn a_segment_reaching_roll_bytes_is_cut_into_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let size = event("e0", "2026-01-19T10:00:00Z", "svc-a", 1).len();
    let mut store = store(dir.path(), size * 2);
    let p0 = kafka(&mut store, 0);
    push(&mut store, p0, 0, "e0", "2026-01-19T10:00:00Z", "svc-a", 1);
    assert!(!store.has_sealed() && !store.wants_checkpoint() && !store.is_full());
    push(&mut store, p0, 1, "e1", "2026-01-19T10:00:00Z", "svc-a", 1);
    assert!(store.has_sealed() && store.wants_checkpoint() && store.is_full());
    push(&mut store, p0, 2, "e2", "2026-01-19T10:00:00Z", "svc-a", 1);
    store.write_sealed().unwrap();
    assert_eq!(files(dir.path(), "events").len(), 1, "only the full segment");
    assert!(!store.wants_checkpoint());
    store.write_all().unwrap();
    let names = files(dir.path(), "events");
    assert!(names[0].ends_with("-00000000000000000000-00000000000000000001.parquet"), "{names:?}");
    assert!(names[1].ends_with("-00000000000000000002-00000000000000000002.parquet"), "{names:?}");
}

#[test]
fn a_failed_write_leaves_no_visible_file_and_the_next_checkpoint_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path(), 1 << 20);
    let p0 = kafka(&mut store, 0);
    push(&mut store, p0, 0, "e0", "2026-01-19T10:00:00Z", "svc-a", 1);
    // The table directory cannot be created: the write fails.
    std::fs::write(dir.path().join("events"), b"in the way").unwrap();
    assert!(checkpoint(&mut store).unwrap_err().contains("store "));
    std::fs::remove_file(dir.path().join("events")).unwrap();
    push(&mut store, p0, 1, "e1", "2026-01-19T10:00:00Z", "svc-a", 1);
    checkpoint(&mut store).unwrap();
    let names = files(dir.path(), "events");
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| !n.contains(naming::TEMP_PREFIX)));
    // A temporary file a crash left is removed when the store opens.
    let leftover = dir.path().join("events/dt=2026-01-19/.tmp-x.parquet");
    std::fs::write(&leftover, b"PAR1 partial").unwrap();
    drop(Store::open(dir.path(), StoreOptions::default()).unwrap());
    assert!(!leftover.exists());
}

#[test]
fn a_source_resuming_before_its_files_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = store(dir.path(), 1 << 20);
    let (p0, p1) = (kafka(&mut first, 0), kafka(&mut first, 1));
    push(&mut first, p0, 0, "e0", "2026-01-19T10:00:00Z", "svc-a", 1);
    push(&mut first, p1, 0, "f0", "2026-01-19T10:00:00Z", "svc-b", 1);
    checkpoint(&mut first).unwrap();
    push(&mut first, p0, 1, "e1", "2026-01-19T10:00:00Z", "svc-a", 1);
    push(&mut first, p0, 2, "e2", "2026-01-19T10:00:00Z", "svc-a", 1);
    checkpoint(&mut first).unwrap(); // written, but say its epoch never committed
    assert_eq!(files(dir.path(), "events").len(), 3);

    // After the crash partition 0 resumes at offset 1 and cuts its file elsewhere.
    let mut second = store(dir.path(), 1 << 20);
    let p0 = kafka(&mut second, 0);
    for offset in 1..=3 {
        push(&mut second, p0, offset, &format!("e{offset}"), "2026-01-19T10:00:00Z", "svc-a", 1);
    }
    checkpoint(&mut second).unwrap();
    let names: Vec<String> = files(dir.path(), "events").into_iter().map(|n| n[14..].to_string()).collect();
    assert_eq!(
        names,
        [
            "audit.events-0-00000000000000000000-00000000000000000000.parquet",
            "audit.events-0-00000000000000000001-00000000000000000003.parquet",
            "audit.events-1-00000000000000000000-00000000000000000000.parquet",
        ],
        "each event once"
    );
}

#[test]
fn an_alert_is_kept_with_its_evidence_under_the_event_that_raised_it() {
    use crate::detection::alert::{Alert, Evidence};
    use crate::detection::definition::{Category, Severity};
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path(), 1 << 20);
    let p0 = kafka(&mut store, 0);
    let time = millis("2026-01-19T10:00:00Z");
    let alert = Alert {
        id: "a1".into(),
        detector: "revoked-key-use".into(),
        category: Category::CredentialMisuse,
        severity: Severity::High,
        account: "svc-a".into(),
        tenant: None,
        credential_id: Some("AKIA1".into()),
        source_ip: None,
        time,
        window_start: time - 60_000,
        window_end: time,
        observed: 1.0,
        expected: 0.0,
        score: 9.5,
        summary: "a revoked key was used".into(),
        evidence: Evidence { event_ids: vec!["e7".into()], sql: "SELECT 1".into(), ..Evidence::default() },
        detected_at: Some("2026-12-01T00:00:00Z".into()),
    };
    store.alert(p0, 7, &alert);
    checkpoint(&mut store).unwrap();
    let names = files(dir.path(), "alerts");
    assert_eq!(names, ["dt=2026-01-19/audit.events-0-00000000000000000007-00000000000000000007.parquet"]);
    let (batch, _) = read(&dir.path().join("alerts").join(&names[0]));
    assert_eq!(batch.schema(), schema::alerts());
    assert_eq!(strings(&batch, "detector")[0].as_deref(), Some("revoked-key-use"));
    assert_eq!(strings(&batch, "origin")[0].as_deref(), Some("audit.events/0/7"));
    let evidence: serde_json::Value = serde_json::from_str(strings(&batch, "evidence")[0].as_deref().unwrap()).unwrap();
    assert_eq!((evidence["event_ids"][0].as_str(), evidence["sql"].as_str()), (Some("e7"), Some("SELECT 1")));
    let window_start = batch.column_by_name("window_start").unwrap().as_primitive::<TimestampMillisecondType>();
    assert_eq!(window_start.value(0), time - 60_000);
}

#[test]
fn a_row_that_waited_roll_age_asks_for_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::open(dir.path(), StoreOptions { roll_bytes: 1 << 20, roll_age: Duration::ZERO, retention: None })
            .unwrap();
    assert!(!store.wants_checkpoint(), "nothing waits");
    let p0 = kafka(&mut store, 0);
    push(&mut store, p0, 0, "e0", "2026-01-19T10:00:00Z", "svc-a", 1);
    assert!(store.wants_checkpoint() && !store.is_full());
    checkpoint(&mut store).unwrap();
    assert!(!store.wants_checkpoint(), "written");
}

#[test]
fn opening_with_a_retention_limit_deletes_the_days_past_it_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    for day in ["dt=2020-01-01", "dt=2020-01-02"] {
        std::fs::create_dir_all(dir.path().join("events").join(day)).unwrap();
    }
    let mut s = Store::open(
        dir.path(),
        StoreOptions { retention: Some(Duration::from_secs(400 * 86_400)), ..StoreOptions::default() },
    )
    .unwrap();
    assert_eq!(s.partitions_expired(), 2);
    assert!(naming::day_dirs(&dir.path().join("events")).unwrap().is_empty());
    // Today's rows are inside the limit, and the writer's hourly pass is not due yet.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let time = crate::detection::time::Rfc3339(now).to_string();
    let source = kafka(&mut s, 0);
    push(&mut s, source, 0, "e1", &time, "a", 1);
    checkpoint(&mut s).unwrap();
    assert_eq!(files(dir.path(), "events").len(), 1);
    assert_eq!(s.partitions_expired(), 2);
}
