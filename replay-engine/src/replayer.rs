//! The replayer: applies a remote (primary) journal to a local replica image (spec §13.2).
//!
//! * Entries come from a [`LivePlayer`] reading the remote journal as the mirror-peer client
//!   (id = the local site's mirror uuid), starting after that client's commit position.
//! * Every entry gets a commit tid from a [`CommitTracker`] (with the remote object number it was
//!   read from). Events go to an [`EventSink`] (the apply engine); it reports an entry applied
//!   only once the replica image was **flushed** after applying it. Only then is the commit tid
//!   marked committed, and the folded position is written to the remote header every
//!   [`ReplayerOptions::commit_interval`] (and at shutdown). A crash therefore never skips an
//!   event: at worst applied events are applied again, which IO events tolerate.
//! * The replica is flushed every [`ReplayerOptions::flush_every_entries`] applied IO events, on
//!   `AioFlush`, every [`ReplayerOptions::flush_interval`] while events are pending, and when
//!   replay stops.
//! * **Tag changes**: when an entry carries a new remote tag, pending IO is flushed and a local
//!   tag is allocated in the replica journal's class with the owner uuids mapped
//!   ([`crate::tag_chain::map_remote_tag`]), unless the local current tag already is that
//!   mapping. A remote `<orphan>` tag (the primary was demoted) is copied, its entry
//!   acknowledged, and replay ends with [`ReplayEnd::RemoteDemoted`].
//! * After each commit write the replayer runs the remote journal's trimmer, so the primary's
//!   object sets go once every peer has committed past them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use journal_core::commit::{CommitTid, CommitTracker};
use journal_core::encoding::Decode;
use journal_core::event::{Event, EventEntry};
use journal_core::header::{ClientState, JournalHeader};
use journal_core::player::ReplayEntry;
use journal_core::tag_data::TagData;
use object_store_trait::Notification;
use parking_lot::Mutex;

use crate::applier::EventSink;
use crate::error::{ReplayError, Result};
use crate::image_journal;
use crate::image_sync;
use crate::live_player::{wait_ready, LivePlayer};
use crate::status::{ImageState, ImageStatus, RateMeter};
use crate::sync_mark::{self, SyncMark};
use crate::tag_chain;

pub use crate::replayer_options::{AppliedHook, ReplayerOptions};

/// Why [`Replayer::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEnd {
    /// The stop flag was raised.
    Stopped,
    /// The remote image was demoted; its demotion was copied.
    RemoteDemoted,
    /// The local image was promoted.
    LocalPromoted,
    /// A resync of the local image was requested.
    ResyncRequested,
    /// The mirror client was disconnected from the remote journal.
    Disconnected,
}

/// What one [`Replayer::step`] left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It stopped after its entry budget with more possibly waiting: call again soon.
    Busy,
    /// Nothing to do before this instant unless a notification arrives on one of
    /// [`Replayer::receivers`].
    Idle(Instant),
    /// Replay ended; call [`Replayer::finish`].
    End(ReplayEnd),
}

/// Entries one [`Replayer::step`] handles at most: [`Replayer::run`]'s granularity between looks
/// at the stop flag and its timers, and the agent's turn per image on a replay thread.
pub(crate) const STEP_ENTRIES: usize = 64;

/// Identifies the two journals a replayer links.
#[derive(Debug, Clone)]
pub struct ReplayLink {
    /// The remote (primary) image's journal.
    pub remote_header: JournalHeader,
    /// The local (replica) image's journal.
    pub local_header: JournalHeader,
    /// The local site's mirror uuid (our client id on the remote journal).
    pub local_uuid: String,
    /// The remote site's mirror uuid.
    pub remote_uuid: String,
}

