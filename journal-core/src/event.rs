//! librbd's `EventEntry`: the payload of every RBD journal entry.
//!
//! | part | encoding |
//! |---|---|
//! | event envelope | v5, compat 1 (decoders pass 1) |
//! | event_type | `u32` ([`event_type`]) |
//! | body | per type, read according to the envelope's `struct_v` (see [`Event`]) |
//! | metadata envelope (only when `struct_v >= 4`) | v1, compat 1 |
//! | timestamp | `utime_t` |
//!
//! ```
//! use bytes::Bytes;
//! use journal_core::encoding::{Decode, Encode, UTime};
//! use journal_core::event::{Event, EventEntry, AIO_WRITE_EVENT_FIXED_OVERHEAD};
//!
//! let e = EventEntry::new(
//!     Event::AioWrite { offset: 4096, length: 3, data: Bytes::from_static(b"abc") },
//!     UTime { sec: 1, nsec: 1 },
//! );
//! let bytes = e.to_bytes();
//! assert_eq!(bytes.len(), AIO_WRITE_EVENT_FIXED_OVERHEAD + 3);
//! assert_eq!(EventEntry::from_bytes(bytes)?, e);
//! assert_eq!(e.event.name(), "AioWrite");
//! # Ok::<(), journal_core::DecodeError>(())
//! ```

mod codec;
mod json;

use bytes::Bytes;

use crate::encoding::{UTime, ENVELOPE_LEN};
use crate::snap_namespace::SnapshotNamespace;

/// The event type numbers (`u32` on the wire).
pub mod event_type {
    /// [`super::Event::AioDiscard`].
    pub const AIO_DISCARD: u32 = 0;
    /// [`super::Event::AioWrite`].
    pub const AIO_WRITE: u32 = 1;
    /// [`super::Event::AioFlush`].
    pub const AIO_FLUSH: u32 = 2;
    /// [`super::Event::OpFinish`].
    pub const OP_FINISH: u32 = 3;
    /// [`super::Event::SnapCreate`].
    pub const SNAP_CREATE: u32 = 4;
    /// [`super::Event::SnapRemove`].
    pub const SNAP_REMOVE: u32 = 5;
    /// [`super::Event::SnapRename`].
    pub const SNAP_RENAME: u32 = 6;
    /// [`super::Event::SnapProtect`].
    pub const SNAP_PROTECT: u32 = 7;
    /// [`super::Event::SnapUnprotect`].
    pub const SNAP_UNPROTECT: u32 = 8;
    /// [`super::Event::SnapRollback`].
    pub const SNAP_ROLLBACK: u32 = 9;
    /// [`super::Event::Rename`].
    pub const RENAME: u32 = 10;
    /// [`super::Event::Resize`].
    pub const RESIZE: u32 = 11;
    /// [`super::Event::Flatten`].
    pub const FLATTEN: u32 = 12;
    /// [`super::Event::DemotePromote`].
    pub const DEMOTE_PROMOTE: u32 = 13;
    /// [`super::Event::SnapLimit`].
    pub const SNAP_LIMIT: u32 = 14;
    /// [`super::Event::UpdateFeatures`].
    pub const UPDATE_FEATURES: u32 = 15;
    /// [`super::Event::MetadataSet`].
    pub const METADATA_SET: u32 = 16;
    /// [`super::Event::MetadataRemove`].
    pub const METADATA_REMOVE: u32 = 17;
    /// [`super::Event::AioWriteSame`].
    pub const AIO_WRITE_SAME: u32 = 18;
    /// [`super::Event::AioCompareAndWrite`].
    pub const AIO_COMPARE_AND_WRITE: u32 = 19;
}

/// Version of the event envelope librbd writes.
pub const EVENT_ENTRY_VERSION: u8 = 5;
/// Compat version of the event envelope (and the version decoders pass).
pub const EVENT_ENTRY_COMPAT: u8 = 1;
/// Event envelope plus the type number.
pub const EVENT_FIXED_SIZE: usize = ENVELOPE_LEN + 4;
/// Metadata envelope plus the timestamp.
pub const METADATA_FIXED_SIZE: usize = ENVELOPE_LEN + 8;
/// Size of an encoded AioWrite event minus its data: librbd splits writes with this.
pub const AIO_WRITE_EVENT_FIXED_OVERHEAD: usize =
    EVENT_FIXED_SIZE + 8 + 8 + 4 + METADATA_FIXED_SIZE;

const _: () = assert!(EVENT_FIXED_SIZE == 10);
const _: () = assert!(METADATA_FIXED_SIZE == 14);
const _: () = assert!(AIO_WRITE_EVENT_FIXED_OVERHEAD == 44);

