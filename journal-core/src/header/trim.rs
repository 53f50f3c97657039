//! Trimming (spec §8), laggy-client detection (§7.3) and journal removal (§8.3).
//!
//! The decisions are pure functions over [`MutableMetadata`]; [`JournalHeader::trim`] and
//! [`JournalHeader::remove_journal`] carry them out against the store.

use std::ops::Range;

use object_store_trait::StoreError;

use crate::layout::data_oid;

use super::metadata::MutableMetadata;
use super::records::ClientState;
use super::{HeaderError, HeaderResult, JournalHeader};

/// The commit set of §8 step 1: `active_set`, lowered to `object_number / W` of every position
/// of every connected client; `minimum_set` if any connected client has committed nothing.
/// A width of 0 is treated as 1.
pub fn commit_set(meta: &MutableMetadata, splay_width: u8) -> u64 {
    let width = u64::from(splay_width.max(1));
    let mut set = meta.active_set;
    for client in &meta.clients {
        if client.state != ClientState::Connected {
            continue;
        }
        if client.commit_position.is_empty() {
            return meta.minimum_set;
        }
        for pos in &client.commit_position.object_positions {
            set = set.min(pos.object_number / width);
        }
    }
    set
}

/// The object sets the trimmer removes (§8 step 2), oldest first: `minimum_set` up to but not
/// including the commit set (never the active set). Empty when nothing can be trimmed.
pub fn trimmable_sets(meta: &MutableMetadata, splay_width: u8) -> Range<u64> {
    let end = commit_set(meta, splay_width).min(meta.active_set);
    meta.minimum_set..end.max(meta.minimum_set)
}

/// Clients a committing client flags as laggy (§7.3): every connected client not in `ignored`
/// whose most recent position's set (`object_number / W`, 0 with no positions) is more than
/// `max_concurrent_object_sets` behind `active_set`. Empty when the limit is 0 (off).
pub fn laggy_clients(
    meta: &MutableMetadata,
    splay_width: u8,
    max_concurrent_object_sets: u64,
    ignored: &[&str],
) -> Vec<String> {
    if max_concurrent_object_sets == 0 {
        return Vec::new();
    }
    let width = u64::from(splay_width.max(1));
    meta.clients
        .iter()
        .filter(|c| c.state == ClientState::Connected && !ignored.contains(&c.id.as_str()))
        .filter(|c| {
            let set = c
                .commit_position
                .first()
                .map_or(0, |p| p.object_number / width);
            meta.active_set > set.saturating_add(max_concurrent_object_sets)
        })
        .map(|c| c.id.clone())
        .collect()
}

impl JournalHeader {
    /// Runs the trimmer once (§8): removes the data objects of every trimmable set, oldest
    /// first, advancing `minimum_set` past each. Returns the sets removed.
    pub fn trim(&self) -> HeaderResult<Range<u64>> {
        let width = self.get_immutable_metadata()?.splay_width;
        let meta = self.get_mutable_metadata()?;
        let sets = trimmable_sets(&meta, width);
        for set in sets.clone() {
            self.remove_set_objects(set, width)?;
            match self.set_minimum_set(set.saturating_add(1)) {
                // Another trimmer got further first: its removals cover ours.
                Err(HeaderError::Stale { .. }) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sets)
    }

    /// Removes the journal (§8.3): every data object from `minimum_set` through `active_set`,
    /// then the header object.
    ///
    /// Without `force`, refuses with [`HeaderError::Busy`] if clients other than `caller_id`
    /// are registered and with [`HeaderError::Invalid`] if no client is registered.
    pub fn remove_journal(&self, force: bool, caller_id: &str) -> HeaderResult<()> {
        self.check_fence()?;
        let width = self.get_immutable_metadata()?.splay_width;
        let meta = self.get_mutable_metadata()?;
        if !force {
            if meta.clients.is_empty() {
                return Err(HeaderError::Invalid {
                    detail: "no registered clients".into(),
                });
            }
            let others = meta.clients.iter().filter(|c| c.id != caller_id).count();
            if others > 0 {
                return Err(HeaderError::Busy { clients: others });
            }
        }
        for set in meta.minimum_set..=meta.active_set {
            self.remove_set_objects(set, width)?;
        }
        match self.store.remove(&self.oid) {
            Ok(()) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(HeaderError::NotFound {
                    what: "journal header".into(),
                })
            }
            Err(e) => return Err(e.into()),
        }
        let _ = self.notify();
        Ok(())
    }

