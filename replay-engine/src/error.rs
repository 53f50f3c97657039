//! The crate's error type.

use journal_client::image::ImageError;
use journal_core::header::HeaderError;
use journal_core::{DecodeError, JournalError};
use object_store_trait::StoreError;

/// What a replay-engine operation can fail with, split by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The object store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// A journal operation (header, player, decode) failed.
    #[error("journal error: {0}")]
    Journal(#[from] JournalError),
    /// Stored bytes did not decode.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// A journal header operation failed or was refused.
    #[error("journal header: {0}")]
    Header(#[from] HeaderError),
    /// Reading the journal failed (corruption, missing entry, store).
    #[error("journal player: {0}")]
    Player(String),
    /// A block image operation failed.
    #[error("image: {0}")]
    Image(#[from] ImageError),
    /// An event could not be applied to the replica (replay stops; the entry is not
    /// committed).
    #[error("apply: {0}")]
    Apply(String),
    /// The journaled image layer failed.
    #[error("journaled image: {0}")]
    Journaled(String),
    /// journal-client's journaled image refused or failed.
    #[error("journal client: {0}")]
    Client(#[from] journal_client::JournalClientError),
    /// A named image does not exist.
    #[error("image {name:?} not found")]
    ImageNotFound {
        /// The image name (or id).
        name: String,
    },
    /// An image with that name already exists.
    #[error("image {name:?} already exists")]
    ImageExists {
        /// The image name.
        name: String,
    },
    /// The operation needs a journaled image.
    #[error("image {name:?} has no journal")]
    NotJournaled {
        /// The image name.
        name: String,
    },
    /// The operation is not allowed in the image's current role (primary / non-primary).
    #[error("image {name:?}: {detail}")]
    WrongRole {
        /// The image name.
        name: String,
        /// What was wrong.
        detail: String,
    },
    /// Both sites wrote after a divergence: the replica cannot be linked to the primary's
    /// history. Replay stops for that image until a resync.
    #[error("split-brain: {0}")]
    SplitBrain(String),
    /// This agent's client was disconnected from the remote journal (it lagged too far behind).
    #[error("mirror client {client_id:?} disconnected from the remote journal")]
    Disconnected {
        /// The client id (the local site's mirror uuid).
        client_id: String,
    },
    /// Stored metadata is inconsistent.
    #[error("invalid metadata: {0}")]
    Invalid(String),
    /// The operation was cancelled (agent stop).
    #[error("stopped")]
    Stopped,
}

/// Result alias for this crate.
pub type Result<T, E = ReplayError> = std::result::Result<T, E>;
