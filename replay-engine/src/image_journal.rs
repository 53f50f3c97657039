//! The RBD conventions on top of a journal header: creating an image journal (§9.2), the image
//! client's metadata (tag class, resync flag), the image's tag chain and current tag (§11.4).

use bytes::Bytes;
use journal_core::client_data::{ClientData, ClientMeta, ImageClientMeta};
use journal_core::encoding::{Decode, Encode};
use journal_core::header::{
    Client, JournalHeader, ObjectSetPosition, Tag, TAG_CLASS_NEW, TAG_KEY_PREFIX,
};
use journal_core::tag_data::TagData;

use crate::error::{ReplayError, Result};

/// The image's own client id on its journal.
pub const IMAGE_CLIENT_ID: &str = "";

/// Creates an image journal the way librbd does: the header (`order`, `splay_width`, data in the
/// header's pool), a first tag in a new class owned by `mirror_uuid` (`""` for a primary image,
/// the remote primary's mirror uuid for a replica), and the image client `""` registered with
/// that class. Returns the tag class.
pub fn create_journal(
    header: &JournalHeader,
    order: u8,
    splay_width: u8,
    mirror_uuid: &str,
) -> Result<u64> {
    header.create(order, splay_width, -1)?;
    let data = TagData {
        mirror_uuid: mirror_uuid.to_owned(),
        ..TagData::default()
    };
    let tag = header.allocate_tag(TAG_CLASS_NEW, data.to_bytes())?;
    let client = ClientData::image(tag.tag_class);
    header.client_register(IMAGE_CLIENT_ID, client.to_bytes())?;
    Ok(tag.tag_class)
}

/// Decodes a client's data blob as RBD [`ClientData`].
pub fn client_data(client: &Client) -> Result<ClientData> {
    Ok(ClientData::from_bytes(client.data.clone())?)
}

/// The image client's metadata (tag class, resync flag).
pub fn image_client_meta(header: &JournalHeader) -> Result<ImageClientMeta> {
    let client = header.get_client(IMAGE_CLIENT_ID)?;
    match client_data(&client)?.meta {
        ClientMeta::Image(meta) => Ok(meta),
        _ => Err(ReplayError::Invalid(format!(
            "journal {}: image client has no image metadata",
            header.journal_id()
        ))),
    }
}

/// The image client's commit position (what the image itself has applied).
pub fn image_commit_position(header: &JournalHeader) -> Result<ObjectSetPosition> {
    Ok(header.get_client(IMAGE_CLIENT_ID)?.commit_position)
}

/// Sets or clears `resync_requested` in the image client's data (§12.5).
pub fn set_resync_requested(header: &JournalHeader, requested: bool) -> Result<()> {
    let mut meta = image_client_meta(header)?;
    meta.resync_requested = requested;
    let data = ClientData {
        meta: ClientMeta::Image(meta),
    };
    header.client_update_data(IMAGE_CLIENT_ID, data.to_bytes())?;
    Ok(())
}

/// The image's tags (its class), decoded, in tid order: every stored tag, not only those visible
/// to one client (tag expiry already removed the ones no connected client needs). The link
/// rule of [`crate::tag_chain`] needs the older ones (a copied demotion before a promotion).
pub fn image_tags(header: &JournalHeader) -> Result<Vec<(u64, TagData)>> {
    let class = image_client_meta(header)?.tag_class;
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = header
            .store()
            .omap_list(header.oid(), &after, TAG_KEY_PREFIX, 256)?;
        let done = page.len() < 256;
        for (key, value) in page {
            after = key;
            let tag = Tag::from_bytes(value)?;
            if tag.tag_class == class {
                out.push((tag.tid, TagData::from_bytes(tag.data)?));
            }
        }
        if done {
            return Ok(out);
        }
    }
}

/// The image's current tag: the newest of its class.
pub fn current_tag(header: &JournalHeader) -> Result<(u64, TagData)> {
    image_tags(header)?
        .pop()
        .ok_or_else(|| ReplayError::Invalid(format!("journal {} has no tags", header.journal_id())))
}

/// Allocates a tag in the image's class with `data`; returns its tid.
pub fn allocate_image_tag(header: &JournalHeader, data: &TagData) -> Result<u64> {
    let class = image_client_meta(header)?.tag_class;
    Ok(header.allocate_tag(class, data.to_bytes())?.tid)
}

/// Whether the journal header exists.
pub fn journal_exists(header: &JournalHeader) -> Result<bool> {
    match header.get_immutable_metadata() {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Encodes client data for a registration or update.
pub fn encode_client_data(data: &ClientData) -> Bytes {
    data.to_bytes()
}
