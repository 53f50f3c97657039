//! Synchronous object operations on an [`IoCtx`].

use std::ffi::{c_char, c_int};
use std::ptr;

use super::*;

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
        self.operate_versioned(oid, op).map(|_| ())
    }

    /// Runs `op` on `oid` atomically and returns the object's version after it (meaningful only
    /// when the caller uses this ioctx exclusively).
    pub(crate) fn operate_versioned(&self, oid: &str, op: WriteOp) -> RadosResult<u64> {
        let oid = cstr(oid)?;
        // SAFETY: `op.handle` is a live write op built by `WriteOp`'s methods (which copied all
        // their inputs); NULL mtime means "now". `op` is released by its Drop afterwards.
        #[allow(unsafe_code)]
        check(unsafe {
            rados_write_op_operate(op.handle, self.handle, oid.as_ptr(), ptr::null_mut(), 0)
        })?;
        // SAFETY: live ioctx; reads the version recorded by the write above.
        #[allow(unsafe_code)]
        Ok(unsafe { rados_get_last_version(self.handle) })
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
