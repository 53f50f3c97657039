//! The records stored in a journal header's omap (spec §4.1, §4.3) and their omap keys.
//!
//! Structured values ([`ObjectPosition`], [`ObjectSetPosition`], [`Client`], [`Tag`]) use the
//! versioned envelope v1 / compat 1 and their decoders pass compat 1. Scalar values (`order`,
//! `splay_width`, `pool_id`, `minimum_set`, `active_set`, `next_tag_tid`, `next_tag_class`) are
//! bare little-endian integers with no envelope.
//!
//! ```
//! use journal_core::encoding::{Decode, Encode};
//! use journal_core::header::{tag_key, ObjectPosition};
//!
//! let pos = ObjectPosition { object_number: 1, tag_tid: 2, entry_tid: 3 };
//! let bytes = pos.to_bytes();
//! assert_eq!(bytes.len(), 30);
//! assert_eq!(ObjectPosition::from_bytes(bytes)?, pos);
//! assert_eq!(tag_key(10), "tag_000000000000000a");
//! # Ok::<(), journal_core::DecodeError>(())
//! ```

use std::cmp::Ordering;

use bytes::Bytes;

use crate::encoding::{Decode, Decoder, Encode, Encoder, ENVELOPE_LEN};
use crate::DecodeError;

/// Tag class value asking `tag_create` to allocate a fresh class (`u64::MAX`).
pub const TAG_CLASS_NEW: u64 = u64::MAX;

/// Omap key of the data-object order (`u8`).
pub const KEY_ORDER: &str = "order";
/// Omap key of the splay width (`u8`).
pub const KEY_SPLAY_WIDTH: &str = "splay_width";
/// Omap key of the data pool id (`i64`, −1 = the header's pool).
pub const KEY_POOL_ID: &str = "pool_id";
/// Omap key of the minimum (oldest untrimmed) object set (`u64`).
pub const KEY_MINIMUM_SET: &str = "minimum_set";
/// Omap key of the active object set (`u64`).
pub const KEY_ACTIVE_SET: &str = "active_set";
/// Omap key of the next tag tid to allocate (`u64`).
pub const KEY_NEXT_TAG_TID: &str = "next_tag_tid";
/// Omap key of the next tag class to allocate (`u64`).
pub const KEY_NEXT_TAG_CLASS: &str = "next_tag_class";
/// Prefix of every client record key; the rest of the key is the client id.
pub const CLIENT_KEY_PREFIX: &str = "client_";
/// Prefix of every tag record key; the rest is 16 lowercase hex digits of the tid.
pub const TAG_KEY_PREFIX: &str = "tag_";

/// The omap key of client `id` (`client_` + id; the image client `""` is exactly `client_`).
pub fn client_key(id: &str) -> String {
    format!("{CLIENT_KEY_PREFIX}{id}")
}

/// The omap key of tag `tid`: `tag_` + 16 zero-padded lowercase hex digits.
pub fn tag_key(tid: u64) -> String {
    format!("{TAG_KEY_PREFIX}{tid:016x}")
}

