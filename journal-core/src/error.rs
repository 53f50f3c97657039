//! The crate's error types.

use object_store_trait::StoreError;

/// Why a byte string did not decode. Every decoder in this crate returns this for bad input;
/// none of them panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before `what` was complete.
    #[error("truncated {what}: need {needed} bytes, {remaining} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes (or, for lists, the minimum bytes) needed.
        needed: u64,
        /// Bytes left in the input.
        remaining: u64,
    },
    /// A versioned envelope needs a newer decoder.
    #[error("{what}: struct_v {struct_v} compat {struct_compat} is newer than supported compat {supported}")]
    IncompatibleVersion {
        /// The structure.
        what: &'static str,
        /// Version written.
        struct_v: u8,
        /// Oldest decoder version able to read it.
        struct_compat: u8,
        /// The compat version this decoder passes.
        supported: u8,
    },
    /// The fields of a structure ran past its envelope's length.
    #[error("{what}: field {field} runs past the end of the envelope")]
    EnvelopeOverrun {
        /// The structure.
        what: &'static str,
        /// The field that over-ran.
        field: &'static str,
    },
    /// Bytes were left after a value that must span its whole input.
    #[error("{what}: {extra} trailing bytes")]
    TrailingBytes {
        /// The value decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A string was not valid UTF-8.
    #[error("{what}: string is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        what: &'static str,
    },
    /// A field held a value outside its domain.
    #[error("{what}: invalid value {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The offending value, rendered.
        value: String,
    },
}

/// The crate-level error: decoding, the store underneath, or a header operation refused with
/// the same error case Ceph's `journal` object class returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Bytes did not decode.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// The object store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// A header operation was refused (or failed); see [`crate::header::HeaderError`].
    #[error("header: {0}")]
    Header(#[from] crate::header::HeaderError),
}

/// Result alias for this crate.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;
