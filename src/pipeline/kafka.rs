//! The Kafka edge: client settings, the consumer's callbacks (rebalance, statistics, logs),
//! and the producer used for alerts and dead letters.
//!
//! Consumer settings are chosen for throughput with bounded latency: offsets are never
//! committed automatically (the pipeline commits only what a checkpoint covers), fetches wait
//! up to 100 ms for 64 KiB, and the local queue holds up to 64 MiB. When that queue is full,
//! librdkafka backs a partition's next fetch off for `fetch.queue.backoff.ms` (1 s by default);
//! at full speed that emptied the queue and idled the pipeline for half a second at a time
//! (1M events: 116k/s with the default, 175k/s with 20 ms). Settings under
//! `[kafka.client]` in the config override these defaults; secrets come from `[kafka.secrets]`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::Offset;
use rdkafka::{ClientConfig, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::admin::metrics::Metrics;
use crate::config::Config;

pub type Consumer = BaseConsumer<ConsumerCallbacks>;
pub type Producer = ThreadedProducer<ProducerCallbacks>;

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

/// Consumer callbacks: partitions are resumed where the engine's state stops, assignment and
/// lag go to the metrics, librdkafka logs go to tracing.
pub struct ConsumerCallbacks {
    pub metrics: Arc<Metrics>,
    /// Next offset per partition that the engine state covers (from the checkpoint, then kept
    /// current by the pipeline). An assigned partition found here starts at that offset rather
    /// than at the group's committed offset, so state and position never disagree, unless
    /// the group committed further (another instance read on while the partition was away).
    pub resume: Mutex<BTreeMap<(String, i32), i64>>,
    /// Next offset per partition that the last durable checkpoint covers: what may be committed
    /// when a partition is taken away, so its next owner starts right there.
    pub durable: Mutex<BTreeMap<(String, i32), i64>>,
    /// Partitions currently assigned, with the lag last reported for each (-1 = unknown).
    pub assigned: Mutex<BTreeMap<(String, i32), i64>>,
    /// Lag at or below this counts as caught up.
    pub caught_up_lag: i64,
}

impl ConsumerCallbacks {
    pub fn new(metrics: Arc<Metrics>, caught_up_lag: i64) -> Self {
        ConsumerCallbacks {
            metrics,
            resume: Mutex::new(BTreeMap::new()),
            durable: Mutex::new(BTreeMap::new()),
            assigned: Mutex::new(BTreeMap::new()),
            caught_up_lag,
        }
    }

    fn update_readiness(&self, assigned: &BTreeMap<(String, i32), i64>) {
        self.metrics.set_partitions_assigned(assigned.len() as i64);
        let caught_up = !assigned.is_empty() && assigned.values().all(|&lag| (0..=self.caught_up_lag).contains(&lag));
        self.metrics.set_caught_up(caught_up);
    }
}

impl ClientContext for ConsumerCallbacks {
    fn stats(&self, statistics: Statistics) {
        let Ok(mut assigned) = self.assigned.lock() else { return };
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
    /// Set each assigned partition whose state we hold to start where that state stops.
    fn resume_where_state_stops(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let Ok(resume) = self.resume.lock() else { return };
        let ours: Vec<((String, i32), i64)> = tpl
            .elements()
            .iter()
            .filter_map(|e| {
                let key = (e.topic().to_string(), e.partition());
                resume.get(&key).map(|&next| (key, next))
            })
            .collect();
        drop(resume);
        if ours.is_empty() {
            return;
        }
        // Where the group stands: further than our state only if another instance read on
        // while the partition was away; its events are not ours to replay (they would raise
        // its alerts again), so start there and let the state skip them.
        let mut asked = TopicPartitionList::new();
        for ((topic, partition), _) in &ours {
            asked.add_partition(topic, *partition);
        }
        let group = consumer.committed_offsets(asked, COMMITTED_TIMEOUT).map_err(|error| {
            warn!(%error, "cannot read the group's committed offsets; resuming at the checkpointed ones");
        });
        for ((topic, partition), next) in ours {
            let committed = group
                .as_ref()
                .ok()
                .and_then(|g| g.find_partition(&topic, partition))
                .and_then(|e| e.offset().to_raw())
                .filter(|&o| o >= 0);
            let start = committed.map_or(next, |c| c.max(next));
            if start > next {
                info!(
                    topic,
                    partition,
                    state = next,
                    committed = start,
                    "partition was read on elsewhere; resuming at the group's offset"
                );
                // The state now stands there too: no later checkpoint or revocation may record
                // (and commit) the older offset.
                for offsets in [&self.resume, &self.durable] {
                    if let Ok(mut offsets) = offsets.lock() {
                        offsets.insert((topic.clone(), partition), start);
                    }
                }
            }
            if let Err(error) = tpl.set_partition_offset(&topic, partition, Offset::Offset(start)) {
                warn!(%error, topic, partition, "cannot resume partition at the checkpointed offset");
            }
        }
    }

    /// Commit what the last durable checkpoint covers of the partitions being taken away.
    fn commit_durable(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let Ok(durable) = self.durable.lock() else { return };
        let mut commit = TopicPartitionList::new();
        for e in tpl.elements() {
            if let Some(&next) = durable.get(&(e.topic().to_string(), e.partition())) {
                if let Err(error) = commit.add_partition_offset(e.topic(), e.partition(), Offset::Offset(next)) {
                    warn!(%error, "cannot build the offsets to commit on revocation");
                }
            }
        }
        drop(durable);
        if commit.count() == 0 {
            return;
        }
        match consumer.commit(&commit, CommitMode::Sync) {
            Ok(()) => debug!(partitions = commit.count(), "committed the checkpointed offsets of revoked partitions"),
            Err(error) => {
                warn!(%error, "could not commit the offsets of revoked partitions; their next owner re-reads from the previous commit")
            }
        }
    }
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
        let Ok(mut assigned) = self.assigned.lock() else { return };
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
            Ok(()) => debug!(partitions = offsets.count(), "offsets committed"),
            Err(error) => warn!(%error, "offset commit failed; the next checkpoint commits again"),
        }
    }
}

/// Producer callbacks: failed deliveries are counted and logged.
#[derive(Default)]
pub struct ProducerCallbacks {
    pub failed: AtomicU64,
}

impl ClientContext for ProducerCallbacks {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }
}

impl ProducerContext for ProducerCallbacks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            use rdkafka::Message;
            error!(%error, topic = message.topic(), "could not deliver a message to Kafka");
        }
    }
}

fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            error!(facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Warning => warn!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => info!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Debug => debug!(facility, "librdkafka: {message}"),
    }
}
