//! The tables' columns, and the Arrow record batches of a segment. Runs on the writer thread:
//! events are decoded again from their original bytes here (the decoder is deterministic), one
//! row at a time in the order they are written, so the pipeline thread only copies bytes.
//!
//! `events`: the normalized fields of [`AuditEvent`](crate::input::event::AuditEvent),
//! `attributes` as the JSON text the producer wrote (native input only; the other formats have
//! no such object), `id`, `origin` (`topic/partition/offset` or `file:line`, as dead-letter
//! ids) and `raw`, the message as received. Rows are sorted by account, then time, so a reader
//! filtering on an account skips most row groups. Columns whose values are all distinct get no
//! dictionary and no statistics.
//!
//! `dead_letters`: `time` (the event's, for an event rejected as late, else when it was
//! received from Kafka; null for a replayed line that is not an event), `kind`, `field`,
//! `reason`, `origin`, and `raw` as bytes (they may not be text).
//!
//! `alerts`: the alert's fields (`time`, `id`, `detector`, `category`, `severity`, `account`,
//! `tenant`, `credential_id`, `source_ip`, `window_start`, `window_end`, `observed`,
//! `expected`, `score`, `summary`), `evidence` as JSON text, and `origin`, the event that
//! raised it.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::file::metadata::SortingColumn;

use super::{Segment, SourceKind, Table};
use crate::input::formats::decode_as;

fn time_field(nullable: bool) -> Field {
    timestamp("time", nullable)
}

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), nullable)
}

pub fn events() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let text = |name, nullable| Field::new(name, DataType::Utf8, nullable);
            Arc::new(Schema::new(vec![
                time_field(false),
                text("account", false),
                text("tenant", true),
                text("action", false),
                text("outcome", false),
                text("credential_id", true),
                text("credential_kind", true),
                text("credential_owner", true),
                text("session_name", true),
                text("session_instance", true),
                text("invoked_by", true),
                Field::new("mfa", DataType::Boolean, true),
                text("source_ip", true),
                text("source_country", true),
                Field::new("source_asn", DataType::UInt32, true),
                text("source_as_org", true),
                text("source_provider", true),
                text("user_agent", true),
                text("target_system", true),
                text("target_resource", true),
                Field::new("bytes", DataType::UInt64, true),
                Field::new("records", DataType::UInt64, true),
                text("reason", true),
                text("attributes", true),
                text("id", false),
                text("origin", false),
                text("raw", false),
            ]))
        })
        .clone()
}

pub fn dead_letters() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                time_field(true),
                Field::new("kind", DataType::Utf8, false),
                Field::new("field", DataType::Utf8, true),
                Field::new("reason", DataType::Utf8, false),
                Field::new("origin", DataType::Utf8, false),
                Field::new("raw", DataType::Binary, false),
            ]))
        })
        .clone()
}

pub fn alerts() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let text = |name, nullable| Field::new(name, DataType::Utf8, nullable);
            let number = |name| Field::new(name, DataType::Float64, false);
            Arc::new(Schema::new(vec![
                time_field(false),
                text("id", false),
                text("detector", false),
                text("category", false),
                text("severity", false),
                text("account", false),
                text("tenant", true),
                text("credential_id", true),
                text("source_ip", true),
                timestamp("window_start", false),
                timestamp("window_end", false),
                number("observed"),
                number("expected"),
                number("score"),
                text("summary", false),
                text("evidence", false),
                text("origin", false),
            ]))
        })
        .clone()
}

pub fn of(table: Table) -> SchemaRef {
    match table {
        Table::Events => events(),
        Table::DeadLetters => dead_letters(),
        Table::Alerts => alerts(),
    }
}

/// The sort order written in each file's metadata: account, then time (events only).
pub fn sorting(table: Table) -> Option<Vec<SortingColumn>> {
    let column = |column_idx| SortingColumn { column_idx, descending: false, nulls_first: false };
    matches!(table, Table::Events).then(|| vec![column(1), column(0)])
}

/// Columns whose values are (nearly) all distinct: a dictionary would only be built to be
/// dropped, and min/max statistics prune nothing, so the writer skips both.
pub fn distinct_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Events => &["id", "origin", "attributes", "raw"],
        Table::DeadLetters => &["origin", "raw"],
        Table::Alerts => &[],
    }
}

/// A segment's row indexes in the table's order: events by account then time, the others as
/// they came.
pub(super) fn row_order(segment: &Segment) -> Vec<u32> {
    match segment.table {
        Table::Events => segment.account_time_order(),
        Table::DeadLetters | Table::Alerts => segment.position_order(),
    }
}

/// The record batch of the segment's rows `order` (indexes, in the order they are written).
pub(super) fn batch(segment: &Segment, order: &[u32]) -> Result<RecordBatch, String> {
    match segment.table {
        Table::Events => events_batch(segment, order),
        Table::DeadLetters => dead_letters_batch(segment, order),
        Table::Alerts => alerts_batch(segment, order),
    }
}

