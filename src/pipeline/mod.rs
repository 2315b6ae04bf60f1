//! The streaming pipeline behind `auditwatch run` and `auditwatch demo`:
//!
//! ```text
//! Kafka ──poll batch──► decode ──► Engine ──► ledger (skip delivered ids) ──► outputs
//!          (each topic's   │ bad / late                                       (stdout, file, Kafka)
//!           format)        ▼
//!                   dead-letter topic (original bytes, reason in headers)
//! every checkpoint_interval: flush outputs ─► snapshot engine + offsets + ledger
//!                            ─► background writer (temp, fsync, rename) ─► commit offsets
//! ```
//!
//! At-least-once: an offset is committed only after a checkpoint holding the state that
//! includes its event is durable, and only after the alerts raised before it were flushed.
//! On start the checkpoint is restored and each partition assigned to us resumes at the offset
//! the restored state covers (see `kafka::ConsumerCallbacks::rebalance`). Replayed events give the same alert ids,
//! and the ledger keeps delivered ones from going out twice.
//!
//! The engine runs on the pipeline thread (it is single-threaded by design, and sees each
//! partition's events in order); a large poll batch is decoded on several threads first
//! (`decode`). The intake stall of a checkpoint is the time to encode the engine, the file I/O
//! happens on a writer thread.

mod decode;
pub mod kafka;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::{Message, Offset, TopicPartitionList};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::admin::metrics::Metrics;
use crate::config::{Config, ConfigError, InputFormat, OutputConfig};
use crate::detection::alert::Alert;
use crate::detection::definition::Detector;
use crate::detection::engine::{Engine, EngineOptions};
use crate::replay::Rejection;
use crate::sinks::{send_blocking, OutputError, Outputs};
use crate::state::checkpoint::{self, Checkpoint, CheckpointError, PartitionOffset};
use crate::state::codec::{CodecError, Reader, Writer};
use crate::state::ledger::AlertLedger;
use kafka::{ConsumerCallbacks, Producer, ProducerCallbacks};

/// Alert ids remembered for deduplication across restarts.
const LEDGER_CAPACITY: usize = 100_000;
/// Longest wait in one poll while nothing is fetched, between checks for shutdown and checkpoints.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Longest wait for the producer to acknowledge alerts and dead letters before a checkpoint.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("kafka: {context}: {source}")]
    Kafka { context: &'static str, source: KafkaError },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint does not hold a valid engine state: {0}")]
    State(#[from] CodecError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("alert ledger in the state directory: {0}")]
    Ledger(#[from] std::io::Error),
}

fn kafka_error(context: &'static str) -> impl FnOnce(KafkaError) -> ServiceError {
    move |source| ServiceError::Kafka { context, source }
}

/// Handles for whoever drives the pipeline (signals, the demo).
#[derive(Clone, Default)]
pub struct Control {
    /// Set to stop intake; the pipeline then drains, checkpoints, commits and returns.
    pub shutdown: Arc<AtomicBool>,
    /// Messages handled so far (events and dead letters).
    pub handled: Arc<AtomicU64>,
}

/// What a run did, for logs and the demo.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub messages: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub alerts_delivered: u64,
    pub alerts_suppressed_as_delivered: u64,
    pub checkpoints: u64,
    pub alerts_by_category: [u64; 4],
}

struct Job {
    checkpoint: Checkpoint,
    started: Instant,
}

/// The offsets a durable checkpoint covers, how long it took, and its buffer back for reuse
/// (a fresh 40+ MB buffer would page-fault its way through every checkpoint).
type JobResult = Result<(Vec<PartitionOffset>, Duration, Vec<u8>), CheckpointError>;

pub struct Pipeline<'a> {
    config: &'a Config,
    metrics: Arc<Metrics>,
    control: Control,
    consumer: Arc<kafka::Consumer>,
    producer: Arc<Producer>,
    engine: Engine,
    outputs: Outputs,
    ledger: AlertLedger,
    topics: Vec<String>,
    /// Input format of each topic, by topic index.
    formats: Vec<InputFormat>,
    /// Threads a large batch is decoded on (the machine's parallelism).
    decode_threads: usize,
    alerts: Vec<Alert>,
    /// Alerts handed to the outputs but not yet confirmed delivered (see `AlertLedger`).
    unconfirmed: Vec<String>,
    summary: RunSummary,
    jobs: SyncSender<Job>,
    results: Receiver<JobResult>,
    writer: Option<JoinHandle<()>>,
    in_flight: bool,
    spare: Vec<u8>,
    last_checkpoint: Instant,
    last_state_metrics: Instant,
    seen_partition_changes: u64,
    seen_folded: u64,
    last_partition_warning: Option<Instant>,
}

