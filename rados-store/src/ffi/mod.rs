//! The only module with `unsafe` code: hand-written `extern "C"` bindings to the subset of
//! librados (Ceph 16.2, `<rados/librados.h>`) that [`crate::RadosStore`] uses, and thin safe
//! wrappers around them. Every wrapper returns a negative errno on failure, exactly as librados
//! does; mapping to `StoreError` happens in safe code.
//!
//! Invariants the wrappers rely on (see `UNSAFE.md`, section "librados bindings"):
//! * every handle (`rados_t`, `rados_ioctx_t`, op handles) is created by librados, owned by exactly
//!   one Rust value and released exactly once in its `Drop`;
//! * an `IoCtx` keeps its `Cluster` alive (`Arc`), so a cluster is shut down only after all of its
//!   I/O contexts are destroyed;
//! * librados copies every input buffer when an op is built (`bufferlist::append`), so Rust
//!   buffers only need to live for the duration of each call;
//! * output buffers handed to librados live until the synchronous `operate` call returns.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;
use std::sync::Arc;

mod io;
mod watch;
mod write_op;

pub(crate) use watch::{rewatch_loop, WatchFault};
pub(crate) use write_op::WriteOp;

type RadosT = *mut c_void;
type IoCtxT = *mut c_void;
type WriteOpT = *mut c_void;
type ReadOpT = *mut c_void;
type OmapIterT = *mut c_void;
type ListCtxT = *mut c_void;
type TimeT = i64;

type WatchCb = extern "C" fn(*mut c_void, u64, u64, u64, *mut c_void, usize);
type WatchErrCb = extern "C" fn(*mut c_void, u64, c_int);

/// `LIBRADOS_CREATE_EXCLUSIVE`.
const CREATE_EXCLUSIVE: c_int = 1;
/// `LIBRADOS_CREATE_IDEMPOTENT`.
const CREATE_IDEMPOTENT: c_int = 0;
const ENOENT: c_int = 2;
const EINVAL: c_int = 22;

