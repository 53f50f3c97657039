//! `DirStore`: objects as files in a local directory, durable and safe to share between processes.
//!
//! # Layout
//!
//! ```text
//! <root>/FORMAT                 "rbdj-dirstore 3\n" (checked at open; "2" is upgraded)
//! <root>/objects/<oid>/data     size records, then the object's bytes (see `datafile`), or
//!                               the object's appends as segments (see `logfile`)
//! <root>/objects/<oid>/omap     the object's omap (see `omap_file`; absent = empty omap)
//! <root>/objects/<oid>/*.tmp    half-written replacements (ignored; overwritten next time)
//! <root>/tmp/NN-<unique>/       objects being created (NN = lock stripe), renamed into objects/
//! <root>/trash/NN-<unique>/     removed objects being deleted
//! <root>/spare/<unique>         data files of removed log-mode objects, for reuse (`spare`)
//! <root>/locks/NN               lock files, one per stripe (never deleted)
//! ```
//!
//! An object exists exactly when `objects/<oid>/` exists. Creation builds the complete object
//! directory under `tmp/` and renames it into place; removal renames it into `trash/`; so both are
//! atomic. See `docs/object-store.md` for the crash-safety argument and the multi-process story.

#[cfg(test)]
mod crash_tests;
mod datafile;
mod files;
mod fsutil;
mod layout;
mod lock;
mod logfile;
#[allow(unsafe_code)]
mod mmap;
mod omap_file;
mod options;
mod sealed;
mod size_record;
mod sized_write;
mod spare;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use self::datafile::{DataFile, Snapshot};
use self::files::FileCache;
use self::fsutil::{overwrite_file, sync_dir, unique_u64};
use self::layout::{init_layout, leftover_name};
use self::lock::StripeLocks;
use self::omap_file::{FileId, OmapCache, OmapImage};
pub use self::options::{DirStoreOptions, SyncPolicy};
use crate::omap::list_range;
use crate::{
    check_guards, total_len, validate_oid, AppendGuard, ObjectStat, ObjectStore, OmapBatch, Result,
    StoreError, Watch, WatchRegistry,
};

const FORMAT_FILE: &str = "FORMAT";
const FORMAT_TEXT: &str = "rbdj-dirstore 3\n";
/// The previous format, upgraded at open (format 3 adds log-mode data files, `logfile.rs`).
const FORMAT_TEXT_2: &str = "rbdj-dirstore 2\n";
const DATA: &str = "data";
const DATA_TMP: &str = "data.tmp";
const OMAP: &str = "omap";
const OMAP_TMP: &str = "omap.tmp";

/// State shared by every [`DirStore`] handle on one directory in this process.
#[derive(Debug)]
struct Shared {
    root: PathBuf,
    objects: PathBuf,
    tmp: PathBuf,
    trash: PathBuf,
    /// Spare data files (`spare.rs`).
    spare: PathBuf,
    locks: StripeLocks,
    omap: OmapCache,
    files: FileCache,
    watches: WatchRegistry,
}

type OpenStores = Mutex<HashMap<PathBuf, Weak<Shared>>>;

fn open_stores() -> &'static OpenStores {
    static OPEN: OnceLock<OpenStores> = OnceLock::new();
    OPEN.get_or_init(OpenStores::default)
}

/// An [`ObjectStore`] kept in a local directory (one sub-directory per object).
///
/// * Appends write the whole batch with `pwritev` after the object's end in its data file (into
///   space zero-filled ahead of time, see [`DirStoreOptions::preallocate_max_bytes`]) and
///   `fdatasync` once ([`SyncPolicy::Data`]). An object created by an append or an omap update
///   keeps its appends as segments, each with a header right before its bytes (one contiguous
///   write); any other object records its new size in the file's header. If the write or sync
///   fails, the segment header is cleared or the size record put back, and the error returned.
///   Data files stay open between operations ([`DirStoreOptions::open_files`]).
/// * Omaps are rewritten whole (temporary file, sync, rename, directory sync) with a CRC32C, and
///   cached in memory; a damaged omap file is reported as [`StoreError::Corrupt`].
/// * Mutations of an object hold its lock stripe exclusively (an in-process lock plus `flock` on
///   `locks/NN`), data reads hold it shared, so several processes can share one directory safely.
/// * Watch/notify reaches only watchers in this process (handles opened on the same directory
///   share one registry); [`ObjectStore::notify_crosses_processes`] is `false`, so consumers in
///   other processes must poll.
#[derive(Debug)]
pub struct DirStore {
    shared: Arc<Shared>,
    opts: DirStoreOptions,
}

