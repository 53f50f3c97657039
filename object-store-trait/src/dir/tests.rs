//! Unit tests of DirStore internals that need test hooks (injected write failures).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use bytes::Bytes;

use super::datafile::DATA_START;
use super::fsutil::FAIL_WRITE_AFTER;
use super::layout::{refuse_foreign_directory, write_format};
use super::lock::{stripe_of, STRIPES};
use super::*;
use crate::ObjectStoreExt;

fn open(dir: &Path) -> DirStore {
    DirStore::open(dir, DirStoreOptions::default()).unwrap()
}

#[test]
fn failed_append_leaves_the_old_size() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store
        .append("o", &[Bytes::from_static(b"abc")], &AppendGuard::none())
        .unwrap();
    FAIL_WRITE_AFTER.with(|f| f.set(Some(2)));
    let batch = [Bytes::from_static(b"de"), Bytes::from_static(b"fgh")];
    let err = store.append("o", &batch, &AppendGuard::none()).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    // The two bytes that reached the file lie past the recorded size: not part of the object,
    // for this handle and for a fresh process.
    assert_eq!(store.stat("o").unwrap().size, 3);
    assert_eq!(store.read("o", 0, 100).unwrap(), &b"abc"[..]);
    let fresh = DataFile::open(&tmp.path().join("objects/o/data"), "o")
        .unwrap()
        .unwrap();
    assert_eq!(fresh.snapshot("o").unwrap().size(), 3);
    assert_eq!(
        store
            .append("o", &[Bytes::from_static(b"XY")], &AppendGuard::none())
            .unwrap(),
        3
    );
    assert_eq!(store.read_all("o").unwrap(), &b"abcXY"[..]);
}

#[test]
fn failed_creating_append_leaves_no_object_and_no_staging_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    FAIL_WRITE_AFTER.with(|f| f.set(Some(1)));
    let err = store
        .append("new", &[Bytes::from_static(b"hello")], &AppendGuard::none())
        .unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(store.stat("new").unwrap_err().is_not_found());
    assert!(store.list("").unwrap().is_empty());
    assert_eq!(fs::read_dir(tmp.path().join("tmp")).unwrap().count(), 0);
}

#[test]
fn handles_on_one_directory_share_watchers() {
    let tmp = tempfile::tempdir().unwrap();
    let a = open(tmp.path());
    // A different spelling of the same directory.
    let b = open(&tmp.path().join(".").join("objects").join(".."));
    assert_eq!(a.path(), b.path());
    let watch = a.watch("hdr").unwrap();
    assert_eq!(b.notify("hdr", Bytes::from_static(b"x")).unwrap(), 1);
    assert_eq!(watch.drain(), 1);
    assert!(!b.notify_crosses_processes());
}

#[test]
fn foreign_directory_format_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("FORMAT"), "something else\n").unwrap();
    let err = DirStore::open(tmp.path(), DirStoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn stripes_are_stable_crc32c_buckets() {
    // CRC32C("123456789") = 0xE3069283 (the standard check value); 0xE3069283 % 64 = 3.
    assert_eq!(stripe_of("123456789"), 0xE306_9283 % STRIPES);
    assert_eq!(stripe_of("123456789"), 3);
}

#[test]
fn mapped_reads_survive_rollback_replace_and_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let model: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    store
        .append("big", &[Bytes::from(model.clone())], &AppendGuard::none())
        .unwrap();
    let mapped = store.read("big", 1, 500_000).unwrap(); // above the 256 KiB threshold
                                                         // A failed append leaves its bytes past the object's size, above the mapped range.
    FAIL_WRITE_AFTER.with(|f| f.set(Some(3)));
    let tail = Bytes::from(vec![7u8; 10_000]);
    assert!(store.append("big", &[tail], &AppendGuard::none()).is_err());
    assert_eq!(&mapped[..], &model[1..500_001]);
    store
        .write_full("big", Bytes::from_static(b"short"))
        .unwrap();
    store.remove("big").unwrap();
    assert_eq!(&mapped[..], &model[1..500_001]);
}

#[test]
fn non_empty_foreign_directory_is_not_adopted() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let err = DirStore::open(tmp.path(), DirStoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
    assert!(!tmp.path().join("objects").exists());
    assert!(!tmp.path().join("FORMAT").exists());
}