/// Applies a remote journal to a local replica. See the module docs.
pub struct Replayer {
    link: ReplayLink,
    options: ReplayerOptions,
    live: LivePlayer,
    tracker: CommitTracker,
    sink: Box<dyn EventSink>,
    status: Arc<Mutex<ImageStatus>>,
    meter: RateMeter,
    remote_tag: Option<u64>,
    last_flush: Instant,
    last_commit: Instant,
    last_check: Instant,
    last_behind_check: Instant,
    last_entry: Option<(u64, u64)>,
    dirty_commit: bool,
    /// Watch on the local journal header: a role change (tag allocation) or resync request
    /// notifies it, and the replayer re-checks before applying the next entry.
    local_watch: Option<object_store_trait::Watch>,
    /// The replica's consistency mark ([`crate::sync_mark`]): the replica is consistent only
    /// once the entry it names is applied and flushed.
    mark: Option<SyncMark>,
    /// Whether the first [`Replayer::step`] (role check, initial state) ran.
    started: bool,
    /// Since when the journal has had nothing new (for the caught-up report).
    idle_since: Option<Instant>,
    /// Both journal headers notify every change to this replayer (complete notifications on
    /// both stores, both watched): while caught up, the role and lag checks then run on a
    /// notification and otherwise only every `live.header_poll_age`.
    quiet_when_idle: bool,
    /// [`LivePlayer::header_changes`] at the last check.
    seen_header_changes: u64,
    /// An entry read but held back by the replay delay, with its decoded event.
    delayed: Option<(ReplayEntry, EventEntry)>,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replayer")
            .field("link", &self.link)
            .field("remote_tag", &self.remote_tag)
            .finish_non_exhaustive()
    }
}

impl Replayer {
    /// A replayer starting after the mirror client's commit position on the remote journal.
    pub fn new(
        link: ReplayLink,
        sink: Box<dyn EventSink>,
        options: ReplayerOptions,
        status: Arc<Mutex<ImageStatus>>,
    ) -> Result<Replayer> {
        let client = link.remote_header.get_client(&link.local_uuid)?;
        let width = link.remote_header.get_immutable_metadata()?.splay_width;
        let live = LivePlayer::new(
            link.remote_header.clone(),
            &link.local_uuid,
            &client.commit_position,
            options.live,
        )?;
        let now = Instant::now();
        let local_watch = link.local_header.watch().ok();
        let quiet_when_idle = live.header_notified_reliably()
            && local_watch.is_some()
            && link.local_header.store().notifications_complete();
        let local_store = link.local_header.store().as_ref();
        let local_id = link.local_header.journal_id();
        let mut mark = sync_mark::get(local_store, local_id)?;
        if mark == Some(SyncMark::Copying) {
            // The sync finished (its client replays) but stopped before recording its bound:
            // any bound taken now is as good (see sync_mark).
            mark = image_sync::mark_copy_complete(
                &link.remote_header,
                &link.local_uuid,
                &link.local_header,
            )?;
        }
        if let (Some(m), Some(p)) = (mark, client.commit_position.first()) {
            // Committed entries were applied and flushed before their commit.
            if m.passed_by((p.tag_tid, p.entry_tid)) {
                sync_mark::clear(local_store, local_id)?;
                mark = None;
            }
        }
        Ok(Replayer {
            mark,
            local_watch,
            tracker: CommitTracker::new(width, client.commit_position),
            link,
            options,
            live,
            sink,
            status,
            meter: RateMeter::default(),
            remote_tag: None,
            last_flush: now,
            last_commit: now,
            last_check: now,
            last_behind_check: now,
            last_entry: None,
            dirty_commit: false,
            started: false,
            idle_since: None,
            quiet_when_idle,
            seen_header_changes: 0,
            delayed: None,
        })
    }

    /// Replays until `stop` is raised or the situation changes (see [`ReplayEnd`]). Flushes
    /// and commits what was applied before returning, also on error where possible.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<ReplayEnd> {
        let result = self.run_inner(stop);
        let flushed = self.flush_and_commit(true);
        match (result, flushed) {
            (Ok(end), Ok(())) => Ok(end),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }

    fn run_inner(&mut self, stop: &AtomicBool) -> Result<ReplayEnd> {
        loop {
            match self.step(stop, STEP_ENTRIES)? {
                Step::Busy => {}
                Step::Idle(until) => self.wait(until),
                Step::End(end) => return Ok(end),
            }
        }
    }

    /// Blocks until `until` or a notification on [`Replayer::receivers`].
    fn wait(&self, until: Instant) {
        let timeout = until.saturating_duration_since(Instant::now());
        // Readiness only: the step that follows drains the channels it acts on.
        wait_ready(&self.receivers(), timeout);
    }

