//! Commit-position bookkeeping: which entries a client has finished with, folded into the
//! [`ObjectSetPosition`] it records in the header (spec §7.2, the commit half of Ceph's
//! `JournalMetadata`).
//!
//! Every entry a writer appends, or a reader hands out, is given a process-local [`CommitTid`]
//! by [`CommitTracker::allocate`], remembered with the entry's object number, tag tid and entry
//! tid. [`CommitTracker::committed`] marks one record done. Starting from the smallest
//! outstanding commit tid, every run of consecutively-done records is folded into the position:
//! each record is pushed at the front of the position list (so the list is newest first), and
//! the list is then reduced to the first occurrence of each splay offset. A done record behind a
//! not-yet-done one waits.
//!
//! The tracker does no I/O and is not internally synchronised: every method is cheap (`O(1)`:
//! commit tids are consecutive, so the outstanding records are a ring indexed by commit tid;
//! plus `O(W)` per folded record) and allocates nothing once the ring has grown, so a caller
//! shared between threads wraps it in a `parking_lot::Mutex` and holds the lock only for the
//! call.
//!
//! ```
//! use journal_core::commit::CommitTracker;
//! use journal_core::header::{ObjectPosition, ObjectSetPosition};
//!
//! let mut tracker = CommitTracker::new(2, ObjectSetPosition::default());
//! let a = tracker.allocate(0, 1, 0); // entry 0 of tag 1 in object 0
//! let b = tracker.allocate(1, 1, 1); // entry 1 of tag 1 in object 1
//! tracker.committed(b)?; // done, but waits for `a`
//! assert!(tracker.take_if_changed().is_none());
//! tracker.committed(a)?; // both fold, newest first
//! let position = tracker.take_if_changed().expect("changed");
//! assert_eq!(
//!     position.object_positions,
//!     vec![
//!         ObjectPosition { object_number: 1, tag_tid: 1, entry_tid: 1 },
//!         ObjectPosition { object_number: 0, tag_tid: 1, entry_tid: 0 },
//!     ]
//! );
//! # Ok::<(), journal_core::commit::CommitError>(())
//! ```

use std::collections::VecDeque;
use std::fmt;

use crate::header::{ObjectPosition, ObjectSetPosition};

/// A process-local commit tid: orders commits, never persisted. The first one allocated is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitTid(pub u64);

impl fmt::Display for CommitTid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A misuse of the tracker. None of these changes the tracker's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The commit tid was never allocated, or its record was already folded into the position.
    #[error("commit tid {commit_tid} is not outstanding")]
    NotOutstanding {
        /// The commit tid.
        commit_tid: CommitTid,
    },
    /// [`CommitTracker::committed`] was called twice for the same commit tid.
    #[error("commit tid {commit_tid} was already marked committed")]
    AlreadyCommitted {
        /// The commit tid.
        commit_tid: CommitTid,
    },
    /// [`CommitTracker::set_object_number`] would move a record to an object that is not
    /// further along the same splay offset (Ceph asserts the object number grows).
    #[error("commit tid {commit_tid}: cannot move from object {from} to object {to}")]
    BadObjectMove {
        /// The commit tid.
        commit_tid: CommitTid,
        /// The record's current object number.
        from: u64,
        /// The object number asked for.
        to: u64,
    },
}

/// One allocated commit tid's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    position: ObjectPosition,
    done: bool,
}

/// Commit bookkeeping for one journal client (see the module docs).
#[derive(Debug, Clone)]
pub struct CommitTracker {
    splay_width: u64,
    /// The last commit tid handed out (0 = none yet).
    last_tid: u64,
    /// Records not yet folded: the record of commit tid `last_tid - pending.len() + 1 + i` at
    /// index `i` (commit tids are consecutive and fold from the front).
    pending: VecDeque<Record>,
    /// The folded position, newest first, at most one entry per splay offset.
    position: ObjectSetPosition,
    /// Whether `position` changed since the last [`CommitTracker::take_if_changed`].
    changed: bool,
}

impl CommitTracker {
    /// A tracker for a journal of splay width `splay_width` (0 is treated as 1), starting from
    /// the client's recorded position `initial` (normally read from the header).
    ///
    /// A position read from a header is untrusted: only the first (newest) position of each
    /// splay offset is kept, as a fold would keep it.
    pub fn new(splay_width: u8, initial: ObjectSetPosition) -> Self {
        let width = u64::from(splay_width.max(1));
        let mut positions: Vec<ObjectPosition> = Vec::new();
        for p in initial.object_positions {
            if !positions
                .iter()
                .any(|q| q.object_number % width == p.object_number % width)
            {
                positions.push(p);
            }
        }
        CommitTracker {
            splay_width: width,
            last_tid: 0,
            pending: VecDeque::new(),
            position: ObjectSetPosition::new(positions),
            changed: false,
        }
    }

