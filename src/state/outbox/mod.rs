//! The durable outbox: every alert (and every dead letter) is appended here before any sink
//! sees it; each sink's worker reads from it at its own pace with its own persisted cursor.
//!
//! Layout, under `<state dir>/outbox/<name>/`:
//! - `<first seq, 20 digits>.log`: segments of records, appended in sequence order:
//!   `u32 len | u64 seq | id | key | body | headers | u64 xxh3` (strings and bytes as in
//!   [`crate::state::codec`]); a torn record at the end of the last segment is cut at open.
//! - `<sink>.cursor`: the next sequence number that sink has not confirmed, in decimal, replaced
//!   by rename after every confirmed batch.
//!
//! Invariants:
//! - Appends happen on the pipeline thread into a buffer; [`Outbox::publish`] (each batch) makes
//!   them visible to the workers, and the checkpoint barrier makes them durable (fsync) before
//!   the offsets of their events are committed. So an alert whose offset is committed is on disk.
//! - An id already in the outbox is not appended again: after a restart the engine replays
//!   events since the checkpoint and raises the same ids, and those must not go out twice. The
//!   ids of compacted entries are kept (as hashes, bounded) in the checkpoint section.
//! - A segment is deleted once every sink passed it and a durable checkpoint covers it.
//! - Size on disk is bounded: past `max_bytes`, the oldest segment is dropped and a sink still
//!   inside it gets what it had not confirmed copied to `<sink>.overflow.jsonl` beside it (kept,
//!   not lost), counted in the `overflowed` metric.
//! - A crash between a sink's delivery and its cursor update repeats that batch, with the same
//!   ids: the id is the receiver's idempotency key.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::lock;
use crate::state::codec::{CodecError, Reader, Writer};

mod reader;
pub use reader::OutboxReader;

/// One alert or dead letter as sinks receive it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// Idempotency key: the alert id, or the source coordinates of a dead letter.
    pub id: String,
    /// Kafka message key (the account for alerts, the original key for dead letters).
    pub key: Vec<u8>,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug)]
pub struct OutboxOptions {
    /// Bound on the segments' total size.
    pub max_bytes: u64,
    /// A segment is closed and a new one begun past this size.
    pub segment_bytes: u64,
    /// Ids of compacted entries remembered for deduplication.
    pub remember_ids: usize,
    /// When set, an epoch is durable only once every sink confirmed its entries (waiting at
    /// most this long, on the checkpoint writer's thread, else the epoch fails).
    pub confirm_before_commit: Option<Duration>,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions { max_bytes: 1 << 30, segment_bytes: 8 << 20, remember_ids: 100_000, confirm_before_commit: None }
    }
}

/// What the pipeline and the workers share.
struct Shared {
    dir: PathBuf,
    state: Mutex<Published>,
    changed: Condvar,
}

