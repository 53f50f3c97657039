//! `MemStore`: every object in process memory.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use crate::omap::list_range;
use crate::{
    check_guards, total_len, validate_oid, AppendGuard, ObjectStat, ObjectStore, OmapBatch, Result,
    StoreError, Watch, WatchRegistry,
};

#[derive(Debug, Default, Clone)]
struct Object {
    /// Data, kept as a list of immutable chunks so appends never copy earlier bytes.
    chunks: Vec<Bytes>,
    size: u64,
    omap: BTreeMap<String, Bytes>,
}

/// Past this many chunks an object is compacted into one buffer.
const MAX_CHUNKS: usize = 64;

impl Object {
    /// Replaces bytes `[offset, end)` with `data`, zero-filling a gap past the end. Chunks
    /// outside the range are kept as zero-copy slices.
    fn write_at(&mut self, offset: u64, end: u64, data: Bytes) {
        if self.overwrite_in_place(offset, end, &data) {
            return;
        }
        if offset == self.size && self.extend_in_place(&data) {
            self.size = end;
            return;
        }
        let mut head = Vec::with_capacity(self.chunks.len() + 3);
        let mut tail = Vec::new();
        let mut pos = 0u64;
        for chunk in self.chunks.drain(..) {
            let chunk_end = pos + chunk.len() as u64;
            if pos < offset {
                head.push(chunk.slice(..(offset.min(chunk_end) - pos) as usize));
            }
            if chunk_end > end {
                tail.push(chunk.slice(end.saturating_sub(pos) as usize..));
            }
            pos = chunk_end;
        }
        if offset > self.size {
            head.push(Bytes::from(vec![0u8; (offset - self.size) as usize]));
        }
        // Keep the caller's buffer only when nothing else references it: a slice of a larger
        // shared buffer (a journal entry's payload, say) is copied rather than pinned.
        head.push(if data.is_unique() {
            data
        } else {
            Bytes::copy_from_slice(&data)
        });
        head.extend(tail);
        head.retain(|c| !c.is_empty());
        self.size = self.size.max(end);
        self.chunks = head;
        if self.chunks.len() > MAX_CHUNKS {
            let whole = self.read(0, self.size);
            self.chunks = vec![whole];
        }
    }

    /// Appends `data` to the last chunk when nothing else references it (no reader holds a
    /// slice of it), so that sequential writes growing an object (an image object's first
    /// fill) cost amortized O(len) instead of a compaction of the whole object every
    /// [`MAX_CHUNKS`] writes. Returns whether it did.
    fn extend_in_place(&mut self, data: &Bytes) -> bool {
        let Some(last) = self.chunks.last_mut() else {
            return false;
        };
        match std::mem::take(last).try_into_mut() {
            Ok(mut owned) => {
                owned.extend_from_slice(data);
                *last = owned.freeze();
                true
            }
            Err(shared) => {
                *last = shared;
                false
            }
        }
    }

    /// Overwrites `[offset, end)` inside one chunk that nothing else references (no reader
    /// holds a slice of it), without reshaping the chunk list. Returns whether it did.
    fn overwrite_in_place(&mut self, offset: u64, end: u64, data: &Bytes) -> bool {
        let mut pos = 0u64;
        for chunk in &mut self.chunks {
            let chunk_end = pos + chunk.len() as u64;
            if offset >= pos && end <= chunk_end {
                let taken = std::mem::take(chunk);
                match taken.try_into_mut() {
                    Ok(mut owned) => {
                        let from = (offset - pos) as usize;
                        if let Some(dst) = owned.get_mut(from..from + data.len()) {
                            dst.copy_from_slice(data);
                        }
                        *chunk = owned.freeze();
                        return true;
                    }
                    Err(shared) => {
                        *chunk = shared;
                        return false;
                    }
                }
            }
            if chunk_end > offset {
                return false;
            }
            pos = chunk_end;
        }
        false
    }

    /// Appends `data` if `guard` holds; returns the offset it went to.
    fn append(&mut self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        guard.check_soft_max(oid, self.size)?;
        check_guards(oid, &self.omap, &guard.omap)?;
        let offset = self.size;
        self.size += total_len(data);
        self.chunks
            .extend(data.iter().filter(|b| !b.is_empty()).cloned());
        Ok(offset)
    }

    fn read(&self, offset: u64, len: u64) -> Bytes {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return Bytes::new();
        }
        let mut pos = 0u64;
        let mut parts: Vec<Bytes> = Vec::new();
        for chunk in &self.chunks {
            let chunk_end = pos + chunk.len() as u64;
            if chunk_end > offset && pos < end {
                let from = offset.saturating_sub(pos) as usize;
                let to = (end.min(chunk_end) - pos) as usize;
                parts.push(chunk.slice(from..to));
            }
            pos = chunk_end;
            if pos >= end {
                break;
            }
        }
        match parts.len() {
            1 => parts.pop().unwrap_or_default(),
            _ => {
                let mut out = BytesMut::with_capacity((end - offset) as usize);
                for p in parts {
                    out.extend_from_slice(&p);
                }
                out.freeze()
            }
        }
    }
}