#[link(name = "rados")]
extern "C" {
    fn rados_create2(
        cluster: *mut RadosT,
        clustername: *const c_char,
        name: *const c_char,
        flags: u64,
    ) -> c_int;
    fn rados_conf_read_file(cluster: RadosT, path: *const c_char) -> c_int;
    fn rados_conf_set(cluster: RadosT, option: *const c_char, value: *const c_char) -> c_int;
    fn rados_connect(cluster: RadosT) -> c_int;
    fn rados_shutdown(cluster: RadosT);
    fn rados_watch_flush(cluster: RadosT) -> c_int;

    fn rados_ioctx_create(cluster: RadosT, pool: *const c_char, io: *mut IoCtxT) -> c_int;
    fn rados_ioctx_destroy(io: IoCtxT);
    fn rados_ioctx_get_id(io: IoCtxT) -> i64;
    fn rados_ioctx_set_namespace(io: IoCtxT, nspace: *const c_char);
    fn rados_get_last_version(io: IoCtxT) -> u64;

    fn rados_stat(io: IoCtxT, oid: *const c_char, psize: *mut u64, pmtime: *mut TimeT) -> c_int;
    fn rados_remove(io: IoCtxT, oid: *const c_char) -> c_int;

    fn rados_nobjects_list_open(io: IoCtxT, ctx: *mut ListCtxT) -> c_int;
    fn rados_nobjects_list_next2(
        ctx: ListCtxT,
        entry: *mut *const c_char,
        key: *mut *const c_char,
        nspace: *mut *const c_char,
        entry_size: *mut usize,
        key_size: *mut usize,
        nspace_size: *mut usize,
    ) -> c_int;
    fn rados_nobjects_list_close(ctx: ListCtxT);

    fn rados_create_write_op() -> WriteOpT;
    fn rados_release_write_op(op: WriteOpT);
    fn rados_write_op_assert_version(op: WriteOpT, ver: u64);
    fn rados_write_op_create(op: WriteOpT, exclusive: c_int, category: *const c_char);
    fn rados_write_op_append(op: WriteOpT, buffer: *const c_char, len: usize);
    fn rados_write_op_write_full(op: WriteOpT, buffer: *const c_char, len: usize);
    fn rados_write_op_write(op: WriteOpT, buffer: *const c_char, len: usize, offset: u64);
    fn rados_write_op_truncate(op: WriteOpT, offset: u64);
    fn rados_write_op_exec(
        op: WriteOpT,
        cls: *const c_char,
        method: *const c_char,
        in_buf: *const c_char,
        in_len: usize,
        prval: *mut c_int,
    );
    fn rados_write_op_omap_set2(
        op: WriteOpT,
        keys: *const *const c_char,
        vals: *const *const c_char,
        key_lens: *const usize,
        val_lens: *const usize,
        num: usize,
    );
    fn rados_write_op_omap_rm_keys2(
        op: WriteOpT,
        keys: *const *const c_char,
        key_lens: *const usize,
        num: usize,
    );
    fn rados_write_op_omap_cmp(
        op: WriteOpT,
        key: *const c_char,
        comparison_operator: u8,
        val: *const c_char,
        val_len: usize,
        prval: *mut c_int,
    );
    fn rados_write_op_operate(
        op: WriteOpT,
        io: IoCtxT,
        oid: *const c_char,
        mtime: *mut TimeT,
        flags: c_int,
    ) -> c_int;

    fn rados_create_read_op() -> ReadOpT;
    fn rados_release_read_op(op: ReadOpT);
    fn rados_read_op_stat(op: ReadOpT, psize: *mut u64, pmtime: *mut TimeT, prval: *mut c_int);
    fn rados_read_op_read(
        op: ReadOpT,
        offset: u64,
        len: usize,
        buffer: *mut c_char,
        bytes_read: *mut usize,
        prval: *mut c_int,
    );
    fn rados_read_op_omap_get_vals2(
        op: ReadOpT,
        start_after: *const c_char,
        filter_prefix: *const c_char,
        max_return: u64,
        iter: *mut OmapIterT,
        pmore: *mut u8,
        prval: *mut c_int,
    );
    fn rados_read_op_omap_get_vals_by_keys2(
        op: ReadOpT,
        keys: *const *const c_char,
        num_keys: usize,
        key_lens: *const usize,
        iter: *mut OmapIterT,
        prval: *mut c_int,
    );
    fn rados_read_op_operate(op: ReadOpT, io: IoCtxT, oid: *const c_char, flags: c_int) -> c_int;
    fn rados_omap_get_next2(
        iter: OmapIterT,
        key: *mut *mut c_char,
        val: *mut *mut c_char,
        key_len: *mut usize,
        val_len: *mut usize,
    ) -> c_int;
    fn rados_omap_get_end(iter: OmapIterT);

    fn rados_watch2(
        io: IoCtxT,
        oid: *const c_char,
        cookie: *mut u64,
        watchcb: WatchCb,
        watcherrcb: WatchErrCb,
        arg: *mut c_void,
    ) -> c_int;
    fn rados_unwatch2(io: IoCtxT, cookie: u64) -> c_int;
    fn rados_notify2(
        io: IoCtxT,
        oid: *const c_char,
        buf: *const c_char,
        buf_len: c_int,
        timeout_ms: u64,
        reply_buffer: *mut *mut c_char,
        reply_buffer_len: *mut usize,
    ) -> c_int;
    fn rados_notify_ack(
        io: IoCtxT,
        oid: *const c_char,
        notify_id: u64,
        cookie: u64,
        buf: *const c_char,
        buf_len: c_int,
    ) -> c_int;
    fn rados_buffer_free(buf: *mut c_char);
}

/// Result of a librados call: `Err` carries the negative errno.
pub(crate) type RadosResult<T> = Result<T, c_int>;

fn cstr(s: &str) -> RadosResult<CString> {
    CString::new(s).map_err(|_| -EINVAL)
}

fn check(r: c_int) -> RadosResult<()> {
    if r < 0 {
        Err(r)
    } else {
        Ok(())
    }
}

/// A connected cluster handle (`rados_t`). Shut down when the last reference is dropped.
#[derive(Debug)]
pub(crate) struct Cluster {
    handle: RadosT,
}

// SAFETY: librados cluster handles are documented as thread-safe (any thread may create I/O
// contexts and run operations); the pointer is only freed in `Drop`, which runs once.
#[allow(unsafe_code)]
unsafe impl Send for Cluster {}
// SAFETY: as above; `&Cluster` only exposes librados calls that are thread-safe.
#[allow(unsafe_code)]
unsafe impl Sync for Cluster {}

