//! Bootstrap of one mirrored image (spec §13.1, with rbdj's sync-point rule): decide what the
//! image replayer must do before live replay, and do the one-off parts (create the replica,
//! register the mirror client, run or resume the image sync, resync on request).
//!
//! | situation | action |
//! |---|---|
//! | no local image with this global id | create the replica (same name, journal whose first tag is owned by the remote mirror uuid), register, full sync |
//! | local image has `resync_requested` (and is not primary) | delete it, then as above |
//! | tag chains: [`Link::Stopped`] / [`Link::SplitBrain`] | report, no replay |
//! | [`Link::Failback`] while the remote's promotion is still in progress (its image client not yet committed on the promotion tag) | wait (stopped, retried) |
//! | [`Link::Failback`] (local was demoted, remote promoted after it), our client on the remote still at the promotion marker | allocate a local tag following the remote, replay from the marker |
//! | [`Link::Failback`], otherwise | register anew, allocate a local tag following the remote, full sync |
//! | [`Link::Follow`], mirror client missing | register anew, full sync |
//! | [`Link::Follow`], client disconnected | full sync if `resync_after_disconnect`, else error |
//! | [`Link::Follow`], client `syncing` | resume the sync |
//! | [`Link::Follow`], client `replaying` | replay |
//!
//! An orderly promotion registers the peers' clients at its marker entry ([`crate::role`]), so
//! a failback normally replays just the new primary's entries after its promotion, as Ceph
//! does. A full sync is the fallback when that client was replaced or moved.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use journal_client::image::BlockImage;
use journal_core::client_data::MirrorPeerState;
use journal_core::header::{ClientState, JournalHeader};
use journal_core::tag_data::ORPHAN_MIRROR_UUID;
use parking_lot::Mutex;

use crate::error::{ReplayError, Result};
use crate::image_journal;
use crate::image_sync::{self, SyncEnd, SyncOptions};
use crate::site::{JournalShape, Site};
use crate::site_mirror;
use crate::snapshot_copy;
use crate::status::{ImageState, ImageStatus};
use crate::tag_chain::{self, Link};

/// One mirrored image as seen from the local site.
#[derive(Debug, Clone)]
pub struct ImageLink {
    /// The local site (where the replica lives).
    pub local: Site,
    /// The remote site (where the primary lives).
    pub remote: Site,
    /// Local site's mirror uuid.
    pub local_uuid: String,
    /// Remote site's mirror uuid.
    pub remote_uuid: String,
    /// Global image id.
    pub global_id: String,
    /// The remote image id.
    pub remote_id: String,
}

/// What bootstrap decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrapped {
    /// Replay the remote journal into local image `local_id`.
    Replay {
        /// The local image id.
        local_id: String,
    },
    /// Nothing to replay now; the reason.
    Stopped(String),
    /// Split-brain; the reason.
    SplitBrain(String),
    /// The stop flag was raised during a sync.
    Interrupted,
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct BootstrapOptions {
    /// Image sync settings.
    pub sync: SyncOptions,
    /// Resync automatically when the mirror client was disconnected (Ceph's
    /// `rbd_mirroring_resync_after_disconnect`, default false).
    pub resync_after_disconnect: bool,
}

impl ImageLink {
    /// The remote image's journal header.
    pub fn remote_header(&self) -> JournalHeader {
        self.remote.journal_header(&self.remote_id)
    }
}

