//! One worker thread per sink: it reads the outbox from the sink's cursor, delivers, and moves
//! the cursor only past what is safe: confirmed by the sink, or (for a notifier) taken into its
//! durable groups.
//!
//! For an alert output the worker first applies the [`Plan`]: the routes (is this alert for
//! this output?), the silences, and the output's masking. A feed then gets the alerts in
//! batches; a notifier gets them grouped (`alerting::group`) into notifications.
//!
//! A failure is retried with capped exponential backoff and full jitter (100 ms doubling to
//! 30 s), or after the wait the destination asked for (`Retry-After`), and never moves the
//! cursor; the backlog meanwhile waits on disk in the outbox, so a slow or dead sink stalls
//! neither ingestion nor the other sinks. What the sink rejects for good (a permanent error) is
//! appended to `<outbox dir>/<sink>.dead.jsonl` with the reason, and the worker moves on.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tracing::{debug, info, warn};

use crate::admin::metrics::SinkMetrics;
use crate::alerting::group::{Due, Groups};
use crate::alerting::mask::mask;
use crate::alerting::route::{Route, Router};
use crate::alerting::silence::Silences;
use crate::config::MaskedField;
use crate::detection::time::Millis;
use crate::sinks::{DeliveryError, Feed, Notifier, Sink};
use crate::state::outbox::{Entry, OutboxReader};

/// Most entries handed to a sink at once.
const BATCH: usize = 500;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long an idle worker waits for new entries before checking timers and whether to stop.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// What the worker of an alert output applies before its sink sees an alert.
pub struct Plan {
    pub router: Arc<Router>,
    pub silences: Silences,
    pub mask: Vec<MaskedField>,
}

/// An alert after the plan: the route that sends it here and its masked body, or why not.
enum Prepared {
    Deliver(Box<Route>, Value),
    NotRouted,
    Silenced(String),
}

impl Plan {
    fn prepare(&mut self, output: &str, entry: &Entry) -> Prepared {
        // The outbox holds what the pipeline serialized, so it parses.
        let mut alert: Value = serde_json::from_slice(&entry.body).unwrap_or_default();
        let Some(route) = self.router.route_to(&alert, output).cloned().map(Box::new) else {
            return Prepared::NotRouted;
        };
        if let Some(id) = self.silences.silencing(&alert, chrono::Utc::now()) {
            return Prepared::Silenced(id.to_string());
        }
        mask(&mut alert, &self.mask);
        Prepared::Deliver(route, alert)
    }
}

/// Start the worker of `sink`, reading `reader`; `dir` is the outbox directory, where its
/// dead-letter file (and a notifier's groups) are kept. `plan` is `None` for the dead-letter
/// outbox, whose entries go out as they are. It returns once the outbox tells its workers to
/// stop.
pub fn spawn(
    sink: Sink,
    reader: OutboxReader,
    metrics: Arc<SinkMetrics>,
    dir: &Path,
    plan: Option<Plan>,
) -> std::io::Result<JoinHandle<()>> {
    let name = reader.sink().to_string();
    let mut worker = Worker {
        dead_letter_file: dir.join(format!("{name}.dead.jsonl")),
        seed: xxhash_rust::xxh3::xxh3_64(name.as_bytes()) | 1,
        reader,
        metrics,
        plan,
    };
    let groups = match &sink {
        Sink::Notifier(_) => Some(Groups::open(dir, &name)?),
        Sink::Feed(_) => None,
    };
    if matches!(sink, Sink::Notifier(_)) && worker.plan.is_none() {
        return Err(std::io::Error::other(format!("{name}: a notifier needs the alert plan")));
    }
    std::thread::Builder::new().name(format!("sink-{name}")).spawn(move || match (sink, groups) {
        (Sink::Feed(mut feed), _) => worker.run_feed(&mut feed),
        (Sink::Notifier(mut notifier), Some(mut groups)) => worker.run_notifier(&mut notifier, &mut groups),
        (Sink::Notifier(_), None) => {}
    })
}

struct Worker {
    reader: OutboxReader,
    metrics: Arc<SinkMetrics>,
    plan: Option<Plan>,
    dead_letter_file: PathBuf,
    seed: u64,
}

impl Worker {
    fn name(&self) -> &str {
        self.reader.sink()
    }

