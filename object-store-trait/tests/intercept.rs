//! `Intercept` forwards every trait method as itself and calls its hook around each operation;
//! `Checked` (an `Intercept`) latches fatal mutation failures.
//!
//! Oracles: the conformance suite (the crate's contract) for the wrapped stores; a probe store
//! that records which of its trait methods were called, checked against the list of the trait's
//! methods written out by hand; the inner store's own answers to the capability queries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store_trait::{
    AppendGuard, Checked, DirStore, DirStoreOptions, Hook, Intercept, MemStore, NoopHook,
    ObjectStat, ObjectStore, OmapBatch, Op, OpKind, Result, StoreError, SyncPolicy, Watch,
};
use parking_lot::Mutex;

/// Records every operation it sees, before and after.
#[derive(Debug, Default)]
struct Log {
    seen: Mutex<Vec<(&'static str, OpKind, String, bool)>>,
}

impl Hook for Log {
    fn before(&self, op: Op<'_>) -> Result<()> {
        self.seen
            .lock()
            .push(("before", op.kind(), op.oid().to_owned(), true));
        Ok(())
    }
    fn after(&self, op: Op<'_>, outcome: std::result::Result<(), &StoreError>) {
        self.seen
            .lock()
            .push(("after", op.kind(), op.oid().to_owned(), outcome.is_ok()));
    }
}

mod noop_over_mem {
    use super::*;
    object_store_trait::conformance_tests!(|| {
        Arc::new(Intercept::<_, NoopHook>::new(MemStore::new())) as Arc<dyn ObjectStore>
    });
}

mod logging_over_dir {
    use super::*;

    fn factory() -> impl Fn() -> Arc<dyn ObjectStore> {
        let tmp = tempfile::tempdir().unwrap();
        let n = AtomicUsize::new(0);
        move || {
            let path = tmp
                .path()
                .join(n.fetch_add(1, Ordering::SeqCst).to_string());
            // Unsynced with pread: `write_at` takes DirStore's in-place path.
            let opts = DirStoreOptions {
                sync: SyncPolicy::None,
                mmap_reads: false,
                ..DirStoreOptions::default()
            };
            let dir = DirStore::open(path, opts).unwrap();
            Arc::new(Intercept::<_, Log>::new(dir)) as Arc<dyn ObjectStore>
        }
    }

    object_store_trait::conformance_tests!(factory());
}

/// A store that records which of its methods were called (by the trait method's name) and
/// answers the capability queries with the opposite of the trait's defaults.
#[derive(Debug, Default)]
struct Probe {
    mem: MemStore,
    calls: Mutex<Vec<&'static str>>,
}

impl Probe {
    fn called(&self, name: &'static str) {
        self.calls.lock().push(name);
    }
}

impl ObjectStore for Probe {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        self.called("append");
        self.mem.append(oid, data, guard)
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.called("read");
        self.mem.read(oid, offset, len)
    }
    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        self.called("stat");
        self.mem.stat(oid)
    }
    fn remove(&self, oid: &str) -> Result<()> {
        self.called("remove");
        self.mem.remove(oid)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.called("list");
        self.mem.list(prefix)
    }
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        self.called("write_full");
        self.mem.write_full(oid, data)
    }
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.called("write_at");
        self.mem.write_at(oid, offset, data)
    }
    fn write_at_unsynced(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.called("write_at_unsynced");
        self.mem.write_at(oid, offset, data)
    }
    fn sync_objects(&self, oids: &[String]) -> Result<()> {
        self.called("sync_objects");
        self.mem.sync_objects(oids)
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        self.called("omap_get");
        self.mem.omap_get(oid, keys)
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        self.called("omap_list");
        self.mem.omap_list(oid, start_after, prefix, max)
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        self.called("omap_apply");
        self.mem.omap_apply(oid, batch)
    }
    fn watch(&self, oid: &str) -> Result<Watch> {
        self.called("watch");
        self.mem.watch(oid)
    }
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        self.called("notify");
        self.mem.notify(oid, payload)
    }
    fn notify_crosses_processes(&self) -> bool {
        self.called("notify_crosses_processes");
        true
    }
    fn notifications_complete(&self) -> bool {
        self.called("notifications_complete");
        true
    }
    fn notify_is_cheap(&self) -> bool {
        self.called("notify_is_cheap");
        false
    }
}

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

