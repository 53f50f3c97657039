//! [`Recorder`]: the journal's writer (Ceph's `JournalRecorder`).
//!
//! Entries are appended under one tag with consecutive entry tids starting at 0; the entry with
//! tid `e` goes to splay offset `e mod W`, object `set * W + offset` of the current set (§6.1).
//!
//! # Threads and group commit
//!
//! Appenders only frame the entry and queue it on its splay offset (under the state mutex, no
//! I/O). Sending is leader/follower: a thread that waits for an entry
//! ([`AppendFuture::wait`], [`Recorder::flush`]) sends, itself, the queue of any object whose
//! front is due and which has no append in flight — everything ready that fits the object, as
//! **one** `ObjectStore::append` — and otherwise sleeps until an append completes. Whatever
//! arrives while an append is in flight goes into the next one, so many small appends from many
//! threads become few large store appends, a lone writer never hands off to another thread, and
//! each object has at most one append in flight (which keeps its entries in tid order).
//!
//! On a slow store (appends averaging more than 30 µs, e.g. a disk with `fdatasync`), a waiter
//! that starts an append also wakes the workers of the other objects with due entries, so the
//! appends of a multi-entry request (a 64 KiB write is four entries on four objects) run
//! concurrently instead of one after another behind the waiter.
//!
//! One worker thread per splay offset covers what no waiter does: batches that reach a
//! batching threshold (`flush_interval`, `flush_bytes`, also in writethrough mode), `flush_age`
//! timers, [`AppendFuture::flush`] without a wait, set rollover and the final drain at shutdown.
//! An entry nobody waits for and no threshold covers is sent at the next flush or shutdown.
//!
//! # Durability watermark
//!
//! `durable_through` is the smallest entry tid not yet known durable with all earlier ones; an
//! [`AppendFuture`] completes when the watermark passes it. The first failure is latched: no
//! entry at or after it ever completes, queued entries are dropped, and every later append is
//! refused with [`RecorderError::Poisoned`] until the journal is reopened.
//!
//! # Set rollover (§6.2, §6.3)
//!
//! A worker tracks the bytes it put into its current object. When an entry would pass the soft
//! limit `2^order`, or the store refuses an append with `Overflow` (bytes the writer did not
//! know about), the whole set closes: no worker starts a new append; once none is in flight, one
//! worker calls the `advance` hook (`set_active_set(s+1)` on the header, `-ESTALE` tolerated),
//! every queue is moved in order to the same splay offset of the new set, and the commit
//! bookkeeping of the moved entries is updated to their new object numbers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use journal_core::commit::{CommitTid, CommitTracker};
use journal_core::layout::data_oid;
use journal_core::Layout;
use object_store_trait::{AppendGuard, ObjectStore};
use parking_lot::{Condvar, Mutex};

mod sending;

use crate::append_future::AppendFuture;
use crate::error::RecorderError;
use crate::fence::append_guard;
use crate::object_recorder::{ObjectQueue, PendingEntry, SendPolicy};
use crate::prepared_entry::PreparedEntry;
use crate::settings::JournalSettings;
use sending::{close_at, help, wake_due_workers, worker};

/// Number of condition variables waiters are spread over.
const DONE_BUCKETS: usize = 64;

/// Called (from a worker thread, with no lock held) to move the header's active set to the given
/// set. Must tolerate the header already being there (`-ESTALE`).
pub type AdvanceHook = Arc<dyn Fn(u64) -> Result<(), RecorderError> + Send + Sync>;

/// Where and as whom a [`Recorder`] writes.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Journal id (the image id).
    pub journal_id: String,
    /// Pool id embedded in data object names.
    pub name_pool_id: i64,
    /// The journal's layout.
    pub layout: Layout,
    /// The writer's tag; entries get tids 0, 1, 2, ... under it.
    pub tag_tid: u64,
    /// The header's active set when appending starts.
    pub active_set: u64,
    /// Claim every object with the writer fence and guard every append with it (see
    /// [`crate::fence`]). Off only for tools that write without a writer tag.
    pub fenced: bool,
    /// Batching knobs and payload limit.
    pub settings: JournalSettings,
}