/// One journaled image operation. Field order in each variant is the wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// 0: discard (also write-zeroes). `u64 offset`, `u64 length`, `bool skip_partial`
    /// (v4+, written as `granularity > 0`), `u32 discard_granularity_bytes` (v5+; for v4 a set
    /// flag reads as `u32::MAX`).
    AioDiscard {
        /// Byte offset.
        offset: u64,
        /// Byte length.
        length: u64,
        /// Discard granularity; 0 discards partial blocks too.
        discard_granularity_bytes: u32,
    },
    /// 1: write. `u64 offset`, `u64 length`, bufferlist data.
    AioWrite {
        /// Byte offset.
        offset: u64,
        /// Byte length.
        length: u64,
        /// The data: a zero-copy slice of the payload when decoded.
        data: Bytes,
    },
    /// 2: flush (empty body).
    AioFlush,
    /// 3: completion of an op event. `u64 op_tid` written **twice**, then `i32 result`.
    OpFinish {
        /// The op this finishes (the second copy on decode).
        op_tid: u64,
        /// The op's result (0 or a negative errno).
        result: i32,
    },
    /// 4: snapshot create. `u64 op_tid`, `string snap_name`, namespace (v3+).
    SnapCreate {
        /// Op tid.
        op_tid: u64,
        /// Snapshot name.
        snap_name: String,
        /// Snapshot namespace.
        namespace: SnapshotNamespace,
    },
    /// 5: snapshot remove. Like SnapCreate, namespace only v4+.
    SnapRemove {
        /// Op tid.
        op_tid: u64,
        /// Snapshot name.
        snap_name: String,
        /// Snapshot namespace.
        namespace: SnapshotNamespace,
    },
    /// 6: snapshot rename. `u64 op_tid`, `string dst_snap_name`, `u64 src_snap_id`,
    /// `string src_snap_name` (v2+).
    SnapRename {
        /// Op tid.
        op_tid: u64,
        /// New name.
        dst_snap_name: String,
        /// Snapshot id being renamed.
        src_snap_id: u64,
        /// Old name.
        src_snap_name: String,
    },
    /// 7: snapshot protect. Like SnapRemove.
    SnapProtect {
        /// Op tid.
        op_tid: u64,
        /// Snapshot name.
        snap_name: String,
        /// Snapshot namespace.
        namespace: SnapshotNamespace,
    },
    /// 8: snapshot unprotect. Like SnapRemove.
    SnapUnprotect {
        /// Op tid.
        op_tid: u64,
        /// Snapshot name.
        snap_name: String,
        /// Snapshot namespace.
        namespace: SnapshotNamespace,
    },
    /// 9: snapshot rollback. Like SnapRemove.
    SnapRollback {
        /// Op tid.
        op_tid: u64,
        /// Snapshot name.
        snap_name: String,
        /// Snapshot namespace.
        namespace: SnapshotNamespace,
    },
    /// 10: image rename. `u64 op_tid`, `string image_name`.
    Rename {
        /// Op tid.
        op_tid: u64,
        /// New image name.
        image_name: String,
    },
    /// 11: resize. `u64 op_tid`, `u64 size`.
    Resize {
        /// Op tid.
        op_tid: u64,
        /// New size in bytes.
        size: u64,
    },
    /// 12: flatten. `u64 op_tid`.
    Flatten {
        /// Op tid.
        op_tid: u64,
    },
    /// 13: demote or promote marker (empty body; written with a zero timestamp).
    DemotePromote,
    /// 14: snapshot limit. `u64 op_tid`, `u64 limit`.
    SnapLimit {
        /// Op tid.
        op_tid: u64,
        /// Snapshot count limit.
        limit: u64,
    },
    /// 15: feature change. `u64 op_tid`, `u64 features`, `bool enabled`.
    UpdateFeatures {
        /// Op tid.
        op_tid: u64,
        /// Feature bits.
        features: u64,
        /// Enable (true) or disable.
        enabled: bool,
    },
    /// 16: image-meta set. `u64 op_tid`, `string key`, `string value`.
    MetadataSet {
        /// Op tid.
        op_tid: u64,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// 17: image-meta remove. `u64 op_tid`, `string key`.
    MetadataRemove {
        /// Op tid.
        op_tid: u64,
        /// Key.
        key: String,
    },
    /// 18: write-same. `u64 offset`, `u64 length`, bufferlist pattern.
    AioWriteSame {
        /// Byte offset.
        offset: u64,
        /// Byte length.
        length: u64,
        /// The repeated pattern (zero-copy when decoded).
        data: Bytes,
    },
    /// 19: compare-and-write. `u64 offset`, `u64 length`, bufferlist cmp, bufferlist write.
    AioCompareAndWrite {
        /// Byte offset.
        offset: u64,
        /// Byte length.
        length: u64,
        /// Expected data (zero-copy when decoded).
        cmp_data: Bytes,
        /// Data written if it matches (zero-copy when decoded).
        write_data: Bytes,
    },
    /// Any other type number; its body is skipped on decode and written empty. Replay
    /// acknowledges it without action.
    Unknown {
        /// The type number read.
        event_type: u32,
    },
}

