//! SQL over a store: golden results of `auditwatch query` over a fixed generated dataset
//! (`tests/golden/sql/NAME.sql` gives `NAME.csv`; adding a case is adding both files), the
//! command's errors, `auditwatch review`, and `POST /query` on the admin server over real
//! HTTP (token, read-only, row limit).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use auditwatch::admin::http::QueryEndpoint;
use auditwatch::admin::metrics::Metrics;
use auditwatch::config::Secret;
use auditwatch::query::{Catalog, Limits};

use crate::support::{binary, generate};

/// One store for the whole file: 12 accounts over 21 days of seed 5, and two bad lines,
/// replayed.
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let (mut lines, _) = generate(5, 12, 21);
        lines.insert(100, b"{\"time\": oops".to_vec());
        lines.insert(200, b"[1, 2]".to_vec());
        let input = dir.join("events.jsonl");
        std::fs::write(&input, lines.join(&b'\n')).unwrap();
        let store = dir.join("store");
        let out = Command::new(binary())
            .args(["replay", "--store", store.to_str().unwrap(), input.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        store
    })
}

fn query(args: &[&str]) -> Output {
    Command::new(binary()).arg("query").args(["--store", store().to_str().unwrap()]).args(args).output().unwrap()
}

#[test]
fn golden_sql_results_over_a_generated_store() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sql");
    let update = std::env::var_os("AUDITWATCH_UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "{cases:?}");
    let mut failed = Vec::new();
    for case in &cases {
        let sql = std::fs::read_to_string(case).unwrap();
        let out = query(&["--format", "csv", "--", &sql]);
        assert!(out.status.success(), "{}: {}", case.display(), String::from_utf8_lossy(&out.stderr));
        let expected_path = case.with_extension("csv");
        if update {
            std::fs::write(&expected_path, &out.stdout).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e} (AUDITWATCH_UPDATE_GOLDEN=1 writes it)", expected_path.display()));
        let got = String::from_utf8(out.stdout).unwrap();
        if got != expected {
            failed.push(format!("{}:\n--- expected\n{expected}--- got\n{got}", case.display()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn a_bad_or_writing_query_is_one_line_and_exit_1() {
    for (sql, says) in [
        ("SELECT account FROM events GROUP account", "Line: 1, Column: 28"),
        ("SELECT nope FROM events", "nope"),
        ("DELETE FROM events", "only queries can run"),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", "only queries can run"),
    ] {
        let out = Command::new(binary())
            .args(["query", "--store", store().to_str().unwrap(), sql])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{sql}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{sql}: one line: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(says), "{sql}: {stderr}");
    }
    let out = Command::new(binary()).args(["query", "--store", "/nonexistent/store", "SELECT 1"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"), "{out:?}");
}

#[test]
fn output_formats_carry_the_same_rows() {
    let sql = "SELECT account, count(*) AS n FROM events GROUP BY account ORDER BY account LIMIT 3";
    let csv = String::from_utf8(query(&["--format", "csv", sql]).stdout).unwrap();
    let json = String::from_utf8(query(&["--format", "json", sql]).stdout).unwrap();
    let table = String::from_utf8(query(&["--format", "table", sql]).stdout).unwrap();
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3);
    for (row, line) in rows.iter().zip(csv.lines().skip(1)) {
        let account = row["account"].as_str().unwrap();
        assert_eq!(line, format!("{account},{}", row["n"]));
        assert!(table.contains(&format!("| {account} ")), "{table}");
    }
    assert!(table.ends_with("3 rows\n"), "{table}");
    let parquet = query(&["--format", "parquet", sql]).stdout;
    assert_eq!(&parquet[..4], b"PAR1");
    let explain = String::from_utf8(query(&["--explain", sql]).stdout).unwrap();
    assert!(explain.contains("DataSourceExec") && explain.contains("metrics"), "{explain}");
}

#[test]
fn review_prints_four_sections() {
    let out = Command::new(binary())
        .args(["review", "--format", "csv", "--store", store().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let titles: Vec<&str> = text.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(titles.len(), 4, "{text}");
    // Generated keys are used from one network each, and every account writes something or
    // not: the sections' headers are there whatever the rows.
    assert!(text.contains("tenant,credential_id,owner,users,last_use,uses"), "{text}");
    assert!(text.contains("tenant,account,events,first_seen,last_seen"), "{text}");
}

/// A POST over a fresh TCP connection; (status, headers, body).
pub(crate) fn post(addr: std::net::SocketAddr, path: &str, token: Option<&str>, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn post_query_needs_the_token_refuses_writes_and_limits_rows() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let limits =
        Limits { rows: Some(5), timeout: Some(std::time::Duration::from_secs(8)), memory_bytes: Some(64 << 20) };
    let catalog = runtime.block_on(Catalog::open(store(), limits)).unwrap();
    let endpoint = QueryEndpoint::new(catalog, &Secret::new("s3cret-token".into()), runtime.handle().clone());
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new(&[]));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(auditwatch::admin::http::serve(listener, metrics, Some(endpoint), async move {
        let _ = stopped.await;
    }));

    let count = "SELECT count(*) AS n FROM events";
    let (status, head, _) = post(addr, "/query", None, count);
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert_eq!(post(addr, "/query", Some("s3cret-tokeN"), count).0, 401);
    assert_eq!(post(addr, "/query", Some("s3cret"), count).0, 401);

    let (status, head, body) = post(addr, "/query", Some("s3cret-token"), count);
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: application/x-ndjson"), "{head}");
    let n = serde_json::from_str::<serde_json::Value>(body.trim()).unwrap()["n"].as_u64().unwrap();
    let (lines, _) = generate(5, 12, 21);
    assert_eq!(n, lines.len() as u64, "every generated event is in the store, the bad lines are not");

    for write in ["DROP TABLE events", "CREATE TABLE t AS SELECT 1", "INSERT INTO events SELECT * FROM events"] {
        let (status, _, body) = post(addr, "/query", Some("s3cret-token"), write);
        assert_eq!(status, 400, "{write}: {body}");
        assert!(body.contains("only queries can run"), "{write}: {body}");
    }

    let (status, head, body) = post(addr, "/query?format=csv", Some("s3cret-token"), "SELECT id FROM events");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("x-auditwatch-truncated: true"), "{head}");
    assert_eq!(body.lines().count(), 6, "a header and the 5 rows of the limit: {body}");

    let _ = stop.send(());
    runtime.block_on(server).unwrap().unwrap();
}
