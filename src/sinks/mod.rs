//! Where alerts and dead letters go: one file per sink behind the closed [`Sink`] enum, each
//! driven by its own [`worker`] thread from the durable outbox (`state::outbox`).
//!
//! A [`Feed`] (stdout, file, Kafka, webhook) is read by machines: [`Feed::deliver`] sends a
//! batch of entries, each the alert contract as JSON, and returns once the destination
//! confirmed them (stdout: written; file: written, flushed and synced; Kafka: a successful
//! delivery report; webhook: a 2xx answer), or says how far it got and whether retrying can
//! help. A [`Notifier`] (email, Slack, PagerDuty) is read by people: [`Notifier::notify`] sends
//! one grouped [`Notification`]. Routing, silences, masking, grouping, retries, backoff,
//! cursors and metrics live in the worker, so a new sink is one file and one variant here.

pub mod email;
pub mod file;
pub mod http;
pub mod kafka;
pub mod pagerduty;
pub mod slack;
pub mod stdout;
pub mod webhook;
pub mod worker;

use std::time::Duration;

use thiserror::Error;

use crate::alerting::notification::Notification;
use crate::config::{Config, OutputConfig};
use crate::detection::alert::Alert;
use crate::state::outbox::Entry;

/// A sink could not start.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("output `{sink}`: {reason}")]
    Open { sink: String, reason: String },
}

/// A batch (or a notification) was not (wholly) delivered.
#[derive(Debug)]
pub struct DeliveryError {
    /// Entries at the start of the batch that were confirmed all the same.
    pub confirmed: usize,
    /// True when sending the same entry again cannot succeed (it goes to the sink's
    /// dead-letter file); false for outages, which are retried.
    pub permanent: bool,
    pub reason: String,
    /// How long the destination asked us to wait (HTTP `Retry-After`), if it said.
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    pub fn transient(confirmed: usize, reason: impl Into<String>) -> DeliveryError {
        DeliveryError { confirmed, permanent: false, reason: reason.into(), retry_after: None }
    }

    pub fn permanent(confirmed: usize, reason: impl Into<String>) -> DeliveryError {
        DeliveryError { confirmed, permanent: true, reason: reason.into(), retry_after: None }
    }
}

/// The closed set of sinks: feeds for machines get every routed alert as the JSON contract;
/// notifiers for people get grouped [`Notification`]s.
pub enum Sink {
    Feed(Feed),
    Notifier(Notifier),
}

pub enum Feed {
    Stdout(stdout::StdoutSink),
    File(file::FileSink),
    Kafka(kafka::KafkaSink),
    Webhook(webhook::WebhookSink),
}

pub enum Notifier {
    Email(email::EmailSink),
    Slack(slack::SlackSink),
    PagerDuty(pagerduty::PagerDutySink),
}

impl Sink {
    /// Build one configured output named `name`. Secrets are resolved here, from the process
    /// environment and files.
    pub fn open(output: &OutputConfig, name: &str, config: &Config) -> Result<Sink, SinkError> {
        let env = |var: &str| std::env::var(var).ok();
        let open_error = |reason: String| SinkError::Open { sink: name.to_string(), reason };
        Ok(match output {
            OutputConfig::Stdout(o) => Sink::Feed(Feed::Stdout(stdout::StdoutSink::new(o.format))),
            OutputConfig::File(o) => Sink::Feed(Feed::File(file::FileSink::new(o.path.clone()))),
            OutputConfig::Kafka(o) => Sink::Feed(Feed::Kafka(kafka::KafkaSink::new(config, &o.topic)?)),
            OutputConfig::Webhook(o) => {
                Sink::Feed(Feed::Webhook(webhook::WebhookSink::new(o, &env).map_err(open_error)?))
            }
            OutputConfig::Email(o) => {
                let sink = match &o.save_to {
                    Some(dir) => std::fs::create_dir_all(dir)
                        .map_err(|e| format!("save_to {}: {e}", dir.display()))
                        .and_then(|()| email::EmailSink::to_directory(dir.clone(), &o.from, &o.to)),
                    None => email::EmailSink::new(o, &env),
                };
                Sink::Notifier(Notifier::Email(sink.map_err(open_error)?))
            }
            OutputConfig::Slack(o) => {
                Sink::Notifier(Notifier::Slack(slack::SlackSink::new(o, &env).map_err(open_error)?))
            }
            OutputConfig::Pagerduty(o) => {
                Sink::Notifier(Notifier::PagerDuty(pagerduty::PagerDutySink::new(o, &env).map_err(open_error)?))
            }
        })
    }
}

impl Feed {
    /// Send `entries`; `Ok` once the destination confirmed every one.
    pub fn deliver(&mut self, entries: &[Entry]) -> Result<(), DeliveryError> {
        match self {
            Feed::Stdout(sink) => sink.deliver(entries),
            Feed::File(sink) => sink.deliver(entries),
            Feed::Kafka(sink) => sink.deliver(entries),
            Feed::Webhook(sink) => sink.deliver(entries),
        }
    }
}

impl Notifier {
    /// Send one notification; `Ok` once the destination accepted it.
    pub fn notify(&mut self, notification: &Notification) -> Result<(), DeliveryError> {
        match self {
            Notifier::Email(sink) => sink.notify(notification),
            Notifier::Slack(sink) => sink.notify(notification),
            Notifier::PagerDuty(sink) => sink.notify(notification),
        }
    }

    /// Whether a closed group is worth a message (PagerDuty resolves its incident).
    pub fn wants_resolved(&self) -> bool {
        match self {
            Notifier::PagerDuty(sink) => sink.sends_resolved(),
            Notifier::Email(_) | Notifier::Slack(_) => false,
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
