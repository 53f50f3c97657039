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

use journal_core::{scan_object, Entry};
use object_store_trait::{Hook, Intercept, MemStore, ObjectStore, Op, Result, StoreError};
use parking_lot::{Condvar, Mutex};

/// A `MemStore` that counts appends, can hold appends to chosen objects until released, and can
/// fail appends from a chosen count on (the [`Gate`] hook; reach it with `store.hook()`).
pub type GateStore = Intercept<MemStore, Gate>;

/// The hook of [`GateStore`]; only appends are affected.
#[derive(Debug)]
pub struct Gate {
    pub appends: AtomicU64,
    /// Objects whose appends block while listed here.
    held: Mutex<Vec<String>>,
    released: Condvar,
    /// Fail every append once `appends` reaches this number.
    fail_from: AtomicU64,
    /// Microseconds each append takes (a store with latency, as RADOS has).
    pub append_latency_us: AtomicU64,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            appends: AtomicU64::new(0),
            held: Mutex::new(Vec::new()),
            released: Condvar::new(),
            fail_from: AtomicU64::new(u64::MAX),
            append_latency_us: AtomicU64::new(0),
        }
    }
}

impl Gate {
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

impl Hook for Gate {
    fn before(&self, op: Op<'_>) -> Result<()> {
        let Op::Append { oid, .. } = op else {
            return Ok(());
        };
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
        Ok(())
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
