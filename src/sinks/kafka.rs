//! Alerts (keyed by account) or dead letters (original key, reason in headers) produced to a
//! Kafka topic of the source cluster. Delivered means a successful delivery report: the batch
//! is sent, then the producer is polled on the worker thread until every report is in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};

use crate::config::Config;
use crate::lock::lock;
use crate::sinks::{DeliveryError, SinkError};
use crate::state::outbox::Entry;

/// Longest wait for the delivery reports of one batch (librdkafka's own `message.timeout.ms`
/// ends each message's retries sooner).
const REPORT_TIMEOUT: Duration = Duration::from_secs(90);

/// A delivery report: (batch, index of the entry in it), and the outcome.
type Report = ((u64, usize), Result<(), String>);

/// Collects delivery reports.
#[derive(Default)]
pub struct Reports {
    results: Mutex<Vec<Report>>,
}

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::pipeline::kafka::log_librdkafka(level, facility, message);
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<(u64, usize)>;
    fn delivery(&self, result: &DeliveryResult<'_>, at: Box<(u64, usize)>) {
        let outcome = result.as_ref().map(|_| ()).map_err(|(error, _)| error.to_string());
        lock(&self.results).push((*at, outcome));
    }
}

pub struct KafkaSink {
    topic: String,
    producer: BaseProducer<Reports>,
    /// Number of the batch being delivered.
    batch: u64,
}

impl KafkaSink {
    pub fn new(config: &Config, topic: &str) -> Result<KafkaSink, SinkError> {
        let open = |reason: String| SinkError::Open { sink: format!("kafka-{topic}"), reason };
        let producer = crate::pipeline::kafka::client_config(config, false)
            .map_err(|e| open(e.to_string()))?
            .create_with_context(Reports::default())
            .map_err(|e: KafkaError| open(e.to_string()))?;
        Ok(KafkaSink { topic: topic.to_string(), producer, batch: 0 })
    }

    pub fn deliver(&mut self, entries: &[Entry]) -> Result<(), DeliveryError> {
        self.batch += 1;
        let mut sent = 0;
        for (index, entry) in entries.iter().enumerate() {
            let mut headers = OwnedHeaders::new();
            for (key, value) in &entry.headers {
                headers = headers.insert(Header { key, value: Some(value) });
            }
            let mut record = BaseRecord::with_opaque_to(&self.topic, Box::new((self.batch, index)))
                .key(&entry.key)
                .payload(&entry.body)
                .headers(headers);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((error, _)) => {
                        let (confirmed, _) = self.reports_of_batch(sent);
                        return Err(DeliveryError::transient(
                            confirmed,
                            format!("producing to {}: {error}", self.topic),
                        ));
                    }
                }
            }
            sent += 1;
        }
        match self.reports_of_batch(sent) {
            (confirmed, None) if confirmed == sent => Ok(()),
            (confirmed, failure) => Err(DeliveryError::transient(
                confirmed,
                format!("Kafka topic {}: {}", self.topic, failure.as_deref().unwrap_or("no delivery report in time")),
            )),
        }
    }

    /// Poll until the reports of the `n` entries sent in this batch are in (or the timeout),
    /// and return how many at the start were confirmed, and the first failure. A failed entry
    /// and everything after it are sent again (a later one that did arrive repeats, with the
    /// same id, the receiver's idempotency key).
    fn reports_of_batch(&self, n: usize) -> (usize, Option<String>) {
        let deadline = Instant::now() + REPORT_TIMEOUT;
        let mut results: Vec<(usize, Result<(), String>)> = Vec::new();
        loop {
            let mut reports = lock(&self.producer.context().results);
            // Late reports of an earlier batch that timed out are not this batch's.
            results.extend(reports.drain(..).filter(|((batch, _), _)| *batch == self.batch).map(|((_, i), r)| (i, r)));
            drop(reports);
            if results.len() >= n || Instant::now() >= deadline {
                break;
            }
            self.producer.poll(Duration::from_millis(50));
        }
        results.sort_by_key(|(index, _)| *index);
        let mut confirmed = 0;
        for (index, result) in results {
            match result {
                Ok(()) if index == confirmed => confirmed += 1,
                Ok(()) => {}
                Err(reason) => return (confirmed, Some(reason)),
            }
        }
        (confirmed, None)
    }
}