impl Cluster {
    /// `rados_create2` + `rados_conf_read_file(conf)` (default search path when `None`) + the
    /// given `rados_conf_set` overrides + `rados_connect`.
    pub(crate) fn connect(
        conf: Option<&str>,
        client_name: &str,
        overrides: &[(String, String)],
    ) -> RadosResult<Arc<Cluster>> {
        let cluster_name = cstr("ceph")?;
        let name = cstr(client_name)?;
        let conf = conf.map(cstr).transpose()?;
        let mut handle: RadosT = ptr::null_mut();
        // SAFETY: `handle` is a valid out-pointer; the strings are NUL-terminated and outlive the
        // call.
        #[allow(unsafe_code)]
        let r = unsafe { rados_create2(&mut handle, cluster_name.as_ptr(), name.as_ptr(), 0) };
        check(r)?;
        // From here on `cluster` owns the handle and shuts it down on every error path.
        let cluster = Cluster { handle };
        let conf_ptr = conf.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        // SAFETY: the handle is a live, unconnected cluster; a NULL path means "default search".
        #[allow(unsafe_code)]
        check(unsafe { rados_conf_read_file(cluster.handle, conf_ptr) })?;
        for (key, value) in overrides {
            let (key, value) = (cstr(key)?, cstr(value)?);
            // SAFETY: live handle; both strings NUL-terminated for the duration of the call.
            #[allow(unsafe_code)]
            check(unsafe { rados_conf_set(cluster.handle, key.as_ptr(), value.as_ptr()) })?;
        }
        // SAFETY: live, configured, unconnected handle.
        #[allow(unsafe_code)]
        check(unsafe { rados_connect(cluster.handle) })?;
        Ok(Arc::new(cluster))
    }

    /// Opens an I/O context on `pool`, RADOS namespace `nspace` ("" = default namespace).
    pub(crate) fn ioctx(self: &Arc<Self>, pool: &str, nspace: &str) -> RadosResult<IoCtx> {
        let pool = cstr(pool)?;
        let nspace = cstr(nspace)?;
        let mut io: IoCtxT = ptr::null_mut();
        // SAFETY: live connected cluster; `io` is a valid out-pointer; `pool` is NUL-terminated.
        #[allow(unsafe_code)]
        check(unsafe { rados_ioctx_create(self.handle, pool.as_ptr(), &mut io) })?;
        // SAFETY: `io` was just created; librados copies the namespace string.
        #[allow(unsafe_code)]
        unsafe {
            rados_ioctx_set_namespace(io, nspace.as_ptr())
        };
        Ok(IoCtx {
            handle: io,
            cluster: Arc::clone(self),
        })
    }

    /// Waits until no watch callback is running or queued (`rados_watch_flush`).
    fn watch_flush(&self) {
        // SAFETY: live cluster handle.
        #[allow(unsafe_code)]
        let _ = unsafe { rados_watch_flush(self.handle) };
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: the handle came from `rados_create2`, every IoCtx holding an `Arc` to this
        // cluster is gone, and this runs once.
        #[allow(unsafe_code)]
        unsafe {
            rados_shutdown(self.handle)
        };
    }
}

/// An I/O context (`rados_ioctx_t`) bound to one pool and namespace.
///
/// librados keeps the version of the last object an ioctx operated on per ioctx, so callers that
/// need [`IoCtx::stat`]'s version must use the ioctx exclusively (the store keeps a pool of them).
#[derive(Debug)]
pub(crate) struct IoCtx {
    handle: IoCtxT,
    cluster: Arc<Cluster>,
}

// SAFETY: librados I/O contexts may be used from any thread; the pointer is freed once, in Drop,
// and the cluster it belongs to is kept alive by `cluster`.
#[allow(unsafe_code)]
unsafe impl Send for IoCtx {}
// SAFETY: as above; concurrent synchronous operations on one ioctx are supported by librados.
#[allow(unsafe_code)]
unsafe impl Sync for IoCtx {}

impl Drop for IoCtx {
    fn drop(&mut self) {
        // SAFETY: created by `rados_ioctx_create`, destroyed once; no watch uses it any more
        // (`WatchShared` owns its own ioctx and unwatches before dropping it).
        #[allow(unsafe_code)]
        unsafe {
            rados_ioctx_destroy(self.handle)
        };
    }
}