#[test]
fn format_is_created_once_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let format = tmp.path().join(FORMAT_FILE);
    assert!(write_format(tmp.path(), &format).unwrap());
    assert_eq!(fs::read(&format).unwrap(), b"rbdj-dirstore 3\n");
    // A second opener that found FORMAT missing loses the race and leaves the file alone, even
    // one with other contents (which `open` then reports).
    fs::write(&format, "something else\n").unwrap();
    assert!(!write_format(tmp.path(), &format).unwrap());
    assert_eq!(fs::read(&format).unwrap(), b"something else\n");
    // No staged copies are left behind.
    let names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(FORMAT_FILE)]);
    // A directory whose only entry is a FORMAT another opener just wrote is not foreign.
    refuse_foreign_directory(tmp.path()).unwrap();
}

#[test]
fn handed_over_stripes_still_exclude_other_processes() {
    // Four threads of one "process" hand the stripe's flock to each other; a second handle
    // (own lock table, so its own flock, like another process) appends at the same time. Every
    // record must come back whole and where its append said (oracle: self-describing records).
    let tmp = tempfile::tempdir().unwrap();
    let a = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    let b = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    let record = |writer: u8, seq: u8| vec![writer, seq, writer ^ seq, 0xAA, writer, seq];
    let placed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (writer, store) in [(0u8, &a), (1, &a), (2, &a), (3, &a), (4, &b), (5, &b)] {
            let placed = &placed;
            s.spawn(move || {
                for seq in 0..60u8 {
                    let rec = record(writer, seq);
                    let at = store
                        .append("shared", &[Bytes::from(rec.clone())], &AppendGuard::none())
                        .unwrap();
                    placed.lock().push((at, rec));
                }
            });
        }
    });
    let all = b.read_all("shared").unwrap();
    let mut placed = placed.into_inner();
    assert_eq!(all.len(), placed.len() * 6);
    placed.sort();
    for (i, (at, rec)) in placed.iter().enumerate() {
        assert_eq!(*at, i as u64 * 6, "appends overlap or leave gaps");
        assert_eq!(&all[*at as usize..*at as usize + 6], &rec[..]);
    }
}

#[test]
fn read_only_data_files_can_still_be_read() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    open(tmp.path())
        .append("o", &[Bytes::from_static(b"kept")], &AppendGuard::none())
        .unwrap();
    let data = tmp.path().join("objects/o/data");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o444)).unwrap();
    // A fresh handle (nothing cached) opens the file without write access.
    let store = open(tmp.path());
    assert_eq!(store.read_all("o").unwrap(), &b"kept"[..]);
    assert_eq!(store.stat("o").unwrap().size, 4);
}

/// The file's two size-record slots (the bytes before the object's data).
fn record_slots(store: &DirStore, oid: &str) -> Vec<u8> {
    let all = std::fs::read(store.data_path(oid)).unwrap();
    all[..DATA_START as usize].to_vec()
}

/// `write_at_unsynced` writes an image object's bytes, and a new size record when it extends the
/// object, without syncing; a write that creates the object, or one to an object whose record
/// certifies bytes (it was appended to), takes the durable `write_at` path. Either way the bytes
/// are visible at once, to this handle and a fresh one.
#[test]
fn unsynced_writes_of_image_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = DirStoreOptions {
        mmap_reads: false,
        ..DirStoreOptions::default()
    };
    let store = DirStore::open(tmp.path(), opts.clone()).unwrap();
    let fresh = || DirStore::open_unshared(tmp.path(), opts.clone()).unwrap();
    // A missing object: created durably.
    store
        .write_at_unsynced("o", 0, Bytes::from(vec![1u8; 8192]))
        .unwrap();
    let (file, snap) = store.data_file("o").unwrap().unwrap();
    assert!(DataFile::writes_unsynced(&snap) && !file.is_log());
    let records = record_slots(&store, "o");
    store
        .write_at_unsynced("o", 100, Bytes::from(vec![7u8; 1000]))
        .unwrap();
    assert_eq!(
        record_slots(&store, "o"),
        records,
        "an overwrite wrote a record"
    );
    let mut want = vec![1u8; 8192];
    want[100..1100].fill(7);
    assert_eq!(fresh().read_all("o").unwrap(), want);
    // Extending (with a gap) writes a new record.
    store
        .write_at_unsynced("o", 9000, Bytes::from(vec![9u8; 500]))
        .unwrap();
    assert_ne!(record_slots(&store, "o"), records);
    want.resize(9000, 0);
    want.extend_from_slice(&[9u8; 500]);
    assert_eq!(store.read_all("o").unwrap(), want);
    assert_eq!(fresh().stat("o").unwrap().size, want.len() as u64);
    store
        .sync_objects(&["o".to_owned(), "missing".to_owned()])
        .unwrap();
    assert_eq!(fresh().read_all("o").unwrap(), want);
    // An object that was appended to (its record certifies the appended bytes) is written
    // durably, with a record certifying nothing first.
    store.write_full("p", Bytes::from_static(b"base")).unwrap();
    store
        .append("p", &[Bytes::from_static(b"+app")], &AppendGuard::none())
        .unwrap();
    let (_, snap) = store.data_file("p").unwrap().unwrap();
    assert!(!DataFile::writes_unsynced(&snap));
    store
        .write_at_unsynced("p", 2, Bytes::from_static(b"SE"))
        .unwrap();
    let (_, snap) = store.data_file("p").unwrap().unwrap();
    assert!(DataFile::writes_unsynced(&snap));
    assert_eq!(fresh().read_all("p").unwrap(), &b"baSE+app"[..]);
}