    /// Reads the next batch; `None` when the worker should stop.
    fn next_batch(&mut self) -> Option<Vec<Entry>> {
        match self.reader.next_batch(BATCH, IDLE_WAIT) {
            Ok(batch) if batch.is_empty() && self.reader.stopping() => None,
            Ok(batch) => Some(batch),
            Err(error) => {
                warn!(%error, sink = self.name(), "cannot read the outbox; retrying");
                self.reader.pause(Duration::from_secs(1)).then(Vec::new)
            }
        }
    }

    fn run_feed(&mut self, feed: &mut Feed) {
        while let Some(batch) = self.next_batch() {
            let Some(last) = batch.last().map(|e| e.seq) else { continue };
            let entries = match self.plan.as_mut() {
                None => batch,
                Some(plan) => {
                    let name = self.reader.sink().to_string();
                    let mut kept = Vec::with_capacity(batch.len());
                    for entry in batch {
                        match plan.prepare(&name, &entry) {
                            // Unmasked, the body goes out as the outbox holds it.
                            Prepared::Deliver(..) if plan.mask.is_empty() => kept.push(entry),
                            Prepared::Deliver(_, alert) => {
                                let body = serde_json::to_vec(&alert).unwrap_or_default();
                                kept.push(Entry { body, ..entry });
                            }
                            Prepared::NotRouted => {}
                            Prepared::Silenced(id) => {
                                SinkMetrics::add(&self.metrics.silenced, 1);
                                debug!(sink = name, alert = entry.id, silence = id, "silenced");
                            }
                        }
                    }
                    kept
                }
            };
            if !self.deliver_entries(feed, &entries) {
                return;
            }
            // Skipped entries after the last delivered one.
            self.confirm(last + 1);
        }
    }

    /// Deliver one batch, retrying until it is all confirmed (or dead-lettered). False when
    /// told to stop first; what was not confirmed stays in the outbox for the next start.
    fn deliver_entries(&mut self, feed: &mut Feed, batch: &[Entry]) -> bool {
        let mut rest = batch;
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        self.metrics.set_oldest_pending(rest.first().map(|e| pending_since(&e.body)));
        while !rest.is_empty() {
            // Once told to stop, no new attempt: what is left goes out after the next start.
            if self.reader.stopping() {
                return false;
            }
            let outcome = feed.deliver(rest);
            let confirmed = match &outcome {
                Ok(()) => rest.len(),
                Err(e) => e.confirmed.min(rest.len()),
            };
            if confirmed > 0 {
                SinkMetrics::add(&self.metrics.delivered, confirmed as u64);
                self.confirm(rest[confirmed - 1].seq + 1);
                rest = &rest[confirmed..];
                self.metrics.set_oldest_pending(rest.first().map(|e| pending_since(&e.body)));
            }
            match outcome {
                Ok(()) => break,
                Err(error) if error.permanent => {
                    let Some(entry) = rest.first() else { break };
                    let body: Value = serde_json::from_slice(&entry.body)
                        .unwrap_or_else(|_| String::from_utf8_lossy(&entry.body).into());
                    if self.dead_letter(&entry.id, body, &error) {
                        self.confirm(entry.seq + 1);
                        rest = &rest[1..];
                    }
                }
                Err(error) => {
                    if !self.wait_to_retry(&error, &mut backoff, &mut failing) {
                        return false;
                    }
                }
            }
        }
        if failing {
            info!(sink = self.name(), "sink delivers again");
        }
        self.metrics.set_oldest_pending(None);
        true
    }

    fn run_notifier(&mut self, notifier: &mut Notifier, groups: &mut Groups) {
        let resolved = notifier.wants_resolved();
        loop {
            while let Some(due) = groups.due(now_millis(), resolved) {
                if !self.notify(notifier, groups, &due) {
                    return;
                }
            }
            let Some(batch) = self.next_batch() else { return };
            let Some(last) = batch.last().map(|e| e.seq) else { continue };
            let name = self.reader.sink().to_string();
            let Some(plan) = self.plan.as_mut() else { return };
            let through = groups.through();
            for entry in batch.iter().filter(|e| e.seq >= through) {
                match plan.prepare(&name, entry) {
                    Prepared::Deliver(route, alert) => groups.add(&route, alert, now_millis()),
                    Prepared::NotRouted => {}
                    Prepared::Silenced(id) => {
                        SinkMetrics::add(&self.metrics.silenced, 1);
                        debug!(sink = name, alert = entry.id, silence = id, "silenced");
                    }
                }
            }
            groups.set_through(last + 1);
            // The groups hold the alerts durably before the cursor moves past them.
            if !self.save(groups) {
                return;
            }
            self.metrics.open_groups.store(groups.open_groups() as u64, std::sync::atomic::Ordering::Relaxed);
            self.confirm(last + 1);
        }
    }

