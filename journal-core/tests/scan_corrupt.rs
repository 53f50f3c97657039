//! `scan_object` on damaged objects, following the reader rules of spec §5.2: each case builds
//! an object from real-format entries plus one defect and checks what the rules say the reader
//! sees (entries, where scanning stops, partial tail, corrupt ranges).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use bytes::{Bytes, BytesMut};
use journal_core::entry::{scan_object, Entry, ENTRY_OVERHEAD, PREAMBLE_BYTES};

fn entry(tag: u64, tid: u64, len: usize) -> Entry {
    Entry::new(tag, tid, Bytes::from(vec![(tid as u8) | 1; len]))
}

fn object(parts: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    for p in parts {
        b.extend_from_slice(p);
    }
    b.freeze()
}

fn tids(scan: &journal_core::entry::ObjectScan) -> Vec<(u64, u64)> {
    scan.entries
        .iter()
        .map(|s| (s.offset, s.entry.entry_tid))
        .collect()
}

#[test]
fn clean_object() {
    let a = entry(1, 0, 10).to_bytes();
    let b = entry(1, 4, 0).to_bytes();
    let obj = object(&[&a, &b]);
    let scan = scan_object(&obj, 0);
    assert_eq!(tids(&scan), vec![(0, 0), (43, 4)]);
    assert_eq!(scan.consumed, 76);
    assert!(!scan.partial_tail);
    assert!(scan.is_clean());
}

#[test]
fn zero_padding_between_appends_is_skipped() {
    // 43-byte entry, padded to 4096 as an octopus+ OSD does, then another entry.
    let a = entry(1, 0, 10).to_bytes();
    let b = entry(1, 4, 5).to_bytes();
    let obj = object(&[&a, &[0u8; 4096 - 43], &b, &[0u8; 4096 - 38]]);
    let scan = scan_object(&obj, 0);
    assert_eq!(tids(&scan), vec![(0, 0), (4096, 4)]);
    assert!(scan.is_clean());
    // The zero tail ends in fewer than 25 bytes: a (benign) partial tail just before the end.
    assert!(scan.partial_tail);
    assert!(scan.consumed > 8192 - 25 && scan.consumed <= 8192);
}

#[test]
fn padding_uses_absolute_offsets() {
    // Bytes read from offset 5 of the object: the first pad run is 3 bytes (to offset 8).
    let b = entry(1, 1, 3).to_bytes();
    let obj = object(&[&[0u8; 3], &b]);
    let scan = scan_object(&obj, 5);
    assert_eq!(tids(&scan), vec![(8, 1)]);
    assert_eq!(scan.consumed, 8 + 36);
    assert!(scan.is_clean() && !scan.partial_tail);
}

#[test]
fn truncated_entry_is_a_partial_tail() {
    let a = entry(1, 0, 10).to_bytes();
    let b = entry(1, 4, 100).to_bytes();
    for cut in [1, 24, 25, 28, 29, 60, b.len() - 1] {
        let obj = object(&[&a, &b[..cut]]);
        let scan = scan_object(&obj, 0);
        assert_eq!(tids(&scan), vec![(0, 0)], "cut {cut}");
        assert!(scan.partial_tail, "cut {cut}");
        assert_eq!(scan.consumed, 43, "cut {cut}");
        assert!(scan.is_clean(), "cut {cut}");
    }
}

#[test]
fn bit_flip_makes_a_corrupt_range_and_scanning_resumes() {
    let a = entry(1, 0, 10).to_bytes();
    let b = entry(1, 4, 20).to_bytes();
    let c = entry(1, 8, 30).to_bytes();
    for flip in [0, 8, 12, 30, 45, b.len() - 1] {
        let mut bad = b.to_vec();
        bad[flip] ^= 0x10;
        let obj = object(&[&a, &bad, &c]);
        let scan = scan_object(&obj, 100);
        let c_off = 100 + (a.len() + b.len()) as u64;
        assert_eq!(tids(&scan), vec![(100, 0), (c_off, 8)], "flip {flip}");
        assert_eq!(scan.corrupt, vec![143..c_off], "flip {flip}");
        assert_eq!(scan.consumed, c_off + c.len() as u64);
        assert!(!scan.partial_tail);
    }
}