#[derive(Debug)]
struct State {
    next_tid: u64,
    set: u64,
    /// Set to move to at the next rollover (at least `set + 1`).
    min_next_set: u64,
    offsets: Vec<ObjectQueue>,
    durable_through: u64,
    in_flight_appends: usize,
    failed: Option<(u64, RecorderError)>,
    flush_target: u64,
    batching_enabled: bool,
    /// The current set is closing: entries with tids below this still go to it, the rest move
    /// to the next set.
    closing_at: Option<u64>,
    /// The tid each thread in `wait_durable` waits for (one element per thread, unordered:
    /// there are at most as many as threads, and a short vector is cheaper than a map).
    waiters: Vec<u64>,
    advancing: bool,
    shutdown: bool,
    /// Moving average of a store append's duration (decides whether a waiter hands the other
    /// due objects to their workers).
    append_nanos: u64,
    /// The data object ids of `set`, by splay offset (formatted once per set, not per append).
    oids: Vec<Arc<str>>,
}

/// State shared by the recorder, its workers and its futures.
pub(crate) struct Shared {
    store: Arc<dyn ObjectStore>,
    config: RecorderConfig,
    pub(crate) tag_tid: u64,
    advance: AdvanceHook,
    tracker: Arc<Mutex<CommitTracker>>,
    state: Mutex<State>,
    work: Vec<Condvar>,
    /// Waiters sleep on `done[tid % DONE_BUCKETS]` and are woken when the watermark passes
    /// their tid (or on failure / shutdown), not on every append completion.
    done: Vec<Condvar>,
    /// Notify each data object after an append to it, so live readers (a mirror agent's
    /// player watching the object) wake at once instead of at their next poll. Only where a
    /// notification is cheap ([`ObjectStore::notify_is_cheap`]).
    notify_appends: bool,
    /// The guard every data append carries (built once: it never changes).
    guard: AppendGuard,
    /// `State::durable_through`, readable without the lock: a future whose entry is below it
    /// is complete (the watermark only grows), so the applier and `poll` skip the state lock.
    durable: AtomicU64,
    /// Whether `State::failed` is set (it is never cleared), so the per-write health check
    /// skips the state lock.
    poisoned: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderShared")
            .field("journal_id", &self.config.journal_id)
            .field("tag_tid", &self.tag_tid)
            .finish_non_exhaustive()
    }
}

/// The journal writer. Dropping it sends everything queued, then stops the workers.
#[derive(Debug)]
pub struct Recorder {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Recorder {
    /// Starts a recorder (one worker thread per splay offset). `tracker` receives a commit record
    /// for every appended entry.
    pub fn start(
        store: Arc<dyn ObjectStore>,
        config: RecorderConfig,
        tracker: Arc<Mutex<CommitTracker>>,
        advance: AdvanceHook,
    ) -> Result<Recorder, RecorderError> {
        let width = usize::from(config.layout.splay_width.max(1));
        let batching_enabled = !config.settings.writethrough_until_flush;
        let oids = set_oids(&config, config.active_set);
        let limit = config.layout.soft_limit();
        let guard = if config.fenced {
            append_guard(config.tag_tid, limit)
        } else {
            AppendGuard::soft_max(limit)
        };
        let state = State {
            next_tid: 0,
            set: config.active_set,
            min_next_set: config.active_set.saturating_add(1),
            offsets: (0..width).map(|_| ObjectQueue::default()).collect(),
            durable_through: 0,
            in_flight_appends: 0,
            failed: None,
            flush_target: 0,
            batching_enabled,
            closing_at: None,
            waiters: Default::default(),
            advancing: false,
            shutdown: false,
            append_nanos: 0,
            oids,
        };
        let shared = Arc::new(Shared {
            notify_appends: store.notify_is_cheap(),
            guard,
            durable: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            store,
            tag_tid: config.tag_tid,
            config,
            advance,
            tracker,
            state: Mutex::new(state),
            work: (0..width).map(|_| Condvar::new()).collect(),
            done: (0..DONE_BUCKETS).map(|_| Condvar::new()).collect(),
        });
        let mut workers = Vec::with_capacity(width);
        for offset in 0..width {
            let s = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("rbdj-rec-{offset}"))
                .spawn(move || worker(&s, offset))
                .map_err(|e| RecorderError::Store {
                    op: "spawn worker",
                    detail: e.to_string(),
                    errno: -11,
                })?;
            workers.push(handle);
        }
        Ok(Recorder {
            shared,
            workers: Mutex::new(workers),
        })
    }

