//! Snapshot namespaces (cls_rbd's `SnapshotNamespace`), carried by snapshot journal events and
//! by rbd-mirror sync points.
//!
//! | part | encoding |
//! |---|---|
//! | envelope | v1, compat 1 |
//! | type | `u32`: 0 user, 1 group, 2 trash, 3 mirror, other unknown |
//! | body | per type (see [`SnapshotNamespace`]) |
//!
//! ```
//! use journal_core::encoding::{Decode, Encode};
//! use journal_core::snap_namespace::SnapshotNamespace;
//!
//! let user = SnapshotNamespace::User.to_bytes();
//! assert_eq!(&user[..], &[1, 1, 4, 0, 0, 0, 0, 0, 0, 0]);
//! assert_eq!(SnapshotNamespace::from_bytes(user)?, SnapshotNamespace::User);
//! # Ok::<(), journal_core::DecodeError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::DecodeError;

/// Namespace type number of [`SnapshotNamespace::User`].
pub const NS_TYPE_USER: u32 = 0;
/// Namespace type number of [`SnapshotNamespace::Group`].
pub const NS_TYPE_GROUP: u32 = 1;
/// Namespace type number of [`SnapshotNamespace::Trash`].
pub const NS_TYPE_TRASH: u32 = 2;
/// Namespace type number of [`SnapshotNamespace::Mirror`].
pub const NS_TYPE_MIRROR: u32 = 3;

/// State of a mirror snapshot (a `u8` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MirrorSnapshotState {
    /// 0: taken on the primary.
    Primary,
    /// 1: taken on the primary while demoting.
    PrimaryDemoted,
    /// 2: a copy on a non-primary.
    NonPrimary,
    /// 3: a copy on a non-primary of a demotion snapshot.
    NonPrimaryDemoted,
    /// Any other value, kept as read (values 0..=3 are never stored here).
    Unknown(u8),
}

impl MirrorSnapshotState {
    /// The state for a wire value.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => MirrorSnapshotState::Primary,
            1 => MirrorSnapshotState::PrimaryDemoted,
            2 => MirrorSnapshotState::NonPrimary,
            3 => MirrorSnapshotState::NonPrimaryDemoted,
            other => MirrorSnapshotState::Unknown(other),
        }
    }

    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            MirrorSnapshotState::Primary => 0,
            MirrorSnapshotState::PrimaryDemoted => 1,
            MirrorSnapshotState::NonPrimary => 2,
            MirrorSnapshotState::NonPrimaryDemoted => 3,
            MirrorSnapshotState::Unknown(v) => v,
        }
    }

    /// The name Ceph prints for the state.
    pub fn name(self) -> &'static str {
        match self {
            MirrorSnapshotState::Primary => "primary",
            MirrorSnapshotState::PrimaryDemoted => "primary (demoted)",
            MirrorSnapshotState::NonPrimary => "non-primary",
            MirrorSnapshotState::NonPrimaryDemoted => "non-primary (demoted)",
            MirrorSnapshotState::Unknown(_) => "unknown",
        }
    }
}

/// The namespace a snapshot lives in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SnapshotNamespace {
    /// 0: an ordinary user snapshot (empty body). What librbd journals for snapshot ops.
    #[default]
    User,
    /// 1: part of a group snapshot: `i64 pool`, `string group_id`, `string group_snapshot_id`.
    Group {
        /// Pool of the group.
        pool: i64,
        /// Group id.
        group_id: String,
        /// Group snapshot id.
        group_snapshot_id: String,
    },
    /// 2: a snapshot moved to the trash: `string original_name`, `u32 original_type`.
    Trash {
        /// Name before it was trashed.
        original_name: String,
        /// Namespace type before it was trashed.
        original_type: u32,
    },
    /// 3: a mirror snapshot: `u8 state`, `bool complete`, `set<string> peer_uuids`,
    /// `string primary_mirror_uuid`, `u64 primary_snap_id`, `u64 last_copied_object_number`,
    /// `map<u64,u64> snap_seqs`.
    Mirror {
        /// Primary / non-primary, demoted or not.
        state: MirrorSnapshotState,
        /// Whether the copy finished.
        complete: bool,
        /// Peers this snapshot is for (sorted, no duplicates).
        mirror_peer_uuids: BTreeSet<String>,
        /// Mirror uuid of the primary (non-primary snapshots).
        primary_mirror_uuid: String,
        /// Snapshot id on the primary (non-primary snapshots).
        primary_snap_id: u64,
        /// Copy progress.
        last_copied_object_number: u64,
        /// Snapshot id map.
        snap_seqs: BTreeMap<u64, u64>,
    },
    /// Any other type number; its body is skipped on decode and written empty.
    Unknown {
        /// The type number read.
        ns_type: u32,
    },
}

