//! The reader's scan of a data object (Ceph's `ObjectPlayer` rules).

use std::ops::Range;

use bytes::Bytes;

use super::{Entry, EntryError, ENTRY_HEADER_LEN, PREAMBLE_BYTES};
use crate::key_index::KeyIndex;

/// Alignment the OSD pads appends to, and the granularity of the padding check.
const PAD_ALIGN: u64 = 8;

/// An entry found by [`scan_object`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedEntry {
    /// Absolute object offset of the entry's first byte.
    pub offset: u64,
    /// The entry; its payload is a zero-copy slice of the scanned bytes.
    pub entry: Entry,
}

/// The result of scanning the bytes of one data object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectScan {
    /// Valid entries in object order. A (tag tid, entry tid) pair appears once: when an object
    /// holds the same pair twice, the later copy replaces the earlier one **in the earlier
    /// one's place** (Ceph's reader keeps one list slot per key).
    pub entries: Vec<ScannedEntry>,
    /// Absolute offset up to which the bytes were fully parsed (entries, padding and corrupt
    /// ranges). A later re-read of a growing object resumes here.
    pub consumed: u64,
    /// True if the bytes after `consumed` may be the start of an entry (or of padding) that is
    /// not complete yet: fewer than 25 bytes left, an entry whose length runs past the end, or
    /// a zero run cut by the end. Not an error; re-fetch later. A sealed object may legitimately
    /// end with a short all-zero tail.
    pub partial_tail: bool,
    /// Absolute ranges that are neither entries nor padding. Non-empty means the object is
    /// corrupt (Ceph fails it with `-EBADMSG` once scanning is done).
    pub corrupt: Vec<Range<u64>>,
}

impl ObjectScan {
    /// True when no corrupt range was found.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
    }

    /// Start of the first corrupt range, if any. Ceph's own reader stops there; entries at or
    /// beyond it are what this scan found by resynchronising.
    pub fn first_corrupt_offset(&self) -> Option<u64> {
        self.corrupt.first().map(|r| r.start)
    }
}

/// Where scanning may continue after a corrupt byte.
enum Resync {
    /// A decodable entry starts here.
    Entry(usize),
    /// An incomplete entry (or preamble) starts here and runs to the end.
    Partial(usize),
    /// Nothing usable before the end.
    End,
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Scans `data`, the bytes of a data object starting at absolute offset `base_offset`:
///
/// 1. fewer than 25 bytes left: partial tail, stop;
/// 2. a preamble whose entry runs past the end: partial tail, stop; a valid entry: take it;
/// 3. anything else (no preamble, bad version, bad CRC): if every byte up to the next 8-byte
///    boundary of the absolute offset (the next 8 if aligned) is zero it is padding and is
///    skipped (running out of bytes inside it makes a partial tail); otherwise the bytes up to
///    the next position where an entry decodes are recorded as a corrupt range.
///
/// Never panics and never allocates from a length field.
///
/// Difference from Ceph: Ceph 16.2's reader stops at the first corrupt byte (the rest of the
/// read is one invalid range) and fails the object with `-EBADMSG`. This scan records the
/// same start offset but then resynchronises at the next preamble whose entry decodes with a
/// valid CRC, so tools can report what lies beyond. Consumers that must behave like Ceph treat
/// a non-empty [`ObjectScan::corrupt`] as fatal for the object.
pub fn scan_object(data: &Bytes, base_offset: u64) -> ObjectScan {
    let len = data.len();
    let abs = |p: usize| base_offset.saturating_add(p as u64);
    let mut scan = ObjectScan::default();
    // Where each key's entry is in `scan.entries` (a later copy replaces it there).
    let mut slots = KeyIndex::default();
    let mut pos = 0usize;
    while pos < len {
        if len - pos < ENTRY_HEADER_LEN {
            scan.partial_tail = true;
            break;
        }
        let err = match Entry::decode_at(data, pos, base_offset) {
            Ok((entry, used)) => {
                let scanned = ScannedEntry {
                    offset: abs(pos),
                    entry,
                };
                let key = (scanned.entry.tag_tid, scanned.entry.entry_tid);
                let entries = &scan.entries;
                let at = slots.find(key, || {
                    (0u64..)
                        .zip(entries.iter())
                        .map(|(i, s)| ((s.entry.tag_tid, s.entry.entry_tid), i))
                });
                match at
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| scan.entries.get_mut(i))
                {
                    Some(slot) => *slot = scanned,
                    None => {
                        slots.insert(key, scan.entries.len() as u64);
                        scan.entries.push(scanned);
                    }
                }
                pos += used;
                continue;
            }
            Err(e) => e,
        };
        if matches!(err, EntryError::Truncated { .. }) {
            scan.partial_tail = true;
            break;
        }
        // Rule 3: padding or corruption.
        let pad = (PAD_ALIGN - abs(pos) % PAD_ALIGN) as usize;
        let window = data.get(pos..(pos + pad).min(len)).unwrap_or_default();
        if all_zero(window) {
            if window.len() < pad {
                scan.partial_tail = true;
                break;
            }
            pos += pad;
            continue;
        }
        let start = abs(pos);
        match resync(data, pos + 1, base_offset) {
            Resync::Entry(p) => {
                scan.corrupt.push(start..abs(p));
                pos = p;
            }
            Resync::Partial(p) => {
                scan.corrupt.push(start..abs(p));
                pos = p;
                scan.partial_tail = true;
                break;
            }
            Resync::End => {
                scan.corrupt.push(start..abs(len));
                pos = len;
            }
        }
    }
    scan.consumed = abs(pos);
    scan
}

/// Finds the next position at or after `from` where an entry decodes or an incomplete entry
/// begins. Candidates are preamble positions; one whose CRC or version fails is skipped.
fn resync(data: &Bytes, from: usize, base_offset: u64) -> Resync {
    let len = data.len();
    let mut p = from;
    while p < len {
        let rest = data.get(p..).unwrap_or_default();
        let Some(hit) = rest
            .windows(PREAMBLE_BYTES.len())
            .position(|w| w == PREAMBLE_BYTES)
        else {
            break;
        };
        let cand = p + hit;
        match Entry::decode_at(data, cand, base_offset) {
            Ok(_) => return Resync::Entry(cand),
            Err(EntryError::Truncated { .. }) => return Resync::Partial(cand),
            Err(_) => p = cand + 1,
        }
    }
    // A preamble cut by the end of the bytes read so far is an incomplete entry.
    let tail_start = len.saturating_sub(PREAMBLE_BYTES.len() - 1).max(from);
    for start in tail_start..len {
        let tail = data.get(start..).unwrap_or_default();
        if PREAMBLE_BYTES.starts_with(tail) {
            return Resync::Partial(start);
        }
    }
    Resync::End
}
