//! Per-sink delivery metrics and the outboxes' size on disk. Labels carry sink and outbox
//! names from the config, never account ids.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::Exposition;

/// Counters of one sink's worker.
#[derive(Default)]
pub struct SinkMetrics {
    /// Entries in the outbox this sink has not confirmed.
    pub pending: AtomicU64,
    /// Entries (feeds) or notifications (notifiers) the destination confirmed.
    pub delivered: AtomicU64,
    /// Failed attempts that are retried (outages, timeouts, 5xx, 429).
    pub failures_transient: AtomicU64,
    /// Rejections for good (4xx, SMTP 5xx), kept in the sink's dead-letter file.
    pub failures_permanent: AtomicU64,
    /// Attempts after a failure.
    pub retries: AtomicU64,
    /// Entries given up as undeliverable and written to the sink's dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Entries moved to the sink's overflow file because the outbox reached its size bound.
    pub overflowed: AtomicU64,
    /// Alerts an active silence kept from this sink.
    pub silenced: AtomicU64,
    /// Notification groups open (notifiers).
    pub open_groups: AtomicU64,
    /// Unix millis since which the oldest entry the worker holds has waited; 0 when none.
    oldest_pending_since: AtomicI64,
}

impl SinkMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The worker holds an undelivered entry waiting since `since` (unix millis), or none.
    pub fn set_oldest_pending(&self, since: Option<i64>) {
        self.oldest_pending_since.store(since.unwrap_or(0), Ordering::Relaxed);
    }

    fn oldest_pending_seconds(&self, now_millis: i64) -> f64 {
        match self.oldest_pending_since.load(Ordering::Relaxed) {
            0 => 0.0,
            since => (now_millis - since).max(0) as f64 / 1000.0,
        }
    }
}

pub(super) fn render(out: &mut Exposition, sinks: &[(String, std::sync::Arc<SinkMetrics>)], outboxes: &[(&str, u64)]) {
    type Family = (&'static str, &'static str, &'static str, fn(&SinkMetrics) -> &AtomicU64);
    let families: [Family; 7] = [
        ("auditwatch_sink_pending", "gauge", "Outbox entries the sink has not confirmed yet.", |m| &m.pending),
        (
            "auditwatch_sink_delivered_total",
            "counter",
            "Entries (notifications for email, Slack, PagerDuty) the destination confirmed.",
            |m| &m.delivered,
        ),
        ("auditwatch_sink_retries_total", "counter", "Delivery attempts after a failure.", |m| &m.retries),
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
        ("auditwatch_sink_silenced_total", "counter", "Alerts an active silence kept from the sink.", |m| &m.silenced),
        ("auditwatch_sink_open_groups", "gauge", "Notification groups open.", |m| &m.open_groups),
    ];
    for (name, kind, help, counter) in families {
        out.family(name, kind, help);
        for (sink, metrics) in sinks {
            out.sample(name, &[("sink", sink)], counter(metrics).load(Ordering::Relaxed));
        }
    }
    out.family(
        "auditwatch_sink_failures_total",
        "counter",
        "Failed delivery attempts, by kind: transient (retried) or permanent (dead-lettered).",
    );
    for (sink, metrics) in sinks {
        for (kind, counter) in [("transient", &metrics.failures_transient), ("permanent", &metrics.failures_permanent)]
        {
            out.sample(
                "auditwatch_sink_failures_total",
                &[("sink", sink), ("kind", kind)],
                counter.load(Ordering::Relaxed),
            );
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    out.family(
        "auditwatch_sink_oldest_pending_seconds",
        "gauge",
        "How long the oldest entry the sink's worker holds undelivered has waited.",
    );
    for (sink, metrics) in sinks {
        out.sample("auditwatch_sink_oldest_pending_seconds", &[("sink", sink)], metrics.oldest_pending_seconds(now));
    }
    out.family("auditwatch_outbox_bytes", "gauge", "Size of an outbox's segments on disk.");
    for (outbox, bytes) in outboxes {
        out.sample("auditwatch_outbox_bytes", &[("outbox", outbox)], bytes);
    }
}
