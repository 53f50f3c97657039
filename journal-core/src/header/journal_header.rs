//! [`JournalHeader`]: a handle on one journal's header object, running the methods of Ceph's
//! `journal` object class client-side.
//!
//! # Concurrency design
//!
//! Ceph runs each class method atomically inside the OSD. Here every mutating method is an
//! optimistic transaction over the store's omap:
//!
//! 1. read every omap key the method's outcome depends on;
//! 2. decide (possibly refusing with the class method's error) and build one [`OmapBatch`] whose
//!    guards pin each key read to the value seen (`Equals`) or to its absence (`Absent`);
//! 3. apply the batch. If a guard fails, someone changed the header in between: back off briefly
//!    and start again from step 1, so the refusal (if any) is computed against fresh state.
//!
//! Since [`ObjectStore::omap_apply`] is atomic and linearizable, the committed batches are
//! equivalent to running the methods one at a time, across threads and processes. After
//! [`HeaderOptions::max_attempts`] lost races the method fails with
//! [`HeaderError::Contention`]. A method that decides to change nothing returns without writing.
//! Every successful mutation sends an empty notify to the header's watchers (spec §4.4); notify
//! failures are ignored, as notifications are only hints.
//!
//! # Fencing
//!
//! A journal writer owns the journal for one tag (epoch). [`JournalHeader::with_fence`] returns a
//! handle fenced on that tag: before each mutation it checks, and each mutation batch
//! additionally guards, that `next_tag_tid` still equals `tag_tid + 1`, i.e. nobody allocated a
//! newer tag. When a newer tag exists the mutation is refused with [`HeaderError::Fenced`] and
//! nothing is written, so a writer that lost ownership can no longer move `active_set` or commit
//! positions. Reads are never fenced.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store_trait::{ObjectStore, OmapBatch, StoreError, Watch};

use crate::layout::header_oid;

use super::records::{decode_u64, encode_u64, KEY_NEXT_TAG_TID};
use super::{HeaderError, HeaderResult};

/// Page size of client listings (the Ceph library's).
pub const CLIENT_LIST_PAGE: usize = 256;

/// Retry settings for the optimistic header updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderOptions {
    /// Attempts at one method (or at one tag allocation round) before giving up with
    /// [`HeaderError::Contention`]. Default: 200.
    pub max_attempts: u32,
    /// First back-off after a lost race, in microseconds; doubles per attempt, with random jitter
    /// of up to the same amount again. Default: 50.
    pub backoff_initial_us: u64,
    /// Largest back-off, in microseconds. Default: 10 000.
    pub backoff_max_us: u64,
    /// Whether `client_register` ignores disconnected clients when choosing the new client's
    /// initial commit position (later Ceph code does; the Pacific code the spec was read from
    /// does not — spec §17). Default: `false`.
    pub register_skips_disconnected: bool,
}

impl Default for HeaderOptions {
    fn default() -> Self {
        HeaderOptions {
            max_attempts: 200,
            backoff_initial_us: 50,
            backoff_max_us: 10_000,
            register_skips_disconnected: false,
        }
    }
}

/// A handle on the header object `journal.<journal_id>` of one journal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JournalHeader {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) name_pool_id: i64,
    pub(crate) journal_id: String,
    pub(crate) oid: String,
    pub(crate) fence: Option<u64>,
    pub(crate) options: HeaderOptions,
}

/// What one attempt of a mutating method decided.
pub(crate) enum Plan<T> {
    /// Apply this batch (its guards pin what was read); on success return the value.
    Apply(OmapBatch, T),
    /// Nothing to write; return the value.
    Done(T),
}

impl JournalHeader {
    /// A handle on journal `journal_id`'s header in `store`. `name_pool_id` is the id of the pool
    /// holding the header: it is embedded in data object names (`journal_data.<pool>.<id>.<n>`).
    pub fn new(store: Arc<dyn ObjectStore>, name_pool_id: i64, journal_id: &str) -> Self {
        JournalHeader {
            store,
            name_pool_id,
            journal_id: journal_id.to_owned(),
            oid: header_oid(journal_id),
            fence: None,
            options: HeaderOptions::default(),
        }
    }

    /// The same handle with other retry settings.
    #[must_use]
    pub fn with_options(mut self, options: HeaderOptions) -> Self {
        self.options = options;
        self
    }

    /// A handle whose every mutation also requires that no tag newer than `tag_tid` was
    /// allocated (`next_tag_tid == tag_tid + 1`); otherwise it fails with
    /// [`HeaderError::Fenced`]. See the module docs.
    #[must_use]
    pub fn with_fence(&self, tag_tid: u64) -> Self {
        let mut fenced = self.clone();
        fenced.fence = Some(tag_tid);
        fenced
    }

    /// The same handle without a fence.
    #[must_use]
    pub fn unfenced(&self) -> Self {
        let mut plain = self.clone();
        plain.fence = None;
        plain
    }

    /// The tag this handle is fenced on, if any.
    pub fn fence(&self) -> Option<u64> {
        self.fence
    }

    /// The journal id.
    pub fn journal_id(&self) -> &str {
        &self.journal_id
    }

    /// The header object's id, `journal.<journal_id>`.
    pub fn oid(&self) -> &str {
        &self.oid
    }