/// Parses a tag key back to its tid; `None` unless it is exactly `tag_` + 16 lowercase hex digits.
pub fn parse_tag_key(key: &str) -> Option<u64> {
    let hex = key.strip_prefix(TAG_KEY_PREFIX)?;
    let well_formed = hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Encodes a `u8` scalar value (`order`, `splay_width`).
pub fn encode_u8(v: u8) -> Bytes {
    Bytes::copy_from_slice(&[v])
}

/// Encodes an `i64` scalar value (`pool_id`), little-endian.
pub fn encode_i64(v: i64) -> Bytes {
    Bytes::copy_from_slice(&v.to_le_bytes())
}

/// Encodes a `u64` scalar value (sets, next tid/class), little-endian.
pub fn encode_u64(v: u64) -> Bytes {
    Bytes::copy_from_slice(&v.to_le_bytes())
}

/// Decodes a `u8` scalar value; the value must be exactly one byte.
pub fn decode_u8(what: &'static str, value: &[u8]) -> Result<u8, DecodeError> {
    let mut dec = Decoder::from_slice(value);
    let v = dec.u8(what)?;
    dec.finish(what)?;
    Ok(v)
}

/// Decodes an `i64` scalar value; the value must be exactly eight bytes.
pub fn decode_i64(what: &'static str, value: &[u8]) -> Result<i64, DecodeError> {
    let mut dec = Decoder::from_slice(value);
    let v = dec.i64(what)?;
    dec.finish(what)?;
    Ok(v)
}

/// Decodes a `u64` scalar value; the value must be exactly eight bytes.
pub fn decode_u64(what: &'static str, value: &[u8]) -> Result<u64, DecodeError> {
    let mut dec = Decoder::from_slice(value);
    let v = dec.u64(what)?;
    dec.finish(what)?;
    Ok(v)
}

/// One committed entry: where it lives and which (tag, entry) it is. 30 bytes encoded.
///
/// Ordered by `object_number`, then `tag_tid`, then `entry_tid` (Ceph's `operator<`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectPosition {
    /// Data object number the entry was read from / written to.
    pub object_number: u64,
    /// Tag tid of the entry.
    pub tag_tid: u64,
    /// Entry tid within the tag.
    pub entry_tid: u64,
}

impl ObjectPosition {
    /// Encoded size: envelope plus three `u64`s.
    pub const ENCODED_LEN: usize = ENVELOPE_LEN + 24;

    /// Compares by `(tag_tid, entry_tid)` only: the order of commits in time, as used by the
    /// initial-position rule of `client_register`.
    pub fn cmp_by_tag_entry(&self, other: &ObjectPosition) -> Ordering {
        (self.tag_tid, self.entry_tid).cmp(&(other.tag_tid, other.entry_tid))
    }
}

impl Encode for ObjectPosition {
    fn encode(&self, enc: &mut Encoder) {
        enc.envelope(1, 1, |e| {
            e.u64(self.object_number);
            e.u64(self.tag_tid);
            e.u64(self.entry_tid);
        });
    }
}

impl Decode for ObjectPosition {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        dec.envelope("ObjectPosition", 1, |d, _| {
            Ok(ObjectPosition {
                object_number: d.u64("ObjectPosition.object_number")?,
                tag_tid: d.u64("ObjectPosition.tag_tid")?,
                entry_tid: d.u64("ObjectPosition.entry_tid")?,
            })
        })
    }
}

/// A client's commit position: at most one [`ObjectPosition`] per splay offset, most recent
/// first. Empty means "nothing committed yet".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ObjectSetPosition {
    /// Positions, newest first.
    pub object_positions: Vec<ObjectPosition>,
}

impl ObjectSetPosition {
    /// A position from a list (newest first).
    pub fn new(object_positions: Vec<ObjectPosition>) -> Self {
        ObjectSetPosition { object_positions }
    }

    /// True if nothing was committed.
    pub fn is_empty(&self) -> bool {
        self.object_positions.is_empty()
    }

    /// The most recent position, if any.
    pub fn first(&self) -> Option<&ObjectPosition> {
        self.object_positions.first()
    }
}

impl Encode for ObjectSetPosition {
    fn encode(&self, enc: &mut Encoder) {
        enc.envelope(1, 1, |e| {
            e.list(&self.object_positions, |e, p| p.encode(e));
        });
    }
}

impl Decode for ObjectSetPosition {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        dec.envelope("ObjectSetPosition", 1, |d, _| {
            let object_positions = d.list(
                "ObjectSetPosition.object_positions",
                ObjectPosition::ENCODED_LEN,
                ObjectPosition::decode,
            )?;
            Ok(ObjectSetPosition { object_positions })
        })
    }
}

/// Whether a client holds back trimming and tag expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ClientState {
    /// Registered and active (0).
    #[default]
    Connected = 0,
    /// Flagged as lagging or gone (1); no longer holds back trimming.
    Disconnected = 1,
}

