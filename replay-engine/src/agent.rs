//! The mirror agent: what Ceph's rbd-mirror daemon does for journal-based mirroring, for one
//! (local site, remote site) pair.
//!
//! * A **pool watcher** thread lists the remote site's mirrored images (`rbd_mirroring` image
//!   records: in pool mode every journaled image, in image mode those enabled one by one) every
//!   [`AgentOptions::scan_interval`] or when the remote `rbd_mirroring` / `rbd_directory` objects
//!   are notified. It starts an image replayer thread per new image and stops the replayer of
//!   images no longer mirrored, removing their local replica if it is non-primary.
//! * An **image replayer** thread loops: bootstrap ([`crate::bootstrap`]), then live replay
//!   ([`crate::replayer`]) until something changes, reporting its [`ImageStatus`]. Errors are
//!   reported and retried after [`AgentOptions::retry_interval`]; split-brain stops replay for
//!   that image until a resync is requested on the local image.
//! * One-way mirroring runs one agent on the secondary site; a primary with several
//!   secondaries has one agent per secondary (each its own client and position on the primary's
//!   journals). Two-way mirroring runs an agent on each site with the other as remote: for each
//!   image, the side where it is primary finds "local image is primary" and stays idle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use journal_client::image::{BlockImage, RBD_OBJECT_ORDER};

use crate::applier::ApplierSink;
use crate::bootstrap::{self, BootstrapOptions, Bootstrapped, ImageLink};
use crate::error::{ReplayError, Result};
use crate::image_journal;
use crate::replayer::{ReplayEnd, ReplayLink, Replayer, ReplayerOptions};
use crate::site::{Site, DIRECTORY_OID};
use crate::site_mirror::{self, MirrorImageState, MirrorMode, MIRRORING_OID};
use crate::status::{ImageState, ImageStatus};
use crate::write_back::WriteBackImage;

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
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            replayer: ReplayerOptions::default(),
            bootstrap: BootstrapOptions::default(),
            scan_interval: Duration::from_millis(500),
            retry_interval: Duration::from_millis(200),
        }
    }
}

struct ImageWorker {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<ImageStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl ImageWorker {
    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
        let workers: Workers = Arc::new(Mutex::new(BTreeMap::new()));
        let ctx = AgentCtx {
            local,
            remote,
            local_uuid,
            remote_uuid,
            options,
            stop: Arc::clone(&stop),
            workers: Arc::clone(&workers),
        };
        let thread = std::thread::Builder::new()
            .name("mirror-pool-watcher".into())
            .spawn(move || ctx.pool_watcher())
            .map_err(|e| ReplayError::Invalid(format!("spawn: {e}")))?;
        Ok(AgentHandle {
            stop,
            workers,
            thread: Some(thread),
        })
    }
}

/// A running agent. Dropping it stops it (as [`AgentHandle::stop`]).
pub struct AgentHandle {
    stop: Arc<AtomicBool>,
    workers: Workers,
    thread: Option<JoinHandle<()>>,
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
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut workers = std::mem::take(&mut *self.workers.lock());
        for w in workers.values_mut() {
            w.stop.store(true, Ordering::Relaxed);
        }
        for w in workers.values_mut() {
            w.stop_and_join();
        }
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Clone)]
struct AgentCtx {
    local: Site,
    remote: Site,
    local_uuid: String,
    remote_uuid: String,
    options: AgentOptions,
    stop: Arc<AtomicBool>,
    workers: Workers,
}

/// Sleeps up to `d`, returning early when `stop` is raised.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(5)));
    }
}

