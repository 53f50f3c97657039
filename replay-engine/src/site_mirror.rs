//! Per-site mirroring settings, kept in the omap of the `rbd_mirroring` object:
//!
//! | key | value |
//! |---|---|
//! | `mirror_mode` | `u32` LE: 0 disabled, 1 image, 2 pool |
//! | `mirror_uuid` | string (`u32` length + bytes): this site's mirror uuid, generated once |
//! | `mirror_peer_<uuid>` | string: a free-form peer description (site name) |
//! | `image_<image id>` | [`MirrorImage`]: the image's global id and mirroring state |
//! | `global_<global id>` | string: the local image id of that global image |
//! | `sync_<image id>` | [`crate::sync_mark::SyncMark`]: the replica is not consistent yet |
//! | `promotion_<image id>` | the last orderly promotion: `u64` demotion tag tid, blob demotion `TagData`, `u64` promotion tag tid, blob promotion `TagData` |
//!
//! The global image id names one mirrored image across sites: the replica an agent creates
//! carries the primary's global id (and name).

use std::collections::BTreeMap;

use bytes::Bytes;
use journal_core::encoding::{Decode, Decoder, Encode, Encoder};
use journal_core::tag_data::TagData;
use object_store_trait::{ObjectStore, ObjectStoreExt, OmapBatch};

use crate::error::{ReplayError, Result};
use crate::ids;

/// Name of the object holding a site's mirroring settings.
pub const MIRRORING_OID: &str = "rbd_mirroring";
const KEY_MODE: &str = "mirror_mode";
const KEY_UUID: &str = "mirror_uuid";
const PEER_PREFIX: &str = "mirror_peer_";
const IMAGE_PREFIX: &str = "image_";
const GLOBAL_PREFIX: &str = "global_";
const PROMOTION_PREFIX: &str = "promotion_";

/// Which images of a site are mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MirrorMode {
    /// Nothing is mirrored (the default).
    #[default]
    Disabled,
    /// Only images with mirroring enabled one by one.
    Image,
    /// Every journaled image: enabling pool mode enables all existing journaled images, and
    /// journaled images created later are enabled at creation.
    Pool,
}

impl MirrorMode {
    fn to_u32(self) -> u32 {
        match self {
            MirrorMode::Disabled => 0,
            MirrorMode::Image => 1,
            MirrorMode::Pool => 2,
        }
    }

    fn from_u32(v: u32) -> Result<Self> {
        match v {
            0 => Ok(MirrorMode::Disabled),
            1 => Ok(MirrorMode::Image),
            2 => Ok(MirrorMode::Pool),
            other => Err(ReplayError::Invalid(format!("mirror mode {other}"))),
        }
    }
}

/// Mirroring state of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorImageState {
    /// Being disabled (set while the image is removed).
    Disabling,
    /// Mirrored.
    Enabled,
}

/// The per-image mirroring record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorImage {
    /// Id naming the image across sites.
    pub global_id: String,
    /// Mirroring state.
    pub state: MirrorImageState,
}

impl MirrorImage {
    fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.envelope(1, 1, |e| {
            e.string(&self.global_id);
            e.u8(match self.state {
                MirrorImageState::Disabling => 0,
                MirrorImageState::Enabled => 1,
            });
        });
        enc.finish()
    }

    fn decode(bytes: Bytes) -> Result<Self> {
        let mut dec = Decoder::new(bytes);
        let rec = dec.envelope("mirror_image", 1, |d, _| {
            let global_id = d.string("global_id")?;
            let state = d.u8("state")?;
            Ok((global_id, state))
        })?;
        let state = match rec.1 {
            0 => MirrorImageState::Disabling,
            1 => MirrorImageState::Enabled,
            other => return Err(ReplayError::Invalid(format!("mirror image state {other}"))),
        };
        Ok(MirrorImage {
            global_id: rec.0,
            state,
        })
    }
}

pub(crate) fn encode_string(s: &str) -> Bytes {
    let mut enc = Encoder::new();
    enc.string(s);
    enc.finish()
}

pub(crate) fn decode_string(bytes: Bytes, what: &'static str) -> Result<String> {
    let mut dec = Decoder::new(bytes);
    let s = dec.string(what)?;
    dec.finish(what)?;
    Ok(s)
}

/// The site's mirror uuid if it has one yet (read-only: for status and other tools that must
/// not change a site).
pub fn existing_mirror_uuid(store: &dyn ObjectStore) -> Result<Option<String>> {
    store
        .omap_get_one(MIRRORING_OID, KEY_UUID)?
        .map(|v| decode_string(v, "mirror_uuid"))
        .transpose()
}

