//! The mirror agent: what Ceph's rbd-mirror daemon does for journal-based mirroring, for one
//! (local site, remote site) pair.
//!
//! * A **pool watcher** thread lists the remote site's mirrored images (`rbd_mirroring` image
//!   records: in pool mode every journaled image, in image mode those enabled one by one) every
//!   [`AgentOptions::scan_interval`] or when the remote `rbd_mirroring` / `rbd_directory` objects
//!   are notified. It starts an image replayer per new image and stops the replayer of images
//!   no longer mirrored, removing their local replica if it is non-primary.
//! * An **image replayer** (`image_task.rs`) loops: bootstrap ([`crate::bootstrap`]),
//!   then live replay ([`crate::replayer`]) until something changes, reporting its
//!   [`ImageStatus`]. Errors are reported and retried after [`AgentOptions::retry_interval`];
//!   split-brain stops replay for that image until a resync is requested on the local image.
//! * Image replayers do not have a thread each ([`crate::replay_pool`]): a few replay threads
//!   ([`AgentOptions::replay_threads`]) step the replays of all images, and a few bootstrap
//!   threads ([`AgentOptions::bootstrap_threads`]) run the bootstraps, whose image syncs may
//!   take long. An agent with 1,000 images runs about ten threads, not 1,000.
//! * Only one agent mirrors a (local, remote) pair at a time: an agent replays only while it
//!   holds the pair's leader lease ([`crate::leader`]). A second agent started for the same
//!   pair waits as a standby ([`AgentHandle::is_leader`] false) and takes over when the first
//!   stops, or when its lease runs out.
//! * One-way mirroring runs one agent on the secondary site; a primary with several
//!   secondaries has one agent per secondary (each its own client and position on the primary's
//!   journals). Two-way mirroring runs an agent on each site with the other as remote: for each
//!   image, the side where it is primary finds "local image is primary" and stays idle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use parking_lot::Mutex;

use crate::bootstrap::{BootstrapOptions, ImageLink};
use crate::error::{ReplayError, Result};
use crate::image_journal;
use crate::image_task::ImageTask;
use crate::leader::LeaderLease;
use crate::replay_pool::ReplayPool;
use crate::replayer::ReplayerOptions;
use crate::site::{Site, DIRECTORY_OID};
use crate::site_mirror::{self, MirrorImageState, MirrorMode, MIRRORING_OID};
use crate::status::ImageStatus;

/// Agent settings.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Replay settings (poll age, flush and commit intervals, replay delay).
    pub replayer: ReplayerOptions,
    /// Bootstrap settings (sync chunking, resync after disconnect).
    pub bootstrap: BootstrapOptions,
    /// How often the remote site's image list is re-read. Default 500 ms.
    pub scan_interval: Duration,
    /// Pause before retrying an image after an error or while it is stopped / split-brain.
    /// Default 200 ms.
    pub retry_interval: Duration,
    /// Threads that run the image replayers' live replay, each serving its share of the
    /// images in turns of at most 64 entries. Default: the number of cores, at least 2 and at
    /// most 8 (replay is store I/O and CPU; more threads than cores only add switches).
    pub replay_threads: usize,
    /// Threads that bootstrap images (replica creation, image sync, resync): at most this many
    /// image syncs run at once, as Ceph's `rbd_mirror_concurrent_image_syncs` (default 5). A
    /// sync that blocks holds one; images already replaying are not held up. Default 5.
    pub bootstrap_threads: usize,
    /// How long the agent's leader lease lasts ([`crate::leader`]): a standby agent takes over
    /// at most this long after the leader stopped renewing it (a leader stopped in an orderly
    /// way hands over at once), and a leader that cannot renew steps down after half of it.
    /// Default 10 s.
    pub leader_lease: Duration,
    /// This agent's id in the leader lease. `None` (the default): a fresh random id, so a
    /// restarted agent waits for its predecessor's lease to run out. Give the same id to the
    /// same agent across restarts (never to two agents running at once) to take the lease
    /// back at once after a crash.
    pub agent_id: Option<String>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            replayer: ReplayerOptions::default(),
            bootstrap: BootstrapOptions::default(),
            scan_interval: Duration::from_millis(500),
            retry_interval: Duration::from_millis(200),
            replay_threads: std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get)
                .clamp(2, 8),
            bootstrap_threads: 5,
            leader_lease: Duration::from_secs(10),
            agent_id: None,
        }
    }
}

struct ImageWorker {
    stop: Arc<AtomicBool>,
    /// The replay thread serving the image (woken when the image stops).
    home: usize,
    status: Arc<Mutex<ImageStatus>>,
    /// Disconnects once the image's task was dropped (finished).
    done: Receiver<()>,
}

impl ImageWorker {
    /// Asks the image's task to end and wakes its replay thread, without waiting.
    fn request_stop(&self, pool: &ReplayPool) {
        self.stop.store(true, Ordering::Relaxed);
        pool.wake(self.home);
    }

