//! The data applier: one background thread that applies acknowledged IO to the image in journal
//! order and marks the entries committed.
//!
//! Fed by a bounded crossbeam channel written under the submit lock, so channel order is journal
//! order. For each item it waits until the item's journal entries are durable (the caller was
//! acknowledged at that point) and applies the IO. Then, for the items applied since it last did
//! so — at most [`PUBLISH_EVERY`], and whenever the channel is empty — it marks their entries
//! committed, removes them from the overlay and publishes them applied, taking each shared lock
//! once for the run instead of once per item (the writers take the same locks for every write).
//! A commit mark still follows its data write, and the overlay keeps an item until after it is
//! applied; readers that find applied items still in the overlay lay the same bytes again.
//! The first failed data write stops the applier: the entry stays uncommitted (it is replayed at
//! the next open), the overlay keeps serving the acknowledged data to readers, and the image
//! refuses new IO until it is reopened.

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use journal_core::commit::CommitTid;
use journal_core::Event;

use super::Inner;
use crate::apply::apply_io;
use crate::image::ImageError;

/// What the applier does for one journaled request.
#[derive(Debug)]
pub(crate) enum ApplyKind {
    /// IO events (a write split into several events, or one discard / write-same).
    Io(Events),
    /// A compare-and-write; the outcome goes back to the caller.
    CompareAndWrite {
        /// Image offset.
        offset: u64,
        /// Expected bytes.
        cmp: Bytes,
        /// New bytes.
        data: Bytes,
        /// Where to send the result.
        reply: Sender<Result<(), ImageError>>,
    },
    /// A user flush: flush the image.
    Flush,
}

/// One journaled request waiting to be applied.
#[derive(Debug)]
pub(crate) struct ApplyItem {
    /// Journal-order sequence number of the request.
    pub(crate) seq: u64,
    /// The entry tid of the request's last entry (durable = all its entries durable).
    pub(crate) last_tid: u64,
    /// Commit tids of all its entries.
    pub(crate) commit_tids: CommitTids,
    /// What to do.
    pub(crate) kind: ApplyKind,
}

/// The events of one request: most requests are one event, which then needs no vector (the
/// applier frees what the writer allocated, across threads' allocator arenas).
#[derive(Debug)]
pub(crate) enum Events {
    /// One event.
    One(Event),
    /// Several events (a write split into journal entries).
    Many(Vec<Event>),
}

impl Events {
    /// The events, in order.
    pub(crate) fn as_slice(&self) -> &[Event] {
        match self {
            Events::One(e) => std::slice::from_ref(e),
            Events::Many(v) => v,
        }
    }
}

/// The commit tids of one request's entries: a run of consecutive tids (the entries of a request
/// are appended together under the submit lock, so this is the case that occurs), or a list.
#[derive(Debug)]
pub(crate) enum CommitTids {
    /// `len` tids from `first`.
    Run {
        /// The first tid.
        first: u64,
        /// How many.
        len: u64,
    },
    /// Tids that are not consecutive.
    List(Vec<CommitTid>),
}

impl Default for CommitTids {
    fn default() -> Self {
        CommitTids::Run { first: 0, len: 0 }
    }
}

impl CommitTids {
    /// Adds the next entry's tid.
    pub(crate) fn push(&mut self, tid: CommitTid) {
        match self {
            CommitTids::Run { first, len } if *len == 0 => {
                *first = tid.0;
                *len = 1;
            }
            CommitTids::Run { first, len } if first.checked_add(*len) == Some(tid.0) => *len += 1,
            CommitTids::Run { first, len } => {
                let mut list: Vec<CommitTid> = (*first..*first + *len).map(CommitTid).collect();
                list.push(tid);
                *self = CommitTids::List(list);
            }
            CommitTids::List(list) => list.push(tid),
        }
    }

    fn for_each(&self, mut f: impl FnMut(CommitTid)) {
        match self {
            CommitTids::Run { first, len } => (*first..first.saturating_add(*len))
                .map(CommitTid)
                .for_each(f),
            CommitTids::List(list) => list.iter().for_each(|t| f(*t)),
        }
    }
}

/// Applied items published at most this many at a time (and whenever the channel is empty).
pub(crate) const PUBLISH_EVERY: usize = 32;

