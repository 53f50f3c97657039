//! RADOS watch (`rados_watch2`) delivering notifications to a crossbeam channel, registered
//! again after a watch error.
//!
//! librados reports a lost watch (the OSD dropped it: a session reset longer than the watch
//! timeout, the client blocklisted, the object deleted) through the error callback, and from
//! then on delivers nothing for it. As librbd's `Watcher` does, the error callback hands the
//! watch to the store's re-watch thread (no librados call may block inside a callback), which
//! unregisters the old cookie and registers the watch again. While the cluster refuses, it
//! tries again after a delay that doubles from 100 ms to 5 s. A missing object (`-ENOENT`) is
//! never created by a re-watch: the watch waits, on the same schedule, until someone creates
//! the object again. The watcher gets one notification with an empty payload once the watch is
//! back, and one when its object is found missing: notifications may have been missed
//! meanwhile, so it must re-read what it watches.

use std::ffi::{c_int, c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use object_store_trait::{Notification, WatchSender};

use super::*;

/// First delay before registering a watch again after a failed attempt; doubled per failure.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest delay between attempts (Ceph's journal poll interval, `rbd_mirror_journal_poll_age`).
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A watch error reported by librados (or injected by [`crate::RadosStore`]'s test hook).
#[derive(Debug)]
pub(crate) struct WatchFault {
    /// The watch whose registration failed.
    pub(crate) watch: Weak<WatchShared>,
    /// The registration (cookie) that failed; a fault for an older one is ignored.
    pub(crate) cookie: u64,
    /// The negative errno librados gave.
    pub(crate) err: c_int,
}

/// State shared with the watch callbacks. Boxed; its address is the callbacks' `arg`, the same
/// for every registration of one watch.
struct WatchCtx {
    io: IoCtxT,
    oid_c: CString,
    oid: String,
    tx: WatchSender,
    faults: Sender<WatchFault>,
    watch: Weak<WatchShared>,
}

impl WatchCtx {
    /// Queues a notification with `payload` for the watcher (and runs its waker).
    fn deliver(&self, payload: Bytes) {
        let _ = self.tx.send(Notification {
            oid: self.oid.clone(),
            payload,
        });
    }
}

extern "C" fn watch_cb(
    arg: *mut c_void,
    notify_id: u64,
    cookie: u64,
    _notifier_id: u64,
    data: *mut c_void,
    data_len: usize,
) {
    if arg.is_null() {
        return;
    }
    // SAFETY: `arg` is the `Box<WatchCtx>` leaked in `IoCtx::watch`; it is freed only after
    // `rados_unwatch2` and `rados_watch_flush` guarantee no callback is running or will run.
    #[allow(unsafe_code)]
    let ctx = unsafe { &*arg.cast::<WatchCtx>() };
    let payload = if data.is_null() || data_len == 0 {
        Bytes::new()
    } else {
        // SAFETY: librados passes `data_len` readable bytes at `data` for the callback's duration.
        #[allow(unsafe_code)]
        let slice = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), data_len) };
        Bytes::copy_from_slice(slice)
    };
    // Deliver (and run the watch's waker) before acking, so the notifier returns only after
    // the watcher has it queued.
    ctx.deliver(payload);
    // SAFETY: `ctx.io` is the ioctx the watch was registered on, alive until after unwatch and
    // flush; an empty ack payload (NULL, 0) is allowed.
    #[allow(unsafe_code)]
    let _ = unsafe {
        rados_notify_ack(
            ctx.io,
            ctx.oid_c.as_ptr(),
            notify_id,
            cookie,
            ptr::null(),
            0,
        )
    };
}

extern "C" fn watch_err_cb(arg: *mut c_void, cookie: u64, err: c_int) {
    tracing::warn!(
        cookie,
        err,
        "RADOS watch error; registering the watch again"
    );
    if arg.is_null() {
        return;
    }
    // SAFETY: as in `watch_cb`: the context outlives every callback of every registration.
    #[allow(unsafe_code)]
    let ctx = unsafe { &*arg.cast::<WatchCtx>() };
    // The re-watch thread runs as long as a watch (holding this sender) exists.
    let _ = ctx.faults.send(WatchFault {
        watch: ctx.watch.clone(),
        cookie,
        err,
    });
}

