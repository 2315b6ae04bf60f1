//! Webhook delivery throughput to a loopback receiver (`cargo bench --bench delivery`).
//!
//! The receiver runs in-process on 127.0.0.1 (axum, one runtime thread, TCP_NODELAY on its
//! connections like any production server): it checks every request's Standard Webhooks
//! signature with `auditwatch::sinks::webhook::verify`, counts it, and answers 200 (401 to one
//! that does not verify). The alerts are the golden replay's (about 1.3 kB each), each with a
//! fresh id. Measured:
//!
//! 1. the sink alone: `WebhookSink::deliver` over all N entries in one call;
//! 2. end to end through the durable outbox and the sink's worker: N alerts appended and
//!    published first, then the worker (with an alert plan: no routes, no silences, no mask)
//!    is spawned and timed until the receiver has counted N verified requests.
//!
//! Also printed, to tell where the time goes: the connections the receiver accepted (1 means
//! keep-alive works), and the latency of single requests (p50, p99). With
//! `AUDITWATCH_BENCH_RECEIVER_NODELAY=0` the receiver leaves Nagle's algorithm on (the sink's
//! side, reqwest, always sets TCP_NODELAY). The issue's target:
//! at least 2,000 alerts/s delivered. The machine is shared: numbers swing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::serve::ListenerExt;

use auditwatch::admin::metrics::Metrics;
use auditwatch::alerting::route::Router;
use auditwatch::alerting::silence::Silences;
use auditwatch::config::{self, SecretRef, WebhookOutput};
use auditwatch::sinks::webhook::{verify, SigningKey, WebhookSink};
use auditwatch::sinks::worker::{self, Plan};
use auditwatch::sinks::{Feed, Sink};
use auditwatch::state::outbox::{Entry, Outbox, OutboxOptions};

const N: usize = 20_000;
const TARGET: f64 = 2_000.0;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SINK_NAME: &str = "bench-webhook";

#[derive(Default)]
struct Counts {
    verified: AtomicU64,
    rejected: AtomicU64,
    connections: AtomicU64,
}

