//! [`PreparedEntry`]: a journal entry framed around its payload, so appending costs at most one
//! copy of the payload, and none for a large one.
//!
//! A small payload is encoded (on the caller's thread, outside any lock) into one buffer, behind
//! a 29-byte placeholder for the entry header and in front of a 4-byte placeholder for the CRC.
//! A payload of [`ZERO_COPY_MIN`] bytes or more that the caller hands over as [`Bytes`] is not
//! copied at all: the entry is three parts, the 29-byte header, the caller's payload (one more
//! reference to the same memory) and the CRC, and the store appends them as one gathered
//! write (a `MemStore` keeps the parts, a file store writes them with one `pwritev`). Once the
//! recorder has given the entry its tids, [`PreparedEntry::seal`] writes the header fields in
//! place and computes the CRC — the bytes are exactly those of journal-core's
//! [`journal_core::Entry::encode_into`] (spec §5.1), whichever way they are held.

use bytes::{Bytes, BytesMut};
use journal_core::crc_shift::crc32c_shift;
use journal_core::encoding::{Encode, Encoder};
use journal_core::entry::{
    ceph_crc32c, ENTRY_DATA_OFFSET, ENTRY_OVERHEAD, ENTRY_VERSION, PREAMBLE,
};
use journal_core::event::{Event, EventEntry};

use crate::slab;

/// Payloads at least this large are referenced, not copied, by [`PreparedEntry::around`] and
/// [`PreparedEntry::event`]. Below it a copy into the recorder's reused slabs costs less: a
/// store that keeps what it is given (`MemStore`) holds the caller's buffers until the journal
/// is trimmed, and the trimming thread then frees them by the thousand, which with glibc's
/// allocator stalls the writers' own allocations (`rbdj bench --site mem:`, 4 KiB, 1 writer:
/// 97–144k journaled IOPS referenced, p99 50 µs, against 187–189k copied, p99 10 µs). At
/// 64 KiB referencing wins (33.5k against 19.2k IOPS).
pub const ZERO_COPY_MIN: usize = 8192;

/// An entry waiting for its tag and entry tid.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    /// The header placeholder and the payload, or only the payload's bytes before `middle`;
    /// with no `middle`, also the CRC placeholder.
    head: BytesMut,
    /// A referenced (not copied) part of the payload, and the payload's bytes after it
    /// followed by the CRC placeholder.
    middle: Option<(Bytes, BytesMut)>,
}

/// A sealed entry's bytes: one buffer, or the caller's data between the framing around it.
#[derive(Debug, Clone)]
pub enum FramedEntry {
    /// The whole entry in one buffer.
    Whole(Bytes),
    /// The entry header and the payload's bytes before the data; the caller's data; the
    /// payload's bytes after the data and the CRC. In that order.
    Parts([Bytes; 3]),
}

impl FramedEntry {
    /// Total framed length.
    pub fn len(&self) -> usize {
        self.parts().iter().map(Bytes::len).sum()
    }

    /// Always false: an entry has at least its 33 bytes of framing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffers, in order (cheap clones of the same memory).
    pub fn parts(&self) -> &[Bytes] {
        match self {
            FramedEntry::Whole(b) => std::slice::from_ref(b),
            FramedEntry::Parts(p) => p,
        }
    }

    /// The entry as one buffer (copies only when it is in parts).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            FramedEntry::Whole(b) => b.clone(),
            FramedEntry::Parts(p) => {
                let mut out = BytesMut::with_capacity(self.len());
                for b in p {
                    out.extend_from_slice(b);
                }
                out.freeze()
            }
        }
    }
}

/// Writes the entry header placeholder (preamble, version, zeroed tids and length).
fn header_placeholder(enc: &mut Encoder) {
    enc.u64(PREAMBLE);
    enc.u8(ENTRY_VERSION);
    enc.u64(0); // entry tid
    enc.u64(0); // tag tid
    enc.u32(0); // data length
}

impl PreparedEntry {
    /// Frames the encoding of `value` (`size_hint`: expected payload bytes). The entry is
    /// written into the calling thread's slab of entry buffers, not a fresh allocation.
    pub fn encode(value: &impl Encode, size_hint: usize) -> Self {
        let head = slab::frame(ENTRY_OVERHEAD + size_hint, |buf| {
            let mut enc = Encoder::with_buffer(buf);
            header_placeholder(&mut enc);
            value.encode(&mut enc);
            enc.u32(0); // crc
            enc.into_buffer()
        });
        PreparedEntry { head, middle: None }
    }

