//! [`WriteBackImage`]: a write-back cache in front of the replica image, used by the replayer.
//!
//! Replay applies IO one event at a time, and every event only counts as applied after a later
//! flush (§12.4). Over an [`journal_client::image::ObjectImage`] each small write is a
//! read-modify-write of a whole 4 MiB data object, so the replayer gathers the writes between
//! two flushes here: touched chunks (one data object each) are loaded once, patched in memory,
//! and written back once per flush. Reads and compare-and-write see the cached bytes.
//!
//! Durability is unchanged: nothing is reported applied before [`BlockImage::flush`] wrote the
//! chunks and flushed the image underneath; a crash loses only unflushed (so uncommitted)
//! events, which are replayed again. Memory is bounded by
//! `max_dirty_chunks × chunk size`; reaching it writes the chunks back early.
//! Maintenance operations (resize, snapshots, …) write everything back first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use journal_client::image::{
    check_range, expand_pattern, BlockImage, ImageError, ImageMeta, ImageResult, SnapInfo,
};
use parking_lot::Mutex;

/// One cached chunk.
#[derive(Debug)]
enum Chunk {
    /// Every byte of the chunk is zero (a whole-chunk discard): written back as a discard.
    Zero,
    /// The chunk's bytes (its length is the chunk size, or less for the image's last chunk).
    Data(BytesMut),
}

/// A write-back cache over a [`BlockImage`]. See the module docs.
#[derive(Debug)]
pub struct WriteBackImage {
    inner: Arc<dyn BlockImage>,
    chunk_bytes: u64,
    max_dirty_chunks: usize,
    dirty: Mutex<BTreeMap<u64, Chunk>>,
}

impl WriteBackImage {
    /// A cache over `inner` with chunks of `chunk_bytes` (use the image's object size) and at
    /// most `max_dirty_chunks` of them held.
    pub fn new(inner: Arc<dyn BlockImage>, chunk_bytes: u64, max_dirty_chunks: usize) -> Self {
        WriteBackImage {
            inner,
            chunk_bytes: chunk_bytes.max(4096),
            max_dirty_chunks: max_dirty_chunks.max(1),
            dirty: Mutex::new(BTreeMap::new()),
        }
    }

    /// `(chunk index, offset in chunk, length)` pieces of a range.
    fn pieces(&self, offset: u64, len: u64) -> Vec<(u64, usize, usize)> {
        let mut out = Vec::new();
        let end = offset.saturating_add(len);
        let mut pos = offset;
        while pos < end {
            let c = pos / self.chunk_bytes;
            let start = pos % self.chunk_bytes;
            let take = (self.chunk_bytes - start).min(end - pos);
            out.push((c, start as usize, take as usize));
            pos += take;
        }
        out
    }

    fn chunk_len(&self, c: u64) -> u64 {
        let start = c * self.chunk_bytes;
        self.chunk_bytes
            .min(self.inner.size().saturating_sub(start))
    }

    /// Runs `f` on the cached bytes of chunk `c`, loading it from the image if needed.
    fn with_chunk<T>(&self, c: u64, f: impl FnOnce(&mut BytesMut) -> T) -> ImageResult<T> {
        let cached = self.dirty.lock().contains_key(&c);
        if !cached {
            // Load outside the lock (store I/O), then insert unless someone else did.
            let data = self.inner.read(c * self.chunk_bytes, self.chunk_len(c))?;
            self.dirty
                .lock()
                .entry(c)
                .or_insert_with(|| Chunk::Data(BytesMut::from(&data[..])));
        }
        let len = self.chunk_len(c) as usize;
        let mut dirty = self.dirty.lock();
        let chunk = dirty
            .entry(c)
            .or_insert_with(|| Chunk::Data(BytesMut::zeroed(len)));
        if matches!(chunk, Chunk::Zero) {
            *chunk = Chunk::Data(BytesMut::zeroed(len));
        }
        match chunk {
            Chunk::Data(buf) => Ok(f(buf)),
            Chunk::Zero => Err(ImageError::Corrupt("write-back chunk state".into())),
        }
    }

    fn maybe_write_back(&self) -> ImageResult<()> {
        if self.dirty.lock().len() > self.max_dirty_chunks {
            self.write_back()?;
        }
        Ok(())
    }

