//! One worker thread per sink: it reads the outbox from the sink's cursor, delivers in batches,
//! and moves the cursor only past what the sink confirmed.
//!
//! A failure is retried with capped exponential backoff and full jitter (100 ms doubling to
//! 30 s), and never moves the cursor; the backlog meanwhile waits on disk in the outbox, so a
//! slow or dead sink stalls neither ingestion nor the other sinks. An entry the sink rejects
//! for good (a permanent error) is appended to `<state dir>/outbox/<outbox>/<sink>.dead.jsonl`
//! with the reason, and the worker moves on.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};

use crate::admin::metrics::SinkMetrics;
use crate::sinks::Sink;
use crate::state::outbox::{Entry, OutboxReader};

/// Most entries handed to a sink at once.
const BATCH: usize = 500;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long an idle worker waits for new entries before checking whether to stop.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Start the worker of `sink`. It returns once the outbox tells its workers to stop.
pub fn spawn(
    sink: Sink,
    mut reader: OutboxReader,
    metrics: Arc<SinkMetrics>,
    dead_letter_file: PathBuf,
) -> std::io::Result<JoinHandle<()>> {
    let Sink::Feed(mut sink) = sink else {
        return Err(std::io::Error::other("notifiers are not wired to the worker yet"));
    };
    std::thread::Builder::new().name(format!("sink-{}", reader.sink())).spawn(move || {
        let mut seed = xxhash_rust::xxh3::xxh3_64(reader.sink().as_bytes()) | 1;
        loop {
            let batch = match reader.next_batch(BATCH, IDLE_WAIT) {
                Ok(batch) => batch,
                Err(error) => {
                    warn!(%error, sink = reader.sink(), "cannot read the outbox; retrying");
                    if !reader.pause(Duration::from_secs(1)) {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                if reader.stopping() {
                    return;
                }
                continue;
            }
            if !deliver(&mut sink, &mut reader, &batch, &metrics, &dead_letter_file, &mut seed) {
                return;
            }
        }
    })
}

/// Deliver one batch, retrying until it is all confirmed (or dead-lettered). False when told
/// to stop first; what was not confirmed stays in the outbox for the next start.
fn deliver(
    sink: &mut crate::sinks::Feed,
    reader: &mut OutboxReader,
    batch: &[Entry],
    metrics: &SinkMetrics,
    dead_letter_file: &Path,
    seed: &mut u64,
) -> bool {
    let mut rest = batch;
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    while !rest.is_empty() {
        // Once told to stop, no new attempt: what is left goes out after the next start.
        if reader.stopping() {
            return false;
        }
        let outcome = sink.deliver(rest);
        let confirmed = match &outcome {
            Ok(()) => rest.len(),
            Err(e) => e.confirmed.min(rest.len()),
        };
        if confirmed > 0 {
            SinkMetrics::add(&metrics.delivered, confirmed as u64);
            confirm(reader, rest[confirmed - 1].seq + 1);
            rest = &rest[confirmed..];
        }
        match outcome {
            Ok(()) => {
                if failing {
                    info!(sink = reader.sink(), "sink delivers again");
                }
                return true;
            }
            Err(error) if error.permanent => {
                SinkMetrics::add(&metrics.failures, 1);
                let Some(entry) = rest.first() else { return true };
                warn!(
                    sink = reader.sink(),
                    id = entry.id,
                    reason = error.reason,
                    "sink rejected an entry for good; it goes to the sink's dead-letter file"
                );
                if let Err(io) = dead_letter(dead_letter_file, entry, &error.reason) {
                    warn!(%io, "cannot write the sink's dead-letter file; retrying the entry");
                } else {
                    SinkMetrics::add(&metrics.dead_lettered, 1);
                    confirm(reader, entry.seq + 1);
                    rest = &rest[1..];
                }
            }
            Err(error) => {
                SinkMetrics::add(&metrics.failures, 1);
                if !failing {
                    warn!(sink = reader.sink(), reason = error.reason, "delivery failed; retrying with backoff");
                }
                failing = true;
                if !reader.pause(jittered(backoff, seed)) {
                    return false;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    true
}

fn confirm(reader: &mut OutboxReader, next: u64) {
    if let Err(error) = reader.confirm(next) {
        // The entries were delivered; a cursor not saved only repeats them after a restart.
        warn!(%error, sink = reader.sink(), "cannot save the sink's outbox cursor");
    }
}

/// Full jitter: a uniform wait in [0, backoff], so retrying sinks do not march in step.
fn jittered(backoff: Duration, seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    backoff.mul_f64((*seed >> 11) as f64 / (1u64 << 53) as f64)
}

fn dead_letter(path: &Path, entry: &Entry, reason: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let body: serde_json::Value =
        serde_json::from_slice(&entry.body).unwrap_or_else(|_| String::from_utf8_lossy(&entry.body).into());
    let line = serde_json::json!({ "id": entry.id, "reason": reason, "entry": body });
    writeln!(file, "{line}")?;
    file.sync_data()
}
