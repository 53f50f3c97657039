//! The recorder against the format rules of spec §6, checked by decoding the data objects with
//! journal-core's scanner: placement (tid mod W, set rollover), group commit, prefix durability
//! and failure latching.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use common::{journal_objects, GateStore};
use journal_client::recorder::AdvanceHook;
use journal_client::{JournalSettings, Recorder, RecorderConfig, RecorderError};
use journal_core::commit::CommitTracker;
use journal_core::header::ObjectSetPosition;
use journal_core::Layout;
use object_store_trait::ObjectStore;
use parking_lot::Mutex;

fn config(order: u8, width: u8, tag: u64) -> RecorderConfig {
    RecorderConfig {
        journal_id: "img".into(),
        name_pool_id: 3,
        layout: Layout::new(order, width).unwrap(),
        tag_tid: tag,
        active_set: 0,
        fenced: true,
        settings: JournalSettings::default(),
    }
}

fn tracker(width: u8) -> Arc<Mutex<CommitTracker>> {
    Arc::new(Mutex::new(CommitTracker::new(
        width,
        ObjectSetPosition::default(),
    )))
}

fn recording_hook() -> (AdvanceHook, Arc<Mutex<Vec<u64>>>) {
    let sets = Arc::new(Mutex::new(Vec::new()));
    let s = sets.clone();
    (
        Arc::new(move |set| {
            s.lock().push(set);
            Ok(())
        }),
        sets,
    )
}

fn payload(i: u64, len: usize) -> Bytes {
    let mut v = i.to_le_bytes().to_vec();
    v.resize(len.max(8), (i % 251) as u8);
    Bytes::from(v)
}

