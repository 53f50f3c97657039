//! [`MemImage`]: an image in process memory, stored as 4 KiB chunks; snapshots share chunks with
//! the live image (copy-on-write through reference-counted buffers).

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};

use super::{BackedImage, ImageBackend, ImageMeta, ImageResult};

const CHUNK: u64 = 4096;

type Chunks = BTreeMap<u64, Bytes>;

/// The bytes of a [`MemImage`].
#[derive(Debug, Default)]
pub struct MemBackend {
    chunks: RwLock<Chunks>,
    snaps: Mutex<BTreeMap<u64, Chunks>>,
}

/// An in-memory image.
pub type MemImage = BackedImage<MemBackend>;

impl BackedImage<MemBackend> {
    /// A zero-filled in-memory image named `name` of `size` bytes.
    pub fn new(name: &str, size: u64) -> Self {
        BackedImage::from_parts(MemBackend::default(), ImageMeta::new(name, size))
    }
}

/// Splits `[offset, offset+len)` into `(chunk index, start in chunk, length)` pieces.
fn pieces(offset: u64, len: u64) -> impl Iterator<Item = (u64, usize, usize)> {
    let end = offset.saturating_add(len);
    let mut pos = offset;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let idx = pos / CHUNK;
        let start = pos % CHUNK;
        let n = (CHUNK - start).min(end - pos);
        pos += n;
        Some((idx, start as usize, n as usize))
    })
}

fn chunk_write(chunks: &mut Chunks, offset: u64, data: &[u8]) {
    let mut rest = data;
    for (idx, start, n) in pieces(offset, data.len() as u64) {
        let (now, later) = rest.split_at(n.min(rest.len()));
        rest = later;
        let slot = chunks.entry(idx).or_default();
        // A chunk nobody else holds (no snapshot, no reader's `Bytes`) is overwritten in
        // place; a shared one is copied first, unless the write replaces all of it.
        let mut buf = match std::mem::take(slot).try_into_mut() {
            Ok(owned) if owned.len() as u64 == CHUNK => owned,
            _ if now.len() as u64 == CHUNK => {
                *slot = Bytes::copy_from_slice(now);
                continue;
            }
            Err(shared) if !shared.is_empty() => BytesMut::from(&shared[..]),
            // A new chunk (the slot was empty).
            _ => BytesMut::zeroed(CHUNK as usize),
        };
        if let Some(dst) = buf.get_mut(start..start + now.len()) {
            dst.copy_from_slice(now);
        }
        *slot = buf.freeze();
    }
}

fn chunk_zero(chunks: &mut Chunks, offset: u64, len: u64) {
    for (idx, start, n) in pieces(offset, len) {
        if n as u64 == CHUNK {
            chunks.remove(&idx);
        } else if let Some(old) = chunks.get(&idx) {
            let mut buf = BytesMut::from(&old[..]);
            if let Some(dst) = buf.get_mut(start..start + n) {
                dst.fill(0);
            }
            chunks.insert(idx, buf.freeze());
        }
    }
}

fn chunk_truncate(chunks: &mut Chunks, size: u64) {
    let keep = size.div_ceil(CHUNK);
    chunks.retain(|idx, _| *idx < keep);
    if !size.is_multiple_of(CHUNK) {
        chunk_zero(chunks, size, CHUNK - size % CHUNK);
    }
}

impl ImageBackend for MemBackend {
    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes> {
        let chunks = self.chunks.read();
        let mut out = BytesMut::zeroed(usize::try_from(len).unwrap_or(0));
        let mut at = 0usize;
        for (idx, start, n) in pieces(offset, len) {
            if let (Some(src), Some(dst)) = (chunks.get(&idx), out.get_mut(at..at + n)) {
                if let Some(src) = src.get(start..start + n) {
                    dst.copy_from_slice(src);
                }
            }
            at += n;
        }
        Ok(out.freeze())
    }

    fn write(&self, offset: u64, data: &Bytes) -> ImageResult<()> {
        chunk_write(&mut self.chunks.write(), offset, data);
        Ok(())
    }

    fn zero(&self, offset: u64, len: u64) -> ImageResult<()> {
        chunk_zero(&mut self.chunks.write(), offset, len);
        Ok(())
    }

    fn resize(&self, old: u64, new: u64) -> ImageResult<()> {
        if new < old {
            chunk_truncate(&mut self.chunks.write(), new);
        }
        Ok(())
    }

    fn snap_save(&self, snap_id: u64, _size: u64) -> ImageResult<()> {
        let copy = self.chunks.read().clone();
        self.snaps.lock().insert(snap_id, copy);
        Ok(())
    }

    fn snap_restore(&self, snap_id: u64, size: u64, _current_size: u64) -> ImageResult<()> {
        let mut copy = self.snaps.lock().get(&snap_id).cloned().unwrap_or_default();
        chunk_truncate(&mut copy, size);
        *self.chunks.write() = copy;
        Ok(())
    }

    fn snap_delete(&self, snap_id: u64) -> ImageResult<()> {
        self.snaps.lock().remove(&snap_id);
        Ok(())
    }

    fn flush(&self) -> ImageResult<()> {
        Ok(())
    }

    fn save_meta(&self, _meta: &ImageMeta) -> ImageResult<()> {
        Ok(())
    }
}
