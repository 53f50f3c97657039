//! The corrupt-journal corpus (`rbdj_tests::corrupt`) checked against `scan_object`,
//! `Entry::decode_at` and the `Player`: every case must give exactly the outcome the format's
//! rules prescribe (a typed error or a clean skip), never panic, and never allocate more than a
//! small multiple of the input (a counting global allocator in this test binary records the
//! largest single allocation made by the code under test).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]
// The counting allocator below is the only unsafe code: it forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::Bytes;
use journal_core::entry::{scan_object, Entry, EntryError};
use journal_core::header::ObjectSetPosition;
use journal_core::layout::{data_oid, Layout};
use journal_core::player::{
    JournalInfo, PlayMode, Player, PlayerError, PlayerEvent, PlayerOptions,
};
use object_store_trait::{AppendGuard, MemStore, ObjectStore};
use rbdj_tests::corrupt::{
    all_cases, bit_flips, ceph_crc, frame, manifest, named_cases, truncations, Case, EntryFault,
    Found, PlayerEnd,
};

// ---- counting allocator -------------------------------------------------------------------

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping only touches const-initialised thread-locals (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the largest single allocation it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.with(Cell::get))
}

/// Fixed slack for the bookkeeping of a scan or decode (entry list, duplicate map).
const SCAN_SLACK: usize = 1024;
/// Fixed slack for a player over one small object (object names, per-offset state, maps).
const PLAYER_SLACK: usize = 4096;

fn bound(input: usize, slack: usize) -> usize {
    4 * input + slack
}

// ---- checks -------------------------------------------------------------------------------

fn found(scan: &journal_core::ObjectScan) -> Vec<Found> {
    scan.entries
        .iter()
        .map(|s| Found {
            tag: s.entry.tag_tid,
            tid: s.entry.entry_tid,
            offset: s.offset,
            payload: s.entry.data.clone(),
        })
        .collect()
}

fn check_scan(c: &Case) {
    let (scan, largest) = largest_allocation(|| {
        catch_unwind(AssertUnwindSafe(|| scan_object(&c.object, 0)))
            .unwrap_or_else(|_| panic!("{}: scan_object panicked", c.name))
    });
    assert_eq!(found(&scan), c.scan.entries, "{}: entries", c.name);
    assert_eq!(scan.corrupt, c.scan.corrupt, "{}: corrupt ranges", c.name);
    assert_eq!(
        scan.partial_tail, c.scan.partial_tail,
        "{}: partial tail",
        c.name
    );
    assert_eq!(scan.consumed, c.scan.consumed, "{}: consumed", c.name);
    assert!(
        largest <= bound(c.object.len(), SCAN_SLACK),
        "{}: scan allocated {largest} bytes at once for a {}-byte object",
        c.name,
        c.object.len()
    );
    // The same bytes at a base offset that is a multiple of 8 scan the same way, shifted.
    let base = 1u64 << 20;
    let shifted = scan_object(&c.object, base);
    let moved: Vec<u64> = shifted.entries.iter().map(|s| s.offset - base).collect();
    let plain: Vec<u64> = scan.entries.iter().map(|s| s.offset).collect();
    assert_eq!(moved, plain, "{}: shifted scan", c.name);
    assert_eq!(shifted.consumed - base, scan.consumed, "{}", c.name);
}

fn check_faults(c: &Case) {
    for &(pos, fault) in &c.entry_faults {
        let (res, largest) = largest_allocation(|| Entry::decode_at(&c.object, pos, 0));
        let err = res.expect_err(&c.name);
        let offset = pos as u64;
        let available = (c.object.len() - pos) as u64;
        match (fault, &err) {
            (EntryFault::BadPreamble, EntryError::BadPreamble { offset: o }) => {
                assert_eq!(*o, offset, "{}", c.name)
            }
            (EntryFault::BadVersion(v), EntryError::BadVersion { offset: o, got }) => {
                assert_eq!((*o, *got), (offset, v), "{}", c.name)
            }
            (
                EntryFault::Checksum,
                EntryError::ChecksumMismatch {
                    offset: o,
                    expected,
                    got,
                },
            ) => {
                assert_eq!(*o, offset, "{}", c.name);
                assert_ne!(expected, got, "{}", c.name);
            }
            (
                EntryFault::Truncated { needed },
                EntryError::Truncated {
                    offset: o,
                    needed: n,
                    available: a,
                },
            ) => assert_eq!((*o, *n, *a), (offset, needed, available), "{}", c.name),
            _ => panic!("{}: expected {fault:?} at {pos}, got {err:?}", c.name),
        }
        assert!(largest <= bound(c.object.len(), SCAN_SLACK), "{}", c.name);
    }
}

const POOL: i64 = 5;
const JOURNAL: &str = "corrupt";