    /// Does at most `max_entries` entries' worth of replay without blocking on the journal:
    /// the non-blocking form of [`Replayer::run`] for callers that drive many replayers from a
    /// few threads (the agent). After [`Step::End`] the caller calls [`Replayer::finish`]; on
    /// an error too, where possible.
    pub fn step(&mut self, stop: &AtomicBool, max_entries: usize) -> Result<Step> {
        if !self.started {
            self.started = true;
            // The local watch exists since `new`: a role change before it was registered
            // (after bootstrap looked at the roles) is only visible by checking now.
            if let Some(end) = self.check_roles()? {
                return Ok(Step::End(end));
            }
            match self.mark {
                None => self.set_state(ImageState::Replaying, ""),
                Some(m) => self.set_state(ImageState::Syncing, &m.to_string()),
            }
        }
        for _ in 0..max_entries.max(1) {
            if stop.load(Ordering::Relaxed) {
                return Ok(Step::End(ReplayEnd::Stopped));
            }
            let local_changed = self.local_watch.as_ref().is_some_and(|w| w.drain() > 0);
            let remote_changed = self.live.header_changes() != self.seen_header_changes;
            if local_changed || remote_changed || self.last_check.elapsed() >= self.check_every() {
                self.seen_header_changes = self.live.header_changes();
                self.last_check = Instant::now();
                if let Some(end) = self.check_roles()? {
                    return Ok(Step::End(end));
                }
            }
            let next = match self.delayed.take() {
                Some(held) => Some(held),
                None => match self.live.try_next()? {
                    Some(re) => {
                        let event = EventEntry::from_bytes(re.entry.data.clone())?;
                        Some((re, event))
                    }
                    None => None,
                },
            };
            match next {
                Some((re, event)) => {
                    if let Some(due) = self.delay_due(&event) {
                        // Held back by the replay delay: keep it and wait.
                        self.delayed = Some((re, event));
                        self.periodic()?;
                        return Ok(Step::Idle(due.min(self.next_deadline())));
                    }
                    self.idle_since = None;
                    if let Some(end) = self.handle_entry(re, event)? {
                        return Ok(Step::End(end));
                    }
                }
                None => {
                    if self.live.header_changes() != self.seen_header_changes {
                        // The remote header changed (seen while looking for entries): run the
                        // checks at the top of the loop before waiting.
                        continue;
                    }
                    // Nothing more in the journal: caught up once that held for a whole
                    // wait (the status keeps the last entry's lag until then).
                    let since = *self.idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.idle_wait() {
                        let mut st = self.status.lock();
                        st.entries_behind = 0;
                        st.seconds_behind = 0.0;
                        drop(st);
                        self.last_behind_check = Instant::now();
                    }
                    self.periodic()?;
                    return Ok(Step::Idle(self.next_deadline()));
                }
            }
            self.periodic()?;
        }
        Ok(Step::Busy)
    }

    /// Flushes what was applied and writes the commit position: the end of a replay, after
    /// [`Step::End`] or an error.
    pub fn finish(&mut self) -> Result<()> {
        self.flush_and_commit(true)
    }

    /// The channels whose notifications mean [`Replayer::step`] has work before the instant
    /// its [`Step::Idle`] named: the local journal header (role changes, resync requests) and,
    /// once caught up, the live player's watches.
    pub fn receivers(&self) -> Vec<&Receiver<Notification>> {
        let mut out = self.live.receivers();
        if let Some(w) = &self.local_watch {
            out.push(w.receiver());
        }
        out
    }

    /// Runs `waker` when a notification reaches one of [`Replayer::receivers`] (or a watch the
    /// live player makes later), once per arming: the caller re-arms with
    /// [`Replayer::arm_wakers`] before each [`Replayer::step`]. See
    /// [`LivePlayer::set_waker`].
    pub fn set_waker(&mut self, waker: object_store_trait::Waker) {
        if let Some(w) = &self.local_watch {
            w.set_waker(waker.clone());
        }
        self.live.set_waker(waker);
    }

    /// Arms the watches' waker again; returns whether notifications are pending.
    pub fn arm_wakers(&self) -> bool {
        let local = self.local_watch.as_ref().is_some_and(|w| w.arm());
        self.live.arm_wakers() | local
    }

    /// How long the journal must stay empty before the status reports "caught up".
    fn idle_wait(&self) -> Duration {
        self.options.check_interval.min(self.options.flush_interval)
    }