/// The site's mirror uuid, generating and storing it on first use (atomically: concurrent
/// first callers agree on one value).
pub fn mirror_uuid(store: &dyn ObjectStore) -> Result<String> {
    if let Some(uuid) = existing_mirror_uuid(store)? {
        return Ok(uuid);
    }
    let mut batch = OmapBatch::new();
    batch
        .assert_absent(KEY_UUID)
        .set(KEY_UUID, encode_string(&ids::random_uuid()));
    match store.omap_apply(MIRRORING_OID, &batch) {
        Ok(()) => {}
        Err(e) if e.is_guard_failed() => {}
        Err(e) => return Err(e.into()),
    }
    match store.omap_get_one(MIRRORING_OID, KEY_UUID)? {
        Some(v) => decode_string(v, "mirror_uuid"),
        None => Err(ReplayError::Invalid("mirror uuid vanished".into())),
    }
}

/// The site's mirror mode ([`MirrorMode::Disabled`] if never set).
pub fn mirror_mode(store: &dyn ObjectStore) -> Result<MirrorMode> {
    match store.omap_get_one(MIRRORING_OID, KEY_MODE)? {
        None => Ok(MirrorMode::Disabled),
        Some(v) => {
            let raw: [u8; 4] = v
                .as_ref()
                .try_into()
                .map_err(|_| ReplayError::Invalid("mirror_mode is not 4 bytes".into()))?;
            MirrorMode::from_u32(u32::from_le_bytes(raw))
        }
    }
}

/// Stores the mirror mode (the caller handles enabling images for pool mode).
pub fn set_mirror_mode_raw(store: &dyn ObjectStore, mode: MirrorMode) -> Result<()> {
    let mut batch = OmapBatch::new();
    batch.set(
        KEY_MODE,
        Bytes::copy_from_slice(&mode.to_u32().to_le_bytes()),
    );
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(())
}

/// Adds (or renames) a peer: `peer_uuid` is the peer site's mirror uuid.
pub fn add_peer(store: &dyn ObjectStore, peer_uuid: &str, description: &str) -> Result<()> {
    let mut batch = OmapBatch::new();
    batch.set(
        format!("{PEER_PREFIX}{peer_uuid}"),
        encode_string(description),
    );
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(())
}

/// Removes a peer (no error if absent).
pub fn remove_peer(store: &dyn ObjectStore, peer_uuid: &str) -> Result<()> {
    let mut batch = OmapBatch::new();
    batch.remove(format!("{PEER_PREFIX}{peer_uuid}"));
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(())
}

/// Registered peers: mirror uuid → description.
pub fn peers(store: &dyn ObjectStore) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in list_all(store, PEER_PREFIX)? {
        let uuid = k.get(PEER_PREFIX.len()..).unwrap_or_default().to_owned();
        out.insert(uuid, decode_string(v, "peer")?);
    }
    Ok(out)
}

/// The mirroring record of an image id, if any.
pub fn image_record(store: &dyn ObjectStore, image_id: &str) -> Result<Option<MirrorImage>> {
    store
        .omap_get_one(MIRRORING_OID, &format!("{IMAGE_PREFIX}{image_id}"))?
        .map(MirrorImage::decode)
        .transpose()
}

/// Every mirrored image: image id → record.
pub fn image_records(store: &dyn ObjectStore) -> Result<BTreeMap<String, MirrorImage>> {
    let mut out = BTreeMap::new();
    for (k, v) in list_all(store, IMAGE_PREFIX)? {
        let id = k.get(IMAGE_PREFIX.len()..).unwrap_or_default().to_owned();
        out.insert(id, MirrorImage::decode(v)?);
    }
    Ok(out)
}

/// The local image id carrying `global_id`, if any.
pub fn image_id_by_global(store: &dyn ObjectStore, global_id: &str) -> Result<Option<String>> {
    store
        .omap_get_one(MIRRORING_OID, &format!("{GLOBAL_PREFIX}{global_id}"))?
        .map(|v| decode_string(v, "global image"))
        .transpose()
}

/// Enables mirroring of `image_id` under `global_id` (idempotent; keeps an existing global id).
pub fn enable_image(store: &dyn ObjectStore, image_id: &str, global_id: &str) -> Result<String> {
    if let Some(rec) = image_record(store, image_id)? {
        if rec.state == MirrorImageState::Enabled {
            return Ok(rec.global_id);
        }
    }
    let rec = MirrorImage {
        global_id: global_id.to_owned(),
        state: MirrorImageState::Enabled,
    };
    let mut batch = OmapBatch::new();
    batch
        .set(format!("{IMAGE_PREFIX}{image_id}"), rec.encode())
        .set(
            format!("{GLOBAL_PREFIX}{global_id}"),
            encode_string(image_id),
        );
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(global_id.to_owned())
}

