//! The journal header object `journal.<id>`: its omap records ([`records`]) and the operations
//! of Ceph's `journal` object class, implemented client-side over [`object_store_trait`] omap
//! batches with guards ([`JournalHeader`]; the concurrency and fencing design is described
//! there).
//!
//! | file | contents |
//! |---|---|
//! | `records.rs` | `ObjectPosition`, `ObjectSetPosition`, `Client`, `Tag`, omap keys, scalar codecs |
//! | `journal_header.rs` | the handle, optimistic-update loop, fencing, watch / notify |
//! | `metadata.rs` | `create`, immutable / mutable metadata, `set_minimum_set` / `set_active_set` |
//! | `clients.rs` | client register / update / commit / unregister / list |
//! | `tags.rs` | tag create / allocate / get / list |
//! | `expiry.rs` | pure rules: tag expiry, tag visibility, initial commit position |
//! | `trim.rs` | pure rules: trimmable sets, laggy clients; trim and journal removal |
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use journal_core::header::{JournalHeader, TAG_CLASS_NEW};
//! use object_store_trait::MemStore;
//!
//! let header = JournalHeader::new(Arc::new(MemStore::new()), 1, "10226b8b4567");
//! header.create(24, 4, -1)?;
//! let tag = header.allocate_tag(TAG_CLASS_NEW, Bytes::new())?;
//! assert_eq!((tag.tid, tag.tag_class), (0, 0));
//! header.client_register("", Bytes::new())?;
//! assert!(header.client_register("", Bytes::new()).unwrap_err().is_exists());
//! assert_eq!(header.get_next_tag_tid()?, 1);
//! # Ok::<(), journal_core::header::HeaderError>(())
//! ```

mod clients;
mod error;
pub mod expiry;
mod journal_header;
mod metadata;
pub mod records;
mod tags;
pub mod trim;

pub use error::{HeaderError, HeaderResult};
pub use expiry::{
    class_thresholds, expired_tags, expiry_min_tid, initial_commit_position, visible_tags,
};
pub use journal_header::{HeaderOptions, JournalHeader, CLIENT_LIST_PAGE};
pub use metadata::{ImmutableMetadata, MutableMetadata};
pub use records::{
    client_key, decode_i64, decode_u64, decode_u8, encode_i64, encode_u64, encode_u8,
    parse_tag_key, tag_key, Client, ClientState, ObjectPosition, ObjectSetPosition, Tag,
    CLIENT_KEY_PREFIX, KEY_ACTIVE_SET, KEY_MINIMUM_SET, KEY_NEXT_TAG_CLASS, KEY_NEXT_TAG_TID,
    KEY_ORDER, KEY_POOL_ID, KEY_SPLAY_WIDTH, TAG_CLASS_NEW, TAG_KEY_PREFIX,
};
pub use tags::TAG_LIST_PAGE;
pub use trim::{commit_set, laggy_clients, trimmable_sets};
