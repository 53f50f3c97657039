//! The commit-position writer and trimmer: one background thread.
//!
//! Every `commit_age`, or when asked, it takes the image client's folded position from the
//! commit tracker (if it changed), flushes the image (so every applied write it covers is
//! durable — a sparse file needs the fsync), writes the position with the fenced header
//! (`client_commit("")`), then flags laggy clients (`max_concurrent_object_sets`) and runs the
//! trimmer (object sets every connected client has committed past are removed). It also watches
//! the header: on a notification it re-reads the mutable metadata, follows an active set that
//! someone else advanced, and trims.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use journal_core::header::{laggy_clients, ClientState, HeaderError};
use object_store_trait::Watch;

use super::{Inner, IMAGE_CLIENT_ID};
use crate::error::JournalClientError;

/// Requests to the commit thread.
#[derive(Debug)]
pub(crate) enum CommitCmd {
    /// Write the position now and answer.
    Flush(Sender<Result<(), String>>),
    /// Write the position now; nobody waits (a user flush).
    Kick,
    /// Write the position a last time and stop.
    Shutdown,
}

/// The commit thread's body: periodic commits, commands, and header notifications.
///
/// `watch` is the header watch, registered before the image was handed out so no change after
/// `open` returns is missed.
pub(crate) fn run(
    inner: &Inner,
    rx: &Receiver<CommitCmd>,
    commit_age: Duration,
    watch: Option<Watch>,
) {
    // Header notifications are hints (spec §4.4): on one, re-read the mutable metadata, follow
    // an active set someone else advanced, and trim. Without a watch, commits still run.
    let never = crossbeam_channel::never();
    let mut next_commit = Instant::now() + commit_age;
    loop {
        let notes = watch.as_ref().map_or(&never, |w| w.receiver());
        let wait = next_commit.saturating_duration_since(Instant::now());
        crossbeam_channel::select! {
            recv(rx) -> cmd => {
                let result = commit_and_trim(inner).map_err(|e| e.to_string());
                log_failure(&result);
                match cmd {
                    Ok(CommitCmd::Flush(reply)) => {
                        let _ = reply.send(result);
                    }
                    Ok(CommitCmd::Kick) => {}
                    Ok(CommitCmd::Shutdown) | Err(_) => return,
                }
            }
            recv(notes) -> _ => {
                // Our own header updates notify too: one refresh covers all queued ones.
                if let Some(w) = &watch {
                    w.drain();
                }
                log_failure(&refresh(inner).map_err(|e| e.to_string()));
            }
            default(wait) => {
                log_failure(&commit_and_trim(inner).map_err(|e| e.to_string()));
                next_commit = Instant::now() + commit_age;
            }
        }
    }
}

fn log_failure(result: &Result<(), String>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "journal commit/refresh failed");
    }
}

/// After a header notification: follow the active set if another party advanced it (§6.3),
/// then trim (other clients may have committed).
fn refresh(inner: &Inner) -> Result<(), JournalClientError> {
    let meta = inner.header.get_mutable_metadata()?;
    if meta.active_set > inner.recorder.active_set() {
        inner.recorder.notice_active_set(meta.active_set);
    }
    inner.header.trim()?;
    Ok(())
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
