//! The encoding half of the primitives.

use bytes::{BufMut, Bytes, BytesMut};

use super::ENVELOPE_LEN;

/// Appends Ceph-encoded values to a buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: BytesMut,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// An empty encoder with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        Encoder {
            buf: BytesMut::with_capacity(cap),
        }
    }

    /// An encoder that appends after the bytes already in `buf` (reusing its spare capacity).
    pub fn with_buffer(buf: BytesMut) -> Self {
        Encoder { buf }
    }

    /// The buffer, with everything written so far (the counterpart of
    /// [`Encoder::with_buffer`]).
    pub fn into_buffer(self) -> BytesMut {
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded bytes.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    /// The encoded bytes so far, as a slice.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    /// `u16` little-endian.
    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16_le(v);
    }

    /// `u32` little-endian.
    pub fn u32(&mut self, v: u32) {
        self.buf.put_u32_le(v);
    }

    /// `u64` little-endian.
    pub fn u64(&mut self, v: u64) {
        self.buf.put_u64_le(v);
    }

    /// `i32` little-endian, two's complement.
    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32_le(v);
    }

    /// `i64` little-endian, two's complement.
    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64_le(v);
    }

    /// `bool` as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }

    /// A `u32` length or count. Ceph limits these to 32 bits; callers never pass more than
    /// `u32::MAX` items (asserted).
    pub fn len_u32(&mut self, len: usize) {
        let len = u32::try_from(len);
        assert!(len.is_ok(), "length does not fit Ceph's u32 length prefix");
        self.u32(len.unwrap_or(u32::MAX));
    }

    /// A string: `u32` byte length then the bytes.
    pub fn string(&mut self, s: &str) {
        self.blob(s.as_bytes());
    }

    /// A bufferlist: `u32` byte length then the bytes.
    pub fn blob(&mut self, b: &[u8]) {
        self.len_u32(b.len());
        self.buf.put_slice(b);
    }

    /// Raw bytes with no length prefix.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }

    /// A list: `u32` count then each element.
    pub fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.len_u32(items.len());
        for item in items {
            each(self, item);
        }
    }

    /// An optional: `u8` present flag then the value.
    pub fn optional<T>(&mut self, v: Option<&T>, each: impl FnOnce(&mut Self, &T)) {
        match v {
            Some(v) => {
                self.u8(1);
                each(self, v);
            }
            None => self.u8(0),
        }
    }

    /// A versioned envelope: `struct_v`, `struct_compat`, `u32` payload length, then whatever
    /// `body` writes (the length is patched in afterwards).
    pub fn envelope(&mut self, struct_v: u8, struct_compat: u8, body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.u8(struct_v);
        self.u8(struct_compat);
        self.u32(0);
        body(self);
        let payload = self.buf.len() - start - ENVELOPE_LEN;
        let payload = u32::try_from(payload);
        assert!(payload.is_ok(), "envelope payload exceeds u32");
        let len_bytes = payload.unwrap_or(u32::MAX).to_le_bytes();
        if let Some(slot) = self.buf.get_mut(start + 2..start + ENVELOPE_LEN) {
            slot.copy_from_slice(&len_bytes);
        }
    }
}
