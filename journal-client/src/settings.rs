//! [`JournalSettings`]: the journal options of librbd, with Ceph's names and Pacific defaults.
//!
//! Ceph's "0 = off / unlimited" sentinels are `None` here.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use journal_core::layout::{
    DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_ORDER, DEFAULT_SPLAY_WIDTH, MAX_ORDER, MIN_ORDER,
};
use journal_core::Layout;

/// Options of a journaled image and its recorder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSettings {
    /// `rbd_journal_order`: log2 of the data-object soft size, `12..=26`. Default 24 (16 MiB).
    /// Used only when the journal is created.
    pub order: u8,
    /// `rbd_journal_splay_width`: data objects written in parallel. Default 4. Used only when the
    /// journal is created.
    pub splay_width: u8,
    /// Pool id recorded in the header (`-1` = same pool as the header). Default -1.
    pub pool_id: i64,
    /// Pool id embedded in data object names (the header pool's id). Default 0.
    pub name_pool_id: i64,
    /// `rbd_journal_commit_age`: how often the image client's commit position is written.
    /// Default 5 s.
    pub commit_age: Duration,
    /// Also write the commit position (and trim) whenever the writer moves to a new object
    /// set, instead of only every `commit_age`. A busy journal then keeps about two object sets
    /// in its store rather than `commit_age` worth of writes (at 300 MB/s and the defaults,
    /// ~200 MiB instead of ~1.5 GiB), and in memory the entry buffers of trimmed sets are
    /// reused instead of fresh pages being faulted in. Costs one header update per object set.
    /// librbd commits on age only (`false`). Default `true`.
    pub commit_on_rollover: bool,
    /// `rbd_journal_object_flush_interval`: send an object's batch once it holds this many
    /// entries. Default `None` (off).
    pub flush_interval_entries: Option<NonZeroU32>,
    /// `rbd_journal_object_flush_bytes`: send an object's batch once it holds this many bytes.
    /// Default 1 MiB.
    pub flush_bytes: Option<NonZeroU64>,
    /// `rbd_journal_object_flush_age`: send an object's batch once its oldest entry waited this
    /// long. Default `None` (off).
    pub flush_age: Option<Duration>,
    /// `rbd_journal_object_max_in_flight_appends`: accepted for compatibility. This recorder
    /// keeps at most one append in flight per object (group commit: what arrives meanwhile goes
    /// into the next append), which satisfies every value. Default `None` (unlimited).
    pub max_in_flight_appends: Option<NonZeroU32>,
    /// `rbd_journal_max_payload_bytes`: largest entry payload; larger writes are split.
    /// Default 16384.
    pub max_payload_bytes: usize,
    /// `rbd_journal_max_concurrent_object_sets`: disconnect a client that lags more than this
    /// many object sets behind the active set. Default `None` (off).
    pub max_concurrent_object_sets: Option<NonZeroU64>,
    /// `rbd_journal_object_writethrough_until_flush`: send every entry at once (ignoring the
    /// batching knobs) until the first user flush. Default true.
    pub writethrough_until_flush: bool,
    /// Capacity of the queue from the write path to the data applier (bounds acknowledged but
    /// not yet applied IO). Default 1024 events.
    pub apply_queue_depth: usize,
}

impl Default for JournalSettings {
    fn default() -> Self {
        JournalSettings {
            order: DEFAULT_ORDER,
            splay_width: DEFAULT_SPLAY_WIDTH,
            pool_id: -1,
            name_pool_id: 0,
            commit_age: Duration::from_secs(5),
            commit_on_rollover: true,
            flush_interval_entries: None,
            flush_bytes: NonZeroU64::new(1 << 20),
            flush_age: None,
            max_in_flight_appends: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_concurrent_object_sets: None,
            writethrough_until_flush: true,
            apply_queue_depth: 1024,
        }
    }
}

/// A setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// `order` outside `12..=26`.
    #[error("order {0} outside {MIN_ORDER}..={MAX_ORDER}")]
    Order(u8),
    /// `splay_width` is 0.
    #[error("splay width must be at least 1")]
    SplayWidth,
    /// `max_payload_bytes` cannot hold the smallest write event.
    #[error("max payload {0} too small (at least 64 bytes)")]
    MaxPayload(usize),
    /// `apply_queue_depth` is 0.
    #[error("apply queue depth must be at least 1")]
    ApplyQueueDepth,
    /// `commit_age` is zero.
    #[error("commit age must be positive")]
    CommitAge,
}

impl JournalSettings {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(MIN_ORDER..=MAX_ORDER).contains(&self.order) {
            return Err(SettingsError::Order(self.order));
        }
        if self.splay_width == 0 {
            return Err(SettingsError::SplayWidth);
        }
        if self.max_payload_bytes < 64 {
            return Err(SettingsError::MaxPayload(self.max_payload_bytes));
        }
        if self.apply_queue_depth == 0 {
            return Err(SettingsError::ApplyQueueDepth);
        }
        if self.commit_age.is_zero() {
            return Err(SettingsError::CommitAge);
        }
        Ok(())
    }

    /// The layout a new journal gets.
    pub fn layout(&self) -> Result<Layout, SettingsError> {
        self.validate()?;
        Layout::new(self.order, self.splay_width).map_err(|_| SettingsError::Order(self.order))
    }

    /// Whether any batching knob is on (otherwise every entry is sent at once).
    pub fn batching(&self) -> bool {
        self.flush_interval_entries.is_some()
            || self.flush_bytes.is_some()
            || self.flush_age.is_some()
    }
}
