//! Two writers on one journal: once the second opens (new tag), the first one's appends are
//! refused by the store's guard — none of its entries lands after the takeover — and its header
//! updates are refused by the fenced header. Checked by decoding the data objects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalClientError, JournalSettings, JournaledImage, RecorderError};
use object_store_trait::{MemStore, ObjectStore};

fn is_fenced(e: &JournalClientError) -> bool {
    match e {
        JournalClientError::Recorder(r) => r.is_fenced(),
        JournalClientError::Header(h) => h.is_fenced(),
        JournalClientError::Stopped(s) => s.contains("fenced"),
        _ => false,
    }
}

#[test]
fn the_older_writer_is_fenced_out_of_data_objects_and_header() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let image_a: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", 1 << 16));
    let a =
        JournaledImage::open(store.clone(), "img1", image_a, JournalSettings::default()).unwrap();
    for i in 0..10u64 {
        a.write(i * 100, Bytes::from(vec![1u8; 100])).unwrap();
    }
    let tag_a = a.tag_tid();

    // Writer B (say, another process after taking the lock) opens the same journal.
    let image_b: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", 1 << 16));
    let b =
        JournaledImage::open(store.clone(), "img1", image_b, JournalSettings::default()).unwrap();
    assert!(b.tag_tid() > tag_a);
    // B replayed A's ten writes (A had not committed them yet).
    assert_eq!(b.replayed_entries(), 10);
    assert_eq!(&b.read(0, 1000).unwrap()[..], &[1u8; 1000][..]);

    // A's next write is refused by the data-object fence.
    let err = a.write(5000, Bytes::from(vec![2u8; 10])).unwrap_err();
    assert!(is_fenced(&err), "{err:?}");
    // And everything after: the recorder is latched.
    let err = a.write(6000, Bytes::from(vec![2u8; 10])).unwrap_err();
    assert!(
        matches!(
            &err,
            JournalClientError::Recorder(RecorderError::Poisoned(_))
        ),
        "{err:?}"
    );
    // A cannot move the commit position either.
    let err = a
        .header()
        .client_commit("", &Default::default())
        .unwrap_err();
    assert!(err.is_fenced());

    b.write(7000, Bytes::from(vec![3u8; 10])).unwrap();
    b.close().unwrap();
    let _ = a.close();

    // The journal holds A's ten entries and B's one, nothing else from A.
    let objects = common::journal_objects(store.as_ref(), 0, "img1");
    let entries: Vec<_> = objects.values().flatten().collect();
    let from_a = entries.iter().filter(|e| e.tag_tid == tag_a).count();
    assert_eq!(from_a, 10);
    assert_eq!(
        entries.iter().filter(|e| e.tag_tid == b.tag_tid()).count(),
        1
    );
}

#[test]
fn a_stale_recorder_cannot_append_to_any_claimed_object() {
    // The stale writer's queued entries (never sent) are refused too, even for objects it had
    // not touched before the takeover.
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let image_a: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", 1 << 16));
    let a =
        JournaledImage::open(store.clone(), "img1", image_a, JournalSettings::default()).unwrap();
    a.write(0, Bytes::from(vec![1u8; 10])).unwrap(); // object 0 only
    let image_b: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", 1 << 16));
    let b =
        JournaledImage::open(store.clone(), "img1", image_b, JournalSettings::default()).unwrap();
    // A's next entry goes to splay offset 1: an object A never claimed, B did.
    let err = a.write(0, Bytes::from(vec![9u8; 10])).unwrap_err();
    assert!(is_fenced(&err), "{err:?}");
    assert!(common::journal_objects(store.as_ref(), 0, "img1")
        .values()
        .flatten()
        .all(|e| e.tag_tid != a.tag_tid() || e.entry_tid == 0));
    drop(b);
}
