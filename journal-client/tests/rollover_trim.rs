//! Set rollover, trimming and laggy-client disconnect with a small journal (order 12, splay
//! width 2), checked against the header state and the rules of spec §6.3, §7.3 and §8
//! computed here from the clients' recorded positions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::num::NonZeroU64;
use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use journal_core::header::{ClientState, JournalHeader};
use object_store_trait::{MemStore, ObjectStore};

fn settings() -> JournalSettings {
    JournalSettings {
        order: 12,
        splay_width: 2,
        ..JournalSettings::default()
    }
}

fn open(store: &Arc<dyn ObjectStore>, s: JournalSettings) -> JournaledImage {
    let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", 1 << 20));
    JournaledImage::open(store.clone(), "j", image, s).unwrap()
}

fn write_many(ji: &JournaledImage, n: u64) {
    for i in 0..n {
        ji.write((i * 1000) % (1 << 20), Bytes::from(vec![i as u8; 900]))
            .unwrap();
    }
}

#[test]
fn committed_sets_are_trimmed() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let ji = open(&store, settings());
    write_many(&ji, 60); // ~60 entries of ~977 bytes: 4 per 4 KiB object, 8 per set
    assert!(ji.active_set() >= 6, "active set {}", ji.active_set());
    ji.wait_applied().unwrap();
    ji.flush_commit_position().unwrap();

    let header = JournalHeader::new(store.clone(), 0, "j");
    let meta = header.get_mutable_metadata().unwrap();
    assert_eq!(meta.active_set, ji.active_set());
    // §8: the commit set is the smallest object_number / W over the image client's positions.
    let client = meta.client("").unwrap();
    let commit_set = client
        .commit_position
        .object_positions
        .iter()
        .map(|p| p.object_number / 2)
        .min()
        .unwrap();
    assert_eq!(meta.minimum_set, commit_set.min(meta.active_set));
    assert!(meta.minimum_set > 0);
    let objects = common::journal_objects(store.as_ref(), 0, "j");
    assert!(
        objects.keys().all(|n| n / 2 >= meta.minimum_set),
        "trimmed sets left objects behind"
    );
    assert!(objects.keys().any(|n| n / 2 == meta.active_set));
    ji.close().unwrap();
}

/// Waits (a liveness bound, not a timing claim) until `done` holds for the header's metadata.
fn eventually(header: &JournalHeader, done: impl Fn(u64, u64) -> bool) -> (u64, u64) {
    for _ in 0..2000 {
        let meta = header.get_mutable_metadata().unwrap();
        if done(meta.minimum_set, meta.active_set) {
            return (meta.minimum_set, meta.active_set);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let meta = header.get_mutable_metadata().unwrap();
    (meta.minimum_set, meta.active_set)
}

#[test]
fn set_rollover_commits_and_trims_without_waiting_for_commit_age() {
    // A commit age far beyond the test: only the rollover can write the position and trim.
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let ji = open(
        &store,
        JournalSettings {
            commit_age: std::time::Duration::from_secs(3600),
            ..settings()
        },
    );
    write_many(&ji, 60);
    ji.wait_applied().unwrap();
    // Every entry so far is applied; the next rollover writes a position past all of them.
    let before = ji.active_set();
    let mut i = 0;
    while ji.active_set() == before {
        ji.write(i * 1000, Bytes::from(vec![7u8; 900])).unwrap();
        i += 1;
    }
    let header = JournalHeader::new(store.clone(), 0, "j");
    let (minimum, active) = eventually(&header, |min, active| min + 1 >= active);
    assert!(
        minimum + 1 >= active && minimum >= before,
        "minimum set {minimum}, active set {active}, applied through set {before}: not trimmed"
    );
    // §8: nothing left below the minimum set.
    let objects = common::journal_objects(store.as_ref(), 0, "j");
    assert!(objects.keys().all(|n| n / 2 >= minimum));
    ji.close().unwrap();
}

#[test]
fn an_uncommitted_client_holds_back_trimming() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let ji = open(&store, settings());
    let header = JournalHeader::new(store.clone(), 0, "j");
    header.client_register("peer", Bytes::new()).unwrap();
    write_many(&ji, 40);
    ji.wait_applied().unwrap();
    ji.flush_commit_position().unwrap();
    let meta = header.get_mutable_metadata().unwrap();
    assert!(meta.active_set >= 3);
    assert_eq!(meta.minimum_set, 0);
    assert!(common::journal_objects(store.as_ref(), 0, "j").contains_key(&0));
    ji.close().unwrap();
}

#[test]
fn a_laggy_client_is_disconnected_and_stops_holding_back_trimming() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let s = JournalSettings {
        max_concurrent_object_sets: NonZeroU64::new(2),
        ..settings()
    };
    let ji = open(&store, s);
    let header = JournalHeader::new(store.clone(), 0, "j");
    header.client_register("peer", Bytes::new()).unwrap();
    write_many(&ji, 12); // active set 1 at most: within the limit
    ji.wait_applied().unwrap();
    ji.flush_commit_position().unwrap();
    assert!(header.get_mutable_metadata().unwrap().active_set <= 2);
    assert_eq!(
        header.get_client("peer").unwrap().state,
        ClientState::Connected
    );
    write_many(&ji, 40);
    ji.wait_applied().unwrap();
    ji.flush_commit_position().unwrap();
    let meta = header.get_mutable_metadata().unwrap();
    // §7.3: active_set > 0 + 2 makes "peer" (no positions: set 0) laggy.
    assert!(meta.active_set > 2);
    assert_eq!(
        meta.client("peer").unwrap().state,
        ClientState::Disconnected
    );
    assert_eq!(meta.client("").unwrap().state, ClientState::Connected);
    // Once it is disconnected the next commit trims past it.
    ji.write(0, Bytes::from_static(b"x")).unwrap();
    ji.wait_applied().unwrap();
    ji.flush_commit_position().unwrap();
    assert!(header.get_mutable_metadata().unwrap().minimum_set > 0);
    ji.close().unwrap();
}

#[test]
fn the_writer_follows_an_active_set_advanced_by_someone_else() {
    // §6.3, last paragraph: a header notification shows a newer active set; the writer closes
    // its objects and continues in that set. (No commit at the rollover: the reader below must
    // find both entries uncommitted.)
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let no_early_commit = JournalSettings {
        commit_on_rollover: false,
        ..settings()
    };
    let ji = open(&store, no_early_commit);
    ji.write(0, Bytes::from_static(b"before")).unwrap();
    JournalHeader::new(store.clone(), 0, "j")
        .set_active_set(5)
        .unwrap();
    let mut polls = 0;
    while ji.active_set() != 5 {
        polls += 1;
        assert!(polls < 10_000, "writer never noticed the new active set");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    ji.write(0, Bytes::from_static(b"after")).unwrap();
    let objects = common::journal_objects(store.as_ref(), 0, "j");
    let placed: Vec<(u64, u64)> = objects
        .iter()
        .flat_map(|(n, es)| es.iter().map(move |e| (e.entry_tid, *n)))
        .collect();
    assert!(placed.contains(&(0, 0)), "{placed:?}");
    assert!(
        placed.contains(&(1, 11)),
        "entry 1 belongs in set 5, offset 1: {placed:?}"
    );
    // A reader walks over the empty sets 1..4: a second writer (nothing was committed yet)
    // replays both entries.
    let b = open(&store, settings());
    assert_eq!(b.replayed_entries(), 2);
    assert_eq!(&b.read(0, 6).unwrap()[..], b"aftere");
    drop(b);
    drop(ji);
}
