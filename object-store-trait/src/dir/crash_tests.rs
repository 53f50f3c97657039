//! Crash states of data files (store format 2) and handles that behave like separate processes.
//!
//! Crash model: a crash between two `fdatasync`s of a data file can leave every 512-byte sector
//! written since the first one either old or new, independently, and the file's length either
//! old or new. The tests capture the file's contents at every sync (`SYNC_POINTS`), build such
//! mixtures of consecutive states, open them as a fresh store and compare with a reference model
//! of the acknowledged operations (the writers run unsynced to keep the tests fast; the sync
//! points are the same): a recovered object must equal the state before or after the
//! interrupted operation (an in-place write may be partly applied inside its range), `stat` must
//! agree with the bytes read, and the store must keep working.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::datafile::SYNC_POINTS;
use super::*;
use crate::ObjectStoreExt;

const SECTOR: usize = 512;

/// Runs `op`, returning the data file's contents after every `fdatasync` it issued.
fn sync_points<T>(op: impl FnOnce() -> T) -> (T, Vec<Vec<u8>>) {
    SYNC_POINTS.with(|p| *p.borrow_mut() = Some(Vec::new()));
    let out = op();
    (out, SYNC_POINTS.with(|p| p.borrow_mut().take().unwrap()))
}

/// A state a crash between syncs leaving `before` and `after` can produce.
fn torn(before: &[u8], after: &[u8], rng: &mut SmallRng) -> Vec<u8> {
    let len = if rng.gen() { before.len() } else { after.len() };
    let mut out = Vec::with_capacity(len);
    for start in (0..len).step_by(SECTOR) {
        let src = if rng.gen() { before } else { after };
        let end = (start + SECTOR).min(len);
        let have = src.get(start..end.min(src.len())).unwrap_or_default();
        out.extend_from_slice(have);
        // Past the end of the chosen version the sector was never written: a hole (zeros).
        out.resize(end, 0);
    }
    out
}

/// A store directory for recovered states: object `o` gets the given data file each time.
struct Recovery {
    dir: tempfile::TempDir,
}

impl Recovery {
    fn new() -> Recovery {
        let dir = tempfile::tempdir().unwrap();
        drop(DirStore::open(dir.path(), DirStoreOptions::unsynced()).unwrap());
        fs::create_dir_all(dir.path().join("objects/o")).unwrap();
        Recovery { dir }
    }

    /// Opens the store with `bytes` as the data file of `o` (no other handle may be alive).
    fn open(&self, bytes: &[u8]) -> DirStore {
        fs::write(self.dir.path().join("objects/o/data"), bytes).unwrap();
        DirStore::open(self.dir.path(), DirStoreOptions::unsynced()).unwrap()
    }
}

fn random_batch(rng: &mut SmallRng) -> Vec<Bytes> {
    let len = if rng.gen_ratio(1, 32) {
        // Large: lifts the moving average of append sizes (weight 1/4) above
        // PREALLOC_AVG_MAX (128 KiB) at once, so the append extends the file without zero-filling.
        rng.gen_range(530_000..560_000)
    } else if rng.gen_ratio(1, 8) {
        rng.gen_range(20_000..90_000) // crosses preallocation steps
    } else {
        rng.gen_range(1..700)
    };
    let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    let cut = rng.gen_range(0..=len);
    vec![
        Bytes::copy_from_slice(&bytes[..cut]),
        Bytes::copy_from_slice(&bytes[cut..]),
    ]
}

