//! The commit-position writer and trimmer: one background thread.
//!
//! Every `commit_age`, or when asked, it takes the image client's folded position from the
//! commit tracker (if it changed), flushes the image (so every applied write it covers is
//! durable — a sparse file needs the fsync), writes the position with the fenced header
//! (`client_commit("")`), then flags laggy clients (`max_concurrent_object_sets`) and runs the
//! trimmer (object sets every connected client has committed past are removed).

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use journal_core::header::{laggy_clients, ClientState, HeaderError};

use super::{Inner, IMAGE_CLIENT_ID};
use crate::error::JournalClientError;

/// Requests to the commit thread.
#[derive(Debug)]
pub(crate) enum CommitCmd {
    /// Write the position now and answer.
    Flush(Sender<Result<(), String>>),
    /// Write the position a last time and stop.
    Shutdown,
}

/// The commit thread's body.
pub(crate) fn run(inner: &Inner, rx: &Receiver<CommitCmd>, commit_age: Duration) {
    loop {
        let cmd = rx.recv_timeout(commit_age);
        let result = commit_and_trim(inner).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::warn!(error = %e, "commit position update failed");
        }
        match cmd {
            Ok(CommitCmd::Flush(reply)) => {
                let _ = reply.send(result);
            }
            Ok(CommitCmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Writes the image client's position if it changed, then laggy-client handling and trimming.
pub(crate) fn commit_and_trim(inner: &Inner) -> Result<(), JournalClientError> {
    let position = inner.tracker.lock().position();
    if *inner.last_written.lock() != position {
        inner.image.flush()?;
        inner.header.client_commit(IMAGE_CLIENT_ID, &position)?;
        *inner.last_written.lock() = position;
    }
    if let Some(max) = inner.settings.max_concurrent_object_sets {
        let meta = inner.header.get_mutable_metadata()?;
        for id in laggy_clients(
            &meta,
            inner.layout.splay_width,
            max.get(),
            &[IMAGE_CLIENT_ID],
        ) {
            match inner
                .header
                .client_update_state(&id, ClientState::Disconnected)
            {
                Ok(()) | Err(HeaderError::NotFound { .. }) => {
                    tracing::info!(client = %id, "disconnected laggy journal client");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    inner.header.trim()?;
    Ok(())
}
