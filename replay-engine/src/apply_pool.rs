//! Apply threads: the second stage of a pipelined replay.
//!
//! Replaying an entry is two halves of about equal cost: reading it from the remote journal,
//! checking its CRC and decoding its event (the replay thread, [`crate::replay_pool`]), and
//! writing the event to the replica (librbd's apply rules, [`ApplierSink`]). The primary
//! spreads a write over two threads the same way (the writer frames and checksums, the applier
//! writes the image), so an image replayed on one thread falls behind its primary at full
//! ingest. With an `ApplyPool` the replayer hands its decoded events to a
//! `PipelinedSink`, which queues them and, at the end of each replay step (or every
//! `BATCH_MAX` items), sends them as one batch to the image's apply thread.
//!
//! * **Order.** An image's sink always sends to the same apply thread, over one FIFO channel,
//!   and the thread applies a batch's items in order: the replica sees the journal's order.
//! * **Durability.** The apply thread runs the image's [`ApplierSink`] and reports the tokens
//!   it returns, which are those of events applied *and flushed*; the replayer commits only
//!   those, as when it applies inline. A flush the replayer must see completed (a tag change,
//!   the consistency mark, the end of replay) waits for the thread ([`EventSink::flush_wait`]).
//! * **Failure latches.** After a failed apply or flush the thread applies nothing more for
//!   that sink, and every later call of the sink returns the error, until the replayer is
//!   started again with a new sink.
//! * **Bounded.** Each apply thread's channel holds at most `QUEUE_BATCHES` batches; a
//!   replay thread that gets ahead blocks on the send.
//! * **Waking.** When a batch leaves results (tokens, or an error) the thread runs the sink's
//!   waker once until the replayer collects them, so an idle replay thread steps the image and
//!   commits.
//! * **Dropping** a sink waits until the thread has finished its batches, so a new replayer on
//!   the same image never races an old one's writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use journal_core::commit::CommitTid;
use journal_core::event::{Event, EventEntry};
use object_store_trait::Waker;
use parking_lot::{Condvar, Mutex};

use crate::applier::{AppliedReport, ApplierSink, EventSink};
use crate::error::{ReplayError, Result};

/// Items a sink queues before it sends them without waiting for the end of the step.
pub(crate) const BATCH_MAX: usize = 64;

/// Batches an apply thread's channel holds before senders block.
pub(crate) const QUEUE_BATCHES: usize = 4;

/// How often a waiting sink looks whether its apply thread is still running.
const ALIVE_CHECK: Duration = Duration::from_millis(100);

/// The apply threads (see the module docs).
pub(crate) struct ApplyPool {
    threads: Vec<ApplyThread>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

/// One apply thread as a sink sees it.
#[derive(Clone)]
pub(crate) struct ApplyThread {
    tx: Sender<Msg>,
    /// Cleared when the thread ends (also by a panic): waiting sinks stop waiting.
    alive: Arc<AtomicBool>,
}

enum Msg {
    Batch(Batch),
    Stop,
}

struct Batch {
    image: Arc<ImageApply>,
    items: Vec<Item>,
    /// The sink's sequence number of this batch.
    seq: u64,
}

enum Item {
    Apply(EventEntry, CommitTid),
    Flush,
}

/// One image's side shared between its sink and the apply thread.
struct ImageApply {
    /// Used by the apply thread only (and before the first batch, by the sink's `observe`).
    sink: Mutex<ApplierSink>,
    out: Mutex<Output>,
    /// Signalled after every batch.
    done: Condvar,
    /// Results wait in `out` and the waker ran since the last collect.
    ready: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

#[derive(Default)]
struct Output {
    tokens: Vec<CommitTid>,
    /// The first failure, latched.
    error: Option<String>,
    /// Sequence number of the last batch finished.
    done_seq: u64,
}

impl ApplyPool {
    /// Starts `threads` apply threads (none for 0).
    pub(crate) fn start(threads: usize) -> Result<ApplyPool> {
        let mut pool = ApplyPool {
            threads: Vec::new(),
            handles: Mutex::new(Vec::new()),
        };
        for i in 0..threads {
            let (tx, rx) = crossbeam_channel::bounded(QUEUE_BATCHES);
            let alive = Arc::new(AtomicBool::new(true));
            let flag = Arc::clone(&alive);
            let spawned = std::thread::Builder::new()
                .name(format!("mirror-apply-{i}"))
                .spawn(move || apply_thread(&rx, &flag));
            match spawned {
                Ok(handle) => pool.handles.get_mut().push(handle),
                Err(e) => {
                    pool.join();
                    return Err(ReplayError::Invalid(format!("spawn: {e}")));
                }
            }
            pool.threads.push(ApplyThread { tx, alive });
        }
        Ok(pool)
    }

