//! Helpers shared by the journal-client integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    dead_code
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use journal_core::{scan_object, Entry};
use object_store_trait::{
    AppendGuard, MemStore, ObjectStat, ObjectStore, OmapBatch, Result, StoreError, Watch,
};
use parking_lot::{Condvar, Mutex};

/// A `MemStore` wrapper that counts appends, can hold appends to chosen objects until released,
/// and can fail appends from a chosen count on.
#[derive(Debug, Default)]
pub struct GateStore {
    pub inner: MemStore,
    pub appends: AtomicU64,
    /// Objects whose appends block while listed here.
    held: Mutex<Vec<String>>,
    released: Condvar,
    /// Fail every append once `appends` reaches this number.
    fail_from: AtomicU64,
    /// Microseconds each append takes (a store with latency, as RADOS has).
    pub append_latency_us: AtomicU64,
}

impl GateStore {
    pub fn new() -> Self {
        GateStore {
            fail_from: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    pub fn hold(&self, oid: &str) {
        self.held.lock().push(oid.to_owned());
    }

    pub fn release(&self, oid: &str) {
        self.held.lock().retain(|o| o != oid);
        self.released.notify_all();
    }

    pub fn fail_appends_from(&self, n: u64) {
        self.fail_from.store(n, Ordering::SeqCst);
    }
}

impl ObjectStore for GateStore {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        {
            let mut held = self.held.lock();
            while held.iter().any(|o| o == oid) {
                self.released.wait(&mut held);
            }
        }
        let latency = self.append_latency_us.load(Ordering::SeqCst);
        if latency > 0 {
            std::thread::sleep(std::time::Duration::from_micros(latency));
        }
        let n = self.appends.fetch_add(1, Ordering::SeqCst);
        if n >= self.fail_from.load(Ordering::SeqCst) {
            return Err(StoreError::NoSpace {
                oid: oid.to_owned(),
            });
        }
        self.inner.append(oid, data, guard)
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.inner.read(oid, offset, len)
    }
    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        self.inner.stat(oid)
    }
    fn remove(&self, oid: &str) -> Result<()> {
        self.inner.remove(oid)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix)
    }
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        self.inner.write_full(oid, data)
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        self.inner.omap_get(oid, keys)
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        self.inner.omap_list(oid, start_after, prefix, max)
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        self.inner.omap_apply(oid, batch)
    }
    fn watch(&self, oid: &str) -> Result<Watch> {
        self.inner.watch(oid)
    }
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        self.inner.notify(oid, payload)
    }
}

/// Every entry of every data object of a journal: `object number -> entries in object order`,
/// decoded with journal-core's scanner (an independent reader of the format).
pub fn journal_objects(
    store: &dyn ObjectStore,
    pool: i64,
    journal_id: &str,
) -> BTreeMap<u64, Vec<Entry>> {
    let prefix = journal_core::layout::data_oid_prefix(pool, journal_id);
    let mut out = BTreeMap::new();
    for oid in store.list(&prefix).unwrap() {
        let n = journal_core::layout::parse_data_oid(pool, journal_id, &oid).unwrap();
        let size = store.stat(&oid).unwrap().size;
        let scan = scan_object(&store.read(&oid, 0, size).unwrap(), 0);
        assert!(scan.is_clean(), "object {oid} not clean");
        out.insert(n, scan.entries.into_iter().map(|e| e.entry).collect());
    }
    out
}

pub fn arc_store<S: ObjectStore>(s: S) -> Arc<S> {
    Arc::new(s)
}
