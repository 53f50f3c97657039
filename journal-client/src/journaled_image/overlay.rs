//! The read-your-writes overlay: IO that was acknowledged (or is being journaled) but not yet
//! applied to the image, in journal order.
//!
//! A read takes a snapshot of the overlapping pending IO **before** reading the image, then lays
//! the snapshot over the bytes read, oldest first. The applier removes an item only after
//! applying it, so anything applied before the snapshot was taken is already in the image bytes,
//! and everything after is in the snapshot: the result equals the image with every acknowledged
//! write applied in journal order.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// The effect of one pending IO on the image bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PendingIo {
    /// Bytes written at an offset.
    Write {
        /// Image offset.
        offset: u64,
        /// The data.
        data: Bytes,
    },
    /// Zeroes over a range.
    Zero {
        /// Image offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// A pattern repeated over a range.
    Same {
        /// Image offset.
        offset: u64,
        /// Length (a multiple of the pattern length).
        len: u64,
        /// The pattern.
        pattern: Bytes,
    },
    /// A compare-and-write whose outcome is not known until it is applied: readers overlapping
    /// it wait for the applier instead of guessing.
    Conditional {
        /// Image offset.
        offset: u64,
        /// Length.
        len: u64,
    },
}

impl PendingIo {
    fn range(&self) -> (u64, u64) {
        match self {
            PendingIo::Write { offset, data } => (*offset, *offset + data.len() as u64),
            PendingIo::Zero { offset, len }
            | PendingIo::Same { offset, len, .. }
            | PendingIo::Conditional { offset, len } => (*offset, *offset + *len),
        }
    }

    fn overlaps(&self, offset: u64, len: u64) -> bool {
        let (start, end) = self.range();
        start < offset + len && offset < end
    }

    /// Lays this IO over `buf`, which holds image bytes `[offset, offset + buf.len())`.
    fn lay_over(&self, buf: &mut [u8], offset: u64) {
        let (start, end) = self.range();
        let from = start.max(offset);
        let to = end.min(offset + buf.len() as u64);
        if from >= to {
            return;
        }
        let Some(dst) = buf.get_mut((from - offset) as usize..(to - offset) as usize) else {
            return;
        };
        match self {
            PendingIo::Write { data, .. } => {
                let s = (from - start) as usize;
                if let Some(src) = data.get(s..s + dst.len()) {
                    dst.copy_from_slice(src);
                }
            }
            PendingIo::Zero { .. } => dst.fill(0),
            PendingIo::Same { pattern, .. } if !pattern.is_empty() => {
                let plen = pattern.len() as u64;
                for (i, b) in dst.iter_mut().enumerate() {
                    let at = (from - start + i as u64) % plen;
                    *b = pattern.get(at as usize).copied().unwrap_or(0);
                }
            }
            PendingIo::Same { .. } | PendingIo::Conditional { .. } => {}
        }
    }
}

/// Pending IO by journal sequence number.
///
/// Sequence numbers are handed out in order under the submit lock and the applier removes
/// items in the same order, so a ring sorted by sequence number serves: an insert is a push at
/// the back, a removal a pop at the front (no allocation per item once the ring has grown).
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    items: VecDeque<(u64, PendingIo)>,
}

/// What a reader must do.
pub(crate) enum Snapshot {
    /// Lay these over the image bytes, in order.
    Items(Vec<PendingIo>),
    /// A compare-and-write with this sequence number overlaps: wait until it is applied.
    WaitFor(u64),
}

impl Overlay {
    pub(crate) fn insert(&mut self, seq: u64, io: PendingIo) {
        match self.items.back() {
            Some((last, _)) if *last >= seq => {
                // Not reached (sequence numbers grow); kept sorted all the same.
                let at = self.items.partition_point(|(s, _)| *s < seq);
                if self.items.get(at).is_some_and(|(s, _)| *s == seq) {
                    if let Some(slot) = self.items.get_mut(at) {
                        slot.1 = io;
                    }
                } else {
                    self.items.insert(at, (seq, io));
                }
            }
            _ => self.items.push_back((seq, io)),
        }
    }

    pub(crate) fn remove(&mut self, seq: u64) {
        if self.items.front().is_some_and(|(s, _)| *s == seq) {
            self.items.pop_front();
            return;
        }
        // Out of order only when a stopped applier keeps earlier items.
        let at = self.items.partition_point(|(s, _)| *s < seq);
        if self.items.get(at).is_some_and(|(s, _)| *s == seq) {
            self.items.remove(at);
        }
    }

    /// The pending IO overlapping `[offset, offset + len)`, oldest first.
    pub(crate) fn snapshot(&self, offset: u64, len: u64) -> Snapshot {
        let mut out = Vec::new();
        for (seq, io) in &self.items {
            if io.overlaps(offset, len) {
                if matches!(io, PendingIo::Conditional { .. }) {
                    return Snapshot::WaitFor(*seq);
                }
                out.push(io.clone());
            }
        }
        Snapshot::Items(out)
    }

    /// Number of pending items.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

/// Lays `items` over `base` (image bytes at `offset`).
pub(crate) fn lay_over(base: Bytes, offset: u64, items: &[PendingIo]) -> Bytes {
    if items.is_empty() {
        return base;
    }
    let mut buf = BytesMut::from(&base[..]);
    for io in items {
        io.lay_over(&mut buf, offset);
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    #[test]
    fn items_are_laid_in_order_and_clipped() {
        let mut o = Overlay::default();
        o.insert(
            1,
            PendingIo::Write {
                offset: 2,
                data: Bytes::from_static(b"abcdef"),
            },
        );
        o.insert(2, PendingIo::Zero { offset: 4, len: 2 });
        o.insert(
            3,
            PendingIo::Same {
                offset: 7,
                len: 4,
                pattern: Bytes::from_static(b"xy"),
            },
        );
        let Snapshot::Items(items) = o.snapshot(0, 10) else {
            panic!()
        };
        let out = lay_over(Bytes::from_static(b"0123456789"), 0, &items);
        assert_eq!(&out[..], b"01ab\0\0exyx");
        // A window in the middle of the pattern keeps its phase.
        let Snapshot::Items(items) = o.snapshot(8, 2) else {
            panic!()
        };
        assert_eq!(
            &lay_over(Bytes::from_static(b"..")[..].to_vec().into(), 8, &items)[..],
            b"yx"
        );
        o.insert(4, PendingIo::Conditional { offset: 0, len: 1 });
        assert!(matches!(o.snapshot(0, 1), Snapshot::WaitFor(4)));
        assert!(matches!(o.snapshot(5, 1), Snapshot::Items(_)));
    }

    /// Oracle: a sorted map. Removals out of order (a stopped applier keeps earlier items) and
    /// inserts below the last sequence number keep the ring sorted.
    #[test]
    fn ring_matches_a_sorted_map() {
        let mut o = Overlay::default();
        let mut model = std::collections::BTreeMap::new();
        let zero = |seq: u64| PendingIo::Zero {
            offset: seq,
            len: 1,
        };
        for seq in [1, 2, 3, 5, 8, 4, 0, 5] {
            o.insert(seq, zero(seq));
            model.insert(seq, zero(seq));
        }
        for seq in [3, 0, 7, 8, 1] {
            o.remove(seq);
            model.remove(&seq);
        }
        let Snapshot::Items(items) = o.snapshot(0, 100) else {
            panic!()
        };
        assert_eq!(items, model.into_values().collect::<Vec<_>>());
        assert_eq!(o.len(), 3);
    }
}
