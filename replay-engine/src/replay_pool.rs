//! The agent's threads for image replayers: a few **replay threads**, each serving many images
//! in non-blocking steps, and a few **bootstrap threads** for the parts that may block (replica
//! creation, image sync, resync). The thread count does not grow with the number of images.
//!
//! * A replay thread owns the images homed on it (new images go to the thread with the fewest).
//!   Each round it steps every image that is due (its timer passed: poll, role check, flush,
//!   commit, replay delay, retry) or notified (its journal's watches), at most 64 entries each
//!   per turn, so one image with a large backlog shares the thread with the others. Then it
//!   waits for the next timer or notification. With few watch channels (at most [`SELECT_MAX`]) it blocks on all of them
//!   and wakes at once; with more, blocking on thousands of channels costs more than it
//!   saves, so it wakes every [`SCAN_TICK`] and checks which channels have notifications:
//!   a notification is then seen within a millisecond and a timer fires up to a millisecond
//!   late. After scans that find none the interval doubles up to [`SCAN_TICK_MAX`], so the
//!   first notification after an idle stretch may wait that long (the live player's own idle
//!   backoff lets it wait up to 100 ms).
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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};
use parking_lot::Mutex;

use crate::error::{ReplayError, Result};
use crate::image_task::{ImageTask, Phase};

/// Most watch channels a replay thread blocks on at once; above it, it scans (module docs).
pub const SELECT_MAX: usize = 64;
/// A replay thread's wake-up interval while it scans its channels and notifications arrive.
pub const SCAN_TICK: Duration = Duration::from_millis(1);
/// The scan interval after rounds without notifications (doubling from [`SCAN_TICK`]): an
/// idle thread does not scan thousands of channels every millisecond. Below the live
/// player's default poll age (10 ms).
pub const SCAN_TICK_MAX: Duration = Duration::from_millis(8);
/// Longest wait of an idle replay thread (stop requests wake it at once: `Inbox::Wake`).
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// What a replay thread's inbox carries.
pub(crate) enum Inbox {
    /// An image to serve (new, or back from bootstrapping).
    Task(Box<ImageTask>),
    /// Look at the stop flags now (the agent or one of this thread's images is stopping).
    Wake,
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
            self.threads
                .get_mut()
                .push(spawn(format!("mirror-replay-{i}"), move || {
                    replay_thread(&rx, &to_bootstrap, &stop);
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
    due: Instant,
}

fn replay_thread(inbox: &Receiver<Inbox>, to_bootstrap: &Sender<ImageTask>, stop: &AtomicBool) {
    let mut slots: Vec<Slot> = Vec::new();
    let mut tick = SCAN_TICK;
    loop {
        let now = Instant::now();
        slots.extend(inbox.try_iter().filter_map(|msg| match msg {
            Inbox::Task(task) => Some(Slot {
                task: *task,
                due: now,
            }),
            Inbox::Wake => None,
        }));
        if stop.load(Ordering::Relaxed) {
            return; // dropping the slots finishes their images
        }
        let mut notified = false;
        let mut i = 0;
        while let Some(slot) = slots.get_mut(i) {
            if slot.task.stopped() {
                slots.swap_remove(i);
                continue;
            }
            if matches!(slot.task.phase, Phase::Replay(_)) {
                let woken = slot.task.notified();
                notified |= woken;
                if woken || slot.due <= now {
                    slot.due = slot.task.step();
                }
            }
            match slot.task.phase {
                Phase::Bootstrap(at) if at <= now => {
                    let _ = to_bootstrap.send(slots.swap_remove(i).task);
                    continue;
                }
                Phase::Bootstrap(at) => slot.due = at,
                Phase::Replay(_) => {}
            }
            i += 1;
        }
        // Scanning: look again soon while notifications come, less often while none do.
        tick = if notified {
            SCAN_TICK
        } else {
            tick.saturating_mul(2).min(SCAN_TICK_MAX)
        };
        wait(inbox, &slots, tick);
    }
}

/// Blocks until the earliest due image, a notification or a new image; while scanning, for at
/// most `tick` (module docs).
fn wait(inbox: &Receiver<Inbox>, slots: &[Slot], tick: Duration) {
    let now = Instant::now();
    let timeout = slots
        .iter()
        .map(|s| s.due.saturating_duration_since(now))
        .min()
        .unwrap_or(IDLE_WAIT)
        .min(IDLE_WAIT);
    if timeout.is_zero() {
        return;
    }
    let mut receivers = Vec::new();
    for slot in slots {
        receivers.extend(slot.task.receivers());
        if receivers.len() > SELECT_MAX {
            // Only the inbox (new images, wake-ups), for at most one scan interval.
            let mut sel = Select::new();
            sel.recv(inbox);
            let _ = sel.ready_timeout(tick.min(timeout));
            return;
        }
    }
    let mut sel = Select::new();
    sel.recv(inbox);
    for r in &receivers {
        sel.recv(r);
    }
    // Readiness only: the step that follows drains what it acts on.
    let _ = sel.ready_timeout(timeout);
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
