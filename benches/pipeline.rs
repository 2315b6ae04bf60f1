//! Service speed, measured in one run on this machine (`cargo bench --bench pipeline`):
//!
//! 1. consumer overhead: with librdkafka's in-process mock cluster and 1M generated events,
//!    the `run` pipeline (decode, engine, dead letters, alerts, checkpoints) against a bare
//!    consumer loop that only counts messages, on the same topic;
//! 2. alert latency: events produced at 20k/s with failure bursts mixed in; time from the
//!    produce call of the event that completed a burst to the alert's arrival on the alerts
//!    topic (p50, p99);
//! 3. checkpoint: through the barrier, the engine capture (the intake stall) and the durable
//!    write for 100k accounts;
//! 4. against a real broker: a tansu process (from `AUDITWATCH_TANSU` or `PATH`; skipped with a
//!    message when absent), the run path against a bare consumer reading the same topic;
//! 5. a blocked sink: ingestion with a file sink on a FIFO that nobody opens for 60 s, against
//!    the same run without it;
//! 6. a hanging webhook (`hanging-webhook`): ingestion with a webhook output (`timeout =
//!    "60s"`) to a loopback receiver that accepts connections and reads requests but never
//!    answers, against the same run without it;
//! 7. retention (`store`): the run path with a `[store]` against the same run without.
//!
//! The mock cluster keeps only ~5 MB per partition, so the topic has 256 partitions and the
//! traffic comes from 1500 accounts.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};

use auditwatch::admin::metrics::Metrics;
use auditwatch::config::{self, Config};
use auditwatch::detection::engine::{Engine, EngineOptions};
use auditwatch::detection::time::{format_rfc3339, parse_rfc3339, DAY, HOUR, MINUTE};
use auditwatch::input::event::decode;
use auditwatch::pipeline::barrier::Barrier;
use auditwatch::pipeline::{Control, Pipeline};
use auditwatch::state::engine_state::EngineState;
use auditwatch::state::outbox::{Outbox, OutboxOptions};

const PARTITIONS: i32 = 256;

fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .expect("producer")
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &[u8], payload: &[u8]) {
    auditwatch::pipeline::kafka::send_blocking(producer, topic, key, payload).expect("send");
}

fn config(bootstrap: &str, group: &str, state: &std::path::Path, topic: &str) -> Config {
    config_with(bootstrap, group, state, topic, "")
}

/// The bench config with more outputs (TOML `[[outputs]]` tables) after the Kafka one.
fn config_with(bootstrap: &str, group: &str, state: &std::path::Path, topic: &str, outputs: &str) -> Config {
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
{outputs}
"#,
        state.display()
    );
    config::load_from(&text, "bench", &[]).expect("config")
}

/// Wall time of a consuming loop: until its last message, and until its first one (the group
/// join, which both loops pay alike and which would otherwise flatter the slower one). The run
/// path's clean shutdown after the last message (final checkpoint, commit) is timed apart: the
/// bare loop has nothing like it.
#[derive(Clone, Copy)]
struct Timing {
    total: Duration,
    first_message: Duration,
    shutdown: Duration,
}

impl Timing {
    fn after_join(&self) -> Duration {
        self.total - self.first_message
    }
}

/// Print both loops' rates, over the whole run and from the first message on.
fn compare(n: u64, bare: Timing, run: Timing, target: f64) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "  bare consumer loop   {:>10.0} events/s ({:.2} s, first message after {:.2} s)",
        rate(bare.total),
        bare.total.as_secs_f64(),
        bare.first_message.as_secs_f64()
    );
    println!(
        "  auditwatch run path  {:>10.0} events/s ({:.2} s, first message after {:.2} s; then {:.0} ms to shut down)",
        rate(run.total),
        run.total.as_secs_f64(),
        run.first_message.as_secs_f64(),
        run.shutdown.as_secs_f64() * 1000.0
    );
    println!("  ratio                {:>10.2} (target >= {target})", rate(run.total) / rate(bare.total));
    println!(
        "  ratio after the join {:>10.2} (bare {:.0}/s, run {:.0}/s)",
        rate(run.after_join()) / rate(bare.after_join()),
        rate(bare.after_join()),
        rate(run.after_join())
    );
}