/// Checks a recovered store against the models before and after the interrupted operation
/// (`range`: the byte range an in-place write could leave partly written).
/// Returns whether the operation survived (the object has its new size).
fn check_recovered(
    store: &DirStore,
    old: &[u8],
    new: &[u8],
    range: std::ops::Range<usize>,
) -> bool {
    let got = store.read_all("o").unwrap();
    assert_eq!(
        store.stat("o").unwrap().size,
        got.len() as u64,
        "stat vs read"
    );
    assert!(
        got.len() == old.len() || got.len() == new.len(),
        "size {} is neither {} nor {}",
        got.len(),
        old.len(),
        new.len()
    );
    if got == new || got == old {
        return got.len() == new.len();
    }
    for (i, b) in got.iter().enumerate() {
        let as_new = new.get(i) == Some(b);
        let as_old = old.get(i) == Some(b) && (got.len() == old.len() || i < old.len());
        let old_allowed = range.contains(&i) || got.len() == old.len();
        assert!(
            as_new || (as_old && old_allowed),
            "byte {i} = {b:#x}: old {:?}, new {:?}, range {range:?}",
            old.get(i),
            new.get(i)
        );
    }
    if got.len() == old.len() && old.len() != new.len() {
        // An undone extension must leave the old bytes outside the write's range.
        for i in (0..old.len()).filter(|i| !range.contains(i)) {
            assert_eq!(got[i], old[i], "byte {i} outside the write changed");
        }
    }
    got.len() == new.len()
}

#[test]
fn torn_appends_recover_to_before_or_after() {
    let mut survived = [0usize; 2];
    for seed in 0..9u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let work = tempfile::tempdir().unwrap();
        let store = DirStore::open(work.path(), DirStoreOptions::unsynced()).unwrap();
        let recovery = Recovery::new();
        let first = Bytes::from_static(b"first");
        let log = seed % 3 != 1;
        if seed % 3 == 2 {
            // A log-mode file reused from a removed object, full of its old segments.
            for _ in 0..4 {
                store
                    .append("old", &random_batch(&mut rng), &AppendGuard::none())
                    .unwrap();
            }
            store.remove("old").unwrap();
        }
        if log {
            // Created by an append: a log-mode data file (segments).
            store.append("o", &[first], &AppendGuard::none()).unwrap();
        } else {
            // Created by a write: a sized data file (size records).
            store.write_full("o", first).unwrap();
        }
        assert_eq!(store.data_file("o").unwrap().unwrap().0.is_log(), log);
        assert_eq!(fs::read_dir(work.path().join("spare")).unwrap().count(), 0);
        let mut model = b"first".to_vec();
        let mut prev = fs::read(work.path().join("objects/o/data")).unwrap();
        for k in 0..24 {
            let batch = random_batch(&mut rng);
            let (off, points) =
                sync_points(|| store.append("o", &batch, &AppendGuard::none()).unwrap());
            assert_eq!(off, model.len() as u64);
            assert_eq!(points.len(), 1, "one fdatasync per append");
            let mut next = model.clone();
            batch.iter().for_each(|b| next.extend_from_slice(b));
            for trial in 0..3 {
                let crashed = torn(&prev, &points[0], &mut rng);
                let recovered = recovery.open(&crashed);
                survived[usize::from(check_recovered(&recovered, &model, &next, 0..0))] += 1;
                if trial == 0 && k % 4 == 0 {
                    // The recovered object takes new appends, and they survive a reopen.
                    let got = recovered.read_all("o").unwrap();
                    let at = recovered
                        .append("o", &[Bytes::from_static(b"after")], &AppendGuard::none())
                        .unwrap();
                    assert_eq!(at, got.len() as u64);
                    drop(recovered);
                    let again = DirStore::open(recovery.dir.path(), DirStoreOptions::unsynced())
                        .unwrap()
                        .read_all("o")
                        .unwrap();
                    assert_eq!(&again[..got.len()], &got[..]);
                    assert_eq!(&again[got.len()..], b"after");
                }
            }
            model = next;
            prev = points.into_iter().next().unwrap();
        }
        assert_eq!(store.read_all("o").unwrap(), model);
    }
    // Both outcomes occur, so the crash states really tear appends.
    assert!(survived[0] > 20 && survived[1] > 20, "{survived:?}");
}

