//! Retention: every decoded event, every dead letter and every alert, kept as Parquet files
//! that other engines (duckdb, pyarrow, Spark) read as they are.
//!
//! ```text
//! STORE/events/dt=YYYY-MM-DD/<source>-<first>-<last>.parquet        (schema::events)
//! STORE/dead_letters/dt=YYYY-MM-DD/<source>-<first>-<last>.parquet  (schema::dead_letters)
//! STORE/alerts/dt=YYYY-MM-DD/<source>-<first>-<last>.parquet        (schema::alerts)
//! ```
//!
//! The pipeline thread appends each event, as the engine saw it, to the columns of the segment
//! of its source (a Kafka partition or an input file) and day, with its message, and numbers its
//! account, so the writer sorts on integers ([`Store::event`]); a dead letter is kept as its
//! bytes ([`Store::dead_letter`]);
//! an alert, rare, is kept as its JSON under the position of the event that raised it
//! ([`Store::alert`]).
//! In the service the store is a checkpoint participant: capture moves the segments out, and
//! the writer thread sorts them, encodes (Arrow, Parquet, zstd) and writes each
//! as one file (temporary name, fsync, rename: `file`), so an offset is committed only once
//! its event is in a durable file. A file is cut at every checkpoint, and sooner when its
//! segment reaches `roll_bytes`; the store asks for an early checkpoint when it holds
//! `roll_bytes` in memory or its oldest row has waited `roll_age` ([`Store::wants_checkpoint`]),
//! and, full while a checkpoint is in flight, makes the pipeline wait for it ([`Store::is_full`]).
//! `auditwatch replay --store` writes the same files, a segment at a time.
//!
//! Files are named by the source coordinates of their rows (`naming`), so writing the same
//! rows again replaces a file. After a crash a source may resume at a point before some files
//! it wrote (the epoch they belong to never committed), and cut its files elsewhere this time:
//! so the first row of each source in a run claims its positions, and the files of that source
//! at or after that position are removed before anything new is written ([`Claim`]). A replay
//! of an input thus replaces that input's files, and a restart leaves each event once.

mod columns;
mod file;
pub mod forget;
mod naming;
pub mod retention;
pub mod schema;

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::detection::alert::Alert;
use crate::detection::time::Millis;
use crate::input::dead_letter::Rejection;
use crate::input::event::AuditEvent;
use crate::input::formats::InputFormat;
use crate::pipeline::barrier::{MakeDurable, Participant};

/// The store's checkpoint section name (the section itself is empty: files are the state).
pub const NAME: &str = "store";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Events,
    DeadLetters,
    Alerts,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::Events, Table::DeadLetters, Table::Alerts];

    pub fn dir_name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::DeadLetters => "dead_letters",
            Table::Alerts => "alerts",
        }
    }
}

/// When files are cut, besides every checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// A segment of this many bytes of input is cut into its own file (an event's columns take
    /// about as much memory again as its message).
    pub roll_bytes: usize,
    /// The longest a row waits in memory before the store asks for a checkpoint.
    pub roll_age: Duration,
    /// Days older than this are deleted (`retention`); `None` keeps everything.
    pub retention: Option<Duration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { roll_bytes: 128 << 20, roll_age: Duration::from_secs(300), retention: None }
    }
}

/// How often the writer thread applies the retention limit.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);

/// Where rows come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Kafka {
        topic: String,
        partition: i32,
    },
    /// An input file; `records`: positions are record indexes of a document, not lines.
    File {
        name: String,
        records: bool,
    },
}

/// A source as its files name it.
#[derive(Debug)]
pub struct Source {
    kind: SourceKind,
    /// The source part of its file names.
    name: String,
    format: InputFormat,
}

/// A handle on a registered source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceId(u32);

/// One row: where it came from, its time, its account (an event's, as a segment-local id), and
/// its bytes in the segment (a dead letter's or an alert's; an event's are in its columns).
struct Row {
    position: i64,
    time: Millis,
    account: u32,
    raw: Range<usize>,
    rejected: Option<Box<Rejected>>,
}

struct Rejected {
    /// The event's time, or when the message arrived, if known.
    time: Option<Millis>,
    kind: &'static str,
    field: Option<String>,
    reason: String,
}

/// The rows of one source, day and table, up to one file.
pub struct Segment {
    table: Table,
    source: Arc<Source>,
    day: i64,
    first: i64,
    last: i64,
    raw: Vec<u8>,
    rows: Vec<Row>,
    /// The distinct accounts of the rows, numbered as they came.
    accounts: HashMap<Box<str>, u32>,
    /// Bytes of input held (the messages of its rows).
    bytes: usize,
    /// Events: their columns while rows arrive, finished when the segment is handed over.
    building: Option<Box<columns::EventColumns>>,
    finished: Vec<arrow::array::ArrayRef>,
}

impl Segment {
    fn raw(&self, row: &Row) -> &[u8] {
        &self.raw[row.raw.clone()]
    }

