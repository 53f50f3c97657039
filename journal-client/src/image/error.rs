//! Typed errors of block images, with the errno librbd would report (replay's ignore rules match
//! on those numbers, spec §12.4).

use object_store_trait::StoreError;

/// `-ENOENT`.
pub const ENOENT: i32 = -2;
/// `-EIO`.
pub const EIO: i32 = -5;
/// `-EBUSY`.
pub const EBUSY: i32 = -16;
/// `-EEXIST`.
pub const EEXIST: i32 = -17;
/// `-EINVAL`.
pub const EINVAL: i32 = -22;
/// `-ERANGE`.
pub const ERANGE: i32 = -34;
/// `-EDQUOT`.
pub const EDQUOT: i32 = -122;
/// `-EILSEQ` (compare-and-write mismatch).
pub const EILSEQ: i32 = -84;

/// What a [`crate::image::BlockImage`] operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The byte range is not inside the image (`-EINVAL`).
    #[error("range {offset}+{len} is outside the image of size {size}")]
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// Current image size.
        size: u64,
    },
    /// A snapshot with this name already exists (`-EEXIST`).
    #[error("snapshot {name:?} already exists")]
    SnapExists {
        /// The name.
        name: String,
    },
    /// No snapshot with this name (or id) exists (`-ENOENT`).
    #[error("snapshot {name:?} not found")]
    SnapNotFound {
        /// The name (or the id, rendered).
        name: String,
    },
    /// The snapshot is protected and cannot be removed, or is already protected (`-EBUSY`).
    #[error("snapshot {name:?} is protected")]
    SnapProtected {
        /// The name.
        name: String,
    },
    /// The snapshot is not protected, so it cannot be unprotected (`-EINVAL`).
    #[error("snapshot {name:?} is not protected")]
    SnapNotProtected {
        /// The name.
        name: String,
    },
    /// Creating a snapshot would exceed the snapshot limit (`-EDQUOT`).
    #[error("snapshot limit {limit} reached")]
    SnapLimitReached {
        /// The limit.
        limit: u64,
    },
    /// The snapshot limit is below the number of existing snapshots (`-ERANGE`).
    #[error("snapshot limit {limit} is below the {count} existing snapshots")]
    SnapLimitTooLow {
        /// The limit asked for.
        limit: u64,
        /// Snapshots that exist.
        count: u64,
    },
    /// The image already has this name (`-EEXIST`).
    #[error("image is already named {name:?}")]
    NameExists {
        /// The name.
        name: String,
    },
    /// Flatten of an image that has no parent (`-EINVAL`).
    #[error("image is not a clone")]
    NotAClone,
    /// The metadata key does not exist (`-ENOENT`).
    #[error("metadata key {key:?} not found")]
    MetadataNotFound {
        /// The key.
        key: String,
    },
    /// A compare-and-write found different data (`-EILSEQ`); nothing was written.
    #[error("compare mismatch at image offset {offset}")]
    CompareMismatch {
        /// Image offset of the first differing byte.
        offset: u64,
    },
    /// An argument is invalid (`-EINVAL`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Stored image state did not decode (`-EIO`).
    #[error("image state is corrupt: {0}")]
    Corrupt(String),
    /// The object store under an object-backed image failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// A file operation failed (`-EIO` or the OS errno).
    #[error("I/O error during {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    /// Builds [`ImageError::Io`].
    pub fn io(op: &'static str, source: std::io::Error) -> Self {
        ImageError::Io { op, source }
    }

    /// The negative errno librbd reports for this error.
    pub fn errno(&self) -> i32 {
        match self {
            ImageError::OutOfRange { .. }
            | ImageError::SnapNotProtected { .. }
            | ImageError::NotAClone
            | ImageError::InvalidArgument(_) => EINVAL,
            ImageError::SnapExists { .. } | ImageError::NameExists { .. } => EEXIST,
            ImageError::SnapNotFound { .. } | ImageError::MetadataNotFound { .. } => ENOENT,
            ImageError::SnapProtected { .. } => EBUSY,
            ImageError::SnapLimitReached { .. } => EDQUOT,
            ImageError::SnapLimitTooLow { .. } => ERANGE,
            ImageError::CompareMismatch { .. } => EILSEQ,
            ImageError::Corrupt(_) => EIO,
            ImageError::Store(e) => e.errno(),
            ImageError::Io { source, .. } => source.raw_os_error().map_or(EIO, |e| -e),
        }
    }
}

/// Result alias for image operations.
pub type ImageResult<T> = std::result::Result<T, ImageError>;