/// A RADOS watch and its current registration. Dropping the last reference unwatches, flushes
/// callbacks and frees the callbacks' context.
#[derive(Debug)]
pub(crate) struct WatchShared {
    io: IoCtx,
    /// The current registration's cookie, 0 while unregistered (librados cookies are nonzero).
    /// Changed only by the re-watch thread, which holds a strong reference meanwhile, so never
    /// concurrently with `Drop`.
    cookie: AtomicU64,
    ctx: *mut c_void,
}

// SAFETY: `ctx` is only dereferenced by librados callbacks, by `deliver_wakeup` (reading the
// sender, itself `Sync`) and in Drop after the callbacks stopped; no thread-affine state.
#[allow(unsafe_code)]
unsafe impl Send for WatchShared {}
// SAFETY: as above; shared access only reads `ctx` and the atomic cookie.
#[allow(unsafe_code)]
unsafe impl Sync for WatchShared {}

/// What a registration attempt ended with.
#[derive(Debug, PartialEq, Eq)]
enum Rewatch {
    /// Registered (again).
    Watching,
    /// Nothing to do: the fault was for an older registration.
    Current,
    /// The object does not exist; the watch stays unregistered.
    Gone,
    /// The cluster refused (this errno).
    Failed(c_int),
}

impl IoCtx {
    /// Registers a watch on `oid` (which must exist: RADOS answers `-ENOENT` otherwise), taking
    /// ownership of this ioctx for the watch's lifetime. Watch errors go to `faults` (the
    /// store's re-watch thread, [`rewatch_loop`]).
    pub(crate) fn watch(
        self,
        oid: &str,
        tx: WatchSender,
        faults: Sender<WatchFault>,
    ) -> RadosResult<Arc<WatchShared>> {
        let oid_c = cstr(oid)?;
        let io = self.handle;
        let watch = Arc::new_cyclic(|weak| {
            let ctx = Box::new(WatchCtx {
                io,
                oid_c,
                oid: oid.to_owned(),
                tx,
                faults,
                watch: weak.clone(),
            });
            WatchShared {
                io: self,
                cookie: AtomicU64::new(0),
                ctx: Box::into_raw(ctx).cast(),
            }
        });
        match watch.register() {
            Rewatch::Watching | Rewatch::Current => Ok(watch),
            // Dropping `watch` frees the context (nothing is registered).
            Rewatch::Gone => Err(-ENOENT),
            Rewatch::Failed(r) => Err(r),
        }
    }
}

impl WatchShared {
    /// Registers the watch (`rados_watch2`) with the shared context; records the new cookie.
    fn register(&self) -> Rewatch {
        let arg = self.ctx.cast::<WatchCtx>();
        let mut cookie = 0u64;
        // SAFETY: live ioctx; `arg` points to the live WatchCtx this watch owns (read through
        // `arg` to avoid aliasing the box); the callbacks are `extern "C"` functions matching
        // librados' typedefs.
        #[allow(unsafe_code)]
        let r = unsafe {
            rados_watch2(
                self.io.handle,
                (*arg).oid_c.as_ptr(),
                &mut cookie,
                watch_cb,
                watch_err_cb,
                arg.cast(),
            )
        };
        match r {
            0 => {
                self.cookie.store(cookie, Ordering::Release);
                Rewatch::Watching
            }
            r if r == -ENOENT => Rewatch::Gone,
            r => Rewatch::Failed(r),
        }
    }

