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

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::Sender;
use object_store_trait::Notification;

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
        // (`WatchHandle` owns its own ioctx and unwatches before dropping it).
        #[allow(unsafe_code)]
        unsafe {
            rados_ioctx_destroy(self.handle)
        };
    }
}

/// An omap entry as returned by librados.
pub(crate) type OmapEntry = (String, Vec<u8>);

/// Drains an omap iterator into owned entries and frees it.
///
/// # Safety
/// `iter` must be an iterator filled by a completed read op, not yet ended.
#[allow(unsafe_code)]
unsafe fn drain_omap(iter: OmapIterT) -> Vec<OmapEntry> {
    let mut out = Vec::new();
    if iter.is_null() {
        return out;
    }
    loop {
        let (mut key, mut val) = (ptr::null_mut::<c_char>(), ptr::null_mut::<c_char>());
        let (mut key_len, mut val_len) = (0usize, 0usize);
        // SAFETY (caller contract): `iter` is live; the out-pointers are valid.
        let r =
            unsafe { rados_omap_get_next2(iter, &mut key, &mut val, &mut key_len, &mut val_len) };
        if r < 0 || key.is_null() {
            break;
        }
        // SAFETY: librados returns `key_len` readable bytes at `key` (and `val_len` at `val`),
        // valid until the next `get_next2`/`get_end`; we copy them right away.
        let key = unsafe { std::slice::from_raw_parts(key.cast::<u8>(), key_len) };
        let val = if val.is_null() || val_len == 0 {
            Vec::new()
        } else {
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts(val.cast::<u8>(), val_len) }.to_vec()
        };
        out.push((String::from_utf8_lossy(key).into_owned(), val));
    }
    // SAFETY: ends the iterator exactly once.
    unsafe { rados_omap_get_end(iter) };
    out
}

impl IoCtx {
    /// Id of the pool this ioctx is bound to.
    pub(crate) fn pool_id(&self) -> i64 {
        // SAFETY: live ioctx.
        #[allow(unsafe_code)]
        unsafe {
            rados_ioctx_get_id(self.handle)
        }
    }

    /// Size of `oid` and the object's version (`rados_get_last_version` right after the stat).
    pub(crate) fn stat(&self, oid: &str) -> RadosResult<(u64, u64)> {
        let oid = cstr(oid)?;
        let (mut size, mut mtime) = (0u64, 0 as TimeT);
        // SAFETY: live ioctx, NUL-terminated oid, valid out-pointers.
        #[allow(unsafe_code)]
        check(unsafe { rados_stat(self.handle, oid.as_ptr(), &mut size, &mut mtime) })?;
        // SAFETY: live ioctx; reads the version recorded by the stat above.
        #[allow(unsafe_code)]
        let version = unsafe { rados_get_last_version(self.handle) };
        Ok((size, version))
    }

    /// Reads up to `len` bytes at `offset` (short at the end of the object).
    pub(crate) fn read(&self, oid: &str, offset: u64, len: usize) -> RadosResult<Vec<u8>> {
        let oid = cstr(oid)?;
        let mut buf = vec![0u8; len];
        let (mut bytes_read, mut prval) = (0usize, 0 as c_int);
        // SAFETY: the op is created, used and released here; `buf` has `len` writable bytes and,
        // like `bytes_read` and `prval`, lives until `rados_read_op_operate` returned.
        #[allow(unsafe_code)]
        let r = unsafe {
            let op = rados_create_read_op();
            rados_read_op_read(
                op,
                offset,
                len,
                buf.as_mut_ptr().cast(),
                &mut bytes_read,
                &mut prval,
            );
            let r = rados_read_op_operate(op, self.handle, oid.as_ptr(), 0);
            rados_release_read_op(op);
            r
        };
        check(r)?;
        check(prval)?;
        buf.truncate(bytes_read.min(len));
        Ok(buf)
    }

