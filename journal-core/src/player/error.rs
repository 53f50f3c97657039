//! Why playback stopped.

use object_store_trait::StoreError;

use crate::header::HeaderError;
use crate::layout::LayoutError;

/// A playback failure.
///
/// [`PlayerError::MissingEntry`] and [`PlayerError::Corrupt`] are final: the player returns the
/// same error from every later call. [`PlayerError::Store`] is not: nothing was consumed by the
/// failed read, and calling [`super::Player::next`] again retries it. [`PlayerError::Header`] and
/// [`PlayerError::Layout`] come only from [`super::Player::open`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlayerError {
    /// An entry of the active tag arrived out of sequence: an earlier entry of the same tag was
    /// seen and this one is not the next (Ceph's `-ENOMSG`, "missing prior journal entry").
    /// Also raised when offset 0 starts with a newer tag whose entry 0 is nowhere to be found
    /// (a state the stock reader cannot leave).
    #[error("missing prior journal entry: tag {tag_tid} expected entry tid {expected}, got {got}")]
    MissingEntry {
        /// Tag tid of the offending entry.
        tag_tid: u64,
        /// The entry tid that had to come next.
        expected: u64,
        /// The entry tid found.
        got: u64,
    },
    /// A data object holds bytes that are neither entries nor padding (Ceph's `-EBADMSG`).
    /// Raised once every valid entry before `offset` in that object was delivered and playback
    /// needs what lies beyond.
    #[error("corrupt journal object {oid} at offset {offset}")]
    Corrupt {
        /// The data object.
        oid: String,
        /// Absolute offset of the first bad byte.
        offset: u64,
    },
    /// Reading a data object failed.
    #[error("reading journal object {oid}: {source}")]
    Store {
        /// The data object.
        oid: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// Reading the header failed ([`super::Player::open`]).
    #[error("reading the journal header: {0}")]
    Header(#[from] HeaderError),
    /// The header's order or splay width is not one Ceph accepts ([`super::Player::open`]).
    #[error("journal layout: {0}")]
    Layout(#[from] LayoutError),
}

/// A final error as the player keeps it, to return it again from every later call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Latched {
    MissingEntry {
        tag_tid: u64,
        expected: u64,
        got: u64,
    },
    Corrupt {
        oid: String,
        offset: u64,
    },
}

impl Latched {
    /// The latched form of `e`, if `e` is final (store errors are not).
    pub(crate) fn of(e: &PlayerError) -> Option<Latched> {
        match e {
            PlayerError::MissingEntry {
                tag_tid,
                expected,
                got,
            } => Some(Latched::MissingEntry {
                tag_tid: *tag_tid,
                expected: *expected,
                got: *got,
            }),
            PlayerError::Corrupt { oid, offset } => Some(Latched::Corrupt {
                oid: oid.clone(),
                offset: *offset,
            }),
            PlayerError::Store { .. } | PlayerError::Header(_) | PlayerError::Layout(_) => None,
        }
    }

    /// The error to return.
    pub(crate) fn to_error(&self) -> PlayerError {
        match self {
            Latched::MissingEntry {
                tag_tid,
                expected,
                got,
            } => PlayerError::MissingEntry {
                tag_tid: *tag_tid,
                expected: *expected,
                got: *got,
            },
            Latched::Corrupt { oid, offset } => PlayerError::Corrupt {
                oid: oid.clone(),
                offset: *offset,
            },
        }
    }
}
