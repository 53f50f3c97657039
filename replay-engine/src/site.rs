//! A *site*: one object store plus the pool id its journal object names embed, holding images.
//!
//! Objects a site keeps besides the images' own (see `docs/mirroring.md`):
//!
//! | object | content |
//! |---|---|
//! | `rbd_directory` | omap `name_<name>` → string(image id), `id_<image id>` → string(name) |
//! | `rbd_header.<id>` | the [`ObjectImage`] metadata (name, size, features, snapshots) |
//! | `rbd_data.<id>.<n>` | the image data (4 MiB objects) |
//! | `journal.<id>`, `journal_data.<pool>.<id>.<n>` | the image journal, when journaling is on |
//! | `rbd_mirroring` | mirror mode, the site's mirror uuid, peers, per-image records ([`crate::site_mirror`]) |
//!
//! An image is journaled iff its features carry [`FEATURE_JOURNALING`] (with
//! [`FEATURE_EXCLUSIVE_LOCK`], as librbd requires); the journal id is the image id.

use std::sync::Arc;

use journal_client::image::{BlockImage, ObjectImage};
use journal_client::{JournalSettings, JournaledImage};
use journal_core::header::JournalHeader;
use object_store_trait::{ObjectStore, OmapBatch};

use crate::error::{ReplayError, Result};
use crate::image_journal::{self, IMAGE_CLIENT_ID};
use crate::site_mirror::{self, decode_string, encode_string, MirrorImage, MirrorMode};
use crate::{ids, tag_chain};

/// Name of the image directory object.
pub const DIRECTORY_OID: &str = "rbd_directory";
/// librbd's exclusive-lock feature bit.
pub const FEATURE_EXCLUSIVE_LOCK: u64 = 4;
/// librbd's journaling feature bit.
pub const FEATURE_JOURNALING: u64 = 64;

/// Journal shape for a new journaled image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalShape {
    /// log2 of the journal data object size, 12..=26. Default 24 (librbd's).
    pub order: u8,
    /// Splay width. Default 4.
    pub splay_width: u8,
}

impl Default for JournalShape {
    fn default() -> Self {
        JournalShape {
            order: journal_core::layout::DEFAULT_ORDER,
            splay_width: journal_core::layout::DEFAULT_SPLAY_WIDTH,
        }
    }
}

/// What the directory and header say about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image name.
    pub name: String,
    /// Image id (also the journal id).
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Feature bits.
    pub features: u64,
}

impl ImageInfo {
    /// Whether the image has a journal.
    pub fn journaled(&self) -> bool {
        self.features & FEATURE_JOURNALING != 0
    }
}

/// A site: an object store and the pool id used in journal object names. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Site {
    store: Arc<dyn ObjectStore>,
    pool_id: i64,
}