    /// Removes `oid` (data and omap).
    pub(crate) fn remove(&self, oid: &str) -> RadosResult<()> {
        let oid = cstr(oid)?;
        // SAFETY: live ioctx, NUL-terminated oid.
        #[allow(unsafe_code)]
        check(unsafe { rados_remove(self.handle, oid.as_ptr()) })
    }

    /// Names of every object in this ioctx's namespace (unsorted).
    pub(crate) fn list(&self) -> RadosResult<Vec<String>> {
        let mut ctx: ListCtxT = ptr::null_mut();
        // SAFETY: live ioctx; valid out-pointer.
        #[allow(unsafe_code)]
        check(unsafe { rados_nobjects_list_open(self.handle, &mut ctx) })?;
        let mut out = Vec::new();
        let result = loop {
            let (mut entry, mut key, mut nspace) = (ptr::null(), ptr::null(), ptr::null());
            let (mut entry_len, mut key_len, mut nspace_len) = (0usize, 0usize, 0usize);
            // SAFETY: `ctx` is the open listing; the out-pointers are valid.
            #[allow(unsafe_code)]
            let r = unsafe {
                rados_nobjects_list_next2(
                    ctx,
                    &mut entry,
                    &mut key,
                    &mut nspace,
                    &mut entry_len,
                    &mut key_len,
                    &mut nspace_len,
                )
            };
            if r == -ENOENT {
                break Ok(());
            }
            if r < 0 {
                break Err(r);
            }
            if !entry.is_null() {
                // SAFETY: librados returns `entry_len` bytes at `entry`, valid until the next call
                // on `ctx`; copied immediately.
                #[allow(unsafe_code)]
                let name = unsafe { std::slice::from_raw_parts(entry.cast::<u8>(), entry_len) };
                out.push(String::from_utf8_lossy(name).into_owned());
            }
        };
        // SAFETY: closes the listing opened above, once.
        #[allow(unsafe_code)]
        unsafe {
            rados_nobjects_list_close(ctx)
        };
        result.map(|()| out)
    }

