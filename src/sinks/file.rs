//! Alerts appended to a JSON-lines file. Delivered means written, flushed and synced.
//!
//! The file holds each alert id once: at start the ids already in it are read back, and an
//! entry repeated after a crash (delivered, but its cursor not yet saved) is skipped. The file
//! is opened by the worker on its first delivery, so a path that blocks on open (a FIFO nobody
//! reads) blocks only this sink.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use crate::sinks::DeliveryError;
use crate::state::outbox::Entry;

/// Ids are read back from at most this much of the end of an existing file.
const MAX_ID_SCAN: u64 = 256 << 20;

pub struct FileSink {
    path: PathBuf,
    file: Option<File>,
    held: HashSet<String>,
}

impl FileSink {
    pub fn new(path: PathBuf) -> FileSink {
        FileSink { path, file: None, held: HashSet::new() }
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                self.held = held_ids(&self.path)?;
                OpenOptions::new().create(true).append(true).open(&self.path)?
            }
        };
        Ok(self.file.insert(file))
    }

    pub fn deliver(&mut self, entries: &[Entry]) -> Result<(), DeliveryError> {
        let path = self.path.display().to_string();
        let fail = |e: std::io::Error| DeliveryError::transient(0, format!("writing {path}: {e}"));
        let mut lines = Vec::new();
        let mut new_ids = Vec::new();
        self.open().map_err(&fail)?;
        for entry in entries {
            if !self.held.contains(&entry.id) && !new_ids.contains(&&entry.id) {
                lines.extend_from_slice(&entry.body);
                lines.push(b'\n');
                new_ids.push(&entry.id);
            }
        }
        let file = self.open().map_err(&fail)?;
        let written = file.write_all(&lines).and_then(|()| file.flush());
        // A FIFO or a character device cannot be synced; a regular file must be.
        let synced = written.and_then(|()| match file.sync_data() {
            Err(e) if e.raw_os_error() == Some(22) => Ok(()),
            other => other,
        });
        if let Err(e) = synced {
            // What reached the file is unknown: read it back before the next attempt.
            self.file = None;
            self.held.clear();
            return Err(fail(e));
        }
        self.held.extend(new_ids.into_iter().cloned());
        Ok(())
    }
}

/// The alert ids already in a regular file (none for a FIFO or a file too large to scan).
fn held_ids(path: &std::path::Path) -> std::io::Result<HashSet<String>> {
    let mut held = HashSet::new();
    // Look before opening: opening a FIFO blocks until it has a writer.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_ID_SCAN) {
        return Ok(held);
    }
    let Ok(existing) = File::open(path) else { return Ok(held) };
    for line in BufReader::new(existing).lines() {
        if let Some(id) =
            serde_json::from_str::<serde_json::Value>(&line?).ok().and_then(|v| v["id"].as_str().map(str::to_string))
        {
            held.insert(id);
        }
    }
    Ok(held)
}
