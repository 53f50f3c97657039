//! One mirrored image as the agent's threads hand it around ([`crate::agent`]): its link, its
//! status, its stop flag and where it is in the image replayer's cycle.
//!
//! The cycle is the one Ceph's image replayer runs: **bootstrap** ([`crate::bootstrap`]: create
//! the replica, register, sync), then **replay** ([`crate::replayer`]) until something changes,
//! then bootstrap again, at once or after [`crate::agent::AgentOptions::retry_interval`] (after
//! an error, a stop, a split-brain). Bootstrap may block for as long as an image sync takes, so
//! it runs on the agent's bootstrap threads; replay runs in bounded, non-blocking steps on a
//! replay thread (the task's *home*), which serves many images.
//!
//! Dropping a task finishes it: a replayer it holds is flushed and commits its position, and
//! the status leaves `Replaying` / `Syncing` for `Stopped`. Whoever waits for the task to end
//! ([`ImageTask::new`]'s receiver) is released then.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use journal_client::image::{BlockImage, RBD_OBJECT_ORDER};
use parking_lot::Mutex;

use crate::agent::AgentOptions;
use crate::applier::ApplierSink;
use crate::bootstrap::{self, Bootstrapped, ImageLink};
use crate::error::Result;
use crate::replayer::{ReplayEnd, ReplayLink, Replayer, Step, STEP_ENTRIES};
use crate::status::{ImageState, ImageStatus};
use crate::write_back::WriteBackImage;

/// Where an image is in its cycle.
pub(crate) enum Phase {
    /// Bootstrap next, not before this instant.
    Bootstrap(Instant),
    /// Live replay.
    Replay(Box<Replayer>),
}

/// A round's result: `Ok(None)` go round again at once; `Ok(Some)` report this state and
/// pause; `Err` report the error and pause.
type Outcome = Result<Option<(ImageState, String)>>;

/// One mirrored image (see the module docs).
pub(crate) struct ImageTask {
    link: ImageLink,
    options: Arc<AgentOptions>,
    /// Raised to stop this image (agent shutdown, image no longer mirrored).
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<ImageStatus>>,
    /// Index of the replay thread that serves this image.
    pub(crate) home: usize,
    /// Images homed on that thread; this task counts one until dropped.
    home_load: Arc<AtomicUsize>,
    pub(crate) phase: Phase,
    /// Dropped with the task: disconnects the receiver [`ImageTask::new`] returned.
    _done: Sender<()>,
}

impl ImageTask {
    /// A task that bootstraps first, homed on replay thread `home` (whose image count is
    /// `home_load`). The receiver disconnects when the task is dropped (finished).
    pub(crate) fn new(
        link: ImageLink,
        options: Arc<AgentOptions>,
        status: Arc<Mutex<ImageStatus>>,
        home: usize,
        home_load: Arc<AtomicUsize>,
    ) -> (ImageTask, Arc<AtomicBool>, Receiver<()>) {
        let (done_tx, done_rx) = crossbeam_channel::bounded(0);
        let stop = Arc::new(AtomicBool::new(false));
        home_load.fetch_add(1, Ordering::Relaxed);
        let task = ImageTask {
            link,
            options,
            stop: Arc::clone(&stop),
            status,
            home,
            home_load,
            phase: Phase::Bootstrap(Instant::now()),
            _done: done_tx,
        };
        (task, stop, done_rx)
    }

    /// Whether the task was asked to stop.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs bootstrap (blocking; it may run an image sync) and, when it says so, starts the
    /// replayer: afterwards the phase is `Replay`, or `Bootstrap` again at once or after the
    /// retry interval.
    pub(crate) fn bootstrap(&mut self) {
        self.status.lock().state = ImageState::Starting;
        match self.start_replayer() {
            Ok(Ok(replayer)) => self.phase = Phase::Replay(Box::new(replayer)),
            Ok(Err(outcome)) => self.retry(Ok(outcome)),
            Err(e) => self.retry(Err(e)),
        }
    }

