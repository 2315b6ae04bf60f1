//! The Kafka edge: client settings (for the consumer and for the sinks' producers) and the
//! consumer's callbacks (rebalance, commits, statistics, logs).
//!
//! Consumer settings are chosen for throughput with bounded latency: offsets are never
//! committed automatically (the pipeline commits only what a checkpoint covers), fetches wait
//! up to 100 ms for 64 KiB, and the local queue holds up to 64 MiB. When that queue is full,
//! librdkafka backs a partition's next fetch off for `fetch.queue.backoff.ms` (1 s by default);
//! at full speed that emptied the queue and idled the pipeline for half a second at a time
//! (1M events: 116k/s with the default, 175k/s with 20 ms). Settings under
//! `[kafka.client]` in the config override these defaults; secrets come from `[kafka.secrets]`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::Offset;
use rdkafka::{ClientConfig, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::offsets::OffsetTracker;
use crate::admin::metrics::Metrics;
use crate::config::Config;
use crate::lock::lock;

pub type Consumer = BaseConsumer<ConsumerCallbacks>;

/// Longest wait for the group's committed offsets while partitions are being assigned.
const COMMITTED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Tuned defaults; the config's `[kafka.client]` wins over these.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("enable.partition.eof", "false"),
    ("fetch.min.bytes", "65536"),
    ("fetch.wait.max.ms", "100"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "4194304"),
    ("queued.min.messages", "200000"),
    ("queued.max.messages.kbytes", "65536"),
    ("fetch.queue.backoff.ms", "20"),
    ("statistics.interval.ms", "2000"),
    ("session.timeout.ms", "30000"),
];

const PRODUCER_DEFAULTS: &[(&str, &str)] =
    &[("acks", "all"), ("linger.ms", "5"), ("queue.buffering.max.messages", "200000"), ("message.timeout.ms", "60000")];

/// Client settings for the consumer or the producer, secrets resolved from the environment.
pub fn client_config(config: &Config, consumer: bool) -> Result<ClientConfig, crate::config::ConfigError> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka.brokers);
    client.set("client.id", "auditwatch");
    let defaults = if consumer { CONSUMER_DEFAULTS } else { PRODUCER_DEFAULTS };
    for (key, value) in defaults {
        client.set(*key, *value);
    }
    if consumer {
        client.set("group.id", &config.kafka.group_id);
    }
    let env = |name: &str| std::env::var(name).ok();
    let properties = config.kafka.client_properties(&env).map_err(crate::config::ConfigError::Invalid)?;
    for (key, value) in properties {
        // Consumer-only settings would only make the producer log warnings, and vice versa.
        if !consumer && is_consumer_only(&key) {
            continue;
        }
        client.set(key, value.expose());
    }
    client.set_log_level(RDKafkaLogLevel::Warning);
    Ok(client)
}

fn is_consumer_only(key: &str) -> bool {
    CONSUMER_DEFAULTS.iter().any(|(k, _)| *k == key)
        || key.starts_with("group.")
        || key.starts_with("fetch.")
        || key.starts_with("queued.")
}

/// Consumer callbacks: assigned partitions resume where the engine's state stops (through the
/// [`OffsetTracker`], the one owner of offsets), revoked ones get their durable offsets
/// committed on the way out, assignment and lag go to the metrics, librdkafka logs to tracing.
pub struct ConsumerCallbacks {
    pub metrics: Arc<Metrics>,
    pub offsets: Mutex<OffsetTracker>,
    /// Partitions currently assigned, with the lag last reported for each (-1 = unknown).
    pub assigned: Mutex<BTreeMap<(String, i32), i64>>,
    /// Lag at or below this counts as caught up.
    pub caught_up_lag: i64,
}

impl ConsumerCallbacks {
    pub fn new(metrics: Arc<Metrics>, offsets: OffsetTracker, caught_up_lag: i64) -> Self {
        ConsumerCallbacks {
            metrics,
            offsets: Mutex::new(offsets),
            assigned: Mutex::new(BTreeMap::new()),
            caught_up_lag,
        }
    }

    /// The offset tracker.
    pub fn offsets(&self) -> MutexGuard<'_, OffsetTracker> {
        lock(&self.offsets)
    }

    fn update_readiness(&self, assigned: &BTreeMap<(String, i32), i64>) {
        self.metrics.set_partitions_assigned(assigned.len() as i64);
        let caught_up = !assigned.is_empty() && assigned.values().all(|&lag| (0..=self.caught_up_lag).contains(&lag));
        self.metrics.set_caught_up(caught_up);
    }
}

impl ClientContext for ConsumerCallbacks {
    fn stats(&self, statistics: Statistics) {
        let mut assigned = lock(&self.assigned);
        for (topic_name, topic) in &statistics.topics {
            for (partition, p) in &topic.partitions {
                if let Some(lag) = assigned.get_mut(&(topic_name.clone(), *partition)) {
                    // librdkafka reports -1 when nothing was ever consumed or committed; an
                    // empty partition is caught up all the same.
                    let empty = p.hi_offset >= 0 && p.hi_offset <= p.lo_offset.max(0);
                    *lag = if p.consumer_lag < 0 && empty { 0 } else { p.consumer_lag };
                    if *lag >= 0 {
                        self.metrics.set_consumer_lag(topic_name, *partition, *lag);
                    }
                }
            }
        }
        self.update_readiness(&assigned);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(%error, reason, "kafka client error");
    }
}

