//! The replica's consistency mark: a durable record, kept beside the mirroring record of a
//! replica (omap key `sync_<image id>` of `rbd_mirroring`), that the replica does **not** yet
//! hold a point-in-time state of the primary.
//!
//! An image sync ([`crate::image_sync`]) copies the *live* primary, so each copied chunk shows
//! the primary at a different moment between the sync point `P` (the mirror client's
//! registration position) and the end of the copy. Replaying the journal from `P` then applies
//! older writes over newer copied data until the replay passes the newest entry the copy can
//! contain; only from there on is the replica the primary's state after some prefix of its
//! journal (write-order fidelity). The mark covers that whole window:
//!
//! | mark | set | cleared |
//! |---|---|---|
//! | [`SyncMark::Copying`] | before the sync changes any replica byte | replaced when the copy is complete |
//! | [`SyncMark::CatchingUp`] `{ until }` | after the copy, with the newest entry the journal held then | by the replayer, once the replica is flushed after applying `until` |
//!
//! `until` is an upper bound of every entry whose data the copy can hold: the primary writes an
//! entry's data to its image only after the entry (and every entry before it) is durable in the
//! journal, so when the copy ends all of them are readable in journal order. Any later bound is
//! as good, which makes every step restartable.
//!
//! While a mark is present the agent reports the image as syncing and promotion is refused
//! ([`crate::role`]): the replica's bytes are no state the primary ever had.

use bytes::Bytes;
use journal_core::encoding::{Decoder, Encoder};
use object_store_trait::{ObjectStore, ObjectStoreExt, OmapBatch};

use crate::error::{ReplayError, Result};
use crate::site_mirror::MIRRORING_OID;

const PREFIX: &str = "sync_";

/// A position in a journal: `(tag tid, entry tid)`, ordered as the journal orders entries
/// (tag tids only grow).
pub type EntryPosition = (u64, u64);

/// Why a replica is not (yet) consistent. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMark {
    /// An image sync is copying data onto the replica.
    Copying,
    /// The copy is complete; the replica is consistent once the entry at `until` is applied
    /// and flushed.
    CatchingUp {
        /// The newest remote entry the copy may contain.
        until: EntryPosition,
    },
}

impl SyncMark {
    fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.envelope(1, 1, |e| match self {
            SyncMark::Copying => e.u8(0),
            SyncMark::CatchingUp { until } => {
                e.u8(1);
                e.u64(until.0);
                e.u64(until.1);
            }
        });
        enc.finish()
    }

    fn decode(bytes: Bytes) -> Result<Self> {
        let mut dec = Decoder::new(bytes);
        let mark = dec.envelope("sync_mark", 1, |d, _| match d.u8("kind")? {
            0 => Ok(Ok(SyncMark::Copying)),
            1 => {
                let tag = d.u64("until tag")?;
                let entry = d.u64("until entry")?;
                Ok(Ok(SyncMark::CatchingUp {
                    until: (tag, entry),
                }))
            }
            other => Ok(Err(other)),
        })?;
        dec.finish("sync_mark")?;
        mark.map_err(|kind| ReplayError::Invalid(format!("sync mark kind {kind}")))
    }

    /// Whether applying the entry at `applied` (and flushing) makes the replica consistent.
    pub fn passed_by(&self, applied: EntryPosition) -> bool {
        match self {
            SyncMark::Copying => false,
            SyncMark::CatchingUp { until } => applied >= *until,
        }
    }
}

impl std::fmt::Display for SyncMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncMark::Copying => write!(f, "image sync copying"),
            SyncMark::CatchingUp {
                until: (tag, entry),
            } => write!(
                f,
                "image sync copied; replaying up to entry {entry} of tag {tag} before the \
                 replica is consistent"
            ),
        }
    }
}

fn key(image_id: &str) -> String {
    format!("{PREFIX}{image_id}")
}

/// The mark of replica `image_id`, if it has one.
pub fn get(store: &dyn ObjectStore, image_id: &str) -> Result<Option<SyncMark>> {
    store
        .omap_get_one(MIRRORING_OID, &key(image_id))?
        .map(SyncMark::decode)
        .transpose()
}

/// Marks replica `image_id` (replacing any mark). Durable when it returns.
pub fn set(store: &dyn ObjectStore, image_id: &str, mark: SyncMark) -> Result<()> {
    let mut batch = OmapBatch::new();
    batch.set(key(image_id), mark.encode());
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(())
}

/// Removes the mark of `image_id`: the replica is consistent from now on.
pub fn clear(store: &dyn ObjectStore, image_id: &str) -> Result<()> {
    let mut batch = OmapBatch::new();
    batch.remove(key(image_id));
    store.omap_apply(MIRRORING_OID, &batch)?;
    Ok(())
}

/// Adds the mark's removal to `batch` (for removing an image's mirroring records together).
pub(crate) fn remove_in(batch: &mut OmapBatch, image_id: &str) {
    batch.remove(key(image_id));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use object_store_trait::MemStore;

    use super::*;

    #[test]
    fn marks_round_trip_and_order_positions() {
        let store = MemStore::new();
        assert_eq!(get(&store, "img").unwrap(), None);
        set(&store, "img", SyncMark::Copying).unwrap();
        assert_eq!(get(&store, "img").unwrap(), Some(SyncMark::Copying));
        let mark = SyncMark::CatchingUp { until: (2, 7) };
        set(&store, "img", mark).unwrap();
        assert_eq!(get(&store, "img").unwrap(), Some(mark));
        assert!(!mark.passed_by((2, 6)));
        assert!(!mark.passed_by((1, 90)));
        assert!(mark.passed_by((2, 7)));
        assert!(mark.passed_by((3, 0)));
        assert!(!SyncMark::Copying.passed_by((u64::MAX, u64::MAX)));
        clear(&store, "img").unwrap();
        assert_eq!(get(&store, "img").unwrap(), None);
    }

    #[test]
    fn garbage_marks_are_typed_errors() {
        let store = MemStore::new();
        let good = SyncMark::CatchingUp { until: (1, 2) }.encode();
        for cut in 0..good.len() {
            let mut batch = OmapBatch::new();
            batch.set(key("x"), good.slice(..cut));
            store.omap_apply(MIRRORING_OID, &batch).unwrap();
            assert!(get(&store, "x").is_err(), "cut {cut}");
        }
        let mut bad = good.to_vec();
        bad[6] = 9; // kind
        let mut batch = OmapBatch::new();
        batch.set(key("x"), Bytes::from(bad));
        store.omap_apply(MIRRORING_OID, &batch).unwrap();
        assert!(get(&store, "x").is_err());
    }
}
