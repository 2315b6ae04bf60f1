//! The checkpoint lifecycle of the pipeline: start an epoch through the barrier, commit the
//! offsets it made durable once it is, and at shutdown the final checkpoint, the final commit
//! and the sinks' drain.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _};
use tracing::{error, info, warn};

use super::{kafka, unix_ms, Pipeline, RunSummary, ServiceError, IDLE_WAIT};

impl Pipeline<'_> {
    pub(super) fn begin_checkpoint(&mut self) -> Result<(), ServiceError> {
        let offsets = self.consumer.context().offsets().applied();
        let stall = self.barrier.begin(offsets, &mut self.state.participants(), unix_ms())?;
        tracing::debug!(?stall, "checkpoint captured");
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Handle a finished checkpoint (`wait`: wait for the one in flight): on success commit the
    /// offsets it made durable.
    pub(super) fn checkpoint_finished(&mut self, wait: bool, mode: CommitMode) {
        let Some(outcome) = self.barrier.finished(wait, &mut self.state.participants()) else { return };
        match outcome.result {
            Ok(durable) => {
                self.metrics.checkpoint_done(outcome.took, unix_ms());
                self.summary.checkpoints += 1;
                let commit = {
                    let mut offsets = self.consumer.context().offsets();
                    offsets.durable(&durable);
                    offsets.to_commit()
                };
                if commit.is_empty() {
                    return;
                }
                let sync = matches!(mode, CommitMode::Sync);
                match kafka::commit(&self.consumer, &commit, mode) {
                    // Async commits are recorded when their callback reports success.
                    Ok(()) if sync => self.consumer.context().offsets().committed(&commit),
                    Ok(()) => {}
                    Err(error) => warn!(%error, "offset commit failed; the next checkpoint commits again"),
                }
            }
            Err(error) => {
                self.metrics.checkpoint_failed();
                error!(%error, epoch = outcome.epoch, "checkpoint failed; offsets stay uncommitted and the next interval tries again");
            }
        }
    }

    /// Commit what the final checkpoint covers. A group member stopping at the same time as
    /// this one makes the group rebalance, and a commit during that is refused: poll (which
    /// lets the rebalance finish, committing revoked partitions on their way out) and try
    /// again until nothing is left or the deadline passes. Messages polled here are not
    /// handled, so their offsets are never committed.
    fn commit_final(&mut self, deadline: Instant) {
        loop {
            let pending = self.consumer.context().offsets().to_commit();
            if pending.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                warn!(
                    partitions = pending.len(),
                    "final offsets not committed; the next start resumes from the checkpoint"
                );
                return;
            }
            match kafka::commit(&self.consumer, &pending, CommitMode::Sync) {
                Ok(()) => self.consumer.context().offsets().committed(&pending),
                Err(error) => {
                    warn!(%error, "final offset commit refused; retrying");
                    let _ = self.consumer.poll(IDLE_WAIT);
                }
            }
        }
    }

    pub(super) fn finish(mut self) -> Result<RunSummary, ServiceError> {
        self.checkpoint_finished(true, CommitMode::Sync);
        let offsets = self.consumer.context().offsets().applied();
        self.barrier.begin(offsets.clone(), &mut self.state.participants(), unix_ms())?;
        self.checkpoint_finished(true, CommitMode::Sync);
        let grace = Duration::from_millis(self.config.state.shutdown_timeout.millis() as u64 / 4);
        self.commit_final(Instant::now() + grace);
        // Give the sinks a quarter of the shutdown time to deliver what is pending; the rest
        // stays in the outbox and goes out after the next start.
        let deadline = Instant::now() + grace;
        self.summary.sinks_drained =
            self.state.alerts.wait_drained(deadline) && self.state.dead_letters.wait_drained(deadline);
        if !self.summary.sinks_drained {
            warn!(pending = ?self.state.alerts.pending(), "sinks still have pending alerts at shutdown; they are delivered after the next start");
        }
        self.state.alerts.stop_workers();
        self.state.dead_letters.stop_workers();
        for worker in self.workers.drain(..) {
            // A worker blocked inside its sink (a hung write) is left behind rather than waited for.
            if worker.is_finished() || self.summary.sinks_drained {
                let _ = worker.join();
            }
        }
        info!(
            events = self.summary.events,
            engine_events = self.state.engine.engine.stats().events,
            ?offsets,
            dead_letters = self.summary.dead_letters,
            alerts = self.summary.alerts,
            "stopped cleanly"
        );
        Ok(self.summary)
    }
}
