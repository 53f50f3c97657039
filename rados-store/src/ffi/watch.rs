//! RADOS watch (`rados_watch2`) delivering notifications to a crossbeam channel.

use std::ffi::{c_int, c_void, CString};
use std::ptr;

use bytes::Bytes;
use object_store_trait::{Notification, WatchSender};

use super::*;

/// State shared with the watch callback. Boxed; its address is the callback's `arg`.
struct WatchCtx {
    io: IoCtxT,
    oid_c: CString,
    oid: String,
    tx: WatchSender,
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
    let _ = ctx.tx.send(Notification {
        oid: ctx.oid.clone(),
        payload,
    });
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

extern "C" fn watch_err_cb(_arg: *mut c_void, cookie: u64, err: c_int) {
    tracing::warn!(
        cookie,
        err,
        "RADOS watch error; notifications may be lost until re-watched"
    );
}

/// A registered RADOS watch. Dropping it unwatches, flushes callbacks and frees its state.
#[derive(Debug)]
pub(crate) struct WatchHandle {
    io: IoCtx,
    cookie: u64,
    ctx: *mut c_void,
}

// SAFETY: `ctx` is only dereferenced by librados callbacks and freed in Drop after they stopped;
// the handle itself holds no thread-affine state.
#[allow(unsafe_code)]
unsafe impl Send for WatchHandle {}
// SAFETY: `&WatchHandle` exposes nothing.
#[allow(unsafe_code)]
unsafe impl Sync for WatchHandle {}

impl IoCtx {
    /// Registers a watch on `oid` (which must exist: RADOS answers `-ENOENT` otherwise), taking
    /// ownership of this ioctx for the watch's lifetime.
    pub(crate) fn watch(self, oid: &str, tx: WatchSender) -> RadosResult<WatchHandle> {
        let ctx = Box::new(WatchCtx {
            io: self.handle,
            oid_c: cstr(oid)?,
            oid: oid.to_owned(),
            tx,
        });
        let arg: *mut WatchCtx = Box::into_raw(ctx);
        let mut cookie = 0u64;
        // SAFETY: live ioctx; `arg` points to a live WatchCtx (read through `arg` to avoid
        // aliasing the box); callbacks are `extern "C"` functions matching librados' typedefs.
        #[allow(unsafe_code)]
        let r = unsafe {
            rados_watch2(
                self.handle,
                (*arg).oid_c.as_ptr(),
                &mut cookie,
                watch_cb,
                watch_err_cb,
                arg.cast(),
            )
        };
        if r < 0 {
            // SAFETY: the watch was not registered, so no callback can see `arg`; reclaim it once.
            #[allow(unsafe_code)]
            drop(unsafe { Box::from_raw(arg) });
            return Err(r);
        }
        Ok(WatchHandle {
            io: self,
            cookie,
            ctx: arg.cast(),
        })
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        // SAFETY: unregisters the watch made in `IoCtx::watch` (once).
        #[allow(unsafe_code)]
        let _ = unsafe { rados_unwatch2(self.io.handle, self.cookie) };
        self.io.cluster.watch_flush();
        // SAFETY: after unwatch + flush no callback runs or is queued for this cookie, so the
        // context leaked in `watch` can be reclaimed, exactly once.
        #[allow(unsafe_code)]
        drop(unsafe { Box::from_raw(self.ctx.cast::<WatchCtx>()) });
    }
}
