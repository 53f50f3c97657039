//! Checks of data operations: append, read, stat, remove, list, write_full, ids, watch/notify.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;

use super::{all_omap, b, Factory};
use crate::{AppendGuard, ObjectStore, ObjectStoreExt, OmapBatch, StoreError};

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

/// `write_at` (and, every other write, `write_at_unsynced`, then `sync_objects`) splices data
/// into an object (creating it, zero-filling gaps, extending it) and
/// keeps the omap; checked against a plain byte-vector model after every step, including writes
/// spanning many earlier writes.
pub fn write_at_splices(factory: Factory<'_>) {
    let store = factory();
    let mut model: Vec<u8> = Vec::new();
    // Every other write goes through `write_at_unsynced`: the same bytes, visible at once.
    let mut writes = 0usize;
    let mut apply = |store: &dyn ObjectStore, offset: usize, data: &[u8]| {
        let bytes = Bytes::copy_from_slice(data);
        writes += 1;
        if writes.is_multiple_of(2) {
            store.write_at_unsynced("wa", offset as u64, bytes).unwrap();
        } else {
            store.write_at("wa", offset as u64, bytes).unwrap();
        }
        if model.len() < offset + data.len() {
            model.resize(offset + data.len(), 0);
        }
        model[offset..offset + data.len()].copy_from_slice(data);
        assert_eq!(
            store.read_all("wa").unwrap(),
            &model[..],
            "after write at {offset}"
        );
        assert_eq!(store.stat("wa").unwrap().size, model.len() as u64);
    };
    apply(store.as_ref(), 3, b"abc");
    let mut batch = OmapBatch::new();
    batch.set("keep", b(b"me"));
    store.omap_apply("wa", &batch).unwrap();
    apply(store.as_ref(), 0, b"X");
    apply(store.as_ref(), 4, b"YYYYYY");
    apply(store.as_ref(), 20, b"tail");
    // Many small writes, then one covering them all partly.
    for i in 0..100usize {
        apply(store.as_ref(), (i * 37) % 300, &[i as u8; 7]);
    }
    apply(store.as_ref(), 50, &[0xee; 123]);
    apply(store.as_ref(), 0, b"");
    store
        .sync_objects(&["wa".to_owned(), "wa-missing".to_owned()])
        .unwrap();
    assert_eq!(store.read_all("wa").unwrap(), &model[..]);
    assert_eq!(store.omap_get_one("wa", "keep").unwrap(), Some(b(b"me")));
    assert_eq!(
        store
            .append("wa", &[b(b"+")], &AppendGuard::none())
            .unwrap(),
        model.len() as u64
    );
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
    // With no watcher left anywhere, and again with a new one.
    drop(other);
    assert_eq!(store.notify("other", Bytes::new()).unwrap(), 0);
    let again = store.watch("hdr").unwrap();
    assert_eq!(store.notify("hdr", b(b"p3")).unwrap(), 1);
    assert_eq!(
        &again.receiver().recv_timeout(timeout).unwrap().payload[..],
        b"p3"
    );
}

/// Wakers: a notification to an armed watch runs its waker once, on the notifier's thread
/// before `notify` returns (RADOS: the notifier returns once watchers acknowledged); later
/// notifications run no waker until the watch is armed again, and `arm` reports what is
/// pending. A watch whose waker is gone (dropped watch) is not woken; a waker installed over a
/// pending notification runs at once.
pub fn watch_wakers(factory: Factory<'_>) {
    let store = factory();
    let timeout = Duration::from_secs(10);
    let (rings_tx, rings) = crossbeam_channel::unbounded::<&'static str>();
    let waker = |name: &'static str| -> crate::Waker {
        let tx = rings_tx.clone();
        crate::Waker::new(move || {
            let _ = tx.send(name);
        })
    };
    let a = store.watch("a").unwrap();
    let b2 = store.watch("b").unwrap();
    let plain = store.watch("a").unwrap(); // no waker: still gets every notification
    assert!(!a.set_waker(waker("a")), "nothing pending yet");
    assert!(!b2.set_waker(waker("b")), "nothing pending yet");

    assert_eq!(store.notify("a", b(b"1")).unwrap(), 2);
    assert_eq!(rings.recv_timeout(timeout).unwrap(), "a");
    a.receiver().recv_timeout(timeout).unwrap();
    assert_eq!(store.notify("a", b(b"2")).unwrap(), 2);
    a.receiver().recv_timeout(timeout).unwrap();
    assert!(rings.try_recv().is_err(), "a disarmed watch rang again");

    // Arming with a notification pending says so; the next notification rings once more.
    assert_eq!(store.notify("a", b(b"3")).unwrap(), 2);
    a.receiver().recv_timeout(timeout).unwrap();
    assert!(!a.arm(), "the pending notification was received");
    assert_eq!(store.notify("a", b(b"4")).unwrap(), 2);
    assert_eq!(rings.recv_timeout(timeout).unwrap(), "a");
    assert!(a.arm(), "notification 4 is pending");
    assert_eq!(a.drain(), 1);
    assert_eq!(plain.drain(), 4);

    // Another object's waker rings for its own notifications only.
    assert_eq!(store.notify("b", Bytes::new()).unwrap(), 1);
    assert_eq!(rings.recv_timeout(timeout).unwrap(), "b");
    assert_eq!(b2.drain(), 1);
    drop(a);
    assert_eq!(store.notify("a", Bytes::new()).unwrap(), 1);
    assert!(rings.try_recv().is_err(), "a dropped watch rang");

    // A waker installed over a notification already pending runs at once.
    let c = store.watch("c").unwrap();
    assert_eq!(store.notify("c", b(b"early")).unwrap(), 1);
    c.receiver().recv_timeout(timeout).unwrap();
    assert_eq!(store.notify("c", b(b"queued")).unwrap(), 1);
    assert!(c.set_waker(waker("c")), "a notification is pending");
    assert_eq!(rings.recv_timeout(timeout).unwrap(), "c");
    assert_eq!(c.drain(), 1);
}