    /// Writes every cached chunk to the image (without flushing it).
    fn write_back(&self) -> ImageResult<()> {
        let dirty = std::mem::take(&mut *self.dirty.lock());
        let mut done = BTreeSet::new();
        let mut result = Ok(());
        for (c, chunk) in &dirty {
            let start = c * self.chunk_bytes;
            let r = match chunk {
                Chunk::Zero => self.inner.discard(start, self.chunk_len(*c)),
                Chunk::Data(buf) => self.inner.write(start, Bytes::copy_from_slice(buf)),
            };
            if let Err(e) = r {
                result = Err(e);
                break;
            }
            done.insert(*c);
        }
        if result.is_err() {
            // Keep what was not written, so a retried flush does not lose it.
            let mut map = self.dirty.lock();
            for (c, chunk) in dirty {
                if !done.contains(&c) {
                    map.entry(c).or_insert(chunk);
                }
            }
        }
        result
    }

    fn patch(&self, offset: u64, data: &[u8]) -> ImageResult<()> {
        let mut at = 0usize;
        for (c, start, take) in self.pieces(offset, data.len() as u64) {
            let src = data.get(at..at + take).unwrap_or_default();
            self.with_chunk(c, |buf| {
                if let Some(dst) = buf.get_mut(start..start + take) {
                    dst.copy_from_slice(src);
                }
            })?;
            at += take;
        }
        self.maybe_write_back()
    }
}

impl BlockImage for WriteBackImage {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes> {
        check_range(offset, len, self.size())?;
        let mut out = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
        for (c, start, take) in self.pieces(offset, len) {
            let cached = {
                let dirty = self.dirty.lock();
                match dirty.get(&c) {
                    Some(Chunk::Zero) => Some(Bytes::from(vec![0u8; take])),
                    Some(Chunk::Data(buf)) => {
                        buf.get(start..start + take).map(Bytes::copy_from_slice)
                    }
                    None => None,
                }
            };
            match cached {
                Some(b) => out.extend_from_slice(&b),
                None => out.extend_from_slice(
                    &self
                        .inner
                        .read(c * self.chunk_bytes + start as u64, take as u64)?,
                ),
            }
        }
        Ok(out.freeze())
    }

    fn write(&self, offset: u64, data: Bytes) -> ImageResult<()> {
        check_range(offset, data.len() as u64, self.size())?;
        self.patch(offset, &data)
    }

    fn discard(&self, offset: u64, len: u64) -> ImageResult<()> {
        check_range(offset, len, self.size())?;
        for (c, start, take) in self.pieces(offset, len) {
            if start == 0 && take as u64 == self.chunk_len(c) {
                self.dirty.lock().insert(c, Chunk::Zero);
            } else {
                self.with_chunk(c, |buf| {
                    if let Some(dst) = buf.get_mut(start..start + take) {
                        dst.fill(0);
                    }
                })?;
            }
        }
        self.maybe_write_back()
    }

    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> ImageResult<()> {
        let data = expand_pattern(len, &pattern)?;
        self.write(offset, data)
    }

    fn compare_and_write(&self, offset: u64, cmp: Bytes, data: Bytes) -> ImageResult<()> {
        if cmp.len() != data.len() {
            return Err(ImageError::InvalidArgument(format!(
                "compare length {} differs from write length {}",
                cmp.len(),
                data.len()
            )));
        }
        let have = self.read(offset, cmp.len() as u64)?;
        if let Some(i) = have.iter().zip(cmp.iter()).position(|(a, b)| a != b) {
            return Err(ImageError::CompareMismatch {
                offset: offset + i as u64,
            });
        }
        self.write(offset, data)
    }

    fn flush(&self) -> ImageResult<()> {
        self.write_back()?;
        self.inner.flush()
    }

    fn resize(&self, size: u64) -> ImageResult<()> {
        self.flush()?;
        self.inner.resize(size)
    }

    fn snap_create(&self, name: &str) -> ImageResult<u64> {
        self.flush()?;
        self.inner.snap_create(name)
    }

    fn snap_remove(&self, name: &str) -> ImageResult<()> {
        self.inner.snap_remove(name)
    }

    fn snap_rename(&self, src: &str, dst: &str) -> ImageResult<()> {
        self.inner.snap_rename(src, dst)
    }

    fn snap_protect(&self, name: &str) -> ImageResult<()> {
        self.inner.snap_protect(name)
    }

    fn snap_unprotect(&self, name: &str) -> ImageResult<()> {
        self.inner.snap_unprotect(name)
    }

    fn snap_rollback(&self, name: &str) -> ImageResult<()> {
        // Cached bytes predate the rollback: write them first so the rollback replaces them.
        self.flush()?;
        self.inner.snap_rollback(name)
    }

