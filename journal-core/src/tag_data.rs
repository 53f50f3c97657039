//! librbd's tag data: the data blob of every tag of an RBD journal. **No envelope.**
//!
//! | field | encoding |
//! |---|---|
//! | mirror_uuid | string |
//! | predecessor.mirror_uuid | string |
//! | predecessor.commit_valid | bool |
//! | predecessor.tag_tid | u64 |
//! | predecessor.entry_tid | u64 |
//!
//! Owner convention for both uuids: `""` is the local primary, [`ORPHAN_MIRROR_UUID`] a demoted
//! image, anything else the mirror uuid of the remote primary a non-primary copy follows.
//!
//! ```
//! use journal_core::encoding::{Decode, Encode};
//! use journal_core::tag_data::TagData;
//!
//! // The tag a fresh journal is created with: everything empty (25 zero bytes).
//! let fresh = TagData::default();
//! assert_eq!(&fresh.to_bytes()[..], &[0u8; 25]);
//! assert!(fresh.is_local_primary());
//! assert_eq!(TagData::from_bytes(fresh.to_bytes())?, fresh);
//! # Ok::<(), journal_core::DecodeError>(())
//! ```

use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::DecodeError;

/// Mirror uuid marking a demoted image's epoch.
pub const ORPHAN_MIRROR_UUID: &str = "<orphan>";

/// Where the previous epoch ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagPredecessor {
    /// Owner of the previous epoch.
    pub mirror_uuid: String,
    /// Whether `tag_tid` / `entry_tid` are meaningful.
    pub commit_valid: bool,
    /// Last committed tag of the previous epoch.
    pub tag_tid: u64,
    /// Last committed entry of the previous epoch.
    pub entry_tid: u64,
}

/// The data of an RBD journal tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagData {
    /// Owner of this epoch.
    pub mirror_uuid: String,
    /// The epoch before.
    pub predecessor: TagPredecessor,
}

impl TagData {
    /// True if the local image owns this epoch (`mirror_uuid` is empty).
    pub fn is_local_primary(&self) -> bool {
        self.mirror_uuid.is_empty()
    }

    /// True if the epoch belongs to a demoted image.
    pub fn is_orphan(&self) -> bool {
        self.mirror_uuid == ORPHAN_MIRROR_UUID
    }
}

impl Encode for TagPredecessor {
    fn encode(&self, enc: &mut Encoder) {
        enc.string(&self.mirror_uuid);
        enc.bool(self.commit_valid);
        enc.u64(self.tag_tid);
        enc.u64(self.entry_tid);
    }
}

impl Decode for TagPredecessor {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        Ok(TagPredecessor {
            mirror_uuid: dec.string("tag_data.predecessor.mirror_uuid")?,
            commit_valid: dec.bool("tag_data.predecessor.commit_valid")?,
            tag_tid: dec.u64("tag_data.predecessor.tag_tid")?,
            entry_tid: dec.u64("tag_data.predecessor.entry_tid")?,
        })
    }
}

impl Encode for TagData {
    fn encode(&self, enc: &mut Encoder) {
        enc.string(&self.mirror_uuid);
        self.predecessor.encode(enc);
    }
}

impl Decode for TagData {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        Ok(TagData {
            mirror_uuid: dec.string("tag_data.mirror_uuid")?,
            predecessor: TagPredecessor::decode(dec)?,
        })
    }
}
