//! Memory-mapped reads of object data files: the only `unsafe` code in the crate (see `UNSAFE.md`
//! at the repository root).
//!
//! # Invariant that makes mapping sound
//!
//! Only sized data files are mapped (log-mode files, `logfile.rs`, may be reused for another
//! object, `spare.rs`, and are always read with `pread`). A sized data file holds size records in
//! its first [`super::datafile::DATA_START`] bytes and the object's bytes after them (see
//! `datafile.rs`). A mapping of object bytes `[offset, offset +
//! len)` is created only while the caller holds the object's stripe lock (shared), only at file
//! offsets from `DATA_START` on, and only below the object's size read from the file's current
//! size record under that lock. Every [`super::DirStore`] (in any process) changes a data file
//! only by
//!
//! * writing at or after the object's size (appends, zero-filled preallocation; a failed append
//!   leaves its bytes there and keeps the old size record) and then recording a larger size,
//! * rewriting size records, which lie before `DATA_START` and are never mapped, or
//! * replacing or removing it by `rename`/`unlink`, which leaves the mapped inode and its pages
//!   alive until the mapping is dropped.
//!
//! No data file is ever truncated, and bytes below a size that a reader observed are never
//! rewritten (the in-place `write_at` runs only on handles with `mmap_reads` off). So the mapped
//! bytes are never modified and never cut off while the returned [`Bytes`] lives. The invariant
//! assumes nothing outside `DirStore` truncates or rewrites files in the store directory; a
//! foreign truncation would turn later accesses into `SIGBUS`. Turn
//! [`super::DirStoreOptions::mmap_reads`] off when that cannot be ruled out.

use std::fs::File;

use bytes::Bytes;
use memmap2::MmapOptions;

/// Maps `len` (> 0) bytes of `file` from file offset `offset` and returns them as zero-copy
/// [`Bytes`] that own the mapping. The caller must uphold the module's invariant: the range lies
/// at or after `DATA_START` and below `DATA_START` + the object size recorded in `file`, read while
/// holding the object's stripe lock.
pub(super) fn map_range(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    // SAFETY: memmap2 requires that the mapped file range is not modified or truncated while the
    // map is alive. By the module invariant, `[offset, offset + len)` holds object bytes below a
    // size recorded in the file and observed under the stripe lock; DirStore writes data only at
    // or after the recorded size (failed appends included), rewrites only the size records before
    // the mapped range, never truncates a data file, and replaces/removes it by rename/unlink,
    // which keep this inode alive.
    let map = unsafe { MmapOptions::new().offset(offset).len(len).map(file)? };
    Ok(Bytes::from_owner(map))
}