    /// Bootstrap, then the replayer it calls for (`Ok(Err)`: the round ended without one).
    fn start_replayer(
        &self,
    ) -> Result<std::result::Result<Replayer, Option<(ImageState, String)>>> {
        let link = &self.link;
        let options = &self.options;
        let local_id =
            match bootstrap::bootstrap(link, &options.bootstrap, &self.stop, &self.status)? {
                Bootstrapped::Replay { local_id } => local_id,
                Bootstrapped::Stopped(why) => return Ok(Err(Some((ImageState::Stopped, why)))),
                Bootstrapped::SplitBrain(why) => {
                    return Ok(Err(Some((ImageState::SplitBrain, why))))
                }
                Bootstrapped::Interrupted => return Ok(Err(None)),
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
        let replayer = Replayer::new(
            replay_link,
            Box::new(sink),
            options.replayer.clone(),
            Arc::clone(&self.status),
        )?;
        Ok(Ok(replayer))
    }

    /// One bounded replay step. Returns when the task wants to run again (it may run earlier
    /// on a notification, see [`ImageTask::set_waker`]). When replay ended, the replayer was
    /// finished and the phase is `Bootstrap`.
    pub(crate) fn step(&mut self) -> Instant {
        let Phase::Replay(replayer) = &mut self.phase else {
            return Instant::now();
        };
        let outcome: Outcome = match replayer.step(&self.stop, STEP_ENTRIES) {
            Ok(Step::Busy) => return Instant::now(),
            Ok(Step::Idle(until)) => return until,
            Ok(Step::End(end)) => replayer.finish().map(|()| match end {
                ReplayEnd::RemoteDemoted => {
                    Some((ImageState::Stopped, "remote image was demoted".into()))
                }
                ReplayEnd::Stopped
                | ReplayEnd::LocalPromoted
                | ReplayEnd::ResyncRequested
                | ReplayEnd::Disconnected => None,
            }),
            Err(e) => {
                // Flush and commit what was applied, where possible (as `Replayer::run`).
                let _ = replayer.finish();
                Err(e)
            }
        };
        self.retry(outcome);
        match self.phase {
            Phase::Bootstrap(at) => at,
            Phase::Replay(_) => Instant::now(),
        }
    }

    /// Installs the waker a notification to the replayer's watches runs (nothing outside
    /// replay); see [`Replayer::set_waker`].
    pub(crate) fn set_waker(&mut self, waker: object_store_trait::Waker) {
        if let Phase::Replay(replayer) = &mut self.phase {
            replayer.set_waker(waker);
        }
    }

    /// Arms the replayer's waker again, before a step.
    pub(crate) fn arm_wakers(&self) {
        if let Phase::Replay(replayer) = &self.phase {
            // Pending notifications need no wake-up: the step that follows drains every watch
            // (`LivePlayer::try_next`, the local watch at the top of `Replayer::step`), and
            // one that arrives after the arming rings.
            let _ = replayer.arm_wakers();
        }
    }

    /// Reports `outcome` and schedules the next bootstrap.
    fn retry(&mut self, outcome: Outcome) {
        let pause = Instant::now() + self.options.retry_interval;
        let at = match outcome {
            Ok(None) => Instant::now(),
            Ok(Some((state, why))) => {
                set_status(&self.status, state, why);
                pause
            }
            Err(e) => {
                set_status(&self.status, ImageState::Error, e.to_string());
                pause
            }
        };
        self.phase = Phase::Bootstrap(at);
    }
}

impl Drop for ImageTask {
    fn drop(&mut self) {
        if let Phase::Replay(replayer) = &mut self.phase {
            if let Err(e) = replayer.finish() {
                set_status(&self.status, ImageState::Error, e.to_string());
            }
        }
        self.home_load.fetch_sub(1, Ordering::Relaxed);
        let mut st = self.status.lock();
        if st.state == ImageState::Replaying || st.state == ImageState::Syncing {
            st.state = ImageState::Stopped;
            st.description = "agent stopped".into();
        }
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
