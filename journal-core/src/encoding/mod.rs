//! Ceph's encoding primitives: little-endian integers, length-prefixed strings and blobs,
//! containers, optionals, `utime_t`, and the versioned envelope (`ENCODE_START` /
//! `DECODE_START`).
//!
//! [`Encoder`] appends to a `BytesMut`; [`Decoder`] reads from a `Bytes` so that blobs are handed
//! out as zero-copy slices of the input. Every decoder method checks lengths against the bytes
//! left before reading or allocating, so decoding arbitrary input never panics and never
//! allocates more than the input justifies.

mod decoder;
mod encoder;

pub use decoder::Decoder;
pub use encoder::Encoder;

use bytes::Bytes;

use crate::DecodeError;

/// Size of the versioned envelope header: `struct_v`, `struct_compat`, `struct_len`.
pub const ENVELOPE_LEN: usize = 6;

/// A value with a Ceph encoding.
pub trait Encode {
    /// Appends the encoding of `self`.
    fn encode(&self, enc: &mut Encoder);

    /// The encoding of `self` as a fresh buffer.
    fn to_bytes(&self) -> Bytes {
        let mut enc = Encoder::new();
        self.encode(&mut enc);
        enc.finish()
    }
}

/// A value decodable from Ceph's encoding.
pub trait Decode: Sized {
    /// Decodes one value from the front of `dec`.
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError>;

    /// Decodes a value that must span all of `bytes` (no trailing bytes).
    fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(bytes);
        let value = Self::decode(&mut dec)?;
        dec.finish(std::any::type_name::<Self>())?;
        Ok(value)
    }
}

/// Ceph's `utime_t`: seconds and nanoseconds since the Unix epoch, 8 bytes on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UTime {
    /// Seconds.
    pub sec: u32,
    /// Nanoseconds (0..1e9 for values Ceph writes; any value decodes).
    pub nsec: u32,
}

impl UTime {
    /// The current wall-clock time (zero if the clock is before the epoch).
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UTime {
            sec: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
            nsec: d.subsec_nanos(),
        }
    }

    /// As a `Duration` since the epoch.
    pub fn as_duration(&self) -> std::time::Duration {
        std::time::Duration::new(u64::from(self.sec), 0)
            + std::time::Duration::from_nanos(u64::from(self.nsec))
    }

    /// True for the zero timestamp.
    pub fn is_zero(&self) -> bool {
        self.sec == 0 && self.nsec == 0
    }
}

impl Encode for UTime {
    fn encode(&self, enc: &mut Encoder) {
        enc.u32(self.sec);
        enc.u32(self.nsec);
    }
}

impl Decode for UTime {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        Ok(UTime {
            sec: dec.u32("utime.sec")?,
            nsec: dec.u32("utime.nsec")?,
        })
    }
}

#[cfg(test)]
mod tests;