/// Objects are spread over this many independently locked maps by a hash of their name, so
/// writers of different objects (splay objects, many images' journals) do not queue on one
/// lock.
const SHARDS: usize = 64;

type Shard = RwLock<BTreeMap<String, Object>>;

/// An in-process object store: fast, for tests and embedding. Durable for the life of the
/// process; [`MemStore::snapshot`] and [`MemStore::from_snapshot`] copy its whole state.
#[derive(Debug)]
pub struct MemStore {
    shards: [Shard; SHARDS],
    watches: WatchRegistry,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore {
            shards: std::array::from_fn(|_| Shard::default()),
            watches: WatchRegistry::new(),
        }
    }
}

/// A point-in-time copy of a [`MemStore`]'s objects: `oid -> (data, omap)`.
pub type MemSnapshot = BTreeMap<String, (Bytes, BTreeMap<String, Bytes>)>;

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        MemStore::default()
    }

    /// Copies every object's data and omap.
    pub fn snapshot(&self) -> MemSnapshot {
        let mut out = MemSnapshot::new();
        for shard in &self.shards {
            for (oid, obj) in shard.read().iter() {
                out.insert(oid.clone(), (obj.read(0, obj.size), obj.omap.clone()));
            }
        }
        out
    }

    /// A store holding exactly the objects of `snapshot`.
    pub fn from_snapshot(snapshot: MemSnapshot) -> Self {
        let store = MemStore::default();
        for (oid, (data, omap)) in snapshot {
            let size = data.len() as u64;
            let obj = Object {
                chunks: vec![data],
                size,
                omap,
            };
            store.shard(&oid).write().insert(oid, obj);
        }
        store
    }

    /// The map holding `oid` (FNV-1a of the name).
    fn shard(&self, oid: &str) -> &Shard {
        let hash = crate::fnv::fnv1a(oid.as_bytes());
        // In bounds: the index is a remainder modulo the array's length.
        #[allow(clippy::indexing_slicing)]
        &self.shards[(hash % SHARDS as u64) as usize]
    }
}

