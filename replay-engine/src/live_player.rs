//! Live tailing of a journal (spec §10.4) over journal-core's pull [`Player`].
//!
//! The [`Player`] hands out entries in Ceph's order and answers `End` when nothing more is
//! there; calling it again re-reads the tails of its open objects. [`LivePlayer`] decides *when*
//! to call again:
//!
//! * **Notifications**: it watches the journal header (every header mutation notifies it: tag
//!   allocation, `active_set` moves, commit positions) and the data objects of the active set
//!   (journal-client's recorder notifies those after each append where notifications are
//!   cheap). Any notification wakes it at once, so new entries are seen within a millisecond.
//! * **Polling**: without a notification it re-reads after [`LiveOptions::poll_age`]. Ceph's
//!   rbd-mirror polls every 5 s (`rbd_mirror_journal_poll_age`) and does not use watches for
//!   data; rbdj defaults to 10 ms because re-reading a few object tails is cheap on its stores
//!   and a [`object_store_trait::ObjectStore`] may not carry notifications across processes
//!   (`DirStore` between processes). Set it to 5 s for Ceph's behaviour when the writer's
//!   notifications are known to arrive.
//! * **Idle backoff**: each re-read that finds nothing new (and was not woken by a
//!   notification) doubles the interval, up to [`LiveOptions::idle_poll_age_max`]; the next
//!   entry or notification resets it to `poll_age`. While entries flow the player re-reads every
//!   `poll_age`; an idle journal costs a wake-up per `idle_poll_age_max` instead of per
//!   `poll_age` (one agent mirroring 100 idle images spent a third of a core on 100 wake-ups
//!   per second each; with the backoff, 5 %: `docs/bench/scaling.md`).
//! * On each wake it re-reads the header's `active_set` ([`Player::refresh`]) and asks whether a
//!   tag newer than the active one exists ([`Player::mark_newer_tag_exists`]), so an epoch that
//!   ended without more entries at the current offset is finished (§10.4 step 3). Where the
//!   store's notifications are complete ([`object_store_trait::ObjectStore::notifications_complete`]:
//!   every header change reaches the watch), [`LivePlayer::try_next`] re-reads the header only
//!   when it was notified, and otherwise at most every [`LiveOptions::header_poll_age`] as a
//!   safety net: an idle image then costs one data-object read per poll instead of three reads
//!   (`replay-engine/tests/live_player.rs` counts them). Where notifications are also cheap,
//!   journal-client's recorder notifies every append, so the idle backoff goes on up to
//!   `header_poll_age`: an idle image is then read once every 5 s (Ceph's
//!   `rbd_mirror_journal_poll_age`), not ten times a second.
//!
//! Memory stays within the [`Player`]'s prefetch budget whatever the backlog.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select};
use journal_core::header::{JournalHeader, ObjectSetPosition};
use journal_core::layout::data_oid;
use journal_core::player::{
    JournalInfo, PlayMode, Player, PlayerEvent, PlayerOptions, ReplayEntry,
};
use object_store_trait::{Notification, Waker, Watch};

use crate::error::Result;

/// Settings of a [`LivePlayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveOptions {
    /// Re-read interval when no notification arrives. Default 10 ms (Ceph: 5 s).
    pub poll_age: Duration,
    /// Bound on bytes fetched but not yet delivered. Default 16 MiB (the player's default).
    pub prefetch_bytes_max: u64,
    /// Whether to watch the header and data objects. Default `true`; with `false` the player
    /// only polls.
    pub use_notifications: bool,
    /// Longest re-read interval the idle backoff reaches (see the module docs). Default 100 ms;
    /// a value not above `poll_age` turns the backoff off. Where the store's notifications are
    /// complete and cheap (writers notify every append), the backoff goes on up to
    /// `header_poll_age`.
    pub idle_poll_age_max: Duration,
    /// Where the store's notifications are complete, how often [`LivePlayer::try_next`]
    /// re-reads the header without a header notification (a safety net for a lost one; a
    /// missed set or tag change is then seen this much later). Default 5 s, Ceph's
    /// `rbd_mirror_journal_poll_age`, which is also the longest an idle image waits between
    /// reads there. Elsewhere the header is re-read on every poll.
    pub header_poll_age: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            poll_age: Duration::from_millis(10),
            prefetch_bytes_max: journal_core::player::DEFAULT_PREFETCH_BYTES_MAX,
            use_notifications: true,
            idle_poll_age_max: Duration::from_millis(100),
            header_poll_age: Duration::from_secs(5),
        }
    }
}

