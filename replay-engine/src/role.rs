//! Promote, demote and force-promote of a journaled image (spec §12.5).
//!
//! Each allocates a tag in the image's class and appends one `DemotePromote` event (zero
//! timestamp) as entry 0 of that tag, then records it as committed by the image client:
//!
//! | action | allowed when | new tag |
//! |---|---|---|
//! | demote | current tag owned by `""` | `<orphan>`, predecessor `""` / the image client's newest position |
//! | promote | current tag `<orphan>` | `""`, predecessor `<orphan>`, tag = current, entry 1 |
//! | force-promote | current tag not `""` | `""`, predecessor `""`, tag = current, entry 0 |
//!
//! Promotion (orderly or forced) is refused while the image carries a [`crate::sync_mark`]:
//! a replica whose image sync has not finished holds no point-in-time state of the primary.
//!
//! An orderly promotion also registers every peer site as a mirror-peer client positioned at the
//! promotion marker, so the demoted peer can follow the new primary by replay alone. The image
//! client's commit at the marker is the last step of every role change: until it is there, the
//! change is in progress, and a demoted peer's agent waits rather than acting on a promotion
//! whose peer clients are not registered yet.
//!
//! The image must not be open for writing elsewhere while its role changes: a writer that is
//! open is fenced off by the new tag (its next header update fails), and it must be reopened.

use bytes::Bytes;
use journal_client::fence;
use journal_core::client_data::{ClientData, ClientMeta, MirrorPeerClientMeta, MirrorPeerState};
use journal_core::encoding::{Encode, UTime};
use journal_core::entry::Entry;
use journal_core::event::{Event, EventEntry};
use journal_core::header::{JournalHeader, ObjectPosition, ObjectSetPosition};
use journal_core::layout::data_oid;
use journal_core::tag_data::{TagData, TagPredecessor, ORPHAN_MIRROR_UUID};

use crate::error::{ReplayError, Result};
use crate::image_journal::{self, IMAGE_CLIENT_ID};
use crate::site::Site;

/// A role change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Primary → demoted (`<orphan>`).
    Demote,
    /// Demoted → primary.
    Promote,
    /// Any non-primary → primary, without the other side's demotion.
    ForcePromote,
}

/// Applies `change` to image `name` of `site`. Returns the new tag's tid.
pub fn change_role(site: &Site, name: &str, change: RoleChange) -> Result<u64> {
    let info = site.image_info(name)?;
    if !info.journaled() {
        return Err(ReplayError::NotJournaled { name: name.into() });
    }
    let header = site.journal_header(&info.id);
    let (current_tid, current) = image_journal::current_tag(&header)?;
    let wrong = |detail: &str| ReplayError::WrongRole {
        name: name.into(),
        detail: detail.into(),
    };
    if change != RoleChange::Demote {
        if let Some(mark) = crate::sync_mark::get(site.store().as_ref(), &info.id)? {
            return Err(wrong(&format!(
                "the replica is not consistent yet ({mark}); its bytes are no state the \
                 primary ever had"
            )));
        }
    }
    let data = match change {
        RoleChange::Demote => {
            if !current.is_local_primary() {
                return Err(wrong("not primary: cannot demote"));
            }
            let position = image_journal::image_commit_position(&header)?;
            let newest = position.first();
            TagData {
                mirror_uuid: ORPHAN_MIRROR_UUID.into(),
                predecessor: TagPredecessor {
                    mirror_uuid: String::new(),
                    commit_valid: newest.is_some(),
                    tag_tid: newest.map_or(0, |p| p.tag_tid),
                    entry_tid: newest.map_or(0, |p| p.entry_tid),
                },
            }
        }
        RoleChange::Promote => {
            if !current.is_orphan() {
                return Err(wrong("not demoted: use force-promote"));
            }
            TagData {
                mirror_uuid: String::new(),
                predecessor: TagPredecessor {
                    mirror_uuid: ORPHAN_MIRROR_UUID.into(),
                    commit_valid: true,
                    tag_tid: current_tid,
                    entry_tid: 1,
                },
            }
        }
        RoleChange::ForcePromote => {
            if current.is_local_primary() {
                return Err(wrong("already primary"));
            }
            TagData {
                mirror_uuid: String::new(),
                predecessor: TagPredecessor {
                    mirror_uuid: String::new(),
                    commit_valid: true,
                    tag_tid: current_tid,
                    entry_tid: 0,
                },
            }
        }
    };
    let tid = image_journal::allocate_image_tag(&header, &data)?;
    if change == RoleChange::Promote {
        crate::site_mirror::save_promotion(
            site.store().as_ref(),
            &info.id,
            (current_tid, &current),
            (tid, &data),
        )?;
    }
    let object_number = append_marker(&header, tid)?;
    let marker = ObjectSetPosition::new(vec![ObjectPosition {
        object_number,
        tag_tid: tid,
        entry_tid: 0,
    }]);
    if change == RoleChange::Promote {
        register_peers_at(site, &header, &marker)?;
    }
    // Last step: the image client's commit on the new tag is what tells a peer's agent that
    // the role change is complete (see `crate::bootstrap`: a failback waits for it).
    header.client_commit(IMAGE_CLIENT_ID, &marker)?;
    Ok(tid)
}