    /// Frames an event: an `AioWrite` whose data has [`ZERO_COPY_MIN`] bytes or more keeps a
    /// reference to the data instead of copying it; every other event is framed as by
    /// [`PreparedEntry::encode`].
    pub fn event(event: &EventEntry, size_hint: usize) -> Self {
        let data_len = match &event.event {
            Event::AioWrite { data, .. } => data.len(),
            _ => 0,
        };
        if data_len < ZERO_COPY_MIN {
            return Self::encode(event, size_hint);
        }
        let mut data = None;
        let mut frame = slab::frame(ENTRY_OVERHEAD + 64, |buf| {
            let mut enc = Encoder::with_buffer(buf);
            header_placeholder(&mut enc);
            data = event.encode_around_data(&mut enc);
            enc.u32(0); // crc
            enc.into_buffer()
        });
        match data {
            Some((data, at)) => {
                let head = frame.split_to(at);
                PreparedEntry {
                    head,
                    middle: Some((data, frame)),
                }
            }
            // Not reached (an `AioWrite` always splits); framed whole all the same.
            None => Self::encode(event, size_hint),
        }
    }

    /// Frames an already encoded payload (one copy, into the calling thread's slab).
    pub fn from_payload(payload: &[u8]) -> Self {
        let head = slab::frame(ENTRY_OVERHEAD + payload.len(), |buf| {
            let mut enc = Encoder::with_buffer(buf);
            header_placeholder(&mut enc);
            enc.raw(payload);
            enc.u32(0); // crc
            enc.into_buffer()
        });
        PreparedEntry { head, middle: None }
    }

    /// Frames `payload` without copying it when it has [`ZERO_COPY_MIN`] bytes or more (the
    /// entry keeps a reference to it); a smaller one is copied as by
    /// [`PreparedEntry::from_payload`].
    pub fn around(payload: Bytes) -> Self {
        if payload.len() < ZERO_COPY_MIN {
            return Self::from_payload(&payload);
        }
        let mut frame = Self::from_payload(&[]).head;
        let head = frame.split_to(ENTRY_DATA_OFFSET);
        PreparedEntry {
            head,
            middle: Some((payload, frame)),
        }
    }

    /// Payload bytes.
    pub fn payload_len(&self) -> usize {
        self.framed_len().saturating_sub(ENTRY_OVERHEAD)
    }

    /// Framed size (`33 + payload`).
    pub fn framed_len(&self) -> usize {
        self.head.len()
            + self
                .middle
                .as_ref()
                .map_or(0, |(data, tail)| data.len() + tail.len())
    }

    /// Writes the tids, the length and the CRC; returns the framed entry.
    pub fn seal(self, tag_tid: u64, entry_tid: u64) -> FramedEntry {
        self.checksum(tag_tid).seal(entry_tid)
    }

    /// Writes the tag tid and the length and checksums the entry with its entry tid still
    /// zero: the part of sealing that reads the payload, done before the entry tid is known
    /// (outside the recorder's lock). [`ChecksummedEntry::seal`] finishes it.
    pub fn checksum(self, tag_tid: u64) -> ChecksummedEntry {
        let len = u32::try_from(self.payload_len()).unwrap_or(u32::MAX);
        let PreparedEntry { mut head, middle } = self;
        put(&mut head, 17, &tag_tid.to_le_bytes());
        put(&mut head, 25, &len.to_le_bytes());
        let crc = match &middle {
            None => {
                let body = head.len().saturating_sub(4);
                ceph_crc32c(0, head.get(..body).unwrap_or_default())
            }
            Some((data, tail)) => {
                let crc = ceph_crc32c(ceph_crc32c(0, &head), data);
                match tail.get(..tail.len().saturating_sub(4)) {
                    Some(after) if !after.is_empty() => ceph_crc32c(crc, after),
                    _ => crc,
                }
            }
        };
        ChecksummedEntry {
            entry: PreparedEntry { head, middle },
            crc_without_tid: crc,
        }
    }
}

