//! Full image sync: copies the primary image onto the replica when journal replay alone cannot
//! rebuild it (new replica, journal enabled late, mirror client disconnected, resync, failback).
//!
//! **Sync point.** Ceph takes a snapshot of the primary as the sync point. rbdj's images have no
//! crash-consistent snapshot that an outside agent could take under a running writer, so the
//! sync point is a *journal position* instead: the mirror client is (re-)registered right
//! before the copy starts, and registration gives it the oldest commit position of all clients
//! (§4.2), which is at or before the image client's position. Every entry after that position
//! is still in the journal (the client now holds back trimming), and every entry up to it is
//! already in the primary image's data (the image client commits an entry only after its image
//! write completed). Copying the data object by object while the primary keeps writing, then
//! replaying the journal from that position, therefore ends in the primary's state: each byte's
//! last write is either seen by the copy or replayed after it (writes, discards and write-same
//! are idempotent in order; a compare-and-write replayed over newer data may compare
//! differently — the same exposure librbd has when it re-applies a journal).
//!
//! **Progress** is kept in the client data (`MirrorPeerClientMeta`, state `syncing`, one sync
//! point whose `object_number` is the last chunk copied), saved every
//! [`SyncOptions::progress_every_chunks`] chunks after a replica flush, so a restarted agent
//! resumes after the last saved chunk. When the copy finishes the state becomes `replaying`
//! and the sync point is dropped.
//!
//! **Consistency.** The copy shows the primary at many moments, so replaying from the sync
//! point first applies older writes over newer copied data: until the replay passes the newest
//! entry the copy may hold, the replica is the primary's state at no point in time. The
//! replica carries a durable [`crate::sync_mark`] through that window (set by bootstrap before
//! the first byte changes, moved to "catching up to entry E" here, cleared by the replayer), the
//! agent reports it as syncing and promotion refuses it. Ceph copies from a sync-point snapshot
//! instead, which shortens the window to the copy itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use journal_client::image::BlockImage;
use journal_core::client_data::{
    ClientData, ClientMeta, MirrorPeerClientMeta, MirrorPeerState, MirrorPeerSyncPoint,
};
use journal_core::encoding::{Decode, Encode};
use journal_core::header::JournalHeader;
use parking_lot::Mutex;

use crate::error::{ReplayError, Result};
use crate::ids;
use crate::image_journal;
use crate::live_player::{LiveOptions, LivePlayer};
use crate::status::{ImageState, ImageStatus};
use crate::sync_mark::{self, EntryPosition, SyncMark};

/// Image sync settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
    /// Bytes copied per step (a sync "object"). Default 4 MiB (the image object size).
    pub chunk_bytes: u64,
    /// Save progress every this many chunks. Default 8.
    pub progress_every_chunks: u64,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            chunk_bytes: 4 << 20,
            progress_every_chunks: 8,
        }
    }
}

/// How a sync call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncEnd {
    /// The replica holds the sync point's data; the client is in `replaying`.
    Done,
    /// Stopped early; progress was saved.
    Stopped,
}

/// Reads the mirror-peer metadata of client `client_id` (default if the blob is another kind).
pub fn peer_meta(header: &JournalHeader, client_id: &str) -> Result<MirrorPeerClientMeta> {
    let client = header.get_client(client_id)?;
    match ClientData::from_bytes(client.data)?.meta {
        ClientMeta::MirrorPeer(m) => Ok(m),
        _ => Err(ReplayError::Invalid(format!(
            "client {client_id:?} is not a mirror peer"
        ))),
    }
}

/// Writes the mirror-peer metadata of client `client_id`.
pub fn save_peer_meta(
    header: &JournalHeader,
    client_id: &str,
    meta: &MirrorPeerClientMeta,
) -> Result<()> {
    let data = ClientData {
        meta: ClientMeta::MirrorPeer(meta.clone()),
    };
    header.client_update_data(client_id, data.to_bytes())?;
    Ok(())
}

/// (Re-)registers `client_id` on the remote journal for a fresh sync of local image
/// `local_image_id`: any old registration is dropped, so the new one starts at the current
/// oldest position (the sync point, see the module docs).
pub fn register_for_sync(
    remote: &JournalHeader,
    client_id: &str,
    local_image_id: &str,
) -> Result<()> {
    match remote.client_unregister(client_id) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let meta = MirrorPeerClientMeta {
        image_id: local_image_id.to_owned(),
        state: MirrorPeerState::Syncing,
        sync_object_count: 0,
        sync_points: vec![MirrorPeerSyncPoint {
            snap_name: format!(".rbd-mirror.{client_id}.{}", ids::random_uuid()),
            ..MirrorPeerSyncPoint::default()
        }],
        snap_seqs: Default::default(),
    };
    let data = ClientData {
        meta: ClientMeta::MirrorPeer(meta),
    };
    remote.client_register(client_id, data.to_bytes())?;
    Ok(())
}

