//! [`BackedImage`]: the [`BlockImage`] rules over any byte backend.

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::{
    check_range, expand_pattern, BlockImage, ImageError, ImageMeta, ImageResult, SnapInfo,
};

/// Where an image's bytes and metadata live. Callers ([`BackedImage`]) have already checked
/// ranges against the size and serialise every mutation; implementations need only be correct
/// for one mutation at a time (reads may run concurrently with each other).
pub trait ImageBackend: Send + Sync + Debug + 'static {
    /// Reads `len` bytes at `offset`; never-written bytes read as zeros.
    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes>;
    /// Writes `data` at `offset`. A backend may keep slices of `data` instead of copying it
    /// (its bytes never change).
    fn write(&self, offset: u64, data: &Bytes) -> ImageResult<()>;
    /// Zeroes `len` bytes at `offset` (deallocating where the backend can).
    fn zero(&self, offset: u64, len: u64) -> ImageResult<()>;
    /// Changes the size from `old` to `new`; bytes beyond `new` must read as zeros if the image
    /// grows again later.
    fn resize(&self, old: u64, new: u64) -> ImageResult<()>;
    /// Saves a copy of the first `size` bytes under `snap_id`.
    fn snap_save(&self, snap_id: u64, size: u64) -> ImageResult<()>;
    /// Replaces the data (currently `current_size` bytes) with the copy saved under `snap_id`
    /// (`size` bytes).
    fn snap_restore(&self, snap_id: u64, size: u64, current_size: u64) -> ImageResult<()>;
    /// Deletes the copy saved under `snap_id`.
    fn snap_delete(&self, snap_id: u64) -> ImageResult<()>;
    /// Makes every earlier write durable.
    fn flush(&self) -> ImageResult<()>;
    /// Persists the metadata atomically (a crash leaves the old or the new version).
    fn save_meta(&self, meta: &ImageMeta) -> ImageResult<()>;
}

/// A [`BlockImage`] over an [`ImageBackend`]: range checks, snapshot and metadata rules, and the
/// serialisation of mutations.
///
/// Locking: `io` is the device lock (shared for reads, exclusive for every mutation, so
/// compare-and-write, snapshots and resize are atomic with respect to writes); it is held across
/// the backend call by design, as a disk's queue would be. `meta` is held only to copy or swap
/// the metadata.
#[derive(Debug)]
pub struct BackedImage<B: ImageBackend> {
    backend: B,
    meta: Mutex<ImageMeta>,
    io: RwLock<()>,
}

