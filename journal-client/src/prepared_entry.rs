//! [`PreparedEntry`]: a journal entry framed around its payload in one buffer, so appending
//! costs no copy of the payload.
//!
//! The payload is encoded (on the caller's thread, outside any lock) behind a 29-byte
//! placeholder for the entry header and in front of a 4-byte placeholder for the CRC. Once the
//! recorder has given the entry its tids, [`PreparedEntry::seal`] writes the header fields in
//! place and computes the CRC — the bytes are exactly those of journal-core's
//! [`journal_core::Entry::encode_into`] (spec §5.1).

use bytes::{Bytes, BytesMut};
use journal_core::encoding::{Encode, Encoder};
use journal_core::entry::{
    ceph_crc32c, ENTRY_DATA_OFFSET, ENTRY_OVERHEAD, ENTRY_VERSION, PREAMBLE,
};

use crate::slab;

/// An entry waiting for its tag and entry tid.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    buf: BytesMut,
}

impl PreparedEntry {
    /// Frames the encoding of `value` (`size_hint`: expected payload bytes). The entry is
    /// written into the calling thread's slab of entry buffers, not a fresh allocation.
    pub fn encode(value: &impl Encode, size_hint: usize) -> Self {
        let buf = slab::frame(ENTRY_OVERHEAD + size_hint, |buf| {
            let mut enc = Encoder::with_buffer(buf);
            enc.u64(PREAMBLE);
            enc.u8(ENTRY_VERSION);
            enc.u64(0); // entry tid
            enc.u64(0); // tag tid
            enc.u32(0); // data length
            value.encode(&mut enc);
            enc.u32(0); // crc
            enc.into_buffer()
        });
        PreparedEntry { buf }
    }

    /// Frames an already encoded payload (one copy, into the calling thread's slab).
    pub fn from_payload(payload: &[u8]) -> Self {
        let buf = slab::frame(ENTRY_OVERHEAD + payload.len(), |mut buf| {
            buf.extend_from_slice(&PREAMBLE.to_le_bytes());
            buf.extend_from_slice(&[ENTRY_VERSION]);
            buf.extend_from_slice(&[0u8; ENTRY_DATA_OFFSET - 9]);
            buf.extend_from_slice(payload);
            buf.extend_from_slice(&[0u8; 4]);
            buf
        });
        PreparedEntry { buf }
    }

    /// Payload bytes.
    pub fn payload_len(&self) -> usize {
        self.buf.len().saturating_sub(ENTRY_OVERHEAD)
    }

    /// Framed size (`33 + payload`).
    pub fn framed_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the tids, the length and the CRC; returns the framed entry.
    pub fn seal(mut self, tag_tid: u64, entry_tid: u64) -> Bytes {
        let len = u32::try_from(self.payload_len()).unwrap_or(u32::MAX);
        let put = |buf: &mut BytesMut, at: usize, bytes: &[u8]| {
            if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(&mut self.buf, 9, &entry_tid.to_le_bytes());
        put(&mut self.buf, 17, &tag_tid.to_le_bytes());
        put(&mut self.buf, 25, &len.to_le_bytes());
        let body = self.buf.len().saturating_sub(4);
        let crc = ceph_crc32c(0, self.buf.get(..body).unwrap_or_default());
        put(&mut self.buf, body, &crc.to_le_bytes());
        self.buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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
        assert_eq!(PreparedEntry::encode(&event, 5).seal(3, 41), want);
        assert_eq!(
            PreparedEntry::from_payload(&event.to_bytes()).seal(3, 41),
            want
        );
        let empty = Entry::new(0, 0, Bytes::new()).to_bytes();
        assert_eq!(PreparedEntry::from_payload(&[]).seal(0, 0), empty);
    }
}