impl ConsumerCallbacks {
    /// Set each assigned partition to start where the tracker says: where our state stops, or
    /// where the group stands if that is further (see `OffsetTracker::assign`).
    fn resume_where_state_stops(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let group = consumer.committed_offsets(tpl.clone(), COMMITTED_TIMEOUT).map_err(|error| {
            warn!(%error, "cannot read the group's committed offsets; resuming at the checkpointed ones");
        });
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        let mut offsets = self.offsets();
        for (topic, partition) in partitions {
            let committed =
                group.as_ref().ok().and_then(|g| g.find_partition(&topic, partition)).and_then(|e| e.offset().to_raw());
            let Some(start) = offsets.assign(&(topic.clone(), partition), committed) else { continue };
            if committed.is_some_and(|c| c >= 0 && start == c) {
                debug!(topic, partition, start, "resuming at the group's offset");
            }
            if let Err(error) = tpl.set_partition_offset(&topic, partition, Offset::Offset(start)) {
                warn!(%error, topic, partition, "cannot resume partition at the checkpointed offset");
            }
        }
    }

    /// Commit what the last durable checkpoint covers of the partitions being taken away.
    fn commit_durable(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let revoked: Vec<((String, i32), i64)> = {
            let mut offsets = self.offsets();
            tpl.elements()
                .iter()
                .filter_map(|e| {
                    let tp = (e.topic().to_string(), e.partition());
                    offsets.revoke(&tp).map(|next| (tp, next))
                })
                .collect()
        };
        if revoked.is_empty() {
            return;
        }
        match commit(consumer, &revoked, CommitMode::Sync) {
            Ok(()) => {
                self.offsets().committed(&revoked);
                debug!(partitions = revoked.len(), "committed the checkpointed offsets of revoked partitions")
            }
            Err(error) => {
                warn!(%error, "could not commit the offsets of revoked partitions; their next owner re-reads from the previous commit")
            }
        }
    }
}

/// Commit these offsets (next offset to read, per partition).
pub fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    offsets: &[((String, i32), i64)],
    mode: CommitMode,
) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
    }
    consumer.commit(&tpl, mode)
}

impl ConsumerContext for ConsumerCallbacks {
    /// The default rebalance, except that assigned partitions start at the offsets the state
    /// covers (or where the group committed, if that is further), and revoked partitions get
    /// the offsets of the last durable checkpoint committed before they go. (Committing before
    /// subscribing does not work: a group with live or lingering members rejects commits from
    /// a non-member.)
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.resume_where_state_stops(consumer, tpl);
                let result = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(error) = result {
                    error!(%error, "assigning partitions failed");
                }
                self.post_rebalance(consumer, &Rebalance::Assign(tpl));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.commit_durable(consumer, tpl);
                let result = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(error) = result {
                    error!(%error, "revoking partitions failed");
                }
                self.post_rebalance(consumer, &Rebalance::Revoke(tpl));
            }
            other => {
                let error = KafkaError::Rebalance(other.into());
                warn!(%error, "rebalance failed");
                if let Err(error) = consumer.unassign() {
                    error!(%error, "unassigning after a failed rebalance failed");
                }
                self.post_rebalance(consumer, &Rebalance::Error(error));
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut assigned = lock(&self.assigned);
        match rebalance {
            Rebalance::Assign(tpl) => {
                for e in tpl.elements() {
                    assigned.insert((e.topic().to_string(), e.partition()), -1);
                }
                info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements() {
                    assigned.remove(&(e.topic().to_string(), e.partition()));
                    self.metrics.clear_consumer_lag(e.topic(), e.partition());
                }
                info!(partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Error(error) => warn!(%error, "rebalance failed"),
        }
        self.update_readiness(&assigned);
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                let committed: Vec<((String, i32), i64)> = offsets
                    .elements()
                    .iter()
                    .filter_map(|e| Some(((e.topic().to_string(), e.partition()), e.offset().to_raw()?)))
                    .collect();
                self.offsets().committed(&committed);
                debug!(partitions = offsets.count(), "offsets committed")
            }
            Err(error) => warn!(%error, "offset commit failed; the next checkpoint commits again"),
        }
    }
}

pub fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            error!(facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Warning => warn!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => info!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Debug => debug!(facility, "librdkafka: {message}"),
    }
}

/// Produce one message, waiting for room while the producer's queue is full (for feeding
/// traffic: the demo, tests and benchmarks).
pub fn send_blocking<C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()>>(
    producer: &rdkafka::producer::ThreadedProducer<C>,
    topic: &str,
    key: &[u8],
    payload: &[u8],
) -> Result<(), KafkaError> {
    let mut record = rdkafka::producer::BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error),
        }
    }
}