#[test]
fn concurrent_appends_are_group_committed_in_layout_order() {
    let store = Arc::new(GateStore::default());
    // With store latency, entries queued while an append is in flight share the next append.
    // Sixteen synchronous writers over two objects: about eight per object, so while one
    // append is in flight the others' entries queue up behind it.
    store.hook().append_latency_us.store(200, Ordering::SeqCst);
    let (hook, sets) = recording_hook();
    let rec = Arc::new(Recorder::start(store.clone(), config(24, 2, 7), tracker(2), hook).unwrap());
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let rec = rec.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    let f = rec.append(payload(t * 1000 + i, 100)).unwrap();
                    f.wait().unwrap();
                    assert!(f.poll().unwrap().is_ok());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rec.flush().unwrap();
    let objects = journal_objects(store.as_ref(), 3, "img");
    assert!(sets.lock().is_empty());
    assert_eq!(objects.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
    let mut all = Vec::new();
    for (n, entries) in &objects {
        let tids: Vec<u64> = entries.iter().map(|e| e.entry_tid).collect();
        assert!(
            tids.windows(2).all(|w| w[0] < w[1]),
            "object {n} out of order"
        );
        assert!(
            tids.iter().all(|t| t % 2 == *n),
            "object {n} holds a foreign splay offset"
        );
        assert!(entries.iter().all(|e| e.tag_tid == 7));
        all.extend(tids);
    }
    all.sort_unstable();
    assert_eq!(all, (0..1600).collect::<Vec<_>>());
    // Group commit: writers waiting concurrently share appends.
    let appends = store.hook().appends.load(Ordering::SeqCst);
    assert!(
        appends < 800,
        "no batching: {appends} appends for 1600 entries"
    );
}

#[test]
fn futures_complete_only_behind_every_earlier_entry() {
    let store = Arc::new(GateStore::default());
    let (hook, _) = recording_hook();
    let rec = Recorder::start(store.clone(), config(24, 2, 1), tracker(2), hook).unwrap();
    // Entry 0 goes to object 0, entry 1 to object 1. Hold object 0.
    let oid0 = journal_core::layout::data_oid(3, "img", 0);
    store.hook().hold(&oid0);
    let f0 = rec.append(payload(0, 10)).unwrap();
    let f1 = rec.append(payload(1, 10)).unwrap();
    f1.flush();
    // Wait until entry 1's own append is in the store.
    let oid1 = journal_core::layout::data_oid(3, "img", 1);
    while store.inner().stat(&oid1).map(|s| s.size).unwrap_or(0) == 0 {
        std::thread::yield_now();
    }
    assert!(
        f1.poll().is_none(),
        "entry 1 reported durable before entry 0"
    );
    store.hook().release(&oid0);
    f1.wait().unwrap();
    assert_eq!(f0.poll(), Some(Ok(())));
}

#[test]
fn a_failed_append_fails_it_and_everything_after_and_poisons() {
    let store = Arc::new(GateStore::default());
    let (hook, _) = recording_hook();
    let rec = Recorder::start(store.clone(), config(24, 1, 1), tracker(1), hook).unwrap();
    rec.append(payload(0, 10)).unwrap().wait().unwrap();
    store
        .hook()
        .fail_appends_from(store.hook().appends.load(Ordering::SeqCst));
    let f1 = rec.append(payload(1, 10)).unwrap();
    let err = f1.wait().unwrap_err();
    assert!(
        matches!(err, RecorderError::Store { errno: -28, .. }),
        "{err:?}"
    );
    assert!(matches!(
        rec.append(payload(2, 10)),
        Err(RecorderError::Poisoned(_))
    ));
    assert!(rec.flush().is_err());
    let objects = journal_objects(store.as_ref(), 3, "img");
    assert_eq!(objects[&0].len(), 1);
}

#[test]
fn sets_roll_over_when_an_object_fills() {
    // order 12: 4 KiB objects; 300-byte payloads -> 333-byte entries, 12 per object.
    let store = Arc::new(GateStore::default());
    let (hook, sets) = recording_hook();
    let layout = Layout::new(12, 2).unwrap();
    let rec = Recorder::start(store.clone(), config(12, 2, 5), tracker(2), hook).unwrap();
    let futures: Vec<_> = (0..200u64)
        .map(|i| rec.append(payload(i, 300)).unwrap())
        .collect();
    futures.last().unwrap().wait().unwrap();
    let objects = journal_objects(store.as_ref(), 3, "img");
    let last_set = *sets.lock().last().unwrap();
    assert_eq!(*sets.lock(), (1..=last_set).collect::<Vec<_>>());
    assert_eq!(rec.active_set(), last_set);
    let mut all = Vec::new();
    for (n, entries) in &objects {
        let size: usize = entries.iter().map(|e| e.encoded_len()).sum();
        assert!(
            size as u64 <= layout.soft_limit(),
            "object {n} over the limit"
        );
        assert!(entries.iter().all(|e| e.entry_tid % 2 == n % 2));
        // §6.2 arithmetic: 12 entries of 333 bytes fit 4096, the 13th does not, and the set
        // closes for every offset at once: entry t lands in set t / 24.
        assert!(
            entries
                .iter()
                .all(|e| layout.object_set(*n) == e.entry_tid / 24),
            "object {n}"
        );
        all.extend(entries.iter().map(|e| (layout.object_set(*n), e.entry_tid)));
    }
    // Entries are in tid order across sets as well (a later set never holds an earlier tid).
    all.sort_unstable();
    let tids: Vec<u64> = all.iter().map(|(_, t)| *t).collect();
    let mut sorted = tids.clone();
    sorted.sort_unstable();
    assert_eq!(tids, sorted);
    assert_eq!(sorted, (0..200).collect::<Vec<_>>());
    assert!(
        last_set >= 7,
        "200 * 333 bytes need at least 8 sets of 2 x 4 KiB"
    );
}

#[test]
fn overflow_from_the_store_moves_to_the_next_set() {
    // Someone else already filled object 0: the store refuses, the recorder moves on.
    let store = Arc::new(GateStore::default());
    let oid0 = journal_core::layout::data_oid(3, "img", 0);
    store
        .inner()
        .append(&oid0, &[Bytes::from(vec![0u8; 4096])], &Default::default())
        .unwrap();
    let (hook, sets) = recording_hook();
    let trk = tracker(2);
    let rec = Recorder::start(store.clone(), config(12, 2, 5), trk.clone(), hook).unwrap();
    let f = rec.append(payload(0, 10)).unwrap();
    f.wait().unwrap();
    assert_eq!(*sets.lock(), vec![1]);
    let objects = journal_objects(store.inner() as &dyn ObjectStore, 3, "img");
    assert!(objects.get(&2).is_some_and(|e| e.len() == 1));
    // The commit record moved with the entry.
    assert_eq!(trk.lock().record(f.commit_tid()).unwrap().object_number, 2);
}

#[test]
fn a_waiter_on_a_slow_store_hands_the_other_objects_to_their_workers() {
    // One writer, one request of four entries (four objects), on a store whose appends take
    // 200 us: while the waiter's own append to object 0 is held, the entries of objects 1-3
    // reach the store (their workers send them concurrently), and the request completes once
    // object 0 is released. Every entry lands once, at its splay offset, in tid order.
    let store = Arc::new(GateStore::default());
    store.hook().append_latency_us.store(200, Ordering::SeqCst);
    let (hook, _) = recording_hook();
    let rec = Arc::new(Recorder::start(store.clone(), config(24, 4, 2), tracker(4), hook).unwrap());
    // Teach the recorder that appends are slow (and claim all four objects).
    for i in 0..8u64 {
        rec.append(payload(i, 50)).unwrap().wait().unwrap();
    }
    let oid = |n: u64| journal_core::layout::data_oid(3, "img", n);
    store.hook().hold(&oid(0));
    let futures: Vec<_> = (8..12u64)
        .map(|i| rec.append(payload(i, 50)).unwrap())
        .collect();
    let last = futures.last().unwrap().clone();
    let waiter = std::thread::spawn(move || last.wait());
    let mut polls = 0;
    loop {
        let objects = journal_objects(store.as_ref(), 3, "img");
        let landed = (1..4u64)
            .filter(|n| objects.get(n).is_some_and(|e| e.len() == 3))
            .count();
        if landed == 3 {
            break;
        }
        polls += 1;
        if polls >= 10_000 {
            store.hook().release(&oid(0)); // let the recorder shut down
            panic!("objects 1-3 not sent while object 0 was held");
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(
        futures[1].poll().is_none(),
        "entry 9 complete before entry 8"
    );
    store.hook().release(&oid(0));
    waiter.join().unwrap().unwrap();
    for f in &futures {
        assert_eq!(f.poll(), Some(Ok(())));
    }
    let objects = journal_objects(store.as_ref(), 3, "img");
    for (n, entries) in &objects {
        let tids: Vec<u64> = entries.iter().map(|e| e.entry_tid).collect();
        assert_eq!(tids, vec![*n, n + 4, n + 8], "object {n}");
    }
}

#[test]
fn unwaited_entries_stream_out_once_a_batch_threshold_is_reached() {
    let store = Arc::new(GateStore::default());
    let (hook, _) = recording_hook();
    let mut cfg = config(24, 1, 1);
    cfg.settings.flush_bytes = std::num::NonZeroU64::new(1000);
    let rec = Recorder::start(store.clone(), cfg, tracker(1), hook).unwrap();
    // Batching on (as after librbd's first user flush): otherwise the worker, whenever it
    // first runs, sends whatever is already queued (writethrough), and the entries left after
    // such an early send never reach the threshold on their own.
    rec.enable_batching();
    // Nobody waits: 5 x 233 framed bytes pass the 1000-byte threshold and the worker sends.
    let futures: Vec<_> = (0..5u64)
        .map(|i| rec.append(payload(i, 200)).unwrap())
        .collect();
    let last = futures.last().unwrap();
    let mut polls = 0;
    while last.poll().is_none() {
        polls += 1;
        assert!(polls < 10_000, "threshold batch never sent");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(
        store.hook().appends.load(Ordering::SeqCst),
        1,
        "one append for the whole batch"
    );
}

#[test]
fn concurrent_writers_across_set_rollovers() {
    // Waiters, workers and set closing interleave: every entry lands exactly once, each object
    // holds its splay offset's entries in tid order, and no object passes the soft limit.
    let store = Arc::new(GateStore::default());
    store.hook().append_latency_us.store(30, Ordering::SeqCst);
    let (hook, sets) = recording_hook();
    let layout = Layout::new(12, 2).unwrap();
    let rec = Arc::new(Recorder::start(store.clone(), config(12, 2, 9), tracker(2), hook).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let rec = rec.clone();
            std::thread::spawn(move || {
                for i in 0..40u64 {
                    rec.append(payload(t * 100 + i, 300))
                        .unwrap()
                        .wait()
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let objects = journal_objects(store.as_ref(), 3, "img");
    let mut all = Vec::new();
    for (n, entries) in &objects {
        let tids: Vec<u64> = entries.iter().map(|e| e.entry_tid).collect();
        assert!(
            tids.windows(2).all(|w| w[0] < w[1]),
            "object {n} out of order"
        );
        assert!(tids.iter().all(|t| t % 2 == n % 2));
        let size: usize = entries.iter().map(|e| e.encoded_len()).sum();
        assert!(size as u64 <= layout.soft_limit());
        all.extend(tids);
    }
    all.sort_unstable();
    assert_eq!(all, (0..320).collect::<Vec<_>>());
    let sets = sets.lock().clone();
    assert!(
        sets.len() >= 9,
        "320 entries of 333 bytes need at least 10 sets"
    );
    assert_eq!(sets, (1..=sets.len() as u64).collect::<Vec<_>>());
}

/// Payloads of [`journal_client::prepared_entry::ZERO_COPY_MIN`] bytes or more go to the store
/// as three parts (header, the caller's buffer, CRC) instead of one copied buffer. Whatever the
/// mix of sizes, every object decodes with journal-core's scanner to exactly the payloads
/// appended, in tid order, on a store that keeps the parts (MemStore) and on one that writes
/// them with a gathered write and reads them back from the file (DirStore), across set
/// rollovers (64 KiB objects).
#[test]
fn large_payloads_go_to_the_store_without_a_copy_and_decode_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let dir_store = object_store_trait::DirStore::open(
        dir.path(),
        object_store_trait::DirStoreOptions::default(),
    )
    .unwrap();
    let stores: Vec<Arc<dyn ObjectStore>> = vec![
        Arc::new(object_store_trait::MemStore::new()),
        Arc::new(dir_store),
    ];
    let min = journal_client::prepared_entry::ZERO_COPY_MIN;
    let sizes = [10, min - 1, min, min + 1, 5000, 16_000, 100, 12_000];
    for store in stores {
        let (hook, sets) = recording_hook();
        let rec = Recorder::start(store.clone(), config(16, 2, 5), tracker(2), hook).unwrap();
        let mut expected = Vec::new();
        let mut futures = Vec::new();
        for i in 0..40u64 {
            let p = payload(i, sizes[i as usize % sizes.len()]);
            futures.push(rec.append(p.clone()).unwrap());
            expected.push(p);
        }
        for f in &futures {
            f.wait().unwrap();
        }
        rec.shutdown();
        assert!(!sets.lock().is_empty(), "no set rollover");
        let mut got: Vec<(u64, Bytes)> = journal_objects(store.as_ref(), 3, "img")
            .into_values()
            .flatten()
            .map(|e| {
                assert_eq!(e.tag_tid, 5);
                (e.entry_tid, e.data)
            })
            .collect();
        got.sort_by_key(|(tid, _)| *tid);
        let tids: Vec<u64> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(tids, (0..40).collect::<Vec<_>>());
        for ((tid, data), want) in got.iter().zip(&expected) {
            assert_eq!(data, want, "entry {tid}");
        }
    }
}
