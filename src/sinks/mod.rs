//! Where alerts and dead letters go: one file per sink behind the closed [`Sink`] enum, each
//! driven by its own [`worker`] thread from the durable outbox (`state::outbox`).
//!
//! A sink's only job is [`Sink::deliver`]: send a batch of entries and return once the
//! destination confirmed them (stdout: written; file: written, flushed and synced; Kafka: a
//! successful delivery report), or say how far it got and whether retrying can help. Retries,
//! backoff, cursors and metrics live in the worker, so a new sink (email, webhook) is one file
//! and one variant here. Every alert sink gets the same body: the alert contract as JSON.

pub mod file;
pub mod kafka;
pub mod stdout;
pub mod worker;

use thiserror::Error;

use crate::config::{Config, OutputConfig};
use crate::detection::alert::Alert;
use crate::state::outbox::Entry;

/// A sink could not start.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("output `{sink}`: {reason}")]
    Open { sink: String, reason: String },
}

/// A batch was not (wholly) delivered.
#[derive(Debug)]
pub struct DeliveryError {
    /// Entries at the start of the batch that were confirmed all the same.
    pub confirmed: usize,
    /// True when sending the same entry again cannot succeed (it goes to the sink's
    /// dead-letter file); false for outages, which are retried.
    pub permanent: bool,
    pub reason: String,
}

impl DeliveryError {
    pub fn transient(confirmed: usize, reason: impl Into<String>) -> DeliveryError {
        DeliveryError { confirmed, permanent: false, reason: reason.into() }
    }
}

/// The closed set of sinks.
pub enum Sink {
    Stdout(stdout::StdoutSink),
    File(file::FileSink),
    Kafka(kafka::KafkaSink),
}

impl Sink {
    /// Build one configured alert output.
    pub fn open(output: &OutputConfig, config: &Config) -> Result<Sink, SinkError> {
        Ok(match output {
            OutputConfig::Stdout { format } => Sink::Stdout(stdout::StdoutSink::new(*format)),
            OutputConfig::File { path } => Sink::File(file::FileSink::new(path.clone())),
            OutputConfig::Kafka { topic } => Sink::Kafka(kafka::KafkaSink::new(config, topic)?),
        })
    }

    /// Stable name of an output: its cursor and metrics are kept under it.
    pub fn name_of(output: &OutputConfig) -> String {
        match output {
            OutputConfig::Stdout { .. } => "stdout".to_string(),
            OutputConfig::File { path } => {
                format!("file-{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
            }
            OutputConfig::Kafka { topic } => format!("kafka-{topic}"),
        }
    }

    /// Send `entries`; `Ok` once the destination confirmed every one.
    pub fn deliver(&mut self, entries: &[Entry]) -> Result<(), DeliveryError> {
        match self {
            Sink::Stdout(sink) => sink.deliver(entries),
            Sink::File(sink) => sink.deliver(entries),
            Sink::Kafka(sink) => sink.deliver(entries),
        }
    }
}

/// The body every alert sink (and `replay`) writes: the alert contract as JSON, stamped with
/// the wall-clock time it was raised. The engine leaves `detected_at` empty to stay
/// deterministic, so this edge stamps it.
pub fn alert_body(alert: &Alert) -> Vec<u8> {
    let mut alert = alert.clone();
    alert.detected_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    // An alert is strings and finite numbers: serializing it cannot fail.
    serde_json::to_vec(&alert).unwrap_or_default()
}

/// Names of the configured outputs, made unique in config order (`kafka-alerts`, `kafka-alerts-2`).
pub fn output_names(outputs: &[OutputConfig]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for output in outputs {
        let base = Sink::name_of(output);
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        names.push(name);
    }
    names
}