impl DirStore {
    /// Opens (and by default creates) a store in directory `path`.
    ///
    /// Several handles, in this or other processes, may open the same directory at once.
    /// Leftovers of crashed operations (`tmp/`, `trash/`) are cleaned up here.
    pub fn open(path: impl AsRef<Path>, opts: DirStoreOptions) -> Result<DirStore> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        if opts.create {
            fs::create_dir_all(path).map_err(|e| StoreError::io("create store", &*shown, e))?;
        }
        let root = path
            .canonicalize()
            .map_err(|e| StoreError::io("open store", &*shown, e))?;
        if let Some(shared) = open_stores().lock().get(&root).and_then(Weak::upgrade) {
            return Ok(DirStore { shared, opts });
        }
        let fresh = Arc::new(init_layout(root.clone(), &opts)?);
        let shared = {
            let mut open = open_stores().lock();
            open.retain(|_, weak| weak.strong_count() > 0);
            match open.get(&root).and_then(Weak::upgrade) {
                Some(existing) => existing,
                None => {
                    open.insert(root, Arc::downgrade(&fresh));
                    fresh
                }
            }
        };
        Ok(DirStore { shared, opts })
    }

    /// A handle with its own lock table and caches, as another process would have (tests).
    #[cfg(test)]
    fn open_unshared(path: &Path, opts: DirStoreOptions) -> Result<DirStore> {
        let root = path
            .canonicalize()
            .map_err(|e| StoreError::io("open store", path.display().to_string(), e))?;
        let shared = Arc::new(init_layout(root, &opts)?);
        Ok(DirStore { shared, opts })
    }

    /// The store's (canonical) directory.
    pub fn path(&self) -> &Path {
        &self.shared.root
    }

    /// The options this handle was opened with.
    pub fn options(&self) -> &DirStoreOptions {
        &self.opts
    }

    fn sync(&self) -> bool {
        self.opts.sync == SyncPolicy::Data
    }

    fn object_dir(&self, oid: &str) -> PathBuf {
        self.shared.objects.join(oid)
    }

    fn data_path(&self, oid: &str) -> PathBuf {
        self.object_dir(oid).join(DATA)
    }

    fn object_exists(&self, oid: &str) -> Result<bool> {
        match fs::metadata(self.object_dir(oid)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("stat", oid, e)),
        }
    }

    fn load_omap(&self, oid: &str) -> Result<OmapImage> {
        self.shared.omap.load(oid, &self.object_dir(oid).join(OMAP))
    }

    /// The open data file of `oid` and its current header, or `None` if the object does not
    /// exist. Caller holds the object's stripe (shared or exclusive).
    fn data_file(&self, oid: &str) -> Result<Option<(Arc<DataFile>, Snapshot)>> {
        if let Some(file) = self.shared.files.get(oid) {
            match file.snapshot(oid) {
                Ok(snap) if !file.is_retired(&snap) => return Ok(Some((file, snap))),
                // Replaced or removed by another process (or unreadable): reopen by path.
                _ => self.shared.files.forget(oid),
            }
        }
        let Some(file) = DataFile::open(&self.data_path(oid), oid)? else {
            return Ok(None);
        };
        let file = Arc::new(file);
        let snap = file.snapshot(oid)?;
        self.shared.files.insert(oid, file.clone());
        Ok(Some((file, snap)))
    }

    /// Marks the current data file of `oid` retired before it is replaced or removed, and drops
    /// it from the cache; returns whether it was a log-mode file. Caller holds the stripe
    /// exclusively.
    ///
    /// A damaged data file (`Corrupt`) cannot be retired that way, but must not block replacing
    /// or removing its object: a log-mode one gets its file header cleared instead, which
    /// processes that have it open check on every use (`logfile.rs`); a sized one is `Corrupt`
    /// for them too. It is not kept as a spare.
    fn retire_data_file(&self, oid: &str) -> Result<bool> {
        let mut log = false;
        match self.data_file(oid) {
            Ok(Some((file, snap))) => {
                file.retire(&snap)
                    .map_err(|e| StoreError::io("retire", oid, e))?;
                log = file.is_log();
            }
            Ok(None) => {}
            Err(StoreError::Corrupt { .. }) => logfile::invalidate(&self.data_path(oid))
                .map_err(|e| StoreError::io("retire", oid, e))?,
            Err(e) => return Err(e),
        }
        self.shared.files.forget(oid);
        Ok(log)
    }

    /// Creates a missing object atomically: builds its directory under `tmp/`, then renames it.
    /// With `log`, the data file is a log-mode one (`logfile.rs`: for objects created by an
    /// append or an omap update, which are appended to), else a sized one (objects created by a
    /// write). Caller holds the object's stripe exclusively.
    fn create_object(
        &self,
        oid: &str,
        data: &[Bytes],
        omap: Option<&BTreeMap<String, Bytes>>,
        log: bool,
    ) -> Result<()> {
        let sync = self.sync();
        let encoded = match omap {
            Some(map) => Some(omap_file::encode(unique_u64(), map)?),
            None => None,
        };
        let stage = self.shared.tmp.join(leftover_name(oid));
        let build = || -> io::Result<()> {
            fs::create_dir(&stage)?;
            if log {
                let path = stage.join(DATA);
                let reused = self.opts.spare_files > 0 && spare::take(&self.shared.spare, &path);
                logfile::create(&path, data, sync, reused)?;
            } else {
                size_record::create(&stage.join(DATA), data, sync)?;
            }
            if let Some(bytes) = &encoded {
                overwrite_file(&stage.join(OMAP), bytes, sync)?;
            }
            if sync {
                sync_dir(&stage)?;
            }
            fs::rename(&stage, self.object_dir(oid))?;
            if sync {
                sync_dir(&self.shared.objects)?;
            }
            Ok(())
        };
        build().map_err(|e| {
            let _ = fs::remove_dir_all(&stage);
            StoreError::io("create object", oid, e)
        })
    }

    /// Replaces the omap file of an existing object. Caller holds the stripe exclusively.
    fn write_omap(&self, oid: &str, map: BTreeMap<String, Bytes>, generation: u64) -> Result<()> {
        let dir = self.object_dir(oid);
        let bytes = omap_file::encode(generation, &map)?;
        let io_err = |e| StoreError::io("write omap", oid, e);
        let tmp = dir.join(OMAP_TMP);
        let path = dir.join(OMAP);
        overwrite_file(&tmp, &bytes, self.sync()).map_err(io_err)?;
        fs::rename(&tmp, &path).map_err(io_err)?;
        if self.sync() {
            sync_dir(&dir).map_err(io_err)?;
        }
        match fs::metadata(&path) {
            Ok(meta) => {
                let image = OmapImage {
                    generation,
                    map: Arc::new(map),
                };
                self.shared.omap.insert(oid, FileId::of(&meta), image);
            }
            Err(_) => self.shared.omap.forget(oid),
        }
        Ok(())
    }

    /// Appends to an existing data file. Caller holds the stripe exclusively.
    fn append_existing(
        &self,
        oid: &str,
        file: &DataFile,
        snap: &Snapshot,
        data: &[Bytes],
        guard: &AppendGuard,
    ) -> Result<u64> {
        let size = snap.size();
        guard.check_soft_max(oid, size)?;
        if !guard.omap.is_empty() {
            check_guards(oid, &self.load_omap(oid)?.map, &guard.omap)?;
        }
        if total_len(data) == 0 {
            return Ok(size);
        }
        file.append(snap, data, self.sync(), self.opts.preallocate_max_bytes)
            .map_err(|e| StoreError::io("append", oid, e))?;
        Ok(size)
    }
}

