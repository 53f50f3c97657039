//! The crate's error type.

use crate::image::ExportError;
use crate::protocol::ProtocolError;

/// What can go wrong serving NBD.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NbdError {
    /// A socket operation failed.
    #[error("I/O error during {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The peer sent a malformed message; the connection is closed.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server configuration (exports, options) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Flushing an export failed (at disconnect or shutdown).
    #[error("flushing export {export:?} failed: {source}")]
    Flush {
        /// The export.
        export: String,
        /// The image error.
        #[source]
        source: ExportError,
    },
    /// A server thread panicked.
    #[error("a server thread panicked: {0}")]
    ThreadPanicked(&'static str),
}

impl NbdError {
    /// Builds [`NbdError::Io`].
    pub fn io(op: &'static str, source: std::io::Error) -> Self {
        NbdError::Io { op, source }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, NbdError>;