impl<'a> Pipeline<'a> {
    /// Restore state, connect, and subscribe.
    pub fn start(
        config: &'a Config,
        detectors: Vec<Detector>,
        metrics: Arc<Metrics>,
        control: Control,
    ) -> Result<Pipeline<'a>, ServiceError> {
        let options = EngineOptions {
            max_accounts: config.engine.max_accounts,
            max_credentials: config.engine.max_credentials,
            idle_expiry: config.engine.idle_expiry,
            allowed_lateness: config.engine.allowed_lateness,
            ..EngineOptions::default()
        };
        let state_dir = &config.state.dir;
        let restored = checkpoint::read(state_dir)?;
        let (engine, offsets, delivered) = match restored {
            Some(cp) => {
                let engine = Engine::restore(detectors, options, &mut Reader::new(&cp.engine))?;
                info!(accounts = engine.accounts_tracked(), events = engine.stats().events, offsets = ?cp.offsets, alerts_remembered = cp.delivered.len(), "restored checkpoint");
                let offsets = cp.offsets.into_iter().map(|o| ((o.topic, o.partition), o.next_offset)).collect();
                (engine, offsets, cp.delivered)
            }
            None => (Engine::new(detectors, options), BTreeMap::new(), Vec::new()),
        };
        let ledger = AlertLedger::open(state_dir, LEDGER_CAPACITY, delivered)?;

        let producer: Producer = kafka::client_config(config, false)?
            .create_with_context(ProducerCallbacks::default())
            .map_err(kafka_error("creating the producer"))?;
        let producer = Arc::new(producer);
        let needs_producer = config.outputs.iter().any(|o| matches!(o, OutputConfig::Kafka { .. }));
        let outputs = Outputs::open(&config.outputs, needs_producer.then(|| producer.clone()))?;

        let callbacks = ConsumerCallbacks::new(metrics.clone(), config.kafka.batch_size as i64);
        // Resume exactly where the checkpointed state stops (see ConsumerCallbacks::rebalance).
        lock(&callbacks.resume).clone_from(&offsets);
        lock(&callbacks.durable).clone_from(&offsets);
        let consumer: kafka::Consumer = kafka::client_config(config, true)?
            .create_with_context(callbacks)
            .map_err(kafka_error("creating the consumer"))?;
        let topics: Vec<String> = config.topics.iter().map(|t| t.name.clone()).collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(kafka_error("subscribing"))?;
        info!(topics = ?topics, group = %config.kafka.group_id, "subscribed");
        let consumer = Arc::new(consumer);

        let (jobs, job_rx) = mpsc::sync_channel::<Job>(1);
        let (result_tx, results) = mpsc::channel::<JobResult>();
        let dir = state_dir.clone();
        let writer = std::thread::Builder::new()
            .name("checkpoint-writer".into())
            .spawn(move || {
                for job in job_rx {
                    let offsets = job.checkpoint.offsets.clone();
                    let result = checkpoint::write(&dir, &job.checkpoint)
                        .map(|()| (offsets, job.started.elapsed(), job.checkpoint.engine));
                    if result_tx.send(result).is_err() {
                        break;
                    }
                }
            })
            .map_err(ServiceError::Ledger)?;