    fn stop_and_join(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Err once the task is gone: the channel carries no messages.
        let _ = self.done.recv();
    }

    /// Whether the image's task was dropped (its replayer flushed and committed).
    fn finished(&self) -> bool {
        matches!(self.done.try_recv(), Err(TryRecvError::Disconnected))
    }
}

type Workers = Arc<Mutex<BTreeMap<String, ImageWorker>>>;

/// The mirror agent entry point.
#[derive(Debug)]
pub struct MirrorAgent;

impl MirrorAgent {
    /// Starts mirroring from `remote` into `local`: registers the remote as a peer of the local
    /// site and starts the pool watcher. Returns a handle to query status and stop.
    pub fn start(local: Site, remote: Site, options: AgentOptions) -> Result<AgentHandle> {
        let local_uuid = local.mirror_uuid()?;
        let remote_uuid = remote.mirror_uuid()?;
        if local_uuid == remote_uuid {
            return Err(ReplayError::Invalid(
                "local and remote site have the same mirror uuid".into(),
            ));
        }
        local.add_peer(&remote_uuid, "remote")?;
        let stop = Arc::new(AtomicBool::new(false));
        // Never sent on: dropping the sender wakes the pool watcher at shutdown.
        let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(0);
        let workers: Workers = Arc::new(Mutex::new(BTreeMap::new()));
        let leader = Arc::new(AtomicBool::new(false));
        let lease = LeaderLease::new(
            Arc::clone(local.store()),
            &remote_uuid,
            options
                .agent_id
                .clone()
                .unwrap_or_else(crate::ids::random_uuid),
            options.leader_lease,
        );
        let pool = Arc::new(ReplayPool::start(
            options.replay_threads,
            options.bootstrap_threads,
            &stop,
        )?);
        let ctx = AgentCtx {
            local,
            remote,
            local_uuid,
            remote_uuid,
            options: Arc::new(options),
            stop: Arc::clone(&stop),
            wake: wake_rx,
            workers: Arc::clone(&workers),
            pool: Arc::clone(&pool),
            retiring: Vec::new(),
            lease,
            leader: Arc::clone(&leader),
        };
        let thread = std::thread::Builder::new()
            .name("mirror-pool-watcher".into())
            .spawn(move || ctx.pool_watcher());
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                pool.join();
                return Err(ReplayError::Invalid(format!("spawn: {e}")));
            }
        };
        Ok(AgentHandle {
            stop,
            wake: Some(wake_tx),
            workers,
            pool,
            leader,
            thread: Some(thread),
        })
    }
}

/// A running agent. Dropping it stops it (as [`AgentHandle::stop`]).
pub struct AgentHandle {
    stop: Arc<AtomicBool>,
    /// Dropped at shutdown to wake the pool watcher.
    wake: Option<Sender<()>>,
    workers: Workers,
    pool: Arc<ReplayPool>,
    leader: Arc<AtomicBool>,
    /// The pool watcher; it hands its leader lease back when it ends.
    thread: Option<JoinHandle<LeaderLease>>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle").finish_non_exhaustive()
    }
}

