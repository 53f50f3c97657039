//! The writer fence on data objects.
//!
//! Only the newest writer (the holder of the newest tag) may append entries. The header is
//! protected by `JournalHeader::with_fence`; data objects are protected here:
//!
//! * every data object a writer appends to carries the omap key [`FENCE_KEY`], a little-endian
//!   `u64` tag tid: the newest writer tag that has claimed the object;
//! * a writer claims an object before its first append to it ([`claim_object`]): it sets the key
//!   to its own tag if the key is absent or smaller (compare-and-swap, so the key never
//!   decreases), and is fenced if the key is larger;
//! * every append carries the guard `FENCE_KEY <= my tag` in the same atomic operation
//!   ([`append_guard`]), so once a newer writer has claimed an object, a stale writer's append
//!   to it is refused by the store itself, whatever process it runs in;
//! * a new writer claims every object from the header's `minimum_set` through `active_set`
//!   right after allocating its tag and before replaying, and claims each later object before
//!   using it. A stale writer can only reach a later set through `set_active_set`, which the
//!   fenced header refuses once the newer tag exists.
//!
//! Ceph readers ignore omap keys on data objects, so the key does not affect compatibility.

use bytes::Bytes;
use object_store_trait::{
    AppendGuard, ObjectStore, ObjectStoreExt, OmapBatch, OmapCmp, OmapGuard, StoreError,
};

/// Omap key on data objects holding the newest writer tag that claimed the object.
pub const FENCE_KEY: &str = "rbdj.writer_tag";

/// The outcome of a failed claim.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// A newer writer already claimed the object.
    #[error("object {oid:?} is claimed by newer writer tag {newer}")]
    Fenced {
        /// The object.
        oid: String,
        /// The tag found.
        newer: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn decode(value: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = value.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Raises `oid`'s fence key to `tag` (creating the object with size 0 if missing). Fails with
/// [`ClaimError::Fenced`] if a newer tag holds it.
pub fn claim_object(store: &dyn ObjectStore, oid: &str, tag: u64) -> Result<(), ClaimError> {
    loop {
        let current = store.omap_get_one(oid, FENCE_KEY)?;
        let mut batch = OmapBatch::new();
        match current.as_deref().map(decode) {
            None => {
                batch.assert_absent(FENCE_KEY);
            }
            Some(Some(v)) if v > tag => {
                return Err(ClaimError::Fenced {
                    oid: oid.to_owned(),
                    newer: v,
                })
            }
            Some(Some(v)) if v == tag => return Ok(()),
            // Smaller, or unreadable (then overwrite it: only our own code writes the key).
            Some(_) => {
                batch.assert_equals(FENCE_KEY, current.clone().unwrap_or_default());
            }
        }
        batch.set(FENCE_KEY, Bytes::copy_from_slice(&tag.to_le_bytes()));
        match store.omap_apply(oid, &batch) {
            Ok(()) => return Ok(()),
            // Raced with another claimer: look again.
            Err(e) if e.is_guard_failed() => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The guard every append by writer `tag` carries: soft size limit plus `FENCE_KEY <= tag`.
pub fn append_guard(tag: u64, soft_max: u64) -> AppendGuard {
    AppendGuard::soft_max(soft_max).with_omap_guard(OmapGuard {
        key: FENCE_KEY.to_owned(),
        cmp: OmapCmp::U64AtMost(tag),
    })
}

/// Whether a store error is the fence guard refusing an append.
pub fn is_fence_failure(err: &StoreError) -> bool {
    matches!(err, StoreError::GuardFailed { key, .. } if key == FENCE_KEY)
}