#[test]
fn torn_in_place_writes_keep_bytes_outside_their_range() {
    let opts = DirStoreOptions {
        mmap_reads: false,
        ..DirStoreOptions::unsynced()
    };
    for seed in 0..6u64 {
        let mut rng = SmallRng::seed_from_u64(100 + seed);
        let work = tempfile::tempdir().unwrap();
        let store = DirStore::open(work.path(), opts.clone()).unwrap();
        let recovery = Recovery::new();
        let mut model: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        // Created by a write: a sized data file, which takes writes in place.
        store.write_full("o", Bytes::from(model.clone())).unwrap();
        let mut prev = fs::read(work.path().join("objects/o/data")).unwrap();
        for _ in 0..20 {
            let len = rng.gen_range(1..5000usize);
            let offset = match rng.gen_range(0..4) {
                0 => rng.gen_range(0..model.len()),        // inside
                1 => model.len().saturating_sub(len / 2),  // straddles the end
                2 => model.len() + rng.gen_range(1..3000), // past the end, gap
                _ => usize::MAX,                           // an append instead
            };
            let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let mut next = model.clone();
            let range;
            let ((), points) = if offset == usize::MAX {
                next.extend_from_slice(&data);
                range = 0..0;
                sync_points(|| {
                    store
                        .append("o", &[Bytes::from(data.clone())], &AppendGuard::none())
                        .map(|_| ())
                        .unwrap()
                })
            } else {
                let end = offset + len;
                if next.len() < end {
                    next.resize(end, 0);
                }
                next[offset..end].copy_from_slice(&data);
                range = offset..end;
                sync_points(|| {
                    store
                        .write_at("o", offset as u64, Bytes::from(data.clone()))
                        .unwrap()
                })
            };
            let mut before = prev.clone();
            for point in &points {
                for _ in 0..3 {
                    let crashed = torn(&before, point, &mut rng);
                    let _ = check_recovered(&recovery.open(&crashed), &model, &next, range.clone());
                }
                before = point.clone();
            }
            model = next;
            prev = points.last().cloned().unwrap_or(prev);
        }
        assert_eq!(store.read_all("o").unwrap(), model);
    }
}

#[test]
fn handles_in_other_processes_follow_replacements_and_removals() {
    let tmp = tempfile::tempdir().unwrap();
    let a = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    let b = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    let none = AppendGuard::none();
    a.append("x", &[Bytes::from_static(b"one")], &none).unwrap();
    assert_eq!(b.read_all("x").unwrap(), &b"one"[..]); // b caches the file too
    b.write_full("x", Bytes::from_static(b"two")).unwrap();
    // a's open file is the replaced one: its next append must land in the new file.
    assert_eq!(
        a.append("x", &[Bytes::from_static(b"+3")], &none).unwrap(),
        3
    );
    assert_eq!(b.read_all("x").unwrap(), &b"two+3"[..]);
    assert_eq!(a.stat("x").unwrap().size, 5);
    b.append("x", &[Bytes::from_static(b"+4")], &none).unwrap();
    assert_eq!(a.read_all("x").unwrap(), &b"two+3+4"[..]);
    a.remove("x").unwrap();
    assert!(b.stat("x").unwrap_err().is_not_found());
    assert!(b.read("x", 0, 1).unwrap_err().is_not_found());
    b.append("x", &[Bytes::from_static(b"new")], &none).unwrap();
    assert_eq!(a.read_all("x").unwrap(), &b"new"[..]);
    a.append("x", &[Bytes::from_static(b"er")], &none).unwrap();
    assert_eq!(b.read_all("x").unwrap(), &b"newer"[..]);
}

#[test]
fn writer_killed_between_retire_and_rename_leaves_a_usable_object() {
    let tmp = tempfile::tempdir().unwrap();
    let a = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    a.append("x", &[Bytes::from_static(b"data")], &AppendGuard::none())
        .unwrap();
    {
        // What a write_full that died after marking the file retired leaves behind.
        let (file, snap) = a.data_file("x").unwrap().unwrap();
        file.retire(&snap).unwrap();
    }
    let b = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    assert_eq!(b.read_all("x").unwrap(), &b"data"[..]);
    // `a` still has the retired file open: it reopens it by path, finds the same file, uses it.
    assert_eq!(a.read_all("x").unwrap(), &b"data"[..]);
    a.append("x", &[Bytes::from_static(b"+a")], &AppendGuard::none())
        .unwrap();
    b.append("x", &[Bytes::from_static(b"+b")], &AppendGuard::none())
        .unwrap();
    assert_eq!(a.read_all("x").unwrap(), &b"data+a+b"[..]);
    assert_eq!(b.stat("x").unwrap().size, 8);
}