struct Receiver {
    url: String,
    counts: Arc<Counts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let key = Arc::new(SigningKey::parse("secret", SECRET).expect("key"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}/alerts", listener.local_addr().expect("addr"));
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let shared = (key, counts.clone());
        // `AUDITWATCH_BENCH_RECEIVER_NODELAY=0`: a receiver that leaves Nagle on.
        let nodelay = std::env::var("AUDITWATCH_BENCH_RECEIVER_NODELAY").map_or(true, |v| v != "0");
        let thread = std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let connections = shared.1.clone();
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener").tap_io(move |tcp| {
                        connections.connections.fetch_add(1, Ordering::Relaxed);
                        if nodelay {
                            let _ = tcp.set_nodelay(true);
                        }
                    });
                    let app = axum::Router::new().route("/alerts", post(take)).with_state(shared);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .expect("receiver thread");
        Receiver { url, counts, stop: Some(stop), thread: Some(thread) }
    }

    fn verified(&self) -> u64 {
        self.counts.verified.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn take(
    State((key, counts)): State<(Arc<SigningKey>, Arc<Counts>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if verify(&key, header("webhook-id"), header("webhook-timestamp"), &body, header("webhook-signature")) {
        counts.verified.fetch_add(1, Ordering::Relaxed);
        StatusCode::OK
    } else {
        counts.rejected.fetch_add(1, Ordering::Relaxed);
        StatusCode::UNAUTHORIZED
    }
}

fn env(var: &str) -> Option<String> {
    (var == "BENCH_WEBHOOK_SECRET").then(|| SECRET.to_string())
}

fn webhook_output(url: &str) -> WebhookOutput {
    WebhookOutput {
        name: Some(SINK_NAME.to_string()),
        mask: None,
        url: url.to_string(),
        secrets: vec![SecretRef::Env { env: "BENCH_WEBHOOK_SECRET".to_string() }],
        headers: Default::default(),
        timeout: auditwatch::detection::time::Duration(10_000),
        allow_http: true,
    }
}

/// `n` alert bodies like real ones: the golden replay's alerts in turn, each with its own id
/// and a fresh `detected_at`.
fn alerts(n: usize) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let golden = include_str!("../tests/golden/replay-seed42-30x21.jsonl");
    let samples: Vec<serde_json::Value> =
        golden.lines().map(|l| serde_json::from_str(l).expect("golden alert")).collect();
    let detected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    (0..n)
        .map(|i| {
            let mut alert = samples[i % samples.len()].clone();
            let id = format!("{:032x}", 0xbe7c_0000_0000u64 + i as u64);
            alert["id"] = id.clone().into();
            alert["detected_at"] = detected_at.clone().into();
            let key = alert["account"].as_str().unwrap_or_default().as_bytes().to_vec();
            (id, key, serde_json::to_vec(&alert).expect("alert"))
        })
        .collect()
}

fn entries(alerts: &[(String, Vec<u8>, Vec<u8>)]) -> Vec<Entry> {
    alerts
        .iter()
        .enumerate()
        .map(|(seq, (id, key, body))| Entry {
            seq: seq as u64,
            id: id.clone(),
            key: key.clone(),
            body: body.clone(),
            headers: Vec::new(),
        })
        .collect()
}

fn wait_for(receiver: &Receiver, n: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while receiver.verified() < n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn verdict(rate: f64) -> &'static str {
    if rate >= TARGET {
        "meets"
    } else {
        "BELOW"
    }
}

/// The sink alone: one `deliver` call over every entry.
fn sink_alone(alerts: &[(String, Vec<u8>, Vec<u8>)]) {
    let receiver = Receiver::start();
    let mut sink = WebhookSink::new(&webhook_output(&receiver.url), &env).expect("sink");
    let entries = entries(alerts);
    let mean = entries.iter().map(|e| e.body.len()).sum::<usize>() / entries.len();
    let started = Instant::now();
    sink.deliver(&entries).expect("deliver");
    let took = started.elapsed();
    assert!(wait_for(&receiver, N as u64, Duration::from_secs(10)), "the receiver verified {}", receiver.verified());
    let rate = N as f64 / took.as_secs_f64();
    println!("webhook sink alone ({N} alerts of ~{mean} bytes, one deliver call, loopback):");
    println!(
        "  {rate:>10.0} alerts/s ({:.2} s, {:.0} us per alert) -> {} the target of {TARGET:.0}/s",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / N as f64,
        verdict(rate)
    );
    println!(
        "  receiver: {} verified, {} rejected, over {} connection(s)",
        receiver.verified(),
        receiver.counts.rejected.load(Ordering::Relaxed),
        receiver.counts.connections.load(Ordering::Relaxed)
    );
    // Where the time goes: single requests, one at a time, on the same warm connection.
    let mut latencies: Vec<f64> = entries[..2_000]
        .iter()
        .map(|e| {
            let started = Instant::now();
            sink.deliver(std::slice::from_ref(e)).expect("deliver");
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "  one request (2000 sequential): p50 {:.0} us  p99 {:.0} us  max {:.0} us; connections now {}",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        receiver.counts.connections.load(Ordering::Relaxed)
    );
}

/// Through the outbox and the sink's worker, with the alert plan applied.
fn through_worker(alerts: &[(String, Vec<u8>, Vec<u8>)]) {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        r#"
[kafka]
brokers = "127.0.0.1:9"
group_id = "bench"
[[topics]]
name = "events"
[dead_letter]
topic = "dead"
[state]
dir = "{}"
[[outputs]]
type = "webhook"
name = "{SINK_NAME}"
url = "{}"
allow_http = true
secrets = [{{ env = "BENCH_WEBHOOK_SECRET" }}]
timeout = "10s"
"#,
        dir.path().display(),
        receiver.url
    );
    let config = config::load_from(&text, "bench", &[]).expect("config");
    let names = config.output_names();
    assert_eq!(names, [SINK_NAME]);
    let config::OutputConfig::Webhook(output) = &config.outputs[0] else { panic!("a webhook output") };
    let sink = WebhookSink::new(output, &env).expect("sink");

    let mut outbox = Outbox::open(dir.path(), "alerts", &names, None, OutboxOptions::default()).expect("outbox");
    let appending = Instant::now();
    for (id, key, body) in alerts {
        assert!(outbox.append(id, key, body, &[]).expect("append"));
    }
    outbox.publish().expect("publish");
    let appended = appending.elapsed();

    let metrics = Arc::new(Metrics::new(&["events".to_string()]));
    let plan = Plan {
        router: Arc::new(Router::new(&config).expect("router")),
        silences: Silences::new(config.silences_file()),
        mask: config.outputs[0].masked(),
    };
    let started = Instant::now();
    let worker = worker::spawn(
        Sink::Feed(Feed::Webhook(sink)),
        outbox.reader(SINK_NAME),
        metrics.sink(SINK_NAME),
        &dir.path().join("outbox").join("alerts"),
        Some(plan),
    )
    .expect("worker");
    let all = wait_for(&receiver, N as u64, Duration::from_secs(120));
    let took = started.elapsed();
    outbox.stop_workers();
    let _ = worker.join();
    let rate = receiver.verified() as f64 / took.as_secs_f64();
    println!("outbox -> worker -> webhook sink ({N} alerts appended and published up front, then the worker spawned):");
    if !all {
        println!("  only {} of {N} verified within 120 s", receiver.verified());
    }
    println!(
        "  {rate:>10.0} alerts/s end to end ({:.2} s from spawn to the {}th verified) -> {} the target of {TARGET:.0}/s",
        took.as_secs_f64(),
        receiver.verified(),
        verdict(rate)
    );
    println!(
        "  receiver: {} verified, {} rejected, over {} connection(s); appending {N} took {:.0} ms",
        receiver.verified(),
        receiver.counts.rejected.load(Ordering::Relaxed),
        receiver.counts.connections.load(Ordering::Relaxed),
        appended.as_secs_f64() * 1000.0
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with no arguments in test mode too; only do
    // the work under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let alerts = alerts(N);
    if wanted("sink") {
        sink_alone(&alerts);
    }
    if wanted("worker") {
        through_worker(&alerts);
    }
}