struct Published {
    /// Entries with `seq < end` are written out and may be read.
    end: u64,
    /// First seq of each segment on disk, with its size.
    segments: BTreeMap<u64, u64>,
    /// Per sink: the next seq it has not confirmed.
    cursors: BTreeMap<String, u64>,
    stopping: bool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Published> {
    lock::lock(&shared.state)
}

/// The writer side, owned by the pipeline thread.
pub struct Outbox {
    name: &'static str,
    shared: Arc<Shared>,
    options: OutboxOptions,
    current: BufWriter<File>,
    current_first: u64,
    current_bytes: u64,
    next_seq: u64,
    /// Segments written since the last capture, to fsync at the barrier.
    unsynced: Vec<File>,
    new_segments: bool,
    /// Everything below this is covered by a durable checkpoint.
    durable_seq: u64,
    ids: HashSet<u64>,
    /// Ids in the order they came, for the bounded memory of compacted ones.
    order: VecDeque<u64>,
    scratch: Vec<u8>,
    /// Overflowed entries so far, per sink (for metrics).
    pub overflowed: BTreeMap<String, u64>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

impl Outbox {
    /// Open (or create) the outbox `name` under `state_dir/outbox`, for these sinks, continuing
    /// from its section of the restored checkpoint.
    pub fn open(
        state_dir: &Path,
        name: &'static str,
        sinks: &[String],
        section: Option<&[u8]>,
        options: OutboxOptions,
    ) -> io::Result<Outbox> {
        let dir = state_dir.join("outbox").join(name);
        fs::create_dir_all(&dir)?;
        let (mut next_seq, remembered) = match section {
            Some(bytes) => {
                decode_section(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
            }
            None => (0, Vec::new()),
        };
        let mut ids = HashSet::new();
        let mut order = VecDeque::new();
        for h in remembered {
            if ids.insert(h) {
                order.push_back(h);
            }
        }
        // Scan the segments: their ids join the dedup set, and the last one's torn tail is cut.
        let mut segments = BTreeMap::new();
        let mut firsts: Vec<u64> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
            .collect();
        firsts.sort_unstable();
        for (i, &first) in firsts.iter().enumerate() {
            let path = segment_path(&dir, first);
            let mut reader = BufReader::new(File::open(&path)?);
            let mut good = 0u64;
            while let Some((entry, size)) = read_record(&mut reader)? {
                if ids.insert(id_hash(&entry.id)) {
                    order.push_back(id_hash(&entry.id));
                }
                next_seq = next_seq.max(entry.seq + 1);
                good += size;
            }
            if i + 1 == firsts.len() {
                OpenOptions::new().write(true).open(&path)?.set_len(good)?;
            }
            segments.insert(first, good);
        }
        let cursors = sinks
            .iter()
            .map(|sink| {
                let oldest = segments.keys().next().copied().unwrap_or(next_seq);
                let saved = read_cursor(&dir, sink)?.unwrap_or(oldest);
                Ok((sink.clone(), saved.min(next_seq)))
            })
            .collect::<io::Result<_>>()?;
        let (current_first, current_bytes) = match segments.iter().next_back() {
            Some((&first, &bytes)) if bytes < options.segment_bytes => (first, bytes),
            _ => (next_seq, 0),
        };
        segments.entry(current_first).or_insert(0);
        let file = OpenOptions::new().create(true).append(true).open(segment_path(&dir, current_first))?;
        let shared = Arc::new(Shared {
            dir,
            state: Mutex::new(Published { end: next_seq, segments, cursors, stopping: false }),
            changed: Condvar::new(),
        });
        Ok(Outbox {
            name,
            shared,
            options,
            unsynced: vec![file.try_clone()?],
            current: BufWriter::with_capacity(256 << 10, file),
            current_first,
            current_bytes,
            next_seq,
            new_segments: true,
            durable_seq: next_seq,
            ids,
            order,
            scratch: Vec::new(),
            overflowed: BTreeMap::new(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A reader for one sink's worker.
    pub fn reader(&self, sink: &str) -> OutboxReader {
        let next = lock(&self.shared).cursors.get(sink).copied().unwrap_or(self.next_seq);
        OutboxReader::new(self.shared.clone(), sink, next)
    }

    /// Append an entry, unless its id is already in the outbox. Returns whether it was added.
    pub fn append(&mut self, id: &str, key: &[u8], body: &[u8], headers: &[(&str, &str)]) -> io::Result<bool> {
        let hash = id_hash(id);
        if self.ids.contains(&hash) {
            return Ok(false);
        }
        let mut w = Writer { buf: std::mem::take(&mut self.scratch) };
        w.buf.clear();
        w.u64(self.next_seq);
        w.str(id);
        w.bytes(key);
        w.bytes(body);
        w.u32(headers.len() as u32);
        for (k, v) in headers {
            w.str(k);
            w.str(v);
        }
        let checksum = xxhash_rust::xxh3::xxh3_64(&w.buf);
        self.current.write_all(&(w.buf.len() as u32).to_le_bytes())?;
        self.current.write_all(&w.buf)?;
        self.current.write_all(&checksum.to_le_bytes())?;
        self.current_bytes += w.buf.len() as u64 + 12;
        self.scratch = w.buf;
        self.next_seq += 1;
        self.ids.insert(hash);
        self.order.push_back(hash);
        while self.order.len() > self.options.remember_ids + self.retained_estimate() {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        if self.current_bytes >= self.options.segment_bytes {
            self.roll()?;
        }
        Ok(true)
    }

    /// Entries still on disk bound how many ids must stay remembered beyond `remember_ids`.
    fn retained_estimate(&self) -> usize {
        (self.next_seq - lock(&self.shared).segments.keys().next().copied().unwrap_or(self.next_seq)) as usize
    }

    fn roll(&mut self) -> io::Result<()> {
        self.publish()?;
        let file = OpenOptions::new().create(true).append(true).open(segment_path(&self.shared.dir, self.next_seq))?;
        self.unsynced.push(file.try_clone()?);
        self.new_segments = true;
        self.current = BufWriter::with_capacity(256 << 10, file);
        {
            let mut state = lock(&self.shared);
            state.segments.insert(self.current_first, self.current_bytes);
            state.segments.insert(self.next_seq, 0);
        }
        self.current_first = self.next_seq;
        self.current_bytes = 0;
        self.enforce_bound()?;
        self.compact()
    }

    /// Make what was appended visible to the workers.
    pub fn publish(&mut self) -> io::Result<()> {
        self.current.flush()?;
        let mut state = lock(&self.shared);
        if state.end != self.next_seq {
            state.end = self.next_seq;
            state.segments.insert(self.current_first, self.current_bytes);
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Total size of the segments on disk.
    pub fn bytes_on_disk(&self) -> u64 {
        lock(&self.shared).segments.values().sum()
    }

    /// Per sink: entries not yet confirmed.
    pub fn pending(&self) -> Vec<(String, u64)> {
        let state = lock(&self.shared);
        state.cursors.iter().map(|(sink, &c)| (sink.clone(), state.end.saturating_sub(c))).collect()
    }

    /// Wait until every sink confirmed everything published, or `deadline`. True if they did.
    pub fn wait_drained(&self, deadline: Instant) -> bool {
        let end = lock(&self.shared).end;
        wait_confirmed(&self.shared, end, deadline)
    }

    /// Tell the workers to finish their current attempt and return.
    pub fn stop_workers(&self) {
        lock(&self.shared).stopping = true;
        self.shared.changed.notify_all();
    }

    /// Delete segments every sink passed and a durable checkpoint covers.
    fn compact(&mut self) -> io::Result<()> {
        let mut state = lock(&self.shared);
        let passed = state.cursors.values().copied().min().unwrap_or(state.end).min(self.durable_seq);
        let firsts: Vec<u64> = state.segments.keys().copied().collect();
        for pair in firsts.windows(2) {
            let (first, next_first) = (pair[0], pair[1]);
            if next_first > passed {
                break;
            }
            remove_if_present(&segment_path(&self.shared.dir, first))?;
            state.segments.remove(&first);
        }
        Ok(())
    }

    /// Past `max_bytes`, drop the oldest segments; sinks still inside get their unconfirmed
    /// entries copied to their overflow file.
    fn enforce_bound(&mut self) -> io::Result<()> {
        loop {
            let (first, next_first, lagging) = {
                let state = lock(&self.shared);
                if state.segments.values().sum::<u64>() <= self.options.max_bytes || state.segments.len() < 2 {
                    return Ok(());
                }
                let mut it = state.segments.keys();
                let (Some(&first), Some(&next_first)) = (it.next(), it.next()) else { return Ok(()) };
                let lagging: Vec<(String, u64)> =
                    state.cursors.iter().filter(|(_, &c)| c < next_first).map(|(s, &c)| (s.clone(), c)).collect();
                (first, next_first, lagging)
            };
            let path = segment_path(&self.shared.dir, first);
            for (sink, cursor) in lagging {
                let mut out = BufWriter::new(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(self.shared.dir.join(format!("{sink}.overflow.jsonl")))?,
                );
                let mut reader = BufReader::new(File::open(&path)?);
                let mut copied = 0;
                while let Some((entry, _)) = read_record(&mut reader)? {
                    if entry.seq >= cursor {
                        out.write_all(&entry.body)?;
                        out.write_all(b"\n")?;
                        copied += 1;
                    }
                }
                out.flush()?;
                out.get_ref().sync_data()?;
                *self.overflowed.entry(sink.clone()).or_default() += copied;
                tracing::error!(sink, copied, "outbox over its size bound: the oldest undelivered entries of this sink moved to its overflow file");
                set_cursor(&self.shared, &sink, next_first)?;
            }
            remove_if_present(&path)?;
            lock(&self.shared).segments.remove(&first);
        }
    }
}

impl crate::pipeline::barrier::Participant for Outbox {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capture(&mut self, _epoch: u64) -> crate::pipeline::barrier::MakeDurable {
        let published = self.publish();
        let files = std::mem::take(&mut self.unsynced);
        // The current segment keeps receiving appends; it is synced again at the next barrier.
        let current = self.current.get_ref().try_clone();
        let dir = std::mem::take(&mut self.new_segments).then(|| self.shared.dir.clone());
        let mut section = Writer::with_capacity(16 + 8 * self.order.len());
        section.u64(self.next_seq);
        section.u32(self.order.len() as u32);
        for h in &self.order {
            section.u64(*h);
        }
        let confirm = self.options.confirm_before_commit.map(|wait| (self.shared.clone(), self.next_seq, wait));
        Box::new(move || {
            published.map_err(|e| format!("writing the outbox: {e}"))?;
            if let Some((shared, upto, wait)) = confirm {
                if !wait_confirmed(&shared, upto, Instant::now() + wait) {
                    return Err(format!("the sink did not confirm entries before {upto} within {wait:?}"));
                }
            }
            let current = current.map_err(|e| format!("outbox segment: {e}"))?;
            for file in files.iter().chain([&current]) {
                file.sync_data().map_err(|e| format!("fsync of an outbox segment: {e}"))?;
            }
            if let Some(dir) = dir {
                File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| format!("fsync of {}: {e}", dir.display()))?;
            }
            Ok(section.buf)
        })
    }

    fn durable(&mut self, _epoch: u64, section: Vec<u8>) {
        if let Ok((covered, _)) = decode_section(&section) {
            self.durable_seq = self.durable_seq.max(covered);
        }
        if let Err(error) = self.compact() {
            tracing::warn!(%error, outbox = self.name, "could not delete delivered outbox segments; retried at the next checkpoint");
        }
    }
}

/// Wait until every sink confirmed the entries before `upto`, or `deadline`. True if they did.
fn wait_confirmed(shared: &Shared, upto: u64, deadline: Instant) -> bool {
    let mut state = lock(shared);
    loop {
        if state.cursors.values().all(|&c| c >= upto) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        state = lock::wait(&shared.changed, state, deadline - now);
    }
}

fn decode_section(bytes: &[u8]) -> Result<(u64, Vec<u64>), CodecError> {
    let mut r = Reader::new(bytes);
    let next = r.u64()?;
    let n = r.count(8)?;
    let ids = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
    Ok((next, ids))
}

/// The next record, with its size on disk; `None` at the end or at a torn or damaged record.
fn read_record(reader: &mut impl Read) -> io::Result<Option<(Entry, u64)>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    let mut body = vec![0u8; len + 8];
    match reader.read_exact(&mut body) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (record, sum) = body.split_at(len);
    if xxhash_rust::xxh3::xxh3_64(record).to_le_bytes() != sum {
        return Ok(None);
    }
    let parse = |r: &mut Reader| -> Result<Entry, CodecError> {
        let seq = r.u64()?;
        let id = r.string()?;
        let key = r.bytes()?.to_vec();
        let body = r.bytes()?.to_vec();
        let n = r.count(8)?;
        let headers = (0..n).map(|_| Ok((r.string()?, r.string()?))).collect::<Result<_, CodecError>>()?;
        Ok(Entry { seq, id, key, body, headers })
    };
    Ok(parse(&mut Reader::new(record)).ok().map(|entry| (entry, len as u64 + 12)))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn read_cursor(dir: &Path, sink: &str) -> io::Result<Option<u64>> {
    match fs::read_to_string(dir.join(format!("{sink}.cursor"))) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("outbox cursor of sink `{sink}` is not a number"))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Move a sink's cursor forward (never back) and persist it. Not fsynced: a cursor lost with
/// the page cache only repeats deliveries, with the same ids.
fn set_cursor(shared: &Shared, sink: &str, next: u64) -> io::Result<()> {
    let mut state = lock(shared);
    let cursor = state.cursors.entry(sink.to_string()).or_insert(0);
    if next <= *cursor {
        return Ok(());
    }
    *cursor = next;
    let tmp = shared.dir.join(format!("{sink}.cursor.tmp"));
    fs::write(&tmp, next.to_string())?;
    fs::rename(&tmp, shared.dir.join(format!("{sink}.cursor")))?;
    shared.changed.notify_all();
    Ok(())
}

#[cfg(test)]
mod tests;
