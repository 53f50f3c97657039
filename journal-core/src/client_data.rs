//! librbd's client data: the data blob of a registered journal client.
//!
//! | part | encoding |
//! |---|---|
//! | envelope | v2, compat 1 (decoders pass 1) |
//! | client_meta_type | `u32`: 0 image, 1 mirror peer, 2 CLI, other unknown (body skipped) |
//! | body | per type (see [`ClientMeta`]) |
//!
//! ```
//! use journal_core::client_data::{ClientData, ClientMeta, ImageClientMeta};
//! use journal_core::encoding::{Decode, Encode};
//!
//! let image = ClientData::image(0);
//! // The `client_` record of a fresh journal carries exactly these 19 bytes.
//! assert_eq!(
//!     &image.to_bytes()[..],
//!     &[2, 1, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
//! );
//! assert_eq!(ClientData::from_bytes(image.to_bytes())?, image);
//! # Ok::<(), journal_core::DecodeError>(())
//! ```

use std::collections::BTreeMap;

use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::snap_namespace::{decode_u64_map, encode_u64_map, SnapshotNamespace};
use crate::DecodeError;

/// Type number of [`ClientMeta::Image`].
pub const CLIENT_META_IMAGE: u32 = 0;
/// Type number of [`ClientMeta::MirrorPeer`].
pub const CLIENT_META_MIRROR_PEER: u32 = 1;
/// Type number of [`ClientMeta::Cli`].
pub const CLIENT_META_CLI: u32 = 2;

/// Metadata of the image's own client (id `""`): `u64 tag_class`, `bool resync_requested`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageClientMeta {
    /// The tag class of this image's journal.
    pub tag_class: u64,
    /// Set by `rbd mirror image resync` on a non-primary.
    pub resync_requested: bool,
}

/// rbd-mirror's bootstrap progress (`u32` on the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MirrorPeerState {
    /// 0: the local image is being copied (image sync).
    #[default]
    Syncing,
    /// 1: journal replay.
    Replaying,
}

/// One image-sync checkpoint: `string snap_name`, `string from_snap_name`,
/// `optional<u64> object_number`, then (client data v2+) a [`SnapshotNamespace`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorPeerSyncPoint {
    /// Namespace of the sync snapshot.
    pub snap_namespace: SnapshotNamespace,
    /// Sync snapshot name (`.rbd-mirror.<local mirror uuid>.<uuid>`).
    pub snap_name: String,
    /// Snapshot the sync started from, or empty.
    pub from_snap_name: String,
    /// Last object copied, if any.
    pub object_number: Option<u64>,
}

/// Metadata of an rbd-mirror peer client.
///
/// | field | encoding |
/// |---|---|
/// | image_id | string (local non-primary image id) |
/// | state | `u32`: 0 syncing, 1 replaying |
/// | sync_object_count | u64 |
/// | sync_points | `u32` count + [`MirrorPeerSyncPoint`]s (no envelope each) |
/// | snap_seqs | `map<u64,u64>` local snap id → peer snap id |
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorPeerClientMeta {
    /// The local (non-primary) image id; empty before it exists.
    pub image_id: String,
    /// Syncing or replaying.
    pub state: MirrorPeerState,
    /// Largest object number + 1 recorded in any sync point.
    pub sync_object_count: u64,
    /// Image-sync checkpoints (at most two in use).
    pub sync_points: Vec<MirrorPeerSyncPoint>,
    /// Snapshot id map.
    pub snap_seqs: BTreeMap<u64, u64>,
}

/// Per-kind client metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMeta {
    /// 0: the image itself.
    Image(ImageClientMeta),
    /// 1: an rbd-mirror peer.
    MirrorPeer(MirrorPeerClientMeta),
    /// 2: a CLI tool (empty body; the stock CLI actually registers with an empty blob).
    Cli,
    /// Any other type number; its body is skipped on decode and written empty.
    Unknown {
        /// The type number read.
        meta_type: u32,
    },
}

impl ClientMeta {
    /// The wire type number.
    pub fn meta_type(&self) -> u32 {
        match self {
            ClientMeta::Image(_) => CLIENT_META_IMAGE,
            ClientMeta::MirrorPeer(_) => CLIENT_META_MIRROR_PEER,
            ClientMeta::Cli => CLIENT_META_CLI,
            ClientMeta::Unknown { meta_type } => *meta_type,
        }
    }
}

