//! [`DirStoreOptions`] and [`SyncPolicy`]: how a [`DirStore`] is opened.

#[cfg(doc)]
use super::DirStore;
#[cfg(doc)]
use crate::{ObjectStore, StoreError};

/// When mutations are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Every mutation `fdatasync`s the files it wrote, and `fsync`s each directory in which it
    /// created, renamed or removed an entry, before returning `Ok` (the default; what the
    /// journal's durability contract needs). The exception is the one the caller asks for: an
    /// in-place overwrite by [`ObjectStore::write_at_unsynced`] waits for
    /// [`ObjectStore::sync_objects`].
    #[default]
    Data,
    /// Never sync: mutations are atomic and visible to other processes, but a machine crash can
    /// lose acknowledged ones, and can leave an object whose data file has no size record that
    /// matches its bytes (reported as [`StoreError::Corrupt`]). For benchmarks and throwaway
    /// stores only.
    None,
}

/// Options for [`DirStore::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirStoreOptions {
    /// Durability of mutations. Default: [`SyncPolicy::Data`].
    pub sync: SyncPolicy,
    /// Serve reads of at least `mmap_threshold_bytes` from a memory map (zero-copy) instead of
    /// `pread`. Default: `true`. Sound only while nothing outside `DirStore` truncates files in the
    /// store directory (see `UNSAFE.md`); turn off if that cannot be ruled out.
    pub mmap_reads: bool,
    /// Smallest read, in bytes, served by a memory map when `mmap_reads` is on. Default: 256 KiB.
    pub mmap_threshold_bytes: u64,
    /// Create the directory (and parents) if it does not exist. Default: `true`.
    pub create: bool,
    /// Largest step, in bytes, by which an append zero-fills space ahead of the object's end, so
    /// that later appends overwrite allocated blocks and their `fdatasync` commits no file-system
    /// metadata. The step grows with the object (its size, at least 64 KiB) up to this value.
    /// No zero-filling while the object's recent appends average more than 128 KiB (writing every
    /// byte twice would cost more than the metadata commits it saves). `0` turns preallocation
    /// off. Default: 1 MiB.
    pub preallocate_max_bytes: u64,
    /// Data files kept open per store directory and process (least recently used ones are
    /// closed). Taken from the options of the first handle that opens the directory in this
    /// process; `0` opens the file for every operation. Default: 64.
    pub open_files: usize,
    /// Data files of removed log-mode objects (journal objects) kept in `spare/` for new ones,
    /// whose appends then overwrite allocated, written blocks instead of zero-filling ahead or
    /// growing the file (see `spare.rs`; RocksDB's `recycle_log_file_num`). Costs the disk space
    /// of the kept files (up to 80 MiB each; a journal object of the default `journal_order` 24
    /// is about 17 MiB). `0` keeps none. Default: 8.
    pub spare_files: usize,
}

impl Default for DirStoreOptions {
    fn default() -> Self {
        DirStoreOptions {
            sync: SyncPolicy::Data,
            mmap_reads: true,
            mmap_threshold_bytes: 256 * 1024,
            create: true,
            preallocate_max_bytes: 1 << 20,
            open_files: 64,
            spare_files: 8,
        }
    }
}

impl DirStoreOptions {
    /// Options for benchmarks and scratch stores: [`SyncPolicy::None`], everything else default.
    pub fn unsynced() -> Self {
        DirStoreOptions {
            sync: SyncPolicy::None,
            ..DirStoreOptions::default()
        }
    }
}