    /// Remembers an entry (object `object_number`, tag `tag_tid`, entry `entry_tid`) and returns
    /// its commit tid; commit tids grow by one per call.
    pub fn allocate(&mut self, object_number: u64, tag_tid: u64, entry_tid: u64) -> CommitTid {
        self.last_tid = self.last_tid.saturating_add(1);
        let record = Record {
            position: ObjectPosition {
                object_number,
                tag_tid,
                entry_tid,
            },
            done: false,
        };
        self.pending.push_back(record);
        CommitTid(self.last_tid)
    }

    /// Records that the writer moved the entry of `commit_tid` to object `object_number` (its
    /// object set was closed, §6.3). The new object must be a later object of the same splay
    /// offset.
    pub fn set_object_number(
        &mut self,
        commit_tid: CommitTid,
        object_number: u64,
    ) -> Result<(), CommitError> {
        let width = self.splay_width;
        let record = self
            .slot_mut(commit_tid)
            .ok_or(CommitError::NotOutstanding { commit_tid })?;
        let from = record.position.object_number;
        if object_number <= from || object_number % width != from % width {
            return Err(CommitError::BadObjectMove {
                commit_tid,
                from,
                to: object_number,
            });
        }
        record.position.object_number = object_number;
        Ok(())
    }

    /// Marks the record of `commit_tid` done and folds every consecutively-done record from the
    /// smallest outstanding commit tid into the position. Returns whether the position changed.
    pub fn committed(&mut self, commit_tid: CommitTid) -> Result<bool, CommitError> {
        let record = self
            .slot_mut(commit_tid)
            .ok_or(CommitError::NotOutstanding { commit_tid })?;
        if record.done {
            return Err(CommitError::AlreadyCommitted { commit_tid });
        }
        record.done = true;

        let mut folded = false;
        while self.pending.front().is_some_and(|r| r.done) {
            if let Some(record) = self.pending.pop_front() {
                self.fold(record.position);
                folded = true;
            }
        }
        self.changed |= folded;
        Ok(folded)
    }

    /// Where the record of an outstanding `commit_tid` is in `pending`.
    fn index(&self, commit_tid: CommitTid) -> Option<usize> {
        let first = (self.last_tid + 1).saturating_sub(self.pending.len() as u64);
        usize::try_from(commit_tid.0.checked_sub(first)?).ok()
    }

    /// The record of an outstanding `commit_tid`.
    fn slot_mut(&mut self, commit_tid: CommitTid) -> Option<&mut Record> {
        let index = self.index(commit_tid)?;
        self.pending.get_mut(index)
    }

    /// Puts `p` (newer than everything folded so far) at the front of the position, replacing
    /// the position of its splay offset.
    fn fold(&mut self, p: ObjectPosition) {
        let width = self.splay_width;
        let offset = p.object_number % width;
        let positions = &mut self.position.object_positions;
        if let Some(i) = positions
            .iter()
            .position(|q| q.object_number % width == offset)
        {
            let older = positions.remove(i);
            // A splay offset's position only moves forward.
            debug_assert!(
                (p.object_number, p.tag_tid, p.entry_tid)
                    >= (older.object_number, older.tag_tid, older.entry_tid),
                "commit position at splay offset {offset} moved backwards: {older:?} -> {p:?}"
            );
        }
        positions.insert(0, p);
        debug_assert!(positions.len() as u64 <= width);
    }

    /// The current folded position (newest first, at most one per splay offset).
    pub fn position(&self) -> ObjectSetPosition {
        self.position.clone()
    }

    /// The position if it changed since the last call (or since construction), for the periodic
    /// commit writer; `None` when there is nothing new to write.
    pub fn take_if_changed(&mut self) -> Option<ObjectSetPosition> {
        if std::mem::take(&mut self.changed) {
            Some(self.position.clone())
        } else {
            None
        }
    }