    /// Removes the W data objects of `set` (missing ones are fine).
    fn remove_set_objects(&self, set: u64, splay_width: u8) -> HeaderResult<()> {
        let width = u64::from(splay_width);
        let first = set.saturating_mul(width);
        for object_number in first..first.saturating_add(width) {
            let oid = data_oid(self.name_pool_id, &self.journal_id, object_number);
            match self.store.remove(&oid) {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use bytes::Bytes;

    use super::*;
    use crate::header::records::{Client, ObjectPosition, ObjectSetPosition};

    fn client(id: &str, objects: &[u64], state: ClientState) -> Client {
        Client {
            id: id.into(),
            data: Bytes::new(),
            commit_position: ObjectSetPosition::new(
                objects
                    .iter()
                    .map(|&o| ObjectPosition {
                        object_number: o,
                        tag_tid: 1,
                        entry_tid: o,
                    })
                    .collect(),
            ),
            state,
        }
    }

    fn meta(minimum_set: u64, active_set: u64, clients: Vec<Client>) -> MutableMetadata {
        MutableMetadata {
            minimum_set,
            active_set,
            clients,
        }
    }

    // W = 4, active 5, minimum 1. Client a at objects 17,16,19,18 (set 4); client b at objects
    // 9,8 (set 2). commit_set = min(5, 4, 2) = 2 → trim set 1 only.
    #[test]
    fn trim_hand_worked() {
        let m = meta(
            1,
            5,
            vec![
                client("a", &[17, 16, 19, 18], ClientState::Connected),
                client("b", &[9, 8], ClientState::Connected),
            ],
        );
        assert_eq!(commit_set(&m, 4), 2);
        assert_eq!(trimmable_sets(&m, 4), 1..2);
        // b disconnected: commit_set = 4 → sets 1, 2, 3.
        let mut m2 = m.clone();
        m2.clients[1].state = ClientState::Disconnected;
        assert_eq!(trimmable_sets(&m2, 4), 1..4);
        // An empty connected client blocks trimming entirely.
        let mut m3 = m2.clone();
        m3.clients.push(client("c", &[], ClientState::Connected));
        assert_eq!(commit_set(&m3, 4), 1);
        assert!(trimmable_sets(&m3, 4).is_empty());
        // No connected client: everything below the active set goes.
        assert_eq!(trimmable_sets(&meta(0, 3, vec![]), 4), 0..3);
        // The real librbd-basic header: an empty HOLD client keeps everything.
        let real = meta(
            0,
            0,
            vec![
                client("", &[0, 3, 2, 1], ClientState::Connected),
                client("HOLD", &[], ClientState::Connected),
            ],
        );
        assert!(trimmable_sets(&real, 4).is_empty());
    }

    // active 10, W 4, limit 3: set of a = 32/4 = 8 (10 > 11? no); b = 4/4 = 1 (10 > 4: laggy);
    // c has no positions → set 0 (laggy) but is ignored; d is disconnected already.
    #[test]
    fn laggy_hand_worked() {
        let m = meta(
            0,
            10,
            vec![
                client("a", &[32, 31], ClientState::Connected),
                client("b", &[4], ClientState::Connected),
                client("c", &[], ClientState::Connected),
                client("d", &[0], ClientState::Disconnected),
                client("e", &[], ClientState::Connected),
            ],
        );
        assert_eq!(laggy_clients(&m, 4, 3, &["c"]), vec!["b", "e"]);
        assert!(laggy_clients(&m, 4, 0, &[]).is_empty());
        // Boundary: set + limit == active is not laggy (7/4 = 1; 1 + 9 = 10).
        let edge = meta(0, 10, vec![client("x", &[7], ClientState::Connected)]);
        assert!(laggy_clients(&edge, 4, 9, &[]).is_empty());
        assert_eq!(laggy_clients(&edge, 4, 8, &[]), vec!["x"]);
    }
}