/// Copies `remote` onto `local`, resuming from the progress recorded in client `client_id`'s
/// data on `remote_header`. See the module docs.
///
/// `local_header` is the replica's journal: the sync stops (with [`SyncEnd::Stopped`]) as soon
/// as the replica is promoted or a resync is requested, so a promoted image never receives more
/// of the primary's data.
#[allow(clippy::too_many_arguments)]
pub fn run_sync(
    remote_header: &JournalHeader,
    client_id: &str,
    remote: &dyn BlockImage,
    local: &dyn BlockImage,
    local_header: &JournalHeader,
    options: SyncOptions,
    stop: &AtomicBool,
    status: &Arc<Mutex<ImageStatus>>,
) -> Result<SyncEnd> {
    let local_watch = local_header.watch().ok();
    let replica_changed = || -> Result<bool> {
        let (_, tag) = image_journal::current_tag(local_header)?;
        Ok(tag.is_local_primary()
            || image_journal::image_client_meta(local_header)?.resync_requested)
    };
    if replica_changed()? {
        return Ok(SyncEnd::Stopped);
    }
    let mut meta = peer_meta(remote_header, client_id)?;
    if meta.sync_points.is_empty() {
        meta.sync_points.push(MirrorPeerSyncPoint {
            snap_name: format!(".rbd-mirror.{client_id}.{}", ids::random_uuid()),
            ..MirrorPeerSyncPoint::default()
        });
    }
    let size = remote.size();
    if local.size() != size {
        local.resize(size)?;
    }
    let chunk = options.chunk_bytes.max(4096);
    let count = size.div_ceil(chunk);
    meta.sync_object_count = count;
    let first = meta
        .sync_points
        .first()
        .and_then(|p| p.object_number)
        .map_or(0, |n| n + 1);
    {
        let mut st = status.lock();
        st.state = ImageState::Syncing;
        st.sync_progress = Some((first, count));
    }
    for n in first..count {
        if stop.load(Ordering::Relaxed) {
            return Ok(SyncEnd::Stopped);
        }
        // A role change mutates (and notifies) the replica's journal header.
        if local_watch.as_ref().is_some_and(|w| w.drain() > 0) && replica_changed()? {
            return Ok(SyncEnd::Stopped);
        }
        let offset = n * chunk;
        let len = chunk.min(size - offset);
        let data = remote.read(offset, len)?;
        if data.iter().all(|b| *b == 0) {
            local.discard(offset, len)?;
        } else {
            local.write(offset, data)?;
        }
        if (n + 1) % options.progress_every_chunks.max(1) == 0 {
            local.flush()?;
            if let Some(p) = meta.sync_points.first_mut() {
                p.object_number = Some(n);
            }
            save_peer_meta(remote_header, client_id, &meta)?;
        }
        status.lock().sync_progress = Some((n + 1, count));
    }
    local.flush()?;
    mark_copy_complete(remote_header, client_id, local_header)?;
    meta.state = MirrorPeerState::Replaying;
    meta.sync_points.clear();
    save_peer_meta(remote_header, client_id, &meta)?;
    status.lock().sync_progress = None;
    Ok(SyncEnd::Done)
}

/// After a complete copy onto the replica of `local_header`: the copy shows the primary at many
/// moments, so the replica becomes consistent only once replay passes the newest entry the copy
/// may contain. Records that bound as the replica's sync mark, or clears the mark when nothing
/// follows the sync point (every chunk then showed the primary at that point). Any later call
/// records an equally valid bound. Returns the mark now in force.
pub(crate) fn mark_copy_complete(
    remote_header: &JournalHeader,
    client_id: &str,
    local_header: &JournalHeader,
) -> Result<Option<SyncMark>> {
    let mark = newest_entry(remote_header, client_id)?.map(|until| SyncMark::CatchingUp { until });
    let (store, id) = (local_header.store().as_ref(), local_header.journal_id());
    match mark {
        Some(m) => sync_mark::set(store, id, m)?,
        None => sync_mark::clear(store, id)?,
    }
    Ok(mark)
}

/// The position of the newest entry readable in journal order after client `client_id`'s
/// commit position (`None` if there is none): reads the journal as the replayer will, up to
/// the first moment it finds nothing more.
fn newest_entry(remote_header: &JournalHeader, client_id: &str) -> Result<Option<EntryPosition>> {
    let start = remote_header.get_client(client_id)?.commit_position;
    let options = LiveOptions {
        use_notifications: false,
        poll_age: Duration::from_millis(1),
        ..LiveOptions::default()
    };
    let mut player = LivePlayer::new(remote_header.clone(), client_id, &start, options)?;
    let mut newest = None;
    // A short wait lets the player re-read the active set once at the end of a set.
    while let Some(e) = player.next_timeout(Duration::from_millis(2))? {
        newest = Some((e.entry.tag_tid, e.entry.entry_tid));
    }
    Ok(newest)
}
