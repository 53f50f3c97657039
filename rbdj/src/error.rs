//! The CLI's error type: every failure becomes a one-line message and a non-zero exit.

use journal_core::header::HeaderError;
use object_store_trait::StoreError;

/// What a command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A journal header operation failed.
    #[error("journal header: {0}")]
    Header(#[from] HeaderError),
    /// The object store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Reading or writing a local file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// JSON output failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An export file was malformed.
    #[error("export file: {0}")]
    Export(#[from] crate::export_file::ExportError),
    /// A journal library call failed.
    #[error("journal: {0}")]
    Journal(#[from] journal_core::JournalError),
    /// A site, mirroring or replay operation failed.
    #[error("{0}")]
    Replay(#[from] replay_engine::ReplayError),
    /// A journaled image operation failed.
    #[error("{0}")]
    JournalClient(#[from] journal_client::JournalClientError),
    /// The journal recorder failed.
    #[error("journal recorder: {0}")]
    Recorder(#[from] journal_client::RecorderError),
    /// An image operation failed.
    #[error("image: {0}")]
    Image(#[from] journal_client::image::ImageError),
    /// The arguments or the state do not allow the command.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for commands.
pub type CliResult<T> = Result<T, CliError>;