impl Site {
    /// Opens a site over `store` (nothing is written until something is created).
    pub fn open(store: Arc<dyn ObjectStore>, pool_id: i64) -> Site {
        Site { store, pool_id }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The pool id embedded in journal data object names.
    pub fn pool_id(&self) -> i64 {
        self.pool_id
    }

    /// This site's mirror uuid (generated on first use).
    pub fn mirror_uuid(&self) -> Result<String> {
        site_mirror::mirror_uuid(self.store.as_ref())
    }

    /// This site's mirror uuid if it has one yet (never creates one).
    pub fn existing_mirror_uuid(&self) -> Result<Option<String>> {
        site_mirror::existing_mirror_uuid(self.store.as_ref())
    }

    /// The mirror mode.
    pub fn mirror_mode(&self) -> Result<MirrorMode> {
        site_mirror::mirror_mode(self.store.as_ref())
    }

    /// Sets the mirror mode. Switching to [`MirrorMode::Pool`] enables mirroring of every
    /// journaled primary image; switching to [`MirrorMode::Disabled`] disables all.
    pub fn set_mirror_mode(&self, mode: MirrorMode) -> Result<()> {
        site_mirror::set_mirror_mode_raw(self.store.as_ref(), mode)?;
        match mode {
            MirrorMode::Pool => {
                for info in self.list_images()? {
                    if info.journaled() && self.is_primary(&info.name)? {
                        self.mirror_enable(&info.name)?;
                    }
                }
            }
            MirrorMode::Disabled => {
                for id in site_mirror::image_records(self.store.as_ref())?.keys() {
                    site_mirror::disable_image(self.store.as_ref(), id)?;
                }
            }
            MirrorMode::Image => {}
        }
        Ok(())
    }

    /// Records a peer site (by its mirror uuid).
    pub fn add_peer(&self, peer_uuid: &str, description: &str) -> Result<()> {
        site_mirror::add_peer(self.store.as_ref(), peer_uuid, description)
    }

    /// Enables mirroring of a journaled image; returns its global id.
    pub fn mirror_enable(&self, name: &str) -> Result<String> {
        let info = self.image_info(name)?;
        if !info.journaled() {
            return Err(ReplayError::NotJournaled { name: name.into() });
        }
        site_mirror::enable_image(self.store.as_ref(), &info.id, &ids::random_uuid())
    }

    /// Disables mirroring of an image.
    pub fn mirror_disable(&self, name: &str) -> Result<()> {
        let info = self.image_info(name)?;
        site_mirror::disable_image(self.store.as_ref(), &info.id)
    }

    /// The mirroring record of an image, if mirrored.
    pub fn mirror_image(&self, name: &str) -> Result<Option<MirrorImage>> {
        let info = self.image_info(name)?;
        site_mirror::image_record(self.store.as_ref(), &info.id)
    }

    /// Creates a zero-filled image. With `journal`, the image gets the journaling feature and a
    /// journal whose first tag is owned by `""` (a primary image); in pool mirror mode it is
    /// mirrored at once.
    pub fn create_image(&self, name: &str, size: u64, journal: Option<JournalShape>) -> Result<()> {
        let id = self.create_image_with(name, size, journal, "")?;
        if journal.is_some() && self.mirror_mode()? == MirrorMode::Pool {
            site_mirror::enable_image(self.store.as_ref(), &id, &ids::random_uuid())?;
        }
        Ok(())
    }

    /// Creates an image whose journal's first tag is owned by `owner_uuid` (`""` = primary, a
    /// remote mirror uuid = a replica following that site). Returns the image id.
    pub(crate) fn create_image_with(
        &self,
        name: &str,
        size: u64,
        journal: Option<JournalShape>,
        owner_uuid: &str,
    ) -> Result<String> {
        if name.is_empty() || name.contains('/') {
            return Err(ReplayError::Invalid(format!("bad image name {name:?}")));
        }
        let id = ids::new_image_id();
        let mut batch = OmapBatch::new();
        batch
            .assert_absent(format!("name_{name}"))
            .set(format!("name_{name}"), encode_string(&id))
            .set(format!("id_{id}"), encode_string(name));
        match self.store.omap_apply(DIRECTORY_OID, &batch) {
            Err(e) if e.is_guard_failed() => {
                return Err(ReplayError::ImageExists { name: name.into() })
            }
            other => other?,
        }
        // The journaling feature goes into the image's first metadata write: a crash between
        // the steps below then leaves a journaled image without (a complete) journal, which
        // bootstrap recognises as a creation cut short, never what looks like a plain image.
        let features = match journal {
            Some(_) => FEATURE_EXCLUSIVE_LOCK | FEATURE_JOURNALING,
            None => 0,
        };
        ObjectImage::create_with_features(Arc::clone(&self.store), &id, name, size, features)?;
        if let Some(shape) = journal {
            image_journal::create_journal(
                &self.journal_header(&id),
                shape.order,
                shape.splay_width,
                owner_uuid,
            )?;
        }
        Ok(id)
    }

    /// Every image, by name.
    pub fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.store.omap_list(DIRECTORY_OID, &after, "name_", 256)?;
            let done = page.len() < 256;
            for (key, value) in page {
                let id = decode_string(value, "directory id")?;
                after = key;
                match self.info_by_id(&id) {
                    Ok(info) => out.push(info),
                    // Half-created or half-removed: skip.
                    Err(ReplayError::ImageNotFound { .. }) | Err(ReplayError::Image(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if done {
                return Ok(out);
            }
        }
    }

    /// The id of image `name`.
    pub fn image_id(&self, name: &str) -> Result<String> {
        let mut map = self
            .store
            .omap_get(DIRECTORY_OID, &[format!("name_{name}").as_str()])?;
        match map.pop_first() {
            Some((_, v)) => decode_string(v, "directory id"),
            None => Err(ReplayError::ImageNotFound { name: name.into() }),
        }
    }

    /// Directory and header information of image `name`.
    pub fn image_info(&self, name: &str) -> Result<ImageInfo> {
        self.info_by_id(&self.image_id(name)?)
    }

    /// Header information of the image with id `id`.
    pub fn image_info_by_id(&self, id: &str) -> Result<ImageInfo> {
        self.info_by_id(id)
    }

    fn info_by_id(&self, id: &str) -> Result<ImageInfo> {
        let image = ObjectImage::open(Arc::clone(&self.store), id)?;
        let meta = image.meta();
        Ok(ImageInfo {
            name: meta.name,
            id: id.to_owned(),
            size: meta.size,
            features: meta.features,
        })
    }

    /// Opens image `name`'s data as a plain block image (no journaling: reads, and writes that
    /// bypass the journal, as replay does).
    pub fn open_image(&self, name: &str) -> Result<Arc<ObjectImage>> {
        let id = self.image_id(name)?;
        self.open_image_by_id(&id)
    }

    /// Opens an image by id (see [`Site::open_image`]).
    pub fn open_image_by_id(&self, id: &str) -> Result<Arc<ObjectImage>> {
        Ok(Arc::new(ObjectImage::open(Arc::clone(&self.store), id)?))
    }

    /// Opens image `name` for journaled writing through journal-client's [`JournaledImage`]
    /// (the image must be journaled and primary: a replica refuses local writers). The journal
    /// object names use this site's pool id whatever `settings.name_pool_id` says.
    pub fn open_journaled(&self, name: &str, settings: JournalSettings) -> Result<JournaledImage> {
        let info = self.image_info(name)?;
        if !info.journaled() {
            return Err(ReplayError::NotJournaled { name: name.into() });
        }
        let image: Arc<dyn BlockImage> = self.open_image_by_id(&info.id)?;
        let settings = JournalSettings {
            name_pool_id: self.pool_id,
            ..settings
        };
        Ok(JournaledImage::open(
            Arc::clone(&self.store),
            &info.id,
            image,
            settings,
        )?)
    }

    /// The journal header handle of image id `id` (journal id = image id).
    pub fn journal_header(&self, id: &str) -> JournalHeader {
        JournalHeader::new(Arc::clone(&self.store), self.pool_id, id)
    }

    /// Whether image `name` is primary: not journaled, or its journal's current tag is owned by
    /// `""`.
    pub fn is_primary(&self, name: &str) -> Result<bool> {
        let info = self.image_info(name)?;
        if !info.journaled() {
            return Ok(true);
        }
        let (_, tag) = image_journal::current_tag(&self.journal_header(&info.id))?;
        Ok(tag.is_local_primary())
    }

    /// Demotes primary image `name` (§12.5); see [`crate::role`]. Returns the new tag tid.
    pub fn demote(&self, name: &str) -> Result<u64> {
        crate::role::change_role(self, name, crate::role::RoleChange::Demote)
    }

    /// Promotes image `name`: orderly if it is demoted, or `force`d from any non-primary state
    /// (the other side must then be demoted and resynced). Returns the new tag tid.
    pub fn promote(&self, name: &str, force: bool) -> Result<u64> {
        let change = if force {
            crate::role::RoleChange::ForcePromote
        } else {
            crate::role::RoleChange::Promote
        };
        crate::role::change_role(self, name, change)
    }

    /// Asks the mirror agent to resync this (non-primary) image: sets `resync_requested` in its
    /// journal's image client (§12.5).
    pub fn request_resync(&self, name: &str) -> Result<()> {
        let info = self.image_info(name)?;
        let header = self.journal_header(&info.id);
        let (_, tag) = image_journal::current_tag(&header)?;
        if tag.is_local_primary() {
            return Err(ReplayError::WrongRole {
                name: name.into(),
                detail: "cannot resync a primary image".into(),
            });
        }
        image_journal::set_resync_requested(&header, true)
    }

    /// Removes image `name`: its mirroring record, journal, data, header and directory entry.
    pub fn remove_image(&self, name: &str) -> Result<()> {
        let id = self.image_id(name)?;
        self.remove_image_by_id(name, &id)
    }

    pub(crate) fn remove_image_by_id(&self, name: &str, id: &str) -> Result<()> {
        site_mirror::disable_image(self.store.as_ref(), id)?;
        let header = self.journal_header(id);
        if image_journal::journal_exists(&header)? {
            header.remove_journal(true, IMAGE_CLIENT_ID)?;
        }
        for oid in self.store.list(&format!("rbd_data.{id}."))? {
            match self.store.remove(&oid) {
                Err(e) if !e.is_not_found() => return Err(e.into()),
                _ => {}
            }
        }
        match self.store.remove(&format!("rbd_header.{id}")) {
            Err(e) if !e.is_not_found() => return Err(e.into()),
            _ => {}
        }
        let mut batch = OmapBatch::new();
        batch
            .remove(format!("name_{name}"))
            .remove(format!("id_{id}"));
        self.store.omap_apply(DIRECTORY_OID, &batch)?;
        Ok(())
    }

    /// Maps a remote tag to this site's convention (helper for tools; see [`tag_chain`]).
    pub fn map_remote_tag(
        &self,
        remote: &journal_core::tag_data::TagData,
        remote_uuid: &str,
    ) -> Result<journal_core::tag_data::TagData> {
        Ok(tag_chain::map_remote_tag(
            remote,
            &self.mirror_uuid()?,
            remote_uuid,
        ))
    }
}
