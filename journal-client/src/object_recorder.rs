//! Per-splay-offset bookkeeping of the recorder (Ceph's `ObjectRecorder` role): the queue of
//! entries waiting for the object of one splay offset, the bytes this writer has put into the
//! current object (spec §6.2), and the batching decision (§6.4).
//!
//! Pure state, no I/O and no locking: the recorder owns one [`ObjectQueue`] per splay offset
//! inside its state mutex.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use journal_core::commit::CommitTid;

use crate::prepared_entry::FramedEntry;
use crate::settings::JournalSettings;

/// Largest batch (in entries) whose buffers are kept for reuse.
const SPARE_MAX: usize = 256;

/// One framed entry waiting to be appended.
#[derive(Debug, Clone)]
pub(crate) struct PendingEntry {
    /// Entry tid (also the recorder's sequence number).
    pub(crate) entry_tid: u64,
    /// The framed entry (preamble .. CRC).
    pub(crate) bytes: FramedEntry,
    /// The commit record of the entry.
    pub(crate) commit_tid: CommitTid,
    /// When the entry was queued (only with `flush_age` set: reading the clock per entry costs).
    pub(crate) queued_at: Option<Instant>,
}

/// Why a batch is (or is not) ready to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendPolicy {
    /// Send everything now (writethrough, forced flush, shutdown).
    pub(crate) force_below: u64,
    /// Batching on (after the first user flush, or writethrough disabled).
    pub(crate) batching: bool,
}

/// The queue and accounting for the object currently open at one splay offset.
#[derive(Debug, Default)]
pub(crate) struct ObjectQueue {
    /// Entries in entry-tid order.
    pub(crate) queue: VecDeque<PendingEntry>,
    /// Bytes of `queue`.
    pub(crate) queued_bytes: u64,
    /// Bytes this writer appended (or has in flight) to the current object.
    pub(crate) object_bytes: u64,
    /// The current object is full: nothing more goes to it.
    pub(crate) overflowed: bool,
    /// An append to the current object is in flight.
    pub(crate) in_flight: bool,
    /// The first entry tid of the batch in flight (entries of one offset are sent in order, so
    /// everything of this offset before it is durable).
    pub(crate) in_flight_first: Option<u64>,
    /// The current object carries this writer's fence key.
    pub(crate) fenced: bool,
    /// Emptied buffers of the last batch sent (entries, and their parts as handed to the
    /// store), reused by the next one: at most one append per object is in flight, so one
    /// pair per object saves two allocations per store append.
    pub(crate) spare: (Vec<PendingEntry>, Vec<bytes::Bytes>),
}

impl ObjectQueue {
    /// Queues an entry at the back.
    pub(crate) fn push(&mut self, entry: PendingEntry) {
        self.queued_bytes += entry.bytes.len() as u64;
        self.queue.push_back(entry);
    }

    /// Puts a refused batch back at the front, in order.
    pub(crate) fn requeue_front(&mut self, batch: &mut Vec<PendingEntry>) {
        for entry in batch.drain(..).rev() {
            self.queued_bytes += entry.bytes.len() as u64;
            self.queue.push_front(entry);
        }
    }

    /// Keeps a sent batch's buffers (emptied) for the next batch, unless they grew large (a
    /// rare big batch should not stay allocated).
    pub(crate) fn recycle(&mut self, mut batch: Vec<PendingEntry>, mut parts: Vec<bytes::Bytes>) {
        if batch.capacity() > SPARE_MAX || parts.capacity() > 3 * SPARE_MAX {
            return;
        }
        batch.clear();
        parts.clear();
        self.spare = (batch, parts);
    }