impl AgentCtx {
    fn pool_watcher(self) {
        let store = Arc::clone(self.remote.store());
        let watches = [
            store.watch(MIRRORING_OID).ok(),
            store.watch(DIRECTORY_OID).ok(),
        ];
        while !self.stop.load(Ordering::Relaxed) {
            if let Err(e) = self.scan() {
                tracing::warn!("mirror pool scan failed: {e}");
            }
            let end = Instant::now() + self.options.scan_interval;
            while !self.stop.load(Ordering::Relaxed) && Instant::now() < end {
                if watches.iter().flatten().any(|w| w.drain() > 0) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Starts replayers for new mirrored images and retires those no longer mirrored.
    fn scan(&self) -> Result<()> {
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
            if let Some(mut w) = worker {
                w.stop_and_join();
            }
            self.remove_replica(&global_id)?;
        }
        for (global_id, remote_id) in wanted {
            if self.workers.lock().contains_key(&global_id) {
                continue;
            }
            let name = self
                .remote
                .image_info_by_id(&remote_id)
                .map(|i| i.name)
                .unwrap_or_default();
            let status = Arc::new(Mutex::new(ImageStatus::starting(&name, &global_id)));
            let stop = Arc::new(AtomicBool::new(false));
            let link = ImageLink {
                local: self.local.clone(),
                remote: self.remote.clone(),
                local_uuid: self.local_uuid.clone(),
                remote_uuid: self.remote_uuid.clone(),
                global_id: global_id.clone(),
                remote_id,
            };
            let worker_ctx = (
                link,
                self.options.clone(),
                Arc::clone(&stop),
                Arc::clone(&status),
            );
            let thread = std::thread::Builder::new()
                .name(format!("mirror-{name}"))
                .spawn(move || image_worker(worker_ctx.0, worker_ctx.1, worker_ctx.2, worker_ctx.3))
                .map_err(|e| ReplayError::Invalid(format!("spawn: {e}")))?;
            self.workers.lock().insert(
                global_id,
                ImageWorker {
                    stop,
                    status,
                    thread: Some(thread),
                },
            );
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

fn set_status(status: &Mutex<ImageStatus>, state: ImageState, description: String) {
    let mut st = status.lock();
    st.state = state;
    st.description = description;
    if st.state != ImageState::Replaying {
        st.entries_per_second = 0.0;
        st.bytes_per_second = 0.0;
    }
}

/// The image replayer loop (see the module docs).
fn image_worker(
    link: ImageLink,
    options: AgentOptions,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<ImageStatus>>,
) {
    while !stop.load(Ordering::Relaxed) {
        status.lock().state = ImageState::Starting;
        match run_image_once(&link, &options, &stop, &status) {
            Ok(None) => {}
            Ok(Some((state, why))) => {
                set_status(&status, state, why);
                sleep_unless(&stop, options.retry_interval);
            }
            Err(e) => {
                set_status(&status, ImageState::Error, e.to_string());
                sleep_unless(&stop, options.retry_interval);
            }
        }
    }
    let mut st = status.lock();
    if st.state == ImageState::Replaying || st.state == ImageState::Syncing {
        st.state = ImageState::Stopped;
        st.description = "agent stopped".into();
    }
}

/// One bootstrap + replay round. `Ok(None)`: go round again at once; `Ok(Some)`: report this
/// state and pause.
fn run_image_once(
    link: &ImageLink,
    options: &AgentOptions,
    stop: &AtomicBool,
    status: &Arc<Mutex<ImageStatus>>,
) -> Result<Option<(ImageState, String)>> {
    let local_id = match bootstrap::bootstrap(link, &options.bootstrap, stop, status)? {
        Bootstrapped::Replay { local_id } => local_id,
        Bootstrapped::Stopped(why) => return Ok(Some((ImageState::Stopped, why))),
        Bootstrapped::SplitBrain(why) => return Ok(Some((ImageState::SplitBrain, why))),
        Bootstrapped::Interrupted => return Ok(None),
    };
    let image: Arc<dyn BlockImage> = link.local.open_image_by_id(&local_id)?;
    let image: Arc<dyn BlockImage> = match options.replayer.write_back_chunks {
        0 => image,
        n => Arc::new(WriteBackImage::new(image, 1 << RBD_OBJECT_ORDER, n)),
    };
    let sink = ApplierSink::new(image, options.replayer.flush_every_entries);
    let replay_link = ReplayLink {
        remote_header: link.remote_header(),
        local_header: link.local.journal_header(&local_id),
        local_uuid: link.local_uuid.clone(),
        remote_uuid: link.remote_uuid.clone(),
    };
    let mut replayer = Replayer::new(
        replay_link,
        Box::new(sink),
        options.replayer.clone(),
        Arc::clone(status),
    )?;
    match replayer.run(stop)? {
        ReplayEnd::Stopped => Ok(None),
        ReplayEnd::RemoteDemoted => Ok(Some((
            ImageState::Stopped,
            "remote image was demoted".into(),
        ))),
        ReplayEnd::LocalPromoted | ReplayEnd::ResyncRequested | ReplayEnd::Disconnected => Ok(None),
    }
}