    /// Queues `payload` as the next entry. Never blocks on I/O. A payload of
    /// [`crate::prepared_entry::ZERO_COPY_MIN`] bytes or more is not copied: the entry keeps a
    /// reference to it until the store has it (and a store that keeps buffers, as `MemStore`,
    /// keeps it until the entry is trimmed).
    pub fn append(&self, payload: Bytes) -> Result<AppendFuture, RecorderError> {
        self.append_prepared(PreparedEntry::around(payload))
    }

    /// Queues an entry framed around its payload by [`PreparedEntry::encode`] (no copy). Never
    /// blocks on I/O.
    pub fn append_prepared(&self, prepared: PreparedEntry) -> Result<AppendFuture, RecorderError> {
        let (entry_tid, object_number, commit_tid) = self.append_entry(prepared)?;
        Ok(AppendFuture {
            shared: Arc::clone(&self.shared),
            entry_tid,
            object_number,
            commit_tid,
        })
    }

    /// [`Recorder::append_prepared`] without the future: the entry tid, its initial object
    /// number and its commit tid ([`Recorder::wait_entry`] waits for it). Spares the journaled
    /// image a reference count on the recorder per write, shared with its applier thread.
    pub(crate) fn append_entry(
        &self,
        prepared: PreparedEntry,
    ) -> Result<(u64, u64, CommitTid), RecorderError> {
        let s = &self.shared;
        let max = s
            .config
            .layout
            .max_payload(s.config.settings.max_payload_bytes);
        if prepared.payload_len() > max {
            return Err(RecorderError::TooLarge {
                len: prepared.payload_len(),
                max,
            });
        }
        // The payload's CRC outside the lock: only the entry tid's share is added under it.
        let checksummed = prepared.checksum(s.tag_tid);
        let mut st = s.state.lock();
        if let Some((_, e)) = &st.failed {
            return Err(RecorderError::Poisoned(Box::new(e.clone())));
        }
        if st.shutdown {
            return Err(RecorderError::Closed);
        }
        let tid = st.next_tid;
        st.next_tid += 1;
        let layout = s.config.layout;
        let offset = layout.splay_offset(tid);
        let object_number = layout.object_number(st.set, offset);
        let commit_tid = s.tracker.lock().allocate(object_number, s.tag_tid, tid);
        let bytes = checksummed.seal(tid);
        let settings = &s.config.settings;
        let entry = PendingEntry {
            entry_tid: tid,
            bytes,
            commit_tid,
            queued_at: settings.flush_age.map(|_| Instant::now()),
        };
        // Wake the worker only when it has something to decide: the queue reached a batching
        // threshold (also in writethrough mode, so entries nobody waits for still stream out),
        // or an age timer must start. Otherwise the entry is sent by whoever waits for it
        // (leader/follower group commit: no thread hand-off on the acknowledgement path).
        let thresholds = SendPolicy {
            force_below: st.flush_target,
            batching: true,
        };
        let wake = st.offsets.get_mut(usize::from(offset)).is_some_and(|q| {
            let first = q.queue.is_empty();
            q.push(entry);
            q.ready(settings, thresholds) || (first && settings.flush_age.is_some())
        });
        drop(st);
        if wake {
            if let Some(cv) = s.work.get(usize::from(offset)) {
                cv.notify_one();
            }
        }
        Ok((tid, object_number, commit_tid))
    }

    /// [`AppendFuture::wait`] for entry `entry_tid` of this recorder.
    pub(crate) fn wait_entry(&self, entry_tid: u64) -> Result<(), RecorderError> {
        self.shared.wait_durable(entry_tid)
    }

    /// Sends everything queued now and waits until it is durable.
    pub fn flush(&self) -> Result<(), RecorderError> {
        let target = self.shared.state.lock().next_tid;
        match target.checked_sub(1) {
            Some(last) => self.shared.wait_durable(last),
            None => self.failure().map_or(Ok(()), Err),
        }
    }

