//! [`ObjectImage`]: an image striped over an [`ObjectStore`] the way RBD stripes over a data pool.
//!
//! * Data: objects `rbd_data.<image id>.<n as 16 hex digits>` of `2^22` bytes (4 MiB); object
//!   `n` holds image bytes `[n * 4 MiB, (n+1) * 4 MiB)`. Missing objects and bytes past an
//!   object's end read as zeros. A write is an `ObjectStore::write_at` into each touched object;
//!   a discard of a whole object removes it.
//! * Metadata: the JSON [`ImageMeta`] under omap key `meta` of `rbd_header.<image id>`, replaced
//!   in one atomic omap batch.
//! * Snapshots: a copy of every existing data object, named `rbd_data.<image id>.<n>@<snap id>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store_trait::{ObjectStore, ObjectStoreExt, OmapBatch, StoreError};
use parking_lot::Mutex;

use super::{BackedImage, ImageBackend, ImageError, ImageMeta, ImageResult};

/// log2 of the data object size (RBD's default `order` 22, 4 MiB objects).
pub const RBD_OBJECT_ORDER: u8 = 22;
const OBJECT_SIZE: u64 = 1 << RBD_OBJECT_ORDER;
const META_KEY: &str = "meta";

/// The objects of an [`ObjectImage`].
#[derive(Debug)]
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    image_id: String,
    /// Data objects written since they were last synced ([`ObjectStore::write_at_unsynced`]),
    /// each with the number of its latest write (see [`Dirty`]).
    dirty: Mutex<Dirty>,
}

/// The data objects an [`ObjectBackend`] has written and not yet synced. A flush syncs a copy
/// of the set and then forgets only the objects not written again meanwhile: two flushes that
/// overlap each sync every object they saw (neither returns before its own sync), and a write
/// that lands during a sync keeps its object dirty for the next flush.
#[derive(Debug, Default)]
struct Dirty {
    /// Number of the latest write.
    writes: u64,
    /// Object number → number of its latest write.
    objects: BTreeMap<u64, u64>,
}

/// An image striped over an object store.
pub type ObjectImage = BackedImage<ObjectBackend>;

impl BackedImage<ObjectBackend> {
    /// Creates a zero-filled image `image_id` named `name` of `size` bytes. Fails if the header
    /// object already holds an image.
    pub fn create(
        store: Arc<dyn ObjectStore>,
        image_id: &str,
        name: &str,
        size: u64,
    ) -> ImageResult<Self> {
        Self::create_with_features(store, image_id, name, size, 0)
    }

    /// Like [`ObjectImage::create`], with feature bits set in the same atomic metadata write (so a
    /// crash never leaves the image with only some of them).
    pub fn create_with_features(
        store: Arc<dyn ObjectStore>,
        image_id: &str,
        name: &str,
        size: u64,
        features: u64,
    ) -> ImageResult<Self> {
        let backend = ObjectBackend {
            store,
            image_id: image_id.to_owned(),
            dirty: Mutex::default(),
        };
        let meta = ImageMeta {
            features,
            ..ImageMeta::new(name, size)
        };
        let mut batch = OmapBatch::new();
        batch
            .assert_absent(META_KEY)
            .set(META_KEY, Bytes::from(meta.to_json()?));
        backend.store.omap_apply(&backend.header_oid(), &batch)?;
        Ok(BackedImage::from_parts(backend, meta))
    }

    /// Opens an image made by [`ObjectImage::create`].
    pub fn open(store: Arc<dyn ObjectStore>, image_id: &str) -> ImageResult<Self> {
        let backend = ObjectBackend {
            store,
            image_id: image_id.to_owned(),
            dirty: Mutex::default(),
        };
        let raw = backend
            .store
            .omap_get_one(&backend.header_oid(), META_KEY)?
            .ok_or_else(|| ImageError::Corrupt(format!("no image {image_id:?}")))?;
        let meta = ImageMeta::from_json(&raw)?;
        Ok(BackedImage::from_parts(backend, meta))
    }
}

fn ignore_missing(r: Result<(), StoreError>) -> ImageResult<()> {
    match r {
        Err(e) if !e.is_not_found() => Err(e.into()),
        _ => Ok(()),
    }
}

