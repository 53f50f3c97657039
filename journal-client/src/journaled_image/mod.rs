//! [`JournaledImage`]: any [`BlockImage`] behind a Ceph-format journal.
//!
//! # Write path
//!
//! 1. The request becomes journal events (writes split into `AioWrite`s of at most
//!    `max_payload − 44` data bytes, like librbd), framed on the caller's thread.
//! 2. Under the submit lock (no I/O): the entries are queued on the [`Recorder`], the request
//!    gets the next journal-order sequence number, its effect is put in the read overlay, and it
//!    is sent to the applier's bounded channel — so channel order is journal order.
//! 3. The caller waits until its last entry is complete (as [`crate::AppendFuture::wait`]):
//!    durable and everything before it durable. **That is the acknowledgement.**
//! 4. The applier thread applies the request to the image in journal order, then marks its
//!    entries committed (a failed data write leaves them uncommitted and stops the applier).
//! 5. The commit thread writes the image client's position every `commit_age` (after an image
//!    flush) and trims.
//!
//! Reads lay the overlay of acknowledged-but-unapplied IO over the image bytes
//! (read-your-writes). Maintenance ops quiesce IO, record the op event, wait until earlier IO
//! is applied, execute, and record `OpFinish(result)`, as librbd does (§12.3).

mod applier;
mod committer;
mod ops;
mod overlay;
mod recovery;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{bounded, unbounded, Sender};
use journal_core::commit::CommitTracker;
use journal_core::encoding::UTime;
use journal_core::event::AIO_WRITE_EVENT_FIXED_OVERHEAD;
use journal_core::header::{HeaderError, JournalHeader, ObjectSetPosition};
use journal_core::{Event, EventEntry, Layout};
use object_store_trait::ObjectStore;
use parking_lot::{Condvar, Mutex};

use crate::error::{JournalClientError, RecorderError, Result};
use crate::image::{check_range, BlockImage, ImageError};
use crate::prepared_entry::PreparedEntry;
use crate::recorder::{AdvanceHook, Recorder, RecorderConfig};
use crate::settings::JournalSettings;
use applier::{ApplyItem, ApplyKind, CommitTids, Events};
use committer::CommitCmd;
use overlay::{lay_over, Overlay, PendingIo, Snapshot};

/// The image's own journal client id.
pub const IMAGE_CLIENT_ID: &str = "";

struct Submit {
    next_seq: u64,
    next_op_tid: u64,
    op_in_progress: bool,
    size: u64,
    apply_tx: Option<Sender<ApplyItem>>,
}

struct AppliedState {
    through: u64,
    failure: Option<String>,
}

/// State shared with the background threads.
pub(crate) struct Inner {
    pub(crate) image: Arc<dyn BlockImage>,
    pub(crate) header: JournalHeader,
    pub(crate) layout: Layout,
    pub(crate) settings: JournalSettings,
    pub(crate) tracker: Arc<Mutex<CommitTracker>>,
    pub(crate) last_written: Mutex<ObjectSetPosition>,
    pub(crate) overlay: Mutex<Overlay>,
    pub(crate) recorder: Recorder,
    submit: Mutex<Submit>,
    submit_cv: Condvar,
    applied: Mutex<AppliedState>,
    applied_cv: Condvar,
    /// Whether `AppliedState::failure` is set (never cleared): the per-write health check reads
    /// it instead of taking the lock the applier takes for every request.
    apply_failed: AtomicBool,
}

impl Inner {
    /// Records that request `seq` was applied (or dropped), or that applying it failed.
    pub(crate) fn finish_apply(&self, seq: u64, failure: Option<String>) {
        let mut a = self.applied.lock();
        match failure {
            None => a.through = a.through.max(seq + 1),
            Some(f) => {
                a.failure.get_or_insert(f);
                self.apply_failed.store(true, Ordering::Release);
            }
        }
        drop(a);
        self.applied_cv.notify_all();
    }

    pub(crate) fn apply_failure(&self) -> Option<String> {
        if !self.apply_failed.load(Ordering::Acquire) {
            return None;
        }
        self.applied.lock().failure.clone()
    }

    /// Waits until every request with a sequence number below `seq` is applied.
    fn wait_applied(&self, seq: u64) -> Result<()> {
        let mut a = self.applied.lock();
        loop {
            if a.through >= seq {
                return Ok(());
            }
            if let Some(f) = &a.failure {
                return Err(JournalClientError::Stopped(f.clone()));
            }
            self.applied_cv.wait(&mut a);
        }
    }
}

/// A block image whose every mutation is journaled first (see the module docs).
pub struct JournaledImage {
    inner: Arc<Inner>,
    commit_tx: Sender<CommitCmd>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    replayed: u64,
    journal_id: String,
}