    /// Number of allocated records not yet folded (done or not).
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// The record remembered for an outstanding `commit_tid`.
    pub fn record(&self, commit_tid: CommitTid) -> Option<ObjectPosition> {
        self.pending
            .get(self.index(commit_tid)?)
            .map(|r| r.position)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    fn pos(object_number: u64, tag_tid: u64, entry_tid: u64) -> ObjectPosition {
        ObjectPosition {
            object_number,
            tag_tid,
            entry_tid,
        }
    }

    fn set(positions: &[(u64, u64, u64)]) -> ObjectSetPosition {
        ObjectSetPosition {
            object_positions: positions.iter().map(|&(o, t, e)| pos(o, t, e)).collect(),
        }
    }

    /// Writer of tag 1 with W = 4 writes entries 0..6 round robin into set 0; commits arrive
    /// out of order. Worked by hand from §7.2.
    #[test]
    fn out_of_order_commits_fold_in_tid_order() {
        let mut t = CommitTracker::new(4, ObjectSetPosition::default());
        let tids: Vec<CommitTid> = (0..6).map(|e| t.allocate(e % 4, 1, e)).collect();
        assert_eq!(tids[0], CommitTid(1));
        assert_eq!(tids[5], CommitTid(6));

        // 2 and 3 done: nothing folds, 1 is outstanding.
        assert!(!t.committed(tids[2]).unwrap());
        assert!(!t.committed(tids[1]).unwrap());
        assert!(t.take_if_changed().is_none());
        assert_eq!(t.position(), ObjectSetPosition::default());

        // 1 done: entries 0, 1, 2 fold -> [2, 1, 0].
        assert!(t.committed(tids[0]).unwrap());
        assert_eq!(
            t.take_if_changed().unwrap(),
            set(&[(2, 1, 2), (1, 1, 1), (0, 1, 0)])
        );
        assert!(t.take_if_changed().is_none());

        // 5 done waits for 4; then 4 folds 3 and 4 (entry 4 replaces entry 0 at offset 0),
        // 5 still waits for 4 (tid 5).
        assert!(!t.committed(tids[5]).unwrap());
        assert!(t.committed(tids[3]).unwrap());
        assert_eq!(
            t.position(),
            set(&[(3, 1, 3), (2, 1, 2), (1, 1, 1), (0, 1, 0)])
        );
        assert!(t.committed(tids[4]).unwrap());
        assert_eq!(
            t.position(),
            set(&[(1, 1, 5), (0, 1, 4), (3, 1, 3), (2, 1, 2)])
        );
        assert_eq!(t.outstanding(), 0);
    }

    /// The initial position (the librbd-basic image client's) is kept for offsets not yet
    /// overwritten and replaced offset by offset.
    #[test]
    fn folds_onto_the_initial_position() {
        let initial = set(&[(0, 1, 92), (3, 1, 91), (2, 1, 90), (1, 1, 89)]);
        let mut t = CommitTracker::new(4, initial.clone());
        assert_eq!(t.position(), initial);
        assert!(t.take_if_changed().is_none());
        let a = t.allocate(1, 1, 93);
        let b = t.allocate(2, 1, 94);
        t.committed(a).unwrap();
        assert_eq!(
            t.position(),
            set(&[(1, 1, 93), (0, 1, 92), (3, 1, 91), (2, 1, 90)])
        );
        t.committed(b).unwrap();
        assert_eq!(
            t.position(),
            set(&[(2, 1, 94), (1, 1, 93), (0, 1, 92), (3, 1, 91)])
        );
    }

    /// A record moved to the next set (§6.3) is folded with its new object number.
    #[test]
    fn moved_records_use_their_new_object() {
        let mut t = CommitTracker::new(2, ObjectSetPosition::default());
        let a = t.allocate(0, 3, 0);
        let b = t.allocate(1, 3, 1);
        t.set_object_number(b, 3).unwrap();
        assert_eq!(t.record(b), Some(pos(3, 3, 1)));
        t.committed(b).unwrap();
        t.committed(a).unwrap();
        assert_eq!(t.position(), set(&[(3, 3, 1), (0, 3, 0)]));
    }

    #[test]
    fn misuse_is_refused_without_changing_state() {
        let mut t = CommitTracker::new(4, ObjectSetPosition::default());
        let a = t.allocate(5, 1, 1);
        assert_eq!(
            t.set_object_number(a, 1),
            Err(CommitError::BadObjectMove {
                commit_tid: a,
                from: 5,
                to: 1
            })
        );
        assert_eq!(
            t.set_object_number(a, 10),
            Err(CommitError::BadObjectMove {
                commit_tid: a,
                from: 5,
                to: 10
            })
        );
        assert_eq!(
            t.committed(CommitTid(7)),
            Err(CommitError::NotOutstanding {
                commit_tid: CommitTid(7)
            })
        );
        let b = t.allocate(6, 1, 2);
        t.committed(b).unwrap();
        assert_eq!(
            t.committed(b),
            Err(CommitError::AlreadyCommitted { commit_tid: b })
        );
        t.committed(a).unwrap();
        assert_eq!(
            t.committed(a),
            Err(CommitError::NotOutstanding { commit_tid: a })
        );
        assert_eq!(t.position(), set(&[(6, 1, 2), (5, 1, 1)]));
    }
}
