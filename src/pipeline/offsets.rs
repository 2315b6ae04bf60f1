//! Offsets with one owner. The poll loop and the rebalance callbacks both go through
//! [`OffsetTracker`]; nothing else holds offsets.
//!
//! Per (topic, partition) it keeps two positions, each the next offset to read:
//! - `applied`: what the engine state has taken in (and what a checkpoint taken now records);
//! - `durable`: what the last durable checkpoint covers, so what may be committed.
//!
//! Invariants (property-tested below):
//! - an offset is committed only if the last durable checkpoint covers it (`durable`);
//! - an assigned partition never resumes behind the group's committed offset: if another
//!   instance read on while the partition was away, its events are not ours to replay (they
//!   would raise its alerts again), so we start where the group stands and both positions move
//!   there, so that no later commit goes backwards.

use std::collections::BTreeMap;

/// A partition: topic and partition number.
pub type TopicPartition = (String, i32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Position {
    applied: i64,
    durable: i64,
    /// What this instance last committed (or saw committed at assignment), to skip no-op commits.
    committed: i64,
    assigned: bool,
}

impl Position {
    /// Nothing read and nothing known yet.
    const UNKNOWN: Position = Position { applied: -1, durable: -1, committed: -1, assigned: false };
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<TopicPartition, Position>,
}

impl OffsetTracker {
    /// Start from the offsets a restored checkpoint covers (all of them durable).
    pub fn restored(offsets: impl IntoIterator<Item = (TopicPartition, i64)>) -> OffsetTracker {
        let partitions = offsets
            .into_iter()
            .map(|(tp, next)| (tp, Position { applied: next, durable: next, committed: -1, assigned: false }))
            .collect();
        OffsetTracker { partitions }
    }

    /// A partition is assigned; `group` is the group's committed offset, if any. Returns where
    /// to start reading: `None` means "where the group stands" (we hold no state for it).
    pub fn assign(&mut self, tp: &TopicPartition, group: Option<i64>) -> Option<i64> {
        let group = group.filter(|&o| o >= 0);
        let p = self.partitions.entry(tp.clone()).or_insert(Position::UNKNOWN);
        let state = (p.applied >= 0).then_some(p.applied);
        let start = match (state, group) {
            (Some(state), Some(group)) => Some(state.max(group)),
            (state, group) => state.or(group),
        };
        if let Some(start) = start.filter(|&s| s > p.applied) {
            // Read on elsewhere (or never read here): the state skips those events.
            p.applied = start;
            p.durable = start;
        }
        p.committed = group.unwrap_or(-1);
        p.assigned = true;
        start
    }

    /// A partition is taken away. Returns the offset to commit on its way out (what the last
    /// durable checkpoint covers), if that is ahead of what was committed.
    pub fn revoke(&mut self, tp: &TopicPartition) -> Option<i64> {
        let p = self.partitions.get_mut(tp)?;
        p.assigned = false;
        (p.durable > p.committed).then_some(p.durable)
    }

    /// The events of `tp` up to `next` (exclusive) are in the engine state.
    pub fn apply(&mut self, tp: &TopicPartition, next: i64) {
        let p = self.partitions.entry(tp.clone()).or_insert(Position::UNKNOWN);
        p.applied = p.applied.max(next);
    }

    /// What a checkpoint taken now covers.
    pub fn applied(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions.iter().filter(|(_, p)| p.applied >= 0).map(|(tp, p)| (tp.clone(), p.applied)).collect()
    }

    /// A checkpoint holding `offsets` is durable.
    pub fn durable(&mut self, offsets: &[(TopicPartition, i64)]) {
        for (tp, next) in offsets {
            if let Some(p) = self.partitions.get_mut(tp) {
                p.durable = p.durable.max(*next);
            }
        }
    }

    /// Offsets to commit now: durable, assigned to us, and ahead of the last commit.
    pub fn to_commit(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .filter(|(_, p)| p.assigned && p.durable >= 0 && p.durable > p.committed)
            .map(|(tp, p)| (tp.clone(), p.durable))
            .collect()
    }

    /// These offsets were committed to the group.
    pub fn committed(&mut self, offsets: &[(TopicPartition, i64)]) {
        for (tp, next) in offsets {
            if let Some(p) = self.partitions.get_mut(tp) {
                p.committed = p.committed.max(*next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Read and apply up to this many more messages of partition p (if assigned).
        Apply(i32, i64),
        /// Take a checkpoint now; it becomes durable at a later `Durable`.
        Checkpoint,
        /// The checkpoint taken last becomes durable (or fails, when false).
        Durable(bool),
        Commit,
        Revoke(i32),
        /// Assigned again; meanwhile another instance read on and committed this many more.
        Assign(i32, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3i32, 1..50i64).prop_map(|(p, n)| Op::Apply(p, n)),
            2 => Just(Op::Checkpoint),
            2 => any::<bool>().prop_map(Op::Durable),
            2 => Just(Op::Commit),
            1 => (0..3i32).prop_map(Op::Revoke),
            1 => (0..3i32, 0..30i64).prop_map(|(p, n)| Op::Assign(p, n)),
        ]
    }

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn commits_stay_within_durable_checkpoints_and_resumes_never_go_behind_the_group(
            ops in proptest::collection::vec(op(), 1..80)
        ) {
            // The world: the group's committed offsets, partitions' read positions, and which
            // partitions we own. All partitions start assigned, nothing committed.
            let mut group: BTreeMap<i32, i64> = BTreeMap::new();
            let mut position: BTreeMap<i32, i64> = BTreeMap::new();
            let mut owned = [true; 3];
            let mut tracker = OffsetTracker::restored([]);
            for p in 0..3 {
                tracker.assign(&tp(p), None);
                position.insert(p, 0);
            }
            let mut pending: Option<Vec<(TopicPartition, i64)>> = None;
            // Per partition, the highest offset covered by a checkpoint that became durable.
            let mut durable_cover: BTreeMap<i32, i64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Apply(p, n) if owned[p as usize] => {
                        let next = position[&p] + n;
                        position.insert(p, next);
                        tracker.apply(&tp(p), next);
                    }
                    Op::Apply(..) => {}
                    Op::Checkpoint => pending = Some(tracker.applied()),
                    Op::Durable(ok) => {
                        if let Some(offsets) = pending.take() {
                            if ok {
                                for ((_, p), next) in &offsets {
                                    let c = durable_cover.entry(*p).or_insert(0);
                                    *c = (*c).max(*next);
                                }
                                tracker.durable(&offsets);
                            }
                        }
                    }
                    Op::Commit => {
                        let commit = tracker.to_commit();
                        for ((_, p), next) in &commit {
                            prop_assert!(owned[*p as usize], "commit of a partition we do not own");
                            prop_assert!(*next <= durable_cover.get(p).copied().unwrap_or(-1).max(group.get(p).copied().unwrap_or(-1)),
                                "committed {next} on {p} beyond the durable checkpoint");
                            prop_assert!(*next >= group.get(p).copied().unwrap_or(0), "commit goes backwards on {p}");
                            group.insert(*p, *next);
                        }
                        tracker.committed(&commit);
                    }
                    Op::Revoke(p) if owned[p as usize] => {
                        owned[p as usize] = false;
                        if let Some(next) = tracker.revoke(&tp(p)) {
                            prop_assert!(next <= durable_cover.get(&p).copied().unwrap_or(-1).max(group.get(&p).copied().unwrap_or(-1)));
                            prop_assert!(next >= group.get(&p).copied().unwrap_or(0), "revoke commit goes backwards");
                            group.insert(p, next);
                        }
                    }
                    Op::Revoke(_) => {}
                    Op::Assign(p, more) if !owned[p as usize] => {
                        // Another instance read on from the group's offset and committed.
                        let g = group.get(&p).copied().unwrap_or(0) + more;
                        group.insert(p, g);
                        let start = tracker.assign(&tp(p), Some(g));
                        prop_assert!(start.is_some_and(|s| s >= g), "resumed at {start:?}, behind the group's {g}");
                        owned[p as usize] = true;
                        // Events between what our state took in and the group are skipped.
                        position.insert(p, start.unwrap_or(g));
                        durable_cover.insert(p, durable_cover.get(&p).copied().unwrap_or(0).max(g));
                    }
                    Op::Assign(..) => {}
                }
            }
        }
    }

    #[test]
    fn restored_partition_resumes_at_the_state_unless_the_group_is_ahead() {
        let mut tracker = OffsetTracker::restored([(tp(0), 100), (tp(1), 100)]);
        assert_eq!(tracker.assign(&tp(0), Some(40)), Some(100), "state ahead of the group");
        assert_eq!(tracker.assign(&tp(1), Some(150)), Some(150), "group ahead: skip to it");
        assert_eq!(tracker.assign(&tp(2), Some(7)), Some(7), "no state: where the group stands");
        assert_eq!(tracker.assign(&tp(3), None), None);
        // Partition 0 is durable at 100 and the group at 40: that is worth committing.
        assert_eq!(tracker.to_commit(), vec![(tp(0), 100)]);
        // Partition 1 moved to 150 with the group: a stale checkpoint of 120 cannot pull it back.
        tracker.durable(&[(tp(1), 120)]);
        assert_eq!(tracker.revoke(&tp(1)), None);
    }

    #[test]
    fn a_checkpoint_taken_before_an_assignment_skip_cannot_lower_durable() {
        let mut tracker = OffsetTracker::restored([(tp(0), 10)]);
        tracker.assign(&tp(0), None);
        tracker.apply(&tp(0), 20);
        let taken = tracker.applied();
        tracker.durable(&taken);
        assert_eq!(tracker.to_commit(), vec![(tp(0), 20)]);
        tracker.committed(&tracker.to_commit());
        assert!(tracker.to_commit().is_empty(), "nothing new to commit");
        assert_eq!(tracker.revoke(&tp(0)), None, "already committed");
    }
}