/// The data blob of an RBD journal client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientData {
    /// The metadata.
    pub meta: ClientMeta,
}

impl ClientData {
    /// Image client data for `tag_class`, resync not requested.
    pub fn image(tag_class: u64) -> Self {
        ClientData {
            meta: ClientMeta::Image(ImageClientMeta {
                tag_class,
                resync_requested: false,
            }),
        }
    }
}

impl Encode for MirrorPeerSyncPoint {
    fn encode(&self, enc: &mut Encoder) {
        enc.string(&self.snap_name);
        enc.string(&self.from_snap_name);
        enc.optional(self.object_number.as_ref(), |e, v| e.u64(*v));
        self.snap_namespace.encode(enc);
    }
}

impl MirrorPeerSyncPoint {
    /// Decodes a sync point inside client data of version `struct_v`.
    fn decode_versioned(dec: &mut Decoder, struct_v: u8) -> Result<Self, DecodeError> {
        let snap_name = dec.string("sync_point.snap_name")?;
        let from_snap_name = dec.string("sync_point.from_snap_name")?;
        let object_number = dec.optional("sync_point.object_number", |d| {
            d.u64("sync_point.object_number")
        })?;
        let snap_namespace = if struct_v >= 2 {
            SnapshotNamespace::decode(dec)?
        } else {
            SnapshotNamespace::User
        };
        Ok(MirrorPeerSyncPoint {
            snap_namespace,
            snap_name,
            from_snap_name,
            object_number,
        })
    }
}

impl Encode for ClientData {
    fn encode(&self, enc: &mut Encoder) {
        enc.envelope(2, 1, |e| {
            e.u32(self.meta.meta_type());
            match &self.meta {
                ClientMeta::Image(m) => {
                    e.u64(m.tag_class);
                    e.bool(m.resync_requested);
                }
                ClientMeta::MirrorPeer(m) => {
                    e.string(&m.image_id);
                    e.u32(match m.state {
                        MirrorPeerState::Syncing => 0,
                        MirrorPeerState::Replaying => 1,
                    });
                    e.u64(m.sync_object_count);
                    e.list(&m.sync_points, |e, p| p.encode(e));
                    encode_u64_map(e, &m.snap_seqs);
                }
                ClientMeta::Cli | ClientMeta::Unknown { .. } => {}
            }
        });
    }
}

impl Decode for ClientData {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        dec.envelope("ClientData", 1, |d, struct_v| {
            let meta_type = d.u32("client_data.type")?;
            let meta = match meta_type {
                CLIENT_META_IMAGE => ClientMeta::Image(ImageClientMeta {
                    tag_class: d.u64("image_meta.tag_class")?,
                    resync_requested: d.bool("image_meta.resync_requested")?,
                }),
                CLIENT_META_MIRROR_PEER => {
                    let image_id = d.string("mirror_peer.image_id")?;
                    let state = match d.u32("mirror_peer.state")? {
                        0 => MirrorPeerState::Syncing,
                        1 => MirrorPeerState::Replaying,
                        other => {
                            return Err(DecodeError::InvalidValue {
                                what: "mirror_peer.state",
                                value: other.to_string(),
                            })
                        }
                    };
                    let sync_object_count = d.u64("mirror_peer.sync_object_count")?;
                    // A sync point is at least two empty strings and an absent optional.
                    let sync_points = d.list("mirror_peer.sync_points", 9, |d| {
                        MirrorPeerSyncPoint::decode_versioned(d, struct_v)
                    })?;
                    let snap_seqs = decode_u64_map(d, "mirror_peer.snap_seqs")?;
                    ClientMeta::MirrorPeer(MirrorPeerClientMeta {
                        image_id,
                        state,
                        sync_object_count,
                        sync_points,
                        snap_seqs,
                    })
                }
                CLIENT_META_CLI => ClientMeta::Cli,
                meta_type => ClientMeta::Unknown { meta_type },
            };
            Ok(ClientData { meta })
        })
    }
}
