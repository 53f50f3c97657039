//! Opening a journal for writing: create it if missing, take ownership (new tag + fences),
//! replay what the image has not applied yet, and pick the set to append to.
//!
//! Order of steps (librbd §12.1, with the fence moved ahead of replay):
//! 1. If the header is missing: `create`, allocate a tag in a new class with empty `TagData`,
//!    register the image client `""` with `ImageClientMeta{tag_class}`.
//! 2. Read the image client; refuse if the newest tag of its class is not local-primary.
//! 3. Allocate this writer's tag (`TagData{"" , predecessor = the image client's newest
//!    position}`); from now on every header mutation is fenced on it.
//! 4. Claim every data object from `minimum_set` through `active_set` with the writer fence, so
//!    an older writer can no longer append anywhere.
//! 5. Replay every entry after the image client's commit position into the image (the shared
//!    [`EventApplier`]), flush the image, write the new commit position.
//! 6. If any object of the active set holds bytes (possibly a torn tail of the previous writer's
//!    last append), move to the next set, so new entries never follow a torn entry in one object.

use std::sync::Arc;

use journal_core::client_data::{ClientData, ClientMeta};
use journal_core::commit::{CommitTid, CommitTracker};
use journal_core::encoding::{Decode, Encode};
use journal_core::header::{HeaderError, JournalHeader, ObjectSetPosition, TAG_CLASS_NEW};
use journal_core::layout::data_oid;
use journal_core::player::{JournalInfo, Player, PlayerEvent, PlayerOptions};
use journal_core::tag_data::{TagData, TagPredecessor};
use journal_core::{EventEntry, Layout};
use object_store_trait::ObjectStore;

use super::IMAGE_CLIENT_ID;
use crate::apply::{ApplyOptions, EventApplier};
use crate::error::{JournalClientError, RecorderError, Result};
use crate::fence::{claim_object, ClaimError};
use crate::image::BlockImage;
use crate::settings::JournalSettings;

/// What opening produced.
pub(crate) struct Opened {
    pub(crate) header: JournalHeader,
    pub(crate) layout: Layout,
    pub(crate) tag_tid: u64,
    pub(crate) tracker: CommitTracker,
    pub(crate) position: ObjectSetPosition,
    pub(crate) active_set: u64,
    pub(crate) replayed: u64,
}