    /// The apply thread for images homed on replay thread `home`, if the pool has threads.
    pub(crate) fn thread(&self, home: usize) -> Option<ApplyThread> {
        let n = self.threads.len();
        (n > 0)
            .then(|| self.threads.get(home % n).cloned())
            .flatten()
    }

    /// Stops the threads after the batches already queued, and waits for them.
    pub(crate) fn join(&self) {
        for t in &self.threads {
            let _ = t.tx.send(Msg::Stop);
        }
        for handle in self.handles.lock().drain(..) {
            let _ = handle.join();
        }
    }
}

/// Clears the thread's alive flag when the thread ends, however it ends.
struct AliveGuard<'a>(&'a AtomicBool);

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn apply_thread(rx: &Receiver<Msg>, alive: &AtomicBool) {
    let _guard = AliveGuard(alive);
    while let Ok(Msg::Batch(batch)) = rx.recv() {
        apply_batch(batch);
    }
}

fn apply_batch(batch: Batch) {
    let image = batch.image;
    let latched = image.out.lock().error.is_some();
    let mut tokens = Vec::new();
    let mut error = None;
    if !latched {
        let mut sink = image.sink.lock();
        for item in batch.items {
            let result = match item {
                Item::Apply(entry, token) => sink.apply(entry, token),
                Item::Flush => sink.flush(),
            };
            match result {
                Ok(done) => tokens.extend(done),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
    }
    let mut out = image.out.lock();
    out.tokens.extend(tokens);
    if out.error.is_none() {
        out.error = error;
    }
    debug_assert!(batch.seq > out.done_seq, "apply batches finish in order");
    out.done_seq = batch.seq;
    let results = !out.tokens.is_empty() || out.error.is_some();
    // Under the lock: a sink that waited for this batch finds `ready` set with the results.
    let first = results && !image.ready.swap(true, Ordering::AcqRel);
    drop(out);
    image.done.notify_all();
    if first {
        let waker = image.waker.lock().clone();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// An [`EventSink`] that applies on an apply thread (see the module docs).
pub(crate) struct PipelinedSink {
    image: Arc<ImageApply>,
    thread: ApplyThread,
    pending: Vec<Item>,
    /// Sequence number of the last batch sent.
    sent_seq: u64,
    /// IO events queued since the last flush was queued.
    unflushed: usize,
}

impl PipelinedSink {
    /// A sink applying with `inner` on `thread`.
    pub(crate) fn new(inner: ApplierSink, thread: ApplyThread) -> Self {
        PipelinedSink {
            image: Arc::new(ImageApply {
                sink: Mutex::new(inner),
                out: Mutex::new(Output::default()),
                done: Condvar::new(),
                ready: AtomicBool::new(false),
                waker: Mutex::new(None),
            }),
            thread,
            pending: Vec::new(),
            sent_seq: 0,
            unflushed: 0,
        }
    }

    /// Sends the queued items as one batch.
    fn send(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            image: Arc::clone(&self.image),
            items: std::mem::take(&mut self.pending),
            seq: self.sent_seq + 1,
        };
        self.thread
            .tx
            .send(Msg::Batch(batch))
            .map_err(|_| stopped())?;
        self.sent_seq += 1;
        Ok(())
    }

    /// Waits until the apply thread finished every batch sent (or stopped).
    fn wait_done(&self) -> Result<()> {
        let mut out = self.image.out.lock();
        while out.done_seq < self.sent_seq {
            if !self.thread.alive.load(Ordering::Acquire) {
                return Err(stopped());
            }
            self.image.done.wait_for(&mut out, ALIVE_CHECK);
        }
        Ok(())
    }

    /// The results waiting: the latched error, or the tokens reported since the last take.
    fn take_results(&mut self) -> Result<Vec<CommitTid>> {
        let mut out = self.image.out.lock();
        if let Some(e) = &out.error {
            return Err(ReplayError::Apply(e.clone()));
        }
        self.image.ready.store(false, Ordering::Release);
        Ok(std::mem::take(&mut out.tokens))
    }
}

fn stopped() -> ReplayError {
    ReplayError::Apply("the apply thread has stopped".into())
}

impl EventSink for PipelinedSink {
    fn observe(&mut self, report: AppliedReport) {
        self.image.sink.lock().observe(report);
    }

    fn apply(&mut self, entry: EventEntry, token: CommitTid) -> Result<Vec<CommitTid>> {
        match entry.event {
            Event::AioFlush => self.unflushed = 0,
            Event::AioWrite { .. }
            | Event::AioDiscard { .. }
            | Event::AioWriteSame { .. }
            | Event::AioCompareAndWrite { .. } => self.unflushed += 1,
            _ => {}
        }
        self.pending.push(Item::Apply(entry, token));
        if self.pending.len() >= BATCH_MAX {
            self.send()?;
        }
        self.collect()
    }

    fn flush(&mut self) -> Result<Vec<CommitTid>> {
        self.pending.push(Item::Flush);
        self.unflushed = 0;
        self.collect()
    }

    fn flush_wait(&mut self) -> Result<Vec<CommitTid>> {
        self.pending.push(Item::Flush);
        self.unflushed = 0;
        self.send()?;
        self.wait_done()?;
        self.take_results()
    }

    fn collect(&mut self) -> Result<Vec<CommitTid>> {
        if !self.image.ready.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        self.take_results()
    }

    fn submit(&mut self) -> Result<()> {
        self.send()
    }

    fn unflushed(&self) -> usize {
        self.unflushed
    }

    fn set_waker(&mut self, waker: Waker) {
        *self.image.waker.lock() = Some(waker);
    }

    fn has_results(&self) -> bool {
        self.image.ready.load(Ordering::Acquire)
    }
}

impl Drop for PipelinedSink {
    /// Waits for the batches already sent (see the module docs); queued items are dropped.
    fn drop(&mut self) {
        let _ = self.wait_done();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use bytes::Bytes;
    use journal_client::image::{BlockImage, MemImage};
    use journal_core::encoding::UTime;
    use journal_core::snap_namespace::SnapshotNamespace;
    use proptest::prelude::*;

    use super::*;

    const SIZE: u64 = 256 << 10;

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, u8, u64),
        Discard(u64, u64),
        AioFlush,
        /// The replayer's own (timer or count) flush.
        SinkFlush,
        /// The end of a replay step.
        Submit,
    }

    fn op() -> impl Strategy<Value = Op> {
        let range = (0..SIZE - 1).prop_flat_map(|o| (Just(o), 1..=(SIZE - o).min(9000)));
        prop_oneof![
            8 => (range.clone(), any::<u8>()).prop_map(|((o, l), b)| Op::Write(o, b, l)),
            2 => range.prop_map(|(o, l)| Op::Discard(o, l)),
            1 => Just(Op::AioFlush),
            1 => Just(Op::SinkFlush),
            2 => Just(Op::Submit),
        ]
    }

    fn entry(event: Event) -> EventEntry {
        EventEntry::new(event, UTime { sec: 0, nsec: 0 })
    }

    fn write(offset: u64, byte: u8, len: u64) -> EventEntry {
        entry(Event::AioWrite {
            offset,
            length: len,
            data: Bytes::from(vec![byte; len as usize]),
        })
    }

    fn snap_create(op_tid: u64, name: &str) -> EventEntry {
        entry(Event::SnapCreate {
            op_tid,
            snap_name: name.into(),
            namespace: SnapshotNamespace::User,
        })
    }

    /// Feeds `ops` to `sink` as the replayer would, ending with a waited flush; returns the
    /// tokens in the order the sink reported them.
    fn drive(sink: &mut dyn EventSink, ops: &[Op]) -> Vec<CommitTid> {
        let mut tokens = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let token = CommitTid(i as u64 + 1);
            let done = match op {
                Op::Write(o, b, l) => sink.apply(write(*o, *b, *l), token).unwrap(),
                Op::Discard(o, l) => sink
                    .apply(
                        entry(Event::AioDiscard {
                            offset: *o,
                            length: *l,
                            discard_granularity_bytes: 0,
                        }),
                        token,
                    )
                    .unwrap(),
                Op::AioFlush => sink.apply(entry(Event::AioFlush), token).unwrap(),
                Op::SinkFlush => sink.flush().unwrap(),
                Op::Submit => {
                    sink.submit().unwrap();
                    sink.collect().unwrap()
                }
            };
            tokens.extend(done);
        }
        tokens.extend(sink.flush_wait().unwrap());
        tokens
    }

    fn image_bytes(image: &MemImage) -> Bytes {
        image.read(0, SIZE).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Applied on an apply thread, the same events leave the same replica and report the
        /// same tokens durable, in the same order, as applied inline (the oracle).
        #[test]
        fn pipelined_sink_matches_the_inline_sink(ops in proptest::collection::vec(op(), 1..120)) {
            let pool = ApplyPool::start(1).unwrap();
            let inline_image = Arc::new(MemImage::new("inline", SIZE));
            let mut inline = ApplierSink::new(inline_image.clone(), 4);
            let piped_image = Arc::new(MemImage::new("piped", SIZE));
            let mut piped =
                PipelinedSink::new(ApplierSink::new(piped_image.clone(), 4), pool.thread(0).unwrap());
            let want = drive(&mut inline, &ops);
            let got = drive(&mut piped, &ops);
            prop_assert_eq!(got, want);
            prop_assert_eq!(image_bytes(&piped_image), image_bytes(&inline_image));
            prop_assert_eq!(piped.unflushed(), 0);
            drop(piped);
            pool.join();
        }
    }

    /// After a failed apply the thread applies nothing more for the sink, every later call
    /// returns the error, and no token of an event after the failure is reported durable.
    #[test]
    fn a_failure_latches() {
        let pool = ApplyPool::start(1).unwrap();
        let image = Arc::new(MemImage::new("replica", SIZE));
        let mut sink = PipelinedSink::new(
            ApplierSink::new(image.clone(), 1000),
            pool.thread(0).unwrap(),
        );
        let mut tokens = Vec::new();
        tokens.extend(sink.apply(write(0, 1, 4096), CommitTid(1)).unwrap());
        tokens.extend(sink.apply(snap_create(7, "a"), CommitTid(2)).unwrap());
        // A second op event for op tid 7: the engine refuses it.
        tokens.extend(sink.apply(snap_create(7, "b"), CommitTid(3)).unwrap());
        tokens.extend(sink.apply(write(4096, 2, 4096), CommitTid(4)).unwrap());
        sink.submit().unwrap();
        let err = sink.flush_wait().unwrap_err();
        assert!(matches!(err, ReplayError::Apply(_)), "{err}");
        assert!(sink.collect().is_err());
        assert!(sink.apply(write(8192, 3, 4096), CommitTid(5)).is_err());
        assert!(sink.flush_wait().is_err());
        // The write before the failure was applied, those after it were not.
        let bytes = image.read(0, 3 * 4096).unwrap();
        assert!(bytes[..4096].iter().all(|&b| b == 1));
        assert!(bytes[4096..].iter().all(|&b| b == 0));
        // Only events before the failure may have been reported durable.
        assert!(tokens.iter().all(|t| t.0 < 3), "{tokens:?}");
        drop(sink);
        pool.join();
    }

    /// Dropping a sink waits for the batches it sent: a replayer started after it never
    /// races its writes.
    #[test]
    fn dropping_a_sink_waits_for_its_batches() {
        let pool = ApplyPool::start(1).unwrap();
        let image = Arc::new(MemImage::new("replica", SIZE));
        let reference = MemImage::new("reference", SIZE);
        let mut sink =
            PipelinedSink::new(ApplierSink::new(image.clone(), 32), pool.thread(0).unwrap());
        for i in 0..640u64 {
            let (offset, byte) = ((i * 4096 + i * 7) % (SIZE - 4096), (i % 251) as u8);
            reference
                .write(offset, Bytes::from(vec![byte; 4096]))
                .unwrap();
            sink.apply(write(offset, byte, 4096), CommitTid(i + 1))
                .unwrap();
            if i % 64 == 63 {
                sink.submit().unwrap();
            }
        }
        drop(sink);
        assert_eq!(image_bytes(&image), image_bytes(&reference));
        pool.join();
    }

    /// Results wake the replayer: the sink's waker runs once a batch leaves tokens, and not
    /// again until they were collected.
    #[test]
    fn results_run_the_waker_once_until_collected() {
        let pool = ApplyPool::start(1).unwrap();
        let image = Arc::new(MemImage::new("replica", SIZE));
        let mut sink = PipelinedSink::new(ApplierSink::new(image, 1000), pool.thread(0).unwrap());
        let (tx, rx) = crossbeam_channel::unbounded();
        sink.set_waker(Waker::new(move || {
            let _ = tx.send(());
        }));
        sink.apply(write(0, 1, 512), CommitTid(1)).unwrap();
        sink.flush().unwrap();
        sink.submit().unwrap();
        rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(sink.has_results());
        // A second batch with results before the collect rings no second time (queued
        // directly: `apply` collects).
        sink.pending
            .push(Item::Apply(write(512, 2, 512), CommitTid(2)));
        sink.pending.push(Item::Flush);
        sink.send().unwrap();
        sink.wait_done().unwrap();
        assert!(rx.try_recv().is_err());
        assert_eq!(sink.collect().unwrap(), vec![CommitTid(1), CommitTid(2)]);
        assert!(!sink.has_results());
        // After the collect, new results ring again.
        sink.apply(write(1024, 3, 512), CommitTid(3)).unwrap();
        sink.flush().unwrap();
        sink.submit().unwrap();
        rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(sink.collect().unwrap(), vec![CommitTid(3)]);
        drop(sink);
        pool.join();
    }

    /// A sink whose apply thread stopped fails instead of waiting forever.
    #[test]
    fn a_stopped_thread_fails_the_sink() {
        let pool = ApplyPool::start(1).unwrap();
        let image = Arc::new(MemImage::new("replica", SIZE));
        let mut sink = PipelinedSink::new(ApplierSink::new(image, 32), pool.thread(0).unwrap());
        pool.join();
        sink.apply(write(0, 1, 512), CommitTid(1)).unwrap();
        assert!(sink.flush_wait().is_err());
    }
}
