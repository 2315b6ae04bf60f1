//! The service's metrics: a fixed registry updated with atomics and rendered in the Prometheus
//! text exposition format, version 0.0.4.
//!
//! Invariants:
//! - **Lock-free hot path.** Per-event counters (events, decode errors, alerts) are plain
//!   atomics in slots allocated by [`Metrics::new`]; only the consumer lag, updated per poll
//!   batch and per rebalance, sits behind a mutex.
//! - **Known, bounded label sets.** Topics, sinks and outboxes come from the configuration; decode reasons,
//!   categories and severities are closed lists, and anything unknown counts under `other`.
//!   The lag gauge holds at most [`MAX_LAG_SERIES`] (topic, partition) pairs. No label ever
//!   carries an account, credential or address.
//! - **Time is injected.** [`Metrics::render`] takes the current time, so the checkpoint age
//!   is computed at scrape time and tests are deterministic.
//!
//! Format written: for every family one `# HELP` line and one `# TYPE` line, then its samples
//! as `name{label="value",...} value`, families in a fixed order, lines ending in `\n`. Label
//! values escape backslash, double quote and newline; help text escapes backslash and newline.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod sinks;
use crate::detection::definition::{Category, Severity};
use crate::lock::lock;
pub use sinks::SinkMetrics;

/// Reasons counted by `auditwatch_decode_errors_total`; the last one catches unknown reasons.
pub const DECODE_REASONS: [&str; 8] =
    ["too_large", "invalid_utf8", "malformed_json", "not_an_object", "missing_field", "invalid_field", "late", OTHER];

/// Alert categories and severities; each list ends in `other` for values added later.
pub const ALERT_CATEGORIES: [&str; Category::ALL.len() + 1] = {
    let mut names = [OTHER; Category::ALL.len() + 1];
    let mut i = 0;
    while i < Category::ALL.len() {
        names[i] = Category::ALL[i].as_str();
        i += 1;
    }
    names
};
pub const ALERT_SEVERITIES: [&str; 5] =
    [Severity::Low.as_str(), Severity::Medium.as_str(), Severity::High.as_str(), Severity::Critical.as_str(), OTHER];

/// Ceiling on the (topic, partition) pairs of the lag gauge; Kafka assignments stay far below.
pub const MAX_LAG_SERIES: usize = 4096;

const OTHER: &str = "other";

/// The registry. Shared as `Arc<Metrics>` between the processing thread and the admin server.
pub struct Metrics {
    /// Distinct topic names, in first-seen order.
    topic_names: Vec<String>,
    /// Index into `topic_names` for each position of the list given to `new` (duplicates share).
    topic_slots: Vec<usize>,
    events: Vec<AtomicU64>,
    decode_errors: [AtomicU64; DECODE_REASONS.len()],
    dead_letters: AtomicU64,
    /// `ALERT_CATEGORIES.len() × ALERT_SEVERITIES.len()`, row-major by category.
    alerts: [AtomicU64; ALERT_CATEGORIES.len() * ALERT_SEVERITIES.len()],
    alerts_folded: AtomicU64,
    consumer_lag: Mutex<BTreeMap<(String, i32), i64>>,
    partitions_assigned: AtomicI64,
    caught_up: AtomicBool,
    checkpoints: AtomicU64,
    checkpoint_failures: AtomicU64,
    last_checkpoint_nanos: AtomicU64,
    last_checkpoint_unix_ms: AtomicI64,
    accounts_tracked: AtomicU64,
    credentials_tracked: AtomicU64,
    state_bytes: AtomicU64,
    account_partition_changes: AtomicU64,
    untracked_account_events: AtomicU64,
    provider_service_events: AtomicU64,
    store_partitions_expired: AtomicU64,
    sinks: Mutex<Vec<(String, Arc<SinkMetrics>)>>,
    outbox_bytes: Mutex<Vec<(&'static str, u64)>>,
}

impl Metrics {
    /// A registry for the given input topics; `topic_index` in [`Metrics::event`] is a position
    /// in this list.
    pub fn new(topics: &[String]) -> Metrics {
        let mut topic_names: Vec<String> = Vec::with_capacity(topics.len());
        let mut topic_slots = Vec::with_capacity(topics.len());
        for topic in topics {
            // A topic listed twice must not render two identical series.
            let slot = match topic_names.iter().position(|known| known == topic) {
                Some(slot) => slot,
                None => {
                    topic_names.push(topic.clone());
                    topic_names.len() - 1
                }
            };
            topic_slots.push(slot);
        }
        let events = topic_names.iter().map(|_| AtomicU64::new(0)).collect();
        Metrics {
            topic_names,
            topic_slots,
            events,
            decode_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            dead_letters: AtomicU64::new(0),
            alerts: std::array::from_fn(|_| AtomicU64::new(0)),
            alerts_folded: AtomicU64::new(0),
            consumer_lag: Mutex::new(BTreeMap::new()),
            partitions_assigned: AtomicI64::new(0),
            caught_up: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            checkpoint_failures: AtomicU64::new(0),
            last_checkpoint_nanos: AtomicU64::new(0),
            last_checkpoint_unix_ms: AtomicI64::new(0),
            accounts_tracked: AtomicU64::new(0),
            credentials_tracked: AtomicU64::new(0),
            state_bytes: AtomicU64::new(0),
            account_partition_changes: AtomicU64::new(0),
            untracked_account_events: AtomicU64::new(0),
            provider_service_events: AtomicU64::new(0),
            store_partitions_expired: AtomicU64::new(0),
            sinks: Mutex::new(Vec::new()),
            outbox_bytes: Mutex::new(Vec::new()),
        }
    }

