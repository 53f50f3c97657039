//! `scan_object` on arbitrary or piece-built object bytes at an arbitrary base offset.
//!
//! Invariants checked: `consumed` lies in `[base, base + len]` and equals `base + len` unless the
//! scan ended in a partial tail; every entry lies inside the input, decodes again at its offset
//! to the same entry, and no two entries overlap or share a (tag, entry) key; corrupt ranges are
//! non-empty, ascending, disjoint, inside the consumed bytes and overlap no entry.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use journal_core::entry::{scan_object, Entry};
use libfuzzer_sys::fuzz_target;
use rbdj_fuzz::ObjectBytes;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Absolute offset of the first byte, taken modulo 2^48 so `base + len` cannot saturate
    /// (real object offsets are below 2^order, far smaller).
    base: u64,
    object: ObjectBytes,
}

fuzz_target!(|input: Input| {
    let base = input.base % (1 << 48);
    let data = Bytes::from(input.object.bytes(base));
    let len = data.len() as u64;
    let end = base + len;
    let scan = scan_object(&data, base);

    assert!(scan.consumed >= base && scan.consumed <= end, "{scan:?}");
    if scan.partial_tail {
        assert!(scan.consumed < end);
    } else {
        assert_eq!(scan.consumed, end);
    }

    let mut spans: Vec<(u64, u64)> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for s in &scan.entries {
        let stop = s.offset + s.entry.encoded_len() as u64;
        assert!(s.offset >= base && stop <= scan.consumed);
        let pos = (s.offset - base) as usize;
        let (again, used) = Entry::decode_at(&data, pos, base).expect("entry re-decodes");
        assert_eq!(again, s.entry);
        assert_eq!(used, s.entry.encoded_len());
        assert!(keys.insert((s.entry.tag_tid, s.entry.entry_tid)));
        spans.push((s.offset, stop));
    }
    // A duplicate takes its earlier copy's slot, so the list need not be in offset order; the
    // spans must still be disjoint.
    let mut sorted = spans.clone();
    sorted.sort_unstable();
    for w in sorted.windows(2) {
        assert!(w[0].1 <= w[1].0, "entries overlap: {w:?}");
    }

    let mut prev_end = base;
    for r in &scan.corrupt {
        assert!(r.start < r.end, "empty corrupt range {r:?}");
        assert!(
            r.start >= prev_end && r.end <= scan.consumed,
            "{r:?} {scan:?}"
        );
        prev_end = r.end;
        for &(a, b) in &spans {
            assert!(
                b <= r.start || a >= r.end,
                "entry {a}..{b} inside corrupt {r:?}"
            );
        }
        // The first byte of a corrupt range is never the start of a decodable entry.
        let pos = (r.start - base) as usize;
        assert!(Entry::decode_at(&data, pos, base).is_err());
    }
    assert_eq!(scan.is_clean(), scan.corrupt.is_empty());
});