    /// Unregisters the current registration, if any, and waits until none of its callbacks
    /// runs or is queued.
    fn unregister(&self) {
        let cookie = self.cookie.swap(0, Ordering::AcqRel);
        if cookie != 0 {
            // SAFETY: unregisters a watch registered by `register` on this ioctx (once: the
            // cookie was taken out above).
            #[allow(unsafe_code)]
            let _ = unsafe { rados_unwatch2(self.io.handle, cookie) };
        }
        self.io.cluster.watch_flush();
    }

    /// The current registration's cookie (0 while unregistered).
    fn cookie(&self) -> u64 {
        self.cookie.load(Ordering::Acquire)
    }

    /// Replaces registration `failed` (0: none) by a new one. Call only from the re-watch
    /// thread. A stale fault (the watch was registered again since) changes nothing.
    fn rewatch(&self, failed: u64) -> Rewatch {
        if self.cookie() != failed {
            return Rewatch::Current;
        }
        self.unregister();
        self.register()
    }

    /// Queues the empty notification that tells the watcher to re-read what it watches.
    fn deliver_wakeup(&self) {
        // SAFETY: the context lives as long as `self`.
        #[allow(unsafe_code)]
        let ctx = unsafe { &*self.ctx.cast::<WatchCtx>() };
        ctx.deliver(Bytes::new());
    }
}

impl Drop for WatchShared {
    fn drop(&mut self) {
        self.unregister();
        // SAFETY: after unwatch + flush no callback runs or is queued, and no registration is
        // left, so the context leaked in `IoCtx::watch` can be reclaimed, exactly once.
        #[allow(unsafe_code)]
        drop(unsafe { Box::from_raw(self.ctx.cast::<WatchCtx>()) });
    }
}

/// A watch waiting for its next registration attempt.
struct Pending {
    at: Instant,
    delay: Duration,
    watch: Weak<WatchShared>,
    /// The watcher was told its object is missing (tell it once).
    told_gone: bool,
}

/// The re-watch thread's loop: registers every faulted watch again, retrying after
/// [`RETRY_FIRST`], doubling up to [`RETRY_MAX`]. Returns once every sender (the store's and
/// every watch context's) is gone.
pub(crate) fn rewatch_loop(faults: &Receiver<WatchFault>) {
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        let next = pending.iter().map(|p| p.at).min();
        let received = match next {
            Some(at) => faults.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => faults.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(fault) => {
                let Some(watch) = fault.watch.upgrade() else {
                    continue;
                };
                tracing::debug!(cookie = fault.cookie, err = fault.err, "re-watching");
                // A watch already waiting for its next attempt keeps its schedule.
                if pending.iter().any(|p| p.watch.ptr_eq(&fault.watch)) {
                    continue;
                }
                let outcome = watch.rewatch(fault.cookie);
                settle(&watch, outcome, RETRY_FIRST, false, &mut pending);
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let (due, later): (Vec<Pending>, Vec<Pending>) =
                    pending.drain(..).partition(|p| p.at <= now);
                pending = later;
                for p in due {
                    if let Some(watch) = p.watch.upgrade() {
                        let outcome = watch.rewatch(0);
                        let delay = (p.delay * 2).min(RETRY_MAX);
                        settle(&watch, outcome, delay, p.told_gone, &mut pending);
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Acts on a registration attempt: wakes the watcher once the watch is back, or when its
/// object is first found missing, and schedules the next attempt after `delay` unless the
/// watch is registered.
fn settle(
    watch: &Arc<WatchShared>,
    outcome: Rewatch,
    delay: Duration,
    told_gone: bool,
    pending: &mut Vec<Pending>,
) {
    let told_gone = match outcome {
        Rewatch::Current => return,
        Rewatch::Watching => {
            watch.deliver_wakeup();
            return;
        }
        Rewatch::Gone => {
            if !told_gone {
                watch.deliver_wakeup();
            }
            true
        }
        Rewatch::Failed(err) => {
            tracing::warn!(err, ?delay, "re-watch refused; trying again");
            told_gone
        }
    };
    pending.push(Pending {
        at: Instant::now() + delay,
        delay,
        watch: Arc::downgrade(watch),
        told_gone,
    });
}
