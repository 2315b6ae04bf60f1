//! The streaming pipeline behind `auditwatch run` and `auditwatch demo`:
//!
//! ```text
//! Kafka ──poll batch──► decode, enrich ──► Engine ──► alerts outbox ──► a worker per sink
//!          (each topic's   │ bad / late                (durable log)     (stdout, file, Kafka)
//!           format)        ▼
//!                     dead-letter outbox ──► worker ──► dead-letter topic
//! (every event and dead letter also to the store's segments, when `[store]` has a dir)
//! every checkpoint_interval, at a batch boundary: the barrier
//!     capture engine + outboxes + store ─► writer thread: fsync outboxes, write the store's
//!     Parquet files, write checkpoint
//!     ─► participants hear the epoch is durable ─► commit its offsets (OffsetTracker)
//! ```
//!
//! At-least-once: an offset is committed only after a checkpoint holding the state that
//! includes its event is durable, and with it the outbox entries (alerts, dead letters) raised
//! before it. The sinks deliver from the outboxes on their own threads, so a slow or dead sink
//! never stalls intake. Dead letters are also confirmed by the dead-letter topic before their
//! offsets are committed: the topic is on the source cluster, so when it is healthy this costs
//! nothing, and when it is not, the epoch fails (after waiting at most a checkpoint interval)
//! and its offsets stay uncommitted, so no bad message is committed past before it is in the
//! dead-letter topic. On start the checkpoint is restored
//! and each partition assigned to us resumes at the offset the restored state covers
//! ([`offsets::OffsetTracker`]); replayed events give the same alert ids, which the outbox
//! holds already and does not take again.
//!
//! The engine runs on the pipeline thread (it is single-threaded by design, and sees each
//! partition's events in order); a large poll batch is decoded on several threads first
//! and enriched there (`decode`).

pub mod barrier;
mod checkpoints;
mod decode;
pub mod kafka;
pub mod offsets;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use thiserror::Error;
use tracing::{info, warn};

use crate::admin::metrics::Metrics;
use crate::alerting::route::Router;
use crate::alerting::silence::Silences;
use crate::config::{Config, ConfigError, InputFormat};
use crate::detection::alert::Alert;
use crate::detection::definition::Detector;
use crate::input::dead_letter::{DeadLetter, Origin, Rejection};
use crate::input::enrich::Enricher;
use crate::sinks::worker::{self, Plan};
use crate::sinks::{kafka::KafkaSink, Feed, Sink, SinkError};
use crate::state::checkpoint::{self, CheckpointError};
use crate::state::codec::CodecError;
use crate::state::engine_state::EngineState;
use crate::state::outbox::{Outbox, OutboxOptions};
use crate::store::{SourceId, SourceKind, Store, StoreOptions};
use barrier::{Barrier, BarrierError, Participant};
use kafka::ConsumerCallbacks;
use offsets::OffsetTracker;

/// Longest wait in one poll while nothing is fetched, between checks for shutdown and checkpoints.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Outbox names, also their checkpoint sections.
const ALERTS: &str = "alerts";
const DEAD_LETTERS: &str = "dead_letters";

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
    Barrier(#[from] BarrierError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("outbox `{outbox}` in the state directory: {source}")]
    Outbox { outbox: &'static str, source: std::io::Error },
    #[error("store: {0}")]
    Store(std::io::Error),
    #[error("cannot start a sink worker thread: {0}")]
    Spawn(std::io::Error),
}

fn kafka_error(context: &'static str) -> impl FnOnce(KafkaError) -> ServiceError {
    move |source| ServiceError::Kafka { context, source }
}

fn outbox_error(outbox: &'static str) -> impl FnOnce(std::io::Error) -> ServiceError {
    move |source| ServiceError::Outbox { outbox, source }
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
    /// New alerts put in the outbox.
    pub alerts: u64,
    /// Alerts raised again (events replayed after a restart) and already in the outbox.
    pub alerts_already_in_outbox: u64,
    pub checkpoints: u64,
    pub alerts_by_category: [u64; crate::detection::definition::Category::ALL.len()],
    /// False if some sink still had entries to deliver when the pipeline stopped (they go out
    /// after the next start).
    pub sinks_drained: bool,
}

/// Every stateful part of the pipeline: each is a participant of the checkpoint barrier.
struct Stateful {
    engine: EngineState,
    alerts: Outbox,
    dead_letters: Outbox,
    /// Retention, when configured.
    store: Option<Store>,
}

impl Stateful {
    fn participants(&mut self) -> Vec<&mut dyn Participant> {
        let mut all: Vec<&mut dyn Participant> = vec![&mut self.engine, &mut self.alerts, &mut self.dead_letters];
        all.extend(self.store.as_mut().map(|s| s as &mut dyn Participant));
        all
    }
}

pub struct Pipeline<'a> {
    config: &'a Config,
    metrics: Arc<Metrics>,
    control: Control,
    consumer: Arc<kafka::Consumer>,
    state: Stateful,
    barrier: Barrier,
    workers: Vec<JoinHandle<()>>,
    topics: Vec<String>,
    /// Input format of each topic, by topic index.
    formats: Vec<InputFormat>,
    /// Threads a large batch is decoded on (the machine's parallelism).
    decode_threads: usize,
    /// IP enrichment, when `[enrichment]` configures any file.
    enricher: Option<Arc<Enricher>>,
    raised: Vec<Alert>,
    /// The store's id of each (topic index, partition) seen.
    store_sources: HashMap<(usize, i32), SourceId>,
    summary: RunSummary,
    last_checkpoint: Instant,
    last_state_metrics: Instant,
    seen_partition_changes: u64,
    seen_folded: u64,
    seen_untracked_accounts: u64,
    seen_provider_service: u64,
    last_partition_warning: Option<Instant>,
}

