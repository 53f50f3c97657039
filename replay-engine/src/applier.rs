//! The seam between the replayer and journal-client's event-application engine
//! ([`EventApplier`], librbd's replay rules of §12.4).
//!
//! The replayer hands every remote event to an [`EventSink`] with a token (its commit tid) and
//! gets back the tokens whose effects are now durable on the replica; only those may be
//! committed on the remote journal. [`ApplierSink`] is the implementation over
//! [`EventApplier`], applying on the caller's thread; extra flushes (on the replayer's timer)
//! are fed to the engine as synthetic `AioFlush` events without a token. The agent wraps it
//! in [`crate::apply_pool`]'s `PipelinedSink`, which applies on an apply thread instead.

use std::sync::Arc;

use journal_client::apply::{ApplyOptions, EventApplier};
use journal_client::image::BlockImage;
use journal_core::commit::CommitTid;
use journal_core::event::{Event, EventEntry};
use parking_lot::Mutex;

use crate::error::{ReplayError, Result};
use crate::replayer_options::AppliedHook;
use crate::status::ImageStatus;

/// Applies events to the replica image with librbd's replay rules (§12.4).
///
/// A sink may apply asynchronously (see [`EventSink::submit`]); then [`EventSink::apply`] and
/// [`EventSink::flush`] only queue, and the tokens come back from later calls. Either way a
/// token is returned only once its event was applied *and* flushed on the replica, and a
/// failure is returned by every call after it.
pub trait EventSink: Send {
    /// Where to report each event once it is applied: the image status and the replayer's
    /// hook. The replayer calls this once, before the first event.
    fn observe(&mut self, report: AppliedReport);
    /// Applies (or parks, or queues) `entry`'s event. Returns the tokens that became durably
    /// applied.
    fn apply(&mut self, entry: EventEntry, token: CommitTid) -> Result<Vec<CommitTid>>;
    /// Flushes the replica image (or queues a flush); returns the tokens that became durably
    /// applied.
    fn flush(&mut self) -> Result<Vec<CommitTid>>;
    /// Flushes the replica image and waits until everything handed in so far is applied and
    /// flushed; returns the tokens that became durably applied.
    fn flush_wait(&mut self) -> Result<Vec<CommitTid>> {
        self.flush()
    }
    /// Tokens that became durably applied since the last call, without waiting (an
    /// asynchronous sink's results; nothing for a synchronous one).
    fn collect(&mut self) -> Result<Vec<CommitTid>> {
        Ok(Vec::new())
    }
    /// Hands queued work on (an asynchronous sink); the replayer calls it at the end of every
    /// step. Nothing to do for a synchronous sink.
    fn submit(&mut self) -> Result<()> {
        Ok(())
    }
    /// Number of IO events applied (or queued) but not yet covered by a flush.
    fn unflushed(&self) -> usize;
    /// Runs `waker` when an asynchronous sink has results for [`EventSink::collect`].
    fn set_waker(&mut self, _waker: object_store_trait::Waker) {}
    /// Whether results are waiting for [`EventSink::collect`].
    fn has_results(&self) -> bool {
        false
    }
}

/// What happens once an event was applied to the replica: the image status counts it (and
/// the event's age becomes the status's lag), and the replayer's hook runs.
#[derive(Clone, Default)]
pub struct AppliedReport {
    /// The image status to update, if any.
    pub status: Option<Arc<Mutex<ImageStatus>>>,
    /// [`crate::replayer::ReplayerOptions::on_applied`].
    pub hook: Option<AppliedHook>,
}

impl std::fmt::Debug for AppliedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedReport")
            .field("status", &self.status.is_some())
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl AppliedReport {
    /// Reports `entry` applied.
    pub fn applied(&self, entry: &EventEntry) {
        if let Some(status) = &self.status {
            let lag = crate::replayer::lag_of(entry);
            // One lock per entry for both fields.
            let mut st = status.lock();
            if let Some(lag) = lag {
                st.seconds_behind = lag;
            }
            st.entries_applied += 1;
        }
        if let Some(hook) = &self.hook {
            hook(entry);
        }
    }
}

/// An [`EventSink`] over journal-client's [`EventApplier`], applying on the caller's thread.
#[derive(Debug)]
pub struct ApplierSink {
    applier: EventApplier<Option<CommitTid>>,
    report: AppliedReport,
}

impl ApplierSink {
    /// A sink applying to `image`, letting the engine flush every `flush_every` IO events.
    pub fn new(image: Arc<dyn BlockImage>, flush_every: usize) -> Self {
        ApplierSink {
            applier: EventApplier::new(image, ApplyOptions { flush_every }),
            report: AppliedReport::default(),
        }
    }

    fn run(&mut self, event: &Event, token: Option<CommitTid>) -> Result<Vec<CommitTid>> {
        let applied = self
            .applier
            .apply(token, event)
            .map_err(|e| ReplayError::Apply(e.to_string()))?;
        // Most events report nothing (IO waits for a flush): no vector then.
        if applied.is_empty() {
            return Ok(Vec::new());
        }
        Ok(applied.into_iter().filter_map(|a| a.id).collect())
    }
}

impl EventSink for ApplierSink {
    fn observe(&mut self, report: AppliedReport) {
        self.report = report;
    }

    fn apply(&mut self, entry: EventEntry, token: CommitTid) -> Result<Vec<CommitTid>> {
        let done = self.run(&entry.event, Some(token))?;
        self.report.applied(&entry);
        Ok(done)
    }

    fn flush(&mut self) -> Result<Vec<CommitTid>> {
        if self.applier.unflushed() == 0 {
            return Ok(Vec::new());
        }
        self.run(&Event::AioFlush, None)
    }

    /// The engine's own count: the IO events it submitted and has not yet flushed.
    fn unflushed(&self) -> usize {
        self.applier.unflushed()
    }
}
