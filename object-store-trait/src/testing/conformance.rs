//! A conformance suite for [`ObjectStore`] implementations.
//!
//! Every public function checks one part of the contract documented in the crate root against a
//! simple model (a `Vec<u8>` per object, a `BTreeMap` per omap) and panics on a violation. Each
//! takes a factory that returns a *fresh, empty* store. [`run_all`] runs them all in turn;
//! [`crate::conformance_tests!`] expands to one `#[test]` per check:
//!
//! ```no_run
//! use std::sync::Arc;
//! use object_store_trait::{MemStore, ObjectStore};
//!
//! object_store_trait::conformance_tests!(|| Arc::new(MemStore::new()) as Arc<dyn ObjectStore>);
//! # fn main() {}
//! ```

// This module is test support: its job is to panic with a clear message when a store breaks the
// contract.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use bytes::Bytes;

use crate::{
    AppendGuard, GuardFailure, ObjectStore, ObjectStoreExt, OmapBatch, OmapCmp, OmapGuard,
    StoreError,
};

/// Builds a fresh, empty store.
pub type Factory<'a> = &'a dyn Fn() -> Arc<dyn ObjectStore>;

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

fn u64v(v: u64) -> Bytes {
    Bytes::copy_from_slice(&v.to_le_bytes())
}

fn all_omap(store: &dyn ObjectStore, oid: &str) -> BTreeMap<String, Bytes> {
    store
        .omap_list(oid, "", "", usize::MAX)
        .unwrap()
        .into_iter()
        .collect()
}

fn assert_guard_failed(result: crate::Result<()>, key: &str, reason: GuardFailure) {
    match result {
        Err(StoreError::GuardFailed {
            key: k, reason: r, ..
        }) => {
            assert_eq!(k, key, "guard failure names the wrong key");
            assert_eq!(r, reason, "guard failure on {key} has the wrong reason");
        }
        other => panic!("expected GuardFailed({key}, {reason:?}), got {other:?}"),
    }
}

/// Appends return the offset of their first byte; data of several buffers is concatenated.
pub fn append_offsets(factory: Factory<'_>) {
    let store = factory();
    let mut model = Vec::new();
    let batches: [&[&[u8]]; 4] = [&[b"abc"], &[b"de", b"", b"fgh"], &[b""], &[b"i", b"jk"]];
    for batch in batches {
        let bufs: Vec<Bytes> = batch.iter().map(|s| b(s)).collect();
        let offset = store.append("obj", &bufs, &AppendGuard::none()).unwrap();
        assert_eq!(offset, model.len() as u64, "append offset");
        for s in batch {
            model.extend_from_slice(s);
        }
    }
    assert_eq!(store.read_all("obj").unwrap(), model);
    assert_eq!(store.stat("obj").unwrap().size, model.len() as u64);
}

/// An empty append creates a missing object (size 0).
pub fn empty_append_creates(factory: Factory<'_>) {
    let store = factory();
    assert_eq!(store.append("e", &[], &AppendGuard::none()).unwrap(), 0);
    assert_eq!(store.stat("e").unwrap().size, 0);
    assert_eq!(store.list("").unwrap(), vec!["e".to_owned()]);
}