    pub fn event(&self, topic_index: usize) {
        self.events(topic_index, 1);
    }

    /// Counts `n` events read from the topic at `topic_index`.
    pub fn events(&self, topic_index: usize, n: u64) {
        let counter = self.topic_slots.get(topic_index).and_then(|&slot| self.events.get(slot));
        match counter {
            Some(counter) => {
                counter.fetch_add(n, Ordering::Relaxed);
            }
            // The index comes from our own topic list, never from input: a bug, not bad data.
            None => debug_assert!(false, "topic index {topic_index} is not one of {} topics", self.topic_slots.len()),
        }
    }

    /// Counts a message that could not be decoded; an unknown `reason` counts as `other`.
    pub fn decode_error(&self, reason: &str) {
        self.decode_errors[index_or_other(&DECODE_REASONS, reason)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dead_letter(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a raised alert; unknown categories or severities count as `other`.
    pub fn alert(&self, category: &str, severity: &str) {
        let row = index_or_other(&ALERT_CATEGORIES, category);
        let column = index_or_other(&ALERT_SEVERITIES, severity);
        self.alerts[row * ALERT_SEVERITIES.len() + column].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts repeats folded into an open alert instead of raising a new one.
    pub fn alerts_folded(&self, n: u64) {
        self.alerts_folded.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the lag of one assigned partition. New pairs beyond [`MAX_LAG_SERIES`] are ignored.
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut lags = lock(&self.consumer_lag);
        let key = (topic.to_owned(), partition);
        if let Some(value) = lags.get_mut(&key) {
            *value = lag;
        } else if lags.len() < MAX_LAG_SERIES {
            lags.insert(key, lag);
        }
    }

    /// Forgets a partition's lag, on revoke: another instance reports it now.
    pub fn clear_consumer_lag(&self, topic: &str, partition: i32) {
        lock(&self.consumer_lag).remove(&(topic.to_owned(), partition));
    }

    pub fn set_partitions_assigned(&self, n: i64) {
        self.partitions_assigned.store(n, Ordering::Relaxed);
    }

    pub fn set_caught_up(&self, yes: bool) {
        self.caught_up.store(yes, Ordering::Relaxed);
    }

    /// Records a checkpoint that took `duration` and finished at `wall_clock_unix_ms`.
    pub fn checkpoint_done(&self, duration: Duration, wall_clock_unix_ms: i64) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.last_checkpoint_nanos.store(nanos, Ordering::Relaxed);
        self.last_checkpoint_unix_ms.store(wall_clock_unix_ms, Ordering::Relaxed);
        // Release after the stores: a render that sees the count also sees the time.
        self.checkpoints.fetch_add(1, Ordering::Release);
    }

    pub fn checkpoint_failed(&self) {
        self.checkpoint_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the engine's state size: tracked accounts and credentials, and bytes held.
    pub fn set_state(&self, accounts: u64, credentials: u64, state_bytes: u64) {
        self.accounts_tracked.store(accounts, Ordering::Relaxed);
        self.credentials_tracked.store(credentials, Ordering::Relaxed);
        self.state_bytes.store(state_bytes, Ordering::Relaxed);
    }

    /// Counts an account whose events arrived on a different partition than before.
    pub fn account_partition_change(&self) {
        self.account_partition_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts events of accounts not tracked because the account ceiling was reached.
    /// The store's count of day partitions deleted by the retention limit, since start.
    pub fn set_store_partitions_expired(&self, n: u64) {
        self.store_partitions_expired.store(n, Ordering::Relaxed);
    }

    pub fn untracked_account_events(&self, n: u64) {
        self.untracked_account_events.fetch_add(n, Ordering::Relaxed);
    }

    pub fn provider_service_events(&self, n: u64) {
        self.provider_service_events.fetch_add(n, Ordering::Relaxed);
    }

    /// Ready means: some partitions assigned and caught up with them.
    pub fn ready(&self) -> Result<(), String> {
        let partitions = self.partitions_assigned.load(Ordering::Relaxed);
        if partitions <= 0 {
            return Err("no partitions assigned".to_owned());
        }
        if !self.caught_up.load(Ordering::Relaxed) {
            return Err(format!("not yet caught up with {partitions} assigned partitions"));
        }
        Ok(())
    }

    /// The counters of the sink `name` (registered on first use).
    pub fn sink(&self, name: &str) -> Arc<SinkMetrics> {
        let mut sinks = lock(&self.sinks);
        if let Some((_, m)) = sinks.iter().find(|(n, _)| n == name) {
            return m.clone();
        }
        let metrics = Arc::new(SinkMetrics::default());
        sinks.push((name.to_string(), metrics.clone()));
        metrics
    }

    pub fn set_outbox_bytes(&self, outbox: &'static str, bytes: u64) {
        let mut sizes = lock(&self.outbox_bytes);
        match sizes.iter_mut().find(|(n, _)| *n == outbox) {
            Some((_, size)) => *size = bytes,
            None => sizes.push((outbox, bytes)),
        }
    }

    /// The exposition text as of `now_unix_ms`.
    pub fn render(&self, now_unix_ms: i64) -> String {
        let mut out = Exposition { text: String::with_capacity(4096) };

        out.family("auditwatch_up", "gauge", "1 while the process is running.");
        out.sample("auditwatch_up", &[], 1);
        out.family("auditwatch_build_info", "gauge", "Build of the running binary.");
        out.sample("auditwatch_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);

        out.family("auditwatch_events_total", "counter", "Events read from Kafka, by topic.");
        for (topic, count) in self.topic_names.iter().zip(&self.events) {
            out.sample("auditwatch_events_total", &[("topic", topic)], load(count));
        }
        out.family("auditwatch_decode_errors_total", "counter", "Messages rejected by the decoder, by reason.");
        for (reason, count) in DECODE_REASONS.iter().zip(&self.decode_errors) {
            out.sample("auditwatch_decode_errors_total", &[("reason", reason)], load(count));
        }
        out.family("auditwatch_dead_letters_total", "counter", "Messages written to the dead-letter destination.");
        out.sample("auditwatch_dead_letters_total", &[], load(&self.dead_letters));

        out.family("auditwatch_alerts_total", "counter", "Alerts raised, by category and severity.");
        for (row, category) in ALERT_CATEGORIES.iter().enumerate() {
            for (column, severity) in ALERT_SEVERITIES.iter().enumerate() {
                let count = load(&self.alerts[row * ALERT_SEVERITIES.len() + column]);
                // The known grid is always present; `other` cells only once something landed there.
                if count > 0 || (*category != OTHER && *severity != OTHER) {
                    out.sample("auditwatch_alerts_total", &[("category", category), ("severity", severity)], count);
                }
            }
        }
        out.family("auditwatch_alerts_folded_total", "counter", "Repeat findings folded into an open alert.");
        out.sample("auditwatch_alerts_folded_total", &[], load(&self.alerts_folded));

        out.family("auditwatch_consumer_lag", "gauge", "Messages behind the high watermark, by assigned partition.");
        for ((topic, partition), lag) in lock(&self.consumer_lag).iter() {
            out.sample("auditwatch_consumer_lag", &[("topic", topic), ("partition", &partition.to_string())], lag);
        }
        out.family("auditwatch_partitions_assigned", "gauge", "Partitions assigned to this instance.");
        out.sample("auditwatch_partitions_assigned", &[], self.partitions_assigned.load(Ordering::Relaxed));
        out.family("auditwatch_caught_up", "gauge", "1 when caught up with the assigned partitions.");
        out.sample("auditwatch_caught_up", &[], u8::from(self.caught_up.load(Ordering::Relaxed)));

        let checkpoints = self.checkpoints.load(Ordering::Acquire);
        out.family("auditwatch_checkpoints_total", "counter", "Checkpoints written.");
        out.sample("auditwatch_checkpoints_total", &[], checkpoints);
        out.family("auditwatch_checkpoint_failures_total", "counter", "Checkpoints that failed.");
        out.sample("auditwatch_checkpoint_failures_total", &[], load(&self.checkpoint_failures));
        // Before the first checkpoint there is no duration or age: no sample beats a made-up one.
        out.family("auditwatch_checkpoint_duration_seconds", "gauge", "Duration of the last checkpoint.");
        if checkpoints > 0 {
            let seconds = load(&self.last_checkpoint_nanos) as f64 / 1e9;
            out.sample("auditwatch_checkpoint_duration_seconds", &[], seconds);
        }
        out.family("auditwatch_checkpoint_age_seconds", "gauge", "Seconds since the last checkpoint finished.");
        if checkpoints > 0 {
            let last = self.last_checkpoint_unix_ms.load(Ordering::Relaxed);
            // A wall clock stepped backwards must not show a negative age.
            let age_ms = now_unix_ms.saturating_sub(last).max(0);
            out.sample("auditwatch_checkpoint_age_seconds", &[], age_ms as f64 / 1000.0);
        }

        out.family("auditwatch_accounts_tracked", "gauge", "Accounts with state in the engine.");
        out.sample("auditwatch_accounts_tracked", &[], load(&self.accounts_tracked));
        out.family("auditwatch_credentials_tracked", "gauge", "Credentials with state in the engine.");
        out.sample("auditwatch_credentials_tracked", &[], load(&self.credentials_tracked));
        out.family("auditwatch_state_bytes", "gauge", "Approximate bytes of engine state.");
        out.sample("auditwatch_state_bytes", &[], load(&self.state_bytes));
        out.family(
            "auditwatch_account_partition_changes_total",
            "counter",
            "Accounts seen on a different partition than before (events not keyed by account?).",
        );
        out.sample("auditwatch_account_partition_changes_total", &[], load(&self.account_partition_changes));
        out.family(
            "auditwatch_untracked_account_events_total",
            "counter",
            "Events of accounts left untracked because the account ceiling was reached.",
        );
        out.sample("auditwatch_untracked_account_events_total", &[], load(&self.untracked_account_events));
        out.family(
            "auditwatch_provider_service_events_total",
            "counter",
            "Events a provider's service made on its own (invoked_by is the account): retained, not judged.",
        );
        out.sample("auditwatch_provider_service_events_total", &[], load(&self.provider_service_events));
        out.family(
            "auditwatch_store_partitions_expired_total",
            "counter",
            "Day partitions of the store deleted because they were past the retention limit.",
        );
        out.sample("auditwatch_store_partitions_expired_total", &[], load(&self.store_partitions_expired));
        sinks::render(&mut out, &lock(&self.sinks), &lock(&self.outbox_bytes));

        out.text
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn index_or_other(known: &[&str], value: &str) -> usize {
    // `other` is last in every list, so a miss lands there.
    known.iter().position(|k| *k == value).unwrap_or(known.len() - 1)
}

/// Writes the text format. Writing to a `String` cannot fail, so `write!` results are ignored.
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, label_value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape(label_value, true));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// Escapes backslash and newline, and in label values also the double quote.
fn escape(text: &str, label_value: bool) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\\', '\n', '"']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if label_value => escaped.push_str("\\\""),
            c => escaped.push(c),
        }
    }
    std::borrow::Cow::Owned(escaped)
}

#[cfg(test)]
mod tests;