/// Writes `bytes` at `at` in `buf` (the placeholders are always there).
fn put(buf: &mut BytesMut, at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// An entry checksummed with its entry tid zero ([`PreparedEntry::checksum`]).
#[derive(Debug, Clone)]
pub struct ChecksummedEntry {
    entry: PreparedEntry,
    crc_without_tid: u32,
}

impl ChecksummedEntry {
    /// Writes the entry tid and the CRC (corrected for the tid's bytes without reading the
    /// payload again: [`journal_core::crc_shift`]); returns the framed entry.
    pub fn seal(self, entry_tid: u64) -> FramedEntry {
        let ChecksummedEntry {
            entry,
            crc_without_tid,
        } = self;
        // The bytes after the entry tid up to the CRC: tag tid, length, payload.
        let after_tid = 12 + entry.payload_len() as u64;
        let tid = entry_tid.to_le_bytes();
        let crc = crc_without_tid ^ crc32c_shift(ceph_crc32c(0, &tid), after_tid);
        let PreparedEntry { mut head, middle } = entry;
        put(&mut head, 9, &tid);
        match middle {
            None => {
                let body = head.len().saturating_sub(4);
                put(&mut head, body, &crc.to_le_bytes());
                FramedEntry::Whole(head.freeze())
            }
            Some((data, mut tail)) => {
                let body = tail.len().saturating_sub(4);
                put(&mut tail, body, &crc.to_le_bytes());
                FramedEntry::Parts([head.freeze(), data, tail.freeze()])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use journal_core::encoding::UTime;
    use journal_core::{Entry, Event, EventEntry};

    #[test]
    fn sealed_bytes_equal_journal_core_framing() {
        let event = EventEntry::new(
            Event::AioWrite {
                offset: 4096,
                length: 5,
                data: Bytes::from_static(b"hello"),
            },
            UTime { sec: 7, nsec: 9 },
        );
        let want = Entry::new(3, 41, event.to_bytes()).to_bytes();
        assert_eq!(
            PreparedEntry::encode(&event, 5).seal(3, 41).to_bytes(),
            want
        );
        assert_eq!(
            PreparedEntry::from_payload(&event.to_bytes())
                .seal(3, 41)
                .to_bytes(),
            want
        );
        let empty = Entry::new(0, 0, Bytes::new()).to_bytes();
        assert_eq!(
            PreparedEntry::from_payload(&[]).seal(0, 0).to_bytes(),
            empty
        );
        // A large payload is referenced, not copied, and frames to the same bytes.
        let big = Bytes::from((0..10_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let want = Entry::new(7, 9, big.clone()).to_bytes();
        let sealed = PreparedEntry::around(big.clone()).seal(7, 9);
        assert_eq!(sealed.len(), want.len());
        match &sealed {
            FramedEntry::Parts([head, payload, crc]) => {
                assert_eq!((head.len(), crc.len()), (29, 4));
                assert_eq!(payload.as_ptr(), big.as_ptr(), "the payload was copied");
            }
            FramedEntry::Whole(_) => panic!("a {}-byte payload was copied", big.len()),
        }
        assert_eq!(sealed.to_bytes(), want);
        // Below the threshold: one buffer, same bytes.
        let small = Bytes::from_static(b"small payload");
        let sealed = PreparedEntry::around(small.clone()).seal(1, 2);
        assert!(matches!(sealed, FramedEntry::Whole(_)));
        assert_eq!(sealed.to_bytes(), Entry::new(1, 2, small).to_bytes());
        // An AioWrite event: its data is referenced; every other event is framed whole.
        let write = EventEntry::new(
            Event::AioWrite {
                offset: 1 << 20,
                length: big.len() as u64,
                data: big.clone(),
            },
            UTime { sec: 11, nsec: 12 },
        );
        let sealed = PreparedEntry::event(&write, big.len() + 64).seal(4, 8);
        match &sealed {
            FramedEntry::Parts([_, data, _]) => assert_eq!(data.as_ptr(), big.as_ptr()),
            FramedEntry::Whole(_) => panic!("the write's data was copied"),
        }
        assert_eq!(
            sealed.to_bytes(),
            Entry::new(4, 8, write.to_bytes()).to_bytes()
        );
        let flush = EventEntry::new(Event::AioFlush, UTime { sec: 1, nsec: 2 });
        let sealed = PreparedEntry::event(&flush, 16).seal(4, 9);
        assert!(matches!(sealed, FramedEntry::Whole(_)));
        assert_eq!(
            sealed.to_bytes(),
            Entry::new(4, 9, flush.to_bytes()).to_bytes()
        );
    }
}
