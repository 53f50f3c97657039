//! A bounded cache of open data files, so that appends and reads of busy objects do not open
//! (and check) their data file every time.
//!
//! Entries are only used while the object's stripe is held, and every use re-reads the file's
//! header, which tells whether another process replaced or removed the file since it was opened
//! (`DataFile::is_retired`). This process forgets an entry itself whenever it replaces or removes
//! the file. The least recently used entry is closed when the cache is full.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::datafile::DataFile;

#[derive(Debug)]
struct Entry {
    file: Arc<DataFile>,
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Entry>,
    tick: u64,
}

/// Open data files by object id.
#[derive(Debug)]
pub(super) struct FileCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl FileCache {
    /// A cache keeping at most `capacity` files open (0: none).
    pub(super) fn new(capacity: usize) -> FileCache {
        FileCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The cached file of `oid`, if any.
    pub(super) fn get(&self, oid: &str) -> Option<Arc<DataFile>> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.map.get_mut(oid)?;
        entry.used = tick;
        Some(entry.file.clone())
    }

    /// Caches `file` as the data file of `oid`, closing the least recently used file if full.
    pub(super) fn insert(&self, oid: &str, file: Arc<DataFile>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let used = inner.tick;
        let mut closed = None;
        if !inner.map.contains_key(oid) && inner.map.len() >= self.capacity {
            let oldest = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                closed = inner.map.remove(&oldest);
            }
        }
        let replaced = inner.map.insert(oid.to_owned(), Entry { file, used });
        drop(inner);
        // Files are closed outside the lock.
        drop((closed, replaced));
    }

    /// Drops the cached file of `oid` (after this process replaced or removed it).
    pub(super) fn forget(&self, oid: &str) {
        let removed = self.inner.lock().map.remove(oid);
        drop(removed); // closed outside the lock
    }

    /// Number of cached files.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.lock().map.len()
    }
}
