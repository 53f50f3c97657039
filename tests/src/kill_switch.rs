//! [`KillableStore`]: a store handle that can be "killed" at any moment, like a process killed
//! with SIGKILL — every operation from then on fails with [`StoreError::Closed`], so whatever the
//! holder had in flight never reaches the store. The store underneath lives on for the next
//! incarnation (which opens its own handle).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use object_store_trait::{
    AppendGuard, ObjectStat, ObjectStore, OmapBatch, Result, StoreError, Watch,
};

/// A killable handle over `S` (see the module docs).
#[derive(Debug)]
pub struct KillableStore<S> {
    inner: S,
    dead: AtomicBool,
}

impl<S: ObjectStore> KillableStore<S> {
    /// A live handle over `inner`.
    pub fn new(inner: S) -> Self {
        KillableStore {
            inner,
            dead: AtomicBool::new(false),
        }
    }

    /// Kills the handle: every later operation fails with [`StoreError::Closed`].
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// Whether [`KillableStore::kill`] was called.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    fn live(&self) -> Result<&S> {
        if self.is_dead() {
            return Err(StoreError::Closed);
        }
        Ok(&self.inner)
    }
}

impl<S: ObjectStore> ObjectStore for KillableStore<S> {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        self.live()?.append(oid, data, guard)
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.live()?.read(oid, offset, len)
    }
    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        self.live()?.stat(oid)
    }
    fn remove(&self, oid: &str) -> Result<()> {
        self.live()?.remove(oid)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.live()?.list(prefix)
    }
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        self.live()?.write_full(oid, data)
    }
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.live()?.write_at(oid, offset, data)
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        self.live()?.omap_get(oid, keys)
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        self.live()?.omap_list(oid, start_after, prefix, max)
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        self.live()?.omap_apply(oid, batch)
    }
    fn watch(&self, oid: &str) -> Result<Watch> {
        self.live()?.watch(oid)
    }
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        self.live()?.notify(oid, payload)
    }
    fn notify_crosses_processes(&self) -> bool {
        self.inner.notify_crosses_processes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use object_store_trait::MemStore;
    use std::sync::Arc;

    #[test]
    fn a_killed_handle_fails_everything_and_the_store_lives_on() {
        let mem = Arc::new(MemStore::new());
        let k = KillableStore::new(mem.clone());
        k.write_full("a", Bytes::from_static(b"x")).unwrap();
        k.kill();
        assert!(matches!(k.read("a", 0, 1), Err(StoreError::Closed)));
        assert!(matches!(
            k.write_full("a", Bytes::from_static(b"y")),
            Err(StoreError::Closed)
        ));
        assert_eq!(&mem.read("a", 0, 1).unwrap()[..], b"x");
    }
}