impl ObjectStore for DirStore {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        validate_oid(oid)?;
        let _lock = self.shared.locks.exclusive(oid)?;
        match self.data_file(oid)? {
            Some((file, snap)) => self.append_existing(oid, &file, &snap, data, guard),
            None => {
                guard.check_soft_max(oid, 0)?;
                check_guards(oid, &BTreeMap::new(), &guard.omap)?;
                self.create_object(oid, data, None, true)?;
                Ok(0)
            }
        }
    }

    /// In place (`pwrite` + `fdatasync` under the object's exclusive lock) when memory-mapped
    /// reads are off. With `mmap_reads` on, bytes below a file's size must never change while a
    /// mapping may exist (see `mmap.rs`), so the write goes through the copy-on-write default
    /// (read, patch, `write_full` by rename) instead.
    ///
    /// Crash atomicity of the in-place path is that of the file system's own writes: a crash
    /// during the call can leave the range partly written (never bytes outside it). Journaled
    /// images rely on durability only: an image write whose journal entry is not yet committed
    /// is replayed from the journal after a crash.
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        validate_oid(oid)?;
        if self.opts.mmap_reads {
            return crate::write_at_by_copy(self, oid, offset, &data);
        }
        crate::write_end(offset, data.len())?;
        let _lock = self.shared.locks.exclusive(oid)?;
        let Some((file, snap)) = self.data_file(oid)? else {
            let whole = crate::splice(&[], offset, &data)?;
            return self.create_object(oid, &[whole], None, false);
        };
        if file.is_log() {
            // Log-mode files take appends only: the write replaces the file with a sized one.
            drop(_lock);
            return crate::write_at_by_copy(self, oid, offset, &data);
        }
        file.write_in_place(&snap, offset, &data, self.sync())
            .map_err(|e| StoreError::io("write", oid, e))
    }

    /// A write into a sized data file whose size record certifies none of the object's bytes
    /// (an image object) is a plain `pwrite`, and if it extends the object, a new size record
    /// written the same way; both are synced later by [`ObjectStore::sync_objects`] (see
    /// `DataFile::writes_unsynced` for what a crash can leave). Anything else (a missing object,
    /// a log-mode file, a record that certifies bytes, memory-mapped reads,
    /// [`SyncPolicy::None`]) is an ordinary [`ObjectStore::write_at`], which also makes the
    /// file's earlier unsynced writes durable.
    fn write_at_unsynced(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        validate_oid(oid)?;
        crate::write_end(offset, data.len())?;
        if self.sync() && !self.opts.mmap_reads {
            let _lock = self.shared.locks.exclusive(oid)?;
            if let Some((file, snap)) = self.data_file(oid)? {
                if DataFile::writes_unsynced(&snap) {
                    return file
                        .write_unsynced(&snap, offset, &data)
                        .map_err(|e| StoreError::io("write", oid, e));
                }
            }
        }
        self.write_at(oid, offset, data)
    }

    /// One `fdatasync` per existing object (none under [`SyncPolicy::None`]); an object whose
    /// unsynced writes extended it also gets its size record confirmed (a record write and a
    /// second sync, under the exclusive lock; see `DataFile::writes_unsynced`).
    fn sync_objects(&self, oids: &[String]) -> Result<()> {
        if !self.sync() {
            return Ok(());
        }
        for oid in oids {
            validate_oid(oid)?;
            let io_err = |e| StoreError::io("sync", oid, e);
            let confirm = {
                let _lock = self.shared.locks.shared(oid)?;
                match self.data_file(oid)? {
                    Some((file, snap)) if !DataFile::has_unsynced_record(&snap) => {
                        file.file().sync_data().map_err(io_err)?;
                        false
                    }
                    Some(_) => true,
                    None => false,
                }
            };
            if confirm {
                let _lock = self.shared.locks.exclusive(oid)?;
                if let Some((file, snap)) = self.data_file(oid)? {
                    file.sync_unsynced(&snap).map_err(io_err)?;
                }
            }
        }
        Ok(())
    }

    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        validate_oid(oid)?;
        let _lock = self.shared.locks.shared(oid)?;
        let mmap_from = self
            .opts
            .mmap_reads
            .then_some(self.opts.mmap_threshold_bytes.max(1));
        let io_err = |e| StoreError::io("read", oid, e);
        // Another process may remove the object and reuse its log-mode file for another one
        // (`spare.rs`) while this read runs (removal and reuse hold other stripes by then): the
        // file header tells after the read, and the next look finds the object gone.
        for _ in 0..3 {
            let Some((data_file, snap)) = self.data_file(oid)? else {
                return Err(StoreError::NotFound {
                    oid: oid.to_owned(),
                });
            };
            let bytes = data_file
                .read(&snap, offset, len, mmap_from)
                .map_err(io_err)?;
            if data_file.still_current().map_err(io_err)? {
                return Ok(bytes);
            }
            self.shared.files.forget(oid);
        }
        Err(io_err(io::Error::other(
            "data file reused for other objects during every attempt to read it",
        )))
    }

    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        validate_oid(oid)?;
        let _lock = self.shared.locks.shared(oid)?;
        match self.data_file(oid)? {
            Some((_, snap)) => Ok(ObjectStat { size: snap.size() }),
            None => Err(StoreError::NotFound {
                oid: oid.to_owned(),
            }),
        }
    }

    fn remove(&self, oid: &str) -> Result<()> {
        validate_oid(oid)?;
        let _lock = self.shared.locks.exclusive(oid)?;
        let log = self.retire_data_file(oid)?;
        let grave = self.shared.trash.join(leftover_name(oid));
        match fs::rename(self.object_dir(oid), &grave) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    oid: oid.to_owned(),
                })
            }
            Err(e) => return Err(StoreError::io("remove", oid, e)),
        }
        self.shared.omap.forget(oid);
        if self.sync() {
            sync_dir(&self.shared.objects).map_err(|e| StoreError::io("remove", oid, e))?;
        }
        // The object is gone once the rename is durable; deleting the files is housekeeping
        // (redone at the next open if interrupted).
        if log {
            spare::keep(&self.shared.spare, self.opts.spare_files, &grave.join(DATA));
        }
        let _ = fs::remove_dir_all(&grave);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let io_err = |e| StoreError::io("list", prefix, e);
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.shared.objects).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            if let Ok(name) = entry.file_name().into_string() {
                if name.starts_with(prefix) && validate_oid(&name).is_ok() {
                    out.push(name);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        validate_oid(oid)?;
        let _lock = self.shared.locks.exclusive(oid)?;
        if !self.object_exists(oid)? {
            return self.create_object(oid, &[data], None, false);
        }
        let dir = self.object_dir(oid);
        let tmp = dir.join(DATA_TMP);
        let retire = || {
            self.retire_data_file(oid)
                .map_err(|e| io::Error::other(e.to_string()))
        };
        let replace = || -> io::Result<()> {
            match fs::remove_file(&tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            size_record::create(&tmp, &[data], self.sync())?;
            retire()?;
            fs::rename(&tmp, dir.join(DATA))?;
            if self.sync() {
                sync_dir(&dir)?;
            }
            Ok(())
        };
        replace().map_err(|e| StoreError::io("write_full", oid, e))
    }

    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        validate_oid(oid)?;
        let image = self.load_omap(oid)?;
        Ok(keys
            .iter()
            .filter_map(|k| image.map.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect())
    }

    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        validate_oid(oid)?;
        let image = self.load_omap(oid)?;
        Ok(list_range(&image.map, start_after, prefix, max))
    }

    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        validate_oid(oid)?;
        let _lock = self.shared.locks.exclusive(oid)?;
        if !self.object_exists(oid)? {
            check_guards(oid, &BTreeMap::new(), &batch.guards)?;
            if batch.sets.is_empty() {
                return Ok(());
            }
            let mut map = BTreeMap::new();
            batch.apply_to(&mut map);
            return self.create_object(oid, &[], Some(&map), true);
        }
        let current = self.load_omap(oid)?;
        check_guards(oid, &current.map, &batch.guards)?;
        if batch.is_noop() {
            return Ok(());
        }
        let mut map = (*current.map).clone();
        batch.apply_to(&mut map);
        let generation = match current.generation {
            0 => unique_u64(),
            g => g.wrapping_add(1).max(1),
        };
        self.write_omap(oid, map, generation)
    }

    fn watch(&self, oid: &str) -> Result<Watch> {
        validate_oid(oid)?;
        Ok(self.shared.watches.watch(oid))
    }

    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        validate_oid(oid)?;
        Ok(self.shared.watches.notify(oid, payload))
    }

    fn notify_crosses_processes(&self) -> bool {
        false
    }
}