        let seen_partition_changes = engine.stats().account_partition_changes;
        let seen_folded = engine.stats().folded_repeats;
        Ok(Pipeline {
            config,
            metrics,
            control,
            consumer,
            producer,
            engine,
            outputs,
            ledger,
            topics,
            formats: config.topics.iter().map(|t| t.format).collect(),
            decode_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            alerts: Vec::new(),
            unconfirmed: Vec::new(),
            summary: RunSummary::default(),
            jobs,
            results,
            writer: Some(writer),
            in_flight: false,
            spare: Vec::new(),
            last_checkpoint: Instant::now(),
            last_state_metrics: Instant::now() - Duration::from_secs(60),
            seen_partition_changes,
            seen_folded,
            last_partition_warning: None,
        })
    }

    /// Consume until `control.shutdown` is set, then drain, checkpoint, commit and return.
    pub fn run(mut self) -> Result<RunSummary, ServiceError> {
        let batch_size = self.config.kafka.batch_size;
        let interval = Duration::from_millis(self.config.state.checkpoint_interval.millis() as u64);
        // A second handle, so a message can borrow the consumer while the pipeline handles it.
        let consumer = self.consumer.clone();
        // Next offsets read in this batch, by (topic index, partition): no allocation per message.
        let mut touched: HashMap<(usize, i32), i64> = HashMap::new();
        let mut batch = Vec::with_capacity(batch_size);
        while !self.control.shutdown.load(Ordering::Relaxed) {
            // A batch is what is already fetched, up to `batch_size`: under load it fills (and
            // is decoded in parallel), on a quiet topic it is handled at once. Wait only while
            // nothing at all has arrived, briefly, to check for shutdown and run checkpoints.
            while batch.len() < batch_size {
                let message = match consumer.poll(Duration::ZERO) {
                    Some(message) => Some(message),
                    None if batch.is_empty() => consumer.poll(IDLE_WAIT),
                    None => break,
                };
                match message {
                    None => break,
                    Some(Ok(message)) => batch.push(message),
                    Some(Err(error)) => {
                        warn!(%error, "consumer error");
                        break;
                    }
                }
            }
            self.handle_batch(&batch, &mut touched)?;
            // Hand the messages back to librdkafka before waiting for more.
            batch.clear();
            self.after_batch(&mut touched);
            self.collect_checkpoint_results()?;
            if !self.in_flight && self.last_checkpoint.elapsed() >= interval {
                self.start_checkpoint()?;
            }
        }
        info!("shutting down: draining and writing the final checkpoint");
        self.finish()
    }

    fn handle_batch(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        touched: &mut HashMap<(usize, i32), i64>,
    ) -> Result<(), ServiceError> {
        let topic_indexes: Vec<usize> =
            batch.iter().map(|m| self.topics.iter().position(|t| t == m.topic()).unwrap_or(0)).collect();
        let inputs: Vec<(InputFormat, &[u8])> =
            batch.iter().zip(&topic_indexes).map(|(m, &t)| (self.formats[t], m.payload().unwrap_or(&[]))).collect();
        let decoded = decode::decode_batch(&inputs, self.config.engine.max_event_bytes, self.decode_threads);
        for ((message, topic_index), decoded) in batch.iter().zip(topic_indexes).zip(decoded) {
            self.handle(message, topic_index, decoded, touched)?;
        }
        Ok(())
    }

    fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        topic_index: usize,
        decoded: decode::Decoded<'_>,
        touched: &mut HashMap<(usize, i32), i64>,
    ) -> Result<(), ServiceError> {
        let partition = message.partition();
        let outcome = match decoded {
            Ok(event) => {
                self.engine.process_from(&event, Some(partition as u32), &mut self.alerts).map_err(Rejection::Late)
            }
            Err(e) => Err(Rejection::Decode(e)),
        };
        match outcome {
            Ok(()) => {
                self.metrics.event(topic_index);
                self.summary.events += 1;
            }
            Err(rejection) => {
                self.metrics.decode_error(rejection.kind());
                self.dead_letter(message, &rejection)?;
            }
        }
        touched.insert((topic_index, partition), message.offset() + 1);
        self.summary.messages += 1;
        self.control.handled.fetch_add(1, Ordering::Relaxed);
        for alert in std::mem::take(&mut self.alerts) {
            self.deliver(alert)?;
        }
        Ok(())
    }

    fn dead_letter(&mut self, message: &BorrowedMessage<'_>, rejection: &Rejection) -> Result<(), ServiceError> {
        let (partition, offset) = (message.partition().to_string(), message.offset().to_string());
        let field = match rejection {
            Rejection::Decode(e) => e.field.clone().unwrap_or_default(),
            Rejection::Late(_) => "time".to_string(),
        };
        let reason = rejection.reason();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "auditwatch.reason", value: Some(reason.as_str()) })
            .insert(Header { key: "auditwatch.kind", value: Some(rejection.kind()) })
            .insert(Header { key: "auditwatch.field", value: Some(field.as_str()) })
            .insert(Header { key: "auditwatch.source.topic", value: Some(message.topic()) })
            .insert(Header { key: "auditwatch.source.partition", value: Some(partition.as_str()) })
            .insert(Header { key: "auditwatch.source.offset", value: Some(offset.as_str()) });
        send_blocking(
            &self.producer,
            &self.config.dead_letter.topic,
            message.key().unwrap_or(&[]),
            message.payload().unwrap_or(&[]),
            Some(headers),
        )
        .map_err(kafka_error("sending to the dead-letter topic"))?;
        self.metrics.dead_letter();
        self.summary.dead_letters += 1;
        Ok(())
    }

    fn deliver(&mut self, alert: Alert) -> Result<(), ServiceError> {
        if self.ledger.contains(&alert.id) || self.unconfirmed.contains(&alert.id) {
            self.summary.alerts_suppressed_as_delivered += 1;
            return Ok(());
        }
        self.outputs.deliver(&alert)?;
        // Recorded in the ledger once the outputs confirm it, at the next checkpoint.
        self.unconfirmed.push(alert.id.clone());
        self.metrics.alert(alert.category.as_str(), severity_name(alert.severity));
        self.summary.alerts_delivered += 1;
        self.summary.alerts_by_category[crate::detection::engine::category_index(alert.category)] += 1;
        Ok(())
    }

    fn after_batch(&mut self, touched: &mut HashMap<(usize, i32), i64>) {
        if !touched.is_empty() {
            // Where the state stops: what the next checkpoint records, and where a partition
            // reassigned to us later resumes.
            let mut resume = lock(&self.consumer.context().resume);
            for ((topic_index, partition), next) in touched.drain() {
                resume.insert((self.topics[topic_index].clone(), partition), next);
            }
        }
        let stats = self.engine.stats();
        self.metrics.alerts_folded(stats.folded_repeats - self.seen_folded);
        self.seen_folded = stats.folded_repeats;
        let changes = stats.account_partition_changes - self.seen_partition_changes;
        if changes > 0 {
            for _ in 0..changes {
                self.metrics.account_partition_change();
            }
            self.seen_partition_changes = stats.account_partition_changes;
            // Producers should key by account; say so, but not on every message.
            if self.last_partition_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                warn!(total = stats.account_partition_changes, "accounts seen on more than one partition: key audit events by account so each account's state stays in one place");
                self.last_partition_warning = Some(Instant::now());
            }
        }
        if self.last_state_metrics.elapsed() >= Duration::from_secs(5) {
            self.metrics.set_state(
                self.engine.accounts_tracked() as u64,
                self.engine.credentials_tracked() as u64,
                self.engine.state_bytes(),
            );
            self.last_state_metrics = Instant::now();
        }
    }

    fn snapshot(&mut self) -> Result<Job, ServiceError> {
        let started = Instant::now();
        self.outputs.flush(FLUSH_TIMEOUT)?;
        self.ledger.record(&std::mem::take(&mut self.unconfirmed))?;
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        let mut w = Writer { buf };
        self.engine.save(&mut w);
        let delivered = self.ledger.begin_checkpoint()?;
        // The rebalance callback may have moved a partition past the state (see
        // `ConsumerCallbacks::resume`), so the offsets come from there.
        let offsets = lock(&self.consumer.context().resume)
            .iter()
            .map(|((topic, partition), next)| PartitionOffset {
                topic: topic.clone(),
                partition: *partition,
                next_offset: *next,
            })
            .collect();
        Ok(Job { checkpoint: Checkpoint { written_at_unix_ms: unix_ms(), offsets, delivered, engine: w.buf }, started })
    }

    fn start_checkpoint(&mut self) -> Result<(), ServiceError> {
        let job = self.snapshot()?;
        self.in_flight = true;
        self.last_checkpoint = Instant::now();
        if self.jobs.send(job).is_err() {
            error!("checkpoint writer stopped");
            self.in_flight = false;
        }
        Ok(())
    }

    fn collect_checkpoint_results(&mut self) -> Result<(), ServiceError> {
        loop {
            match self.results.try_recv() {
                Ok(result) => self.checkpoint_finished(result, CommitMode::Async),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return Ok(()),
            }
        }
    }

    fn checkpoint_finished(&mut self, result: JobResult, mode: CommitMode) {
        self.in_flight = false;
        match result {
            Ok((offsets, took, buffer)) => {
                self.spare = buffer;
                self.metrics.checkpoint_done(took, unix_ms());
                self.summary.checkpoints += 1;
                if let Err(error) = self.ledger.end_checkpoint() {
                    warn!(%error, "could not remove the alert log covered by the checkpoint");
                }
                self.commit(&offsets, mode);
            }
            Err(error) => {
                self.metrics.checkpoint_failed();
                error!(%error, "checkpoint failed; offsets stay uncommitted and the next interval tries again");
            }
        }
    }

    /// Commit the checkpointed offsets of the partitions this instance still owns; a partition
    /// taken away later gets them committed on its way out (see `ConsumerCallbacks`).
    fn commit(&self, offsets: &[PartitionOffset], mode: CommitMode) {
        lock(&self.consumer.context().durable)
            .extend(offsets.iter().map(|o| ((o.topic.clone(), o.partition), o.next_offset)));
        let owned = self.consumer.assignment().ok();
        let mine: BTreeMap<(String, i32), i64> = offsets
            .iter()
            .filter(|o| owned.as_ref().is_none_or(|a| a.find_partition(&o.topic, o.partition).is_some()))
            .map(|o| ((o.topic.clone(), o.partition), o.next_offset))
            .collect();
        if mine.is_empty() {
            return;
        }
        match partition_list(&mine) {
            Ok(tpl) => {
                if let Err(error) = self.consumer.commit(&tpl, mode) {
                    warn!(%error, "offset commit failed; the next checkpoint commits again");
                }
            }
            Err(error) => warn!(%error, "could not build the offset list to commit"),
        }
    }

    fn finish(mut self) -> Result<RunSummary, ServiceError> {
        if self.in_flight {
            if let Ok(result) = self.results.recv() {
                self.checkpoint_finished(result, CommitMode::Sync);
            }
        }
        let job = self.snapshot()?;
        let offsets = job.checkpoint.offsets.clone();
        checkpoint::write(&self.config.state.dir, &job.checkpoint)?;
        self.metrics.checkpoint_done(job.started.elapsed(), unix_ms());
        self.summary.checkpoints += 1;
        self.ledger.end_checkpoint()?;
        self.commit(&offsets, CommitMode::Sync);
        drop(self.jobs);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        info!(
            events = self.summary.events,
            engine_events = self.engine.stats().events,
            ?offsets,
            dead_letters = self.summary.dead_letters,
            alerts = self.summary.alerts_delivered,
            "stopped cleanly"
        );
        Ok(self.summary)
    }
}

fn partition_list(offsets: &BTreeMap<(String, i32), i64>) -> Result<TopicPartitionList, ServiceError> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))
            .map_err(kafka_error("building the offset list"))?;
    }
    Ok(tpl)
}

/// The offset maps stay whole even if a holder panicked (each update is one insert), and a panic
/// inside a librdkafka callback aborts the process anyway.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn severity_name(severity: crate::detection::definition::Severity) -> &'static str {
    use crate::detection::definition::Severity::*;
    match severity {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
