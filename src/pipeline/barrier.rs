//! The checkpoint barrier: one place where every stateful part makes an epoch durable before
//! the offsets of that epoch are committed.
//!
//! ```text
//! batch boundary ─► capture: each participant, on the pipeline thread (the intake stall)
//!                     │  returns the work that makes its part of the epoch durable
//!                     ▼
//!                   writer thread: run that work (fsync logs, encode), write checkpoint.bin
//!                     │  (offsets + one section per participant; temp, fsync, rename)
//!                     ▼
//!                   pipeline: every participant hears the epoch is durable, then the
//!                   offsets it recorded are committed (`OffsetTracker`)
//! ```
//!
//! A participant knows nothing of the others, and the barrier knows only the trait: adding one
//! (the retention writer, per-partition state) touches neither the poll loop nor the others.
//! One checkpoint is in flight at a time; a failed one commits nothing and the next interval
//! tries again.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::offsets::TopicPartition;
use crate::state::checkpoint::{self, Checkpoint, CheckpointError, PartitionOffset};

/// The work that makes a captured epoch durable, run off the pipeline thread. It returns the
/// participant's section of the checkpoint file.
pub type MakeDurable = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

/// A stateful part of the pipeline whose state must be durable before offsets are committed.
pub trait Participant {
    /// Its section's name in the checkpoint file.
    fn name(&self) -> &'static str;

    /// Capture epoch `epoch`, at a batch boundary on the pipeline thread. Intake waits while
    /// this runs, so the slow part (I/O) belongs in the returned work.
    fn capture(&mut self, epoch: u64) -> MakeDurable;

    /// The checkpoint of `epoch` is durable; `section` is the buffer it returned, for reuse.
    fn durable(&mut self, _epoch: u64, _section: Vec<u8>) {}
}

#[derive(Debug, Error)]
pub enum BarrierError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint participant `{name}` could not make epoch {epoch} durable: {reason}")]
    Participant { name: &'static str, epoch: u64, reason: String },
    #[error("the checkpoint writer thread stopped")]
    WriterGone,
    #[error("cannot start the checkpoint writer thread: {0}")]
    Spawn(std::io::Error),
}