impl std::fmt::Debug for JournaledImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournaledImage")
            .field("journal_id", &self.journal_id)
            .field("tag_tid", &self.inner.recorder.tag_tid())
            .finish_non_exhaustive()
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| JournalClientError::Stopped(format!("cannot start {name}: {e}")))
}

impl JournaledImage {
    /// Opens (creating if needed) journal `journal_id` in `store` for writing to `image`:
    /// takes ownership with a new tag (fencing any older writer), replays entries the image has
    /// not applied yet, and starts the recorder, applier and commit threads.
    pub fn open(
        store: Arc<dyn ObjectStore>,
        journal_id: &str,
        image: Arc<dyn BlockImage>,
        settings: JournalSettings,
    ) -> Result<JournaledImage> {
        settings.validate()?;
        let opened = recovery::open(&store, journal_id, &image, &settings)?;
        let tag = opened.tag_tid;
        let tracker = Arc::new(Mutex::new(opened.tracker));
        let hook_header = opened.header.clone();
        let (commit_tx, commit_rx) = unbounded();
        // `commit_on_rollover`: a new set means the one before it will soon be fully
        // committed, so write the position and trim now rather than up to `commit_age` later
        // (in memory, 4 KiB writes: ~1.4 page faults per write before, ~0.4 after).
        let kick = settings.commit_on_rollover.then(|| commit_tx.clone());
        let hook: AdvanceHook = Arc::new(move |set| match hook_header.set_active_set(set) {
            Ok(()) | Err(HeaderError::Stale { .. }) => {
                if let Some(kick) = &kick {
                    let _ = kick.send(CommitCmd::Kick);
                }
                Ok(())
            }
            Err(e) => Err(RecorderError::header(tag, &e)),
        });
        let config = RecorderConfig {
            journal_id: journal_id.to_owned(),
            name_pool_id: settings.name_pool_id,
            layout: opened.layout,
            tag_tid: tag,
            active_set: opened.active_set,
            fenced: true,
            settings: settings.clone(),
        };
        let recorder = Recorder::start(store, config, Arc::clone(&tracker), hook)?;
        let (apply_tx, apply_rx) = bounded(settings.apply_queue_depth);
        let size = image.size();
        let inner = Arc::new(Inner {
            image,
            header: opened.header,
            layout: opened.layout,
            settings: settings.clone(),
            tracker,
            last_written: Mutex::new(opened.position),
            overlay: Mutex::new(Overlay::default()),
            recorder,
            submit: Mutex::new(Submit {
                next_seq: 0,
                next_op_tid: 1,
                op_in_progress: false,
                size,
                apply_tx: Some(apply_tx),
            }),
            submit_cv: Condvar::new(),
            applied: Mutex::new(AppliedState {
                through: 0,
                failure: None,
            }),
            applied_cv: Condvar::new(),
            apply_failed: AtomicBool::new(false),
        });
        let a = Arc::clone(&inner);
        let applier = spawn("rbdj-applier", move || applier::run(&a, &apply_rx))?;
        let c = Arc::clone(&inner);
        let age = settings.commit_age;
        let watch = inner.header.watch().ok();
        let committer = spawn("rbdj-commit", move || {
            committer::run(&c, &commit_rx, age, watch);
        })?;
        Ok(JournaledImage {
            inner,
            commit_tx,
            threads: Mutex::new(vec![applier, committer]),
            replayed: opened.replayed,
            journal_id: journal_id.to_owned(),
        })
    }

    /// Entries replayed into the image when it was opened.
    pub fn replayed_entries(&self) -> u64 {
        self.replayed
    }

    /// The writer's tag.
    pub fn tag_tid(&self) -> u64 {
        self.inner.recorder.tag_tid()
    }

    /// The object set appended to.
    pub fn active_set(&self) -> u64 {
        self.inner.recorder.active_set()
    }

    /// The image client's position as folded so far (written every `commit_age`).
    pub fn commit_position(&self) -> ObjectSetPosition {
        self.inner.tracker.lock().position()
    }

    /// The wrapped image (reading it directly bypasses the overlay).
    pub fn image(&self) -> &Arc<dyn BlockImage> {
        &self.inner.image
    }

    /// The journal header handle (fenced on this writer's tag).
    pub fn header(&self) -> &JournalHeader {
        &self.inner.header
    }

    /// Current size.
    pub fn size(&self) -> u64 {
        self.inner.submit.lock().size
    }

    fn check_io(&self) -> Result<()> {
        if let Some(e) = self.inner.recorder.failure() {
            return Err(RecorderError::Poisoned(Box::new(e)).into());
        }
        if let Some(f) = self.inner.apply_failure() {
            return Err(JournalClientError::Stopped(f));
        }
        Ok(())
    }

    fn max_payload(&self) -> usize {
        self.inner
            .layout
            .max_payload(self.inner.settings.max_payload_bytes)
    }