#[test]
fn open_file_cache_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = DirStoreOptions {
        open_files: 2,
        ..DirStoreOptions::unsynced()
    };
    let store = DirStore::open_unshared(tmp.path(), opts).unwrap();
    let mut model = vec![Vec::new(); 5];
    for round in 0..4u8 {
        for (i, want) in model.iter_mut().enumerate() {
            let chunk = vec![round * 10 + i as u8; 3 + i];
            store
                .append(
                    &format!("o{i}"),
                    &[Bytes::from(chunk.clone())],
                    &AppendGuard::none(),
                )
                .unwrap();
            want.extend_from_slice(&chunk);
            assert!(store.shared.files.len() <= 2);
        }
    }
    for (i, want) in model.iter().enumerate() {
        assert_eq!(store.read_all(&format!("o{i}")).unwrap(), &want[..]);
    }
}

#[test]
fn failed_append_over_a_torn_one_stays_invisible() {
    for log in [false, true] {
        failed_append_over_a_torn_one(log);
    }
}

fn failed_append_over_a_torn_one(log: bool) {
    let work = tempfile::tempdir().unwrap();
    let store = DirStore::open(work.path(), DirStoreOptions::unsynced()).unwrap();
    let first = Bytes::from_static(b"first");
    if log {
        store.append("o", &[first], &AppendGuard::none()).unwrap();
    } else {
        store.write_full("o", first).unwrap();
    }
    let batch = Bytes::from((0..100u8).map(|i| i ^ 0x5a).collect::<Vec<u8>>());
    store
        .append("o", std::slice::from_ref(&batch), &AppendGuard::none())
        .unwrap();
    // A crash persisted the append's size record (or segment header) but not its bytes. Object
    // data starts at 4096; in a log-mode file each segment has a 40-byte header before its data.
    let mut crashed = fs::read(work.path().join("objects/o/data")).unwrap();
    let at = if log { 4096 + 40 + 5 + 40 } else { 4096 + 5 };
    assert_eq!(&crashed[at..at + 100], &batch[..]);
    crashed[at..at + 100].fill(0);
    let recovery = Recovery::new();
    let recovered = recovery.open(&crashed);
    assert_eq!(recovered.read_all("o").unwrap(), &b"first"[..]);
    // The same append again, failing after all its bytes reached the file: its error must leave
    // no record behind that those bytes would now satisfy.
    super::fsutil::FAIL_WRITE_AFTER.with(|f| f.set(Some(100)));
    let err = recovered
        .append("o", std::slice::from_ref(&batch), &AppendGuard::none())
        .unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert_eq!(recovered.read_all("o").unwrap(), &b"first"[..]);
    drop(recovered);
    let reopened = DirStore::open(recovery.dir.path(), DirStoreOptions::unsynced()).unwrap();
    assert_eq!(reopened.read_all("o").unwrap(), &b"first"[..]);
}