impl SnapshotNamespace {
    /// The wire type number.
    pub fn ns_type(&self) -> u32 {
        match self {
            SnapshotNamespace::User => NS_TYPE_USER,
            SnapshotNamespace::Group { .. } => NS_TYPE_GROUP,
            SnapshotNamespace::Trash { .. } => NS_TYPE_TRASH,
            SnapshotNamespace::Mirror { .. } => NS_TYPE_MIRROR,
            SnapshotNamespace::Unknown { ns_type } => *ns_type,
        }
    }

    /// The type name Ceph prints (`snapshot_namespace_type` in JSON dumps).
    pub fn type_name(&self) -> &'static str {
        match self {
            SnapshotNamespace::User => "user",
            SnapshotNamespace::Group { .. } => "group",
            SnapshotNamespace::Trash { .. } => "trash",
            SnapshotNamespace::Mirror { .. } => "mirror",
            SnapshotNamespace::Unknown { .. } => "unknown",
        }
    }
}

/// Encodes a `map<u64,u64>`: count, then key/value pairs in key order.
pub(crate) fn encode_u64_map(enc: &mut Encoder, map: &BTreeMap<u64, u64>) {
    enc.len_u32(map.len());
    for (k, v) in map {
        enc.u64(*k);
        enc.u64(*v);
    }
}

/// Decodes a `map<u64,u64>`; a repeated key keeps the last value.
pub(crate) fn decode_u64_map(
    dec: &mut Decoder,
    what: &'static str,
) -> Result<BTreeMap<u64, u64>, DecodeError> {
    let pairs = dec.list(what, 16, |d| Ok((d.u64(what)?, d.u64(what)?)))?;
    Ok(pairs.into_iter().collect())
}

impl Encode for SnapshotNamespace {
    fn encode(&self, enc: &mut Encoder) {
        enc.envelope(1, 1, |e| {
            e.u32(self.ns_type());
            match self {
                SnapshotNamespace::User | SnapshotNamespace::Unknown { .. } => {}
                SnapshotNamespace::Group {
                    pool,
                    group_id,
                    group_snapshot_id,
                } => {
                    e.i64(*pool);
                    e.string(group_id);
                    e.string(group_snapshot_id);
                }
                SnapshotNamespace::Trash {
                    original_name,
                    original_type,
                } => {
                    e.string(original_name);
                    e.u32(*original_type);
                }
                SnapshotNamespace::Mirror {
                    state,
                    complete,
                    mirror_peer_uuids,
                    primary_mirror_uuid,
                    primary_snap_id,
                    last_copied_object_number,
                    snap_seqs,
                } => {
                    e.u8(state.to_u8());
                    e.bool(*complete);
                    e.len_u32(mirror_peer_uuids.len());
                    for uuid in mirror_peer_uuids {
                        e.string(uuid);
                    }
                    e.string(primary_mirror_uuid);
                    e.u64(*primary_snap_id);
                    e.u64(*last_copied_object_number);
                    encode_u64_map(e, snap_seqs);
                }
            }
        });
    }
}

impl Decode for SnapshotNamespace {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        dec.envelope("SnapshotNamespace", 1, |d, _| {
            let ns_type = d.u32("snap_namespace.type")?;
            Ok(match ns_type {
                NS_TYPE_USER => SnapshotNamespace::User,
                NS_TYPE_GROUP => SnapshotNamespace::Group {
                    pool: d.i64("group.pool")?,
                    group_id: d.string("group.group_id")?,
                    group_snapshot_id: d.string("group.group_snapshot_id")?,
                },
                NS_TYPE_TRASH => SnapshotNamespace::Trash {
                    original_name: d.string("trash.original_name")?,
                    original_type: d.u32("trash.original_type")?,
                },
                NS_TYPE_MIRROR => SnapshotNamespace::Mirror {
                    state: MirrorSnapshotState::from_u8(d.u8("mirror.state")?),
                    complete: d.bool("mirror.complete")?,
                    mirror_peer_uuids: d
                        .list("mirror.peer_uuids", 4, |d| d.string("mirror.peer_uuid"))?
                        .into_iter()
                        .collect(),
                    primary_mirror_uuid: d.string("mirror.primary_mirror_uuid")?,
                    primary_snap_id: d.u64("mirror.primary_snap_id")?,
                    last_copied_object_number: d.u64("mirror.last_copied_object_number")?,
                    snap_seqs: decode_u64_map(d, "mirror.snap_seqs")?,
                },
                ns_type => SnapshotNamespace::Unknown { ns_type },
            })
        })
    }
}