struct Job {
    checkpoint: Checkpoint,
    work: Vec<(&'static str, MakeDurable)>,
    started: Instant,
}

/// A finished checkpoint.
pub struct Outcome {
    pub epoch: u64,
    /// How long it took from capture to durable.
    pub took: Duration,
    pub result: Result<Vec<(TopicPartition, i64)>, BarrierError>,
    sections: Vec<(String, Vec<u8>)>,
}

pub struct Barrier {
    epoch: u64,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Outcome>,
    writer: Option<JoinHandle<()>>,
    in_flight: bool,
}

impl Barrier {
    /// A barrier writing checkpoints to `dir`, continuing after `epoch` (that of the restored
    /// checkpoint, 0 for none).
    pub fn start(dir: PathBuf, epoch: u64) -> Result<Barrier, BarrierError> {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(1);
        let (result_tx, results) = mpsc::channel::<Outcome>();
        let writer = std::thread::Builder::new()
            .name("checkpoint-writer".into())
            .spawn(move || {
                for job in job_rx {
                    if result_tx.send(write(&dir, job)).is_err() {
                        break;
                    }
                }
            })
            .map_err(BarrierError::Spawn)?;
        Ok(Barrier { epoch, jobs: Some(jobs), results, writer: Some(writer), in_flight: false })
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Begin the next epoch: capture every participant and hand the rest to the writer.
    /// Returns the intake stall (the capture time).
    pub fn begin(
        &mut self,
        offsets: Vec<(TopicPartition, i64)>,
        participants: &mut [&mut dyn Participant],
        wall_clock_unix_ms: i64,
    ) -> Result<Duration, BarrierError> {
        let started = Instant::now();
        self.epoch += 1;
        let epoch = self.epoch;
        let work = participants.iter_mut().map(|p| (p.name(), p.capture(epoch))).collect();
        let offsets = offsets
            .into_iter()
            .map(|((topic, partition), next_offset)| PartitionOffset { topic, partition, next_offset })
            .collect();
        let checkpoint = Checkpoint { written_at_unix_ms: wall_clock_unix_ms, epoch, offsets, sections: Vec::new() };
        let stall = started.elapsed();
        let jobs = self.jobs.as_ref().ok_or(BarrierError::WriterGone)?;
        jobs.send(Job { checkpoint, work, started }).map_err(|_| BarrierError::WriterGone)?;
        self.in_flight = true;
        Ok(stall)
    }

    /// The checkpoint in flight, once it finished (`wait`: block until it does). Participants
    /// hear of a durable epoch here, before the caller commits its offsets.
    pub fn finished(&mut self, wait: bool, participants: &mut [&mut dyn Participant]) -> Option<Outcome> {
        if !self.in_flight {
            return None;
        }
        let mut outcome = if wait {
            self.results.recv().ok()
        } else {
            match self.results.try_recv() {
                Ok(outcome) => Some(outcome),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => None,
            }
        }
        .unwrap_or(Outcome {
            epoch: self.epoch,
            took: Duration::ZERO,
            result: Err(BarrierError::WriterGone),
            sections: Vec::new(),
        });
        self.in_flight = false;
        if outcome.result.is_ok() {
            for (name, section) in std::mem::take(&mut outcome.sections) {
                if let Some(p) = participants.iter_mut().find(|p| p.name() == name) {
                    p.durable(outcome.epoch, section);
                }
            }
        }
        Some(outcome)
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// On the writer thread: make every participant's part durable, then write the checkpoint.
fn write(dir: &std::path::Path, job: Job) -> Outcome {
    let Job { mut checkpoint, work, started } = job;
    let epoch = checkpoint.epoch;
    let offsets =
        checkpoint.offsets.iter().map(|o| ((o.topic.clone(), o.partition), o.next_offset)).collect::<Vec<_>>();
    for (name, make_durable) in work {
        match make_durable() {
            Ok(section) => checkpoint.sections.push((name.to_string(), section)),
            Err(reason) => {
                return Outcome {
                    epoch,
                    took: started.elapsed(),
                    result: Err(BarrierError::Participant { name, epoch, reason }),
                    sections: Vec::new(),
                }
            }
        }
    }
    let result = checkpoint::write(dir, &checkpoint).map(|()| offsets).map_err(BarrierError::from);
    Outcome { epoch, took: started.elapsed(), result, sections: checkpoint.sections }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A participant that records what it was told.
    struct Probe {
        name: &'static str,
        fail: bool,
        durable: Vec<u64>,
    }

    impl Participant for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        fn capture(&mut self, epoch: u64) -> MakeDurable {
            let (fail, name) = (self.fail, self.name);
            Box::new(move || if fail { Err("disk full".into()) } else { Ok(format!("{name}@{epoch}").into_bytes()) })
        }
        fn durable(&mut self, epoch: u64, section: Vec<u8>) {
            assert_eq!(section, format!("{}@{epoch}", self.name).into_bytes());
            self.durable.push(epoch);
        }
    }

    #[test]
    fn every_section_is_written_and_each_participant_hears_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut barrier = Barrier::start(dir.path().to_path_buf(), 4).unwrap();
        let (mut a, mut b) =
            (Probe { name: "a", fail: false, durable: vec![] }, Probe { name: "b", fail: false, durable: vec![] });
        barrier.begin(vec![(("t".into(), 0), 10)], &mut [&mut a, &mut b], 0).unwrap();
        let outcome = barrier.finished(true, &mut [&mut a, &mut b]).unwrap();
        assert_eq!(outcome.result.unwrap(), vec![(("t".to_string(), 0), 10)]);
        assert_eq!((a.durable.as_slice(), b.durable.as_slice()), (&[5][..], &[5][..]));
        let written = checkpoint::read(dir.path()).unwrap().unwrap();
        assert_eq!(written.epoch, 5);
        assert_eq!(written.section("a"), Some(&b"a@5"[..]));
        assert_eq!(written.section("b"), Some(&b"b@5"[..]));
    }

    #[test]
    fn a_failing_participant_fails_the_epoch_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut barrier = Barrier::start(dir.path().to_path_buf(), 0).unwrap();
        let (mut a, mut b) =
            (Probe { name: "a", fail: false, durable: vec![] }, Probe { name: "b", fail: true, durable: vec![] });
        barrier.begin(vec![(("t".into(), 0), 10)], &mut [&mut a, &mut b], 0).unwrap();
        let outcome = barrier.finished(true, &mut [&mut a, &mut b]).unwrap();
        assert!(matches!(outcome.result, Err(BarrierError::Participant { name: "b", epoch: 1, .. })));
        assert!(a.durable.is_empty() && b.durable.is_empty(), "no participant hears of a failed epoch");
        assert!(checkpoint::read(dir.path()).unwrap().is_none());
    }
}