impl Event {
    /// The wire type number.
    pub fn event_type(&self) -> u32 {
        use event_type as t;
        match self {
            Event::AioDiscard { .. } => t::AIO_DISCARD,
            Event::AioWrite { .. } => t::AIO_WRITE,
            Event::AioFlush => t::AIO_FLUSH,
            Event::OpFinish { .. } => t::OP_FINISH,
            Event::SnapCreate { .. } => t::SNAP_CREATE,
            Event::SnapRemove { .. } => t::SNAP_REMOVE,
            Event::SnapRename { .. } => t::SNAP_RENAME,
            Event::SnapProtect { .. } => t::SNAP_PROTECT,
            Event::SnapUnprotect { .. } => t::SNAP_UNPROTECT,
            Event::SnapRollback { .. } => t::SNAP_ROLLBACK,
            Event::Rename { .. } => t::RENAME,
            Event::Resize { .. } => t::RESIZE,
            Event::Flatten { .. } => t::FLATTEN,
            Event::DemotePromote => t::DEMOTE_PROMOTE,
            Event::SnapLimit { .. } => t::SNAP_LIMIT,
            Event::UpdateFeatures { .. } => t::UPDATE_FEATURES,
            Event::MetadataSet { .. } => t::METADATA_SET,
            Event::MetadataRemove { .. } => t::METADATA_REMOVE,
            Event::AioWriteSame { .. } => t::AIO_WRITE_SAME,
            Event::AioCompareAndWrite { .. } => t::AIO_COMPARE_AND_WRITE,
            Event::Unknown { event_type } => *event_type,
        }
    }

    /// Ceph's name for the event type, as `rbd journal inspect` prints it (note
    /// `"Demote/Promote"` for [`Event::DemotePromote`]).
    pub fn name(&self) -> &'static str {
        match self {
            Event::AioDiscard { .. } => "AioDiscard",
            Event::AioWrite { .. } => "AioWrite",
            Event::AioFlush => "AioFlush",
            Event::OpFinish { .. } => "OpFinish",
            Event::SnapCreate { .. } => "SnapCreate",
            Event::SnapRemove { .. } => "SnapRemove",
            Event::SnapRename { .. } => "SnapRename",
            Event::SnapProtect { .. } => "SnapProtect",
            Event::SnapUnprotect { .. } => "SnapUnprotect",
            Event::SnapRollback { .. } => "SnapRollback",
            Event::Rename { .. } => "Rename",
            Event::Resize { .. } => "Resize",
            Event::Flatten { .. } => "Flatten",
            Event::DemotePromote => "Demote/Promote",
            Event::SnapLimit { .. } => "SnapLimit",
            Event::UpdateFeatures { .. } => "UpdateFeatures",
            Event::MetadataSet { .. } => "MetadataSet",
            Event::MetadataRemove { .. } => "MetadataRemove",
            Event::AioWriteSame { .. } => "AioWriteSame",
            Event::AioCompareAndWrite { .. } => "AioCompareAndWrite",
            Event::Unknown { .. } => "Unknown",
        }
    }

    /// The op tid of an op event (snapshot, rename, resize, flatten, limit, features,
    /// metadata, and OpFinish); `None` for IO, flush, demote/promote and unknown events.
    pub fn op_tid(&self) -> Option<u64> {
        match self {
            Event::OpFinish { op_tid, .. }
            | Event::SnapCreate { op_tid, .. }
            | Event::SnapRemove { op_tid, .. }
            | Event::SnapRename { op_tid, .. }
            | Event::SnapProtect { op_tid, .. }
            | Event::SnapUnprotect { op_tid, .. }
            | Event::SnapRollback { op_tid, .. }
            | Event::Rename { op_tid, .. }
            | Event::Resize { op_tid, .. }
            | Event::Flatten { op_tid }
            | Event::SnapLimit { op_tid, .. }
            | Event::UpdateFeatures { op_tid, .. }
            | Event::MetadataSet { op_tid, .. }
            | Event::MetadataRemove { op_tid, .. } => Some(*op_tid),
            Event::AioDiscard { .. }
            | Event::AioWrite { .. }
            | Event::AioFlush
            | Event::DemotePromote
            | Event::AioWriteSame { .. }
            | Event::AioCompareAndWrite { .. }
            | Event::Unknown { .. } => None,
        }
    }
}

/// An event with the wall-clock time it was appended (zero for demote/promote markers and
/// for events decoded from versions before 4, which carry no timestamp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventEntry {
    /// The event.
    pub event: Event,
    /// When it was appended.
    pub timestamp: UTime,
}

impl EventEntry {
    /// An event entry.
    pub fn new(event: Event, timestamp: UTime) -> Self {
        EventEntry { event, timestamp }
    }

    /// The JSON dump `rbd journal inspect --verbose` prints for this event: a pretty-printed
    /// object with 4-space indentation and no trailing newline, fields in Ceph's order.
    pub fn to_json(&self) -> String {
        json::event_entry_json(self)
    }
}