    /// Switches the batching knobs on (librbd does this at the first user flush when
    /// `writethrough_until_flush` is set).
    pub fn enable_batching(&self) {
        self.shared.state.lock().batching_enabled = true;
    }

    /// Tells the recorder that someone else advanced the header's active set to `set`: the
    /// current set closes and writing continues in `set` (§6.3, last paragraph).
    pub fn notice_active_set(&self, set: u64) {
        let mut st = self.shared.state.lock();
        if set > st.set {
            st.min_next_set = st.min_next_set.max(set);
            let at = st.next_tid;
            close_at(&mut st, at);
            drop(st);
            self.shared.notify_workers();
        }
    }

    /// The set currently appended to.
    pub fn active_set(&self) -> u64 {
        self.shared.state.lock().set
    }

    /// The tag entries are written under.
    pub fn tag_tid(&self) -> u64 {
        self.shared.tag_tid
    }

    /// The tid the next entry gets.
    pub fn next_entry_tid(&self) -> u64 {
        self.shared.state.lock().next_tid
    }

    /// The latched failure, if any.
    pub fn failure(&self) -> Option<RecorderError> {
        if !self.shared.poisoned.load(Ordering::Acquire) {
            return None;
        }
        self.shared
            .state
            .lock()
            .failed
            .as_ref()
            .map(|(_, e)| e.clone())
    }

    /// Sends everything queued, stops the workers and waits for them. Idempotent.
    pub fn shutdown(&self) {
        {
            let mut st = self.shared.state.lock();
            st.shutdown = true;
        }
        self.shared.notify_workers();
        let workers = std::mem::take(&mut *self.workers.lock());
        for w in workers {
            // A panicking worker is turned into a latched failure below.
            let _ = w.join();
        }
        let mut st = self.shared.state.lock();
        if st.durable_through < st.next_tid && st.failed.is_none() {
            let at = st.durable_through;
            st.failed = Some((at, RecorderError::Closed));
            self.shared.poisoned.store(true, Ordering::Release);
        }
        drop(st);
        self.shared.notify_all_waiters();
    }
}

