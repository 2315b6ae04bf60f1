//! Service speed, measured in one run on this machine (`cargo bench --bench pipeline`):
//!
//! 1. consumer overhead: with librdkafka's in-process mock cluster and 1M generated events,
//!    the `run` pipeline (decode, engine, dead letters, alerts, checkpoints) against a bare
//!    consumer loop that only counts messages, on the same topic;
//! 2. alert latency: events produced at 20k/s with failure bursts mixed in; time from the
//!    produce call of the event that completed a burst to the alert's arrival on the alerts
//!    topic (p50, p99);
//! 3. checkpoint: engine snapshot (the intake stall) and durable write for 100k accounts.
//!
//! The mock cluster keeps only ~5 MB per partition, so the topic has 128 partitions.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};

use auditwatch::codec::Writer;
use auditwatch::config::{self, Config};
use auditwatch::engine::{Engine, EngineOptions};
use auditwatch::event::decode;
use auditwatch::metrics::Metrics;
use auditwatch::service::{Control, Pipeline};
use auditwatch::time::{format_rfc3339, parse_rfc3339, DAY, HOUR, MINUTE};

const PARTITIONS: i32 = 128;

fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").set("queue.buffering.max.messages", "500000").create().expect("producer")
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &[u8], payload: &[u8]) {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn config(bootstrap: &str, group: &str, state: &std::path::Path, topic: &str) -> Config {
    let text = format!(
        r#"
[kafka]
brokers = "{bootstrap}"
group_id = "{group}"
[[topics]]
name = "{topic}"
[dead_letter]
topic = "dead"
[state]
dir = "{}"
checkpoint_interval = "5s"
[[outputs]]
type = "kafka"
topic = "alerts"
"#,
        state.display()
    );
    config::load_from(&text, "bench", &[]).expect("config")
}

fn run_pipeline(config: &Config, stop_at: u64) -> Duration {
    let control = Control::default();
    let metrics = Arc::new(Metrics::new(&config.topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>()));
    let pipeline = Pipeline::start(config, auditwatch::pack::load().expect("pack"), metrics, control.clone()).expect("start");
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while control.handled.load(Ordering::Relaxed) < stop_at {
                std::thread::sleep(Duration::from_millis(1));
            }
            control.shutdown.store(true, Ordering::Relaxed);
        });
        pipeline.run().expect("run");
    });
    started.elapsed()
}