/// Random appends to a log-mode object and random reads, against a byte vector; through the
/// handle that appended, a fresh handle (another process) and, with small memory-mapped reads,
/// through maps of single segments.
#[test]
fn log_mode_reads_match_a_model() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    for (seed, mmap_reads) in [(1u64, false), (2, true), (3, true)] {
        let mut rng = SmallRng::seed_from_u64(seed);
        let tmp = tempfile::tempdir().unwrap();
        let opts = DirStoreOptions {
            mmap_reads,
            mmap_threshold_bytes: 64,
            ..DirStoreOptions::unsynced()
        };
        let a = DirStore::open_unshared(tmp.path(), opts.clone()).unwrap();
        let b = DirStore::open_unshared(tmp.path(), opts).unwrap();
        let mut model = Vec::new();
        for step in 0..120 {
            let writer = if step % 5 == 4 { &b } else { &a };
            let len = match rng.gen_range(0..4) {
                0 => 0,
                1 => rng.gen_range(1..16),
                2 => rng.gen_range(16..5000),
                _ => rng.gen_range(5000..70_000),
            };
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let cut = rng.gen_range(0..=len);
            let batch = [
                Bytes::copy_from_slice(&bytes[..cut]),
                Bytes::copy_from_slice(&bytes[cut..]),
            ];
            let at = writer.append("o", &batch, &AppendGuard::none()).unwrap();
            assert_eq!(at, model.len() as u64);
            model.extend_from_slice(&bytes);
            for reader in [&a, &b] {
                assert_eq!(reader.stat("o").unwrap().size, model.len() as u64);
                let off = rng.gen_range(0..=model.len());
                let want = rng.gen_range(0..=model.len() - off + 10);
                let got = reader.read("o", off as u64, want as u64).unwrap();
                let end = (off + want).min(model.len());
                assert_eq!(&got[..], &model[off..end], "read {off}+{want}");
            }
        }
        assert!(a.data_file("o").unwrap().unwrap().0.is_log());
        let fresh = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
        assert_eq!(fresh.read_all("o").unwrap(), &model[..]);
    }
}

#[test]
fn write_at_turns_a_log_file_into_a_sized_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DirStore::open(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    let none = AppendGuard::none();
    store
        .append("o", &[Bytes::from_static(b"hello")], &none)
        .unwrap();
    store
        .append("o", &[Bytes::from_static(b" world")], &none)
        .unwrap();
    assert!(store.data_file("o").unwrap().unwrap().0.is_log());
    store.write_at("o", 3, Bytes::from_static(b"LOW")).unwrap();
    assert!(!store.data_file("o").unwrap().unwrap().0.is_log());
    assert_eq!(store.read_all("o").unwrap(), &b"helLOWworld"[..]);
    store
        .append("o", &[Bytes::from_static(b"!")], &none)
        .unwrap();
    // Unsynced writes of a log-mode object take the same path.
    store
        .append("p", &[Bytes::from_static(b"abc")], &none)
        .unwrap();
    store
        .write_at_unsynced("p", 1, Bytes::from_static(b"X"))
        .unwrap();
    drop(store);
    let store = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    assert_eq!(store.read_all("o").unwrap(), &b"helLOWworld!"[..]);
    assert_eq!(store.read_all("p").unwrap(), &b"aXc"[..]);
}