#[test]
fn garbage_between_entries() {
    let a = entry(1, 0, 10).to_bytes();
    let c = entry(1, 8, 30).to_bytes();
    // Garbage that even contains a stray preamble with a bad version behind it.
    let mut junk = vec![0xAB; 13];
    junk.extend_from_slice(&PREAMBLE_BYTES);
    junk.extend_from_slice(&[7; 40]);
    let obj = object(&[&a, &junk, &c]);
    let scan = scan_object(&obj, 0);
    let c_off = (a.len() + junk.len()) as u64;
    assert_eq!(tids(&scan), vec![(0, 0), (c_off, 8)]);
    assert_eq!(scan.corrupt, vec![43..c_off]);
}

#[test]
fn garbage_to_the_end() {
    let a = entry(1, 0, 10).to_bytes();
    let obj = object(&[&a, &[0xCD; 100]]);
    let scan = scan_object(&obj, 0);
    assert_eq!(tids(&scan), vec![(0, 0)]);
    assert_eq!(scan.corrupt, vec![43..143]);
    assert_eq!(scan.consumed, 143);
    assert!(!scan.partial_tail);
    // Garbage followed by a preamble cut by the end of the read: partial there.
    let obj = object(&[&a, &[0xCD; 100], &PREAMBLE_BYTES[..5]]);
    let scan = scan_object(&obj, 0);
    assert_eq!(scan.corrupt, vec![43..143]);
    assert_eq!(scan.consumed, 143);
    assert!(scan.partial_tail);
}

#[test]
fn huge_data_len_is_partial_and_does_not_allocate() {
    let a = entry(1, 0, 10).to_bytes();
    let mut b = entry(1, 4, 0).to_bytes().to_vec();
    b[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
    let obj = object(&[&a, &b]);
    let scan = scan_object(&obj, 0);
    assert_eq!(tids(&scan), vec![(0, 0)]);
    assert!(scan.partial_tail);
    assert_eq!(scan.consumed, 43);
}

#[test]
fn short_tail_and_empty() {
    let scan = scan_object(&Bytes::new(), 0);
    assert_eq!(scan, Default::default());
    let scan = scan_object(&Bytes::from_static(&[0; 24]), 64);
    assert!(scan.partial_tail && scan.entries.is_empty() && scan.is_clean());
    assert_eq!(scan.consumed, 64);
}

#[test]
fn duplicate_keys_later_copy_wins_in_place() {
    let a = entry(1, 0, 10).to_bytes();
    let b = entry(1, 4, 3).to_bytes();
    let a2 = Entry::new(1, 0, Bytes::from_static(b"replacement")).to_bytes();
    let obj = object(&[&a, &b, &a2]);
    let scan = scan_object(&obj, 0);
    let a2_off = (a.len() + b.len()) as u64;
    assert_eq!(tids(&scan), vec![(a2_off, 0), (a.len() as u64, 4)]);
    assert_eq!(&scan.entries[0].entry.data[..], b"replacement");
    assert_eq!(scan.consumed, obj.len() as u64);
    let _ = ENTRY_OVERHEAD;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Copies in any order against a model (a vector searched linearly): a key already found
    /// is replaced in place by the later copy, at the later copy's offset.
    #[test]
    fn copies_in_any_order_follow_the_model(
        keys in proptest::collection::vec((0..3u64, 0..10u64, 1..40usize), 1..60)
    ) {
        let entries: Vec<Entry> = keys.iter().map(|&(t, e, l)| entry(t, e, l)).collect();
        let encoded: Vec<Bytes> = entries.iter().map(Entry::to_bytes).collect();
        let parts: Vec<&[u8]> = encoded.iter().map(|b| &b[..]).collect();
        let scan = scan_object(&object(&parts), 0);
        let mut model: Vec<(u64, Entry)> = Vec::new();
        let mut offset = 0u64;
        for (e, b) in entries.iter().zip(&encoded) {
            match model
                .iter_mut()
                .find(|(_, m)| (m.tag_tid, m.entry_tid) == (e.tag_tid, e.entry_tid))
            {
                Some(slot) => *slot = (offset, e.clone()),
                None => model.push((offset, e.clone())),
            }
            offset += b.len() as u64;
        }
        let got: Vec<(u64, Entry)> = scan.entries.iter().map(|s| (s.offset, s.entry.clone())).collect();
        proptest::prop_assert_eq!(got, model);
        proptest::prop_assert!(scan.is_clean());
    }
}
