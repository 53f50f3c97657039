//! The agent's threads for image replayers: a few **replay threads**, each serving many images
//! in non-blocking steps, and a few **bootstrap threads** for the parts that may block (replica
//! creation, image sync, resync). The thread count does not grow with the number of images.
//!
//! * A replay thread owns the images homed on it (new images go to the thread with the fewest).
//!   It steps an image when the image is due (the instant its last step named: poll, role
//!   check, flush, commit, replay delay, retry) or notified, at most 64 entries per step, so one
//!   image with a large backlog shares the thread with the others. Between steps it blocks on
//!   its inbox until the earliest due instant (a timer heap).
//! * Notifications reach the thread through that inbox too: every watch of an image's replayer
//!   carries a waker ([`object_store_trait::Watch::set_waker`]) that queues the image's token,
//!   once per arming, and the thread re-arms the image's watches before stepping it. So the
//!   thread learns which image has news without looking at the others: its cost per wake-up
//!   does not grow with its images, and an idle image costs only its own timer (the live
//!   player's idle backoff, up to 5 s where the store's notifications are complete).
//! * A wake-up costs the thread a few microseconds of futex and scheduler work. With more than
//!   [`BATCH_MIN_IMAGES`] images and notifications arriving about once per [`RING_BATCH`] or
//!   faster, the thread therefore sleeps out a batch of [`RING_BATCH`] before it looks again
//!   (notifiers then queue without waking it) and steps every image notified meanwhile: under
//!   load a notification waits up to a millisecond; after a quiet spell, and with fewer images,
//!   it wakes the thread at once.
//! * An image that must bootstrap goes to the bootstrap threads' queue and comes back to its
//!   home thread to replay. A sync that blocks holds one bootstrap thread: the other images
//!   keep replaying, and other bootstraps use the remaining bootstrap threads.
//! * The price of sharing: a store call that hangs inside one image's replay step holds the
//!   other images of its replay thread until it returns (with a thread per image it held only
//!   its own), and when every bootstrap thread is blocked in a sync, new images wait to
//!   bootstrap (images already replaying do not).
//! * Images end on their threads: an image whose stop flag is raised is dropped where it is
//!   (which flushes and commits, see `image_task.rs`); all threads end when the agent's
//!   stop flag is raised. Whoever raises a flag also sends the thread a wake-up message, so
//!   no thread finishes a timed wait first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::error::{ReplayError, Result};
use crate::image_task::{ImageTask, Phase};

/// Under a steady stream of notifications, a replay thread with more than
/// [`BATCH_MIN_IMAGES`] images wakes at most once per `RING_BATCH` (module docs).
pub const RING_BATCH: Duration = Duration::from_millis(1);
/// Images a replay thread serves before it batches its wake-ups ([`RING_BATCH`]); with fewer,
/// every notification wakes it at once.
pub const BATCH_MIN_IMAGES: usize = 64;
/// Longest wait of an idle replay thread (stop requests wake it at once: `Inbox::Wake`).
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// What a replay thread's inbox carries.
pub(crate) enum Inbox {
    /// An image to serve (new, or back from bootstrapping).
    Task(Box<ImageTask>),
    /// Look at the stop flags now (the agent or one of this thread's images is stopping).
    Wake,
    /// A notification reached a watch of the image with this token (its waker's message).
    Ring(u64),
}

/// The running threads (see the module docs).
pub(crate) struct ReplayPool {
    inboxes: Vec<Sender<Inbox>>,
    loads: Vec<Arc<AtomicUsize>>,
    /// Dropped by [`ReplayPool::join`]: the bootstrap threads end once no sender is left.
    bootstrap_tx: Mutex<Option<Sender<ImageTask>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| ReplayError::Invalid(format!("spawn: {e}")))
}

impl ReplayPool {
    /// Starts `replay_threads` replay threads and `bootstrap_threads` bootstrap threads (at
    /// least one of each); they end when `stop` is raised.
    pub(crate) fn start(
        replay_threads: usize,
        bootstrap_threads: usize,
        stop: &Arc<AtomicBool>,
    ) -> Result<ReplayPool> {
        let (bootstrap_tx, bootstrap_rx) = crossbeam_channel::unbounded::<ImageTask>();
        let mut pool = ReplayPool {
            inboxes: Vec::new(),
            loads: Vec::new(),
            bootstrap_tx: Mutex::new(Some(bootstrap_tx)),
            threads: Mutex::new(Vec::new()),
        };
        if let Err(e) = pool.spawn_threads(replay_threads, bootstrap_threads, &bootstrap_rx, stop) {
            // End the threads already started.
            stop.store(true, Ordering::Relaxed);
            pool.join();
            return Err(e);
        }
        Ok(pool)
    }