    /// Journals `events` as one request; returns its last entry's tid (wait for it with
    /// [`Recorder::wait_entry`]).
    fn submit(
        &self,
        range: Option<(u64, u64)>,
        events: Events,
        pending: Option<PendingIo>,
        kind: impl FnOnce(Events) -> ApplyKind,
    ) -> Result<u64> {
        self.check_io()?;
        let now = UTime::now();
        let frame = |e: &Event| {
            let hint = match e {
                Event::AioWrite { data, .. } => data.len() + AIO_WRITE_EVENT_FIXED_OVERHEAD,
                _ => 128,
            };
            PreparedEntry::event(&EventEntry::new(e.clone(), now), hint)
        };
        // One event (most requests) is framed without a vector.
        let (one, many): (Option<PreparedEntry>, Vec<PreparedEntry>) = match &events {
            Events::One(e) => (Some(frame(e)), Vec::new()),
            Events::Many(v) => (None, v.iter().map(frame).collect()),
        };
        let payloads = one.into_iter().chain(many);
        let inner = &self.inner;
        let mut sub = inner.submit.lock();
        while sub.op_in_progress {
            inner.submit_cv.wait(&mut sub);
        }
        if let Some((offset, len)) = range {
            check_range(offset, len, sub.size)?;
        }
        if sub.apply_tx.is_none() {
            return Err(JournalClientError::Stopped("image is closed".into()));
        }
        let mut commit_tids = CommitTids::default();
        let mut last = None;
        for p in payloads {
            let (tid, _, commit_tid) = inner.recorder.append_entry(p)?;
            commit_tids.push(commit_tid);
            last = Some(tid);
        }
        let last = last.ok_or_else(|| {
            JournalClientError::Image(ImageError::InvalidArgument("empty request".into()))
        })?;
        let seq = sub.next_seq;
        sub.next_seq += 1;
        if let Some(p) = pending {
            inner.overlay.lock().insert(seq, p);
        }
        let item = ApplyItem {
            seq,
            last_tid: last,
            commit_tids,
            kind: kind(events),
        };
        let sent = sub
            .apply_tx
            .as_ref()
            .is_some_and(|tx| tx.send(item).is_ok());
        if !sent {
            return Err(JournalClientError::Stopped("applier stopped".into()));
        }
        drop(sub);
        Ok(last)
    }

