//! Error types of the crate.

use journal_core::header::HeaderError;
use journal_core::player::PlayerError;
use journal_core::DecodeError;
use object_store_trait::StoreError;

use crate::apply::ApplyError;
use crate::image::ImageError;
use crate::settings::SettingsError;

/// Why an append (or a flush) did not become durable. Cloneable: a latched failure is handed to
/// every later caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// A newer writer took over the journal: this writer's tag is no longer the newest. Reopen
    /// (which allocates a newer tag) to write again.
    #[error("writer tag {tag_tid} is fenced by a newer writer: {detail}")]
    Fenced {
        /// This writer's tag.
        tag_tid: u64,
        /// What refused it.
        detail: String,
    },
    /// The object store failed an append or a claim.
    #[error("store failure during {op} (errno {errno}): {detail}")]
    Store {
        /// The operation.
        op: &'static str,
        /// The store's message.
        detail: String,
        /// Ceph-style negative errno.
        errno: i32,
    },
    /// Advancing the header's active set failed.
    #[error("header update failed (errno {errno}): {detail}")]
    Header {
        /// The header's message.
        detail: String,
        /// Ceph-style negative errno.
        errno: i32,
    },
    /// An earlier failure latched the recorder; nothing more is accepted until the journal is
    /// reopened.
    #[error("recorder poisoned by an earlier failure: {0}")]
    Poisoned(Box<RecorderError>),
    /// The recorder was shut down before the entry became durable.
    #[error("recorder is closed")]
    Closed,
    /// The payload does not fit an entry of this journal.
    #[error("payload of {len} bytes exceeds the maximum {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Largest allowed.
        max: usize,
    },
}

impl RecorderError {
    /// Builds [`RecorderError::Store`].
    pub fn store(op: &'static str, err: &StoreError) -> Self {
        RecorderError::Store {
            op,
            detail: err.to_string(),
            errno: err.errno(),
        }
    }

    /// Builds [`RecorderError::Header`] (or [`RecorderError::Fenced`] for a fenced header).
    pub fn header(tag_tid: u64, err: &HeaderError) -> Self {
        if err.is_fenced() {
            return RecorderError::Fenced {
                tag_tid,
                detail: err.to_string(),
            };
        }
        RecorderError::Header {
            detail: err.to_string(),
            errno: err.errno(),
        }
    }

    /// True if this is (or was caused by) a fence.
    pub fn is_fenced(&self) -> bool {
        match self {
            RecorderError::Fenced { .. } => true,
            RecorderError::Poisoned(inner) => inner.is_fenced(),
            _ => false,
        }
    }
}

/// What a journaled image operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalClientError {
    /// The journal append path failed (including fencing); the image refuses further writes
    /// until reopened.
    #[error("journal: {0}")]
    Recorder(#[from] RecorderError),
    /// The block image refused or failed the operation.
    #[error("image: {0}")]
    Image(#[from] ImageError),
    /// A header operation failed.
    #[error("journal header: {0}")]
    Header(#[from] HeaderError),
    /// Reading the journal failed.
    #[error("journal player: {0}")]
    Player(#[from] PlayerError),
    /// A journal record did not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// Replaying an event failed.
    #[error("replay: {0}")]
    Replay(#[from] ApplyError),
    /// The object store failed outside the append path.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Invalid settings.
    #[error("settings: {0}")]
    Settings(#[from] SettingsError),
    /// The image client's registration is missing or is not an image client.
    #[error("journal client \"\": {0}")]
    ImageClient(String),
    /// The journal is owned by a mirror peer (the newest tag is not local-primary).
    #[error("image is not primary: newest tag {tag_tid} belongs to {mirror_uuid:?}")]
    NotPrimary {
        /// Newest tag.
        tag_tid: u64,
        /// Its owner.
        mirror_uuid: String,
    },
    /// A background thread stopped unexpectedly; reopen.
    #[error("journaled image stopped: {0}")]
    Stopped(String),
}

/// Result alias for journaled image operations.
pub type Result<T, E = JournalClientError> = std::result::Result<T, E>;
