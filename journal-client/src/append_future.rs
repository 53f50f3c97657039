//! [`AppendFuture`]: the handle of one appended entry.
//!
//! A future is complete when its entry is durable **and** every earlier entry of the recorder
//! is durable (prefix durability, spec §6.4): the recorder keeps a watermark `durable_through`
//! (every entry tid below it is durable) and a future of entry tid `t` is complete once
//! `durable_through > t`. A failure latched at entry `f` means no entry at or after `f` ever
//! completes; [`AppendFuture::wait`] then returns the failure.

use std::sync::Arc;

use journal_core::commit::CommitTid;

use crate::error::RecorderError;
use crate::recorder::Shared;

/// The handle of one appended entry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppendFuture {
    pub(crate) shared: Arc<Shared>,
    pub(crate) entry_tid: u64,
    pub(crate) object_number: u64,
    pub(crate) commit_tid: CommitTid,
}

impl AppendFuture {
    /// The entry tid (within the recorder's tag).
    pub fn entry_tid(&self) -> u64 {
        self.entry_tid
    }

    /// The tag the entry was written under.
    pub fn tag_tid(&self) -> u64 {
        self.shared.tag_tid
    }

    /// The commit tid to pass to the commit tracker once the entry is applied.
    pub fn commit_tid(&self) -> CommitTid {
        self.commit_tid
    }

    /// The object number the entry was first assigned to (it may move to a later set).
    pub fn initial_object_number(&self) -> u64 {
        self.object_number
    }

    /// `Some(Ok)` once complete, `Some(Err)` once it can never complete, `None` while pending.
    pub fn poll(&self) -> Option<Result<(), RecorderError>> {
        self.shared.poll(self.entry_tid)
    }

    /// Asks the recorder to send this entry and every earlier one now (Ceph's `Future::flush`).
    pub fn flush(&self) {
        self.shared.flush_to(self.entry_tid + 1);
    }

    /// Forces the entry and every earlier one out, then blocks until the entry is complete or
    /// has failed. The waiting thread does the sending itself when it can (see
    /// [`crate::recorder`]).
    pub fn wait(&self) -> Result<(), RecorderError> {
        self.shared.wait_durable(self.entry_tid)
    }
}