    /// Writes `data` at `offset`; returns once the write is durable in the journal.
    pub fn write(&self, offset: u64, data: Bytes) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let chunk = self
            .max_payload()
            .saturating_sub(AIO_WRITE_EVENT_FIXED_OVERHEAD)
            .max(1);
        let events = if data.len() <= chunk {
            Events::One(Event::AioWrite {
                offset,
                length: data.len() as u64,
                data: data.clone(),
            })
        } else {
            let mut events = Vec::with_capacity(data.len().div_ceil(chunk));
            let mut at = 0usize;
            while at < data.len() {
                let n = chunk.min(data.len() - at);
                events.push(Event::AioWrite {
                    offset: offset + at as u64,
                    length: n as u64,
                    data: data.slice(at..at + n),
                });
                at += n;
            }
            Events::Many(events)
        };
        let len = data.len() as u64;
        let pending = PendingIo::Write { offset, data };
        let f = self.submit(Some((offset, len)), events, Some(pending), ApplyKind::Io)?;
        Ok(self.inner.recorder.wait_entry(f)?)
    }

    /// Discards (zeroes) `len` bytes at `offset`.
    pub fn discard(&self, offset: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let event = Event::AioDiscard {
            offset,
            length: len,
            discard_granularity_bytes: 0,
        };
        let f = self.submit(
            Some((offset, len)),
            Events::One(event),
            Some(PendingIo::Zero { offset, len }),
            ApplyKind::Io,
        )?;
        Ok(self.inner.recorder.wait_entry(f)?)
    }

    fn check_fits(&self, extra: usize) -> Result<()> {
        let max = self.max_payload();
        if AIO_WRITE_EVENT_FIXED_OVERHEAD + extra > max {
            return Err(ImageError::InvalidArgument(format!(
                "request needs a {} byte entry, more than {max}",
                AIO_WRITE_EVENT_FIXED_OVERHEAD + extra
            ))
            .into());
        }
        Ok(())
    }

    /// Fills `len` bytes at `offset` with `pattern`.
    pub fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> Result<()> {
        let plen = pattern.len() as u64;
        if plen == 0 || !len.is_multiple_of(plen) {
            return Err(ImageError::InvalidArgument(
                "length is not a multiple of the pattern".into(),
            )
            .into());
        }
        self.check_fits(pattern.len())?;
        let event = Event::AioWriteSame {
            offset,
            length: len,
            data: pattern.clone(),
        };
        let pending = PendingIo::Same {
            offset,
            len,
            pattern,
        };
        let f = self.submit(
            Some((offset, len)),
            Events::One(event),
            Some(pending),
            ApplyKind::Io,
        )?;
        Ok(self.inner.recorder.wait_entry(f)?)
    }

    /// Writes `data` at `offset` if the image holds `cmp` there; a mismatch fails with
    /// [`ImageError::CompareMismatch`] (the event is still journaled and committed, as in librbd).
    pub fn compare_and_write(&self, offset: u64, cmp: Bytes, data: Bytes) -> Result<()> {
        if cmp.len() != data.len() || cmp.is_empty() {
            return Err(
                ImageError::InvalidArgument("compare and write lengths differ".into()).into(),
            );
        }
        self.check_fits(2 * cmp.len() + 4)?;
        let len = cmp.len() as u64;
        let event = Event::AioCompareAndWrite {
            offset,
            length: len,
            cmp_data: cmp.clone(),
            write_data: data.clone(),
        };
        let (reply, result) = bounded(1);
        let kind = |_| ApplyKind::CompareAndWrite {
            offset,
            cmp,
            data,
            reply,
        };
        let f = self.submit(
            Some((offset, len)),
            Events::One(event),
            Some(PendingIo::Conditional { offset, len }),
            kind,
        )?;
        self.inner.recorder.wait_entry(f)?;
        match result.recv() {
            Ok(r) => Ok(r?),
            Err(_) => Err(JournalClientError::Stopped("applier stopped".into())),
        }
    }

    /// Records an `AioFlush` and returns when every earlier acknowledged write is durable in the
    /// journal (they are at acknowledgement already). The first flush switches batching on; the
    /// commit thread is asked to write the commit position (not waited for).
    pub fn flush(&self) -> Result<()> {
        let f = self.submit(None, Events::One(Event::AioFlush), None, |_| {
            ApplyKind::Flush
        })?;
        self.inner.recorder.enable_batching();
        self.inner.recorder.wait_entry(f)?;
        // Also get the commit position written soon (without waiting for it).
        let _ = self.commit_tx.send(CommitCmd::Kick);
        Ok(())
    }

    /// Reads `len` bytes at `offset`, including acknowledged writes not yet applied.
    pub fn read(&self, offset: u64, len: u64) -> Result<Bytes> {
        check_range(offset, len, self.size())?;
        loop {
            let snapshot = self.inner.overlay.lock().snapshot(offset, len);
            match snapshot {
                Snapshot::WaitFor(seq) => self.inner.wait_applied(seq + 1)?,
                Snapshot::Items(items) => {
                    let base = self.inner.image.read(offset, len)?;
                    return Ok(lay_over(base, offset, &items));
                }
            }
        }
    }

    /// Acknowledged (or in-flight) IO requests not yet applied to the image.
    pub fn pending_requests(&self) -> usize {
        self.inner.overlay.lock().len()
    }

    /// Waits until every acknowledged request is applied to the image.
    pub fn wait_applied(&self) -> Result<()> {
        let target = self.inner.submit.lock().next_seq;
        self.inner.wait_applied(target)
    }

    /// Writes the image client's commit position now (after an image flush) and trims.
    pub fn flush_commit_position(&self) -> Result<()> {
        let (tx, rx) = bounded(1);
        self.commit_tx
            .send(CommitCmd::Flush(tx))
            .map_err(|_| JournalClientError::Stopped("commit thread stopped".into()))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(JournalClientError::Stopped(e)),
            Err(_) => Err(JournalClientError::Stopped("commit thread stopped".into())),
        }
    }

    /// Sends every queued entry, applies every acknowledged request, writes the commit position
    /// and stops the threads. Idempotent; IO afterwards fails with
    /// [`JournalClientError::Stopped`].
    pub fn close(&self) -> Result<()> {
        let tx = {
            let mut sub = self.inner.submit.lock();
            while sub.op_in_progress {
                self.inner.submit_cv.wait(&mut sub);
            }
            sub.apply_tx.take()
        };
        let Some(tx) = tx else { return Ok(()) };
        let flushed = self.inner.recorder.flush();
        drop(tx);
        let _ = self.commit_tx.send(CommitCmd::Shutdown);
        let threads = std::mem::take(&mut *self.threads.lock());
        let mut panicked = false;
        for t in threads {
            panicked |= t.join().is_err();
        }
        self.inner.recorder.shutdown();
        flushed?;
        if panicked {
            return Err(JournalClientError::Stopped(
                "a background thread panicked".into(),
            ));
        }
        if let Some(f) = self.inner.apply_failure() {
            return Err(JournalClientError::Stopped(f));
        }
        committer::commit_and_trim(&self.inner)
    }
}

impl Drop for JournaledImage {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