impl ClientState {
    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// From the wire value; `None` for values other than 0 and 1.
    pub fn from_u8(v: u8) -> Option<ClientState> {
        match v {
            0 => Some(ClientState::Connected),
            1 => Some(ClientState::Disconnected),
            _ => None,
        }
    }

    /// The name `rbd journal status` prints.
    pub fn name(self) -> &'static str {
        match self {
            ClientState::Connected => "connected",
            ClientState::Disconnected => "disconnected",
        }
    }
}

/// A registered journal client (`client_<id>` record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Client {
    /// Client id (`""` for the image itself).
    pub id: String,
    /// Opaque data blob (for RBD a `ClientData`).
    pub data: Bytes,
    /// The client's commit position.
    pub commit_position: ObjectSetPosition,
    /// Connected or disconnected.
    pub state: ClientState,
}

impl Encode for Client {
    fn encode(&self, enc: &mut Encoder) {
        enc.envelope(1, 1, |e| {
            e.string(&self.id);
            e.blob(&self.data);
            self.commit_position.encode(e);
            e.u8(self.state.as_u8());
        });
    }
}

impl Decode for Client {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        dec.envelope("Client", 1, |d, _| {
            let id = d.string("Client.id")?;
            let data = d.blob("Client.data")?;
            let commit_position = ObjectSetPosition::decode(d)?;
            let raw = d.u8("Client.state")?;
            let state = ClientState::from_u8(raw).ok_or_else(|| DecodeError::InvalidValue {
                what: "Client.state",
                value: raw.to_string(),
            })?;
            Ok(Client {
                id,
                data,
                commit_position,
                state,
            })
        })
    }
}

/// A tag (`tag_<tid>` record): an epoch in a tag class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tag {
    /// Tag tid.
    pub tid: u64,
    /// Tag class.
    pub tag_class: u64,
    /// Opaque data blob (for RBD a `TagData`).
    pub data: Bytes,
}

impl Encode for Tag {
    fn encode(&self, enc: &mut Encoder) {
        enc.envelope(1, 1, |e| {
            e.u64(self.tid);
            e.u64(self.tag_class);
            e.blob(&self.data);
        });
    }
}

impl Decode for Tag {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        dec.envelope("Tag", 1, |d, _| {
            Ok(Tag {
                tid: d.u64("Tag.tid")?,
                tag_class: d.u64("Tag.tag_class")?,
                data: d.blob("Tag.data")?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn tag_keys_parse_back_and_reject_malformed() {
        assert_eq!(tag_key(0), "tag_0000000000000000");
        assert_eq!(parse_tag_key("tag_000000000000000a"), Some(10));
        assert_eq!(parse_tag_key("tag_ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_tag_key("tag_000000000000000A"), None);
        assert_eq!(parse_tag_key("tag_00000000000000a"), None);
        assert_eq!(parse_tag_key("tag_+00000000000000a"), None);
        assert_eq!(parse_tag_key("client_"), None);
    }

    #[test]
    fn scalar_values_need_exact_length() {
        assert_eq!(decode_u8("order", &[0x18]).unwrap(), 24);
        assert!(decode_u8("order", &[]).is_err());
        assert!(decode_u8("order", &[1, 2]).is_err());
        assert_eq!(decode_i64("pool_id", &[0xff; 8]).unwrap(), -1);
        assert!(decode_u64("active_set", &[0; 7]).is_err());
        assert!(decode_u64("active_set", &[0; 9]).is_err());
    }

    #[test]
    fn client_state_out_of_range_is_an_error() {
        // Client "" with empty data and empty position, state byte 2.
        let mut bytes = Client::default().to_bytes().to_vec();
        *bytes.last_mut().unwrap() = 2;
        assert!(matches!(
            Client::from_bytes(Bytes::from(bytes)),
            Err(DecodeError::InvalidValue { .. })
        ));
    }
}