    fn spawn_threads(
        &mut self,
        replay_threads: usize,
        bootstrap_threads: usize,
        bootstrap_rx: &Receiver<ImageTask>,
        stop: &Arc<AtomicBool>,
    ) -> Result<()> {
        let Some(bootstrap_tx) = self.bootstrap_tx.get_mut().clone() else {
            return Ok(());
        };
        for i in 0..replay_threads.max(1) {
            let (tx, rx) = crossbeam_channel::unbounded();
            let (to_bootstrap, stop) = (bootstrap_tx.clone(), Arc::clone(stop));
            let wakers = tx.clone();
            self.threads
                .get_mut()
                .push(spawn(format!("mirror-replay-{i}"), move || {
                    ReplayThread::new(wakers).run(&rx, &to_bootstrap, &stop);
                })?);
            self.inboxes.push(tx);
            self.loads.push(Arc::new(AtomicUsize::new(0)));
        }
        for i in 0..bootstrap_threads.max(1) {
            let (rx, homes, stop) = (bootstrap_rx.clone(), self.inboxes.clone(), Arc::clone(stop));
            self.threads
                .get_mut()
                .push(spawn(format!("mirror-boot-{i}"), move || {
                    bootstrap_thread(&rx, &homes, &stop);
                })?);
        }
        Ok(())
    }

    /// The replay thread with the fewest images, and its image count.
    pub(crate) fn least_loaded(&self) -> (usize, Arc<AtomicUsize>) {
        let mut best = (0, Arc::new(AtomicUsize::new(0)));
        let mut fewest = usize::MAX;
        for (i, load) in self.loads.iter().enumerate() {
            let n = load.load(Ordering::Relaxed);
            if n < fewest {
                fewest = n;
                best = (i, Arc::clone(load));
            }
        }
        best
    }

    /// Queues a new image for its first bootstrap.
    pub(crate) fn submit(&self, task: ImageTask) {
        let tx = self.bootstrap_tx.lock().clone();
        // Fails only once the agent is stopping: the task is dropped, finished.
        if let Some(tx) = tx {
            let _ = tx.send(task);
        }
    }

    /// Makes replay thread `home` look at its images' stop flags now.
    pub(crate) fn wake(&self, home: usize) {
        if let Some(tx) = self.inboxes.get(home) {
            let _ = tx.send(Inbox::Wake);
        }
    }

