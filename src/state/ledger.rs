//! The alert ledger: ids of alerts already delivered, so an alert raised again after a restart
//! (the engine replays events since the last checkpoint and, being deterministic, raises the
//! same ids) is not sent twice.
//!
//! Bounded to the newest `capacity` ids. An id is recorded only once the outputs confirmed the
//! alert (files flushed and synced, Kafka acknowledged): recording it when merely queued would
//! lose the alert if the process died before the send. Ids are appended to `delivered.log`; a
//! checkpoint carries the whole ledger, after which the log of the ids it covers is removed. Files in the state directory:
//! `delivered.log` (current), `delivered.old` (being covered by the checkpoint in flight).
//! A crash between delivery and its confirmation repeats the alert, with the same id.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub struct AlertLedger {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
    dir: PathBuf,
    log: File,
}

impl AlertLedger {
    /// Open the ledger in `dir`, starting from the ids a checkpoint carried plus any logged
    /// after it.
    pub fn open(dir: &Path, capacity: usize, from_checkpoint: Vec<String>) -> io::Result<AlertLedger> {
        fs::create_dir_all(dir)?;
        let mut ledger = AlertLedger {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            dir: dir.to_path_buf(),
            log: OpenOptions::new().create(true).append(true).open(dir.join("delivered.log"))?,
        };
        for id in from_checkpoint {
            ledger.remember(id);
        }
        for name in ["delivered.old", "delivered.log"] {
            match File::open(dir.join(name)) {
                Ok(file) => {
                    for line in BufReader::new(file).lines() {
                        let line = line?;
                        if !line.is_empty() {
                            ledger.remember(line);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ledger)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Record alerts whose delivery the outputs confirmed (flushed, acknowledged), durably.
    pub fn record(&mut self, ids: &[String]) -> io::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            writeln!(self.log, "{id}")?;
        }
        self.log.sync_data()?;
        for id in ids {
            self.remember(id.clone());
        }
        Ok(())
    }

    fn remember(&mut self, id: String) {
        if self.ids.contains(&id) {
            return;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.insert(id.clone());
        self.order.push_back(id);
    }

    /// The ids for a checkpoint; the log so far moves aside until that checkpoint is written.
    pub fn begin_checkpoint(&mut self) -> io::Result<Vec<String>> {
        let old = self.dir.join("delivered.old");
        if !old.exists() {
            fs::rename(self.dir.join("delivered.log"), &old)?;
            self.log = OpenOptions::new().create(true).append(true).open(self.dir.join("delivered.log"))?;
        }
        Ok(self.order.iter().cloned().collect())
    }

    /// The checkpoint holding those ids is durable: their log is no longer needed.
    pub fn end_checkpoint(&mut self) -> io::Result<()> {
        match fs::remove_file(self.dir.join("delivered.old")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_restart_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = AlertLedger::open(dir.path(), 10, Vec::new()).unwrap();
        ledger.record(&["a".to_string()]).unwrap();
        let ids = ledger.begin_checkpoint().unwrap();
        assert_eq!(ids, vec!["a"]);
        ledger.record(&["b".to_string()]).unwrap();
        drop(ledger);
        // Crash before the checkpoint finished: both logs are read back.
        let ledger = AlertLedger::open(dir.path(), 10, Vec::new()).unwrap();
        assert!(ledger.contains("a") && ledger.contains("b"));
        let mut ledger = AlertLedger::open(dir.path(), 10, ids).unwrap();
        let ids = ledger.begin_checkpoint().unwrap();
        ledger.end_checkpoint().unwrap();
        drop(ledger);
        let ledger = AlertLedger::open(dir.path(), 10, ids).unwrap();
        assert!(ledger.contains("a") && ledger.contains("b"));
        assert!(!dir.path().join("delivered.old").exists());
    }

    #[test]
    fn is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = AlertLedger::open(dir.path(), 2, Vec::new()).unwrap();
        ledger.record(&["a".to_string(), "b".to_string(), "c".to_string()]).unwrap();
        assert_eq!(ledger.len(), 2);
        assert!(!ledger.contains("a") && ledger.contains("c"));
    }
}
