//! [`HeaderError`]: why a header operation was refused, mirroring the error cases of Ceph's
//! `journal` object class.

use object_store_trait::StoreError;

use crate::DecodeError;

/// Why a header operation failed. Each refusal corresponds to an error case of Ceph's `journal`
/// object class (see [`HeaderError::errno`]); the rest are decoding, store and contention failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The thing being created already exists (`-EEXIST`).
    #[error("{what} already exists")]
    Exists {
        /// What exists: `journal header`, `client "x"`, `tag 5`.
        what: String,
    },
    /// The thing looked up does not exist (`-ENOENT`).
    #[error("{what} not found")]
    NotFound {
        /// What is missing: `journal header`, `client "x"`, `tag 5`, a header key.
        what: String,
    },
    /// The request is behind the header's current value (`-ESTALE`): a tag tid other than
    /// `next_tag_tid`, or a set older than the current one.
    #[error("stale {what}: requested {requested}, current {current}")]
    Stale {
        /// The value concerned (`next_tag_tid`, `active_set`, `minimum_set`).
        what: &'static str,
        /// The value the caller asked for.
        requested: u64,
        /// The header's current value.
        current: u64,
    },
    /// An argument is invalid in the header's current state (`-EINVAL`).
    #[error("invalid argument: {detail}")]
    Invalid {
        /// What was wrong.
        detail: String,
    },
    /// The journal order is outside `12..=26` (`-EDOM`, checked by the client library).
    #[error("journal order {order} outside 12..=26")]
    OutOfRange {
        /// The order requested.
        order: u8,
    },
    /// `remove_journal` without force found other clients registered (`-EBUSY`).
    #[error("journal has {clients} other registered clients")]
    Busy {
        /// How many clients other than the caller are registered.
        clients: usize,
    },
    /// A fenced handle's mutation was refused because a newer tag was allocated after the
    /// handle's tag (`next_tag_tid` no longer equals `tag_tid + 1`). Reported as `-ESHUTDOWN`
    /// (Ceph's `-EBLOCKLISTED`), the error a fenced-off lock owner sees.
    #[error("fenced: tag {tag_tid} is no longer the newest (next_tag_tid is {next_tag_tid:?})")]
    Fenced {
        /// The tag the handle was fenced on.
        tag_tid: u64,
        /// The header's `next_tag_tid` when the refusal was detected (`None` if missing).
        next_tag_tid: Option<u64>,
    },
    /// The optimistic update lost the race too many times in a row (`-EAGAIN`).
    #[error("{op}: header kept changing, gave up after {attempts} attempts")]
    Contention {
        /// The operation.
        op: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// A header record did not decode.
    #[error("header record did not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The object store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
}

impl HeaderError {
    /// The negative errno Ceph reports for this case.
    pub fn errno(&self) -> i32 {
        match self {
            HeaderError::Exists { .. } => -17,
            HeaderError::NotFound { .. } => -2,
            HeaderError::Stale { .. } => -116,
            HeaderError::Invalid { .. } => -22,
            HeaderError::OutOfRange { .. } => -33,
            HeaderError::Busy { .. } => -16,
            HeaderError::Fenced { .. } => -108,
            HeaderError::Contention { .. } => -11,
            HeaderError::Decode(_) => -5,
            HeaderError::Store(e) => e.errno(),
        }
    }

    /// True for [`HeaderError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, HeaderError::NotFound { .. })
    }

    /// True for [`HeaderError::Exists`].
    pub fn is_exists(&self) -> bool {
        matches!(self, HeaderError::Exists { .. })
    }

    /// True for [`HeaderError::Stale`].
    pub fn is_stale(&self) -> bool {
        matches!(self, HeaderError::Stale { .. })
    }

    /// True for [`HeaderError::Fenced`].
    pub fn is_fenced(&self) -> bool {
        matches!(self, HeaderError::Fenced { .. })
    }
}

/// Result alias for header operations.
pub type HeaderResult<T> = std::result::Result<T, HeaderError>;
