//! Random operation sequences run on DirStore and on MemStore (the reference implementation):
//! every result and the final state must agree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use bytes::Bytes;
use object_store_trait::{
    AppendGuard, DirStore, DirStoreOptions, MemStore, ObjectStore, OmapBatch, OmapCmp, OmapGuard,
    StoreError,
};
use proptest::prelude::*;

const OIDS: [&str; 3] = ["journal.a", "journal.b", "hdr"];
const KEYS: [&str; 4] = ["a", "b", "client_x", "n"];

#[derive(Debug, Clone)]
enum Op {
    Append(usize, Vec<Vec<u8>>, Option<u64>, Option<(usize, OmapCmp)>),
    WriteFull(usize, Vec<u8>),
    Remove(usize),
    Omap(
        usize,
        Vec<(usize, OmapCmp)>,
        Vec<usize>,
        Vec<(usize, Vec<u8>)>,
    ),
    Read(usize, u64, u64),
    Stat(usize),
    OmapList(usize, usize, &'static str, usize),
    List(&'static str),
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u64..4).prop_map(|n| n.to_le_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ]
}

fn cmp() -> impl Strategy<Value = OmapCmp> {
    prop_oneof![
        Just(OmapCmp::Absent),
        Just(OmapCmp::Present),
        value().prop_map(|v| OmapCmp::Equals(Bytes::from(v))),
        (0u64..4).prop_map(OmapCmp::U64AtMost),
        (0u64..4).prop_map(OmapCmp::U64AtLeast),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let oid = 0..OIDS.len();
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (
            oid.clone(),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..3),
            proptest::option::of(0u64..60),
            proptest::option::of((key.clone(), cmp())),
        )
            .prop_map(|(o, d, s, g)| Op::Append(o, d, s, g)),
        1 => (oid.clone(), proptest::collection::vec(any::<u8>(), 0..30)).prop_map(|(o, d)| Op::WriteFull(o, d)),
        1 => oid.clone().prop_map(Op::Remove),
        3 => (
            oid.clone(),
            proptest::collection::vec((key.clone(), cmp()), 0..2),
            proptest::collection::vec(key.clone(), 0..2),
            proptest::collection::vec((key.clone(), value()), 0..3),
        )
            .prop_map(|(o, g, r, s)| Op::Omap(o, g, r, s)),
        2 => (oid.clone(), 0u64..80, 0u64..80).prop_map(|(o, off, len)| Op::Read(o, off, len)),
        1 => oid.clone().prop_map(Op::Stat),
        1 => (oid.clone(), key, prop_oneof![Just(""), Just("c"), Just("n")], 0usize..4)
            .prop_map(|(o, k, p, m)| Op::OmapList(o, k, p, m)),
        1 => prop_oneof![Just(""), Just("journal."), Just("x")].prop_map(Op::List),
    ]
}

/// A result in a form both stores must agree on exactly.
fn outcome<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(StoreError::GuardFailed { key, reason, .. }) => format!("guard {key} {reason:?}"),
        Err(StoreError::Overflow { size, soft_max, .. }) => format!("overflow {size} {soft_max}"),
        Err(StoreError::NotFound { .. }) => "notfound".into(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn run(store: &dyn ObjectStore, op: &Op) -> String {
    match op {
        Op::Append(o, data, soft, guard) => {
            let bufs: Vec<Bytes> = data.iter().map(|d| Bytes::from(d.clone())).collect();
            let mut g = AppendGuard {
                soft_max_size: *soft,
                omap: Vec::new(),
            };
            if let Some((k, c)) = guard {
                g = g.with_omap_guard(OmapGuard {
                    key: KEYS[*k].into(),
                    cmp: c.clone(),
                });
            }
            outcome(store.append(OIDS[*o], &bufs, &g))
        }
        Op::WriteFull(o, d) => outcome(store.write_full(OIDS[*o], Bytes::from(d.clone()))),
        Op::Remove(o) => outcome(store.remove(OIDS[*o])),
        Op::Omap(o, guards, removes, sets) => {
            let mut batch = OmapBatch::new();
            for (k, c) in guards {
                batch.guard(KEYS[*k], c.clone());
            }
            for k in removes {
                batch.remove(KEYS[*k]);
            }
            for (k, v) in sets {
                batch.set(KEYS[*k], Bytes::from(v.clone()));
            }
            outcome(store.omap_apply(OIDS[*o], &batch))
        }
        Op::Read(o, off, len) => outcome(store.read(OIDS[*o], *off, *len)),
        Op::Stat(o) => outcome(store.stat(OIDS[*o])),
        Op::OmapList(o, k, p, m) => outcome(store.omap_list(OIDS[*o], KEYS[*k], p, *m)),
        Op::List(p) => outcome(store.list(p)),
    }
}

/// Every object: id, data, omap entries.
type State = Vec<(String, Bytes, Vec<(String, Bytes)>)>;

fn state(store: &dyn ObjectStore) -> State {
    store
        .list("")
        .unwrap()
        .into_iter()
        .map(|oid| {
            let data = store.read(&oid, 0, u64::MAX).unwrap();
            let omap = store.omap_list(&oid, "", "", usize::MAX).unwrap();
            (oid, data, omap)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn dirstore_matches_memstore(ops in proptest::collection::vec(op(), 1..40)) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DirStore::open(tmp.path(), DirStoreOptions::unsynced()).unwrap();
        let mem = MemStore::new();
        for (i, op) in ops.iter().enumerate() {
            prop_assert_eq!(run(&dir, op), run(&mem, op), "op {} {:?}", i, op);
        }
        prop_assert_eq!(state(&dir), state(&mem));
        // The same state survives closing and reopening the directory.
        drop(dir);
        let reopened = DirStore::open(tmp.path(), DirStoreOptions::default()).unwrap();
        prop_assert_eq!(state(&reopened), state(&mem));
    }
}
