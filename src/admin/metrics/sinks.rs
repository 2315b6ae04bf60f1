//! Per-sink delivery metrics and the outboxes' size on disk. Labels carry sink and outbox
//! names from the config, never account ids.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Exposition;

/// Counters of one sink's worker.
#[derive(Default)]
pub struct SinkMetrics {
    /// Entries in the outbox this sink has not confirmed.
    pub pending: AtomicU64,
    pub delivered: AtomicU64,
    /// Failed delivery attempts (each is retried, or dead-lettered when permanent).
    pub failures: AtomicU64,
    /// Entries given up as undeliverable and written to the sink's dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Entries moved to the sink's overflow file because the outbox reached its size bound.
    pub overflowed: AtomicU64,
}

impl SinkMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub(super) fn render(out: &mut Exposition, sinks: &[(String, std::sync::Arc<SinkMetrics>)], outboxes: &[(&str, u64)]) {
    type Family = (&'static str, &'static str, &'static str, fn(&SinkMetrics) -> &AtomicU64);
    let families: [Family; 5] = [
        ("auditwatch_sink_pending", "gauge", "Outbox entries the sink has not confirmed yet.", |m| &m.pending),
        ("auditwatch_sink_delivered_total", "counter", "Entries the sink confirmed.", |m| &m.delivered),
        ("auditwatch_sink_failures_total", "counter", "Failed delivery attempts (retried with backoff).", |m| {
            &m.failures
        }),
        (
            "auditwatch_sink_dead_lettered_total",
            "counter",
            "Entries the sink rejected for good, kept in its dead-letter file.",
            |m| &m.dead_lettered,
        ),
        (
            "auditwatch_sink_overflowed_total",
            "counter",
            "Entries moved to the overflow file at the outbox size bound.",
            |m| &m.overflowed,
        ),
    ];
    for (name, kind, help, counter) in families {
        out.family(name, kind, help);
        for (sink, metrics) in sinks {
            out.sample(name, &[("sink", sink)], counter(metrics).load(Ordering::Relaxed));
        }
    }
    out.family("auditwatch_outbox_bytes", "gauge", "Size of an outbox's segments on disk.");
    for (outbox, bytes) in outboxes {
        out.sample("auditwatch_outbox_bytes", &[("outbox", outbox)], bytes);
    }
}