    /// Waits for every thread (after the agent's stop flag was raised); wakes the replay
    /// threads first so that none finishes a timed wait before it sees the flag.
    pub(crate) fn join(&self) {
        for home in 0..self.inboxes.len() {
            self.wake(home);
        }
        drop(self.bootstrap_tx.lock().take());
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Where a replay thread keeps an image until its next step.
struct Slot {
    task: ImageTask,
    /// When the image wants its next step.
    due: Instant,
    /// The heap entry that stands for this image: the earliest instant queued for it.
    queued: Option<Instant>,
}

/// A replay thread's state (module docs): its images by token, their timers, and the images
/// to step in the current round.
struct ReplayThread {
    /// The thread's own inbox, for the wakers it installs.
    wakers: Sender<Inbox>,
    slots: HashMap<u64, Slot>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    ready: Vec<u64>,
    next_token: u64,
    /// When the thread last woke for notifications.
    last_ring_wake: Option<Instant>,
    /// Set when notifications come faster than [`RING_BATCH`]: the next wait sleeps until
    /// then instead of waking on the first notification.
    linger_until: Option<Instant>,
}

impl ReplayThread {
    fn new(wakers: Sender<Inbox>) -> Self {
        ReplayThread {
            wakers,
            slots: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: Vec::new(),
            next_token: 0,
            last_ring_wake: None,
            linger_until: None,
        }
    }

    fn run(mut self, inbox: &Receiver<Inbox>, to_bootstrap: &Sender<ImageTask>, stop: &AtomicBool) {
        loop {
            let first = self.wait(inbox);
            let mut check_stops = false;
            let mut rung = false;
            for msg in first.into_iter().chain(inbox.try_iter()) {
                match msg {
                    Inbox::Task(task) => self.add(*task),
                    Inbox::Wake => check_stops = true,
                    Inbox::Ring(token) => {
                        rung = true;
                        self.ready.push(token);
                    }
                }
            }
            if rung {
                self.note_ring_wake();
            }
            if stop.load(Ordering::Relaxed) {
                return; // dropping the slots finishes their images
            }
            if check_stops {
                self.slots.retain(|_, slot| !slot.task.stopped());
            }
            self.pop_due_timers();
            self.step_ready(to_bootstrap);
        }
    }

    /// Waits for work: not at all while images are ready; while lingering, sleeps out the
    /// batch without blocking on the inbox (notifiers then need not wake the thread); else
    /// blocks until the earliest timer or a message. `None` when no message ended the wait.
    fn wait(&mut self, inbox: &Receiver<Inbox>) -> Option<Inbox> {
        if !self.ready.is_empty() {
            return None;
        }
        if let Some(until) = self.linger_until.take() {
            let nap = until.saturating_duration_since(Instant::now());
            std::thread::sleep(nap.min(self.timeout()));
            return None;
        }
        // Disconnected only once the pool is gone; the stop flag ends the thread then.
        inbox.recv_timeout(self.timeout()).ok()
    }

    /// After a wake-up with notifications: with many images and notifications coming about
    /// once per [`RING_BATCH`] or faster, the next wait lingers for one batch.
    fn note_ring_wake(&mut self) {
        let now = Instant::now();
        let frequent = self
            .last_ring_wake
            .is_some_and(|last| now.saturating_duration_since(last) < 2 * RING_BATCH);
        if frequent && self.slots.len() > BATCH_MIN_IMAGES {
            self.linger_until = Some(now + RING_BATCH);
        }
        self.last_ring_wake = Some(now);
    }

    /// How long to block: until the earliest timer, at most [`IDLE_WAIT`].
    fn timeout(&self) -> Duration {
        self.timers.peek().map_or(IDLE_WAIT, |Reverse((due, _))| {
            due.saturating_duration_since(Instant::now()).min(IDLE_WAIT)
        })
    }

    /// Takes an image in: it gets a token, its watches get a waker that queues the token, and
    /// it steps in this round.
    fn add(&mut self, mut task: ImageTask) {
        let token = self.next_token;
        self.next_token += 1;
        let wakers = self.wakers.clone();
        task.set_waker(object_store_trait::Waker::new(move || {
            // Fails only once the thread ended.
            let _ = wakers.send(Inbox::Ring(token));
        }));
        let slot = Slot {
            task,
            due: Instant::now(),
            queued: None,
        };
        self.slots.insert(token, slot);
        self.ready.push(token);
    }

    /// Moves the images whose timers passed to the ready list. A heap entry that no longer
    /// stands for its image (the image went or its entry was replaced by an earlier one) is
    /// dropped; one whose image is now due later is queued again for then.
    fn pop_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, token))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slots.get_mut(&token) else {
                continue;
            };
            if slot.queued != Some(at) {
                continue;
            }
            slot.queued = None;
            if slot.due <= now {
                self.ready.push(token);
            } else {
                slot.queued = Some(slot.due);
                self.timers.push(Reverse((slot.due, token)));
            }
        }
    }

    /// Steps every ready image once; an image that is still due goes to the next round's
    /// ready list, the others to the timers.
    fn step_ready(&mut self, to_bootstrap: &Sender<ImageTask>) {
        let mut round = std::mem::take(&mut self.ready);
        round.sort_unstable();
        round.dedup();
        for token in round {
            let Some(slot) = self.slots.get_mut(&token) else {
                continue; // a ring for an image that left
            };
            if slot.task.stopped() {
                self.slots.remove(&token);
                continue;
            }
            let now = Instant::now();
            match slot.task.phase {
                Phase::Replay(_) => {
                    slot.task.arm_wakers();
                    // When replay ended, the instant of the next bootstrap.
                    slot.due = slot.task.step();
                }
                Phase::Bootstrap(at) if at <= now => {
                    if let Some(slot) = self.slots.remove(&token) {
                        let _ = to_bootstrap.send(slot.task);
                    }
                    continue;
                }
                Phase::Bootstrap(at) => slot.due = at,
            }
            if slot.due <= Instant::now() {
                self.ready.push(token);
            } else if slot.queued.is_none_or(|q| slot.due < q) {
                slot.queued = Some(slot.due);
                self.timers.push(Reverse((slot.due, token)));
            }
        }
    }
}

fn bootstrap_thread(jobs: &Receiver<ImageTask>, homes: &[Sender<Inbox>], stop: &AtomicBool) {
    // Ends once every sender is gone: the pool's (dropped by `join`) and the replay threads'
    // (which end on the stop flag).
    while let Ok(mut task) = jobs.recv() {
        if task.stopped() || stop.load(Ordering::Relaxed) {
            continue;
        }
        task.bootstrap();
        if task.stopped() || stop.load(Ordering::Relaxed) {
            continue;
        }
        if let Some(home) = homes.get(task.home) {
            // Fails only once the replay threads ended: the task is dropped, finished.
            let _ = home.send(Inbox::Task(Box::new(task)));
        }
    }
}