impl AgentHandle {
    /// Status of every image the agent handles, by name.
    pub fn status(&self) -> Vec<ImageStatus> {
        let workers = self.workers.lock();
        let mut out: Vec<ImageStatus> = workers.values().map(|w| w.status.lock().clone()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Whether this agent holds the pair's leader lease and mirrors; `false` while it waits as
    /// a standby behind another agent ([`crate::leader`]).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Status of image `name`, if the agent handles it.
    pub fn image_status(&self, name: &str) -> Option<ImageStatus> {
        self.status().into_iter().find(|s| s.name == name)
    }

    /// Stops every image replayer (flushing and committing what was applied) and the pool
    /// watcher, and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.wake.take());
        let lease = self.thread.take().and_then(|t| t.join().ok());
        let workers = std::mem::take(&mut *self.workers.lock());
        for w in workers.values() {
            w.stop.store(true, Ordering::Relaxed);
        }
        self.pool.join();
        for w in workers.values() {
            w.stop_and_join();
        }
        // Only now that nothing replays any more may another agent take over.
        if let Some(mut lease) = lease {
            lease.release();
        }
        self.leader.store(false, Ordering::Relaxed);
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct AgentCtx {
    local: Site,
    remote: Site,
    local_uuid: String,
    remote_uuid: String,
    options: Arc<AgentOptions>,
    stop: Arc<AtomicBool>,
    /// Disconnects when the agent stops (wakes the watcher's waits).
    wake: Receiver<()>,
    workers: Workers,
    pool: Arc<ReplayPool>,
    /// Images no longer mirrored, stopping: their replica is removed once their task finished
    /// (without waiting for it here: a task queued behind blocked bootstraps ends late).
    retiring: Vec<(String, ImageWorker)>,
    /// The pair's leader lease: the watcher starts replayers only while it holds it.
    lease: LeaderLease,
    /// Mirrors [`LeaderLease::is_leader`] for the handle.
    leader: Arc<AtomicBool>,
}

impl AgentCtx {
    fn pool_watcher(mut self) -> LeaderLease {
        let store = Arc::clone(self.remote.store());
        let watches = [
            store.watch(MIRRORING_OID).ok(),
            store.watch(DIRECTORY_OID).ok(),
        ];
        while !self.stop.load(Ordering::Relaxed) {
            let leader = self.lease.tick();
            self.leader.store(leader, Ordering::Relaxed);
            if leader {
                if let Err(e) = self.scan() {
                    tracing::warn!("mirror pool scan failed: {e}");
                }
            } else {
                self.step_down();
            }
            let end = (Instant::now() + self.options.scan_interval).min(self.lease.next_attempt());
            while !self.stop.load(Ordering::Relaxed) && Instant::now() < end {
                if watches.iter().flatten().any(|w| w.drain() > 0)
                    || self.retiring.iter().any(|(_, w)| w.finished())
                    || (leader && !self.lease.is_leader())
                {
                    break;
                }
                // Wake on a notification or at shutdown, else look again every 20 ms.
                let wait = end
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(20));
                let mut sel = Select::new();
                sel.recv(&self.wake);
                for w in watches.iter().flatten() {
                    sel.recv(w.receiver());
                }
                let _ = sel.ready_timeout(wait);
            }
        }
        self.lease
    }

    /// Not (or no longer) the leader: stop every image replayer, keeping the replicas, so that
    /// nothing replays here once another agent may take over.
    fn step_down(&mut self) {
        let workers = std::mem::take(&mut *self.workers.lock());
        if workers.is_empty() {
            return;
        }
        tracing::warn!(
            "mirror agent lost its leader lease (held by {:?}): stopping {} image replayers",
            self.lease.other_holder,
            workers.len()
        );
        for w in workers.values() {
            w.request_stop(&self.pool);
        }
        for w in workers.values() {
            w.stop_and_join();
        }
    }

    /// Starts replayers for new mirrored images and retires those no longer mirrored.
    fn scan(&mut self) -> Result<()> {
        let mode = self.remote.mirror_mode()?;
        let records = if mode == MirrorMode::Disabled {
            BTreeMap::new()
        } else {
            site_mirror::image_records(self.remote.store().as_ref())?
        };
        let wanted: BTreeMap<String, String> = records
            .into_iter()
            .filter(|(_, r)| r.state == MirrorImageState::Enabled)
            .map(|(id, r)| (r.global_id, id))
            .collect();
        let gone: Vec<String> = {
            let workers = self.workers.lock();
            workers
                .keys()
                .filter(|g| !wanted.contains_key(*g))
                .cloned()
                .collect()
        };
        for global_id in gone {
            let worker = self.workers.lock().remove(&global_id);
            if let Some(w) = worker {
                w.request_stop(&self.pool);
                self.retiring.push((global_id, w));
            }
        }
        let mut first_error = None;
        for (global_id, w) in std::mem::take(&mut self.retiring) {
            if !w.finished() {
                self.retiring.push((global_id, w));
            } else if let Err(e) = self.remove_replica(&global_id) {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for (global_id, remote_id) in wanted {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            // A retiring replayer of the same image must end (and its replica go) first.
            if self.workers.lock().contains_key(&global_id)
                || self.retiring.iter().any(|(g, _)| *g == global_id)
            {
                continue;
            }
            let name = self
                .remote
                .image_info_by_id(&remote_id)
                .map(|i| i.name)
                .unwrap_or_default();
            let status = Arc::new(Mutex::new(ImageStatus::starting(&name, &global_id)));
            let link = ImageLink {
                local: self.local.clone(),
                remote: self.remote.clone(),
                local_uuid: self.local_uuid.clone(),
                remote_uuid: self.remote_uuid.clone(),
                global_id: global_id.clone(),
                remote_id,
            };
            let (home, load) = self.pool.least_loaded();
            let (task, stop, done) = ImageTask::new(
                link,
                Arc::clone(&self.options),
                Arc::clone(&status),
                home,
                load,
            );
            self.workers.lock().insert(
                global_id,
                ImageWorker {
                    stop,
                    home,
                    status,
                    done,
                },
            );
            self.pool.submit(task);
        }
        Ok(())
    }

    /// Removes the local replica of `global_id` if it exists and is not primary.
    fn remove_replica(&self, global_id: &str) -> Result<()> {
        let store = self.local.store().as_ref();
        let Some(id) = site_mirror::image_id_by_global(store, global_id)? else {
            return Ok(());
        };
        let info = self.local.image_info_by_id(&id)?;
        let (_, tag) = image_journal::current_tag(&self.local.journal_header(&id))?;
        if tag.is_local_primary() {
            return Ok(());
        }
        self.local.remove_image_by_id(&info.name, &id)
    }
}
