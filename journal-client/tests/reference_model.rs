//! Reference-model tests: the journaled image against a plain `MemImage` given the same
//! operations.
//!
//! * Sequential (proptest): random writes, discards, write-same, compare-and-write, flushes and
//!   ops; after **every** step the journaled image reads back exactly as the reference (the
//!   acknowledged prefix, through the read-your-writes overlay), results and errnos agree, and
//!   after close + reopen the image (and a replay of nothing) still matches.
//! * Concurrent: four threads on overlapping ranges. Each thread checks read-your-writes on its
//!   own private range after every acknowledged write; at the end the image equals the
//!   reference built by applying the journal's events in entry-tid order (decoded from the data
//!   objects by journal-core), i.e. IO was applied in journal order.
//!
//! Small settings (order 12, splay width 2, 1 KiB max payload) make writes split and sets roll
//! over during the runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use journal_client::apply::apply_io;
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalClientError, JournalSettings, JournaledImage};
use journal_core::encoding::Decode;
use journal_core::header::JournalHeader;
use journal_core::{Event, EventEntry};
use object_store_trait::{MemStore, ObjectStore};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SIZE: u64 = 64 * 1024;

fn settings() -> JournalSettings {
    JournalSettings {
        order: 12,
        splay_width: 2,
        max_payload_bytes: 1024,
        ..JournalSettings::default()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write {
        off: u64,
        len: u64,
        fill: u8,
    },
    Discard {
        off: u64,
        len: u64,
    },
    WriteSame {
        off: u64,
        reps: u64,
        pattern: Vec<u8>,
    },
    Cmp {
        off: u64,
        len: u64,
        corrupt: bool,
        fill: u8,
    },
    Flush,
    SnapCreate(u8),
    SnapRemove(u8),
    SnapRollback(u8),
    SnapProtect(u8),
    Resize(u64),
    MetaSet(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SIZE, 1..6000u64, any::<u8>()).prop_map(|(off, len, fill)| Op::Write { off, len, fill }),
        2 => (0..SIZE, 1..9000u64).prop_map(|(off, len)| Op::Discard { off, len }),
        2 => (0..SIZE, 1..300u64, proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(off, reps, pattern)| Op::WriteSame { off, reps, pattern }),
        2 => (0..SIZE, 1..200u64, any::<bool>(), any::<u8>()).prop_map(|(off, len, corrupt, fill)| Op::Cmp { off, len, corrupt, fill }),
        1 => Just(Op::Flush),
        1 => (0..3u8).prop_map(Op::SnapCreate),
        1 => (0..3u8).prop_map(Op::SnapRemove),
        1 => (0..3u8).prop_map(Op::SnapRollback),
        1 => (0..3u8).prop_map(Op::SnapProtect),
        1 => (SIZE / 2..SIZE * 2).prop_map(Op::Resize),
        1 => (0..3u8).prop_map(Op::MetaSet),
    ]
}

fn data(len: u64, fill: u8, off: u64) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| fill ^ ((off + i) % 251) as u8)
            .collect::<Vec<_>>(),
    )
}

fn errno(r: &Result<(), JournalClientError>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(JournalClientError::Image(e)) => e.errno(),
        Err(e) => panic!("journal failure: {e}"),
    }
}

fn ref_errno(r: Result<(), journal_client::image::ImageError>) -> i32 {
    r.map_or_else(|e| e.errno(), |()| 0)
}

/// Runs one op on both; returns whether the results agree.
fn step(ji: &JournaledImage, reference: &MemImage, op: &Op) {
    let size = reference.size();
    let clip = |off: u64, len: u64| -> (u64, u64) {
        let off = off % size;
        (off, len.min(size - off).max(1))
    };
    let (got, want) = match op {
        Op::Write { off, len, fill } => {
            let (off, len) = clip(*off, *len);
            let d = data(len, *fill, off);
            (
                errno(&ji.write(off, d.clone())),
                ref_errno(reference.write(off, d)),
            )
        }
        Op::Discard { off, len } => {
            let (off, len) = clip(*off, *len);
            (
                errno(&ji.discard(off, len)),
                ref_errno(reference.discard(off, len)),
            )
        }
        Op::WriteSame { off, reps, pattern } => {
            let len = reps * pattern.len() as u64;
            let off = off % size;
            if off + len > size {
                return;
            }
            let p = Bytes::from(pattern.clone());
            (
                errno(&ji.write_same(off, len, p.clone())),
                ref_errno(reference.write_same(off, len, p)),
            )
        }
        Op::Cmp {
            off,
            len,
            corrupt,
            fill,
        } => {
            let (off, len) = clip(*off, *len);
            let mut cmp = reference.read(off, len).unwrap().to_vec();
            if *corrupt {
                cmp[0] ^= 1;
            }
            let cmp = Bytes::from(cmp);
            let d = data(len, *fill, off);
            (
                errno(&ji.compare_and_write(off, cmp.clone(), d.clone())),
                ref_errno(reference.compare_and_write(off, cmp, d)),
            )
        }
        Op::Flush => (errno(&ji.flush()), 0),
        Op::SnapCreate(n) => {
            let name = format!("s{n}");
            (
                errno(&ji.snap_create(&name)),
                ref_errno(reference.snap_create(&name).map(drop)),
            )
        }
        Op::SnapRemove(n) => {
            let name = format!("s{n}");
            (
                errno(&ji.snap_remove(&name)),
                ref_errno(reference.snap_remove(&name)),
            )
        }
        Op::SnapRollback(n) => {
            let name = format!("s{n}");
            (
                errno(&ji.snap_rollback(&name)),
                ref_errno(reference.snap_rollback(&name)),
            )
        }
        Op::SnapProtect(n) => {
            let name = format!("s{n}");
            (
                errno(&ji.snap_protect(&name)),
                ref_errno(reference.snap_protect(&name)),
            )
        }
        Op::Resize(s) => (errno(&ji.resize(*s)), ref_errno(reference.resize(*s))),
        Op::MetaSet(n) => {
            let k = format!("k{n}");
            (
                errno(&ji.metadata_set(&k, "v")),
                ref_errno(reference.metadata_set(&k, "v")),
            )
        }
    };
    assert_eq!(got, want, "{op:?}");
}