/// What a playback delivered, and how it ended.
type Played = (Vec<(u64, u64, Bytes)>, Result<(), PlayerError>);

/// Plays object 0 of a width-1 journal holding `object`, one-shot from the start.
fn play(object: &Bytes) -> Played {
    play_objects(1, &[(0, object.clone())])
}

/// Plays a journal of splay width `width` whose objects hold the given bytes, one-shot from the
/// start (active set 0).
fn play_objects(width: u8, objects: &[(u64, Bytes)]) -> Played {
    let store = Arc::new(MemStore::new());
    for (n, object) in objects {
        if !object.is_empty() {
            store
                .append(
                    &data_oid(POOL, JOURNAL, *n),
                    std::slice::from_ref(object),
                    &AppendGuard::none(),
                )
                .unwrap();
        }
    }
    let info = JournalInfo {
        journal_id: JOURNAL.into(),
        pool_id_for_names: POOL,
        layout: Layout::new(12, width).unwrap(),
        active_set: 0,
    };
    let options = PlayerOptions {
        mode: PlayMode::OneShot,
        ..PlayerOptions::default()
    };
    let mut player = Player::new(store, info, &ObjectSetPosition::default(), options);
    let mut got = Vec::new();
    for _ in 0..1000 {
        match player.next() {
            Ok(PlayerEvent::Entry(e)) => {
                assert!(objects.iter().any(|(n, _)| *n == e.object_number));
                got.push((e.entry.tag_tid, e.entry.entry_tid, e.entry.data));
            }
            Ok(PlayerEvent::End) => return (got, Ok(())),
            Err(e) => return (got, Err(e)),
        }
    }
    panic!("player did not end");
}

fn check_player(c: &Case) {
    let ((got, end), largest) = largest_allocation(|| {
        catch_unwind(AssertUnwindSafe(|| play(&c.object)))
            .unwrap_or_else(|_| panic!("{}: player panicked", c.name))
    });
    assert_eq!(got, c.player.delivered, "{}: delivered", c.name);
    let oid = data_oid(POOL, JOURNAL, 0);
    match (c.player.end, end) {
        (PlayerEnd::End, Ok(())) => {}
        (PlayerEnd::Corrupt(at), Err(PlayerError::Corrupt { oid: o, offset })) => {
            assert_eq!((o, offset), (oid, at), "{}", c.name)
        }
        (
            PlayerEnd::MissingEntry { tag, expected, got },
            Err(PlayerError::MissingEntry {
                tag_tid,
                expected: e,
                got: g,
            }),
        ) => assert_eq!((tag_tid, e, g), (tag, expected, got), "{}", c.name),
        (want, got) => panic!("{}: expected {want:?}, got {got:?}", c.name),
    }
    assert!(
        largest <= bound(c.object.len(), PLAYER_SLACK),
        "{}: player allocated {largest} bytes at once for a {}-byte object",
        c.name,
        c.object.len()
    );
}

fn check_all(cases: &[Case]) {
    assert!(!cases.is_empty());
    for c in cases {
        check_scan(c);
        check_faults(c);
        check_player(c);
    }
}

// ---- tests --------------------------------------------------------------------------------

/// The framing the generator writes by hand matches the spec's check values and what
/// `journal-core` decodes (one known entry), so the corpus starts from valid entries.
#[test]
fn generator_frames_valid_entries() {
    assert_eq!(ceph_crc(b"foo bar baz"), 4_119_623_852);
    assert_eq!(ceph_crc(b"whiz bang boom"), 2_360_230_088);
    let bytes = Bytes::from(frame(7, 9, b"abc"));
    assert_eq!(
        &bytes[..8],
        &[0x93, 0x97, 0x58, 0x53, 0x26, 0x59, 0x41, 0x31]
    );
    assert_eq!(bytes.len(), 36);
    let (e, used) = Entry::decode(&bytes).unwrap();
    assert_eq!(
        (e.tag_tid, e.entry_tid, &e.data[..], used),
        (7, 9, &b"abc"[..], 36)
    );
}

/// The counting allocator sees allocations made inside `largest_allocation` (and only those).
#[test]
fn allocation_counter_works() {
    let (v, largest) = largest_allocation(|| Vec::<u8>::with_capacity(1 << 20));
    assert!(largest >= 1 << 20);
    drop(v);
    let (_, none) = largest_allocation(|| 1 + 1);
    assert_eq!(none, 0);
}

/// Named cases: garbage, huge lengths, padding, stale tags, duplicates, sequence gaps, wrong
/// version and preamble.
#[test]
fn named_cases_behave_as_specified() {
    check_all(&named_cases());
}

/// Every single-bit flip in every entry of a three-entry object.
#[test]
fn every_bit_flip_is_a_typed_error_or_a_clean_skip() {
    let cases = bit_flips();
    assert_eq!(cases.len(), (49 + 60 + 73) * 8);
    check_all(&cases);
}