impl ObjectStore for MemStore {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        validate_oid(oid)?;
        let mut objects = self.shard(oid).write();
        // One lookup and no key allocation when the object exists (every append but the first).
        if let Some(obj) = objects.get_mut(oid) {
            return obj.append(oid, data, guard);
        }
        let mut obj = Object::default();
        let offset = obj.append(oid, data, guard)?;
        objects.insert(oid.to_owned(), obj);
        Ok(offset)
    }

    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        validate_oid(oid)?;
        let objects = self.shard(oid).read();
        let obj = objects.get(oid).ok_or_else(|| StoreError::NotFound {
            oid: oid.to_owned(),
        })?;
        Ok(obj.read(offset, len))
    }

    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        validate_oid(oid)?;
        let objects = self.shard(oid).read();
        let obj = objects.get(oid).ok_or_else(|| StoreError::NotFound {
            oid: oid.to_owned(),
        })?;
        Ok(ObjectStat { size: obj.size })
    }

    fn remove(&self, oid: &str) -> Result<()> {
        validate_oid(oid)?;
        match self.shard(oid).write().remove(oid) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound {
                oid: oid.to_owned(),
            }),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let objects = shard.read();
            out.extend(
                objects
                    .range(prefix.to_owned()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, _)| k.clone()),
            );
        }
        out.sort_unstable();
        Ok(out)
    }

    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        validate_oid(oid)?;
        let mut objects = self.shard(oid).write();
        let obj = objects.entry(oid.to_owned()).or_default();
        obj.size = data.len() as u64;
        obj.chunks = vec![data];
        Ok(())
    }

    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        validate_oid(oid)?;
        let end = crate::write_end(offset, data.len())?;
        let mut objects = self.shard(oid).write();
        // One lookup and no key allocation for an existing object.
        match objects.get_mut(oid) {
            Some(obj) => obj.write_at(offset, end, data),
            None => objects
                .entry(oid.to_owned())
                .or_default()
                .write_at(offset, end, data),
        }
        Ok(())
    }

    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        validate_oid(oid)?;
        let objects = self.shard(oid).read();
        let Some(obj) = objects.get(oid) else {
            return Ok(BTreeMap::new());
        };
        Ok(keys
            .iter()
            .filter_map(|k| obj.omap.get(*k).map(|v| ((*k).to_owned(), v.clone())))
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
        let objects = self.shard(oid).read();
        Ok(objects
            .get(oid)
            .map(|obj| list_range(&obj.omap, start_after, prefix, max))
            .unwrap_or_default())
    }

    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        validate_oid(oid)?;
        let mut objects = self.shard(oid).write();
        let empty = BTreeMap::new();
        let current = objects.get(oid).map_or(&empty, |o| &o.omap);
        check_guards(oid, current, &batch.guards)?;
        if batch.sets.is_empty() && !objects.contains_key(oid) {
            return Ok(());
        }
        let obj = objects.entry(oid.to_owned()).or_default();
        batch.apply_to(&mut obj.omap);
        Ok(())
    }

    fn watch(&self, oid: &str) -> Result<Watch> {
        validate_oid(oid)?;
        Ok(self.watches.watch(oid))
    }

    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        validate_oid(oid)?;
        Ok(self.watches.notify(oid, payload))
    }

    /// Every writer of a `MemStore` is in this process and shares its watch registry.
    fn notifications_complete(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// A write of a slice of a buffer the caller shares is copied, not kept: the store must
    /// not pin a large buffer (a journal entry's whole read buffer) for a small write. A
    /// buffer only the store would hold is kept as it is.
    #[test]
    fn shared_buffers_are_copied_not_pinned() {
        let store = MemStore::new();
        let big = Bytes::from(vec![7u8; 1 << 20]);
        store.write_at("o", 4096, big.slice(..4096)).unwrap();
        store.write_at("p", 0, big.slice(8192..12288)).unwrap();
        assert!(
            big.is_unique(),
            "the store kept a slice of the caller's buffer"
        );
        assert_eq!(store.read("o", 4096, 4096).unwrap(), big.slice(..4096));
        assert_eq!(store.read("p", 0, 4096).unwrap(), big.slice(8192..12288));
        let own = Bytes::from(vec![9u8; 4096]);
        let ptr = own.as_ptr();
        store.write_at("q", 0, own).unwrap();
        assert_eq!(store.read("q", 0, 4096).unwrap().as_ptr(), ptr);
    }

    /// Oracle: a plain byte vector. Overwrites go in place when nothing else holds the chunk,
    /// and never change bytes a reader already holds.
    #[test]
    fn overwrites_in_place_never_touch_bytes_a_reader_holds() {
        let store = MemStore::new();
        let mut model = vec![7u8; 1 << 16];
        store.write_full("o", Bytes::from(model.clone())).unwrap();
        for i in 0..200u64 {
            let off = (i * 4099) % ((1 << 16) - 512);
            let data = Bytes::from(vec![i as u8; 512]);
            let held = store.read("o", 0, 1 << 16).unwrap();
            let before = model.clone();
            store.write_at("o", off, data.clone()).unwrap();
            model[off as usize..off as usize + 512].copy_from_slice(&data);
            assert_eq!(held, Bytes::from(before), "write {i} changed a held read");
            drop(held);
            assert_eq!(
                store.read("o", 0, 1 << 16).unwrap(),
                Bytes::from(model.clone())
            );
        }
        // Nothing held: a one-chunk object stays one chunk however many overwrites it takes.
        store.write_full("o", Bytes::from(model.clone())).unwrap();
        for i in 0..500u64 {
            store
                .write_at("o", (i * 131) % 60_000, Bytes::from(vec![1u8; 100]))
                .unwrap();
            model[((i * 131) % 60_000) as usize..((i * 131) % 60_000) as usize + 100].fill(1);
        }
        let shard = store.shard("o").read();
        let chunks = shard.get("o").unwrap().chunks.len();
        drop(shard);
        assert_eq!(chunks, 1);
        assert_eq!(store.read("o", 0, 1 << 16).unwrap(), Bytes::from(model));
    }

    /// Oracle: a plain byte vector. Writes at the end of an object extend its last chunk in
    /// place when nothing else holds it, and never change bytes a reader already holds.
    #[test]
    fn appends_in_place_never_touch_bytes_a_reader_holds() {
        let store = MemStore::new();
        let mut model: Vec<u8> = Vec::new();
        for i in 0..300u64 {
            let len = 1 + (i * 37 % 700) as usize;
            let data = Bytes::from(vec![(i % 251) as u8 + 1; len]);
            // Every third write, a reader holds the whole object across the write.
            let held = (i % 3 == 0).then(|| store.read("o", 0, u64::MAX).unwrap_or_default());
            let before = model.clone();
            store
                .write_at("o", model.len() as u64, data.clone())
                .unwrap();
            model.extend_from_slice(&data);
            if let Some(held) = held {
                assert_eq!(held, Bytes::from(before), "write {i} changed a held read");
            }
            assert_eq!(
                store.read("o", 0, u64::MAX).unwrap(),
                Bytes::from(model.clone())
            );
            assert_eq!(store.stat("o").unwrap().size, model.len() as u64);
        }
        // Nothing held: sequential writes keep growing one chunk.
        store.write_full("p", Bytes::from(b"x".to_vec())).unwrap();
        let mut model = b"x".to_vec();
        for i in 0..500u64 {
            store
                .write_at("p", model.len() as u64, Bytes::from(vec![i as u8; 100]))
                .unwrap();
            model.extend_from_slice(&[i as u8; 100]);
        }
        let shard = store.shard("p").read();
        let chunks = shard.get("p").unwrap().chunks.len();
        drop(shard);
        assert_eq!(chunks, 1);
        assert_eq!(store.read("p", 0, u64::MAX).unwrap(), Bytes::from(model));
    }
}