/// A [`Player`] in live mode plus the watch/poll driver. See the module docs.
#[derive(Debug)]
pub struct LivePlayer {
    header: JournalHeader,
    client_id: String,
    player: Player,
    options: LiveOptions,
    header_watch: Option<Watch>,
    data_watches: Vec<Watch>,
    watched_set: Option<u64>,
    info: JournalInfo,
    /// Number of wake-ups caused by notifications (for tests and measurements).
    notified_wakes: u64,
    /// The current re-read interval: `poll_age`, doubled by each empty re-read up to
    /// `idle_poll_age_max`.
    current_poll: Duration,
    /// For [`LivePlayer::try_next`]: the player answered `End` and is not re-read before this
    /// instant unless a notification arrives.
    next_poll: Option<Instant>,
    /// Header notifications reach this player whoever changes the header (the store's
    /// notifications are complete and this player watches): polls need not re-read it.
    header_notified_reliably: bool,
    /// When the header was last re-read.
    header_read_at: Instant,
    /// Header notifications seen by [`LivePlayer::try_next`] (a counter the replayer compares).
    header_changes: u64,
    /// A header notification was drained while the player was still reading: the metadata is
    /// re-read before the player settles at the end.
    header_stale: bool,
    /// Appends are notified too: notifications are complete and cheap on this store, where
    /// journal-client's recorder notifies every data object it appends to. The idle backoff
    /// then goes up to `header_poll_age`.
    appends_notified: bool,
    /// Installed by [`LivePlayer::set_waker`] on every watch, those made later included.
    waker: Option<Waker>,
}

impl LivePlayer {
    /// A live player over `header`'s journal, reading as client `client_id` (which must be
    /// registered: the newer-tag check lists tags as that client) from `start`.
    pub fn new(
        header: JournalHeader,
        client_id: &str,
        start: &ObjectSetPosition,
        options: LiveOptions,
    ) -> Result<LivePlayer> {
        let imm = header.get_immutable_metadata()?;
        let layout = imm
            .layout()
            .map_err(|e| crate::ReplayError::Invalid(e.to_string()))?;
        let active_set = header.get_active_set()?;
        let info = JournalInfo {
            journal_id: header.journal_id().to_owned(),
            pool_id_for_names: header.name_pool_id(),
            layout,
            active_set,
        };
        let player = Player::new(
            Arc::clone(header.store()),
            info.clone(),
            start,
            PlayerOptions {
                prefetch_bytes_max: options.prefetch_bytes_max,
                max_fetch_bytes: None,
                mode: PlayMode::Live,
            },
        );
        let header_watch = if options.use_notifications {
            Some(header.watch()?)
        } else {
            None
        };
        let store = header.store();
        let header_notified_reliably = header_watch.is_some() && store.notifications_complete();
        let appends_notified = header_notified_reliably && store.notify_is_cheap();
        let mut live = LivePlayer {
            header,
            client_id: client_id.to_owned(),
            player,
            options,
            header_watch,
            data_watches: Vec::new(),
            watched_set: None,
            info,
            notified_wakes: 0,
            current_poll: options.poll_age,
            next_poll: None,
            header_notified_reliably,
            header_read_at: Instant::now(),
            header_changes: 0,
            header_stale: false,
            appends_notified,
            waker: None,
        };
        live.watch_data_objects(active_set)?;
        Ok(live)
    }

