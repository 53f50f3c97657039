//! Races between threads, each with its own [`JournalHeader`] handle on one store: the
//! optimistic guarded updates must behave as if Ceph's class methods ran one at a time.
//!
//! Oracle: the serial semantics of spec §4.2 / §9.1 — tag tids are handed out exactly once and
//! consecutively, a client id registers once, `active_set` only grows, and a fenced handle can
//! write nothing once a newer tag exists.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;

use bytes::Bytes;
use journal_core::header::{HeaderError, JournalHeader, ObjectPosition, ObjectSetPosition};
use object_store_trait::{DirStore, DirStoreOptions, MemStore, ObjectStore, SyncPolicy};

const THREADS: usize = 6;

fn fresh(store: Arc<dyn ObjectStore>) -> JournalHeader {
    let header = JournalHeader::new(store, 1, "race");
    header.create(24, 4, -1).unwrap();
    header
}

/// `THREADS` threads each allocate `per_thread` tags after `initial` were allocated serially.
fn allocate_race(store: Arc<dyn ObjectStore>, initial: u64, per_thread: usize) {
    let header = fresh(store.clone());
    for _ in 0..initial {
        header
            .allocate_tag(journal_core::header::TAG_CLASS_NEW, Bytes::new())
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let h = JournalHeader::new(store.clone(), 1, "race");
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                (0..per_thread)
                    .map(|_| h.allocate_tag(0, Bytes::from(vec![i as u8])).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let tags: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let tids: BTreeSet<u64> = tags.iter().map(|t| t.tid).collect();
    let total = (THREADS * per_thread) as u64;
    assert_eq!(tids.len() as u64, total, "every allocation got its own tid");
    assert_eq!(tids, (initial..initial + total).collect::<BTreeSet<_>>());
    assert_eq!(header.get_next_tag_tid().unwrap(), initial + total);
    // Each stored tag is the one its allocator was told about (no clients: nothing expired).
    for tag in &tags {
        assert_eq!(&header.get_tag(tag.tid).unwrap(), tag);
    }
}

#[test]
fn racing_allocate_tag_mem() {
    allocate_race(Arc::new(MemStore::new()), 2, 8);
}

#[test]
fn racing_allocate_tag_dir() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DirStoreOptions {
        sync: SyncPolicy::None,
        ..DirStoreOptions::default()
    };
    let store = DirStore::open(dir.path(), opts).unwrap();
    allocate_race(Arc::new(store), 1, 4);
}

#[test]
fn racing_register_of_one_id_succeeds_once() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    fresh(store.clone());
    for round in 0..5 {
        let id = format!("client-{round}");
        let barrier = Arc::new(Barrier::new(THREADS));
        let results: Vec<_> = (0..THREADS)
            .map(|i| {
                let h = JournalHeader::new(store.clone(), 1, "race");
                let (barrier, id) = (barrier.clone(), id.clone());
                thread::spawn(move || {
                    barrier.wait();
                    h.client_register(&id, Bytes::from(vec![i as u8]))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let winners: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .all(|r| r.as_ref().is_ok() || r.as_ref().unwrap_err().is_exists()));
        // The stored record is the winner's.
        let header = JournalHeader::new(store.clone(), 1, "race");
        assert_eq!(
            &header.get_client(&id).unwrap().data[..],
            &[winners[0] as u8]
        );
    }
    let header = JournalHeader::new(store, 1, "race");
    assert_eq!(header.clients().unwrap().len(), 5);
}

#[test]
fn racing_set_active_set_is_monotonic() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    fresh(store.clone());
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let writers: Vec<_> = (0..THREADS as u64)
        .map(|i| {
            let h = JournalHeader::new(store.clone(), 1, "race");
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                // Interleaved targets: thread i tries i+1, i+1+T, i+1+2T, ...
                for k in 0..10 {
                    let set = i + 1 + k * THREADS as u64;
                    match h.set_active_set(set) {
                        Ok(()) | Err(HeaderError::Stale { .. }) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            })
        })
        .collect();
    let reader = {
        let h = JournalHeader::new(store.clone(), 1, "race");
        let barrier = barrier.clone();
        thread::spawn(move || {
            barrier.wait();
            let mut seen = Vec::new();
            for _ in 0..200 {
                seen.push(h.get_active_set().unwrap());
            }
            seen
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    let seen = reader.join().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let header = JournalHeader::new(store, 1, "race");
    // The largest target, 10 * THREADS, is tried by the last thread last; nothing can exceed it
    // or refuse it (it is larger than every other value).
    assert_eq!(header.get_active_set().unwrap(), 10 * THREADS as u64);
}

#[test]
fn racing_commits_of_distinct_clients_all_land() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let header = fresh(store.clone());
    for i in 0..THREADS {
        header
            .client_register(&format!("c{i}"), Bytes::new())
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS as u64)
        .map(|i| {
            let h = JournalHeader::new(store.clone(), 1, "race");
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                for e in 0..20u64 {
                    let pos = ObjectSetPosition::new(vec![ObjectPosition {
                        object_number: e % 4,
                        tag_tid: i,
                        entry_tid: e,
                    }]);
                    h.client_commit(&format!("c{i}"), &pos).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for (i, client) in header.clients().unwrap().iter().enumerate() {
        let last = client.commit_position.first().unwrap();
        assert_eq!((last.tag_tid, last.entry_tid), (i as u64, 19));
    }
}

#[test]
fn fenced_writer_loses_to_a_new_tag_owner() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let header = fresh(store.clone());
    let tag = header
        .allocate_tag(journal_core::header::TAG_CLASS_NEW, Bytes::new())
        .unwrap();
    header.client_register("", Bytes::new()).unwrap();
    let fenced = header.with_fence(tag.tid);
    let barrier = Arc::new(Barrier::new(2));
    let writer = {
        let (fenced, barrier) = (fenced.clone(), barrier.clone());
        thread::spawn(move || {
            barrier.wait();
            let mut last_ok = 0;
            // Runs until fenced: the main thread's allocation below guarantees it.
            for set in 1u64.. {
                match fenced.set_active_set(set) {
                    Ok(()) => last_ok = set,
                    Err(e) if e.is_fenced() => return (last_ok, set),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            unreachable!("the set range is unbounded");
        })
    };
    barrier.wait();
    let newer = header.allocate_tag(0, Bytes::new()).unwrap();
    let (last_ok, refused) = writer.join().unwrap();
    assert_eq!(refused, last_ok + 1);
    // The value stored is the last one the fenced writer was told succeeded.
    assert_eq!(header.get_active_set().unwrap(), last_ok);
    assert!(fenced.set_active_set(last_ok + 1).unwrap_err().is_fenced());
    assert!(header
        .with_fence(newer.tid)
        .set_active_set(last_ok + 1)
        .is_ok());
}