/// Unsynced writes of an image object (overwrites, and extensions with gaps), interrupted
/// before their `sync_objects`: every 512-byte sector of the file old or new. The object must
/// come back with its old or its new size, bytes below the old size old or new, bytes past it
/// new or zero (what the file held there), and nothing made durable earlier lost.
#[test]
fn torn_unsynced_writes_keep_durable_bytes() {
    let opts = DirStoreOptions {
        mmap_reads: false,
        ..DirStoreOptions::default()
    };
    let mut sizes = [0usize; 2];
    for seed in 0..6u64 {
        let mut rng = SmallRng::seed_from_u64(200 + seed);
        let work = tempfile::tempdir().unwrap();
        let store = DirStore::open(work.path(), opts.clone()).unwrap();
        let recovery = Recovery::new();
        let mut model: Vec<u8> = (0..5000).map(|_| rng.gen()).collect();
        store
            .write_at_unsynced("o", 0, Bytes::from(model.clone()))
            .unwrap();
        let path = work.path().join("objects/o/data");
        let mut prev = fs::read(&path).unwrap();
        for _ in 0..12 {
            let mut next = model.clone();
            for _ in 0..rng.gen_range(1..5) {
                let len = rng.gen_range(1..3000usize);
                let offset = match rng.gen_range(0..3) {
                    0 => rng.gen_range(0..next.len()),
                    1 => next.len().saturating_sub(len / 2),
                    _ => next.len() + rng.gen_range(0..2000),
                };
                let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                store
                    .write_at_unsynced("o", offset as u64, Bytes::from(data.clone()))
                    .unwrap();
                if next.len() < offset + len {
                    next.resize(offset + len, 0);
                }
                next[offset..offset + len].copy_from_slice(&data);
            }
            // What a completed sync would persist: the file as this process sees it.
            let after = fs::read(&path).unwrap();
            for _ in 0..4 {
                let crashed = torn(&prev, &after, &mut rng);
                let got = recovery.open(&crashed).read_all("o").unwrap();
                assert!(
                    got.len() == model.len() || got.len() == next.len(),
                    "size {} is neither {} nor {}",
                    got.len(),
                    model.len(),
                    next.len()
                );
                sizes[usize::from(got.len() == next.len())] += 1;
                for (i, b) in got.iter().enumerate() {
                    let ok = next.get(i) == Some(b)
                        || if i < model.len() {
                            model[i] == *b
                        } else {
                            *b == 0
                        };
                    assert!(ok, "byte {i} = {b:#x}");
                }
            }
            store.sync_objects(&["o".to_owned()]).unwrap();
            assert_eq!(
                DirStore::open_unshared(work.path(), opts.clone())
                    .unwrap()
                    .read_all("o")
                    .unwrap(),
                next
            );
            // The durable state now (the sync also confirmed the size record).
            prev = fs::read(&path).unwrap();
            model = next;
        }
    }
    // Both sizes come back, so the states really tear the size records too.
    assert!(sizes[0] > 10 && sizes[1] > 10, "{sizes:?}");
}