    /// The next entry, waiting up to `max_wait` for one to be appended. `Ok(None)` if none
    /// arrived in time (the caller checks for stop requests and does periodic work, then calls
    /// again).
    pub fn next_timeout(&mut self, max_wait: Duration) -> Result<Option<ReplayEntry>> {
        let deadline = Instant::now() + max_wait;
        loop {
            if let Some(e) = self.read_next()? {
                return Ok(Some(e));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = self.current_poll.min(deadline - now);
            if self.wait_for_change(wait) {
                self.notified_wakes += 1;
                self.current_poll = self.options.poll_age;
            } else if wait == self.current_poll {
                // A full interval passed with nothing new: back off.
                self.back_off();
            }
            self.refresh_metadata()?;
        }
    }

    /// The next entry without blocking: the non-blocking form of [`LivePlayer::next_timeout`]
    /// for callers that wait on many players at once (the agent's replay threads). After the
    /// player reached the end of the journal it is re-read only once a notification arrived on
    /// one of [`LivePlayer::receivers`] or [`LivePlayer::next_poll`] has passed, with the same
    /// idle backoff as `next_timeout`. `Ok(None)`: nothing new now.
    pub fn try_next(&mut self) -> Result<Option<ReplayEntry>> {
        // Drain every watch on every call, reading or not: a caller driven by wakers (arm the
        // watches, then step) must never leave a notification behind in a channel, since a
        // notification that is already queued rings no waker.
        let header = self.header_watch.as_ref().is_some_and(|w| w.drain() > 0);
        let mut data = false;
        for w in &self.data_watches {
            data |= w.drain() > 0;
        }
        if header {
            self.header_changes += 1;
            self.header_stale = true;
        }
        if let Some(due) = self.next_poll {
            let poll = Instant::now() >= due;
            if header || data || self.header_stale {
                self.notified_wakes += 1;
                self.current_poll = self.options.poll_age;
            } else if poll {
                self.back_off();
            } else {
                return Ok(None);
            }
            self.next_poll = None;
            // Appends alone (data objects notified, the header not) leave `active_set` and the
            // tags as they were: re-reading the tails below finds the entries. A set or tag
            // change mutates the header, which notifies.
            let header_due = !self.header_notified_reliably
                || self.header_read_at.elapsed() >= self.options.header_poll_age;
            if self.header_stale || (poll && header_due) {
                self.refresh_metadata()?;
            }
        }
        let mut next = self.read_next()?;
        if next.is_none() && self.header_stale {
            // The header changed while the player was reading: look before settling.
            self.refresh_metadata()?;
            next = self.read_next()?;
        }
        if next.is_none() {
            self.next_poll = Some(Instant::now() + self.current_poll);
        }
        Ok(next)
    }

    /// Reads the next entry if one is there (an entry resets the poll interval).
    fn read_next(&mut self) -> Result<Option<ReplayEntry>> {
        match self
            .player
            .next()
            .map_err(|e| crate::ReplayError::Player(e.to_string()))?
        {
            PlayerEvent::Entry(e) => {
                self.current_poll = self.options.poll_age;
                Ok(Some(e))
            }
            PlayerEvent::End => Ok(None),
        }
    }

    /// Doubles the poll interval after an idle one, up to `idle_poll_age_max`.
    fn back_off(&mut self) {
        let max = if self.appends_notified {
            self.options
                .idle_poll_age_max
                .max(self.options.header_poll_age)
        } else {
            self.options.idle_poll_age_max
        }
        .max(self.options.poll_age);
        self.current_poll = self.current_poll.saturating_mul(2).min(max);
    }

    /// When [`LivePlayer::try_next`] re-reads the journal without a notification; `None` while
    /// it has not reached the end (the next call reads at once).
    pub fn next_poll(&self) -> Option<Instant> {
        self.next_poll
    }

    /// The channels whose notifications make [`LivePlayer::try_next`] re-read before
    /// [`LivePlayer::next_poll`] (header and active-set data objects); empty while it has not
    /// reached the end or without notifications.
    pub fn receivers(&self) -> Vec<&Receiver<Notification>> {
        if self.next_poll.is_none() {
            return Vec::new();
        }
        self.watches().map(Watch::receiver).collect()
    }

    /// Runs `waker` when a notification reaches one of the player's watches (the header, the
    /// active set's data objects, and those of later sets), once per arming: the caller
    /// re-arms with [`LivePlayer::arm_wakers`] before it next steps the player. For callers
    /// that serve many players from one thread without scanning their channels (the agent's
    /// replay threads). A notification already pending runs it at once.
    pub fn set_waker(&mut self, waker: Waker) {
        for w in self.watches() {
            w.set_waker(waker.clone());
        }
        self.waker = Some(waker);
    }

    /// Arms the watches' waker again; returns whether notifications are pending (the step
    /// that follows drains them).
    pub fn arm_wakers(&self) -> bool {
        self.watches().fold(false, |pending, w| w.arm() | pending)
    }

    /// The header watch and the active set's data-object watches.
    fn watches(&self) -> impl Iterator<Item = &Watch> {
        self.header_watch.iter().chain(self.data_watches.iter())
    }

    /// The underlying player (active tag, buffered bytes).
    pub fn player(&self) -> &Player {
        &self.player
    }

    /// Whether every change of the journal header reaches this player as a notification (the
    /// store's notifications are complete and the player watches the header).
    pub fn header_notified_reliably(&self) -> bool {
        self.header_notified_reliably
    }

    /// How many header notifications [`LivePlayer::try_next`] has seen: a caller that compares
    /// it between calls learns that the header changed (a commit position, a client's state, a
    /// tag) without reading it.
    pub fn header_changes(&self) -> u64 {
        self.header_changes
    }

    /// How many waits ended because of a notification rather than the poll interval.
    pub fn notified_wakes(&self) -> u64 {
        self.notified_wakes
    }

    /// Re-reads `active_set` and the newer-tag check, passing both to the player.
    fn refresh_metadata(&mut self) -> Result<()> {
        self.header_read_at = Instant::now();
        self.header_stale = false;
        let active_set = self.header.get_active_set()?;
        if active_set > self.info.active_set {
            self.info.active_set = active_set;
            self.player.refresh(active_set);
            self.watch_data_objects(active_set)?;
        }
        if let Some(tag) = self.player.active_tag() {
            if self.header.newer_tag_exists(&self.client_id, tag)? {
                self.player.mark_newer_tag_exists();
            }
        }
        Ok(())
    }

    /// Watches the W data objects of `set` (replacing the previous set's watches).
    fn watch_data_objects(&mut self, set: u64) -> Result<()> {
        if !self.options.use_notifications || self.watched_set == Some(set) {
            return Ok(());
        }
        let store = Arc::clone(self.header.store());
        let mut watches = Vec::new();
        for n in self.info.layout.objects_in_set(set) {
            let oid = data_oid(self.info.pool_id_for_names, &self.info.journal_id, n);
            let watch = store.watch(&oid)?;
            if let Some(waker) = &self.waker {
                watch.set_waker(waker.clone());
            }
            watches.push(watch);
        }
        self.data_watches = watches;
        self.watched_set = Some(set);
        Ok(())
    }

    /// Blocks until a notification arrives on any watch or `wait` passes; drains every pending
    /// notification. Returns whether a notification ended the wait.
    fn wait_for_change(&mut self, wait: Duration) -> bool {
        let receivers: Vec<_> = self.watches().map(Watch::receiver).collect();
        let woke = wait_ready(&receivers, wait);
        for r in &receivers {
            while r.try_recv().is_ok() {}
        }
        woke
    }
}

/// Blocks until one of `receivers` has a message (left in place) or `timeout` passes; sleeps
/// the whole `timeout` without receivers. Returns whether a message ended the wait.
pub(crate) fn wait_ready(receivers: &[&Receiver<Notification>], timeout: Duration) -> bool {
    if receivers.is_empty() {
        std::thread::sleep(timeout);
        return false;
    }
    let mut sel = Select::new();
    for r in receivers {
        sel.recv(r);
    }
    sel.ready_timeout(timeout).is_ok()
}