fn run_pipeline(config: &Config, stop_at: u64) -> Timing {
    let control = Control::default();
    let metrics = Arc::new(Metrics::new(&config.topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>()));
    let pipeline =
        Pipeline::start(config, auditwatch::detection::pack::load().expect("pack"), metrics, control.clone())
            .expect("start");
    let started = Instant::now();
    let (first_message, last_message) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut first_message = None;
            loop {
                let handled = control.handled.load(Ordering::Relaxed);
                if handled > 0 && first_message.is_none() {
                    first_message = Some(started.elapsed());
                }
                if handled >= stop_at {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            control.shutdown.store(true, Ordering::Relaxed);
            (first_message.unwrap_or_default(), started.elapsed())
        });
        pipeline.run().expect("run");
        watcher.join().expect("watcher")
    });
    Timing { total: last_message, first_message, shutdown: started.elapsed() - last_message }
}

/// A consumer with the same fetch and queue settings as auditwatch's, so only the work per
/// message differs.
fn bare_consumer(bootstrap: &str) -> BaseConsumer {
    let mut config = ClientConfig::new();
    for (key, value) in auditwatch::pipeline::kafka::CONSUMER_DEFAULTS {
        config.set(*key, *value);
    }
    config.set("bootstrap.servers", bootstrap).set("group.id", "bare").create().expect("consumer")
}

/// The bare loop: poll and count until `n` messages arrived; `None` (with a message) if the
/// topic stops short, e.g. because the mock cluster pruned a partition.
fn count_all(consumer: &BaseConsumer, n: u64) -> Option<Timing> {
    let started = Instant::now();
    let mut first_message = None;
    let mut count = 0u64;
    let mut last_progress = Instant::now();
    while count < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            count += u64::from(m.payload().is_some());
            first_message.get_or_insert_with(|| started.elapsed());
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > Duration::from_secs(20) {
            println!("  bare consumer stalled at {count} of {n} messages; skipping this comparison");
            return None;
        }
    }
    Some(Timing {
        total: started.elapsed(),
        first_message: first_message.unwrap_or_default(),
        shutdown: Duration::ZERO,
    })
}