    /// The pool id embedded in data object names.
    pub fn name_pool_id(&self) -> i64 {
        self.name_pool_id
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Registers a watch on the header object.
    pub fn watch(&self) -> HeaderResult<Watch> {
        Ok(self.store.watch(&self.oid)?)
    }

    /// Sends an empty notification to the header's watchers; returns how many were reached.
    /// Mutating methods call this themselves after they succeed.
    pub fn notify(&self) -> HeaderResult<usize> {
        Ok(self.store.notify(&self.oid, Bytes::new())?)
    }

    /// Reads the given keys (missing keys are absent from the map).
    pub(crate) fn read_keys(&self, keys: &[&str]) -> HeaderResult<BTreeMap<String, Bytes>> {
        Ok(self.store.omap_get(&self.oid, keys)?)
    }

    /// Reads one key.
    pub(crate) fn read_key(&self, key: &str) -> HeaderResult<Option<Bytes>> {
        Ok(self.read_keys(&[key])?.remove(key))
    }

    /// Reads a `u64` scalar key that must exist (`NotFound` naming the key otherwise).
    pub(crate) fn read_u64(&self, key: &'static str) -> HeaderResult<u64> {
        let value = self.read_key(key)?.ok_or_else(|| missing_key(key))?;
        Ok(decode_u64(key, &value)?)
    }

    /// Every omap entry whose key starts with `prefix`, in key order, read in pages of
    /// [`CLIENT_LIST_PAGE`].
    pub(crate) fn list_all(&self, prefix: &str) -> HeaderResult<Vec<(String, Bytes)>> {
        let mut out: Vec<(String, Bytes)> = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .store
                .omap_list(&self.oid, &after, prefix, CLIENT_LIST_PAGE)?;
            let full = page.len() == CLIENT_LIST_PAGE;
            if let Some((last, _)) = page.last() {
                after.clone_from(last);
            }
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// Fails with [`HeaderError::Fenced`] if this handle is fenced and a newer tag exists.
    pub(crate) fn check_fence(&self) -> HeaderResult<()> {
        let Some(tag_tid) = self.fence else {
            return Ok(());
        };
        let next = match self.read_key(KEY_NEXT_TAG_TID)? {
            Some(v) => Some(decode_u64(KEY_NEXT_TAG_TID, &v)?),
            None => None,
        };
        if next.is_some() && next == tag_tid.checked_add(1) {
            Ok(())
        } else {
            Err(HeaderError::Fenced {
                tag_tid,
                next_tag_tid: next,
            })
        }
    }

    /// Runs one optimistic mutation (see the module docs): `plan` reads and decides, its batch
    /// is applied with the fence guard added, and lost races are retried.
    pub(crate) fn mutate<T>(
        &self,
        op: &'static str,
        mut plan: impl FnMut() -> HeaderResult<Plan<T>>,
    ) -> HeaderResult<T> {
        let mut backoff = Backoff::new(&self.options);
        for _ in 0..self.options.max_attempts {
            self.check_fence()?;
            let (mut batch, value) = match plan()? {
                Plan::Done(value) => return Ok(value),
                Plan::Apply(batch, value) => (batch, value),
            };
            if let Some(tag_tid) = self.fence {
                // check_fence passed, so tag_tid + 1 did not overflow.
                batch.assert_equals(KEY_NEXT_TAG_TID, encode_u64(tag_tid.saturating_add(1)));
            }
            match self.store.omap_apply(&self.oid, &batch) {
                Ok(()) => {
                    // A notification is only a hint; a failure to send one does not undo the
                    // mutation and is not reported.
                    let _ = self.notify();
                    return Ok(value);
                }
                Err(StoreError::GuardFailed { .. }) => backoff.pause(),
                Err(other) => return Err(other.into()),
            }
        }
        Err(HeaderError::Contention {
            op,
            attempts: self.options.max_attempts,
        })
    }
}

/// Adds a guard pinning `key` to what was read: `Equals(value)` or `Absent`.
pub(crate) fn pin(batch: &mut OmapBatch, key: &str, seen: Option<&Bytes>) {
    match seen {
        Some(value) => batch.assert_equals(key, value.clone()),
        None => batch.assert_absent(key),
    };
}

/// The error for a header key that must exist but does not.
pub(crate) fn missing_key(key: &str) -> HeaderError {
    HeaderError::NotFound {
        what: format!("journal header key {key:?}"),
    }
}

/// Exponential back-off with jitter between optimistic retries.
pub(crate) struct Backoff {
    next_us: u64,
    max_us: u64,
    jitter: RandomState,
    round: u64,
}

impl Backoff {
    /// A back-off starting at the options' initial delay.
    pub(crate) fn new(options: &HeaderOptions) -> Self {
        Backoff {
            next_us: options.backoff_initial_us.max(1),
            max_us: options.backoff_max_us.max(1),
            jitter: RandomState::new(),
            round: 0,
        }
    }

    /// Sleeps for the current delay plus jitter, then doubles the delay.
    pub(crate) fn pause(&mut self) {
        let mut h = self.jitter.build_hasher();
        h.write_u64(self.round);
        self.round = self.round.wrapping_add(1);
        let extra = h.finish() % self.next_us.saturating_add(1);
        std::thread::sleep(Duration::from_micros(self.next_us.saturating_add(extra)));
        self.next_us = self.next_us.saturating_mul(2).min(self.max_us);
    }
}