/// After an orderly promotion, registers every peer site of `site` as a mirror-peer client of
/// the image's journal positioned at the promotion marker, before anything is written: the
/// demoted peer's agent then replays exactly the entries after the promotion (no image sync),
/// and until it does, the journal keeps them (a registered client holds back trimming).
fn register_peers_at(
    site: &Site,
    header: &JournalHeader,
    marker: &ObjectSetPosition,
) -> Result<()> {
    for peer in crate::site_mirror::peers(site.store().as_ref())?.keys() {
        match header.client_unregister(peer) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let meta = MirrorPeerClientMeta {
            state: MirrorPeerState::Replaying,
            ..MirrorPeerClientMeta::default()
        };
        let data = ClientData {
            meta: ClientMeta::MirrorPeer(meta),
        };
        header.client_register(peer, data.to_bytes())?;
        header.client_commit(peer, marker)?;
    }
    Ok(())
}

/// Appends the `DemotePromote` event as entry 0 of `tag_tid` at splay offset 0 of the active
/// set (moving to the next set when the object is full). Returns the object number.
fn append_marker(header: &JournalHeader, tag_tid: u64) -> Result<u64> {
    let layout = header
        .get_immutable_metadata()?
        .layout()
        .map_err(|e| ReplayError::Invalid(e.to_string()))?;
    let payload = EventEntry::new(Event::DemotePromote, UTime::default()).to_bytes();
    let framed: Bytes = Entry::new(tag_tid, 0, payload).to_bytes();
    for _ in 0..64 {
        let set = header.get_active_set()?;
        let n = layout.object_number(set, 0);
        let oid = data_oid(header.name_pool_id(), header.journal_id(), n);
        // Claim the object for the new tag first: a stale writer's later appends to it are
        // refused by the store (journal-client's data-object fence).
        match fence::claim_object(header.store().as_ref(), &oid, tag_tid) {
            Ok(()) => {}
            Err(e) => return Err(ReplayError::Journaled(e.to_string())),
        }
        match header.store().append(
            &oid,
            std::slice::from_ref(&framed),
            &fence::append_guard(tag_tid, layout.soft_limit()),
        ) {
            Ok(_) => {
                let _ = header.store().notify(&oid, Bytes::new());
                return Ok(n);
            }
            Err(e) if e.is_overflow() => match header.set_active_set(set + 1) {
                Ok(()) => {}
                Err(e) if e.is_stale() => {}
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(ReplayError::Invalid(
        "could not append the role-change event".into(),
    ))
}