impl<B: ImageBackend> BackedImage<B> {
    /// An image over `backend` whose current metadata is `meta`.
    pub fn from_parts(backend: B, meta: ImageMeta) -> Self {
        BackedImage {
            backend,
            meta: Mutex::new(meta),
            io: RwLock::new(()),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Runs a metadata change on a copy, lets `data` act on the backend, then persists and
    /// installs the new metadata. Nothing changes if either step fails.
    fn change_meta<T>(
        &self,
        change: impl FnOnce(&mut ImageMeta) -> ImageResult<T>,
        data: impl FnOnce(&B, &ImageMeta, &ImageMeta, &T) -> ImageResult<()>,
    ) -> ImageResult<T> {
        let _io = self.io.write();
        let old = self.meta.lock().clone();
        let mut new = old.clone();
        let out = change(&mut new)?;
        data(&self.backend, &old, &new, &out)?;
        self.backend.save_meta(&new)?;
        *self.meta.lock() = new;
        Ok(out)
    }

    fn simple_change(
        &self,
        change: impl FnOnce(&mut ImageMeta) -> ImageResult<()>,
    ) -> ImageResult<()> {
        self.change_meta(change, |_, _, _, _| Ok(()))
    }
}

impl<B: ImageBackend> BlockImage for BackedImage<B> {
    fn size(&self) -> u64 {
        self.meta.lock().size
    }

    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes> {
        let _io = self.io.read();
        check_range(offset, len, self.size())?;
        self.backend.read(offset, len)
    }

    fn write(&self, offset: u64, data: Bytes) -> ImageResult<()> {
        let _io = self.io.write();
        check_range(offset, data.len() as u64, self.size())?;
        self.backend.write(offset, &data)
    }

    fn discard(&self, offset: u64, len: u64) -> ImageResult<()> {
        let _io = self.io.write();
        check_range(offset, len, self.size())?;
        self.backend.zero(offset, len)
    }

    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> ImageResult<()> {
        let data = expand_pattern(len, &pattern)?;
        let _io = self.io.write();
        check_range(offset, len, self.size())?;
        self.backend.write(offset, &data)
    }

    fn compare_and_write(&self, offset: u64, cmp: Bytes, data: Bytes) -> ImageResult<()> {
        if cmp.len() != data.len() {
            return Err(ImageError::InvalidArgument(format!(
                "compare length {} differs from write length {}",
                cmp.len(),
                data.len()
            )));
        }
        let _io = self.io.write();
        check_range(offset, data.len() as u64, self.size())?;
        let have = self.backend.read(offset, cmp.len() as u64)?;
        if let Some(i) = have.iter().zip(cmp.iter()).position(|(a, b)| a != b) {
            return Err(ImageError::CompareMismatch {
                offset: offset + i as u64,
            });
        }
        self.backend.write(offset, &data)
    }

    fn flush(&self) -> ImageResult<()> {
        self.backend.flush()
    }

    fn resize(&self, size: u64) -> ImageResult<()> {
        self.change_meta(
            |m| {
                m.size = size;
                Ok(())
            },
            |b, old, new, _| b.resize(old.size, new.size),
        )
    }

    fn snap_create(&self, name: &str) -> ImageResult<u64> {
        let snap = self.change_meta(
            |m| m.snap_create(name),
            |b, _, _, s| b.snap_save(s.id, s.size),
        )?;
        Ok(snap.id)
    }

    fn snap_remove(&self, name: &str) -> ImageResult<()> {
        let snap = self.change_meta(|m| m.snap_remove(name), |_, _, _, _| Ok(()))?;
        // The metadata no longer names the copy; deleting it is cleanup.
        self.backend.snap_delete(snap.id)
    }

    fn snap_rename(&self, src: &str, dst: &str) -> ImageResult<()> {
        self.simple_change(|m| m.snap_rename(src, dst))
    }

    fn snap_protect(&self, name: &str) -> ImageResult<()> {
        self.simple_change(|m| m.snap_protect(name))
    }

    fn snap_unprotect(&self, name: &str) -> ImageResult<()> {
        self.simple_change(|m| m.snap_unprotect(name))
    }

    fn snap_rollback(&self, name: &str) -> ImageResult<()> {
        self.change_meta(
            |m| {
                let snap = m.snap(name)?.clone();
                m.size = snap.size;
                Ok(snap)
            },
            |b, old, _, snap| b.snap_restore(snap.id, snap.size, old.size),
        )
        .map(drop)
    }

    fn snap_list(&self) -> ImageResult<Vec<SnapInfo>> {
        Ok(self.meta.lock().snaps.clone())
    }

    fn snap_set_limit(&self, limit: u64) -> ImageResult<()> {
        self.simple_change(|m| m.snap_set_limit(limit))
    }

    fn rename(&self, name: &str) -> ImageResult<()> {
        self.simple_change(|m| m.rename(name))
    }

    fn flatten(&self) -> ImageResult<()> {
        Err(ImageError::NotAClone)
    }

    fn update_features(&self, features: u64, enabled: bool) -> ImageResult<()> {
        self.simple_change(|m| m.update_features(features, enabled))
    }

    fn metadata_set(&self, key: &str, value: &str) -> ImageResult<()> {
        self.simple_change(|m| {
            m.metadata.insert(key.to_owned(), value.to_owned());
            Ok(())
        })
    }

    fn metadata_remove(&self, key: &str) -> ImageResult<()> {
        self.simple_change(|m| m.metadata_remove(key))
    }

    fn metadata_get(&self, key: &str) -> ImageResult<Option<String>> {
        Ok(self.meta.lock().metadata.get(key).cloned())
    }

    fn metadata_list(&self) -> ImageResult<BTreeMap<String, String>> {
        Ok(self.meta.lock().metadata.clone())
    }

    fn meta(&self) -> ImageMeta {
        self.meta.lock().clone()
    }
}