    /// One read op: stat + values of `keys`. Returns (size, version, entries).
    pub(crate) fn stat_and_omap_get(
        &self,
        oid: &str,
        keys: &[&str],
    ) -> RadosResult<(u64, u64, Vec<OmapEntry>)> {
        let oid = cstr(oid)?;
        let key_ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr().cast()).collect();
        let key_lens: Vec<usize> = keys.iter().map(|k| k.len()).collect();
        let (mut size, mut mtime, mut stat_rval) = (0u64, 0 as TimeT, 0 as c_int);
        let (mut iter, mut omap_rval): (OmapIterT, c_int) = (ptr::null_mut(), 0);
        // SAFETY: the op is created, used and released here; key pointers/lengths describe
        // `keys` (alive for the call; librados copies them when building the op); all out-pointers
        // live until operate returns; the iterator is drained and ended by `drain_omap`.
        #[allow(unsafe_code)]
        let (r, entries, version) = unsafe {
            let op = rados_create_read_op();
            rados_read_op_stat(op, &mut size, &mut mtime, &mut stat_rval);
            if !keys.is_empty() {
                rados_read_op_omap_get_vals_by_keys2(
                    op,
                    key_ptrs.as_ptr(),
                    keys.len(),
                    key_lens.as_ptr(),
                    &mut iter,
                    &mut omap_rval,
                );
            }
            let r = rados_read_op_operate(op, self.handle, oid.as_ptr(), 0);
            let version = rados_get_last_version(self.handle);
            rados_release_read_op(op);
            let entries = if r >= 0 { drain_omap(iter) } else { Vec::new() };
            (r, entries, version)
        };
        check(r)?;
        check(stat_rval)?;
        check(omap_rval)?;
        Ok((size, version, entries))
    }

    /// Up to `max` omap entries with key `> start_after` and starting with `prefix`; the flag
    /// says whether more exist.
    pub(crate) fn omap_get_vals(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: u64,
    ) -> RadosResult<(Vec<OmapEntry>, bool)> {
        let (oid, start_after, prefix) = (cstr(oid)?, cstr(start_after)?, cstr(prefix)?);
        let (mut iter, mut more, mut rval): (OmapIterT, u8, c_int) = (ptr::null_mut(), 0, 0);
        // SAFETY: as in `stat_and_omap_get`.
        #[allow(unsafe_code)]
        let (r, entries) = unsafe {
            let op = rados_create_read_op();
            rados_read_op_omap_get_vals2(
                op,
                start_after.as_ptr(),
                prefix.as_ptr(),
                max,
                &mut iter,
                &mut more,
                &mut rval,
            );
            let r = rados_read_op_operate(op, self.handle, oid.as_ptr(), 0);
            rados_release_read_op(op);
            let entries = if r >= 0 { drain_omap(iter) } else { Vec::new() };
            (r, entries)
        };
        check(r)?;
        check(rval)?;
        Ok((entries, more != 0))
    }

    /// Runs `op` on `oid` atomically.
    pub(crate) fn operate(&self, oid: &str, op: WriteOp) -> RadosResult<()> {
        let oid = cstr(oid)?;
        // SAFETY: `op.handle` is a live write op built by `WriteOp`'s methods (which copied all
        // their inputs); NULL mtime means "now". `op` is released by its Drop afterwards.
        #[allow(unsafe_code)]
        check(unsafe {
            rados_write_op_operate(op.handle, self.handle, oid.as_ptr(), ptr::null_mut(), 0)
        })
    }

    /// Sends `payload` to the watchers of `oid`; returns the raw reply buffer (see
    /// `crate::notify_reply`).
    pub(crate) fn notify(
        &self,
        oid: &str,
        payload: &[u8],
        timeout_ms: u64,
    ) -> RadosResult<Vec<u8>> {
        let oid = cstr(oid)?;
        let len = c_int::try_from(payload.len()).map_err(|_| -EINVAL)?;
        let (mut reply, mut reply_len): (*mut c_char, usize) = (ptr::null_mut(), 0);
        // SAFETY: live ioctx; `payload` readable for `len` bytes during the call; librados
        // allocates the reply, which we copy and free with `rados_buffer_free` exactly once.
        #[allow(unsafe_code)]
        let (r, bytes) = unsafe {
            let r = rados_notify2(
                self.handle,
                oid.as_ptr(),
                payload.as_ptr().cast(),
                len,
                timeout_ms,
                &mut reply,
                &mut reply_len,
            );
            let bytes = if reply.is_null() {
                Vec::new()
            } else {
                let copy = std::slice::from_raw_parts(reply.cast::<u8>(), reply_len).to_vec();
                rados_buffer_free(reply);
                copy
            };
            (r, bytes)
        };
        // -ETIMEDOUT still carries the acks that did arrive.
        if r < 0 && r != -110 {
            return Err(r);
        }
        Ok(bytes)
    }
}

/// A write operation under construction (`rados_write_op_t`); run with [`IoCtx::operate`].
#[derive(Debug)]
pub(crate) struct WriteOp {
    handle: WriteOpT,
}

impl WriteOp {
    /// A new, empty write op.
    pub(crate) fn new() -> WriteOp {
        // SAFETY: allocates a fresh op owned by the returned value.
        #[allow(unsafe_code)]
        let handle = unsafe { rados_create_write_op() };
        WriteOp { handle }
    }