fn same_content(ji: &JournaledImage, reference: &MemImage) {
    assert_eq!(ji.size(), reference.size());
    let got = ji.read(0, ji.size()).unwrap();
    let want = reference.read(0, reference.size()).unwrap();
    assert!(got == want, "image differs from the reference");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sequential_ops_match_the_reference(ops in proptest::collection::vec(op(), 1..40)) {
        let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
        let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", SIZE));
        let reference = MemImage::new("img", SIZE);
        let ji = JournaledImage::open(store.clone(), "j", image.clone(), settings()).unwrap();
        for op in &ops {
            step(&ji, &reference, op);
            same_content(&ji, &reference);
        }
        ji.close().unwrap();
        assert_eq!(image.read(0, image.size()).unwrap(), reference.read(0, reference.size()).unwrap());
        assert_eq!(image.meta().snaps, reference.meta().snaps);
        assert_eq!(image.meta().metadata, reference.meta().metadata);
        let ji = JournaledImage::open(store, "j", image, settings()).unwrap();
        prop_assert_eq!(ji.replayed_entries(), 0);
        same_content(&ji, &reference);
    }
}

#[test]
fn concurrent_writers_apply_in_journal_order() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("img", SIZE));
    let ji = Arc::new(JournaledImage::open(store.clone(), "j", image.clone(), settings()).unwrap());
    // A second client that never commits keeps every set from being trimmed (spec §8).
    JournalHeader::new(store.clone(), 0, "j")
        .client_register("oracle", Bytes::new())
        .unwrap();
    let shared = SIZE / 2; // [0, shared) is fought over; each thread owns a slice above it
    let own = (SIZE - shared) / 4;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let ji = ji.clone();
            std::thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(t);
                let mine = shared + t * own;
                for i in 0..60u64 {
                    let fill = (t * 64 + i) as u8;
                    match rng.gen_range(0..10) {
                        0..=4 => {
                            let off = rng.gen_range(0..shared - 3000);
                            let len = rng.gen_range(1..3000);
                            ji.write(off, data(len, fill, off)).unwrap();
                        }
                        5 => {
                            let off = rng.gen_range(0..shared - 3000);
                            ji.discard(off, rng.gen_range(1..3000)).unwrap();
                        }
                        6 => ji.flush().unwrap(),
                        _ => {
                            // Read-your-writes on the private slice, right after the ack.
                            let off = mine + rng.gen_range(0..own - 2500);
                            let len = rng.gen_range(1..2500);
                            let d = data(len, fill, off);
                            ji.write(off, d.clone()).unwrap();
                            assert_eq!(ji.read(off, len).unwrap(), d);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let before_close = ji.read(0, SIZE).unwrap();
    ji.close().unwrap();
    assert_eq!(image.read(0, SIZE).unwrap(), before_close);

    // The oracle: the journal's IO events applied in entry-tid order to a fresh image.
    let reference = MemImage::new("img", SIZE);
    let mut entries: Vec<_> = common::journal_objects(store.as_ref(), 0, "j")
        .into_values()
        .flatten()
        .collect();
    entries.sort_by_key(|e| (e.tag_tid, e.entry_tid));
    let tids: Vec<u64> = entries.iter().map(|e| e.entry_tid).collect();
    assert_eq!(
        tids,
        (0..tids.len() as u64).collect::<Vec<_>>(),
        "every entry present once"
    );
    for e in entries {
        let ev = EventEntry::from_bytes(e.data).unwrap().event;
        if !matches!(ev, Event::AioFlush) {
            apply_io(&reference, &ev).unwrap();
        }
    }
    assert!(
        reference.read(0, SIZE).unwrap() == before_close,
        "image is not the journal applied in order"
    );
}