    /// How often the role and lag checks run: every `check_interval`, or, while caught up
    /// where both headers notify every change, every `live.header_poll_age` (a notification
    /// runs them at once).
    fn check_every(&self) -> Duration {
        if self.quiet_when_idle && self.idle_since.is_some() {
            self.options
                .check_interval
                .max(self.options.live.header_poll_age)
        } else {
            self.options.check_interval
        }
    }

    /// The earliest instant periodic work (role checks, flush, commit, re-read) is due.
    fn next_deadline(&self) -> Instant {
        let check = self.check_every();
        let mut due = (self.last_check + check).min(self.last_behind_check + check);
        if let Some(since) = self.idle_since {
            let report = since + self.idle_wait();
            if report > Instant::now() {
                due = due.min(report);
            }
        }
        if let Some(poll) = self.live.next_poll() {
            due = due.min(poll);
        }
        if self.sink.unflushed() > 0 {
            due = due.min(self.last_flush + self.options.flush_interval);
        }
        if self.dirty_commit {
            due = due.min(self.last_commit + self.options.commit_interval);
        }
        due
    }

    /// Flushes on the interval and writes the commit position on its interval.
    fn periodic(&mut self) -> Result<()> {
        // One clock read for the three timers (this runs after every entry).
        let now = Instant::now();
        let since = |t: Instant| now.saturating_duration_since(t);
        if self.sink.unflushed() > 0 && since(self.last_flush) >= self.options.flush_interval {
            self.flush()?;
        }
        if self.dirty_commit && since(self.last_commit) >= self.options.commit_interval {
            self.write_commit()?;
        }
        if since(self.last_behind_check) >= self.check_every() {
            self.last_behind_check = Instant::now();
            if let Some(behind) = self.entries_behind() {
                self.status.lock().entries_behind = behind;
            }
        }
        let (eps, bps) = self.meter.rates();
        let mut st = self.status.lock();
        st.entries_per_second = eps;
        st.bytes_per_second = bps;
        Ok(())
    }

    fn handle_entry(&mut self, re: ReplayEntry, event: EventEntry) -> Result<Option<ReplayEnd>> {
        let tag_tid = re.entry.tag_tid;
        let entry_tid = re.entry.entry_tid;
        let mut demoted = false;
        if self.local_watch.as_ref().is_some_and(|w| w.drain() > 0) {
            self.last_check = Instant::now();
            if let Some(end) = self.check_roles()? {
                return Ok(Some(end));
            }
        }
        // A role marker carries no data: if it is the last entry the image sync may have
        // copied, the replica is consistent before the tag change makes its role visible.
        if matches!(event.event, Event::DemotePromote)
            && self.mark.is_some_and(|m| m.passed_by((tag_tid, entry_tid)))
        {
            self.reach_consistency()?;
        }
        if self.remote_tag != Some(tag_tid) {
            demoted = self.change_tag(tag_tid)?;
            self.remote_tag = Some(tag_tid);
        }
        let token = self.tracker.allocate(re.object_number, tag_tid, entry_tid);
        let bytes = re.entry.data.len() as u64;
        let is_flush = matches!(event.event, Event::AioFlush);
        let lag = lag_of(&event);
        let done = self.sink.apply(event.event.clone(), token)?;
        self.mark_committed(done)?;
        if let Some(hook) = &self.options.on_applied {
            hook(&event);
        }
        self.meter.record(1, bytes);
        self.last_entry = Some((tag_tid, entry_tid));
        // One lock per entry for both fields.
        let mut st = self.status.lock();
        if let Some(lag) = lag {
            st.seconds_behind = lag;
        }
        st.entries_applied += 1;
        drop(st);
        if is_flush || self.sink.unflushed() >= self.options.flush_every_entries {
            self.flush()?;
        }
        if self.mark.is_some_and(|m| m.passed_by((tag_tid, entry_tid))) {
            self.reach_consistency()?;
        }
        if demoted {
            self.flush_and_commit(true)?;
            return Ok(Some(ReplayEnd::RemoteDemoted));
        }
        Ok(None)
    }

    /// The replica just applied the last entry its image sync may have copied: make that
    /// durable, then drop the mark. From here on the replica is a prefix of the primary.
    fn reach_consistency(&mut self) -> Result<()> {
        self.flush()?;
        let header = &self.link.local_header;
        sync_mark::clear(header.store().as_ref(), header.journal_id())?;
        self.mark = None;
        self.set_state(ImageState::Replaying, "");
        Ok(())
    }