impl<'a> Pipeline<'a> {
    /// Restore state, start the sink workers, connect, and subscribe.
    pub fn start(
        config: &'a Config,
        detectors: Vec<Detector>,
        metrics: Arc<Metrics>,
        control: Control,
    ) -> Result<Pipeline<'a>, ServiceError> {
        // Enrichment files are read first: a missing one stops the start before anything else.
        let enricher = config.enrichment.open()?;
        let provider_ranges = enricher.as_ref().is_some_and(|e| e.has_provider_ranges());
        let options = crate::detection::engine::EngineOptions { provider_ranges, ..config.engine.options() };
        let state_dir = &config.state.dir;
        let restored = checkpoint::read(state_dir)?;
        let engine = EngineState::restore(restored.as_ref(), detectors, options)?;
        let offsets: Vec<_> = restored
            .as_ref()
            .map(|cp| cp.offsets.iter().map(|o| ((o.topic.clone(), o.partition), o.next_offset)).collect())
            .unwrap_or_default();
        let section = |name| restored.as_ref().and_then(|cp| cp.section(name));

        // The sinks, each with its worker reading the outbox from its own cursor.
        let names = config.output_names();
        let alerts = Outbox::open(state_dir, ALERTS, &names, section(ALERTS), OutboxOptions::default())
            .map_err(outbox_error(ALERTS))?;
        let dead_letter_sink = format!("kafka-{}", config.dead_letter.topic);
        // A checkpoint in flight, the final one and the sinks' drain each get at most a quarter
        // of the shutdown time, so a clean stop fits in it even with the dead-letter topic down.
        let confirm_wait = Duration::from_millis(
            (config.state.checkpoint_interval.millis()).min(config.state.shutdown_timeout.millis() / 4) as u64,
        );
        let dead_letters = Outbox::open(
            state_dir,
            DEAD_LETTERS,
            std::slice::from_ref(&dead_letter_sink),
            section(DEAD_LETTERS),
            OutboxOptions { confirm_before_commit: Some(confirm_wait), ..OutboxOptions::default() },
        )
        .map_err(outbox_error(DEAD_LETTERS))?;
        let mut workers = Vec::new();
        let router = Arc::new(Router::new(config).map_err(|reason| SinkError::Open { sink: "routes".into(), reason })?);
        for (output, name) in config.outputs.iter().zip(&names) {
            let plan =
                Plan { router: router.clone(), silences: Silences::new(config.silences_file()), mask: output.masked() };
            let sink = Sink::open(output, name, config)?;
            workers.push(Self::spawn_worker(sink, &alerts, name, &metrics, state_dir, Some(plan))?);
        }
        let dead_letter_kafka = Sink::Feed(Feed::Kafka(KafkaSink::new(config, &config.dead_letter.topic)?));
        workers.push(Self::spawn_worker(
            dead_letter_kafka,
            &dead_letters,
            &dead_letter_sink,
            &metrics,
            state_dir,
            None,
        )?);
        if let Some(cp) = &restored {
            info!(epoch = cp.epoch, accounts = engine.engine.accounts_tracked(), events = engine.engine.stats().events, offsets = ?cp.offsets, "restored checkpoint");
        }
        let barrier = Barrier::start(state_dir.clone(), restored.as_ref().map_or(0, |cp| cp.epoch))?;
        let store = match &config.store.dir {
            Some(dir) => {
                let options = StoreOptions {
                    roll_bytes: config.store.roll_bytes,
                    roll_age: Duration::from_millis(config.store.roll_age.millis() as u64),
                    retention: config.store.retention.map(|r| Duration::from_millis(r.millis() as u64)),
                };
                Some(Store::open(dir, options).map_err(ServiceError::Store)?)
            }
            None => None,
        };

