//! `auditwatch demo`: the main job end to end with nothing installed.
//!
//! An in-process Kafka-protocol broker (librdkafka's mock cluster) receives generated traffic
//! with labelled incidents and a few malformed messages through a real producer, while the
//! same [`Pipeline`] as `auditwatch run` consumes it, prints each alert as it fires, writes
//! alerts to a topic and a file, delivers them signed to an in-process webhook receiver that
//! verifies every signature, writes the grouped emails on-call would get as `.eml` files,
//! dead-letters the bad messages, retains everything as Parquet and checkpoints. At the end it
//! scores the alerts against the labels, runs one alert's evidence query and the access review
//! over what it retained, and says how to point auditwatch at a real cluster.
//!
//! The mock cluster keeps only the last ~5 MB of each partition, so the producer stays at
//! most `MAX_AHEAD` messages ahead of the pipeline instead of producing everything first.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::admin::metrics::Metrics;
use crate::config::{self, Config};
use crate::detection::definition::Category;
use crate::input::event::{decode, DEFAULT_MAX_EVENT_BYTES};
use crate::pipeline::kafka::send_blocking;
use crate::pipeline::{Control, Pipeline, RunSummary, ServiceError};
use crate::synthetic::demo_receiver::{Received, Receiver};
use crate::synthetic::gen::{self, GenOptions};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

const MAX_AHEAD: u64 = 20_000;
const INPUT_TOPIC: &str = "audit.events";
const PARTITIONS: i32 = 6;

