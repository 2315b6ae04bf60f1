//! Shared helpers: a real tansu broker process, Kafka produce/consume, child processes, HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait until `check` holds, polling; panics with `what` on timeout.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Python test peer (`tests/peers/<script>`) run with the venv test.sh builds
/// (`AUDITWATCH_PYTHON`). The peer prints `READY` on its first stdout line once it listens;
/// every later stdout line is a JSON record of what it received, collected in `lines`. Killed
/// on drop.
pub struct Peer {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Peer {
    pub fn start(script: &str, args: &[&str]) -> Peer {
        let python = std::env::var("AUDITWATCH_PYTHON").unwrap_or_else(|_| {
            panic!("AUDITWATCH_PYTHON is not set: run the tests with ./test.sh, which builds the venv of Python peers")
        });
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(script);
        let mut child = Command::new(&python)
            .arg("-u")
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} {}: {e}", path.display()));
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let collected = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut ready = Some(ready_tx);
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                match ready.take() {
                    Some(tx) if line.trim() == "READY" => {
                        let _ = tx.send(());
                    }
                    other => {
                        ready = other;
                        collected.lock().unwrap().push(line);
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{script} did not print READY within 60 s"));
        Peer { child, lines }
    }

    /// Every record the peer reported so far, parsed.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.lines.lock().unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Wait until the peer reported at least `n` records, then return them all.
    pub fn wait_records(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        wait_until(&format!("{n} records from the peer"), timeout, || self.records().len() >= n);
        self.records()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files in `dir`:
/// (ca, cert, key).
pub fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "auditwatch test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A tansu broker process on a free loopback port, in-memory storage, killed on drop.
pub struct Tansu {
    child: Child,
    pub bootstrap: String,
}

impl Tansu {
    pub fn start() -> Tansu {
        let binary = std::env::var("AUDITWATCH_TANSU").unwrap_or_else(|_| "tansu".into());
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the tansu broker ({binary}): {e}. The README's test command installs it; or set AUDITWATCH_TANSU"));
        let bootstrap = format!("127.0.0.1:{port}");
        wait_until("tansu to listen", Duration::from_secs(30), || TcpStream::connect(&bootstrap).is_ok());
        Tansu { child, bootstrap }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let new: Vec<NewTopic> =
        topics.iter().map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1))).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results = runtime
        .block_on(admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))))
        .unwrap();
    for r in results {
        r.unwrap_or_else(|(topic, e)| panic!("creating {topic}: {e}"));
    }
}

pub fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    producer_with(bootstrap, &[])
}

pub fn producer_with(bootstrap: &str, settings: &[(&str, &str)]) -> ThreadedProducer<DefaultProducerContext> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("linger.ms", "5").set("queue.buffering.max.messages", "200000");
    for (k, v) in settings {
        config.set(*k, *v);
    }
    config.create().unwrap()
}

pub fn produce(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &[u8], payload: &[u8]) {
    auditwatch::pipeline::kafka::send_blocking(producer, topic, key, payload).unwrap();
}

/// Waits for every queued message to be acknowledged. The bound only guards against a hang: a
/// broker under a loaded CI machine, taking one record per request, can need minutes.
pub fn flush(producer: &ThreadedProducer<DefaultProducerContext>) {
    producer.flush(Duration::from_secs(600)).unwrap();
}

/// A message read back: key, payload, headers as (name, value).
#[derive(Debug, Clone)]
pub struct Received {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Every message currently in `topic`, all partitions, from the beginning.
pub fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
        remaining += high - low;
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Read at least up to the watermark, then until the topic stays quiet for a second (some
    // brokers report a watermark below the last offset).
    let mut quiet_since = Instant::now();
    while (out.len() as i64) < remaining || quiet_since.elapsed() < Duration::from_secs(1) {
        assert!(Instant::now() < deadline, "read {} of {remaining} messages from {topic}", out.len());
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            quiet_since = Instant::now();
            let m = message.unwrap();
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or(&[])).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Received {
                key: m.key().unwrap_or(&[]).to_vec(),
                payload: m.payload().unwrap_or(&[]).to_vec(),
                headers,
            });
        }
    }
    out
}

/// Offsets committed by `group` for each partition of `topic` (-1 when none).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..partitions)
        .map(|p| match offsets.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

pub fn end_offsets(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    (0..partitions).map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().1).collect()
}

/// GET over plain HTTP; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// A metric's value from Prometheus text (sum over all its series).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_auditwatch")
}

/// `auditwatch replay ARGS` with `stdin` (or none) as its input: (exit success, stdout, stderr).
pub fn replay(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    let mut child = Command::new(binary())
        .arg("replay")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // A replay refused at start exits without reading its input.
        let _ = child.stdin.take().unwrap().write_all(input);
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Generated traffic as lines, with the labels.
pub fn generate(seed: u64, accounts: usize, days: u32) -> (Vec<Vec<u8>>, auditwatch::synthetic::gen::Labels) {
    generate_with(&auditwatch::synthetic::gen::GenOptions { seed, accounts, days, ..Default::default() })
}

pub fn generate_with(
    options: &auditwatch::synthetic::gen::GenOptions,
) -> (Vec<Vec<u8>>, auditwatch::synthetic::gen::Labels) {
    let mut out = Vec::new();
    let labels = auditwatch::synthetic::gen::generate(options, &mut out).unwrap();
    (out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect(), labels)
}

pub fn account_of(line: &[u8]) -> Vec<u8> {
    auditwatch::input::event::decode(line, 1 << 20).map(|e| e.account.as_bytes().to_vec()).unwrap_or_default()
}

pub fn write_file(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// Route the library's logs to the test output (shown for failing tests); `RUST_LOG` filters.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// The service config the mock-cluster tests share: topic `audit.events`, dead letters to
/// `audit.deadletter`, batches of 500, a checkpoint every second, and these `[[outputs]]`.
pub fn service_config(bootstrap: &str, state: &Path, group: &str, outputs: &str) -> auditwatch::config::Config {
    let text = format!(
        r#"
[kafka]
brokers = "{bootstrap}"
group_id = "{group}"
batch_size = 500
[[topics]]
name = "audit.events"
[dead_letter]
topic = "audit.deadletter"
[state]
dir = "{}"
checkpoint_interval = "1s"
{outputs}
"#,
        state.display()
    );
    auditwatch::config::load_from(&text, "test", &[]).unwrap()
}

/// Run a pipeline until `done()` holds, then stop it (cleanly: drain, checkpoint, commit).
pub fn run_until_done(
    config: &auditwatch::config::Config,
    control: &auditwatch::pipeline::Control,
    metrics: std::sync::Arc<auditwatch::admin::metrics::Metrics>,
    done: impl Fn() -> bool + Sync,
) -> auditwatch::pipeline::RunSummary {
    init_logs();
    control.shutdown.store(false, std::sync::atomic::Ordering::Relaxed);
    let pipeline = auditwatch::pipeline::Pipeline::start(
        config,
        auditwatch::detection::pack::load().unwrap(),
        metrics,
        control.clone(),
    )
    .unwrap();
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            // Stop the pipeline whatever happens, so a failure shows instead of a hang.
            let reached = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait_until("the pipeline to handle its share", Duration::from_secs(120), &done)
            }));
            control.shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
            if reached.is_err() {
                panic!("stopped after {} messages", control.handled.load(std::sync::atomic::Ordering::Relaxed));
            }
        });
        let summary = pipeline.run().unwrap();
        watcher.join().unwrap();
        summary
    })
}
