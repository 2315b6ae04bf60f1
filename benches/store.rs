//! The store's speed: retention (appending decoded events to columns; sort, Parquet with zstd,
//! fsync) on one thread, and `SELECT account, sum(bytes) ... WHERE dt BETWEEN ... GROUP BY account`
//! over what it wrote, by DataFusion (`auditwatch query`'s catalog) and, in the same run, by
//! duckdb from the test venv when `AUDITWATCH_PYTHON` names its python.
//!
//! `cargo bench --bench store` (10M events; `AUDITWATCH_BENCH_EVENTS=1000000` for a quick
//! run). The issue's targets: the writer at 300k events/s or more on one core; the query in 2 s
//! or less over 10M events, and within 1.5x of duckdb's time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use auditwatch::detection::time::{Rfc3339, DAY};
use auditwatch::input::formats::{decode_as, InputFormat};
use auditwatch::query::{Catalog, Limits};
use auditwatch::store::{SourceKind, Store, StoreOptions};

const ACCOUNTS: usize = 2_000;
const DAYS: i64 = 10;
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const QUERY: &str = "SELECT account, sum(bytes) AS bytes FROM events \
                     WHERE dt BETWEEN DATE '2026-01-02' AND DATE '2026-01-09' GROUP BY account";

/// One native event of about 330 bytes.
fn event(i: usize) -> String {
    let time = START + (i as i64 * 7_919) % (DAYS * DAY);
    let number = i * 2_654_435_761 % ACCOUNTS;
    let account = format!("svc-{number:04}");
    format!(
        r#"{{"id":"e{i}","time":"{}","account":"{account}","action":"storage.objects.get","outcome":"success","credential":{{"id":"AKIA{number:016}","type":"api_key"}},"source":{{"ip":"10.{}.{}.7","asn":64500}},"target":{{"system":"s3","resource":"bucket-{}"}},"bytes":{},"records":1}}"#,
        Rfc3339(time),
        number % 250,
        i % 200,
        number % 17,
        (i % 10_000) * 37
    )
}

/// The time the store took: appending decoded events to their segments' columns (done on the
/// pipeline thread) and writing the files (the writer thread). Making and decoding the events
/// is not timed: the pipeline decodes every event for the engine anyway.
fn write_store(dir: &Path, events: usize) -> (Duration, Duration) {
    const CHUNK: usize = 10_000;
    let mut store = Store::open(dir, StoreOptions::default()).expect("store");
    let source = store.source(SourceKind::File { name: "bench.jsonl".into(), records: false }, InputFormat::Native);
    let (mut appending, mut writing) = (Duration::ZERO, Duration::ZERO);
    for start in (0..events).step_by(CHUNK) {
        let end = (start + CHUNK).min(events);
        let lines: Vec<String> = (start..end).map(event).collect();
        let decoded: Vec<_> = lines
            .iter()
            .map(|line| decode_as(InputFormat::Native, line.as_bytes(), usize::MAX).expect("decode"))
            .collect();
        let started = Instant::now();
        for (i, (event, line)) in decoded.iter().zip(&lines).enumerate() {
            store.event(source, (start + i) as i64 + 1, event, line.as_bytes());
        }
        appending += started.elapsed();
        // Cut a file per million events, as a checkpoint would.
        if end.is_multiple_of(1_000_000) || end == events {
            let started = Instant::now();
            store.write_all().expect("write");
            writing += started.elapsed();
        }
    }
    (appending, writing)
}

fn datafusion_seconds(dir: &Path) -> (f64, usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let catalog = Catalog::open(dir, Limits::default()).await.expect("catalog");
        let mut best = f64::MAX;
        let mut rows = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let answer = catalog.run(QUERY).await.expect("query");
            best = best.min(started.elapsed().as_secs_f64());
            rows = answer.rows();
        }
        (best, rows)
    })
}

/// duckdb's best of five on the same files, or why it did not run.
fn duckdb_seconds(dir: &Path) -> Result<f64, String> {
    let python = std::env::var("AUDITWATCH_PYTHON").map_err(|_| "AUDITWATCH_PYTHON is not set".to_string())?;
    let script = format!(
        "import duckdb, time\n\
         con = duckdb.connect()\n\
         con.sql(\"CREATE VIEW events AS SELECT * FROM read_parquet('{}/events/*/*.parquet', hive_partitioning = true)\")\n\
         best = 1e9\n\
         for _ in range(5):\n\
         \x20   t = time.perf_counter(); con.sql(\"\"\"{}\"\"\".replace(\"DATE \", \"\")).fetchall(); best = min(best, time.perf_counter() - t)\n\
         print(best)\n",
        dir.display(),
        QUERY
    );
    let out = Command::new(python).args(["-c", &script]).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("{e}"))
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: build only, then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let events: usize =
        std::env::var("AUDITWATCH_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let (appending, writing) = write_store(dir.path(), events);
    let total = (appending + writing).as_secs_f64();
    println!(
        "store: {events} events in {total:.2} s on one thread (append {:.2} s, write {:.2} s): {:.0} events/s \
         (target 300k)",
        appending.as_secs_f64(),
        writing.as_secs_f64(),
        events as f64 / total
    );
    let (df, rows) = datafusion_seconds(dir.path());
    println!("datafusion: {QUERY}\n  best of 5: {df:.3} s, {rows} rows (target 2 s at 10M events)");
    match duckdb_seconds(dir.path()) {
        Ok(duck) => {
            println!("duckdb: best of 5: {duck:.3} s; datafusion / duckdb = {:.2} (goal 1.5 or less)", df / duck)
        }
        Err(why) => println!("duckdb: not run: {why}"),
    }
}