/// Calls every method of the trait once, in trait order, on `store`.
fn call_every_method(store: &dyn ObjectStore) -> (bool, bool, bool) {
    store
        .append("o", &[b(b"abc")], &AppendGuard::none())
        .unwrap();
    assert_eq!(&store.read("o", 0, 10).unwrap()[..], b"abc");
    assert_eq!(store.stat("o").unwrap().size, 3);
    store.write_full("p", b(b"gone")).unwrap();
    store.remove("p").unwrap();
    assert_eq!(store.list("").unwrap(), vec!["o".to_owned()]);
    store.write_full("o", b(b"xyz")).unwrap();
    store.write_at("o", 1, b(b"Q")).unwrap();
    store.write_at_unsynced("o", 2, b(b"R")).unwrap();
    store.sync_objects(&["o".to_owned()]).unwrap();
    let mut batch = OmapBatch::new();
    batch.set("k", b(b"v"));
    assert!(store.omap_get("o", &["k"]).unwrap().is_empty());
    assert!(store.omap_list("o", "", "", 10).unwrap().is_empty());
    store.omap_apply("o", &batch).unwrap();
    let watch = store.watch("o").unwrap();
    assert_eq!(store.notify("o", b(b"hi")).unwrap(), 1);
    drop(watch);
    assert_eq!(&store.read("o", 0, 10).unwrap()[..], b"xQR");
    (
        store.notify_crosses_processes(),
        store.notifications_complete(),
        store.notify_is_cheap(),
    )
}

/// The capability queries among the trait's methods (not operations: no hook call).
fn is_capability(name: &str) -> bool {
    name.starts_with("notify_") || name == "notifications_complete"
}

/// The hook's name for a trait method: an unsynced write is a `write_at` to hooks.
fn kind_name(name: &str) -> &str {
    if name == "write_at_unsynced" {
        "write_at"
    } else {
        name
    }
}

/// The trait's methods, in the order `call_every_method` calls them.
const EXPECTED: &[&str] = &[
    "append",
    "read",
    "stat",
    "write_full",
    "remove",
    "list",
    "write_full",
    "write_at",
    "write_at_unsynced",
    "sync_objects",
    "omap_get",
    "omap_list",
    "omap_apply",
    "watch",
    "notify",
    "read",
    "notify_crosses_processes",
    "notifications_complete",
    "notify_is_cheap",
];

#[test]
fn every_method_reaches_the_inner_store_as_itself() {
    let store = Intercept::<_, Log>::new(Probe::default());
    let caps = call_every_method(&store);
    // The probe's capabilities are the opposite of the defaults: a wrapper that left any
    // query to the trait's default would answer (false, false, true).
    assert_eq!(caps, (true, true, false));
    // A `write_at` left to the default would reach the probe as stat + read + write_full.
    assert_eq!(*store.inner().calls.lock(), EXPECTED);

    // The hook saw each operation (not the capability queries) before and after it ran, with
    // the object it was on (the prefix for `list`).
    let want: Vec<(&str, &str)> = EXPECTED
        .iter()
        .copied()
        .filter(|n| !is_capability(n))
        .enumerate()
        .map(|(i, name)| match (i, name) {
            (3 | 4, _) => (name, "p"),
            (_, "list") => (name, ""),
            _ => (name, "o"),
        })
        .collect();
    let seen = store.hook().seen.lock().clone();
    let mut expected_log = Vec::new();
    for (name, oid) in &want {
        let kind = *OpKind::ALL
            .iter()
            .find(|k| k.name() == kind_name(name))
            .unwrap();
        expected_log.push(("before", kind, (*oid).to_owned(), true));
        expected_log.push(("after", kind, (*oid).to_owned(), true));
    }
    assert_eq!(seen, expected_log);
}

#[test]
fn op_kinds_cover_every_operation_once() {
    let names: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
    let mut ops: Vec<&str> = EXPECTED
        .iter()
        .copied()
        .filter(|n| !is_capability(n))
        .map(kind_name)
        .collect();
    ops.sort_unstable();
    ops.dedup();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ops);
    let mutations: Vec<&str> = OpKind::ALL
        .iter()
        .filter(|k| k.is_mutation())
        .map(|k| k.name())
        .collect();
    assert_eq!(
        mutations,
        [
            "append",
            "remove",
            "write_full",
            "write_at",
            "sync_objects",
            "omap_apply"
        ]
    );
}