/// Runs bootstrap for `link`. See the module docs.
pub fn bootstrap(
    link: &ImageLink,
    options: &BootstrapOptions,
    stop: &AtomicBool,
    status: &Arc<Mutex<ImageStatus>>,
) -> Result<Bootstrapped> {
    let remote_header = link.remote_header();
    let remote_info = link.remote.image_info_by_id(&link.remote_id)?;
    if !remote_info.journaled() {
        return Ok(Bootstrapped::Stopped(
            "remote image is not journaled".into(),
        ));
    }
    let mut remote_tags = image_journal::image_tags(&remote_header)?;
    // The remote's last orderly promotion, kept beside the journal because tag expiry drops
    // those tags: insert it (if expired) before the remote's current tag.
    if let Some(pair) = site_mirror::promotion(link.remote.store().as_ref(), &link.remote_id)? {
        let missing = pair
            .iter()
            .any(|(tid, _)| !remote_tags.iter().any(|(t, _)| t == tid));
        if missing && !remote_tags.is_empty() {
            let at = remote_tags.len() - 1;
            for (i, tag) in pair.into_iter().enumerate() {
                remote_tags.insert(at + i, tag);
            }
        }
    }
    let local_store = link.local.store().as_ref();
    let mut local_id = site_mirror::image_id_by_global(local_store, &link.global_id)?;

    if let Some(id) = &local_id {
        let header = link.local.journal_header(id);
        let meta = image_journal::image_client_meta(&header)?;
        let (_, current) = image_journal::current_tag(&header)?;
        if meta.resync_requested && !current.is_local_primary() {
            set_state(
                status,
                ImageState::Syncing,
                "resync requested: recreating replica",
            );
            link.local.remove_image_by_id(&remote_info.name, id)?;
            local_id = None;
        }
    }

    let Some(local_id) = local_id else {
        if remote_tags
            .last()
            .is_none_or(|(_, t)| !t.is_local_primary())
        {
            return Ok(Bootstrapped::Stopped(
                "remote image is not primary; no replica to create".into(),
            ));
        }
        set_state(status, ImageState::Syncing, "creating replica");
        let imm = remote_header.get_immutable_metadata()?;
        let shape = JournalShape {
            order: imm.order,
            splay_width: imm.splay_width,
        };
        let create = || {
            link.local.create_image_with(
                &remote_info.name,
                remote_info.size,
                Some(shape),
                &link.remote_uuid,
            )
        };
        let id = match create() {
            Ok(id) => id,
            Err(ReplayError::ImageExists { name }) => {
                if !remove_half_created(link, &name)? {
                    return Ok(Bootstrapped::Stopped(format!(
                        "a local image named {name:?} exists and is not this mirrored image"
                    )));
                }
                create()?
            }
            Err(e) => return Err(e),
        };
        site_mirror::enable_image(local_store, &id, &link.global_id)?;
        image_sync::register_for_sync(&remote_header, &link.local_uuid, &id)?;
        return sync_then_replay(link, &remote_header, id, options, stop, status);
    };

    let local_header = link.local.journal_header(&local_id);
    let (_, local_current) = image_journal::current_tag(&local_header)?;
    match tag_chain::check_link(
        &local_current,
        &remote_tags,
        &link.local_uuid,
        &link.remote_uuid,
    ) {
        Link::Stopped(why) => Ok(Bootstrapped::Stopped(why)),
        Link::SplitBrain(why) => Ok(Bootstrapped::SplitBrain(why)),
        Link::Failback => {
            if promotion_in_progress(&remote_header, &remote_tags)? {
                return Ok(Bootstrapped::Stopped(
                    "remote promotion in progress: waiting for it to complete".into(),
                ));
            }
            if failback_by_replay(link, &remote_header, &remote_tags, &local_header, &local_id)? {
                return Ok(Bootstrapped::Replay { local_id });
            }
            set_state(
                status,
                ImageState::Syncing,
                "failback: resyncing from the new primary",
            );
            // Register first: a crash before the tag below leaves the link at Failback, so
            // this path runs again; after the tag, the client is already in `syncing`.
            image_sync::register_for_sync(&remote_header, &link.local_uuid, &local_id)?;
            if let Some((_, remote_current)) = remote_tags.last() {
                let mapped =
                    tag_chain::map_remote_tag(remote_current, &link.local_uuid, &link.remote_uuid);
                image_journal::allocate_image_tag(&local_header, &mapped)?;
            }
            sync_then_replay(link, &remote_header, local_id, options, stop, status)
        }
        Link::Follow => {
            let client = match remote_header.get_client(&link.local_uuid) {
                Ok(c) => Some(c),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            let Some(client) = client else {
                image_sync::register_for_sync(&remote_header, &link.local_uuid, &local_id)?;
                return sync_then_replay(link, &remote_header, local_id, options, stop, status);
            };
            if client.state == ClientState::Disconnected {
                if !options.resync_after_disconnect {
                    return Err(ReplayError::Disconnected {
                        client_id: link.local_uuid.clone(),
                    });
                }
                image_sync::register_for_sync(&remote_header, &link.local_uuid, &local_id)?;
                return sync_then_replay(link, &remote_header, local_id, options, stop, status);
            }
            let meta = image_sync::peer_meta(&remote_header, &link.local_uuid)?;
            if meta.state == MirrorPeerState::Syncing {
                return sync_then_replay(link, &remote_header, local_id, options, stop, status);
            }
            Ok(Bootstrapped::Replay { local_id })
        }
    }
}

/// True while the remote's orderly promotion has not finished ([`crate::role`]): its promotion
/// tag exists, but the remote image client's commit has not reached it yet, the promotion's
/// last step. Until then the peers' clients may not be registered at the promotion marker, and
/// acting now would race the promotion (registering our own client for a sync under it). A
/// promotion cut short by a crash completes here once the new primary's first write commits.
fn promotion_in_progress(
    remote_header: &JournalHeader,
    remote_tags: &[(u64, journal_core::tag_data::TagData)],
) -> Result<bool> {
    let Some(promoted_tid) = remote_tags
        .iter()
        .rev()
        .find(|(_, t)| t.is_local_primary() && t.predecessor.mirror_uuid == ORPHAN_MIRROR_UUID)
        .map(|(tid, _)| *tid)
    else {
        return Ok(false);
    };
    let committed = image_journal::image_commit_position(remote_header)?;
    Ok(committed.first().is_none_or(|p| p.tag_tid < promoted_tid))
}

/// Failback without an image sync: the new primary's orderly promotion registered this site's
/// client at its promotion marker ([`crate::role`]). If the client is still exactly there (in
/// `replaying`, positioned on the promotion tag recorded for this image), follow the remote
/// from it: allocate the local tag and replay. Returns `false` when a sync is needed instead.
fn failback_by_replay(
    link: &ImageLink,
    remote_header: &JournalHeader,
    remote_tags: &[(u64, journal_core::tag_data::TagData)],
    local_header: &JournalHeader,
    local_id: &str,
) -> Result<bool> {
    let Some([_, (promoted_tid, _)]) =
        site_mirror::promotion(link.remote.store().as_ref(), &link.remote_id)?
    else {
        return Ok(false);
    };
    let client = match remote_header.get_client(&link.local_uuid) {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let at_marker = client.state == ClientState::Connected
        && client.commit_position.object_positions.len() == 1
        && client
            .commit_position
            .first()
            .is_some_and(|p| p.tag_tid == promoted_tid && p.entry_tid == 0);
    let mut meta = match image_sync::peer_meta(remote_header, &link.local_uuid) {
        Ok(m) => m,
        Err(ReplayError::Invalid(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    if !at_marker || meta.state != MirrorPeerState::Replaying || !meta.sync_points.is_empty() {
        return Ok(false);
    }
    meta.image_id = local_id.to_owned();
    image_sync::save_peer_meta(remote_header, &link.local_uuid, &meta)?;
    if let Some((_, remote_current)) = remote_tags.last() {
        let mapped = tag_chain::map_remote_tag(remote_current, &link.local_uuid, &link.remote_uuid);
        image_journal::allocate_image_tag(local_header, &mapped)?;
    }
    Ok(true)
}

/// A replica this agent started to create but did not finish (a crash before its mirroring
/// record was written) blocks the name: remove it if it has no mirroring record and either no
/// journal or a journal following the remote. Returns whether it was removed.
fn remove_half_created(link: &ImageLink, name: &str) -> Result<bool> {
    let id = match link.local.image_id(name) {
        Ok(id) => id,
        Err(ReplayError::ImageNotFound { .. }) => return Ok(true),
        Err(e) => return Err(e),
    };
    if site_mirror::image_record(link.local.store().as_ref(), &id)?.is_some() {
        return Ok(false);
    }
    let header = link.local.journal_header(&id);
    let ours = if image_journal::journal_exists(&header)? {
        match image_journal::current_tag(&header) {
            Ok((_, tag)) => tag.mirror_uuid == link.remote_uuid,
            // A journal without its first tag or image client: also half-created.
            Err(_) => true,
        }
    } else {
        // No journal: a directory entry without image metadata, or the journaling feature
        // without its journal, is a creation cut short. A plain image is the user's: keep it.
        link.local
            .image_info_by_id(&id)
            .map_or(true, |i| i.journaled())
    };
    if ours {
        link.local.remove_image_by_id(name, &id)?;
    }
    Ok(ours)
}

fn sync_then_replay(
    link: &ImageLink,
    remote_header: &JournalHeader,
    local_id: String,
    options: &BootstrapOptions,
    stop: &AtomicBool,
    status: &Arc<Mutex<ImageStatus>>,
) -> Result<Bootstrapped> {
    set_state(status, ImageState::Syncing, "image sync");
    // Durably mark the replica inconsistent before its first byte changes (sync_mark).
    crate::sync_mark::set(
        link.local.store().as_ref(),
        &local_id,
        crate::sync_mark::SyncMark::Copying,
    )?;
    let progress = image_sync::peer_meta(remote_header, &link.local_uuid)?;
    let fresh = progress
        .sync_points
        .first()
        .is_none_or(|p| p.object_number.is_none());
    if fresh {
        // Start from an empty head: stale replica bytes past the primary's size must not
        // survive (the metadata copy below sets the size without truncating).
        link.local.open_image_by_id(&local_id)?.resize(0)?;
    }
    snapshot_copy::copy_meta_and_snapshots(
        link.remote.store().as_ref(),
        &link.remote_id,
        link.local.store().as_ref(),
        &local_id,
    )?;
    let remote_image = link.remote.open_image_by_id(&link.remote_id)?;
    let local_image = link.local.open_image_by_id(&local_id)?;
    match image_sync::run_sync(
        remote_header,
        &link.local_uuid,
        remote_image.as_ref(),
        local_image.as_ref(),
        &link.local.journal_header(&local_id),
        options.sync,
        stop,
        status,
    )? {
        SyncEnd::Done => Ok(Bootstrapped::Replay { local_id }),
        SyncEnd::Stopped => Ok(Bootstrapped::Interrupted),
    }
}

fn set_state(status: &Arc<Mutex<ImageStatus>>, state: ImageState, description: &str) {
    let mut st = status.lock();
    st.state = state;
    st.description = description.to_owned();
}