/// Soft limit: below it the append happens (even if it then goes past the limit); at or above
/// it the append is refused with `Overflow` and nothing is written or created.
pub fn soft_limit(factory: Factory<'_>) {
    let store = factory();
    // Missing object has size 0: limit 0 refuses (and does not create), limit 1 accepts.
    let err = store
        .append("o", &[b(b"x")], &AppendGuard::soft_max(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Overflow {
                size: 0,
                soft_max: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(store.stat("o").unwrap_err().is_not_found());
    store
        .append("o", &[b(b"0123456789")], &AppendGuard::soft_max(1))
        .unwrap();
    // size 10: limit 11 accepts and may overshoot.
    let off = store
        .append("o", &[b(b"abcdef")], &AppendGuard::soft_max(11))
        .unwrap();
    assert_eq!(off, 10);
    // size 16: limit 16 (at) and 5 (below the size) refuse.
    for limit in [16, 5] {
        match store.append("o", &[b(b"zz")], &AppendGuard::soft_max(limit)) {
            Err(StoreError::Overflow { size, soft_max, .. }) => {
                assert_eq!((size, soft_max), (16, limit));
            }
            other => panic!("limit {limit}: expected Overflow, got {other:?}"),
        }
    }
    assert_eq!(store.read_all("o").unwrap(), &b"0123456789abcdef"[..]);
    // limit 17 accepts again.
    assert_eq!(
        store
            .append("o", &[b(b"!")], &AppendGuard::soft_max(17))
            .unwrap(),
        16
    );
}

/// Omap guards on an append: a failing guard writes nothing (and creates nothing).
pub fn append_omap_guards(factory: Factory<'_>) {
    let store = factory();
    let guard = AppendGuard::none().with_omap_guard(OmapGuard {
        key: "open".into(),
        cmp: OmapCmp::Present,
    });
    assert_guard_failed(
        store.append("a", &[b(b"x")], &guard).map(|_| ()),
        "open",
        GuardFailure::Missing,
    );
    assert!(
        store.stat("a").unwrap_err().is_not_found(),
        "created by failed append"
    );
    let mut batch = OmapBatch::new();
    batch.set("open", b(b"1"));
    store.omap_apply("a", &batch).unwrap();
    assert_eq!(store.append("a", &[b(b"x")], &guard).unwrap(), 0);
    let closed = AppendGuard::soft_max(100).with_omap_guard(OmapGuard {
        key: "open".into(),
        cmp: OmapCmp::Absent,
    });
    assert_guard_failed(
        store.append("a", &[b(b"y")], &closed).map(|_| ()),
        "open",
        GuardFailure::Exists,
    );
    assert_eq!(store.read_all("a").unwrap(), &b"x"[..]);
}

/// Reads: exact, short at the end, empty at/past the end, `NotFound` for missing objects.
pub fn read_ranges(factory: Factory<'_>) {
    let store = factory();
    assert!(store.read("missing", 0, 10).unwrap_err().is_not_found());
    let model: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    for chunk in model.chunks(97) {
        store
            .append("r", &[b(chunk)], &AppendGuard::none())
            .unwrap();
    }
    let size = model.len() as u64;
    for (off, len) in [
        (0, 0),
        (0, 1),
        (5, 200),
        (96, 2),
        (990, 100),
        (999, 1),
        (1000, 5),
        (5000, 5),
        (0, u64::MAX),
        (7, u64::MAX),
    ] {
        let got = store.read("r", off, len).unwrap();
        let start = off.min(size) as usize;
        let end = off.saturating_add(len).min(size) as usize;
        assert_eq!(&got[..], &model[start..end], "read({off}, {len})");
    }
}

/// Large reads (which backends may serve differently, e.g. from a memory map) return exact bytes.
pub fn large_reads(factory: Factory<'_>) {
    let store = factory();
    let mut model = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for i in 0..6 {
        let chunk: Vec<u8> = (0..(300_000 + i * 1111))
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        store
            .append("big", &[b(&chunk)], &AppendGuard::none())
            .unwrap();
        model.extend_from_slice(&chunk);
    }
    assert_eq!(store.read_all("big").unwrap(), model);
    let got = store.read("big", 299_999, 700_001).unwrap();
    assert_eq!(&got[..], &model[299_999..1_000_000]);
    let tail = store
        .read("big", model.len() as u64 - 400_000, 1 << 30)
        .unwrap();
    assert_eq!(&got[..10], &model[299_999..300_009]);
    assert_eq!(&tail[..], &model[model.len() - 400_000..]);
    // Earlier large reads stay valid after more appends and a replacement.
    store
        .append("big", &[b(b"more")], &AppendGuard::none())
        .unwrap();
    store.write_full("big", b(b"small")).unwrap();
    assert_eq!(&tail[..], &model[model.len() - 400_000..]);
    assert_eq!(store.read_all("big").unwrap(), &b"small"[..]);
}

/// `stat`: `NotFound` for missing objects, data size otherwise, 0 for omap-only objects.
pub fn stat_sizes(factory: Factory<'_>) {
    let store = factory();
    assert!(store.stat("s").unwrap_err().is_not_found());
    store
        .append("s", &[b(b"12345")], &AppendGuard::none())
        .unwrap();
    assert_eq!(store.stat("s").unwrap().size, 5);
    let mut batch = OmapBatch::new();
    batch.set("k", b(b"v"));
    store.omap_apply("m", &batch).unwrap();
    assert_eq!(store.stat("m").unwrap().size, 0);
    assert_eq!(store.read("m", 0, 10).unwrap().len(), 0);
}

/// `remove` deletes data and omap; `NotFound` when missing; a recreated object starts empty.
pub fn remove_object(factory: Factory<'_>) {
    let store = factory();
    assert!(store.remove("x").unwrap_err().is_not_found());
    store
        .append("x", &[b(b"data")], &AppendGuard::none())
        .unwrap();
    let mut batch = OmapBatch::new();
    batch.set("k", b(b"v"));
    store.omap_apply("x", &batch).unwrap();
    store
        .append("y", &[b(b"other")], &AppendGuard::none())
        .unwrap();
    store.remove("x").unwrap();
    assert!(store.stat("x").unwrap_err().is_not_found());
    assert!(store.read("x", 0, 1).unwrap_err().is_not_found());
    assert!(store.omap_get("x", &["k"]).unwrap().is_empty());
    assert_eq!(store.list("").unwrap(), vec!["y".to_owned()]);
    assert!(store.remove("x").unwrap_err().is_not_found());
    store
        .append("x", &[b(b"new")], &AppendGuard::none())
        .unwrap();
    assert_eq!(store.read_all("x").unwrap(), &b"new"[..]);
    assert!(all_omap(&*store, "x").is_empty(), "omap survived remove");
    assert_eq!(store.read_all("y").unwrap(), &b"other"[..]);
}

/// `list(prefix)`: exactly the existing objects with that prefix, sorted.
pub fn list_prefix(factory: Factory<'_>) {
    let store = factory();
    assert!(store.list("").unwrap().is_empty());
    let names = [
        "journal.img.12",
        "journal.img.2",
        "rbd_header.x",
        "journal.img.1",
        "journal.",
        "journal_data",
        "a",
    ];
    for (i, name) in names.iter().enumerate() {
        if i % 2 == 0 {
            store
                .append(name, &[b(b"d")], &AppendGuard::none())
                .unwrap();
        } else {
            let mut batch = OmapBatch::new();
            batch.set("k", b(b"v"));
            store.omap_apply(name, &batch).unwrap();
        }
    }
    for prefix in ["", "journal.", "journal.img.1", "journal", "zzz", "a"] {
        let want: BTreeSet<String> = names
            .iter()
            .filter(|n| n.starts_with(prefix))
            .map(|n| n.to_string())
            .collect();
        let got = store.list(prefix).unwrap();
        assert_eq!(
            got,
            want.into_iter().collect::<Vec<_>>(),
            "list({prefix:?})"
        );
    }
}

/// `write_full` replaces the data (longer or shorter), creates missing objects, keeps the omap.
pub fn write_full_replaces(factory: Factory<'_>) {
    let store = factory();
    store.write_full("w", b(b"first version")).unwrap();
    assert_eq!(store.read_all("w").unwrap(), &b"first version"[..]);
    let mut batch = OmapBatch::new();
    batch.set("keep", b(b"me"));
    store.omap_apply("w", &batch).unwrap();
    store.write_full("w", b(b"2nd")).unwrap();
    assert_eq!(store.read_all("w").unwrap(), &b"2nd"[..]);
    assert_eq!(store.stat("w").unwrap().size, 3);
    assert_eq!(store.omap_get_one("w", "keep").unwrap(), Some(b(b"me")));
    assert_eq!(
        store.append("w", &[b(b"+")], &AppendGuard::none()).unwrap(),
        3
    );
    store.write_full("w", Bytes::new()).unwrap();
    assert_eq!(store.stat("w").unwrap().size, 0);
}

/// `omap_get`: present keys only; missing object gives an empty map.
pub fn omap_get_keys(factory: Factory<'_>) {
    let store = factory();
    assert!(store.omap_get("none", &["a"]).unwrap().is_empty());
    let mut batch = OmapBatch::new();
    batch.set("a", b(b"1")).set("b", b(b"")).set("c", b(b"3"));
    store.omap_apply("o", &batch).unwrap();
    let got = store.omap_get("o", &["a", "b", "zz"]).unwrap();
    let want: BTreeMap<String, Bytes> = [("a".into(), b(b"1")), ("b".into(), b(b""))].into();
    assert_eq!(got, want);
    assert_eq!(store.omap_get_one("o", "c").unwrap(), Some(b(b"3")));
    assert_eq!(store.omap_get_one("o", "d").unwrap(), None);
    assert!(store.omap_get("o", &[]).unwrap().is_empty());
}

/// `omap_list` honours `start_after`, `prefix` and `max`, in key order.
pub fn omap_list_ranges(factory: Factory<'_>) {
    let store = factory();
    let keys = [
        "client_",
        "client_a",
        "client_b",
        "order",
        "splay_width",
        "tag_1",
        "tag_10",
        "tag_2",
        "active_set",
    ];
    let mut batch = OmapBatch::new();
    for (i, k) in keys.iter().enumerate() {
        batch.set(*k, u64v(i as u64));
    }
    store.omap_apply("h", &batch).unwrap();
    let model: BTreeMap<String, Bytes> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_string(), u64v(i as u64)))
        .collect();
    for start_after in ["", "client_", "client_a", "m", "tag_1", "zzz"] {
        for prefix in ["", "client_", "tag_", "t", "x"] {
            for max in [0, 1, 2, 100] {
                let want: Vec<(String, Bytes)> = model
                    .iter()
                    .filter(|(k, _)| k.as_str() > start_after && k.starts_with(prefix))
                    .take(max)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let got = store.omap_list("h", start_after, prefix, max).unwrap();
                assert_eq!(got, want, "omap_list({start_after:?}, {prefix:?}, {max})");
            }
        }
    }
    assert!(store.omap_list("missing", "", "", 10).unwrap().is_empty());
}

/// Omap batches are all-or-nothing; removes happen before sets; a later set wins.
pub fn omap_batch_atomicity(factory: Factory<'_>) {
    let store = factory();
    // A batch of only removes on a missing object succeeds and creates nothing.
    let mut batch = OmapBatch::new();
    batch.remove("nothing");
    store.omap_apply("b", &batch).unwrap();
    assert!(store.stat("b").unwrap_err().is_not_found());
    let mut batch = OmapBatch::new();
    batch.set("a", b(b"1")).set("b", b(b"2")).set("a", b(b"3"));
    store.omap_apply("b", &batch).unwrap();
    let mut model: BTreeMap<String, Bytes> = [("a".into(), b(b"3")), ("b".into(), b(b"2"))].into();
    assert_eq!(all_omap(&*store, "b"), model);
    // Second guard fails: nothing of the batch is applied.
    let mut batch = OmapBatch::new();
    batch
        .assert_present("a")
        .assert_absent("b")
        .remove("a")
        .set("c", b(b"new"));
    assert_guard_failed(store.omap_apply("b", &batch), "b", GuardFailure::Exists);
    assert_eq!(all_omap(&*store, "b"), model);
    // Remove and set of the same key: the set wins (removes first).
    let mut batch = OmapBatch::new();
    batch
        .remove("b")
        .set("b", b(b"again"))
        .remove("a")
        .remove("ghost");
    store.omap_apply("b", &batch).unwrap();
    model.remove("a");
    model.insert("b".into(), b(b"again"));
    assert_eq!(all_omap(&*store, "b"), model);
    // Guards against a missing object see an empty omap; failure creates nothing.
    let mut batch = OmapBatch::new();
    batch.assert_present("x").set("y", b(b"1"));
    assert_guard_failed(
        store.omap_apply("fresh", &batch),
        "x",
        GuardFailure::Missing,
    );
    assert!(store.stat("fresh").unwrap_err().is_not_found());
    // Omap changes never touch the data.
    store
        .append("b", &[b(b"data")], &AppendGuard::none())
        .unwrap();
    let mut batch = OmapBatch::new();
    batch.set("z", b(b"z"));
    store.omap_apply("b", &batch).unwrap();
    assert_eq!(store.read_all("b").unwrap(), &b"data"[..]);
}

/// Every guard kind, passing and failing, with the reported reason.
pub fn guard_kinds(factory: Factory<'_>) {
    let store = factory();
    let mut batch = OmapBatch::new();
    batch
        .set("n", u64v(10))
        .set("s", b(b"str"))
        .set("short", b(b"1234"));
    store.omap_apply("g", &batch).unwrap();
    let cases: Vec<(&str, OmapCmp, Option<GuardFailure>)> = vec![
        ("n", OmapCmp::Present, None),
        ("zz", OmapCmp::Present, Some(GuardFailure::Missing)),
        ("zz", OmapCmp::Absent, None),
        ("n", OmapCmp::Absent, Some(GuardFailure::Exists)),
        ("s", OmapCmp::Equals(b(b"str")), None),
        (
            "s",
            OmapCmp::Equals(b(b"st")),
            Some(GuardFailure::ValueMismatch),
        ),
        (
            "zz",
            OmapCmp::Equals(b(b"str")),
            Some(GuardFailure::Missing),
        ),
        ("n", OmapCmp::U64AtMost(10), None),
        ("n", OmapCmp::U64AtMost(11), None),
        ("n", OmapCmp::U64AtMost(9), Some(GuardFailure::Comparison)),
        ("n", OmapCmp::U64AtLeast(10), None),
        ("n", OmapCmp::U64AtLeast(0), None),
        ("n", OmapCmp::U64AtLeast(11), Some(GuardFailure::Comparison)),
        (
            "short",
            OmapCmp::U64AtLeast(0),
            Some(GuardFailure::Comparison),
        ),
        (
            "short",
            OmapCmp::U64AtMost(u64::MAX),
            Some(GuardFailure::Comparison),
        ),
        ("zz", OmapCmp::U64AtMost(5), Some(GuardFailure::Missing)),
    ];
    for (i, (key, cmp, want)) in cases.into_iter().enumerate() {
        let marker = format!("m{i}");
        let mut batch = OmapBatch::new();
        batch.guard(key, cmp.clone()).set(marker.as_str(), b(b"1"));
        let result = store.omap_apply("g", &batch);
        match want.clone() {
            None => {
                result.unwrap_or_else(|e| panic!("{key} {cmp:?}: {e}"));
                assert!(store.omap_get_one("g", &marker).unwrap().is_some());
            }
            Some(reason) => {
                assert_guard_failed(result, key, reason);
                assert!(store.omap_get_one("g", &marker).unwrap().is_none());
            }
        }
        // The same guard on an append behaves the same way.
        let guard = AppendGuard::none().with_omap_guard(OmapGuard {
            key: key.into(),
            cmp,
        });
        let before = store.stat("g").unwrap().size;
        let appended = store.append("g", &[b(b"a")], &guard);
        assert_eq!(appended.is_ok(), want.is_none(), "append guard {i}");
        let after = store.stat("g").unwrap().size;
        assert_eq!(after, before + u64::from(want.is_none()));
    }
}

/// Invalid object ids are rejected with `InvalidArgument` by every operation.
pub fn invalid_oids(factory: Factory<'_>) {
    let store = factory();
    let long = "x".repeat(256);
    for oid in ["", "a/b", ".hidden", "..", "nul\0byte", long.as_str()] {
        let check = |r: crate::Result<()>, op: &str| {
            assert!(
                matches!(r, Err(StoreError::InvalidArgument(_))),
                "{op}({oid:?}) gave {r:?}"
            );
        };
        check(
            store
                .append(oid, &[b(b"x")], &AppendGuard::none())
                .map(|_| ()),
            "append",
        );
        check(store.read(oid, 0, 1).map(|_| ()), "read");
        check(store.stat(oid).map(|_| ()), "stat");
        check(store.remove(oid), "remove");
        check(store.write_full(oid, b(b"x")), "write_full");
        check(store.omap_get(oid, &["k"]).map(|_| ()), "omap_get");
        check(store.omap_list(oid, "", "", 1).map(|_| ()), "omap_list");
        check(store.omap_apply(oid, &OmapBatch::new()), "omap_apply");
        check(store.watch(oid).map(|_| ()), "watch");
        check(store.notify(oid, Bytes::new()).map(|_| ()), "notify");
    }
    let ok = "y".repeat(255);
    store.append(&ok, &[b(b"x")], &AppendGuard::none()).unwrap();
    assert_eq!(store.list("").unwrap(), vec![ok]);
}

/// Watch/notify: every current watcher of the object gets each payload; dropping unregisters.
pub fn watch_notify(factory: Factory<'_>) {
    let store = factory();
    let timeout = Duration::from_secs(10);
    assert_eq!(store.notify("hdr", b(b"nobody")).unwrap(), 0);
    let w1 = store.watch("hdr").unwrap(); // the object need not exist
    let w2 = store.watch("hdr").unwrap();
    let other = store.watch("other").unwrap();
    assert_eq!(store.notify("hdr", b(b"p1")).unwrap(), 2);
    for w in [&w1, &w2] {
        let note = w.receiver().recv_timeout(timeout).unwrap();
        assert_eq!((note.oid.as_str(), &note.payload[..]), ("hdr", &b"p1"[..]));
    }
    assert!(
        other.receiver().try_recv().is_err(),
        "watcher of another object notified"
    );
    drop(w1);
    assert_eq!(store.notify("hdr", b(b"p2")).unwrap(), 1);
    assert_eq!(
        &w2.receiver().recv_timeout(timeout).unwrap().payload[..],
        b"p2"
    );
    assert_eq!(w2.drain(), 0);
    drop(w2);
    assert_eq!(store.notify("hdr", Bytes::new()).unwrap(), 0);
    assert_eq!(store.notify("other", Bytes::new()).unwrap(), 1);
    assert_eq!(other.drain(), 1);
}

const THREADS: usize = 4;

/// Concurrent appends from many threads: each batch lands whole and contiguous, the returned
/// offsets are disjoint and cover the object exactly.
pub fn concurrent_appends(factory: Factory<'_>) {
    let store = factory();
    const PER_THREAD: usize = 25;
    let barrier = Barrier::new(THREADS);
    // Record format: [thread, seq, len_lo, len_hi] + len bytes of (thread ^ seq ^ i), split into
    // several buffers so a non-atomic writer could interleave them.
    let record = |t: usize, s: usize| -> Vec<Bytes> {
        let len = 10 + (t * 37 + s * 11) % 300;
        let mut bytes = vec![t as u8, s as u8, (len & 0xff) as u8, (len >> 8) as u8];
        bytes.extend((0..len).map(|i| (t ^ s ^ i) as u8));
        bytes.chunks(17).map(b).collect()
    };
    let offsets: Vec<Vec<(u64, usize, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    (0..PER_THREAD)
                        .map(|s| {
                            let off = store
                                .append("c", &record(t, s), &AppendGuard::none())
                                .unwrap();
                            (off, t, s)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut placed: Vec<(u64, usize, usize)> = offsets.into_iter().flatten().collect();
    placed.sort_unstable();
    let data = store.read_all("c").unwrap();
    let mut pos = 0u64;
    for (off, t, s) in placed {
        assert_eq!(off, pos, "offsets are not contiguous");
        let want: Vec<u8> = record(t, s).iter().flat_map(|x| x.to_vec()).collect();
        let got = &data[off as usize..off as usize + want.len()];
        assert_eq!(got, &want[..], "batch ({t}, {s}) torn or interleaved");
        pos += want.len() as u64;
    }
    assert_eq!(
        pos,
        data.len() as u64,
        "object holds bytes no append accounts for"
    );
}

/// Concurrent guarded appends: the soft-limit check is atomic with the write, so the object ends
/// below `limit + largest batch`, and every refusal happened at or past the limit.
pub fn concurrent_soft_limit(factory: Factory<'_>) {
    let store = factory();
    const LIMIT: u64 = 2_000;
    const BATCH: usize = 100;
    let accepted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (store, accepted) = (&store, &accepted);
            scope.spawn(move || loop {
                match store.append(
                    "lim",
                    &[b(&[t as u8; BATCH])],
                    &AppendGuard::soft_max(LIMIT),
                ) {
                    Ok(off) => {
                        assert!(off < LIMIT, "append accepted at offset {off}");
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(StoreError::Overflow { size, .. }) => {
                        assert!(size >= LIMIT);
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            });
        }
    });
    let size = store.stat("lim").unwrap().size;
    assert_eq!(size, (accepted.load(Ordering::SeqCst) * BATCH) as u64);
    assert!((LIMIT..LIMIT + BATCH as u64).contains(&size), "size {size}");
}

/// Compare-and-set increments from many threads (retrying on guard failure) lose no update.
pub fn concurrent_cas_counter(factory: Factory<'_>) {
    let store = factory();
    const PER_THREAD: u64 = 8;
    let mut init = OmapBatch::new();
    init.assert_absent("count").set("count", u64v(0));
    store.omap_apply("ctr", &init).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let store = &store;
            scope.spawn(move || {
                for _ in 0..PER_THREAD {
                    loop {
                        let cur = store.omap_get_one("ctr", "count").unwrap().unwrap();
                        let n = u64::from_le_bytes(cur[..].try_into().unwrap());
                        let mut batch = OmapBatch::new();
                        batch.assert_equals("count", cur).set("count", u64v(n + 1));
                        match store.omap_apply("ctr", &batch) {
                            Ok(()) => break,
                            Err(e) if e.is_guard_failed() => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let fin = store.omap_get_one("ctr", "count").unwrap().unwrap();
    assert_eq!(fin, u64v(THREADS as u64 * PER_THREAD));
}

/// Racing exclusive creates (`assert_absent` + set): exactly one wins, and its value stays.
pub fn concurrent_exclusive_create(factory: Factory<'_>) {
    let store = factory();
    let barrier = Barrier::new(THREADS);
    let winners: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, barrier) = (&store, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let mut batch = OmapBatch::new();
                    batch.assert_absent("owner").set("owner", u64v(t as u64));
                    match store.omap_apply("lockobj", &batch) {
                        Ok(()) => Some(t),
                        Err(e) if e.is_guard_failed() => None,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        store.omap_get_one("lockobj", "owner").unwrap(),
        Some(u64v(winners[0] as u64))
    );
}

/// Readers racing appenders only ever see whole batches: every size `stat` reports and every
/// `read` result ends on a batch boundary.
pub fn concurrent_reads_see_whole_batches(factory: Factory<'_>) {
    let store = factory();
    const PER_THREAD: usize = 30;
    let writers_done = AtomicUsize::new(0);
    // Record: [len_lo, len_hi, fill] + (len - 3) bytes of fill; len varies.
    let record = |t: usize, s: usize| -> Vec<Bytes> {
        let len = 3 + (t * 53 + s * 29) % 400;
        let fill = (t * PER_THREAD + s) as u8;
        let mut bytes = vec![(len & 0xff) as u8, (len >> 8) as u8, fill];
        bytes.resize(len, fill);
        bytes.chunks(50).map(b).collect()
    };
    let check_whole = |data: &[u8], what: &str| {
        let mut pos = 0usize;
        while pos < data.len() {
            assert!(pos + 3 <= data.len(), "{what}: torn record header at {pos}");
            let len = usize::from(data[pos]) | usize::from(data[pos + 1]) << 8;
            let fill = data[pos + 2];
            assert!(pos + len <= data.len(), "{what}: torn record at {pos}");
            assert!(
                data[pos + 3..pos + len].iter().all(|x| *x == fill),
                "{what}: mixed record"
            );
            pos += len;
        }
    };
    store.append("rw", &[], &AppendGuard::none()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..2 {
            let (store, done) = (&store, &writers_done);
            scope.spawn(move || {
                for s in 0..PER_THREAD {
                    store
                        .append("rw", &record(t, s), &AppendGuard::none())
                        .unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        for _ in 0..2 {
            let (store, done) = (&store, &writers_done);
            scope.spawn(move || loop {
                let finished = done.load(Ordering::SeqCst) == 2;
                let size = store.stat("rw").unwrap().size;
                let prefix = store.read("rw", 0, size).unwrap();
                assert_eq!(prefix.len() as u64, size, "object shrank");
                check_whole(&prefix, "stat+read");
                check_whole(&store.read("rw", 0, u64::MAX).unwrap(), "read to end");
                if finished {
                    break;
                }
            });
        }
    });
    let data = store.read_all("rw").unwrap();
    check_whole(&data, "final");
    let want: usize = (0..2)
        .flat_map(|t| (0..PER_THREAD).map(move |s| (t, s)))
        .map(|(t, s)| record(t, s).iter().map(Bytes::len).sum::<usize>())
        .sum();
    assert_eq!(data.len(), want);
}

/// Names of every check, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "append_offsets",
    "empty_append_creates",
    "soft_limit",
    "append_omap_guards",
    "read_ranges",
    "large_reads",
    "stat_sizes",
    "remove_object",
    "list_prefix",
    "write_full_replaces",
    "omap_get_keys",
    "omap_list_ranges",
    "omap_batch_atomicity",
    "guard_kinds",
    "invalid_oids",
    "watch_notify",
    "concurrent_appends",
    "concurrent_soft_limit",
    "concurrent_cas_counter",
    "concurrent_exclusive_create",
    "concurrent_reads_see_whole_batches",
];

/// Runs every check, each on a fresh store from `factory`.
pub fn run_all(factory: Factory<'_>) {
    append_offsets(factory);
    empty_append_creates(factory);
    soft_limit(factory);
    append_omap_guards(factory);
    read_ranges(factory);
    large_reads(factory);
    stat_sizes(factory);
    remove_object(factory);
    list_prefix(factory);
    write_full_replaces(factory);
    omap_get_keys(factory);
    omap_list_ranges(factory);
    omap_batch_atomicity(factory);
    guard_kinds(factory);
    invalid_oids(factory);
    watch_notify(factory);
    concurrent_appends(factory);
    concurrent_soft_limit(factory);
    concurrent_cas_counter(factory);
    concurrent_exclusive_create(factory);
    concurrent_reads_see_whole_batches(factory);
}

/// Expands to one `#[test]` per conformance check, each building its store with `$factory` (an
/// expression of a type implementing `Fn() -> Arc<dyn ObjectStore>`; evaluated once per test,
/// so it may own a temporary directory). Requires the `testing` feature.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            append_offsets, empty_append_creates, soft_limit, append_omap_guards, read_ranges,
            large_reads, stat_sizes, remove_object, list_prefix, write_full_replaces,
            omap_get_keys, omap_list_ranges, omap_batch_atomicity, guard_kinds, invalid_oids,
            watch_notify, concurrent_appends, concurrent_soft_limit, concurrent_cas_counter,
            concurrent_exclusive_create, concurrent_reads_see_whole_batches);
    };
    (@each $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let factory = $factory;
                $crate::testing::conformance::$check(&factory);
            }
        )*
    };
}
