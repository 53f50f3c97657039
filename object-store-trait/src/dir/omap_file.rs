//! The on-disk omap file of a [`super::DirStore`] object and the in-memory cache in front of it.
//!
//! # Format (all integers little-endian)
//!
//! ```text
//! magic       8 bytes  "RBDJOMP1"
//! generation  u64      differs for every rewrite of one object's omap (see below)
//! count       u32      number of entries
//! entries     count x { key_len u32, key (UTF-8), value_len u32, value }, keys strictly ascending
//! crc         u32      CRC32C of every byte before it
//! ```
//!
//! The file is only ever replaced whole (write a temporary file, sync, rename, sync the directory),
//! so a reader sees either the old or the new file. Anything that fails these checks is reported as
//! [`StoreError::Corrupt`], never silently treated as empty.
//!
//! The generation starts at a value unique to the object's creation and is incremented on every
//! rewrite, so `(inode, size, mtime, generation)` identifies one version of the file even if the
//! file system reuses an inode number within one timestamp tick; the cache is validated by a
//! `fstat` and a read of just the 20-byte header.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::{Result, StoreError};

const MAGIC: &[u8; 8] = b"RBDJOMP1";
const HEADER_LEN: usize = 8 + 8 + 4;
const CRC_LEN: usize = 4;
/// Cached omaps kept before the cache is flushed (bounds memory; omaps are small).
const CACHE_MAX_ENTRIES: usize = 4096;

/// A decoded omap file.
#[derive(Debug, Clone, Default)]
pub(crate) struct OmapImage {
    /// Version of this image (0 = the object has no omap file yet).
    pub(crate) generation: u64,
    /// The entries.
    pub(crate) map: Arc<BTreeMap<String, Bytes>>,
}

/// Serializes `map` with `generation`.
pub(crate) fn encode(generation: u64, map: &BTreeMap<String, Bytes>) -> Result<Vec<u8>> {
    let too_big = |what: &str| StoreError::InvalidArgument(format!("omap {what} too large"));
    let body: usize = map.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + body + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&generation.to_le_bytes());
    let count = u32::try_from(map.len()).map_err(|_| too_big("entry count"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for (key, value) in map {
        let klen = u32::try_from(key.len()).map_err(|_| too_big("key"))?;
        let vlen = u32::try_from(value.len()).map_err(|_| too_big("value"))?;
        out.extend_from_slice(&klen.to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&vlen.to_le_bytes());
        out.extend_from_slice(value);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A bounds-checked reader over untrusted bytes.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    }
}

fn corrupt(oid: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        oid: oid.to_owned(),
        detail: detail.into(),
    }
}

/// Generation stored in a header, if the header is well formed.
fn header_generation(header: &[u8]) -> Option<u64> {
    let mut cur = Cursor { rest: header };
    (cur.take(8)? == MAGIC).then_some(())?;
    cur.u64()
}