    /// Fails the op with `-ERANGE`/`-EOVERFLOW` unless the object's version is `ver`.
    pub(crate) fn assert_version(&mut self, ver: u64) {
        // SAFETY: live op.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_assert_version(self.handle, ver)
        };
    }

    /// Creates the object; `exclusive` fails the op with `-EEXIST` if it exists.
    pub(crate) fn create(&mut self, exclusive: bool) {
        let mode = if exclusive {
            CREATE_EXCLUSIVE
        } else {
            CREATE_IDEMPOTENT
        };
        // SAFETY: live op; the category argument is ignored by librados and may be NULL.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_create(self.handle, mode, ptr::null())
        };
    }

    /// Appends `data` at the end of the object.
    pub(crate) fn append(&mut self, data: &[u8]) {
        // SAFETY: live op; librados copies `data.len()` bytes from `data` during the call.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_append(self.handle, data.as_ptr().cast(), data.len())
        };
    }

    /// Replaces the object's data with `data`.
    pub(crate) fn write_full(&mut self, data: &[u8]) {
        // SAFETY: as in `append`.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_write_full(self.handle, data.as_ptr().cast(), data.len())
        };
    }

    /// Calls object-class method `cls.method` with `input`.
    pub(crate) fn exec(&mut self, cls: &CStr, method: &CStr, input: &[u8]) {
        // SAFETY: live op; NUL-terminated names; librados copies `input`; a NULL prval is allowed
        // (the op's overall result reports the failure).
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_exec(
                self.handle,
                cls.as_ptr(),
                method.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                ptr::null_mut(),
            )
        };
    }

    /// Sets omap keys (a later pair of the same key wins).
    pub(crate) fn omap_set(&mut self, pairs: &[(&str, &[u8])]) {
        if pairs.is_empty() {
            return;
        }
        let keys: Vec<*const c_char> = pairs.iter().map(|(k, _)| k.as_ptr().cast()).collect();
        let vals: Vec<*const c_char> = pairs.iter().map(|(_, v)| v.as_ptr().cast()).collect();
        let key_lens: Vec<usize> = pairs.iter().map(|(k, _)| k.len()).collect();
        let val_lens: Vec<usize> = pairs.iter().map(|(_, v)| v.len()).collect();
        // SAFETY: live op; four arrays of `pairs.len()` elements describing live buffers that
        // librados copies into its op during the call.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_omap_set2(
                self.handle,
                keys.as_ptr(),
                vals.as_ptr(),
                key_lens.as_ptr(),
                val_lens.as_ptr(),
                pairs.len(),
            )
        };
    }

    /// Removes omap keys (missing keys are ignored; the object must exist).
    pub(crate) fn omap_rm_keys(&mut self, keys: &[&str]) {
        if keys.is_empty() {
            return;
        }
        let ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr().cast()).collect();
        let lens: Vec<usize> = keys.iter().map(|k| k.len()).collect();
        // SAFETY: live op; arrays of `keys.len()` elements describing live buffers, copied.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_omap_rm_keys2(self.handle, ptrs.as_ptr(), lens.as_ptr(), keys.len())
        };
    }

    /// Ceph's `omap_cmp`: `op` is `LIBRADOS_CMPXATTR_OP_*` (only EQ=1, GT=3, LT=5 are accepted by
    /// the OSD); the stored value (empty if the key is missing) is compared bytewise to `value`.
    pub(crate) fn omap_cmp(&mut self, key: &CStr, op: u8, value: &[u8]) {
        // SAFETY: live op; NUL-terminated key; librados copies `value`; NULL prval allowed.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_omap_cmp(
                self.handle,
                key.as_ptr(),
                op,
                value.as_ptr().cast(),
                value.len(),
                ptr::null_mut(),
            )
        };
    }
}

impl Drop for WriteOp {
    fn drop(&mut self) {
        // SAFETY: created by `rados_create_write_op`, released once.
        #[allow(unsafe_code)]
        unsafe {
            rados_release_write_op(self.handle)
        };
    }
}

/// State shared with the watch callback. Boxed; its address is the callback's `arg`.
struct WatchCtx {
    io: IoCtxT,
    oid_c: CString,
    oid: String,
    tx: Sender<Notification>,
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
    // Deliver before acking, so the notifier returns only after the watcher has it queued.
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
    pub(crate) fn watch(self, oid: &str, tx: Sender<Notification>) -> RadosResult<WatchHandle> {
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
