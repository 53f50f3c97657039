//! Crash recovery: the journal and an object-backed image share one `CrashStore`, which crashes
//! at durability boundary k (the interrupted mutation lost, torn or applied — seeded), for every
//! k of a workload of three concurrent writers. The surviving store is reopened and recovered.
//!
//! Invariants checked after recovery, against an oracle built independently from the surviving
//! bytes (journal-core's object scanner and a plain `Vec<u8>` model):
//! * the image equals the model obtained by applying, in entry-tid order, every complete entry
//!   before the first missing entry tid (so entries after a torn or lost append are not applied,
//!   and nothing that was never written appears);
//! * image-meta holds exactly the `MetadataSet` ops of that prefix (an op whose `OpFinish` was
//!   lost is executed at recovery, as librbd does on an orderly replay shutdown);
//! * every write and op acknowledged before the crash is among those entries;
//! * the recovered image accepts new writes and a clean reopen replays nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, ObjectImage};
use journal_client::{JournalSettings, JournaledImage};
use journal_core::encoding::Decode;
use journal_core::layout::{data_oid_prefix, parse_data_oid};
use journal_core::{scan_object, Event, EventEntry};
use object_store_trait::testing::{CrashMode, CrashStore};
use object_store_trait::{MemSnapshot, ObjectStore};
use parking_lot::Mutex;

const IMAGE_SIZE: u64 = 3 * 65536;
const THREADS: u8 = 3;
const WRITES: u8 = 8;

/// A fresh image; with `prefill`, its data objects already hold the whole (zeroed) image, so
/// every write of the workload is an in-place overwrite, which the image leaves unsynced until
/// its flush (`ObjectStore::write_at_unsynced`).
fn setup(prefill: bool) -> MemSnapshot {
    let store = Arc::new(CrashStore::new(0));
    let image = ObjectImage::create(store.clone(), "imgid", "img", IMAGE_SIZE).unwrap();
    if prefill {
        image
            .write(0, Bytes::from(vec![0u8; IMAGE_SIZE as usize]))
            .unwrap();
        image.flush().unwrap();
    }
    store.durable_snapshot()
}

