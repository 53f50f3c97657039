//! [`ReplayerOptions`]: the replayer's settings (re-exported from [`crate::replayer`]).

use std::sync::Arc;
use std::time::Duration;

use journal_core::event::EventEntry;

use crate::live_player::LiveOptions;

/// A callback run after each event is applied to the replica (before the flush that makes it
/// durable): for measurements and tests.
pub type AppliedHook = Arc<dyn Fn(&EventEntry) + Send + Sync>;

/// Replayer settings.
#[derive(Clone)]
pub struct ReplayerOptions {
    /// Live tailing settings (poll age, prefetch budget).
    pub live: LiveOptions,
    /// Flush the replica after this many applied, unflushed IO events (and at least every
    /// `flush_interval`). Default 1024. librbd's replay works with 32 IOs in flight, but there
    /// every write is durable on the OSD and its flush is cheap; a replica whose store syncs
    /// its image objects at the flush (`DirStore`) pays a sync per dirty object per flush, and
    /// at 32 the syncs bounded a replica on disk to about 2,000 writes/s.
    pub flush_every_entries: usize,
    /// Flush the replica at least this often while events are pending. Default 1 s (Ceph's
    /// rbd-mirror: 30 s).
    pub flush_interval: Duration,
    /// Write the commit position to the remote header at most this often. Default 100 ms
    /// (Ceph: `rbd_mirror_journal_commit_age`, 5 s).
    pub commit_interval: Duration,
    /// Keep the replica this far behind the events' timestamps. Default 0
    /// (`rbd_mirroring_replay_delay`).
    pub replay_delay: Duration,
    /// How often to check the local image (promotion, resync request) and the remote client
    /// (disconnection). Default 100 ms.
    pub check_interval: Duration,
    /// Called after each applied event. Default none.
    pub on_applied: Option<AppliedHook>,
    /// Chunks (4 MiB data objects) the replica's write-back cache may hold between flushes
    /// ([`crate::write_back`]); 0 applies every event straight to the image. Default 0: the
    /// stores write image objects in place (`ObjectStore::write_at`), where the cache only adds
    /// copies; use e.g. 8 (32 MiB) over a store whose small writes rewrite whole objects. A
    /// replayer's memory is about this plus the live player's prefetch budget (16 MiB).
    pub write_back_chunks: usize,
}

impl std::fmt::Debug for ReplayerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayerOptions")
            .field("live", &self.live)
            .field("flush_every_entries", &self.flush_every_entries)
            .field("flush_interval", &self.flush_interval)
            .field("commit_interval", &self.commit_interval)
            .field("replay_delay", &self.replay_delay)
            .field("check_interval", &self.check_interval)
            .field("write_back_chunks", &self.write_back_chunks)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayerOptions {
    fn default() -> Self {
        ReplayerOptions {
            live: LiveOptions::default(),
            flush_every_entries: 1024,
            flush_interval: Duration::from_secs(1),
            commit_interval: Duration::from_millis(100),
            replay_delay: Duration::ZERO,
            check_interval: Duration::from_millis(100),
            on_applied: None,
            write_back_chunks: 0,
        }
    }
}