impl ObjectBackend {
    fn header_oid(&self) -> String {
        format!("rbd_header.{}", self.image_id)
    }

    fn data_prefix(&self) -> String {
        format!("rbd_data.{}.", self.image_id)
    }

    /// Runs `f` with [`ObjectBackend::data_oid`] of object `n`, built in a stack buffer when it
    /// fits (the read and write paths run this for every image IO: no allocation), otherwise
    /// formatted.
    fn with_data_oid<T>(&self, n: u64, f: impl FnOnce(&str) -> T) -> T {
        const PREFIX: &[u8] = b"rbd_data.";
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 96];
        let id = self.image_id.as_bytes();
        let len = PREFIX.len() + id.len() + 17;
        let filled = buf.get_mut(..len).map(|out| {
            let (prefix, rest) = out.split_at_mut(PREFIX.len());
            prefix.copy_from_slice(PREFIX);
            let (name, rest) = rest.split_at_mut(id.len());
            name.copy_from_slice(id);
            let (dot, digits) = rest.split_at_mut(1);
            dot.copy_from_slice(b".");
            for (i, d) in digits.iter_mut().enumerate() {
                let nibble = (n >> ((15 - i) * 4)) & 0xf;
                *d = HEX.get(nibble as usize).copied().unwrap_or(b'0');
            }
        });
        match filled
            .and_then(|()| buf.get(..len))
            .map(std::str::from_utf8)
        {
            Some(Ok(oid)) => f(oid),
            _ => f(&format!("{}{n:016x}", self.data_prefix())),
        }
    }

    /// `rbd_data.<image id>.<n as 16 lowercase hex digits>`.
    fn data_oid(&self, n: u64) -> String {
        self.with_data_oid(n, str::to_owned)
    }

    /// Live data objects as `(object number, oid)`.
    fn live_objects(&self) -> ImageResult<Vec<(u64, String)>> {
        let prefix = self.data_prefix();
        Ok(self
            .store
            .list(&prefix)?
            .into_iter()
            .filter_map(|oid| {
                let tail = oid.strip_prefix(&prefix)?;
                if tail.contains('@') {
                    return None;
                }
                u64::from_str_radix(tail, 16).ok().map(|n| (n, oid))
            })
            .collect())
    }

    fn read_object(&self, n: u64) -> ImageResult<Bytes> {
        match self.store.read_all(&self.data_oid(n)) {
            Ok(b) => Ok(b),
            Err(e) if e.is_not_found() => Ok(Bytes::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Splits `[offset, offset+len)` into `(object number, start in object, length)`.
    fn pieces(offset: u64, len: u64) -> Vec<(u64, usize, usize)> {
        let mut out = Vec::new();
        let end = offset.saturating_add(len);
        let mut pos = offset;
        while pos < end {
            let n = pos / OBJECT_SIZE;
            let start = pos % OBJECT_SIZE;
            let take = (OBJECT_SIZE - start).min(end - pos);
            out.push((n, start as usize, take as usize));
            pos += take;
        }
        out
    }
}

impl ImageBackend for ObjectBackend {
    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes> {
        let mut out = BytesMut::zeroed(usize::try_from(len).unwrap_or(0));
        let mut at = 0usize;
        for (n, start, take) in Self::pieces(offset, len) {
            let got = match self
                .with_data_oid(n, |oid| self.store.read(oid, start as u64, take as u64))
            {
                Ok(b) => b,
                Err(e) if e.is_not_found() => Bytes::new(),
                Err(e) => return Err(e.into()),
            };
            if let Some(dst) = out.get_mut(at..at + got.len()) {
                dst.copy_from_slice(&got);
            }
            at += take;
        }
        Ok(out.freeze())
    }

    fn write(&self, offset: u64, data: &Bytes) -> ImageResult<()> {
        let mut at = 0usize;
        for (n, start, take) in Self::pieces(offset, data.len() as u64) {
            // A slice, not a copy: the store copies what it keeps of a buffer it shares
            // (`ObjectStore::write_at`), so one copy is made, by the store.
            let piece = data.slice(at.min(data.len())..(at + take).min(data.len()));
            // Durable at the image's flush, which syncs the objects written since the last.
            self.with_data_oid(n, |oid| {
                self.store.write_at_unsynced(oid, start as u64, piece)
            })?;
            let mut dirty = self.dirty.lock();
            dirty.writes += 1;
            let write = dirty.writes;
            dirty.objects.insert(n, write);
            drop(dirty);
            at += take;
        }
        Ok(())
    }

    fn zero(&self, offset: u64, len: u64) -> ImageResult<()> {
        for (n, start, take) in Self::pieces(offset, len) {
            if take as u64 == OBJECT_SIZE {
                ignore_missing(self.store.remove(&self.data_oid(n)))?;
            } else {
                let size = match self.store.stat(&self.data_oid(n)) {
                    Ok(stat) => stat.size,
                    Err(e) if e.is_not_found() => 0,
                    Err(e) => return Err(e.into()),
                };
                if size > start as u64 {
                    // Zero only the bytes the object holds; past its end reads are zeros.
                    let len = take.min((size - start as u64) as usize);
                    self.store.write_at(
                        &self.data_oid(n),
                        start as u64,
                        Bytes::from(vec![0u8; len]),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn resize(&self, old: u64, new: u64) -> ImageResult<()> {
        if new >= old {
            return Ok(());
        }
        let keep = new.div_ceil(OBJECT_SIZE);
        for (n, oid) in self.live_objects()? {
            if n >= keep {
                ignore_missing(self.store.remove(&oid))?;
            }
        }
        if !new.is_multiple_of(OBJECT_SIZE) {
            let n = new / OBJECT_SIZE;
            let cut = (new % OBJECT_SIZE) as usize;
            let old_obj = self.read_object(n)?;
            if old_obj.len() > cut {
                self.store
                    .write_full(&self.data_oid(n), old_obj.slice(..cut))?;
            }
        }
        Ok(())
    }

    fn snap_save(&self, snap_id: u64, _size: u64) -> ImageResult<()> {
        for (n, oid) in self.live_objects()? {
            let data = self.store.read_all(&oid)?;
            self.store
                .write_full(&format!("{}@{snap_id}", self.data_oid(n)), data)?;
        }
        Ok(())
    }

    fn snap_restore(&self, snap_id: u64, size: u64, _current_size: u64) -> ImageResult<()> {
        let suffix = format!("@{snap_id}");
        let prefix = self.data_prefix();
        let mut saved = Vec::new();
        for oid in self.store.list(&prefix)? {
            if let Some(n) = oid
                .strip_prefix(&prefix)
                .and_then(|t| t.strip_suffix(&suffix))
                .and_then(|t| u64::from_str_radix(t, 16).ok())
            {
                saved.push((n, oid));
            }
        }
        for (n, oid) in self.live_objects()? {
            if !saved.iter().any(|(m, _)| *m == n) {
                ignore_missing(self.store.remove(&oid))?;
            }
        }
        let keep = size.div_ceil(OBJECT_SIZE);
        for (n, oid) in saved {
            if n < keep {
                self.store
                    .write_full(&self.data_oid(n), self.store.read_all(&oid)?)?;
            }
        }
        Ok(())
    }

    fn snap_delete(&self, snap_id: u64) -> ImageResult<()> {
        let suffix = format!("@{snap_id}");
        for oid in self.store.list(&self.data_prefix())? {
            if oid.ends_with(&suffix) {
                ignore_missing(self.store.remove(&oid))?;
            }
        }
        Ok(())
    }

    /// Syncs the data objects written and not yet synced (every other mutation is durable when
    /// it returns); returns once every write that completed before the call is durable. A
    /// failed sync leaves the objects dirty for the next flush.
    fn flush(&self) -> ImageResult<()> {
        let seen: Vec<(u64, u64)> = self
            .dirty
            .lock()
            .objects
            .iter()
            .map(|(&n, &w)| (n, w))
            .collect();
        if seen.is_empty() {
            return Ok(());
        }
        let oids: Vec<String> = seen.iter().map(|&(n, _)| self.data_oid(n)).collect();
        self.store.sync_objects(&oids)?;
        let mut dirty = self.dirty.lock();
        for (n, w) in seen {
            if dirty.objects.get(&n) == Some(&w) {
                dirty.objects.remove(&n);
            }
        }
        Ok(())
    }

    fn save_meta(&self, meta: &ImageMeta) -> ImageResult<()> {
        let mut batch = OmapBatch::new();
        batch.set(META_KEY, Bytes::from(meta.to_json()?));
        self.store.omap_apply(&self.header_oid(), &batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::image::BlockImage;
    use crossbeam_channel::{Receiver, Sender};
    use object_store_trait::{Hook, Intercept, MemStore, Op};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// Holds the first `sync_objects` until released; counts the completed ones.
    #[derive(Debug)]
    struct Gate {
        entered: Sender<()>,
        release: Receiver<()>,
        held: AtomicBool,
        completed: Arc<AtomicU64>,
    }

    impl Hook for Gate {
        fn before(&self, op: Op<'_>) -> object_store_trait::Result<()> {
            if matches!(op, Op::SyncObjects { .. }) && !self.held.swap(true, Ordering::SeqCst) {
                let _ = self.entered.send(());
                let _ = self.release.recv();
            }
            Ok(())
        }
        fn after(&self, op: Op<'_>, _: std::result::Result<(), &StoreError>) {
            if matches!(op, Op::SyncObjects { .. }) {
                self.completed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// A flush that overlaps another one still syncing does not return before a sync of the
    /// objects written before it completed (the journaled image writes its commit position
    /// right after its flush returns). A flush that just took the dirty set would return at
    /// once, while the other flush's sync is still under way.
    #[test]
    fn overlapping_flushes_each_wait_for_a_completed_sync() {
        let (entered_tx, entered_rx) = crossbeam_channel::unbounded();
        let (release_tx, release_rx) = crossbeam_channel::unbounded();
        let completed = Arc::new(AtomicU64::new(0));
        let gate = Gate {
            entered: entered_tx,
            release: release_rx,
            held: AtomicBool::new(false),
            completed: Arc::clone(&completed),
        };
        let store: Arc<dyn ObjectStore> = Arc::new(Intercept::with_hook(MemStore::new(), gate));
        let image = Arc::new(ObjectImage::create(store, "img", "img", 1 << 20).unwrap());
        image.write(0, Bytes::from(vec![1u8; 4096])).unwrap();
        let first = {
            let image = Arc::clone(&image);
            std::thread::spawn(move || image.flush())
        };
        entered_rx.recv().unwrap();
        image.flush().unwrap();
        assert!(
            completed.load(Ordering::SeqCst) >= 1,
            "the second flush returned before any sync completed"
        );
        release_tx.send(()).unwrap();
        first.join().unwrap().unwrap();
        assert_eq!(completed.load(Ordering::SeqCst), 2);
        // Nothing left to sync.
        image.flush().unwrap();
        assert_eq!(completed.load(Ordering::SeqCst), 2);
    }

    /// Oracle: the `format!` spelling librbd's names follow (`%016llx`).
    #[test]
    fn data_oid_matches_the_formatted_name() {
        let backend = ObjectBackend {
            store: Arc::new(MemStore::new()),
            image_id: "1f2e3d4c".to_owned(),
            dirty: Mutex::default(),
        };
        for n in [0, 1, 0xf, 0x10, 0xabc, 1 << 40, u64::MAX - 1, u64::MAX] {
            assert_eq!(backend.data_oid(n), format!("rbd_data.1f2e3d4c.{n:016x}"));
            assert_eq!(
                backend.with_data_oid(n, str::to_owned),
                format!("rbd_data.1f2e3d4c.{n:016x}")
            );
        }
        // An id too long for the stack buffer takes the allocating path, same name.
        let long = ObjectBackend {
            store: Arc::new(MemStore::new()),
            image_id: "x".repeat(100),
            dirty: Mutex::default(),
        };
        assert_eq!(
            long.data_oid(7),
            format!("rbd_data.{}.{:016x}", "x".repeat(100), 7)
        );
    }
}