/// Disables mirroring of `image_id` (no error if it was not mirrored).
pub fn disable_image(store: &dyn ObjectStore, image_id: &str) -> Result<()> {
    let Some(rec) = image_record(store, image_id)? else {
        return Ok(());
    };
    let mut batch = OmapBatch::new();
    batch
        .remove(format!("{IMAGE_PREFIX}{image_id}"))
        .remove(format!("{GLOBAL_PREFIX}{}", rec.global_id))
        .remove(format!("{PROMOTION_PREFIX}{image_id}"));
    crate::sync_mark::remove_in(&mut batch, image_id);
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(())
}

/// Remembers the tag pair of an orderly promotion of `image_id` (the `<orphan>` tag it was
/// promoted from and the promotion tag). Tag expiry removes both from the journal once the
/// image's own commits move on; a peer that was demoted before that promotion still needs them
/// to prove its history links (see [`crate::tag_chain`]).
pub fn save_promotion(
    store: &dyn ObjectStore,
    image_id: &str,
    demoted: (u64, &TagData),
    promoted: (u64, &TagData),
) -> Result<()> {
    let mut enc = Encoder::new();
    enc.envelope(1, 1, |e| {
        e.u64(demoted.0);
        e.blob(&demoted.1.to_bytes());
        e.u64(promoted.0);
        e.blob(&promoted.1.to_bytes());
    });
    let mut batch = OmapBatch::new();
    batch.set(format!("{PROMOTION_PREFIX}{image_id}"), enc.finish());
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(())
}

/// The tag pair saved by [`save_promotion`], if any.
pub fn promotion(store: &dyn ObjectStore, image_id: &str) -> Result<Option<[(u64, TagData); 2]>> {
    let Some(raw) = store.omap_get_one(MIRRORING_OID, &format!("{PROMOTION_PREFIX}{image_id}"))?
    else {
        return Ok(None);
    };
    let mut dec = Decoder::new(raw);
    let pair = dec.envelope("promotion", 1, |d, _| {
        let t0 = d.u64("demoted tid")?;
        let d0 = TagData::from_bytes(d.blob("demoted tag")?)?;
        let t1 = d.u64("promoted tid")?;
        let d1 = TagData::from_bytes(d.blob("promoted tag")?)?;
        Ok([(t0, d0), (t1, d1)])
    })?;
    Ok(Some(pair))
}

/// Every omap entry of `rbd_mirroring` under `prefix`, paging through the whole list.
fn list_all(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<(String, Bytes)>> {
    let mut out: Vec<(String, Bytes)> = Vec::new();
    loop {
        let after = out.last().map(|(k, _)| k.clone()).unwrap_or_default();
        let page = store.omap_list(MIRRORING_OID, &after, prefix, 256)?;
        let done = page.len() < 256;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use object_store_trait::MemStore;

    use super::*;

    #[test]
    fn uuid_is_generated_once_and_records_round_trip() {
        let store = MemStore::new();
        let u = mirror_uuid(&store).unwrap();
        assert_eq!(mirror_uuid(&store).unwrap(), u);
        assert_eq!(mirror_mode(&store).unwrap(), MirrorMode::Disabled);
        set_mirror_mode_raw(&store, MirrorMode::Pool).unwrap();
        assert_eq!(mirror_mode(&store).unwrap(), MirrorMode::Pool);
        add_peer(&store, "peer-uuid", "site-b").unwrap();
        assert_eq!(peers(&store).unwrap().get("peer-uuid").unwrap(), "site-b");
        remove_peer(&store, "peer-uuid").unwrap();
        assert!(peers(&store).unwrap().is_empty());
        assert_eq!(enable_image(&store, "abc", "g1").unwrap(), "g1");
        assert_eq!(enable_image(&store, "abc", "g2").unwrap(), "g1");
        assert_eq!(image_id_by_global(&store, "g1").unwrap().unwrap(), "abc");
        assert_eq!(image_records(&store).unwrap().len(), 1);
        disable_image(&store, "abc").unwrap();
        assert!(image_record(&store, "abc").unwrap().is_none());
        assert!(image_id_by_global(&store, "g1").unwrap().is_none());
    }
}