fn consumer_overhead() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("events", PARTITIONS, 1).expect("topic");
    for t in ["dead", "alerts"] {
        cluster.create_topic(t, 1, 1).expect("topic");
    }
    let bootstrap = cluster.bootstrap_servers();
    let mut generated = Vec::new();
    auditwatch::gen::generate(&auditwatch::gen::GenOptions { seed: 9, accounts: 100, days: 21, ..Default::default() }, &mut generated).expect("gen");
    let lines: Vec<&[u8]> = generated.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(1_000_000).collect();
    let n = lines.len() as u64;
    let p = producer(&bootstrap);
    for line in &lines {
        let key = decode(line, 1 << 20).map(|e| e.account.into_owned()).unwrap_or_default();
        send(&p, "events", key.as_bytes(), line);
    }
    p.flush(Duration::from_secs(60)).expect("flush");

    // Bare loop: a consumer that only counts messages.
    let bare: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "bare")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    bare.subscribe(&["events"]).expect("subscribe");
    let started = Instant::now();
    let mut count = 0u64;
    while count < n {
        if let Some(Ok(m)) = bare.poll(Duration::from_millis(100)) {
            count += u64::from(m.payload().is_some());
        }
    }
    let bare_time = started.elapsed();
    drop(bare);

    let state = std::env::temp_dir().join(format!("auditwatch-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let run_time = run_pipeline(&config(&bootstrap, "run", &state, "events"), n);
    let _ = std::fs::remove_dir_all(&state);
    let (bare_rate, run_rate) = (n as f64 / bare_time.as_secs_f64(), n as f64 / run_time.as_secs_f64());
    println!("consumer overhead ({n} events, mock cluster, {PARTITIONS} partitions):");
    println!("  bare consumer loop   {:>10.0} events/s ({:.2} s)", bare_rate, bare_time.as_secs_f64());
    println!("  auditwatch run path  {:>10.0} events/s ({:.2} s)", run_rate, run_time.as_secs_f64());
    println!("  ratio                {:>10.2} (target >= 0.5)", run_rate / bare_rate);
}

fn alert_latency() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("live", 16, 1).expect("topic");
    for t in ["dead", "alerts"] {
        cluster.create_topic(t, 1, 1).expect("topic");
    }
    let bootstrap = cluster.bootstrap_servers();
    let state = std::env::temp_dir().join(format!("auditwatch-bench-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let mut config = config(&bootstrap, "latency", &state, "live");
    config.kafka.client.insert("fetch.wait.max.ms".into(), "10".into());
    let control = Control::default();
    let metrics = Arc::new(Metrics::new(&["live".to_string()]));
    let pipeline = Pipeline::start(&config, auditwatch::pack::load().expect("pack"), metrics, control.clone()).expect("start");
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    const RATE: u64 = 20_000;
    const SECONDS: u64 = 20;
    let latencies = std::thread::scope(|s| {
        // Read alerts as they arrive.
        let reader = s.spawn(|| {
            let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", "reader").set("auto.offset.reset", "earliest").set("fetch.wait.max.ms", "5").create().expect("reader");
            c.subscribe(&["alerts"]).expect("subscribe");
            let mut latencies = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(SECONDS + 10);
            while Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                    let arrived = Instant::now();
                    let alert: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or(b"{}")).unwrap_or_default();
                    if let Some(id) = alert["evidence"]["event_ids"].as_array().and_then(|ids| ids.last()).and_then(|v| v.as_str()) {
                        if let Some(t) = sent_at.lock().unwrap().get(id) {
                            latencies.push(arrived.duration_since(*t));
                        }
                    }
                }
            }
            latencies
        });
        // Produce at RATE: steady traffic from 2000 accounts, and every 100 ms a burst of 12
        // failures for a fresh account, which raises one alert on its 10th failure.
        s.spawn(|| {
            let p = producer(&bootstrap);
            let start = parse_rfc3339("2026-03-02T00:00:00Z").unwrap();
            let begun = Instant::now();
            let mut burst = 0u64;
            for i in 0..RATE * SECONDS {
                let due = begun + Duration::from_micros(i * 1_000_000 / RATE);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let t = start + (i as i64) * 50;
                let (account, outcome, id) = if i % 2_000 < 12 {
                    if i % 2_000 == 0 {
                        burst += 1;
                    }
                    (format!("svc-burst-{burst}"), "failure", format!("b{i}"))
                } else {
                    (format!("svc-steady-{}", i % 2_000), "success", format!("s{i}"))
                };
                let line = format!(r#"{{"id":"{id}","time":"{}","account":"{account}","action":"auth.login","outcome":"{outcome}","source":{{"ip":"198.51.100.{}"}},"bytes":2048}}"#, format_rfc3339(t), i % 250);
                sent_at.lock().unwrap().insert(id, Instant::now());
                send(&p, "live", account.as_bytes(), line.as_bytes());
            }
            p.flush(Duration::from_secs(30)).expect("flush");
            std::thread::sleep(Duration::from_secs(3));
            control.shutdown.store(true, Ordering::Relaxed);
        });
        pipeline.run().expect("run");
        reader.join().expect("reader")
    });
    let _ = std::fs::remove_dir_all(&state);
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms.get(((ms.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    println!("alert latency at {RATE} events/s for {SECONDS} s (mock cluster, produce -> alerts topic):");
    println!("  alerts {}  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms (target p99 <= 500 ms)", ms.len(), pct(0.5), pct(0.99), pct(1.0));
}

fn checkpoint_100k() {
    let mut engine = Engine::new(auditwatch::pack::load().expect("pack"), EngineOptions::default());
    let start = parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
    let mut alerts = Vec::new();
    for day in 0..14 {
        for a in 0..100_000i64 {
            let t = start + day * DAY + (a % 24) * HOUR + (a % 60) * MINUTE;
            let line = format!(
                r#"{{"id":"e{day}-{a}","time":"{}","account":"svc-{a:06}","action":"crm.read","outcome":"success","credential":{{"id":"K{a}","owner":"svc-{a:06}"}},"source":{{"ip":"10.{}.{}.9","asn":64500,"country":"US"}},"bytes":{}}}"#,
                format_rfc3339(t),
                a % 250,
                a / 250 % 250,
                1000 + a
            );
            let _ = engine.process(&decode(line.as_bytes(), 1 << 20).expect("valid"), &mut alerts);
            alerts.clear();
        }
    }
    let dir = std::env::temp_dir().join(format!("auditwatch-bench-ckpt-{}", std::process::id()));
    let mut stalls = Vec::new();
    let mut totals = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let mut w = Writer::with_capacity(engine.accounts_tracked() * 700);
        engine.save(&mut w);
        let stall = started.elapsed();
        let checkpoint = auditwatch::checkpoint::Checkpoint { written_at_unix_ms: 0, offsets: Vec::new(), delivered: Vec::new(), engine: w.buf };
        size = checkpoint.engine.len();
        auditwatch::checkpoint::write(&dir, &checkpoint).expect("write");
        stalls.push(stall.as_secs_f64() * 1000.0);
        totals.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = std::fs::remove_dir_all(&dir);
    stalls.sort_by(f64::total_cmp);
    totals.sort_by(f64::total_cmp);
    println!("checkpoint of {} accounts ({:.1} MB), median of 5:", engine.accounts_tracked(), size as f64 / 1e6);
    println!("  intake stall (engine snapshot)      {:.1} ms (target <= 200 ms)", stalls[2]);
    println!("  snapshot + durable write (fsync)    {:.1} ms (target <= 200 ms)", totals[2]);
}

fn main() {
    // `cargo test --benches` runs bench binaries with no arguments in test mode too; only do
    // the work under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    checkpoint_100k();
    consumer_overhead();
    alert_latency();
}