/// Runs the workload until done or until the store crashes; returns the acknowledged writes
/// as `(thread, index)`.
fn workload(store: Arc<CrashStore>) -> Vec<(u8, u8)> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let image: Arc<dyn BlockImage> = match ObjectImage::open(store.clone(), "imgid") {
        Ok(i) => Arc::new(i),
        Err(_) => return Vec::new(),
    };
    let Ok(ji) = JournaledImage::open(store.clone(), "img1", image, JournalSettings::default())
    else {
        return Vec::new();
    };
    let ji = Arc::new(ji);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let ji = ji.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let base = u64::from(t) * 65536;
                for i in 0..WRITES {
                    let off = base + u64::from(i) * 5000;
                    let r = match i % 4 {
                        1 if t == 0 => ji.metadata_set(&format!("k{i}"), "v"),
                        3 => ji.discard(off + 10, 300),
                        2 => ji.write_same(off, 512, Bytes::from(vec![t, i, 0xee, 0xff])),
                        _ => {
                            let mut data = vec![
                                t.wrapping_mul(31).wrapping_add(i);
                                3000 + usize::from(i) * 100
                            ];
                            data[0] = t;
                            data[1] = i;
                            ji.write(off, Bytes::from(data))
                        }
                    };
                    match r {
                        Ok(()) => acked.lock().push((t, i)),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let _ = ji.flush();
    drop(ji);
    let out = acked.lock().clone();
    out
}

/// Complete entries of every data object, by (tag, entry tid).
fn surviving_entries(store: &dyn ObjectStore) -> BTreeMap<(u64, u64), Event> {
    let prefix = data_oid_prefix(0, "img1");
    let mut out = BTreeMap::new();
    for oid in store.list(&prefix).unwrap() {
        assert!(parse_data_oid(0, "img1", &oid).is_some());
        let size = store.stat(&oid).unwrap().size;
        let scan = scan_object(&store.read(&oid, 0, size).unwrap(), 0);
        assert!(scan.corrupt.is_empty(), "corrupt bytes in {oid}");
        for e in scan.entries {
            let ev = EventEntry::from_bytes(e.entry.data).unwrap().event;
            out.insert((e.entry.tag_tid, e.entry.entry_tid), ev);
        }
    }
    out
}

/// The image bytes and image-meta keys the surviving journal prefix implies.
fn model_of(entries: &BTreeMap<(u64, u64), Event>, acked: &[(u8, u8)]) -> (Vec<u8>, Vec<String>) {
    let mut model = vec![0u8; IMAGE_SIZE as usize];
    let mut keys = Vec::new();
    let tags: Vec<u64> = entries.keys().map(|(t, _)| *t).collect();
    let Some(tag) = tags.first().copied() else {
        assert!(
            acked.is_empty(),
            "acknowledged writes but no journal entries"
        );
        return (model, keys);
    };
    assert!(
        tags.iter().all(|t| *t == tag),
        "one writer tag before recovery"
    );
    let mut applied = Vec::new();
    let mut next = 0u64;
    while let Some(ev) = entries.get(&(tag, next)) {
        match ev {
            Event::AioWrite { offset, data, .. } => {
                model[*offset as usize..*offset as usize + data.len()].copy_from_slice(data);
                applied.push((data[0], data[1]));
            }
            Event::AioDiscard { offset, length, .. } => {
                model[*offset as usize..(*offset + *length) as usize].fill(0);
            }
            Event::AioWriteSame {
                offset,
                length,
                data,
            } => {
                for k in 0..*length as usize {
                    model[*offset as usize + k] = data[k % data.len()];
                }
                applied.push((data[0], data[1]));
            }
            Event::AioFlush | Event::OpFinish { .. } => {}
            Event::MetadataSet { key, .. } => {
                keys.push(key.clone());
                applied.push((0, key[1..].parse().unwrap()));
            }
            other => panic!("unexpected event {other:?}"),
        }
        next += 1;
    }
    for a in acked {
        let is_discard = a.1 % 4 == 3;
        assert!(
            is_discard || applied.contains(a),
            "acknowledged write {a:?} lost"
        );
    }
    (model, keys)
}

fn check_crash_at(base: &MemSnapshot, seed: u64, k: u64) -> bool {
    let store = Arc::new(CrashStore::from_snapshot(base.clone(), seed));
    store.crash_at(k, CrashMode::Random);
    let acked = workload(store.clone());
    let crashed = store.is_crashed();
    let survived: Arc<dyn ObjectStore> = Arc::new(store.reopen());

    let entries = surviving_entries(survived.as_ref());
    let (model, keys) = model_of(&entries, &acked);

    let image: Arc<dyn BlockImage> =
        Arc::new(ObjectImage::open(survived.clone(), "imgid").unwrap());
    let ji = JournaledImage::open(
        survived.clone(),
        "img1",
        image.clone(),
        JournalSettings::default(),
    )
    .unwrap_or_else(|e| panic!("seed {seed} k {k}: recovery failed: {e}"));
    let got = ji.read(0, IMAGE_SIZE).unwrap();
    assert!(
        got[..] == model[..],
        "seed {seed} k {k}: recovered image differs from the journal prefix"
    );
    let meta_keys: Vec<String> = image.metadata_list().unwrap().into_keys().collect();
    assert_eq!(
        meta_keys, keys,
        "seed {seed} k {k}: image-meta differs from the journal prefix"
    );
    ji.write(0, Bytes::from_static(b"after")).unwrap();
    ji.close().unwrap();
    drop(ji);
    let again =
        JournaledImage::open(survived, "img1", image.clone(), JournalSettings::default()).unwrap();
    assert_eq!(again.replayed_entries(), 0, "seed {seed} k {k}");
    assert_eq!(&again.read(0, 5).unwrap()[..], b"after");
    crashed
}

/// Counts the boundaries of a crash-free run, then crashes at every one (two seeds each);
/// returns the crash-free run's store.
fn crash_everywhere(base: &MemSnapshot) -> Arc<CrashStore> {
    let probe = Arc::new(CrashStore::from_snapshot(base.clone(), 1));
    let acked = workload(probe.clone());
    assert_eq!(acked.len(), usize::from(THREADS) * usize::from(WRITES));
    let n = probe.boundaries();
    assert!(n > 20, "{n} boundaries");
    let mut crashes = 0;
    for seed in [11u64, 12] {
        for k in 1..=n + 2 {
            crashes += u64::from(check_crash_at(base, seed * 1000 + k, k));
        }
    }
    assert!(crashes >= n, "only {crashes} runs crashed");
    probe
}

#[test]
fn every_crash_point_recovers_the_acknowledged_prefix() {
    crash_everywhere(&setup(false));
}

/// The same with every image write an overwrite the store leaves unsynced until the image's
/// flush: a crash loses those writes unless a flush synced them, so recovery must replay
/// every entry the commit position does not cover (the image is flushed before the journal
/// records a commit).
#[test]
fn every_crash_point_recovers_with_unsynced_image_writes() {
    let probe = crash_everywhere(&setup(true));
    assert!(
        probe.unsynced_writes() > 0,
        "no write took the unsynced path"
    );
}