    /// The smallest entry tid of this offset that is not durable yet (in flight or queued).
    pub(crate) fn first_pending(&self) -> Option<u64> {
        let queued = self.queue.front().map(|e| e.entry_tid);
        match (self.in_flight_first, queued) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether this offset's queue holds an entry below `target` (someone waits for it or
    /// flushed it) and nothing is in flight to the object, so it can be sent now.
    pub(crate) fn due(&self, target: u64) -> bool {
        !self.in_flight && self.queue.front().is_some_and(|e| e.entry_tid < target)
    }

    /// Whether the queue should be sent now under `settings` and `policy`.
    pub(crate) fn ready(&self, settings: &JournalSettings, policy: SendPolicy) -> bool {
        let Some(front) = self.queue.front() else {
            return false;
        };
        if !policy.batching || front.entry_tid < policy.force_below {
            return true;
        }
        if let Some(n) = settings.flush_interval_entries {
            if self.queue.len() as u64 >= u64::from(n.get()) {
                return true;
            }
        }
        if let Some(b) = settings.flush_bytes {
            if self.queued_bytes >= b.get() {
                return true;
            }
        }
        if let (Some(age), Some(at)) = (settings.flush_age, front.queued_at) {
            if Instant::now().saturating_duration_since(at) >= age {
                return true;
            }
        }
        false
    }

    /// How long until the oldest entry reaches `flush_age` (for a timed wait).
    pub(crate) fn age_deadline(
        &self,
        settings: &JournalSettings,
        now: Instant,
    ) -> Option<Duration> {
        let age = settings.flush_age?;
        let at = self.queue.front()?.queued_at?;
        Some(age.saturating_sub(now.saturating_duration_since(at)))
    }

    /// Takes the entries below tid `below` that fit into the current object (soft limit
    /// `limit`), applying the size rules of §6.2: an entry that makes the total exactly `limit`
    /// is included and marks the object overflowed; an entry that would exceed it stays queued
    /// and marks the object overflowed. Returns the batch and, if the object overflowed, the
    /// first entry tid that belongs to the next set.
    pub(crate) fn take_batch(
        &mut self,
        limit: u64,
        below: u64,
    ) -> (Vec<PendingEntry>, Option<u64>) {
        let mut batch = std::mem::take(&mut self.spare.0);
        batch.clear();
        let mut cut = None;
        while let Some(front) = self.queue.front() {
            if front.entry_tid >= below {
                break;
            }
            let len = front.bytes.len() as u64;
            if self.object_bytes + len > limit {
                self.overflowed = true;
                cut = Some(front.entry_tid);
                break;
            }
            self.object_bytes += len;
            self.queued_bytes -= len;
            if let Some(entry) = self.queue.pop_front() {
                let tid = entry.entry_tid;
                batch.push(entry);
                if self.object_bytes == limit {
                    self.overflowed = true;
                    cut = Some(tid + 1);
                    break;
                }
            }
        }
        (batch, cut)
    }

    /// Whether the front entry may still go to the current object when the set closes at
    /// entry tid `closing_at`.
    pub(crate) fn sendable_before(&self, closing_at: u64) -> bool {
        !self.overflowed && self.queue.front().is_some_and(|e| e.entry_tid < closing_at)
    }

    /// Resets the per-object state for the object of the same offset in the next set.
    pub(crate) fn reopen(&mut self) {
        self.object_bytes = 0;
        self.overflowed = false;
        self.fenced = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use bytes::Bytes;

    fn entry(tid: u64, len: usize) -> PendingEntry {
        PendingEntry {
            entry_tid: tid,
            bytes: FramedEntry::Whole(Bytes::from(vec![0u8; len])),
            commit_tid: CommitTid(tid + 1),
            queued_at: Some(Instant::now()),
        }
    }

    #[test]
    fn size_rules_of_section_6_2() {
        // Exactly reaching the limit includes the entry and closes the object.
        let mut q = ObjectQueue::default();
        q.push(entry(0, 60));
        q.push(entry(4, 40));
        q.push(entry(8, 1));
        let (b, cut) = q.take_batch(100, u64::MAX);
        assert_eq!(
            b.iter().map(|e| e.entry_tid).collect::<Vec<_>>(),
            vec![0, 4]
        );
        assert_eq!(cut, Some(5));
        assert!(q.overflowed);
        assert_eq!(q.queue.len(), 1);
        // Exceeding leaves the entry queued.
        let mut q = ObjectQueue::default();
        q.push(entry(0, 60));
        q.push(entry(4, 41));
        let (b, cut) = q.take_batch(100, u64::MAX);
        assert_eq!(b.len(), 1);
        assert_eq!(cut, Some(4));
        assert!(q.overflowed);
        assert_eq!(q.queued_bytes, 41);
        let mut b = b;
        q.requeue_front(&mut b);
        assert_eq!(q.queue[0].entry_tid, 0);
        assert_eq!(q.queued_bytes, 101);
        // A closing set stops at the cut.
        let mut q = ObjectQueue::default();
        q.push(entry(0, 10));
        q.push(entry(4, 10));
        let (b, cut) = q.take_batch(100, 4);
        assert_eq!((b.len(), cut), (1, None));
        assert!(!q.sendable_before(4) && q.sendable_before(5));
    }

    #[test]
    fn batching_knobs() {
        let mut s = JournalSettings {
            flush_bytes: None,
            ..JournalSettings::default()
        };
        s.flush_interval_entries = std::num::NonZeroU32::new(2);
        let mut q = ObjectQueue::default();
        let batching = SendPolicy {
            force_below: 0,
            batching: true,
        };
        q.push(entry(0, 10));
        assert!(!q.ready(&s, batching));
        assert!(q.ready(
            &s,
            SendPolicy {
                force_below: 1,
                batching: true
            },
        ));
        assert!(q.ready(
            &s,
            SendPolicy {
                force_below: 0,
                batching: false
            },
        ));
        q.push(entry(4, 10));
        assert!(q.ready(&s, batching));
    }
}
