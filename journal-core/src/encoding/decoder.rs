//! The decoding half of the primitives.

use bytes::Bytes;

use super::ENVELOPE_LEN;
use crate::DecodeError;

/// Reads Ceph-encoded values from the front of a buffer. Every method names `what` it is reading
/// so errors say which field was short or invalid.
#[derive(Debug, Clone)]
pub struct Decoder {
    data: Bytes,
    pos: usize,
}

impl Decoder {
    /// A decoder over `data`.
    pub fn new(data: Bytes) -> Self {
        Decoder { data, pos: 0 }
    }

    /// A decoder over a copy of `data`.
    pub fn from_slice(data: &[u8]) -> Self {
        Decoder::new(Bytes::copy_from_slice(data))
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was consumed.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { what, extra }),
        }
    }

    /// Takes the next `n` bytes as a zero-copy slice.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: n as u64,
                remaining: self.remaining() as u64,
            });
        }
        let out = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.take(n, what).map(drop)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    /// `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }

    /// `u16` little-endian.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// `u32` little-endian.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// `u64` little-endian.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// `i32` little-endian.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// `i64` little-endian.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// `bool`: one byte, non-zero is true (as Ceph decodes it).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.u8(what)? != 0)
    }

    /// A `u32` byte length, checked against the bytes left.
    pub fn byte_len(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.u32(what)? as usize;
        if len > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: len as u64,
                remaining: self.remaining() as u64,
            });
        }
        Ok(len)
    }

    /// A bufferlist (`u32` length + bytes), zero-copy.
    pub fn blob(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.byte_len(what)?;
        self.take(len, what)
    }

    /// A string (`u32` length + bytes). Ceph does not check the charset; invalid UTF-8 is
    /// rejected here with [`DecodeError::InvalidUtf8`] since rbdj keeps strings as `String`.
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let bytes = self.blob(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { what })
    }

    /// A list: `u32` count then elements. Capacity is bounded by the bytes left (each element
    /// takes at least `min_elem_len` bytes, at least 1), so a huge count cannot allocate.
    pub fn list<T>(
        &mut self,
        what: &'static str,
        min_elem_len: usize,
        mut each: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.u32(what)? as usize;
        let min = min_elem_len.max(1);
        if count.saturating_mul(min) > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: (count as u64).saturating_mul(min as u64),
                remaining: self.remaining() as u64,
            });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(each(self)?);
        }
        Ok(out)
    }

    /// An optional: `u8` flag then the value when the flag is non-zero.
    pub fn optional<T>(
        &mut self,
        what: &'static str,
        each: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.bool(what)? {
            Ok(Some(each(self)?))
        } else {
            Ok(None)
        }
    }

    /// A versioned envelope. Fails if `struct_compat > supported_compat` or if the payload length
    /// exceeds the input; runs `body` on a decoder limited to the payload, passing `struct_v`;
    /// then skips any bytes `body` did not read (newer versions' extra fields).
    pub fn envelope<T>(
        &mut self,
        what: &'static str,
        supported_compat: u8,
        body: impl FnOnce(&mut Decoder, u8) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if self.remaining() < ENVELOPE_LEN {
            return Err(DecodeError::Truncated {
                what,
                needed: ENVELOPE_LEN as u64,
                remaining: self.remaining() as u64,
            });
        }
        let struct_v = self.u8(what)?;
        let struct_compat = self.u8(what)?;
        if struct_compat > supported_compat {
            return Err(DecodeError::IncompatibleVersion {
                what,
                struct_v,
                struct_compat,
                supported: supported_compat,
            });
        }
        let len = self.byte_len(what)?;
        let payload = self.take(len, what)?;
        let mut inner = Decoder::new(payload);
        let value = body(&mut inner, struct_v).map_err(|e| match e {
            DecodeError::Truncated { what: w, .. } => {
                DecodeError::EnvelopeOverrun { what, field: w }
            }
            other => other,
        })?;
        Ok(value)
    }
}
