//! Alert outputs of the service: stdout (JSON lines or a readable line), a JSON-lines file, and
//! a Kafka topic keyed by account. Every output gets the same alert body (the contract in
//! `alert`), stamped with `detected_at`.
//!
//! Outputs are a closed set (`OutputConfig`), so adding one (email, webhook) breaks the build
//! wherever it must be handled. `flush` is called before a checkpoint: an offset is committed
//! only after the alerts raised before it reached their outputs.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer as _};
use thiserror::Error;

use crate::config::{OutputConfig, StdoutFormat};
use crate::detection::alert::Alert;
use crate::detection::time::Rfc3339;
use crate::pipeline::kafka::Producer;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("cannot write alerts to {target}: {source}")]
    Io { target: String, source: io::Error },
    #[error("cannot send an alert to Kafka topic {topic}: {source}")]
    Kafka { topic: String, source: KafkaError },
}

enum Output {
    Stdout(StdoutFormat),
    File { path: String, writer: BufWriter<File> },
    Kafka { topic: String },
}

pub struct Outputs {
    outputs: Vec<Output>,
    producer: Option<Arc<Producer>>,
}

impl Outputs {
    /// Build the configured outputs. `producer` is needed when any output is a Kafka topic.
    pub fn open(configs: &[OutputConfig], producer: Option<Arc<Producer>>) -> Result<Outputs, OutputError> {
        let outputs = configs
            .iter()
            .map(|c| match c {
                OutputConfig::Stdout { format } => Ok(Output::Stdout(*format)),
                OutputConfig::File { path } => {
                    let target = path.display().to_string();
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|source| OutputError::Io { target: target.clone(), source })?;
                    Ok(Output::File { path: target, writer: BufWriter::new(file) })
                }
                OutputConfig::Kafka { topic } => Ok(Output::Kafka { topic: topic.clone() }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Outputs { outputs, producer })
    }

    /// Send one alert to every output.
    pub fn deliver(&mut self, alert: &Alert) -> Result<(), OutputError> {
        let mut alert = alert.clone();
        alert.detected_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let body = serde_json::to_vec(&alert).expect("alerts always serialize");
        for output in &mut self.outputs {
            match output {
                Output::Stdout(StdoutFormat::Json) => {
                    let mut out = io::stdout().lock();
                    out.write_all(&body)
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(|source| OutputError::Io { target: "stdout".into(), source })?;
                }
                Output::Stdout(StdoutFormat::Pretty) => {
                    println!("{}", pretty(&alert));
                }
                Output::File { path, writer } => {
                    writer
                        .write_all(&body)
                        .and_then(|()| writer.write_all(b"\n"))
                        .map_err(|source| OutputError::Io { target: path.clone(), source })?;
                }
                Output::Kafka { topic } => {
                    let producer = self.producer.as_ref().expect("a producer exists when a Kafka output is configured");
                    send_blocking(producer, topic, alert.account.as_bytes(), &body, None)
                        .map_err(|source| OutputError::Kafka { topic: topic.clone(), source })?;
                }
            }
        }
        Ok(())
    }

    /// Make everything delivered so far durable (files) or acknowledged (Kafka).
    pub fn flush(&mut self, timeout: Duration) -> Result<(), OutputError> {
        for output in &mut self.outputs {
            if let Output::File { path, writer } = output {
                writer
                    .flush()
                    .and_then(|()| writer.get_ref().sync_data())
                    .map_err(|source| OutputError::Io { target: path.clone(), source })?;
            }
        }
        io::stdout().flush().map_err(|source| OutputError::Io { target: "stdout".into(), source })?;
        if let Some(producer) = &self.producer {
            producer.flush(timeout).map_err(|source| OutputError::Kafka { topic: "(flush)".into(), source })?;
        }
        Ok(())
    }
}

/// Send, waiting for room when the producer's queue is full: alerts and dead letters must not
/// be dropped, so a full queue slows intake down instead.
pub fn send_blocking<C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()>>(
    producer: &rdkafka::producer::ThreadedProducer<C>,
    topic: &str,
    key: &[u8],
    payload: &[u8],
    headers: Option<rdkafka::message::OwnedHeaders>,
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// One readable line for a person watching a terminal.
pub fn pretty(alert: &Alert) -> String {
    format!(
        "{} [{:<8}] {:<17} {:<24} {}",
        Rfc3339(alert.time),
        format!("{:?}", alert.severity).to_uppercase(),
        alert.category.as_str(),
        alert.detector,
        alert.summary
    )
}
