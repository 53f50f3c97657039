//! Checks of omap operations and guards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{all_omap, assert_guard_failed, b, u64v, Factory};
use crate::{AppendGuard, GuardFailure, ObjectStoreExt, OmapBatch, OmapCmp, OmapGuard};

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