/// The data object ids of `set`, by splay offset.
fn set_oids(config: &RecorderConfig, set: u64) -> Vec<Arc<str>> {
    let layout = config.layout;
    (0..layout.splay_width.max(1))
        .map(|o| {
            let object_number = layout.object_number(set, o);
            data_oid(config.name_pool_id, &config.journal_id, object_number).into()
        })
        .collect()
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn notify_workers(&self) {
        for cv in &self.work {
            cv.notify_all();
        }
    }

    pub(crate) fn flush_to(&self, target: u64) {
        let mut st = self.state.lock();
        if target > st.flush_target {
            st.flush_target = target;
            drop(st);
            self.notify_workers();
        }
    }

    fn poll_locked(st: &State, tid: u64) -> Option<Result<(), RecorderError>> {
        if st.durable_through > tid {
            return Some(Ok(()));
        }
        match &st.failed {
            Some((at, e)) if tid >= *at || st.in_flight_appends == 0 => Some(Err(e.clone())),
            _ => None,
        }
    }

    pub(crate) fn poll(&self, tid: u64) -> Option<Result<(), RecorderError>> {
        if self.durable.load(Ordering::Acquire) > tid {
            return Some(Ok(()));
        }
        Self::poll_locked(&self.state.lock(), tid)
    }

    /// Forces entry `tid` and everything before it out and waits until it is complete. The
    /// waiting thread sends ready batches itself when no append is in flight for their object
    /// (leader/follower): a lone writer never hands off to a worker, concurrent writers share
    /// appends.
    pub(crate) fn wait_durable(&self, tid: u64) -> Result<(), RecorderError> {
        if self.durable.load(Ordering::Acquire) > tid {
            // Already durable (the applier, mostly): nothing to wait for. Still make sure due
            // work has a sender, as every thread leaving here does, unless the lock is busy:
            // its holder is in the recorder and hands off as it leaves.
            if let Some(st) = self.state.try_lock() {
                self.hand_off(&st);
            }
            return Ok(());
        }
        let mut st = self.state.lock();
        st.flush_target = st.flush_target.max(tid.saturating_add(1));
        st.waiters.push(tid);
        loop {
            if let Some(r) = Self::poll_locked(&st, tid) {
                if let Some(i) = st.waiters.iter().position(|w| *w == tid) {
                    st.waiters.swap_remove(i);
                }
                self.hand_off(&st);
                return r;
            }
            if !help(self, &mut st) {
                if let Some(cv) = self.done.get((tid % DONE_BUCKETS as u64) as usize) {
                    cv.wait(&mut st);
                }
            }
        }
    }

    /// A thread leaving `wait_durable` makes sure due work that nobody is sending gets a sender:
    /// the oldest other waiter (who helps as soon as it runs) or, without waiters, the workers.
    fn hand_off(&self, st: &State) {
        let target = st.flush_target;
        let due = st.offsets.iter().any(|q| q.due(target));
        if !due || st.closing_at.is_some() {
            return;
        }
        match st.waiters.iter().min() {
            Some(w) => {
                if let Some(cv) = self.done.get((w % DONE_BUCKETS as u64) as usize) {
                    cv.notify_all();
                }
            }
            None => wake_due_workers(self, st, None),
        }
    }

    /// Wakes every waiter (failure, shutdown).
    fn notify_all_waiters(&self) {
        for cv in &self.done {
            cv.notify_all();
        }
    }

    /// Wakes the waiters of tids in `from..to` (the watermark just moved over them).
    fn notify_covered(&self, from: u64, to: u64) {
        if to.saturating_sub(from) >= DONE_BUCKETS as u64 {
            self.notify_all_waiters();
            return;
        }
        for tid in from..to {
            if let Some(cv) = self.done.get((tid % DONE_BUCKETS as u64) as usize) {
                cv.notify_all();
            }
        }
    }

    fn latch(&self, st: &mut State, at: u64, err: RecorderError) {
        // Queued entries are dropped: they never become durable, so the failure covers them.
        let dropped = st
            .offsets
            .iter()
            .filter_map(|q| q.queue.front().map(|e| e.entry_tid))
            .min();
        let at = dropped.map_or(at, |d| d.min(at));
        match &mut st.failed {
            Some((first, _)) => *first = (*first).min(at),
            None => st.failed = Some((at, err)),
        }
        self.poisoned.store(true, Ordering::Release);
        for q in &mut st.offsets {
            q.queue.clear();
            q.queued_bytes = 0;
        }
    }

    /// Moves `durable_through` up to the first entry that is not known durable: the first
    /// entry in flight or queued at any offset (each offset sends its entries in order), never
    /// past a latched failure (which covers the dropped entries), else everything appended.
    fn advance_watermark(&self, st: &mut State) {
        let mut w = st.next_tid;
        if let Some((at, _)) = &st.failed {
            w = w.min(*at);
        }
        for q in &st.offsets {
            if let Some(p) = q.first_pending() {
                w = w.min(p);
            }
        }
        st.durable_through = st.durable_through.max(w);
        self.durable.store(st.durable_through, Ordering::Release);
    }

    fn policy(&self, st: &State) -> SendPolicy {
        SendPolicy {
            force_below: if st.shutdown {
                u64::MAX
            } else {
                st.flush_target
            },
            batching: st.batching_enabled && self.config.settings.batching(),
        }
    }

    /// Moves every queue to set `next` and re-points the moved entries' commit records.
    fn open_set(&self, st: &mut State, next: u64) {
        st.set = next;
        st.oids = set_oids(&self.config, next);
        st.min_next_set = next.saturating_add(1);
        st.closing_at = None;
        let layout = self.config.layout;
        let mut tracker = self.tracker.lock();
        for (o, q) in st.offsets.iter_mut().enumerate() {
            q.reopen();
            let object = layout.object_number(next, u8::try_from(o).unwrap_or(u8::MAX));
            for e in &q.queue {
                // Cannot fail: the new object is a later one of the same splay offset.
                let _ = tracker.set_object_number(e.commit_tid, object);
            }
        }
    }
}
