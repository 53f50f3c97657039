//! Memory-mapped reads of object data files: the only `unsafe` code in the crate (see `UNSAFE.md`
//! at the repository root).
//!
//! # Invariant that makes mapping sound
//!
//! A mapping of `[offset, offset + len)` of a data file is created only while the caller holds the
//! object's stripe lock (shared) and only for bytes below the file's size observed under that lock.
//! Every [`super::DirStore`] (in any process) changes a data file only by
//!
//! * appending at its end (bytes below the old size are never rewritten),
//! * truncating it back to the size it had when the *same* failed append started (never below a
//!   size any reader could have observed, because readers observe sizes only under the lock that the
//!   appender holds exclusively), or
//! * replacing or removing it by `rename`/`unlink`, which leaves the mapped inode and its pages
//!   alive until the mapping is dropped.
//!
//! So the mapped bytes are never modified and never cut off while the returned [`Bytes`] lives.
//! The invariant assumes nothing outside `DirStore` truncates or rewrites files in the store
//! directory; a foreign truncation would turn later accesses into `SIGBUS`. Turn
//! [`super::DirStoreOptions::mmap_reads`] off when that cannot be ruled out.

use std::fs::File;

use bytes::Bytes;
use memmap2::MmapOptions;

/// Maps `len` (> 0) bytes of `file` from `offset` and returns them as zero-copy [`Bytes`] that own
/// the mapping. The caller must uphold the module's invariant: `offset + len` is at most the size
/// of `file` observed while holding the object's stripe lock.
pub(super) fn map_range(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    // SAFETY: memmap2 requires that the mapped file range is not modified or truncated while the
    // map is alive. By the module invariant, `[offset, offset + len)` lies below a size observed
    // under the stripe lock; DirStore never rewrites bytes below such a size and never truncates a
    // data file below it (failed appends truncate only back to their own start, which is >= any
    // size a reader saw), and replace/remove go through rename/unlink, which keep this inode alive.
    let map = unsafe { MmapOptions::new().offset(offset).len(len).map(file)? };
    Ok(Bytes::from_owner(map))
}
