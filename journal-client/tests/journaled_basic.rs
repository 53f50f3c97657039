//! The journaled image end to end on a `MemStore`: what it writes to the journal is checked by
//! decoding the data objects with journal-core (librbd's event layout and split rule), what it
//! reads back against a plain byte model, and the header state against the spec's registration
//! rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, ImageError, MemImage};
use journal_client::{JournalClientError, JournalSettings, JournaledImage};
use journal_core::client_data::{ClientData, ClientMeta};
use journal_core::encoding::Decode;
use journal_core::header::JournalHeader;
use journal_core::{Event, EventEntry};
use object_store_trait::{MemStore, ObjectStore};

fn events(store: &dyn ObjectStore) -> Vec<(u64, u64, Event)> {
    let mut out = Vec::new();
    for (_, entries) in common::journal_objects(store, 0, "img1") {
        for e in entries {
            out.push((
                e.tag_tid,
                e.entry_tid,
                EventEntry::from_bytes(e.data).unwrap().event,
            ));
        }
    }
    out.sort_by_key(|(t, e, _)| (*t, *e));
    out
}

#[test]
fn writes_are_journaled_like_librbd_and_read_back() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", 1 << 20));
    let ji = JournaledImage::open(
        store.clone(),
        "img1",
        image.clone(),
        JournalSettings::default(),
    )
    .unwrap();
    assert_eq!(
        ji.tag_tid(),
        1,
        "tag 0 is the creation tag, the writer gets tag 1"
    );

    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
    ji.write(100, Bytes::from(big.clone())).unwrap();
    ji.discard(200, 50).unwrap();
    ji.write_same(50_000, 64, Bytes::from_static(b"ab"))
        .unwrap();
    let r = ji.compare_and_write(0, Bytes::from_static(b"\0\0"), Bytes::from_static(b"ok"));
    r.unwrap();
    let r = ji.compare_and_write(0, Bytes::from_static(b"no"), Bytes::from_static(b"xx"));
    assert!(matches!(
        r,
        Err(JournalClientError::Image(ImageError::CompareMismatch {
            offset: 0
        }))
    ));
    ji.flush().unwrap();

    let mut model = vec![0u8; 1 << 20];
    model[100..40_100].copy_from_slice(&big);
    model[200..250].fill(0);
    for i in 0..64 {
        model[50_000 + i] = b"ab"[i % 2];
    }
    model[0..2].copy_from_slice(b"ok");
    assert_eq!(&ji.read(0, 1 << 20).unwrap()[..], &model[..]);
    ji.snap_create("s1").unwrap();
    ji.resize(2 << 20).unwrap();
    assert_eq!(ji.size(), 2 << 20);
    ji.close().unwrap();
    assert_eq!(&image.read(0, 1 << 20).unwrap()[..], &model[..]);
    assert_eq!(image.snap_list().unwrap()[0].name, "s1");

    // librbd's split: max payload 16384 -> 16340 data bytes per AioWrite.
    let ev = events(store.as_ref());
    let writes: Vec<(u64, u64)> = ev
        .iter()
        .filter_map(|(_, _, e)| match e {
            Event::AioWrite { offset, length, .. } => Some((*offset, *length)),
            _ => None,
        })
        .collect();
    assert_eq!(writes, vec![(100, 16340), (16440, 16340), (32780, 7320)]);
    assert!(ev.iter().all(|(tag, _, _)| *tag == 1));
    assert_eq!(
        ev.iter().map(|(_, e, _)| *e).collect::<Vec<_>>(),
        (0..ev.len() as u64).collect::<Vec<_>>()
    );
    let names: Vec<&str> = ev.iter().map(|(_, _, e)| e.name()).collect();
    assert_eq!(
        names,
        vec![
            "AioWrite",
            "AioWrite",
            "AioWrite",
            "AioDiscard",
            "AioWriteSame",
            "AioCompareAndWrite",
            "AioCompareAndWrite",
            "AioFlush",
            "SnapCreate",
            "OpFinish",
            "Resize",
            "OpFinish"
        ]
    );
    assert!(matches!(
        ev[9].2,
        Event::OpFinish {
            op_tid: 1,
            result: 0
        }
    ));
    assert!(matches!(
        ev[11].2,
        Event::OpFinish {
            op_tid: 2,
            result: 0
        }
    ));

    // Header: the image client is registered with the tag class, and its position covers the
    // last entry.
    let header = JournalHeader::new(store.clone(), 0, "img1");
    let client = header.get_client("").unwrap();
    let ClientMeta::Image(meta) = ClientData::from_bytes(client.data).unwrap().meta else {
        panic!()
    };
    assert_eq!(meta.tag_class, 0);
    let newest = client.commit_position.first().unwrap();
    assert_eq!((newest.tag_tid, newest.entry_tid), (1, ev.len() as u64 - 1));
}

#[test]
fn failed_ops_record_their_errno_and_reopen_replays_nothing_twice() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", 4096));
    let ji = JournaledImage::open(
        store.clone(),
        "img1",
        image.clone(),
        JournalSettings::default(),
    )
    .unwrap();
    ji.snap_create("a").unwrap();
    // Refused by the pre-journal check (as librbd's own checks): no entries.
    let err = ji.snap_create("a").unwrap_err();
    assert!(
        matches!(
            err,
            JournalClientError::Image(ImageError::SnapExists { .. })
        ),
        "{err:?}"
    );
    ji.snap_protect("a").unwrap();
    assert!(ji.snap_remove("a").is_err());
    // Fails while executing: recorded with its errno (-EINVAL, in Flatten's re-apply set).
    assert!(ji.flatten().is_err());
    ji.write(0, Bytes::from_static(b"hello")).unwrap();
    ji.close().unwrap();
    let ev = events(store.as_ref());
    let names: Vec<&str> = ev.iter().map(|(_, _, e)| e.name()).collect();
    assert_eq!(
        names,
        vec![
            "SnapCreate",
            "OpFinish",
            "SnapProtect",
            "OpFinish",
            "Flatten",
            "OpFinish",
            "AioWrite"
        ]
    );
    assert!(matches!(
        ev[5].2,
        Event::OpFinish {
            op_tid: 3,
            result: -22
        }
    ));

    let ji = JournaledImage::open(
        store.clone(),
        "img1",
        image.clone(),
        JournalSettings::default(),
    )
    .unwrap();
    assert_eq!(ji.replayed_entries(), 0);
    assert_eq!(ji.tag_tid(), 2);
    assert_eq!(&ji.read(0, 5).unwrap()[..], b"hello");
}