/// The three-entry object cut at every length.
#[test]
fn every_truncation_is_a_partial_tail() {
    let cases = truncations();
    assert_eq!(cases.len(), 49 + 60 + 73 + 1);
    check_all(&cases);
}

/// A huge length field in a tiny input allocates nothing for it, in the decoder, the limited
/// decoder and the scan.
#[test]
fn huge_length_allocates_nothing() {
    let mut b = frame(1, 0, b"0123456789").to_vec();
    b[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
    let b = Bytes::from(b);
    let (r, largest) = largest_allocation(|| Entry::decode(&b));
    assert!(
        matches!(r, Err(EntryError::Truncated { needed, .. }) if needed == 33 + u64::from(u32::MAX))
    );
    assert!(largest <= bound(b.len(), SCAN_SLACK));
    let (r, _) = largest_allocation(|| Entry::decode_limited(&b, 1 << 20));
    assert!(
        matches!(r, Err(EntryError::TooLarge { data_len, .. }) if data_len == u64::from(u32::MAX))
    );
    let (scan, largest) = largest_allocation(|| scan_object(&b, 0));
    assert!(scan.partial_tail && scan.entries.is_empty() && scan.consumed == 0);
    assert!(largest <= bound(b.len(), SCAN_SLACK), "{largest}");
}

/// The checked-in manifest (`tests/data/corrupt/cases.txt`) matches the generator: the corpus
/// is deterministic and any change to it or to an expectation is visible in review. Run with
/// `RBDJ_BLESS_CORRUPT=1` to rewrite it after an intended change; `RBDJ_DUMP_CORRUPT=<dir>`
/// also writes every case's bytes to `<dir>` (for example as fuzzing seeds).
#[test]
fn manifest_matches_generator() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/corrupt/cases.txt");
    let text = manifest();
    if std::env::var_os("RBDJ_BLESS_CORRUPT").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    if let Some(dir) = std::env::var_os("RBDJ_DUMP_CORRUPT") {
        std::fs::create_dir_all(&dir).unwrap();
        for c in all_cases() {
            let name = c.name.replace('/', "_");
            std::fs::write(std::path::Path::new(&dir).join(name), &c.object).unwrap();
        }
    }
    let checked_in = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        checked_in, text,
        "regenerate with RBDJ_BLESS_CORRUPT=1 and review the diff"
    );
    // The generator is deterministic run to run.
    assert_eq!(manifest(), text);
}

fn cat(parts: &[Vec<u8>]) -> Bytes {
    Bytes::from(parts.concat())
}

/// Two splay offsets: entries of a stale tag at the front of one offset are discarded when the
/// newer tag starts at entry 0 on the other (§10.3), and corruption in one object stops playback
/// with `Corrupt` for that object once the round robin needs what lies beyond it (§5.2 rule 3).
#[test]
fn multi_object_stale_tags_and_corruption() {
    let p = |tag, tid| rbdj_tests::corrupt::payload(tag, tid, 0, 12);
    let e = |tag, tid| frame(tag, tid, &p(tag, tid));
    let want = |v: &[(u64, u64)]| -> Vec<(u64, u64, Bytes)> {
        v.iter()
            .map(|&(t, i)| (t, i, Bytes::from(p(t, i))))
            .collect()
    };

    // Offset 0: 1.0, 2.0, 2.2; offset 1: 1.1, 1.3 (stale once tag 2 starts), 2.1.
    let objects = [
        (0, cat(&[e(1, 0), e(2, 0), e(2, 2)])),
        (1, cat(&[e(1, 1), e(1, 3), e(2, 1)])),
    ];
    let ((got, end), largest) = largest_allocation(|| play_objects(2, &objects));
    assert_eq!(got, want(&[(1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]));
    assert!(end.is_ok(), "{end:?}");
    assert!(largest <= bound(objects.iter().map(|o| o.1.len()).sum(), PLAYER_SLACK));

    // Offset 0: 1.0, 1.2, 1.4; offset 1: 1.1, 24 bytes of garbage, 1.3.
    let first = e(1, 1);
    let objects = [
        (0, cat(&[e(1, 0), e(1, 2), e(1, 4)])),
        (
            1,
            cat(&[first.clone(), rbdj_tests::corrupt::garbage(9, 24), e(1, 3)]),
        ),
    ];
    let (got, end) = play_objects(2, &objects);
    assert_eq!(got, want(&[(1, 0), (1, 1), (1, 2)]));
    match end {
        Err(PlayerError::Corrupt { oid, offset }) => {
            assert_eq!(oid, data_oid(POOL, JOURNAL, 1));
            assert_eq!(offset, first.len() as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