    fn snap_list(&self) -> ImageResult<Vec<SnapInfo>> {
        self.inner.snap_list()
    }

    fn snap_set_limit(&self, limit: u64) -> ImageResult<()> {
        self.inner.snap_set_limit(limit)
    }

    fn rename(&self, name: &str) -> ImageResult<()> {
        self.inner.rename(name)
    }

    fn flatten(&self) -> ImageResult<()> {
        self.inner.flatten()
    }

    fn update_features(&self, features: u64, enabled: bool) -> ImageResult<()> {
        self.flush()?;
        self.inner.update_features(features, enabled)
    }

    fn metadata_set(&self, key: &str, value: &str) -> ImageResult<()> {
        self.inner.metadata_set(key, value)
    }

    fn metadata_remove(&self, key: &str) -> ImageResult<()> {
        self.inner.metadata_remove(key)
    }

    fn metadata_get(&self, key: &str) -> ImageResult<Option<String>> {
        self.inner.metadata_get(key)
    }

    fn metadata_list(&self) -> ImageResult<BTreeMap<String, String>> {
        self.inner.metadata_list()
    }

    fn meta(&self) -> ImageMeta {
        self.inner.meta()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use journal_client::image::MemImage;
    use proptest::prelude::*;

    use super::*;

    const SIZE: u64 = 64 << 10;

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, u8, u64),
        Discard(u64, u64),
        WriteSame(u64, u8, u64),
        Caw(u64, u64, bool),
        Flush,
        Read(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let range = (0..SIZE - 1).prop_flat_map(|o| (Just(o), 1..=(SIZE - o).min(20_000)));
        prop_oneof![
            4 => (range.clone(), any::<u8>()).prop_map(|((o, l), b)| Op::Write(o, b, l)),
            2 => range.clone().prop_map(|(o, l)| Op::Discard(o, l)),
            1 => ((0..SIZE / 512 - 8), any::<u8>(), 1..8u64)
                .prop_map(|(o, b, n)| Op::WriteSame(o * 512, b, n * 512)),
            1 => (range.clone(), any::<bool>()).prop_map(|((o, l), m)| Op::Caw(o, l, m)),
            1 => Just(Op::Flush),
            2 => range.prop_map(|(o, l)| Op::Read(o, l)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The cache behaves like the image it fronts (reference: a plain MemImage fed the
        /// same operations), and after a flush the image underneath holds the same bytes.
        #[test]
        fn behaves_like_the_image(ops in proptest::collection::vec(op(), 1..40), chunk in 1u64..5) {
            let reference = MemImage::new("ref", SIZE);
            let inner = Arc::new(MemImage::new("inner", SIZE));
            let cache = WriteBackImage::new(inner.clone(), chunk * 8192, 2);
            for op in ops {
                match op {
                    Op::Write(o, b, l) => {
                        let d = Bytes::from(vec![b; l as usize]);
                        reference.write(o, d.clone()).unwrap();
                        cache.write(o, d).unwrap();
                    }
                    Op::Discard(o, l) => {
                        reference.discard(o, l).unwrap();
                        cache.discard(o, l).unwrap();
                    }
                    Op::WriteSame(o, b, l) => {
                        let p = Bytes::from(vec![b, b.wrapping_add(1)]);
                        reference.write_same(o, l, p.clone()).unwrap();
                        cache.write_same(o, l, p).unwrap();
                    }
                    Op::Caw(o, l, matching) => {
                        let mut cmp = reference.read(o, l).unwrap().to_vec();
                        if !matching {
                            cmp[0] = cmp[0].wrapping_add(1);
                        }
                        let data = Bytes::from(vec![0x5a; l as usize]);
                        let a = reference.compare_and_write(o, Bytes::from(cmp.clone()), data.clone());
                        let b = cache.compare_and_write(o, Bytes::from(cmp), data);
                        prop_assert_eq!(a.is_ok(), b.is_ok());
                    }
                    Op::Flush => {
                        cache.flush().unwrap();
                        prop_assert_eq!(inner.read(0, SIZE).unwrap(), reference.read(0, SIZE).unwrap());
                    }
                    Op::Read(o, l) => {
                        prop_assert_eq!(cache.read(o, l).unwrap(), reference.read(o, l).unwrap());
                    }
                }
            }
            cache.flush().unwrap();
            prop_assert_eq!(inner.read(0, SIZE).unwrap(), reference.read(0, SIZE).unwrap());
        }
    }
}