/// Where a row came from: `topic/partition/offset`, `file:line` or `file#record`.
struct Origin<'a>(&'a SourceKind, i64);

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let position = self.1;
        match self.0 {
            SourceKind::Kafka { topic, partition } => write!(f, "{topic}/{partition}/{position}"),
            SourceKind::File { name, records: false } => write!(f, "{name}:{position}"),
            SourceKind::File { name, records: true } => write!(f, "{name}#{position}"),
        }
    }
}

/// Rows are decoded again here, one at a time in the order they are written, straight into the
/// column builders: no decoded copy of the segment is held.
fn events_batch(segment: &Segment, order: &[u32]) -> Result<RecordBatch, String> {
    let format = segment.source.format;
    let n = order.len();
    let raw_len = order.iter().map(|&i| segment.rows[i as usize].raw.len()).sum();
    let text = || StringBuilder::with_capacity(n, n * 16);
    let (mut account, mut tenant, mut action, mut outcome) = (text(), text(), text(), text());
    let (mut credential_id, mut credential_kind, mut credential_owner) = (text(), text(), text());
    let (mut session_name, mut session_instance, mut invoked_by) = (text(), text(), text());
    let (mut source_ip, mut source_country, mut user_agent) = (text(), text(), text());
    let (mut source_as_org, mut source_provider) = (text(), text());
    let (mut target_system, mut target_resource, mut reason, mut attributes) = (text(), text(), text(), text());
    let (mut id, mut origins, mut raw) = (text(), text(), StringBuilder::with_capacity(n, raw_len));
    let mut time = TimestampMillisecondBuilder::with_capacity(n);
    let mut source_asn = UInt32Builder::with_capacity(n);
    let mut mfa = BooleanBuilder::with_capacity(n);
    let (mut bytes, mut records) = (UInt64Builder::with_capacity(n), UInt64Builder::with_capacity(n));
    for &i in order {
        let row = &segment.rows[i as usize];
        let original = segment.raw(row);
        let mut event = decode_as(format, original, usize::MAX)
            .map_err(|e| format!("{} no longer decodes: {e}", Origin(&segment.source.kind, row.position)))?;
        if let Some(enricher) = &segment.source.enricher {
            enricher.enrich(&mut event);
        }
        time.append_value(event.time);
        account.append_value(&event.account);
        tenant.append_option(event.tenant.as_deref());
        action.append_value(&event.action);
        outcome.append_value(event.outcome.as_str());
        let credential = event.credential.as_ref();
        credential_id.append_option(credential.map(|c| &c.id));
        credential_kind.append_option(credential.and_then(|c| c.kind.as_deref()));
        credential_owner.append_option(credential.and_then(|c| c.owner.as_deref()));
        let session = event.session.as_ref();
        session_name.append_option(session.map(|s| &s.name));
        session_instance.append_option(session.and_then(|s| s.instance.as_deref()));
        invoked_by.append_option(event.invoked_by.as_deref());
        mfa.append_option(event.mfa);
        match event.source.ip {
            Some(ip) => append_display(&mut source_ip, ip),
            None => source_ip.append_null(),
        }
        source_country.append_option(event.source.country.as_deref());
        source_asn.append_option(event.source.asn);
        source_as_org.append_option(event.source.as_org.as_deref());
        source_provider.append_option(event.source.provider.as_deref());
        user_agent.append_option(event.source.user_agent.as_deref());
        target_system.append_option(event.target.system.as_deref());
        target_resource.append_option(event.target.resource.as_deref());
        bytes.append_option(event.bytes);
        records.append_option(event.records);
        reason.append_option(event.reason.as_deref());
        attributes.append_option(event.attributes);
        id.append_value(&event.id);
        append_display(&mut origins, Origin(&segment.source.kind, row.position));
        // The decoder accepted these bytes, so they are UTF-8.
        raw.append_value(std::str::from_utf8(original).map_err(|e| e.to_string())?);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time.finish().with_timezone("UTC")),
        Arc::new(account.finish()),
        Arc::new(tenant.finish()),
        Arc::new(action.finish()),
        Arc::new(outcome.finish()),
        Arc::new(credential_id.finish()),
        Arc::new(credential_kind.finish()),
        Arc::new(credential_owner.finish()),
        Arc::new(session_name.finish()),
        Arc::new(session_instance.finish()),
        Arc::new(invoked_by.finish()),
        Arc::new(mfa.finish()),
        Arc::new(source_ip.finish()),
        Arc::new(source_country.finish()),
        Arc::new(source_asn.finish()),
        Arc::new(source_as_org.finish()),
        Arc::new(source_provider.finish()),
        Arc::new(user_agent.finish()),
        Arc::new(target_system.finish()),
        Arc::new(target_resource.finish()),
        Arc::new(bytes.finish()),
        Arc::new(records.finish()),
        Arc::new(reason.finish()),
        Arc::new(attributes.finish()),
        Arc::new(id.finish()),
        Arc::new(origins.finish()),
        Arc::new(raw.finish()),
    ];
    RecordBatch::try_new(events(), columns).map_err(|e| e.to_string())
}