/// Parses and verifies a whole omap file.
pub(crate) fn decode(oid: &str, bytes: &[u8]) -> Result<OmapImage> {
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(corrupt(
            oid,
            format!("omap file too short ({} bytes)", bytes.len()),
        ));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored_crc = u32::from_le_bytes(
        crc_bytes
            .try_into()
            .map_err(|_| corrupt(oid, "omap crc missing"))?,
    );
    let actual_crc = crc32c::crc32c(body);
    if stored_crc != actual_crc {
        return Err(corrupt(
            oid,
            format!("omap crc mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}"),
        ));
    }
    let mut cur = Cursor { rest: body };
    let bad = |what: &str| corrupt(oid, format!("omap file: {what}"));
    if cur.take(8) != Some(MAGIC.as_slice()) {
        return Err(bad("bad magic"));
    }
    let generation = cur.u64().ok_or_else(|| bad("truncated header"))?;
    let count = cur.u32().ok_or_else(|| bad("truncated header"))?;
    let mut map = BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..count {
        let klen = cur.u32().ok_or_else(|| bad("truncated key length"))? as usize;
        let key = cur.take(klen).ok_or_else(|| bad("truncated key"))?;
        let key = std::str::from_utf8(key).map_err(|_| bad("key is not UTF-8"))?;
        let vlen = cur.u32().ok_or_else(|| bad("truncated value length"))? as usize;
        let value = cur.take(vlen).ok_or_else(|| bad("truncated value"))?;
        if last.as_deref().is_some_and(|prev| prev >= key) {
            return Err(bad("keys not strictly ascending"));
        }
        last = Some(key.to_owned());
        map.insert(key.to_owned(), Bytes::copy_from_slice(value));
    }
    if !cur.rest.is_empty() {
        return Err(bad("trailing bytes after the last entry"));
    }
    Ok(OmapImage {
        generation,
        map: Arc::new(map),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheKey {
    id: FileId,
    generation: u64,
}

/// What identifies one version of an omap file on disk (besides its generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileId {
    /// The identity of the file `meta` describes.
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

impl CacheKey {
    fn new(id: FileId, generation: u64) -> Self {
        CacheKey { id, generation }
    }
}

/// Decoded omaps keyed by object id, validated against the file on every use.
#[derive(Debug, Default)]
pub(crate) struct OmapCache {
    entries: Mutex<HashMap<String, (CacheKey, OmapImage)>>,
}

impl OmapCache {
    /// Loads the omap stored at `path` for `oid`: an empty image if the file does not exist,
    /// the cached image if the file's identity and generation match, otherwise the parsed file.
    pub(crate) fn load(&self, oid: &str, path: &Path) -> Result<OmapImage> {
        let io_err = |e| StoreError::io("read omap", oid, e);
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OmapImage::default()),
            Err(e) => return Err(io_err(e)),
        };
        let meta = file.metadata().map_err(io_err)?;
        let mut header = [0u8; HEADER_LEN];
        let header_ok = read_full_at(&file, &mut header, 0).map_err(io_err)? == HEADER_LEN;
        if header_ok {
            if let Some(generation) = header_generation(&header) {
                let key = CacheKey::new(FileId::of(&meta), generation);
                if let Some((cached_key, image)) = self.entries.lock().get(oid) {
                    if *cached_key == key {
                        return Ok(image.clone());
                    }
                }
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err)?;
        let image = decode(oid, &bytes)?;
        self.insert(oid, FileId::of(&meta), image.clone());
        Ok(image)
    }

    /// Records `image` as the content of the file identified by `id`.
    pub(crate) fn insert(&self, oid: &str, id: FileId, image: OmapImage) {
        let key = CacheKey::new(id, image.generation);
        let mut entries = self.entries.lock();
        if entries.len() >= CACHE_MAX_ENTRIES && !entries.contains_key(oid) {
            entries.clear();
        }
        entries.insert(oid.to_owned(), (key, image));
    }

    /// Forgets `oid` (after it was removed).
    pub(crate) fn forget(&self, oid: &str) {
        self.entries.lock().remove(oid);
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        match file.read_at(rest, offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use super::*;

    fn sample() -> BTreeMap<String, Bytes> {
        let mut map = BTreeMap::new();
        map.insert("client_".to_owned(), Bytes::from_static(b"\x01\x02"));
        map.insert("order".to_owned(), Bytes::from_static(&[24]));
        map.insert("empty".to_owned(), Bytes::new());
        map
    }

    #[test]
    fn layout_matches_the_documented_format() {
        let mut map = BTreeMap::new();
        map.insert("k".to_owned(), Bytes::from_static(b"vv"));
        let bytes = encode(7, &map).unwrap();
        // Hand-assembled from the format description in the module docs.
        let mut want = Vec::new();
        want.extend_from_slice(b"RBDJOMP1");
        want.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[1, 0, 0, 0]);
        want.extend_from_slice(&[1, 0, 0, 0, b'k', 2, 0, 0, 0, b'v', b'v']);
        let crc = crc32c::crc32c(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, want);
        let image = decode("o", &want).unwrap();
        assert_eq!(image.generation, 7);
        assert_eq!(*image.map, map);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_detected() {
        let bytes = encode(3, &sample()).unwrap();
        for len in 0..bytes.len() {
            let err = decode("o", &bytes[..len]).unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt { .. }),
                "len {len}: {err}"
            );
        }
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[byte] ^= 1 << bit;
                assert!(decode("o", &flipped).is_err(), "flip {byte}:{bit} accepted");
            }
        }
    }

    #[test]
    fn huge_lengths_with_a_valid_crc_do_not_allocate_or_panic() {
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&1u64.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode("o", &body),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
