//! The journal header object `journal.<id>`: its omap records ([`records`]) and the operations
//! of Ceph's `journal` object class, implemented client-side over [`object_store_trait`] omap
//! batches with guards.

mod error;
pub mod records;

pub use error::{HeaderError, HeaderResult};
pub use records::{
    client_key, decode_i64, decode_u64, decode_u8, encode_i64, encode_u64, encode_u8,
    parse_tag_key, tag_key, Client, ClientState, ObjectPosition, ObjectSetPosition, Tag,
    CLIENT_KEY_PREFIX, KEY_ACTIVE_SET, KEY_MINIMUM_SET, KEY_NEXT_TAG_CLASS, KEY_NEXT_TAG_TID,
    KEY_ORDER, KEY_POOL_ID, KEY_SPLAY_WIDTH, TAG_CLASS_NEW, TAG_KEY_PREFIX,
};