#[test]
fn a_format_2_store_is_upgraded_and_keeps_its_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DirStore::open(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    store
        .write_full("sized", Bytes::from_static(b"old"))
        .unwrap();
    drop(store);
    fs::write(tmp.path().join(FORMAT_FILE), FORMAT_TEXT_2).unwrap();
    let store = DirStore::open(tmp.path(), DirStoreOptions::default()).unwrap();
    assert_eq!(
        fs::read(tmp.path().join(FORMAT_FILE)).unwrap(),
        FORMAT_TEXT.as_bytes()
    );
    assert_eq!(store.read_all("sized").unwrap(), &b"old"[..]);
    let none = AppendGuard::none();
    store
        .append("sized", &[Bytes::from_static(b"+")], &none)
        .unwrap();
    store
        .append("log", &[Bytes::from_static(b"new")], &none)
        .unwrap();
    assert_eq!(store.read_all("sized").unwrap(), &b"old+"[..]);
    assert_eq!(store.read_all("log").unwrap(), &b"new"[..]);
}

#[test]
fn segment_headers_need_the_file_nonce_and_their_index() {
    use super::logfile::SegHeader;
    let header = SegHeader {
        retired: false,
        index: 7,
        len: 4096,
        data_crc: 0x1234_5678,
    };
    let bytes = header.encode(42);
    assert_eq!(SegHeader::decode(&bytes, 42, 7), Some(header));
    assert_eq!(
        SegHeader::decode(&bytes, 43, 7),
        None,
        "another file's nonce"
    );
    assert_eq!(SegHeader::decode(&bytes, 42, 8), None, "another position");
    for cut in 0..bytes.len() {
        assert_eq!(SegHeader::decode(&bytes[..cut], 42, 7), None);
    }
    for i in 0..bytes.len() {
        let mut flipped = bytes;
        flipped[i] ^= 0x10;
        assert_eq!(SegHeader::decode(&flipped, 42, 7), None, "bit flip at {i}");
    }
}

fn spares(dir: &Path) -> usize {
    fs::read_dir(dir.join("spare")).unwrap().count()
}

#[test]
fn removed_log_files_are_reused_up_to_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = DirStoreOptions {
        spare_files: 2,
        ..DirStoreOptions::unsynced()
    };
    let store = DirStore::open(tmp.path(), opts).unwrap();
    let none = AppendGuard::none();
    let old: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    for name in ["x0", "x1", "x2"] {
        store
            .append(name, &[Bytes::from(old.clone())], &none)
            .unwrap();
        store
            .append(name, &[Bytes::from_static(b"tail")], &none)
            .unwrap();
    }
    store.write_full("sized", Bytes::from(old.clone())).unwrap();
    store.remove("sized").unwrap();
    assert_eq!(spares(tmp.path()), 0, "sized files are not kept");
    for name in ["x0", "x1", "x2"] {
        store.remove(name).unwrap();
    }
    assert_eq!(spares(tmp.path()), 2, "kept up to spare_files");
    // New log-mode objects take them: an append, and an omap update (how the journal creates
    // its data objects).
    store
        .append("y", &[Bytes::from_static(b"new")], &none)
        .unwrap();
    let mut batch = OmapBatch::new();
    batch.set("k", Bytes::from_static(b"v"));
    store.omap_apply("z", &batch).unwrap();
    assert_eq!(spares(tmp.path()), 0);
    assert_eq!(store.read_all("y").unwrap(), &b"new"[..]);
    assert_eq!(store.stat("z").unwrap().size, 0);
    let mut model = b"new".to_vec();
    for i in 0..40u8 {
        let chunk = vec![i; 997];
        store
            .append("y", &[Bytes::from(chunk.clone())], &none)
            .unwrap();
        model.extend_from_slice(&chunk);
    }
    store
        .append("z", &[Bytes::from_static(b"zz")], &none)
        .unwrap();
    // The reused files' old bytes are never object data, here or in another process.
    for handle in [
        &store,
        &DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap(),
    ] {
        assert_eq!(handle.read_all("y").unwrap(), &model[..]);
        assert_eq!(handle.stat("y").unwrap().size, model.len() as u64);
        assert_eq!(handle.read_all("z").unwrap(), &b"zz"[..]);
        assert!(handle.stat("x0").unwrap_err().is_not_found());
    }
}