    /// Send one due notification, retrying; false when told to stop first (the group keeps it).
    fn notify(&mut self, notifier: &mut Notifier, groups: &mut Groups, due: &Due) -> bool {
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        self.metrics.set_oldest_pending(Some(chrono::Utc::now().timestamp_millis()));
        loop {
            if self.reader.stopping() {
                return false;
            }
            match notifier.notify(&due.notification) {
                Ok(()) => {
                    SinkMetrics::add(&self.metrics.delivered, 1);
                    break;
                }
                Err(error) if error.permanent => {
                    let body = serde_json::to_value(&due.notification).unwrap_or_default();
                    if self.dead_letter(&due.notification.id, body, &error) {
                        break;
                    }
                }
                Err(error) => {
                    if !self.wait_to_retry(&error, &mut backoff, &mut failing) {
                        return false;
                    }
                }
            }
        }
        if failing {
            info!(sink = self.name(), "sink delivers again");
        }
        self.metrics.set_oldest_pending(None);
        groups.sent(due, now_millis());
        self.save(groups)
    }

    /// Write the groups, retrying while the disk refuses; false when told to stop first.
    fn save(&self, groups: &Groups) -> bool {
        while let Err(error) = groups.save() {
            warn!(%error, sink = self.name(), "cannot save the notification groups; retrying");
            if !self.reader.pause(Duration::from_secs(1)) {
                return false;
            }
        }
        true
    }

    /// Count a transient failure and wait before the next attempt. False when told to stop.
    fn wait_to_retry(&mut self, error: &DeliveryError, backoff: &mut Duration, failing: &mut bool) -> bool {
        SinkMetrics::add(&self.metrics.failures_transient, 1);
        SinkMetrics::add(&self.metrics.retries, 1);
        if !*failing {
            warn!(sink = self.name(), reason = error.reason, "delivery failed; retrying with backoff");
        }
        *failing = true;
        // The destination's own wait wins over ours, within the cap.
        let wait = match error.retry_after {
            Some(asked) => asked.min(MAX_BACKOFF * 10),
            None => jittered(*backoff, &mut self.seed),
        };
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        self.reader.pause(wait)
    }

    /// Keep an entry the sink rejected for good in its dead-letter file. False if that file
    /// cannot be written, so the entry is retried instead of lost.
    fn dead_letter(&mut self, id: &str, body: Value, error: &DeliveryError) -> bool {
        SinkMetrics::add(&self.metrics.failures_permanent, 1);
        warn!(
            sink = self.name(),
            id,
            reason = error.reason,
            "sink rejected an entry for good; it goes to the sink's dead-letter file"
        );
        let line = serde_json::json!({ "id": id, "reason": error.reason, "entry": body });
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.dead_letter_file)
            .and_then(|mut file| writeln!(file, "{line}").and_then(|()| file.sync_data()));
        match written {
            Ok(()) => {
                SinkMetrics::add(&self.metrics.dead_lettered, 1);
                true
            }
            Err(io) => {
                warn!(%io, "cannot write the sink's dead-letter file; retrying the entry");
                self.reader.pause(Duration::from_secs(1))
            }
        }
    }

    fn confirm(&mut self, next: u64) {
        if let Err(error) = self.reader.confirm(next) {
            // The entries were delivered; a cursor not saved only repeats them after a restart.
            warn!(%error, sink = self.name(), "cannot save the sink's outbox cursor");
        }
    }
}

fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// When an entry started waiting: the alert's `detected_at`, else now.
fn pending_since(body: &[u8]) -> Millis {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["detected_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()))
        .map_or_else(now_millis, |t| t.timestamp_millis())
}

/// Full jitter: a uniform wait in [0, backoff], so retrying sinks do not march in step.
fn jittered(backoff: Duration, seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    backoff.mul_f64((*seed >> 11) as f64 / (1u64 << 53) as f64)
}