    /// Finish the event columns: no row is added once a segment is handed over.
    fn seal(mut self) -> Segment {
        if let Some(mut building) = self.building.take() {
            self.finished = building.finish();
        }
        self
    }

    fn account_id(&mut self, account: &str) -> u32 {
        if let Some(&id) = self.accounts.get(account) {
            return id;
        }
        let id = self.accounts.len() as u32;
        self.accounts.insert(account.into(), id);
        id
    }

    /// Row indexes in (account, time, row) order. Accounts are ranked once, so the sort
    /// compares packed integers, not account strings scattered over the segment.
    fn account_time_order(&self) -> Vec<u32> {
        let mut names: Vec<(&str, u32)> = self.accounts.iter().map(|(name, &id)| (&**name, id)).collect();
        names.sort_unstable();
        let mut rank = vec![0u32; names.len()];
        for (r, &(_, id)) in names.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        let mut keys: Vec<u128> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                // The sign bit flipped, unsigned order is time order.
                let time = (row.time as u64) ^ (1 << 63);
                let rank = rank.get(row.account as usize).copied().unwrap_or_default();
                (u128::from(rank) << 96) | (u128::from(time) << 32) | i as u128
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|key| key as u32).collect()
    }

    /// Row indexes in position order (dead letters, alerts).
    fn position_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        order.sort_by_key(|&i| self.rows[i as usize].position);
        order
    }
}

/// The files of `source` from position `from` on are to be replaced.
pub struct Claim {
    source: String,
    from: i64,
}

/// What waits for the writer: kept across a failed attempt, so the next one writes it.
#[derive(Default)]
struct Pending {
    claims: Vec<Claim>,
    segments: Vec<Segment>,
}

pub struct Store {
    dir: PathBuf,
    options: StoreOptions,
    sources: Vec<(Arc<Source>, bool)>,
    open: HashMap<(SourceId, Table, i64), Segment>,
    sealed: Vec<Segment>,
    claims: Vec<Claim>,
    bytes: usize,
    oldest: Option<Instant>,
    pending: Arc<Mutex<Pending>>,
    /// When the retention limit was last applied, and how many day partitions it deleted.
    expiry: Arc<Mutex<(Instant, u64)>>,
}

