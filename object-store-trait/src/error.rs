//! The crate's error type.

use std::io;

/// What an [`crate::ObjectStore`] operation can fail with.
///
/// Variants are split by what the caller can do about them: a missing object, a full object
/// (move on to the next object set), a failed guard (someone else changed the header first: re-read
/// and retry or give up), corruption, and plain I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The object does not exist (`-ENOENT`).
    #[error("object {oid:?} not found")]
    NotFound {
        /// Object id.
        oid: String,
    },
    /// A guarded append was refused because the object already holds `size >= soft_max` bytes
    /// (`-EOVERFLOW`, the semantics of Ceph's `journal.guard_append`). Nothing was written.
    #[error("object {oid:?} is full: size {size} >= soft limit {soft_max}")]
    Overflow {
        /// Object id.
        oid: String,
        /// Size of the object when the append was refused.
        size: u64,
        /// The soft limit the append carried.
        soft_max: u64,
    },
    /// An omap guard did not hold; nothing in the batch (or append) was applied (`-ECANCELED`).
    #[error("guard failed on object {oid:?}, key {key:?}: {reason}")]
    GuardFailed {
        /// Object id.
        oid: String,
        /// The omap key whose guard failed.
        key: String,
        /// Which comparison failed.
        reason: GuardFailure,
    },
    /// Stored bytes that the backend itself keeps (e.g. an omap file) failed validation.
    #[error("object {oid:?} is corrupt: {detail}")]
    Corrupt {
        /// Object id.
        oid: String,
        /// What was wrong.
        detail: String,
    },
    /// The argument is invalid for this operation (bad object id, bad range).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store is out of space (`-ENOSPC`).
    #[error("no space left while writing {oid:?}")]
    NoSpace {
        /// Object id.
        oid: String,
    },
    /// An earlier durable write failed; the store (or the wrapper that latched the failure)
    /// refuses all further mutations until it is reopened. See [`crate::Checked`].
    #[error("store poisoned by an earlier I/O failure: {first}")]
    Poisoned {
        /// Description of the first failure.
        first: String,
    },
    /// Another process holds the store directory's lock.
    #[error("store at {path} is locked by another process")]
    Locked {
        /// The directory.
        path: String,
    },
    /// The store is shut down (or was crashed by a test wrapper).
    #[error("store is closed")]
    Closed,
    /// An operating-system I/O error.
    #[error("I/O error during {op} on {oid:?}: {source}")]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// Object id (or path) involved.
        oid: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Why an omap guard failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardFailure {
    /// The key was required to be absent but exists.
    #[error("key exists")]
    Exists,
    /// The key was required to exist but does not.
    #[error("key missing")]
    Missing,
    /// The key's value differs from the expected value.
    #[error("value differs")]
    ValueMismatch,
    /// A numeric comparison against the stored `u64` did not hold.
    #[error("numeric comparison failed")]
    Comparison,
}

impl StoreError {
    /// Builds an [`StoreError::Io`].
    pub fn io(op: &'static str, oid: impl Into<String>, source: io::Error) -> Self {
        if source.raw_os_error() == Some(28) {
            return StoreError::NoSpace { oid: oid.into() };
        }
        StoreError::Io {
            op,
            oid: oid.into(),
            source,
        }
    }

    /// True for [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// True for [`StoreError::Overflow`].
    pub fn is_overflow(&self) -> bool {
        matches!(self, StoreError::Overflow { .. })
    }

    /// True for [`StoreError::GuardFailed`].
    pub fn is_guard_failed(&self) -> bool {
        matches!(self, StoreError::GuardFailed { .. })
    }

    /// The negative errno Ceph would report for this error, for tools that print Ceph-style codes.
    pub fn errno(&self) -> i32 {
        match self {
            StoreError::NotFound { .. } => -2,
            StoreError::Overflow { .. } => -75,
            StoreError::GuardFailed { .. } => -125,
            StoreError::Corrupt { .. } => -74,
            StoreError::InvalidArgument(_) => -22,
            StoreError::NoSpace { .. } => -28,
            StoreError::Poisoned { .. } => -5,
            StoreError::Locked { .. } => -16,
            StoreError::Closed => -108,
            StoreError::Io { source, .. } => source.raw_os_error().map_or(-5, |e| -e),
        }
    }
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
