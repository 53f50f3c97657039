//! The data applier: one background thread that applies acknowledged IO to the image in journal
//! order and marks the entries committed.
//!
//! Fed by a bounded crossbeam channel written under the submit lock, so channel order is journal
//! order. For each item it waits until the item's journal entries are durable (the caller was
//! acknowledged at that point), applies the IO, then marks every entry of the item committed and
//! removes it from the overlay. The first failed data write stops the applier: the entry stays
//! uncommitted (it is replayed at the next open), the overlay keeps serving the acknowledged data
//! to readers, and the image refuses new IO until it is reopened.

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use journal_core::commit::CommitTid;
use journal_core::Event;

use super::Inner;
use crate::apply::apply_io;
use crate::image::ImageError;
use crate::AppendFuture;

/// What the applier does for one journaled request.
#[derive(Debug)]
pub(crate) enum ApplyKind {
    /// IO events (a write split into several events, or one discard / write-same).
    Io(Vec<Event>),
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
    /// The future of the request's last entry (complete = all its entries durable).
    pub(crate) last: AppendFuture,
    /// Commit tids of all its entries.
    pub(crate) commit_tids: Vec<CommitTid>,
    /// What to do.
    pub(crate) kind: ApplyKind,
}

/// The applier thread's body.
pub(crate) fn run(inner: &Inner, rx: &Receiver<ApplyItem>) {
    for item in rx {
        let seq = item.seq;
        if item.last.wait().is_err() {
            // Never durable, never acknowledged: drop it.
            if let ApplyKind::CompareAndWrite { reply, .. } = &item.kind {
                let _ = reply.send(Err(ImageError::InvalidArgument(
                    "journal append failed".into(),
                )));
            }
            inner.overlay.lock().remove(seq);
            inner.finish_apply(seq, None);
            continue;
        }
        if inner.apply_failure().is_some() {
            // Stopped: keep the overlay, apply nothing more.
            if let ApplyKind::CompareAndWrite { reply, .. } = &item.kind {
                let _ = reply.send(Err(ImageError::InvalidArgument("applier stopped".into())));
            }
            continue;
        }
        let image = inner.image.as_ref();
        let result = match &item.kind {
            ApplyKind::Io(events) => events.iter().try_for_each(|e| apply_io(image, e)),
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
            Ok(()) => {
                {
                    let mut tracker = inner.tracker.lock();
                    for tid in &item.commit_tids {
                        // A tid is committed exactly once, here.
                        let _ = tracker.committed(*tid);
                    }
                }
                inner.overlay.lock().remove(seq);
                inner.finish_apply(seq, None);
            }
            Err(e) => {
                tracing::error!(seq, error = %e, "data write failed after the journal entry was acknowledged");
                inner.finish_apply(seq, Some(e.to_string()));
            }
        }
    }
}
