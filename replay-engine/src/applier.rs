//! The seam between the replayer and journal-client's event-application engine
//! ([`EventApplier`], librbd's replay rules of §12.4).
//!
//! The replayer hands every remote event to an [`EventSink`] with a token (its commit tid) and
//! gets back the tokens whose effects are now durable on the replica; only those may be
//! committed on the remote journal. [`ApplierSink`] is the implementation over
//! [`EventApplier`]; extra flushes (on the replayer's timer) are fed to the engine as
//! synthetic `AioFlush` events without a token.

use std::sync::Arc;

use journal_client::apply::{ApplyOptions, EventApplier};
use journal_client::image::BlockImage;
use journal_core::commit::CommitTid;
use journal_core::event::Event;

use crate::error::{ReplayError, Result};

/// Applies events to the replica image with librbd's replay rules (§12.4).
pub trait EventSink: Send {
    /// Applies (or parks) `event`. Returns the tokens that became durably applied.
    fn apply(&mut self, event: Event, token: CommitTid) -> Result<Vec<CommitTid>>;
    /// Flushes the replica image; returns the tokens that became durably applied.
    fn flush(&mut self) -> Result<Vec<CommitTid>>;
    /// Number of IO events applied but not yet covered by a flush.
    fn unflushed(&self) -> usize;
}

/// An [`EventSink`] over journal-client's [`EventApplier`].
#[derive(Debug)]
pub struct ApplierSink {
    applier: EventApplier<Option<CommitTid>>,
}

impl ApplierSink {
    /// A sink applying to `image`, letting the engine flush every `flush_every` IO events.
    pub fn new(image: Arc<dyn BlockImage>, flush_every: usize) -> Self {
        ApplierSink {
            applier: EventApplier::new(image, ApplyOptions { flush_every }),
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
    fn apply(&mut self, event: Event, token: CommitTid) -> Result<Vec<CommitTid>> {
        self.run(&event, Some(token))
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
