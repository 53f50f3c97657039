//! Block images: the [`BlockImage`] trait a journaled image wraps, and three implementations.
//!
//! * [`MemImage`]: in process memory (also the reference model of the tests);
//! * [`SparseFileImage`]: a sparse file plus a crash-safe metadata side file;
//! * [`ObjectImage`]: striped over an [`object_store_trait::ObjectStore`] as
//!   `rbd_data.<id>.<n>` objects of 4 MiB, with its metadata in `rbd_header.<id>`'s omap.
//!
//! All three share the snapshot/metadata rules of [`BackedImage`]; they differ only in where
//! bytes live ([`ImageBackend`]).
//!
//! Semantics common to every implementation:
//! * IO must lie inside `[0, size)`; otherwise [`ImageError::OutOfRange`].
//! * Discard zeroes the range (reads return zeros afterwards).
//! * Growing an image exposes zeros; shrinking drops the tail.
//! * A snapshot captures the data and the size; rollback restores both.
//! * Flatten: images here never have a parent, so it fails with [`ImageError::NotAClone`]
//!   (`-EINVAL`), like librbd on a non-clone.

mod backed;
mod error;
mod mem;
mod meta;
mod object;
mod sparse_file;

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::Bytes;

pub use backed::{BackedImage, ImageBackend};
pub use error::{
    ImageError, ImageResult, EBUSY, EDQUOT, EEXIST, EILSEQ, EINVAL, EIO, ENOENT, ERANGE,
};
pub use mem::{MemBackend, MemImage};
pub use meta::{ImageMeta, SnapInfo};
pub use object::{ObjectBackend, ObjectImage, RBD_OBJECT_ORDER};
pub use sparse_file::{SparseFileBackend, SparseFileImage};

/// A block device with librbd's image operations. Object-safe; every method may be called from
/// any thread. Mutations of the data are linearizable with each other (compare-and-write is
/// atomic with respect to other writes of the same image).
pub trait BlockImage: Send + Sync + Debug {
    /// Current size in bytes.
    fn size(&self) -> u64;
    /// Reads `len` bytes at `offset` (inside the image).
    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes>;
    /// Writes `data` at `offset` (inside the image).
    fn write(&self, offset: u64, data: Bytes) -> ImageResult<()>;
    /// Zeroes `len` bytes at `offset`.
    fn discard(&self, offset: u64, len: u64) -> ImageResult<()>;
    /// Fills `len` bytes at `offset` with repetitions of `pattern` (`len` a multiple of the
    /// pattern length, pattern non-empty).
    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> ImageResult<()>;
    /// Writes `data` at `offset` if the image holds `cmp` there (same length); otherwise fails with
    /// [`ImageError::CompareMismatch`] naming the first differing byte, and writes nothing.
    fn compare_and_write(&self, offset: u64, cmp: Bytes, data: Bytes) -> ImageResult<()>;
    /// Makes every earlier completed write durable.
    fn flush(&self) -> ImageResult<()>;
    /// Changes the size (growing exposes zeros).
    fn resize(&self, size: u64) -> ImageResult<()>;
    /// Creates a snapshot of the current data and size; returns its id.
    fn snap_create(&self, name: &str) -> ImageResult<u64>;
    /// Removes an unprotected snapshot.
    fn snap_remove(&self, name: &str) -> ImageResult<()>;
    /// Renames snapshot `src` to `dst`.
    fn snap_rename(&self, src: &str, dst: &str) -> ImageResult<()>;
    /// Protects a snapshot from removal.
    fn snap_protect(&self, name: &str) -> ImageResult<()>;
    /// Lifts the protection.
    fn snap_unprotect(&self, name: &str) -> ImageResult<()>;
    /// Restores the image data and size to the snapshot's.
    fn snap_rollback(&self, name: &str) -> ImageResult<()>;
    /// Snapshots, by id.
    fn snap_list(&self) -> ImageResult<Vec<SnapInfo>>;
    /// Sets the snapshot count limit.
    fn snap_set_limit(&self, limit: u64) -> ImageResult<()>;
    /// Renames the image.
    fn rename(&self, name: &str) -> ImageResult<()>;
    /// Copies up parent data; fails with [`ImageError::NotAClone`] for an image without parent.
    fn flatten(&self) -> ImageResult<()>;
    /// Sets (`enabled`) or clears feature bits.
    fn update_features(&self, features: u64, enabled: bool) -> ImageResult<()>;
    /// Sets an image-meta key.
    fn metadata_set(&self, key: &str, value: &str) -> ImageResult<()>;
    /// Removes an image-meta key.
    fn metadata_remove(&self, key: &str) -> ImageResult<()>;
    /// One image-meta value.
    fn metadata_get(&self, key: &str) -> ImageResult<Option<String>>;
    /// All image-meta pairs.
    fn metadata_list(&self) -> ImageResult<BTreeMap<String, String>>;
    /// A copy of the image's metadata (name, size, features, snapshots, limits, image-meta).
    fn meta(&self) -> ImageMeta;
}

/// Checks that `[offset, offset + len)` lies inside an image of `size` bytes.
pub fn check_range(offset: u64, len: u64, size: u64) -> ImageResult<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(ImageError::OutOfRange { offset, len, size }),
    }
}

/// `len` bytes of repetitions of `pattern` (which must be non-empty and divide `len`).
pub fn expand_pattern(len: u64, pattern: &[u8]) -> ImageResult<Bytes> {
    let plen = pattern.len() as u64;
    if plen == 0 || !len.is_multiple_of(plen) {
        return Err(ImageError::InvalidArgument(format!(
            "write-same length {len} is not a multiple of the pattern length {plen}"
        )));
    }
    let len = usize::try_from(len)
        .map_err(|_| ImageError::InvalidArgument(format!("length {len} too large")))?;
    Ok(Bytes::from(pattern.repeat(len / pattern.len())))
}