/// A damaged segment header in the middle of a log-mode file is reported, not read as the end
/// of the object (which would silently drop every later append); a damaged last header is
/// indistinguishable from a torn append and rolls that append back.
#[test]
fn damaged_segment_header_in_the_middle_is_corrupt() {
    let work = tempfile::tempdir().unwrap();
    let store = DirStore::open(work.path(), DirStoreOptions::unsynced()).unwrap();
    let none = AppendGuard::none();
    for i in 0..3u8 {
        store
            .append("o", &[Bytes::from(vec![i; 1000])], &none)
            .unwrap();
    }
    drop(store);
    let path = work.path().join("objects/o/data");
    let clean = fs::read(&path).unwrap();
    // Segments: headers at 4096, 4096 + 1040, 4096 + 2080.
    for (header, expect_corrupt) in [(4096usize, true), (4096 + 1040, true), (4096 + 2080, false)] {
        let mut bytes = clean.clone();
        bytes[header + 30] ^= 0x01; // inside the length or data CRC: the header's CRC fails
        fs::write(&path, &bytes).unwrap();
        let store = DirStore::open_unshared(work.path(), DirStoreOptions::unsynced()).unwrap();
        match store.read_all("o") {
            Err(StoreError::Corrupt { .. }) => assert!(expect_corrupt, "header at {header}"),
            Ok(got) => {
                assert!(
                    !expect_corrupt,
                    "header at {header}: read {} bytes",
                    got.len()
                );
                assert_eq!(got.len(), 2000, "the last append rolled back");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

mod damaged_files {
    use proptest::prelude::*;

    use super::*;

    /// A data file built by the store (log-mode from appends, or sized from a write and
    /// appends), then damaged: bytes flipped and the file cut. Opening and reading it never
    /// panics, errors are `Corrupt`, `stat` agrees with the bytes a read returns, and the object
    /// can still be replaced and removed.
    fn check(log: bool, appends: &[Vec<u8>], flips: &[(usize, u8)], cut: Option<usize>) {
        let work = tempfile::tempdir().unwrap();
        let store = DirStore::open(work.path(), DirStoreOptions::unsynced()).unwrap();
        if !log {
            store.write_full("o", Bytes::new()).unwrap();
        }
        for data in appends {
            store
                .append("o", &[Bytes::from(data.clone())], &AppendGuard::none())
                .unwrap();
        }
        drop(store);
        let path = work.path().join("objects/o/data");
        let mut bytes = fs::read(&path).unwrap();
        for (at, x) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= x | 1;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        fs::write(&path, &bytes).unwrap();
        let store = DirStore::open(work.path(), DirStoreOptions::unsynced()).unwrap();
        let (read, stat) = (store.read_all("o"), store.stat("o"));
        if let (Ok(read), Ok(stat)) = (&read, &stat) {
            assert_eq!(stat.size, read.len() as u64);
        }
        for result in [read.map(|_| ()), stat.map(|_| ())] {
            if let Err(e) = result {
                assert!(
                    matches!(e, StoreError::Corrupt { .. }) || e.is_not_found(),
                    "{e:?}"
                );
            }
        }
        // The damaged object can still be replaced and removed.
        store.write_full("o", Bytes::from_static(b"new")).unwrap();
        assert_eq!(store.read_all("o").unwrap(), &b"new"[..]);
        store.remove("o").unwrap();
        assert!(store.stat("o").unwrap_err().is_not_found());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn damaged_data_files_never_panic(
            log in any::<bool>(),
            appends in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..8),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in proptest::option::of(any::<usize>()),
        ) {
            check(log, &appends, &flips, cut);
        }
    }
}

/// A log-mode file found damaged by one process is removed all the same, and a process that
/// opened it before the damage stops reading it (its file header is cleared).
#[test]
fn a_damaged_log_file_is_removed_for_every_process() {
    let work = tempfile::tempdir().unwrap();
    let none = AppendGuard::none();
    let old = DirStore::open_unshared(work.path(), DirStoreOptions::unsynced()).unwrap();
    for i in 0..3u8 {
        old.append("o", &[Bytes::from(vec![i; 1000])], &none)
            .unwrap();
    }
    assert_eq!(old.read_all("o").unwrap().len(), 3000);
    // The second segment's header is damaged on disk (the segment headers are at 4096,
    // 4096 + 1040 and 4096 + 2080).
    let path = work.path().join("objects/o/data");
    let mut bytes = fs::read(&path).unwrap();
    bytes[4096 + 1040 + 30] ^= 1;
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &bytes[4096 + 1040..4096 + 1080], 4096 + 1040)
        .unwrap();
    let fresh = DirStore::open_unshared(work.path(), DirStoreOptions::unsynced()).unwrap();
    assert!(matches!(
        fresh.read_all("o"),
        Err(StoreError::Corrupt { .. })
    ));
    fresh.remove("o").unwrap();
    assert_eq!(fs::read_dir(work.path().join("spare")).unwrap().count(), 0);
    assert!(old.read_all("o").unwrap_err().is_not_found());
    assert!(old.stat("o").unwrap_err().is_not_found());
}

/// A durable `write_at` inside an object whose current size record is an unsynced one: its
/// bytes must survive a crash during later unsynced writes (the unsynced record it made
/// durable must not be overwritten in place by the next unsynced extension).
#[test]
fn durable_write_between_unsynced_extensions_survives() {
    let opts = DirStoreOptions {
        mmap_reads: false,
        ..DirStoreOptions::default()
    };
    let mut rng = SmallRng::seed_from_u64(7);
    let work = tempfile::tempdir().unwrap();
    let store = DirStore::open(work.path(), opts).unwrap();
    let recovery = Recovery::new();
    store
        .write_at_unsynced("o", 0, Bytes::from(vec![1u8; 5000]))
        .unwrap();
    store
        .write_at_unsynced("o", 5000, Bytes::from(vec![2u8; 1000]))
        .unwrap();
    store
        .write_at("o", 5500, Bytes::from_static(b"ABC"))
        .unwrap();
    let path = work.path().join("objects/o/data");
    let durable = fs::read(&path).unwrap();
    store
        .write_at_unsynced("o", 6000, Bytes::from(vec![3u8; 1000]))
        .unwrap();
    let after = fs::read(&path).unwrap();
    for _ in 0..64 {
        let got = recovery
            .open(&torn(&durable, &after, &mut rng))
            .read_all("o")
            .unwrap();
        assert!(got.len() == 6000 || got.len() == 7000, "size {}", got.len());
        assert_eq!(&got[5500..5503], b"ABC");
    }
}