/// A mock cluster whose `events` topic holds up to 1M generated events, spread so that no
/// partition outgrows the mock cluster's ~5 MB. Returns the cluster and the event count.
fn filled_mock_cluster() -> (MockCluster<'static, DefaultProducerContext>, u64) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("events", PARTITIONS, 1).expect("topic");
    for t in ["dead", "alerts"] {
        cluster.create_topic(t, 1, 1).expect("topic");
    }
    let bootstrap = cluster.bootstrap_servers();
    let mut generated = Vec::new();
    // Many accounts over a few days, so that keying by account spreads the events evenly
    // enough that no partition outgrows the mock cluster's ~5 MB.
    auditwatch::synthetic::gen::generate(
        &auditwatch::synthetic::gen::GenOptions {
            seed: 9,
            accounts: 1500,
            days: 2,
            warmup_days: 1,
            ..Default::default()
        },
        &mut generated,
    )
    .expect("gen");
    let lines: Vec<&[u8]> = generated.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(1_000_000).collect();
    let n = lines.len() as u64;
    // Each account stays on one partition (as with keyed producers), and accounts are packed
    // onto partitions greedily by volume, so no partition outgrows the mock cluster's ~5 MB.
    let accounts: Vec<String> =
        lines.iter().map(|l| decode(l, 1 << 20).map(|e| e.account.into_owned()).unwrap_or_default()).collect();
    let mut volume: HashMap<&str, usize> = HashMap::new();
    for (account, line) in accounts.iter().zip(&lines) {
        *volume.entry(account).or_default() += line.len();
    }
    let mut by_volume: Vec<(&str, usize)> = volume.into_iter().collect();
    by_volume.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut load = vec![0usize; PARTITIONS as usize];
    let mut home: HashMap<&str, i32> = HashMap::new();
    for (account, bytes) in by_volume {
        let lightest = (0..load.len()).min_by_key(|&p| load[p]).unwrap_or(0);
        load[lightest] += bytes;
        home.insert(account, lightest as i32);
    }
    let p = producer(&bootstrap);
    for (account, line) in accounts.iter().zip(&lines) {
        let mut record =
            BaseRecord::to("events").key(account.as_bytes()).payload(*line).partition(home[account.as_str()]);
        while let Err((_, back)) = p.send(record) {
            record = back;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    p.flush(Duration::from_secs(60)).expect("flush");
    drop(p);
    let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("probe");
    let largest = (0..PARTITIONS)
        .filter_map(|p| probe.fetch_watermarks("events", p, Duration::from_secs(5)).ok())
        .map(|(low, high)| high - low)
        .max()
        .unwrap_or(0);
    println!("  (largest partition holds {largest} messages)");
    (cluster, n)
}

fn consumer_overhead() {
    let (cluster, n) = filled_mock_cluster();
    let bootstrap = cluster.bootstrap_servers();
    // Bare loop: a consumer that only counts messages.
    let bare = bare_consumer(&bootstrap);
    bare.subscribe(&["events"]).expect("subscribe");
    let Some(bare_time) = count_all(&bare, n) else { return };
    drop(bare);

    let state = std::env::temp_dir().join(format!("auditwatch-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let run_time = run_pipeline(&config(&bootstrap, "run", &state, "events"), n);
    let _ = std::fs::remove_dir_all(&state);
    println!("consumer overhead ({n} events, mock cluster, {PARTITIONS} partitions):");
    compare(n, bare_time, run_time, 0.5);
}

/// The run path with retention against without, alternating, 3 runs each: with a store the
/// pipeline thread appends each decoded event to columns and the checkpoint writer thread
/// writes the files (target: within 10 %).
fn with_store() {
    let (cluster, n) = filled_mock_cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = std::env::temp_dir().join(format!("auditwatch-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..6 {
        let state = dir.join(format!("state-{round}"));
        let stored = round % 2 == 1;
        let store = if stored {
            format!("[store]\ndir = \"{}\"\n", dir.join(format!("store-{round}")).display())
        } else {
            String::new()
        };
        let timing = run_pipeline(&config_with(&bootstrap, &format!("store-{round}"), &state, "events", &store), n);
        let rate = n as f64 / timing.after_join().as_secs_f64();
        if stored {
            with.push(rate)
        } else {
            without.push(rate)
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("run path with retention ({n} events, 3 runs each, alternating):");
    println!("  without a store  {:>10.0} events/s median after the join {:?}", median(&without), runs(&without));
    println!("  with a store     {:>10.0} events/s median after the join {:?}", median(&with), runs(&with));
    println!("  ratio            {:>10.2} (target >= 0.90)", median(&with) / median(&without));
}

/// The median of a few runs, and the runs rounded, for printing.
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn runs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|r| r.round()).collect()
}

/// Ingestion with a sink that blocks for 60 s (a file sink on a FIFO nobody opens until then)
/// against the same run without it; both also write to a plain file and the alerts topic.
/// The measured ingestion lies wholly inside the block.
fn blocked_sink() {
    const BLOCK: Duration = Duration::from_secs(60);
    let (cluster, n) = filled_mock_cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = std::env::temp_dir().join(format!("auditwatch-bench-blocked-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = dir.join("hung.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let plain = |round: usize| {
        format!("[[outputs]]\ntype = \"file\"\npath = \"{}\"\n", dir.join(format!("plain-{round}.jsonl")).display())
    };
    let hung = format!("[[outputs]]\ntype = \"file\"\npath = \"{}\"\n", fifo.display());
    let started = Instant::now();
    let mut free = Vec::new();
    let mut blocked = Vec::new();
    for round in 0..6 {
        let state = dir.join(format!("state-{round}"));
        let with_hung = round % 2 == 1;
        let outputs = if with_hung { format!("{}{hung}", plain(round)) } else { plain(round) };
        let timing = run_pipeline(&config_with(&bootstrap, &format!("blocked-{round}"), &state, "events", &outputs), n);
        let rate = n as f64 / timing.after_join().as_secs_f64();
        if with_hung {
            blocked.push(rate)
        } else {
            free.push(rate)
        }
    }
    assert!(started.elapsed() < BLOCK, "the measured runs must lie inside the block");
    std::thread::sleep(BLOCK.saturating_sub(started.elapsed()));
    // Unblock: the hung sink's workers (left behind by their runs) now deliver their backlog.
    let reader = std::io::BufReader::new(std::fs::File::open(&fifo).expect("open fifo"));
    let mut backlog = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    for line in std::io::BufRead::lines(reader) {
        if line.is_err() || Instant::now() > deadline {
            break;
        }
        backlog += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Medians: single runs on this machine swing by 15%.
    println!("ingestion with a sink blocked for {} s ({n} events, 3 runs each, alternating):", BLOCK.as_secs());
    println!("  without the blocked sink  {:>10.0} events/s median after the join {:?}", median(&free), runs(&free));
    println!(
        "  with the blocked sink     {:>10.0} events/s median after the join {:?}",
        median(&blocked),
        runs(&blocked)
    );
    println!(
        "  drop                      {:>9.1} % (target <= 10 %)",
        100.0 * (1.0 - median(&blocked) / median(&free))
    );
    println!("  after the block the hung sink read {backlog} alert lines of its backlog");
}

/// The secret the hanging-webhook mode's output signs with, set in the environment (the
/// pipeline resolves secrets there) before any thread starts.
const HANGING_SECRET_VAR: &str = "AUDITWATCH_BENCH_WEBHOOK_SECRET";

/// A loopback "receiver" that accepts every connection and reads what comes, but never
/// answers, until `stop` is set. Counts connections and requests (`POST ` lines) it saw.
struct HungReceiver {
    port: u16,
    connections: Arc<std::sync::atomic::AtomicU64>,
    requests: Arc<std::sync::atomic::AtomicU64>,
    /// When each connection was accepted.
    accepted: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HungReceiver {
    fn start() -> HungReceiver {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let (c, r, st, at) = (connections.clone(), requests.clone(), stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        at.lock().unwrap().push(Instant::now());
                        let (r, st) = (r.clone(), st.clone());
                        held.push(std::thread::spawn(move || {
                            use std::io::Read;
                            let mut stream = stream;
                            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                            let mut buf = [0u8; 16 << 10];
                            while !st.load(Ordering::Relaxed) {
                                match stream.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => {
                                        let seen = buf[..n].windows(5).filter(|w| w == b"POST ").count();
                                        r.fetch_add(seen as u64, Ordering::Relaxed);
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                            // Dropping the stream closes the connection, unanswered.
                        }));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
            for h in held {
                let _ = h.join();
            }
        });
        HungReceiver { port, connections, requests, accepted, stop, thread: Some(thread) }
    }

    fn counts(&self) -> (u64, u64) {
        (self.connections.load(Ordering::Relaxed), self.requests.load(Ordering::Relaxed))
    }
}

impl Drop for HungReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Ingestion with a webhook output whose receiver hangs (every request waits out the 60 s
/// timeout), against the same run without it; both also write to a plain file and the alerts
/// topic. Alternating, 3 runs each, medians after the join, like `blocked`.
fn hanging_webhook() {
    const HANG: Duration = Duration::from_secs(60);
    let (cluster, n) = filled_mock_cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = std::env::temp_dir().join(format!("auditwatch-bench-hanging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let receiver = HungReceiver::start();
    let plain = |round: usize| {
        format!("[[outputs]]\ntype = \"file\"\npath = \"{}\"\n", dir.join(format!("plain-{round}.jsonl")).display())
    };
    let hung = format!(
        "[[outputs]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{}/alerts\"\nallow_http = true\nsecrets = [{{ env = \"{HANGING_SECRET_VAR}\" }}]\ntimeout = \"{}s\"\n",
        receiver.port,
        HANG.as_secs()
    );
    let started = Instant::now();
    let mut free = Vec::new();
    let mut hanging = Vec::new();
    let mut shutdowns = Vec::new();
    let mut requests_at = Vec::new();
    let mut overlaps = Vec::new();
    for round in 0..6 {
        let state = dir.join(format!("state-{round}"));
        let with_hung = round % 2 == 1;
        let outputs = if with_hung { format!("{}{hung}", plain(round)) } else { plain(round) };
        let config = config_with(&bootstrap, &format!("hanging-{round}"), &state, "events", &outputs);
        let begun = Instant::now();
        let timing = run_pipeline(&config, n);
        let rate = n as f64 / timing.after_join().as_secs_f64();
        if with_hung {
            // When, in this run, the webhook's first request went out (and hung): the seconds
            // of ingestion after it ran with the sink hanging.
            let ended = begun + (Instant::now() - begun) - timing.shutdown;
            let first = receiver.accepted.lock().unwrap().iter().copied().find(|&t| t >= begun);
            overlaps.push(first.map(|t| (ended.saturating_duration_since(t).as_secs_f64() * 10.0).round() / 10.0));
            hanging.push(rate);
            shutdowns.push(timing.shutdown.as_secs_f64());
            requests_at.push(receiver.counts());
            // Past the timeout the request fails and is retried: the run would no longer lie
            // wholly inside one hang.
            if timing.total >= HANG {
                println!("  (run {round} took {:.0} s, longer than the hang)", timing.total.as_secs_f64());
            }
        } else {
            free.push(rate)
        }
    }
    let elapsed = started.elapsed();
    let alerts = std::fs::read_to_string(dir.join("plain-0.jsonl")).map(|t| t.lines().count()).unwrap_or(0);
    let (connections, requests) = receiver.counts();
    drop(receiver);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "ingestion with a webhook hanging for {} s ({n} events, {alerts} alerts a run, 3 runs each, alternating):",
        HANG.as_secs()
    );
    println!("  without the webhook       {:>10.0} events/s median after the join {:?}", median(&free), runs(&free));
    println!(
        "  with the hanging webhook  {:>10.0} events/s median after the join {:?}",
        median(&hanging),
        runs(&hanging)
    );
    println!(
        "  drop                      {:>9.1} % (target <= 10 %)",
        100.0 * (1.0 - median(&hanging) / median(&free))
    );
    println!(
        "  ingestion seconds after the webhook's first request hung, per run: {overlaps:?} (of {:?} s after the join)",
        hanging.iter().map(|r| (n as f64 / r * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    println!(
        "  shutdown with the hanging webhook {:?} s (the sinks' drain waits a quarter of shutdown_timeout)",
        shutdowns.iter().map(|s| (s * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    println!(
        "  the receiver held {connections} connections and saw {requests} requests, none answered (after each run: {requests_at:?}); all 6 runs took {:.0} s",
        elapsed.as_secs_f64()
    );
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
    let pipeline =
        Pipeline::start(&config, auditwatch::detection::pack::load().expect("pack"), metrics.clone(), control.clone())
            .expect("start");
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    const RATE: u64 = 20_000;
    // 12 s of ~250-byte events keep each of the 16 partitions under 4 MB: past the mock
    // cluster's ~5 MB it starts pruning and slows down, and the bench would time that instead.
    const SECONDS: u64 = 12;
    let reader_ready = std::sync::atomic::AtomicBool::new(false);
    let (latencies, outbox_to_topic) = std::thread::scope(|s| {
        // Read alerts as they arrive.
        let reader = s.spawn(|| {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", "reader")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "5")
                .create()
                .expect("reader");
            c.subscribe(&["alerts"]).expect("subscribe");
            let mut latencies = Vec::new();
            let mut outbox_to_topic = Vec::new();
            // Join the group before traffic starts: an alert waiting for the reader's group join
            // would time the join, not the pipeline.
            while c.assignment().map_or(true, |a| a.count() == 0) {
                let _ = c.poll(Duration::from_millis(50));
            }
            reader_ready.store(true, Ordering::Relaxed);
            let deadline = Instant::now() + Duration::from_secs(SECONDS + 10);
            while Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                    let arrived = Instant::now();
                    let alert: serde_json::Value =
                        serde_json::from_slice(m.payload().unwrap_or(b"{}")).unwrap_or_default();
                    if let Some(id) =
                        alert["evidence"]["event_ids"].as_array().and_then(|ids| ids.last()).and_then(|v| v.as_str())
                    {
                        if let Some(t) = sent_at.lock().unwrap().get(id) {
                            latencies.push(arrived.duration_since(*t));
                            // From the outbox to the topic alone: `detected_at` is stamped
                            // when the alert enters the outbox.
                            let raised = alert["detected_at"]
                                .as_str()
                                .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok());
                            if let Some(raised) = raised {
                                let ms = (chrono::Utc::now() - raised.with_timezone(&chrono::Utc)).num_milliseconds();
                                outbox_to_topic.push(Duration::from_millis(ms.max(0) as u64));
                            }
                        }
                    }
                }
            }
            (latencies, outbox_to_topic)
        });
        // Produce at RATE: steady traffic from 2000 accounts, and every 100 ms a burst of 12
        // failures for a fresh account, which raises one alert on its 10th failure. Start once
        // the pipeline has its partitions (steady state, not the group join).
        s.spawn(|| {
            let waiting = Instant::now();
            while (metrics.ready().is_err() || !reader_ready.load(Ordering::Relaxed))
                && waiting.elapsed() < Duration::from_secs(15)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
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
    let percentiles = |latencies: &[Duration]| {
        let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| ms.get(((ms.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        format!("p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms", pct(0.5), pct(0.99), pct(1.0))
    };
    println!("alert latency at {RATE} events/s for {SECONDS} s (mock cluster, produce -> alerts topic):");
    println!("  alerts {}  {} (target p99 <= 500 ms)", latencies.len(), percentiles(&latencies));
    println!("  of which outbox -> alerts topic (sink worker): {}", percentiles(&outbox_to_topic));
}

fn checkpoint_100k() {
    let mut engine = Engine::new(auditwatch::detection::pack::load().expect("pack"), EngineOptions::default());
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
    // Through the real barrier: the engine and an outbox holding some alerts as participants.
    let dir = std::env::temp_dir().join(format!("auditwatch-bench-ckpt-{}", std::process::id()));
    let accounts = engine.accounts_tracked();
    let mut state = EngineState::new(engine);
    let mut outbox =
        Outbox::open(&dir, "alerts", &["file".to_string()], None, OutboxOptions::default()).expect("outbox");
    for i in 0..1000 {
        outbox.append(&format!("alert-{i}"), b"svc", &[b'x'; 600], &[]).expect("append");
    }
    let mut barrier = Barrier::start(dir.clone(), 0).expect("barrier");
    let mut stalls = Vec::new();
    let mut totals = Vec::new();
    // The engine's buffer is reused from the second round on, as in the service.
    for _ in 0..5 {
        let started = Instant::now();
        let stall =
            barrier.begin(vec![(("audit.events".into(), 0), 1)], &mut [&mut state, &mut outbox], 0).expect("begin");
        let outcome = barrier.finished(true, &mut [&mut state, &mut outbox]).expect("finished");
        outcome.result.expect("durable");
        stalls.push(stall.as_secs_f64() * 1000.0);
        totals.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let size = std::fs::metadata(dir.join(auditwatch::state::checkpoint::FILE_NAME)).map(|m| m.len()).unwrap_or(0);
    drop(barrier);
    let _ = std::fs::remove_dir_all(&dir);
    stalls.sort_by(f64::total_cmp);
    totals.sort_by(f64::total_cmp);
    println!("checkpoint of {accounts} accounts ({:.1} MB), median of 5:", size as f64 / 1e6);
    println!("  intake stall (engine snapshot)      {:.1} ms (target <= 200 ms)", stalls[2]);
    println!("  capture + durable write (fsync)     {:.1} ms (target <= 200 ms)", totals[2]);
}

/// The run path against a bare consumer on a real tansu broker process.
fn tansu_ratio() {
    let binary = std::env::var("AUDITWATCH_TANSU").unwrap_or_else(|_| "tansu".into());
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let url = format!("tcp://127.0.0.1:{port}");
    let Ok(mut broker) = std::process::Command::new(&binary)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        println!("against tansu: skipped, no tansu binary ({binary}); ./test.sh installs it");
        return;
    };
    let bootstrap = format!("127.0.0.1:{port}");
    while std::net::TcpStream::connect(&bootstrap).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("admin");
    let topics: Vec<rdkafka::admin::NewTopic> = [("events", 8), ("dead", 1), ("alerts", 1)]
        .iter()
        .map(|(name, partitions)| {
            rdkafka::admin::NewTopic::new(name, *partitions, rdkafka::admin::TopicReplication::Fixed(1))
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(admin.create_topics(&topics, &rdkafka::admin::AdminOptions::new())).expect("create topics");
    let mut generated = Vec::new();
    auditwatch::synthetic::gen::generate(
        &auditwatch::synthetic::gen::GenOptions {
            seed: 4,
            accounts: 300,
            days: 3,
            warmup_days: 1,
            ..Default::default()
        },
        &mut generated,
    )
    .expect("gen");
    let lines: Vec<&[u8]> = generated.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(300_000).collect();
    let n = lines.len() as u64;
    let p = producer(&bootstrap);
    for line in &lines {
        let key = decode(line, 1 << 20).map(|e| e.account.into_owned()).unwrap_or_default();
        send(&p, "events", key.as_bytes(), line);
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    drop(p);

    let bare = bare_consumer(&bootstrap);
    bare.subscribe(&["events"]).expect("subscribe");
    let Some(bare_time) = count_all(&bare, n) else { return };
    drop(bare);
    let state = std::env::temp_dir().join(format!("auditwatch-bench-tansu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let run_time = run_pipeline(&config(&bootstrap, "run", &state, "events"), n);
    let _ = std::fs::remove_dir_all(&state);
    let _ = broker.kill();
    let _ = broker.wait();
    println!("against tansu ({n} events, 8 partitions, memory storage):");
    compare(n, bare_time, run_time, 0.9);
}

fn main() {
    // `cargo test --benches` runs bench binaries with no arguments in test mode too; only do
    // the work under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // The hanging webhook's signing secret, before any thread starts (set_var is not
    // thread-safe); a key of 24 zero bytes, for benches only.
    std::env::set_var(HANGING_SECRET_VAR, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    // Library logs on stderr, errors only unless `RUST_LOG` says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // `cargo bench --bench pipeline -- checkpoint` runs one part (`store`: retention's cost).
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    if wanted("checkpoint") {
        checkpoint_100k();
    }
    if wanted("overhead") {
        consumer_overhead();
    }
    if wanted("latency") {
        alert_latency();
    }
    if wanted("tansu") {
        tansu_ratio();
    }
    if wanted("blocked") {
        blocked_sink();
    }
    if wanted("hanging-webhook") {
        hanging_webhook();
    }
    if wanted("store") {
        with_store();
    }
}