/// Items applied (or dropped) but not yet published: committed in the tracker, removed from
/// the overlay, and reported through `finish_apply`.
#[derive(Default)]
struct Unpublished {
    /// Sequence numbers, in order, with the commit tids to mark (`None`: dropped, nothing to
    /// commit).
    items: Vec<(u64, Option<CommitTids>)>,
}

impl Unpublished {
    fn publish(&mut self, inner: &Inner) {
        let Some(&(last, _)) = self.items.last() else {
            return;
        };
        {
            let mut tracker = inner.tracker.lock();
            for tids in self.items.iter().filter_map(|(_, t)| t.as_ref()) {
                // A tid is committed exactly once, here.
                tids.for_each(|tid| {
                    let _ = tracker.committed(tid);
                });
            }
        }
        {
            let mut overlay = inner.overlay.lock();
            for (seq, _) in &self.items {
                overlay.remove(*seq);
            }
        }
        self.items.clear();
        inner.finish_apply(last, None);
    }
}

/// The applier thread's body.
pub(crate) fn run(inner: &Inner, rx: &Receiver<ApplyItem>) {
    let mut done = Unpublished::default();
    loop {
        let item = match rx.try_recv() {
            Ok(item) => item,
            Err(TryRecvError::Empty) => {
                done.publish(inner);
                match rx.recv() {
                    Ok(item) => item,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        apply(inner, item, &mut done);
        if done.items.len() >= PUBLISH_EVERY {
            done.publish(inner);
        }
    }
    done.publish(inner);
}

/// Applies one item; what to publish goes into `done`.
fn apply(inner: &Inner, item: ApplyItem, done: &mut Unpublished) {
    let seq = item.seq;
    if inner.recorder.wait_entry(item.last_tid).is_err() {
        // Never durable, never acknowledged: drop it.
        if let ApplyKind::CompareAndWrite { reply, .. } = &item.kind {
            let _ = reply.send(Err(ImageError::InvalidArgument(
                "journal append failed".into(),
            )));
        }
        done.items.push((seq, None));
        return;
    }
    if inner.apply_failure().is_some() {
        // Stopped: keep the overlay, apply nothing more.
        if let ApplyKind::CompareAndWrite { reply, .. } = &item.kind {
            let _ = reply.send(Err(ImageError::InvalidArgument("applier stopped".into())));
        }
        return;
    }
    let image = inner.image.as_ref();
    let result = match &item.kind {
        ApplyKind::Io(events) => events
            .as_slice()
            .iter()
            .try_for_each(|e| apply_io(image, e)),
        ApplyKind::CompareAndWrite {
            offset,
            cmp,
            data,
            reply,
        } => {
            let r = image.compare_and_write(*offset, cmp.clone(), data.clone());
            let (outcome, commit) = match r {
                Err(ImageError::CompareMismatch { offset }) => {
                    (Err(ImageError::CompareMismatch { offset }), Ok(()))
                }
                Err(e) => (Err(ImageError::InvalidArgument(e.to_string())), Err(e)),
                Ok(()) => (Ok(()), Ok(())),
            };
            let _ = reply.send(outcome);
            commit
        }
        ApplyKind::Flush => image.flush(),
    };
    match result {
        Ok(()) => done.items.push((seq, Some(item.commit_tids))),
        Err(e) => {
            tracing::error!(seq, error = %e, "data write failed after the journal entry was acknowledged");
            // What was applied before it is published first: committed and reported applied.
            done.publish(inner);
            inner.finish_apply(seq, Some(e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(t: &CommitTids) -> Vec<u64> {
        let mut out = Vec::new();
        t.for_each(|tid| out.push(tid.0));
        out
    }

    #[test]
    fn commit_tids_keep_every_tid_in_order() {
        let mut t = CommitTids::default();
        assert!(collect(&t).is_empty());
        for tid in [5, 6, 7] {
            t.push(CommitTid(tid));
        }
        assert!(matches!(t, CommitTids::Run { first: 5, len: 3 }));
        // A gap turns the run into a list with the same tids.
        t.push(CommitTid(9));
        t.push(CommitTid(10));
        assert!(matches!(t, CommitTids::List(_)));
        assert_eq!(collect(&t), vec![5, 6, 7, 9, 10]);
    }
}