        let callbacks =
            ConsumerCallbacks::new(metrics.clone(), OffsetTracker::restored(offsets), config.kafka.batch_size as i64);
        let consumer: kafka::Consumer = kafka::client_config(config, true)?
            .create_with_context(callbacks)
            .map_err(kafka_error("creating the consumer"))?;
        let topics: Vec<String> = config.topics.iter().map(|t| t.name.clone()).collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(kafka_error("subscribing"))?;
        info!(topics = ?topics, group = %config.kafka.group_id, "subscribed");

        let seen_partition_changes = engine.engine.stats().account_partition_changes;
        let seen_folded = engine.engine.stats().folded_repeats;
        let seen_untracked_accounts = engine.engine.stats().untracked_account_events;
        let seen_provider_service = engine.engine.stats().provider_service_events;
        Ok(Pipeline {
            config,
            metrics,
            control,
            consumer: Arc::new(consumer),
            state: Stateful { engine, alerts, dead_letters, store },
            barrier,
            workers,
            topics,
            formats: config.topics.iter().map(|t| t.format).collect(),
            decode_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            enricher,
            raised: Vec::new(),
            store_sources: HashMap::new(),
            summary: RunSummary::default(),
            last_checkpoint: Instant::now(),
            last_state_metrics: Instant::now() - Duration::from_secs(60),
            seen_partition_changes,
            seen_folded,
            seen_untracked_accounts,
            seen_provider_service,
            last_partition_warning: None,
        })
    }

    fn spawn_worker(
        sink: Sink,
        outbox: &Outbox,
        name: &str,
        metrics: &Metrics,
        state_dir: &std::path::Path,
        plan: Option<Plan>,
    ) -> Result<JoinHandle<()>, ServiceError> {
        let dir = state_dir.join("outbox").join(outbox.name());
        worker::spawn(sink, outbox.reader(name), metrics.sink(name), &dir, plan).map_err(ServiceError::Spawn)
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
            self.after_batch(&mut touched)?;
            self.checkpoint_finished(false, CommitMode::Async);
            // A full store waits for the checkpoint in flight: when its files are written slower
            // than events arrive, intake slows down instead of memory growing.
            if self.barrier.in_flight() && self.state.store.as_ref().is_some_and(Store::is_full) {
                self.checkpoint_finished(true, CommitMode::Async);
            }
            let store_due = self.state.store.as_ref().is_some_and(Store::wants_checkpoint);
            if !self.barrier.in_flight() && (store_due || self.last_checkpoint.elapsed() >= interval) {
                self.begin_checkpoint()?;
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
        // A handle of its own, so events may borrow from it while `self` handles them.
        let enricher = self.enricher.clone();
        let decoded =
            decode::decode_batch(&inputs, enricher.as_deref(), self.config.engine.max_event_bytes, self.decode_threads);
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
        // The event is kept past the engine for the store.
        let (event, outcome) = match decoded {
            Ok(event) => {
                let outcome = self
                    .state
                    .engine
                    .engine
                    .process_from(&event, Some(partition as u32), &mut self.raised)
                    .map_err(Rejection::Late);
                (Some(event), outcome)
            }
            Err(e) => (None, Err(Rejection::Decode(e))),
        };
        let time = event.as_ref().map(|event| event.time);
        match outcome {
            Ok(()) => {
                self.metrics.event(topic_index);
                self.summary.events += 1;
                if let (Some((store, source)), Some(event)) = (self.store_source(topic_index, message), &event) {
                    store.event(source, message.offset(), event, message.payload().unwrap_or(&[]));
                }
            }
            Err(rejection) => {
                self.metrics.decode_error(rejection.kind());
                self.dead_letter(message, &rejection)?;
                if let Some((store, source)) = self.store_source(topic_index, message) {
                    // A dead letter's day: its event's time when it has one, else when it arrived.
                    let time = time.or(message.timestamp().to_millis());
                    store.dead_letter(source, message.offset(), time, &rejection, message.payload().unwrap_or(&[]));
                }
            }
        }
        touched.insert((topic_index, partition), message.offset() + 1);
        self.summary.messages += 1;
        self.control.handled.fetch_add(1, Ordering::Relaxed);
        for alert in std::mem::take(&mut self.raised) {
            if let Some((store, source)) = self.store_source(topic_index, message) {
                store.alert(source, message.offset(), &alert);
            }
            self.raise(alert)?;
        }
        Ok(())
    }

    /// The store and its id of the message's partition, when there is a store.
    fn store_source(&mut self, topic_index: usize, message: &BorrowedMessage<'_>) -> Option<(&mut Store, SourceId)> {
        let store = self.state.store.as_mut()?;
        let partition = message.partition();
        let source = *self.store_sources.entry((topic_index, partition)).or_insert_with(|| {
            let kind = SourceKind::Kafka { topic: self.topics[topic_index].clone(), partition };
            store.source(kind, self.formats[topic_index])
        });
        Some((store, source))
    }

    fn dead_letter(&mut self, message: &BorrowedMessage<'_>, rejection: &Rejection) -> Result<(), ServiceError> {
        let raw = message.payload().unwrap_or(&[]);
        let origin = Origin::Kafka { topic: message.topic(), partition: message.partition(), offset: message.offset() };
        let dead = DeadLetter { rejection, origin, raw };
        let headers = dead.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.state
            .dead_letters
            .append(&dead.id(), message.key().unwrap_or(&[]), raw, &headers)
            .map_err(outbox_error(DEAD_LETTERS))?;
        self.metrics.dead_letter();
        self.summary.dead_letters += 1;
        Ok(())
    }

    /// Put a new alert in the outbox, stamped with the wall-clock time it was raised.
    fn raise(&mut self, alert: Alert) -> Result<(), ServiceError> {
        let body = crate::sinks::alert_body(&alert);
        if !self.state.alerts.append(&alert.id, alert.account.as_bytes(), &body, &[]).map_err(outbox_error(ALERTS))? {
            self.summary.alerts_already_in_outbox += 1;
            return Ok(());
        }
        self.metrics.alert(alert.category.as_str(), alert.severity.as_str());
        self.summary.alerts += 1;
        self.summary.alerts_by_category[alert.category.index()] += 1;
        Ok(())
    }

    fn after_batch(&mut self, touched: &mut HashMap<(usize, i32), i64>) -> Result<(), ServiceError> {
        // The sinks see this batch's alerts and dead letters now (durable at the next barrier).
        self.state.alerts.publish().map_err(outbox_error(ALERTS))?;
        self.state.dead_letters.publish().map_err(outbox_error(DEAD_LETTERS))?;
        if !touched.is_empty() {
            let mut offsets = self.consumer.context().offsets();
            for ((topic_index, partition), next) in touched.drain() {
                offsets.apply(&(self.topics[topic_index].clone(), partition), next);
            }
        }
        let stats = self.state.engine.engine.stats();
        self.metrics.alerts_folded(stats.folded_repeats - self.seen_folded);
        self.seen_folded = stats.folded_repeats;
        self.metrics.untracked_account_events(stats.untracked_account_events - self.seen_untracked_accounts);
        self.seen_untracked_accounts = stats.untracked_account_events;
        self.metrics.provider_service_events(stats.provider_service_events - self.seen_provider_service);
        self.seen_provider_service = stats.provider_service_events;
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
        if self.last_state_metrics.elapsed() >= Duration::from_secs(1) {
            let engine = &self.state.engine.engine;
            self.metrics.set_state(
                engine.accounts_tracked() as u64,
                engine.credentials_tracked() as u64,
                engine.state_bytes(),
            );
            if let Some(store) = &self.state.store {
                self.metrics.set_store_partitions_expired(store.partitions_expired());
            }
            for outbox in [&self.state.alerts, &self.state.dead_letters] {
                self.metrics.set_outbox_bytes(outbox.name(), outbox.bytes_on_disk());
                for (sink, pending) in outbox.pending() {
                    self.metrics.sink(&sink).pending.store(pending, Ordering::Relaxed);
                }
            }
            self.last_state_metrics = Instant::now();
        }
        Ok(())
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