#[test]
fn another_process_notices_that_its_open_file_was_reused() {
    for overwrite_retirement in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let a = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
        let b = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
        let none = AppendGuard::none();
        let x: Vec<u8> = vec![0xaa; 30_000];
        a.append("x", &[Bytes::from(x.clone())], &none).unwrap();
        assert_eq!(b.read_all("x").unwrap(), &x[..]); // b caches x's file
        a.remove("x").unwrap();
        // The next log-mode object takes x's file; growing past x's end overwrites the
        // retirement segment that told other processes x was removed.
        let y_len = if overwrite_retirement { 40_000 } else { 100 };
        let y = vec![0x55; y_len];
        a.append("y", &[Bytes::from(y.clone())], &none).unwrap();
        assert_eq!(spares(tmp.path()), 0);
        // Each operation on its own finds out (stat and append look at the file's end only; a
        // read also checks the file after reading).
        assert!(b.stat("x").unwrap_err().is_not_found());
        a.append("y", &[Bytes::from_static(b".")], &none).unwrap();
        b.append("w", &[Bytes::from_static(b"w")], &none).unwrap();
        assert_eq!(b.read_all("w").unwrap(), &b"w"[..]);
        assert!(b.read_all("x").unwrap_err().is_not_found());
        // An append creates a new x and leaves y alone.
        assert_eq!(
            b.append("x", &[Bytes::from_static(b"new")], &none).unwrap(),
            0
        );
        assert_eq!(a.read_all("x").unwrap(), &b"new"[..]);
        let mut y = y;
        y.push(b'.');
        assert_eq!(a.read_all("y").unwrap(), &y[..]);
        assert_eq!(b.read_all("y").unwrap(), &y[..]);
    }
}

/// One handle keeps removing objects and creating others in their files (spare files) while a
/// handle of "another process" reads them: a read returns only the blocks of the object it
/// names, all of one incarnation and in order, or `NotFound`.
#[test]
fn reads_never_see_another_object_in_a_reused_file() {
    const BLOCK: usize = 3000;
    let block = |name: u8, incarnation: u32, index: u32| {
        let mut b = vec![name; BLOCK];
        b[1..5].copy_from_slice(&incarnation.to_le_bytes());
        b[5..9].copy_from_slice(&index.to_le_bytes());
        Bytes::from(b)
    };
    let tmp = tempfile::tempdir().unwrap();
    let writer = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    let reader = DirStore::open_unshared(tmp.path(), DirStoreOptions::unsynced()).unwrap();
    let names = ["a", "b", "c", "d", "e"];
    let stop = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|s| {
        let reading = s.spawn(|| {
            let mut ok = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, name) in names.iter().enumerate() {
                    let bytes = match reader.read_all(name) {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            assert!(e.is_not_found(), "{e:?}");
                            continue;
                        }
                    };
                    assert_eq!(bytes.len() % BLOCK, 0, "{name}: {} bytes", bytes.len());
                    let incarnation = bytes.get(1..5).map(|b| b.to_vec());
                    for (k, chunk) in bytes.chunks(BLOCK).enumerate() {
                        assert_eq!(chunk[0], i as u8, "{name} block {k} is another object's");
                        assert_eq!(Some(chunk[1..5].to_vec()), incarnation, "{name} block {k}");
                        assert_eq!(chunk[5..9], (k as u32).to_le_bytes(), "{name} block {k}");
                    }
                    ok += 1;
                }
                // Let the writer remove and reuse files the reader has open meanwhile.
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            ok
        });
        let none = AppendGuard::none();
        let mut incarnation = 0u32;
        for round in 0..400usize {
            let i = (round * 3) % names.len();
            incarnation += 1;
            let _ = writer.remove(names[i]);
            for k in 0..(1 + (round * 7) % 40) as u32 {
                writer
                    .append(names[i], &[block(i as u8, incarnation, k)], &none)
                    .unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reading.join().unwrap()
    });
    assert!(reads > 0);
}