impl Store {
    /// The store in `dir` (created if absent), without the temporary files of a crashed run.
    pub fn open(dir: &Path, options: StoreOptions) -> io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        file::remove_temporaries(dir)?;
        let expired = match options.retention {
            Some(keep) => retention::expire(dir, std::time::SystemTime::now(), keep)?.len() as u64,
            None => 0,
        };
        Ok(Store {
            dir: dir.to_path_buf(),
            options,
            sources: Vec::new(),
            open: HashMap::new(),
            sealed: Vec::new(),
            claims: Vec::new(),
            bytes: 0,
            oldest: None,
            pending: Arc::default(),
            expiry: Arc::new(Mutex::new((Instant::now(), expired))),
        })
    }

    /// Day partitions deleted by the retention limit since the store was opened.
    pub fn partitions_expired(&self) -> u64 {
        self.expiry.lock().unwrap_or_else(PoisonError::into_inner).1
    }

    /// Register a source (idempotent); callers keep the id, so this is not on the hot path.
    pub fn source(&mut self, kind: SourceKind, format: InputFormat) -> SourceId {
        if let Some(i) = self.sources.iter().position(|(s, _)| s.kind == kind && s.format == format) {
            return SourceId(i as u32);
        }
        let name = match &kind {
            SourceKind::Kafka { topic, partition } => naming::kafka_source(topic, *partition),
            SourceKind::File { name, .. } => naming::file_source(name),
        };
        self.sources.push((Arc::new(Source { kind, name, format }), false));
        SourceId(self.sources.len() as u32 - 1)
    }

    /// Keep a decoded event (as the engine saw it, enriched) at its position in its source, with
    /// the message it came from.
    pub fn event(&mut self, source: SourceId, position: i64, event: &AuditEvent<'_>, raw: &[u8]) {
        let row = Row { position, time: event.time, account: 0, raw: 0..0, rejected: None };
        self.push(Table::Events, source, row, Some(event), raw);
    }

    /// Keep a dead letter. Its day is that of `time` (its event's time, or when it arrived),
    /// else of today: a replayed line that is not an event has no time of its own.
    pub fn dead_letter(
        &mut self,
        source: SourceId,
        position: i64,
        time: Option<Millis>,
        rejection: &Rejection,
        raw: &[u8],
    ) {
        let day_time = time.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
        });
        let rejected = Rejected {
            time,
            kind: rejection.kind(),
            field: rejection.field().map(str::to_string),
            reason: rejection.reason(),
        };
        let row = Row { position, time: day_time, account: 0, raw: 0..0, rejected: Some(Box::new(rejected)) };
        self.push(Table::DeadLetters, source, row, None, raw);
    }

    /// Keep an alert, at the position of the event that raised it. Without `detected_at` (the
    /// wall clock), so a replay writes the same file again.
    pub fn alert(&mut self, source: SourceId, position: i64, alert: &Alert) {
        let mut alert = alert.clone();
        alert.detected_at = None;
        // An alert is strings and finite numbers: serializing it cannot fail.
        let body = serde_json::to_vec(&alert).unwrap_or_default();
        let row = Row { position, time: alert.time, account: 0, raw: 0..0, rejected: None };
        self.push(Table::Alerts, source, row, None, &body);
    }

    fn push(&mut self, table: Table, source: SourceId, mut row: Row, event: Option<&AuditEvent<'_>>, raw: &[u8]) {
        let (info, claimed) = &mut self.sources[source.0 as usize];
        if !*claimed {
            *claimed = true;
            self.claims.push(Claim { source: info.name.clone(), from: row.position });
        }
        let day = naming::day_of(row.time);
        let segment = self.open.entry((source, table, day)).or_insert_with(|| Segment {
            table,
            source: info.clone(),
            day,
            first: row.position,
            last: row.position,
            raw: Vec::new(),
            rows: Vec::new(),
            accounts: HashMap::new(),
            bytes: 0,
            building: None,
            finished: Vec::new(),
        });
        match event {
            Some(event) => {
                row.account = segment.account_id(&event.account);
                segment.building.get_or_insert_with(|| Box::new(columns::EventColumns::new())).push(event, raw);
            }
            None => {
                let start = segment.raw.len();
                segment.raw.extend_from_slice(raw);
                row.raw = start..segment.raw.len();
            }
        }
        segment.bytes += raw.len();
        segment.first = segment.first.min(row.position);
        segment.last = segment.last.max(row.position);
        segment.rows.push(row);
        self.bytes += raw.len();
        self.oldest.get_or_insert_with(Instant::now);
        if segment.bytes >= self.options.roll_bytes {
            if let Some(full) = self.open.remove(&(source, table, day)) {
                self.sealed.push(full.seal());
            }
        }
    }

    /// The store holds `roll_bytes` in memory, or a row that waited `roll_age`.
    pub fn wants_checkpoint(&self) -> bool {
        self.is_full() || self.oldest.is_some_and(|t| t.elapsed() >= self.options.roll_age)
    }

    /// The store holds `roll_bytes` in memory: the pipeline waits for the checkpoint in flight
    /// before it reads on, so memory stays near twice `roll_bytes`.
    pub fn is_full(&self) -> bool {
        self.bytes >= self.options.roll_bytes
    }

    /// Whether a segment reached `roll_bytes` (replay writes it at once).
    pub fn has_sealed(&self) -> bool {
        !self.sealed.is_empty()
    }

    /// Move the claims and segments (all, or only the sealed) to what the writer writes next.
    fn hand_over(&mut self, all: bool) -> Arc<Mutex<Pending>> {
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.claims.append(&mut self.claims);
            pending.segments.append(&mut self.sealed);
            if all {
                pending.segments.extend(self.open.drain().map(|(_, segment)| segment.seal()));
            }
            self.bytes = self.open.values().map(|s| s.bytes).sum();
            if self.open.is_empty() {
                self.oldest = None;
            }
        }
        self.pending.clone()
    }

    /// Write the segments that reached `roll_bytes` now (replay).
    pub fn write_sealed(&mut self) -> io::Result<()> {
        let pending = self.hand_over(false);
        write_pending(&self.dir, &pending)
    }

    /// Write everything held now (replay, at the end of an input).
    pub fn write_all(&mut self) -> io::Result<()> {
        let pending = self.hand_over(true);
        write_pending(&self.dir, &pending)
    }
}

/// Apply the claims, then write each segment; what fails stays pending for the next attempt
/// (a file written again under its name replaces itself).
fn write_pending(dir: &Path, pending: &Mutex<Pending>) -> io::Result<()> {
    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
    while let Some(claim) = pending.claims.first() {
        file::apply_claim(dir, claim)?;
        pending.claims.remove(0);
    }
    while let Some(segment) = pending.segments.last() {
        file::write_segment(dir, segment)?;
        pending.segments.pop();
    }
    Ok(())
}

impl Participant for Store {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Moves the segments out (no encoding here); the writer thread makes them files.
    fn capture(&mut self, _epoch: u64) -> MakeDurable {
        let pending = self.hand_over(true);
        let dir = self.dir.clone();
        let (retention, expiry) = (self.options.retention, self.expiry.clone());
        Box::new(move || {
            let failed = |e: io::Error| format!("store {}: {e}", dir.display());
            write_pending(&dir, &pending).map_err(failed)?;
            if let Some(keep) = retention {
                let mut expiry = expiry.lock().unwrap_or_else(PoisonError::into_inner);
                if expiry.0.elapsed() >= EXPIRY_INTERVAL {
                    expiry.1 +=
                        retention::expire(&dir, std::time::SystemTime::now(), keep).map_err(failed)?.len() as u64;
                    expiry.0 = Instant::now();
                }
            }
            Ok(Vec::new())
        })
    }
}

#[cfg(test)]
mod tests;
