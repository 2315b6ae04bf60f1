//! The tables' columns, and the Arrow record batches of a segment, in the order they are
//! written. Runs on the writer thread, which takes the rows of a row group out of a segment's
//! event columns (`columns`, appended by the pipeline thread) in account and time order.
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
    ArrayRef, AsArray, BinaryBuilder, Float64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondBuilder, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::file::metadata::SortingColumn;

use super::{Segment, SourceKind, Table};

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

/// The rows `order` of the segment's finished columns, with each row's `origin`, and `raw` as
/// text: one UTF-8 check over the group's bytes (the decoder already accepted each message).
fn events_batch(segment: &Segment, order: &[u32]) -> Result<RecordBatch, String> {
    let indices = UInt32Array::from(order.to_vec());
    let mut columns = segment
        .finished
        .iter()
        .map(|column| arrow::compute::take(column, &indices, None))
        .collect::<Result<Vec<ArrayRef>, _>>()
        .map_err(|e| e.to_string())?;
    let raw = columns.pop().ok_or("an events segment without its columns")?;
    let raw = StringArray::try_from_binary(raw.as_binary::<i32>().clone()).map_err(|e| format!("raw: {e}"))?;
    let mut origins = StringBuilder::with_capacity(order.len(), order.len() * 24);
    for &i in order {
        append_display(&mut origins, Origin(&segment.source.kind, segment.rows[i as usize].position));
    }
    columns.push(Arc::new(origins.finish()));
    columns.push(Arc::new(raw));
    RecordBatch::try_new(events(), columns).map_err(|e| e.to_string())
}

/// Append `value` as text without an intermediate `String` (the builder is a `fmt::Write`).
pub(super) fn append_display(builder: &mut StringBuilder, value: impl std::fmt::Display) {
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
