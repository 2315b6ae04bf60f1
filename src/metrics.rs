//! The service's metrics: a fixed registry updated with atomics and rendered in the Prometheus
//! text exposition format, version 0.0.4.
//!
//! Invariants:
//! - **Lock-free hot path.** Per-event counters (events, decode errors, alerts) are plain
//!   atomics in slots allocated by [`Metrics::new`]; only the consumer lag, updated per poll
//!   batch and per rebalance, sits behind a mutex.
//! - **Known, bounded label sets.** Topics come from the configuration; decode reasons,
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
use std::sync::Mutex;
use std::time::Duration;

/// Reasons counted by `auditwatch_decode_errors_total`; the last one catches unknown reasons.
pub const DECODE_REASONS: [&str; 8] =
    ["too_large", "invalid_utf8", "malformed_json", "not_an_object", "missing_field", "invalid_field", "late", OTHER];

/// Alert categories and severities; each list ends in `other` for values added later.
pub const ALERT_CATEGORIES: [&str; 5] = ["failed_auth", "data_volume", "off_hours", "credential_misuse", OTHER];
pub const ALERT_SEVERITIES: [&str; 5] = ["low", "medium", "high", "critical", OTHER];

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
    pub fn untracked_account_events(&self, n: u64) {
        self.untracked_account_events.fetch_add(n, Ordering::Relaxed);
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

/// Locks even if a panicking thread poisoned the mutex: a map of numbers cannot be left torn.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// One parsed sample: metric name, label pairs (unescaped), value.
    type Sample = (String, Vec<(String, String)>, f64);

    /// A strict parser of what we write: fails the test on anything outside the format.
    fn parse(text: &str) -> Vec<Sample> {
        assert!(text.ends_with('\n'), "exposition must end with a newline");
        let mut help = HashMap::<String, usize>::new();
        let mut kinds = HashMap::<String, String>::new();
        let mut finished = HashSet::<String>::new();
        let mut current: Option<String> = None;
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().expect("HELP has a name").to_owned();
                *help.entry(name).or_default() += 1;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let parts: Vec<&str> = rest.split(' ').collect();
                assert_eq!(parts.len(), 2, "TYPE line {line:?}");
                assert!(["counter", "gauge"].contains(&parts[1]), "type in {line:?}");
                assert!(kinds.insert(parts[0].to_owned(), parts[1].to_owned()).is_none(), "TYPE twice: {line:?}");
                if let Some(previous) = current.replace(parts[0].to_owned()) {
                    finished.insert(previous);
                }
            } else {
                assert!(!line.starts_with('#'), "unexpected comment {line:?}");
                let sample = parse_sample(line);
                assert_eq!(current.as_deref(), Some(sample.0.as_str()), "sample outside its family: {line:?}");
                assert!(!finished.contains(&sample.0), "family split: {line:?}");
                if kinds[&sample.0] == "counter" {
                    assert!(sample.0.ends_with("_total"), "counter without _total: {line:?}");
                }
                samples.push(sample);
            }
        }
        for name in kinds.keys() {
            assert_eq!(help.get(name), Some(&1), "HELP for {name}");
        }
        assert_eq!(help.len(), kinds.len(), "HELP without TYPE");
        let series: HashSet<String> = samples.iter().map(|(n, l, _)| format!("{n}{l:?}")).collect();
        assert_eq!(series.len(), samples.len(), "duplicate series");
        samples
    }

    fn parse_sample(line: &str) -> Sample {
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value in {line:?}"));
        let name = &line[..name_end];
        assert!(!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()), "name in {line:?}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "name in {line:?}");
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                let eq = inner.find("=\"").unwrap_or_else(|| panic!("label in {line:?}"));
                let label = &inner[..eq];
                assert!(!label.is_empty(), "empty label name in {line:?}");
                assert!(label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "label name in {line:?}");
                let mut value = String::new();
                let mut chars = inner[eq + 2..].char_indices();
                let close = loop {
                    match chars.next() {
                        Some((i, '"')) => break eq + 2 + i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line:?}"),
                        },
                        None => panic!("unterminated label value in {line:?}"),
                        Some((_, c)) => value.push(c),
                    }
                };
                labels.push((label.to_owned(), value));
                let after = &inner[close + 1..];
                if let Some(next) = after.strip_prefix(',') {
                    inner = next;
                } else if let Some(end) = after.strip_prefix('}') {
                    rest = end;
                    break;
                } else {
                    panic!("after label value in {line:?}");
                }
            }
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("one space before value in {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
        (name.to_owned(), labels, value)
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name && l.len() == labels.len() && l.iter().zip(labels).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
            })
            .map(|(_, _, v)| *v)
    }

    fn topics(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn render_is_parseable_and_complete() {
        let metrics = Metrics::new(&topics(&["audit.events", "audit.other"]));
        metrics.events(0, 5);
        metrics.event(1);
        metrics.decode_error("missing_field");
        metrics.dead_letter();
        metrics.alert("failed_auth", "high");
        metrics.alerts_folded(3);
        metrics.set_consumer_lag("audit.events", 7, 42);
        metrics.set_partitions_assigned(3);
        metrics.set_caught_up(true);
        metrics.checkpoint_done(Duration::from_millis(250), 1_000);
        metrics.checkpoint_failed();
        metrics.set_state(10, 20, 30);
        metrics.account_partition_change();
        metrics.untracked_account_events(4);

        let samples = parse(&metrics.render(2_000));
        let expect = |name: &str, labels: &[(&str, &str)], expected: f64| {
            assert_eq!(value(&samples, name, labels), Some(expected), "{name}{labels:?}");
        };
        expect("auditwatch_up", &[], 1.0);
        expect("auditwatch_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        expect("auditwatch_events_total", &[("topic", "audit.events")], 5.0);
        expect("auditwatch_events_total", &[("topic", "audit.other")], 1.0);
        expect("auditwatch_decode_errors_total", &[("reason", "missing_field")], 1.0);
        expect("auditwatch_decode_errors_total", &[("reason", "late")], 0.0);
        expect("auditwatch_dead_letters_total", &[], 1.0);
        expect("auditwatch_alerts_total", &[("category", "failed_auth"), ("severity", "high")], 1.0);
        expect("auditwatch_alerts_total", &[("category", "off_hours"), ("severity", "low")], 0.0);
        expect("auditwatch_alerts_folded_total", &[], 3.0);
        expect("auditwatch_consumer_lag", &[("topic", "audit.events"), ("partition", "7")], 42.0);
        expect("auditwatch_partitions_assigned", &[], 3.0);
        expect("auditwatch_caught_up", &[], 1.0);
        expect("auditwatch_checkpoints_total", &[], 1.0);
        expect("auditwatch_checkpoint_failures_total", &[], 1.0);
        expect("auditwatch_checkpoint_duration_seconds", &[], 0.25);
        expect("auditwatch_accounts_tracked", &[], 10.0);
        expect("auditwatch_credentials_tracked", &[], 20.0);
        expect("auditwatch_state_bytes", &[], 30.0);
        expect("auditwatch_account_partition_changes_total", &[], 1.0);
        expect("auditwatch_untracked_account_events_total", &[], 4.0);
        // The full label sets exist from the start: 16 alert cells, 8 decode reasons.
        assert_eq!(samples.iter().filter(|s| s.0 == "auditwatch_alerts_total").count(), 16);
        assert_eq!(samples.iter().filter(|s| s.0 == "auditwatch_decode_errors_total").count(), 8);
    }

    #[test]
    fn fresh_registry_renders_without_checkpoint_samples() {
        let samples = parse(&Metrics::new(&topics(&["audit.events"])).render(0));
        assert_eq!(value(&samples, "auditwatch_checkpoints_total", &[]), Some(0.0));
        assert_eq!(value(&samples, "auditwatch_checkpoint_age_seconds", &[]), None);
        assert_eq!(value(&samples, "auditwatch_checkpoint_duration_seconds", &[]), None);
        assert_eq!(value(&samples, "auditwatch_caught_up", &[]), Some(0.0));
    }

    #[test]
    fn label_values_are_escaped() {
        let odd = "a\\b\"c\nd";
        let metrics = Metrics::new(&[odd.to_owned()]);
        metrics.event(0);
        metrics.set_consumer_lag(odd, 0, 1);
        let text = metrics.render(0);
        assert!(text.contains(r#"auditwatch_events_total{topic="a\\b\"c\nd"} 1"#), "{text}");
        let samples = parse(&text);
        assert_eq!(value(&samples, "auditwatch_events_total", &[("topic", odd)]), Some(1.0));
        assert_eq!(value(&samples, "auditwatch_consumer_lag", &[("topic", odd), ("partition", "0")]), Some(1.0));
    }

    #[test]
    fn help_text_escapes_backslash_and_newline_but_not_quotes() {
        assert_eq!(escape("a\\b\n\"c\"", false), "a\\\\b\\n\"c\"");
        assert_eq!(escape("a\\b\n\"c\"", true), "a\\\\b\\n\\\"c\\\"");
        assert!(matches!(escape("plain", true), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn checkpoint_age_comes_from_the_injected_now() {
        let metrics = Metrics::new(&[]);
        metrics.checkpoint_done(Duration::from_micros(1_500), 1_700_000_000_000);
        let at = |now| value(&parse(&metrics.render(now)), "auditwatch_checkpoint_age_seconds", &[]);
        assert_eq!(at(1_700_000_000_000), Some(0.0));
        assert_eq!(at(1_700_000_012_500), Some(12.5));
        // A clock that stepped back shows zero, not a negative age.
        assert_eq!(at(1_699_999_999_000), Some(0.0));
        let duration = value(&parse(&metrics.render(0)), "auditwatch_checkpoint_duration_seconds", &[]);
        assert_eq!(duration, Some(0.0015));
    }

    #[test]
    fn unknown_decode_reason_counts_as_other() {
        let metrics = Metrics::new(&[]);
        metrics.decode_error("cosmic_rays");
        metrics.decode_error("too_large");
        let samples = parse(&metrics.render(0));
        assert_eq!(value(&samples, "auditwatch_decode_errors_total", &[("reason", "other")]), Some(1.0));
        assert_eq!(value(&samples, "auditwatch_decode_errors_total", &[("reason", "too_large")]), Some(1.0));
        assert_eq!(value(&samples, "auditwatch_decode_errors_total", &[("reason", "cosmic_rays")]), None);
    }

    #[test]
    fn unknown_alert_labels_count_as_other_and_appear_only_when_used() {
        let metrics = Metrics::new(&[]);
        let before = parse(&metrics.render(0));
        assert!(!before.iter().any(|(_, labels, _)| labels.iter().any(|(_, v)| v == "other" && labels.len() == 2)));
        metrics.alert("lateral_movement", "high");
        let samples = parse(&metrics.render(0));
        let other = [("category", "other"), ("severity", "high")];
        assert_eq!(value(&samples, "auditwatch_alerts_total", &other), Some(1.0));
        assert_eq!(samples.iter().filter(|s| s.0 == "auditwatch_alerts_total").count(), 17);
    }

    #[test]
    fn lag_is_cleared_on_revoke() {
        let metrics = Metrics::new(&[]);
        metrics.set_consumer_lag("audit.events", 0, 10);
        metrics.set_consumer_lag("audit.events", 1, 20);
        metrics.set_consumer_lag("audit.events", 1, 5);
        metrics.clear_consumer_lag("audit.events", 0);
        let samples = parse(&metrics.render(0));
        assert_eq!(value(&samples, "auditwatch_consumer_lag", &[("topic", "audit.events"), ("partition", "0")]), None);
        assert_eq!(
            value(&samples, "auditwatch_consumer_lag", &[("topic", "audit.events"), ("partition", "1")]),
            Some(5.0)
        );
    }

    #[test]
    fn lag_series_are_bounded() {
        let metrics = Metrics::new(&[]);
        for partition in 0..(MAX_LAG_SERIES as i32 + 10) {
            metrics.set_consumer_lag("t", partition, 1);
        }
        let samples = parse(&metrics.render(0));
        assert_eq!(samples.iter().filter(|s| s.0 == "auditwatch_consumer_lag").count(), MAX_LAG_SERIES);
    }

    #[test]
    fn duplicate_topics_share_one_series() {
        let metrics = Metrics::new(&topics(&["a", "b", "a"]));
        metrics.event(0);
        metrics.event(2);
        metrics.event(1);
        let samples = parse(&metrics.render(0));
        assert_eq!(value(&samples, "auditwatch_events_total", &[("topic", "a")]), Some(2.0));
        assert_eq!(value(&samples, "auditwatch_events_total", &[("topic", "b")]), Some(1.0));
    }

    #[test]
    fn ready_needs_partitions_and_catch_up() {
        let metrics = Metrics::new(&[]);
        assert_eq!(metrics.ready(), Err("no partitions assigned".to_owned()));
        metrics.set_partitions_assigned(3);
        assert!(metrics.ready().unwrap_err().contains("caught up"));
        metrics.set_caught_up(true);
        assert_eq!(metrics.ready(), Ok(()));
        metrics.set_partitions_assigned(0);
        assert!(metrics.ready().is_err());
    }
}
