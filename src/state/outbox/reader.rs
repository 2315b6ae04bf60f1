//! One sink's view of the outbox: reads entries in order from the sink's cursor, across
//! segments, and moves the cursor only past what the sink confirmed.

use std::fs::File;
use std::io::{self, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{lock, read_record, segment_path, set_cursor, Entry, Shared};
use crate::lock as locks;

/// One sink's view of the outbox.
pub struct OutboxReader {
    shared: Arc<Shared>,
    sink: String,
    next: u64,
    /// The open segment: its first seq and a reader positioned at `next`.
    file: Option<(u64, BufReader<File>)>,
}

impl OutboxReader {
    pub(super) fn new(shared: Arc<Shared>, sink: &str, next: u64) -> OutboxReader {
        OutboxReader { shared, sink: sink.to_string(), next, file: None }
    }

    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// Up to `max` entries from the cursor on, waiting up to `wait` for the first. Empty when
    /// there is nothing (or the workers are stopping).
    pub fn next_batch(&mut self, max: usize, wait: Duration) -> io::Result<Vec<Entry>> {
        let end = {
            let deadline = Instant::now() + wait;
            let mut state = lock(&self.shared);
            loop {
                // The bound may have moved this sink past entries it had not read.
                let cursor = state.cursors.get(&self.sink).copied().unwrap_or(0);
                if cursor > self.next {
                    self.next = cursor;
                    self.file = None;
                }
                if self.next < state.end || state.stopping {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                state = locks::wait(&self.shared.changed, state, deadline - now);
            }
            state.end
        };
        let mut batch = Vec::new();
        while batch.len() < max && self.next < end {
            let Some(segment) = self.segment_of(self.next) else { break };
            let reader = match &mut self.file {
                Some((first, reader)) if *first == segment => reader,
                _ => {
                    &mut self
                        .file
                        .insert((segment, BufReader::new(File::open(segment_path(&self.shared.dir, segment))?)))
                        .1
                }
            };
            // Only published records are read, so a record is never half there.
            match read_record(reader)? {
                Some((entry, _)) if entry.seq < self.next => {}
                Some((entry, _)) => {
                    self.next = entry.seq + 1;
                    batch.push(entry);
                }
                None if self.segment_of(self.next) == Some(segment) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("outbox segment {segment} ends before entry {}", self.next),
                    ))
                }
                // This segment is done; the rest is in the next one.
                None => self.file = None,
            }
        }
        Ok(batch)
    }

    /// The first seq of the segment holding `seq`.
    fn segment_of(&self, seq: u64) -> Option<u64> {
        lock(&self.shared).segments.range(..=seq).next_back().map(|(&first, _)| first)
    }

    /// The sink confirmed every entry before `next`: persist the cursor.
    pub fn confirm(&mut self, next: u64) -> io::Result<()> {
        set_cursor(&self.shared, &self.sink, next)
    }

    /// Whether the workers were told to stop.
    pub fn stopping(&self) -> bool {
        lock(&self.shared).stopping
    }

    /// Wait `duration` (a retry backoff), cut short when the workers are told to stop. True if
    /// the worker should go on.
    pub fn pause(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut state = lock(&self.shared);
        while !state.stopping {
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = locks::wait(&self.shared.changed, state, deadline - now);
        }
        false
    }
}