fn create_if_missing(header: &JournalHeader, settings: &JournalSettings) -> Result<()> {
    match header.get_immutable_metadata() {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            match header.create(settings.order, settings.splay_width, settings.pool_id) {
                // Someone else created it concurrently: use theirs.
                Ok(()) => {}
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    }
    // A creation interrupted before the image client was registered is completed here.
    match header.get_client(IMAGE_CLIENT_ID) {
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let tag = header.allocate_tag(TAG_CLASS_NEW, TagData::default().to_bytes())?;
    match header.client_register(IMAGE_CLIENT_ID, ClientData::image(tag.tag_class).to_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.is_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn claim_sets(
    store: &dyn ObjectStore,
    settings: &JournalSettings,
    journal_id: &str,
    layout: Layout,
    sets: std::ops::RangeInclusive<u64>,
    tag: u64,
) -> Result<()> {
    for set in sets {
        for object in layout.objects_in_set(set) {
            let oid = data_oid(settings.name_pool_id, journal_id, object);
            claim_object(store, &oid, tag).map_err(|e| match e {
                ClaimError::Fenced { .. } => RecorderError::Fenced {
                    tag_tid: tag,
                    detail: e.to_string(),
                },
                ClaimError::Store(e) => RecorderError::store("claim data object", &e),
            })?;
        }
    }
    Ok(())
}

/// Runs steps 1–6 of the module docs.
pub(crate) fn open(
    store: &Arc<dyn ObjectStore>,
    journal_id: &str,
    image: &Arc<dyn BlockImage>,
    settings: &JournalSettings,
) -> Result<Opened> {
    let header = JournalHeader::new(Arc::clone(store), settings.name_pool_id, journal_id);
    create_if_missing(&header, settings)?;
    let layout = header
        .get_immutable_metadata()?
        .layout()
        .map_err(|e| JournalClientError::ImageClient(format!("bad journal layout: {e}")))?;

    let client = header.get_client(IMAGE_CLIENT_ID)?;
    let tag_class = match ClientData::from_bytes(client.data.clone())?.meta {
        ClientMeta::Image(meta) => meta.tag_class,
        other => {
            return Err(JournalClientError::ImageClient(format!(
                "not an image client (meta type {})",
                other.meta_type()
            )))
        }
    };
    if let Some(newest) = header
        .tag_list_all(IMAGE_CLIENT_ID, Some(tag_class))?
        .last()
    {
        let data = TagData::from_bytes(newest.data.clone())?;
        if !data.is_local_primary() {
            return Err(JournalClientError::NotPrimary {
                tag_tid: newest.tid,
                mirror_uuid: data.mirror_uuid,
            });
        }
    }

    let position = client.commit_position.clone();
    let predecessor = match position.first() {
        Some(p) => TagPredecessor {
            mirror_uuid: String::new(),
            commit_valid: true,
            tag_tid: p.tag_tid,
            entry_tid: p.entry_tid,
        },
        None => TagPredecessor::default(),
    };
    let tag_data = TagData {
        mirror_uuid: String::new(),
        predecessor,
    };
    let tag = header.allocate_tag(tag_class, tag_data.to_bytes())?;
    let header = header.with_fence(tag.tid);

    let meta = header.get_mutable_metadata()?;
    claim_sets(
        store.as_ref(),
        settings,
        journal_id,
        layout,
        meta.minimum_set..=meta.active_set,
        tag.tid,
    )?;

    let (tracker, replayed) = replay(
        store,
        journal_id,
        image,
        settings,
        layout,
        meta.active_set,
        &position,
    )?;
    let new_position = tracker.position();
    if new_position != position {
        header.client_commit(IMAGE_CLIENT_ID, &new_position)?;
    }

    let mut active_set = meta.active_set;
    let dirty = layout.objects_in_set(active_set).any(|n| {
        store
            .stat(&data_oid(settings.name_pool_id, journal_id, n))
            .is_ok_and(|s| s.size > 0)
    });
    if dirty {
        active_set += 1;
        match header.set_active_set(active_set) {
            Ok(()) | Err(HeaderError::Stale { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Opened {
        header,
        layout,
        tag_tid: tag.tid,
        tracker,
        position: new_position,
        active_set,
        replayed,
    })
}

/// Replays every entry after `position` into `image`; returns the tracker holding the new
/// position and the number of entries replayed.
fn replay(
    store: &Arc<dyn ObjectStore>,
    journal_id: &str,
    image: &Arc<dyn BlockImage>,
    settings: &JournalSettings,
    layout: Layout,
    active_set: u64,
    position: &ObjectSetPosition,
) -> Result<(CommitTracker, u64)> {
    let info = JournalInfo {
        journal_id: journal_id.to_owned(),
        pool_id_for_names: settings.name_pool_id,
        layout,
        active_set,
    };
    let mut player = Player::new(Arc::clone(store), info, position, PlayerOptions::default());
    let mut tracker = CommitTracker::new(layout.splay_width, position.clone());
    let mut applier: EventApplier<CommitTid> =
        EventApplier::new(Arc::clone(image), ApplyOptions::default());
    let mut replayed = 0u64;
    let commit = |tracker: &mut CommitTracker, done: Vec<crate::apply::Applied<CommitTid>>| {
        for a in done {
            // Each replayed tid is committed once.
            let _ = tracker.committed(a.id);
        }
    };
    while let PlayerEvent::Entry(re) = player.next()? {
        let tid = tracker.allocate(re.object_number, re.entry.tag_tid, re.entry.entry_tid);
        let event = EventEntry::from_bytes(re.entry.data.clone())?;
        let done = applier.apply(tid, &event.event)?;
        commit(&mut tracker, done);
        replayed += 1;
    }
    let done = applier.finish(false)?;
    commit(&mut tracker, done);
    image.flush()?;
    Ok((tracker, replayed))
}