    /// Handles a new remote tag; returns whether it is the remote's demotion.
    fn change_tag(&mut self, tag_tid: u64) -> Result<bool> {
        self.flush()?;
        let remote = self.link.remote_header.get_tag(tag_tid)?;
        let remote_data = TagData::from_bytes(remote.data)?;
        let mapped =
            tag_chain::map_remote_tag(&remote_data, &self.link.local_uuid, &self.link.remote_uuid);
        let (_, local_current) = image_journal::current_tag(&self.link.local_header)?;
        if local_current != mapped {
            if local_current.is_local_primary() {
                return Err(ReplayError::WrongRole {
                    name: self.link.local_header.journal_id().to_owned(),
                    detail: "local image is primary".into(),
                });
            }
            image_journal::allocate_image_tag(&self.link.local_header, &mapped)?;
        }
        Ok(remote_data.is_orphan())
    }

    /// When `event` may be applied, if the replay delay still holds it back.
    fn delay_due(&self, event: &EventEntry) -> Option<Instant> {
        if self.options.replay_delay.is_zero() || event.timestamp.is_zero() {
            return None;
        }
        let due = event.timestamp.as_duration() + self.options.replay_delay;
        let now = wall_clock();
        (now < due).then(|| Instant::now() + (due - now))
    }

    /// Entry-tid distance to the primary image client's newest committed entry (same tag), or
    /// that entry's tid + 1 when the primary is on a newer tag.
    fn entries_behind(&self) -> Option<u64> {
        let primary = image_journal::image_commit_position(&self.link.remote_header).ok()?;
        let p = primary.first()?;
        Some(match self.last_entry {
            Some((tag, entry)) if tag == p.tag_tid => p.entry_tid.saturating_sub(entry),
            Some((tag, _)) if tag > p.tag_tid => 0,
            _ => p.entry_tid + 1,
        })
    }

    fn mark_committed(&mut self, done: Vec<CommitTid>) -> Result<()> {
        for tid in done {
            self.tracker
                .committed(tid)
                .map_err(|e| ReplayError::Invalid(e.to_string()))?;
            self.dirty_commit = true;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let done = self.sink.flush()?;
        self.last_flush = Instant::now();
        self.mark_committed(done)
    }

    fn flush_and_commit(&mut self, force: bool) -> Result<()> {
        self.flush()?;
        if self.dirty_commit || force {
            self.write_commit()?;
        }
        Ok(())
    }

    fn write_commit(&mut self) -> Result<()> {
        self.last_commit = Instant::now();
        self.dirty_commit = false;
        if let Some(position) = self.tracker.take_if_changed() {
            self.link
                .remote_header
                .client_commit(&self.link.local_uuid, &position)?;
            self.link.remote_header.trim()?;
            // Our own commit notified the header, and the player re-reads its metadata for it
            // (two reads per commit). Draining that notification here instead could swallow a
            // change someone else notified at the same moment (a set rollover), which the
            // player would then only see at its next safety-net poll.
        }
        Ok(())
    }

    /// Local promotion, resync request, remote disconnection.
    fn check_roles(&mut self) -> Result<Option<ReplayEnd>> {
        let (_, local) = image_journal::current_tag(&self.link.local_header)?;
        if local.is_local_primary() {
            return Ok(Some(ReplayEnd::LocalPromoted));
        }
        if image_journal::image_client_meta(&self.link.local_header)?.resync_requested {
            return Ok(Some(ReplayEnd::ResyncRequested));
        }
        let client = self.link.remote_header.get_client(&self.link.local_uuid)?;
        if client.state == ClientState::Disconnected {
            return Ok(Some(ReplayEnd::Disconnected));
        }
        Ok(None)
    }

    fn set_state(&self, state: ImageState, description: &str) {
        let mut st = self.status.lock();
        st.state = state;
        st.description = description.to_owned();
    }

    /// The live player's count of notification-driven wake-ups.
    pub fn notified_wakes(&self) -> u64 {
        self.live.notified_wakes()
    }
}

/// Seconds from `event`'s timestamp to now, if it has one.
fn lag_of(event: &EventEntry) -> Option<f64> {
    (!event.timestamp.is_zero()).then(|| {
        wall_clock()
            .saturating_sub(event.timestamp.as_duration())
            .as_secs_f64()
    })
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