pub struct DemoOptions {
    pub seed: u64,
    pub accounts: usize,
    pub days: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("mock Kafka cluster: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("querying the demo's store: {0}")]
    Query(String),
    #[error("demo I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub struct DemoReport {
    pub summary: RunSummary,
    pub produced: u64,
    pub eval: crate::synthetic::eval::EvalReport,
    pub elapsed: Duration,
    /// What the in-process webhook receiver got, and how many alerts the file output holds.
    pub webhook: Received,
    pub alerts: usize,
    /// Where the notification emails were written, and how many.
    pub mail: std::path::PathBuf,
    pub emails: usize,
    pub retained: Retained,
}

pub fn run(options: &DemoOptions) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let cluster = MockCluster::new(1)?;
    for (topic, partitions) in [(INPUT_TOPIC, PARTITIONS), ("audit.deadletter", 1), ("auditwatch.alerts", 1)] {
        cluster.create_topic(topic, partitions, 1)?;
    }
    let state = tempfile_dir("")?;
    let alerts_file = state.join("alerts.jsonl");
    // The webhook output signs with a fresh secret, kept in a file as a secret would be.
    let secret = format!("whsec_{}", BASE64.encode(rand_key()));
    let secret_file = state.join("webhook-secret");
    std::fs::write(&secret_file, &secret)?;
    let receiver = Receiver::start(&secret)?;
    let mail = tempfile_dir("-mail")?;
    let store = tempfile_dir("-store")?;
    let text = format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "auditwatch-demo"
[[topics]]
name = "{INPUT_TOPIC}"
[dead_letter]
topic = "audit.deadletter"
[state]
dir = "{state}"
checkpoint_interval = "5s"
[store]
dir = "{store}"
[[outputs]]
type = "stdout"
format = "pretty"
[[outputs]]
type = "kafka"
topic = "auditwatch.alerts"
[[outputs]]
type = "file"
path = "{alerts}"
[[outputs]]
name = "soar"
type = "webhook"
url = "{webhook}"
allow_http = true
secrets = [{{ file = "{secret}" }}]
[[outputs]]
name = "oncall-email"
type = "email"
host = "smtp.example.com"
from = "auditwatch@example.com"
to = ["oncall@example.com"]
save_to = "{mail}"
[[routes]]
name = "oncall"
match = {{ severity = ["high", "critical"] }}
outputs = ["oncall-email"]
continue = true
group_wait = "1s"
group_interval = "5s"
[[routes]]
name = "machines"
outputs = ["soar", "stdout", "kafka-auditwatch.alerts", "file-alerts.jsonl"]
"#,
        brokers = cluster.bootstrap_servers(),
        state = state.display(),
        alerts = alerts_file.display(),
        webhook = receiver.url,
        secret = secret_file.display(),
        mail = mail.display(),
        store = store.display(),
    );
    let config: Config = config::load_from(&text, "demo", &[])?;

    let mut events = Vec::new();
    let labels = gen::generate(
        &GenOptions { seed: options.seed, accounts: options.accounts, days: options.days, ..GenOptions::default() },
        &mut events,
    )?;
    println!(
        "auditwatch demo: {} accounts over {} days, {} labelled incidents, through an in-process Kafka broker at {}\n",
        options.accounts,
        options.days,
        labels.incidents.len(),
        cluster.bootstrap_servers()
    );

    let metrics = Arc::new(Metrics::new(&[INPUT_TOPIC.to_string()]));
    let control = Control::default();
    let pipeline = Pipeline::start(
        &config,
        crate::detection::pack::load()
            .map_err(|p| config::ConfigError::Parse { source_name: "detector pack".into(), message: p.to_string() })?,
        metrics,
        control.clone(),
    )?;

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "100000")
        .create()?;
    let handled = control.handled.clone();
    let shutdown = control.shutdown.clone();
    let result = std::thread::scope(|scope| {
        let feeder = scope.spawn(|| -> Result<u64, DemoError> {
            let mut produced = 0u64;
            // A few malformed messages among the good ones, to show the dead-letter path.
            let garbage: [&[u8]; 3] = [
                b"{\"time\": \"yesterday\", \"account\": \"svc-x\"",
                b"[1,2,3]",
                b"{\"account\":\"svc-x\",\"action\":\"a\",\"outcome\":\"success\"}",
            ];
            let lines: Vec<&[u8]> = events.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
            for (i, line) in lines.iter().enumerate() {
                // One of each malformed kind, spread through the stream.
                if let Some(bad) =
                    garbage.iter().enumerate().find(|(k, _)| i == (k + 1) * lines.len() / 4).map(|(_, bad)| *bad)
                {
                    send(&producer, b"garbage", bad)?;
                    produced += 1;
                }
                let key = decode(line, DEFAULT_MAX_EVENT_BYTES).map(|e| e.account.into_owned()).unwrap_or_default();
                send(&producer, key.as_bytes(), line)?;
                produced += 1;
                while produced.saturating_sub(handled.load(Ordering::Relaxed)) > MAX_AHEAD {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            producer.flush(Duration::from_secs(30))?;
            // Stop once everything produced has been handled.
            while handled.load(Ordering::Relaxed) < produced {
                std::thread::sleep(Duration::from_millis(20));
            }
            shutdown.store(true, Ordering::Relaxed);
            Ok(produced)
        });
        let summary = pipeline.run();
        if summary.is_err() {
            // Unblock the feeder if the pipeline failed.
            handled.store(u64::MAX / 2, Ordering::Relaxed);
        }
        let produced = feeder.join().expect("feeder thread panicked");
        Ok::<_, DemoError>((summary?, produced?))
    });
    let (summary, produced) = result?;

    // No alert at all leaves no file.
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(&alerts_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let eval = crate::synthetic::eval::evaluate(&alerts, &labels);
    let webhook = receiver.received();
    let emails = std::fs::read_dir(&mail)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    let _ = std::fs::remove_dir_all(&state);
    let retained = retained(&store, &alerts)?;
    Ok(DemoReport {
        summary,
        produced,
        eval,
        elapsed: started.elapsed(),
        webhook,
        alerts: alerts.len(),
        mail,
        emails,
        retained,
    })
}

/// What the store answers: the evidence of the first alert of the highest severity, run as its
/// `evidence.sql` says, and the access review.
fn retained(store: &std::path::Path, alerts: &[serde_json::Value]) -> Result<Retained, DemoError> {
    use crate::query::{output, review, Catalog, Limits};
    let rank = |a: &serde_json::Value| match a["severity"].as_str() {
        Some("critical") => 0,
        Some("high") => 1,
        Some("medium") => 2,
        _ => 3,
    };
    let alert = alerts.iter().min_by_key(|a| rank(a));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let query_error = |e: crate::query::QueryError| DemoError::Query(e.to_string());
    runtime.block_on(async {
        let catalog =
            Catalog::open(store, Limits { rows: Some(12), ..Limits::default() }).await.map_err(query_error)?;
        let mut evidence = Vec::new();
        let mut sql = String::new();
        if let Some(alert) = alert {
            sql = alert["evidence"]["sql"].as_str().unwrap_or_default().to_string();
            let answer = catalog.run(&sql).await.map_err(query_error)?;
            output::write(&answer, output::OutputFormat::Table, &mut evidence)
                .map_err(|e| DemoError::Query(e.to_string()))?;
            evidence.splice(
                0..0,
                format!("{}: {}\n", alert["detector"].as_str().unwrap_or(""), alert["summary"].as_str().unwrap_or(""))
                    .into_bytes(),
            );
        }
        let mut report = Vec::new();
        review::report(&catalog, output::OutputFormat::Table, &mut report).await.map_err(query_error)?;
        Ok(Retained {
            dir: store.to_path_buf(),
            sql,
            evidence: String::from_utf8_lossy(&evidence).into_owned(),
            review: String::from_utf8_lossy(&report).into_owned(),
        })
    })
}

/// The demo's store and two answers from it.
pub struct Retained {
    pub dir: std::path::PathBuf,
    pub sql: String,
    pub evidence: String,
    pub review: String,
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, key: &[u8], payload: &[u8]) -> Result<(), DemoError> {
    Ok(send_blocking(producer, INPUT_TOPIC, key, payload)?)
}

/// 32 bytes that differ per run: a signing key for one demo.
fn rand_key() -> [u8; 32] {
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&xxhash_rust::xxh3::xxh3_128(seed.as_bytes()).to_le_bytes());
    let second = xxhash_rust::xxh3::xxh3_128(&key[..16]).to_le_bytes();
    key[16..].copy_from_slice(&second);
    key
}

fn tempfile_dir(suffix: &str) -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("auditwatch-demo-{}{suffix}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl DemoReport {
    pub fn print(&self) {
        let s = &self.summary;
        println!("\n── summary ─────────────────────────────────────────────");
        println!("messages produced   {}", self.produced);
        println!("events processed    {}", s.events);
        println!("dead-lettered       {} (malformed messages, kept with their reason)", s.dead_letters);
        println!("alerts              {}", s.alerts);
        for category in Category::ALL {
            println!("  {:<18}{}", category.as_str(), s.alerts_by_category[category.index()]);
        }
        println!("checkpoints         {}", s.checkpoints);
        println!(
            "webhook             {} alerts received signed, {} signatures verified, {} rejected",
            self.webhook.ids.len(),
            self.webhook.verified,
            self.webhook.rejected
        );
        println!(
            "email               {} grouped notifications (high and critical) written to {}",
            self.emails,
            self.mail.display()
        );
        println!("took                {:.1} s\n", self.elapsed.as_secs_f64());
        println!("{}", self.eval);
        let r = &self.retained;
        println!("── retained ─────────────────────────────────────────────");
        println!("Every event, dead letter and alert is in Parquet under {}.", r.dir.display());
        if !r.sql.is_empty() {
            println!("The evidence of one alert, by its evidence.sql (first 12 rows):\n{}", r.evidence);
        }
        println!("The access review (auditwatch review --store {}):\n{}", r.dir.display(), r.review);
        println!("Ask your own questions:");
        println!(
            "  auditwatch query --store {} \"SELECT account, sum(bytes) AS bytes FROM events GROUP BY account ORDER BY bytes DESC LIMIT 5\"\n",
            r.dir.display()
        );
        println!("── next ─────────────────────────────────────────────────");
        println!("Point auditwatch at a real cluster: copy docker/auditwatch.example.toml, set");
        println!("[kafka] brokers (and [kafka.client]/[kafka.secrets] for SASL/TLS), then run");
        println!("  auditwatch config check auditwatch.toml");
        println!("  auditwatch run --config auditwatch.toml");
    }
}