/// Append `value` as text without an intermediate `String` (the builder is a `fmt::Write`).
fn append_display(builder: &mut StringBuilder, value: impl std::fmt::Display) {
    use std::fmt::Write;
    // Writing to an in-memory builder cannot fail.
    let _ = write!(builder, "{value}");
    builder.append_value("");
}

fn dead_letters_batch(segment: &Segment, order: &[u32]) -> Result<RecordBatch, String> {
    let n = order.len();
    let mut time = TimestampMillisecondBuilder::with_capacity(n);
    let (mut kind, mut field, mut reason, mut origins) = (
        StringBuilder::with_capacity(n, n * 16),
        StringBuilder::with_capacity(n, n * 8),
        StringBuilder::with_capacity(n, n * 64),
        StringBuilder::with_capacity(n, n * 32),
    );
    let raw_len = order.iter().map(|&i| segment.rows[i as usize].raw.len()).sum();
    let mut raw = BinaryBuilder::with_capacity(n, raw_len);
    for &i in order {
        let row = &segment.rows[i as usize];
        let rejected = row.rejected.as_deref().ok_or("a dead letter without its rejection")?;
        time.append_option(rejected.time);
        kind.append_value(rejected.kind);
        field.append_option(rejected.field.as_deref());
        reason.append_value(&rejected.reason);
        append_display(&mut origins, Origin(&segment.source.kind, row.position));
        raw.append_value(segment.raw(row));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time.finish().with_timezone("UTC")),
        Arc::new(kind.finish()),
        Arc::new(field.finish()),
        Arc::new(reason.finish()),
        Arc::new(origins.finish()),
        Arc::new(raw.finish()),
    ];
    RecordBatch::try_new(dead_letters(), columns).map_err(|e| e.to_string())
}

/// Alerts in the order they were raised; each row is the alert's JSON (see [`super::Store::alert`]).
fn alerts_batch(segment: &Segment, order: &[u32]) -> Result<RecordBatch, String> {
    let n = order.len();
    let text = || StringBuilder::with_capacity(n, n * 32);
    let (mut id, mut detector, mut category, mut severity, mut account) = (text(), text(), text(), text(), text());
    let (mut tenant, mut credential_id, mut source_ip, mut summary) = (text(), text(), text(), text());
    let (mut evidence, mut origins) = (text(), text());
    let (mut time, mut window_start, mut window_end) = (
        TimestampMillisecondBuilder::with_capacity(n),
        TimestampMillisecondBuilder::with_capacity(n),
        TimestampMillisecondBuilder::with_capacity(n),
    );
    let (mut observed, mut expected, mut score) =
        (Float64Builder::with_capacity(n), Float64Builder::with_capacity(n), Float64Builder::with_capacity(n));
    for &i in order {
        let row = &segment.rows[i as usize];
        let alert: serde_json::Value = serde_json::from_slice(segment.raw(row)).map_err(|e| e.to_string())?;
        let field = |name: &str| alert.get(name).and_then(serde_json::Value::as_str);
        let instant = |name: &str| {
            field(name)
                .and_then(|t| crate::detection::time::parse_rfc3339(t).ok())
                .ok_or_else(|| format!("alert without `{name}`"))
        };
        time.append_value(row.time);
        id.append_value(field("id").unwrap_or_default());
        detector.append_value(field("detector").unwrap_or_default());
        category.append_value(field("category").unwrap_or_default());
        severity.append_value(field("severity").unwrap_or_default());
        account.append_value(field("account").unwrap_or_default());
        tenant.append_option(field("tenant"));
        credential_id.append_option(field("credential_id"));
        source_ip.append_option(field("source_ip"));
        window_start.append_value(instant("window_start")?);
        window_end.append_value(instant("window_end")?);
        let number = |name: &str| alert.get(name).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
        observed.append_value(number("observed"));
        expected.append_value(number("expected"));
        score.append_value(number("score"));
        summary.append_value(field("summary").unwrap_or_default());
        evidence.append_value(alert.get("evidence").map(|e| e.to_string()).unwrap_or_default());
        append_display(&mut origins, Origin(&segment.source.kind, row.position));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time.finish().with_timezone("UTC")),
        Arc::new(id.finish()),
        Arc::new(detector.finish()),
        Arc::new(category.finish()),
        Arc::new(severity.finish()),
        Arc::new(account.finish()),
        Arc::new(tenant.finish()),
        Arc::new(credential_id.finish()),
        Arc::new(source_ip.finish()),
        Arc::new(window_start.finish().with_timezone("UTC")),
        Arc::new(window_end.finish().with_timezone("UTC")),
        Arc::new(observed.finish()),
        Arc::new(expected.finish()),
        Arc::new(score.finish()),
        Arc::new(summary.finish()),
        Arc::new(evidence.finish()),
        Arc::new(origins.finish()),
    ];
    RecordBatch::try_new(alerts(), columns).map_err(|e| e.to_string())
}