#[test]
fn capability_queries_match_the_inner_store() {
    let mem = MemStore::new();
    let wrapped = Intercept::<_, NoopHook>::new(MemStore::new());
    assert_eq!(
        wrapped.notify_crosses_processes(),
        mem.notify_crosses_processes()
    );
    assert_eq!(wrapped.notify_is_cheap(), mem.notify_is_cheap());

    let tmp = tempfile::tempdir().unwrap();
    let dir = DirStore::open(tmp.path().join("d"), DirStoreOptions::default()).unwrap();
    let (crosses, cheap) = (dir.notify_crosses_processes(), dir.notify_is_cheap());
    let wrapped = Intercept::<_, NoopHook>::new(dir);
    assert_eq!(wrapped.notify_crosses_processes(), crosses);
    assert_eq!(wrapped.notify_is_cheap(), cheap);

    // Through an `Arc<dyn ObjectStore>` inner and a `Checked`, too.
    let probe: Arc<dyn ObjectStore> = Arc::new(Probe::default());
    let wrapped = Checked::new(Intercept::<_, Log>::new(probe));
    assert!(wrapped.notify_crosses_processes());
    assert!(!wrapped.notify_is_cheap());
}

/// Refuses the chosen kinds of operation with `err()`.
#[derive(Debug)]
struct Refuse {
    kinds: Vec<OpKind>,
    err: fn() -> StoreError,
}

impl Hook for Refuse {
    fn before(&self, op: Op<'_>) -> Result<()> {
        if self.kinds.contains(&op.kind()) {
            return Err((self.err)());
        }
        Ok(())
    }
}

#[test]
fn a_refused_operation_never_reaches_the_inner_store() {
    let hook = Arc::new(Log::default());
    let store = Intercept::with_hook(
        Intercept::with_hook(
            MemStore::new(),
            Refuse {
                kinds: vec![OpKind::WriteAt, OpKind::Notify],
                err: || StoreError::Closed,
            },
        ),
        Arc::clone(&hook),
    );
    store.write_full("o", b(b"abc")).unwrap();
    assert!(matches!(
        store.write_at("o", 0, b(b"X")),
        Err(StoreError::Closed)
    ));
    let watch = store.inner().inner().watch("o").unwrap();
    assert!(matches!(
        store.notify("o", b(b"n")),
        Err(StoreError::Closed)
    ));
    assert!(
        watch.receiver().try_recv().is_err(),
        "a refused notify was delivered"
    );
    assert_eq!(&store.inner().inner().read("o", 0, 10).unwrap()[..], b"abc");
    // The outer hook saw the inner hook's refusals as failures of the operations.
    let outcomes: Vec<(OpKind, bool)> = hook
        .seen
        .lock()
        .iter()
        .filter(|e| e.0 == "after")
        .map(|e| (e.1, e.3))
        .collect();
    assert_eq!(
        outcomes,
        [
            (OpKind::WriteFull, true),
            (OpKind::WriteAt, false),
            (OpKind::Notify, false)
        ]
    );
}

#[test]
fn checked_latches_the_first_fatal_mutation_failure() {
    let io = || StoreError::io("write", "o", std::io::Error::from_raw_os_error(5));
    // Writes fail with EIO below the Checked; appends and everything else work.
    let store = Checked::new(Intercept::with_hook(
        MemStore::new(),
        Refuse {
            kinds: vec![OpKind::WriteFull],
            err: io,
        },
    ));
    store
        .append("o", &[b(b"ab")], &AppendGuard::none())
        .unwrap();
    // Protocol refusals do not poison.
    assert!(matches!(
        store.read("missing", 0, 1),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.remove("missing"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.append("o", &[b(b"c")], &AppendGuard::soft_max(1)),
        Err(StoreError::Overflow { .. })
    ));
    assert_eq!(store.poisoned(), None);

    assert!(matches!(
        store.write_full("o", b(b"x")),
        Err(StoreError::Io { .. })
    ));
    let first = store.poisoned().expect("poisoned");
    assert_eq!(first, io().to_string());
    // Every later mutation is refused, whatever it is; reads and notifications still work.
    for refused in [
        store
            .append("o", &[b(b"c")], &AppendGuard::none())
            .map(|_| ()),
        store.write_at("o", 0, b(b"z")),
        store.omap_apply("o", &OmapBatch::new()),
        store.remove("o"),
    ] {
        match refused {
            Err(StoreError::Poisoned { first: f }) => assert_eq!(f, first),
            other => panic!("expected Poisoned, got {other:?}"),
        }
    }
    assert_eq!(&store.read("o", 0, 10).unwrap()[..], b"ab");
    assert_eq!(store.notify("o", b(b"n")).unwrap(), 0);
    assert_eq!(store.inner().inner().stat("o").unwrap().size, 2);
}
