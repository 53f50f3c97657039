//! [`WriteOp`]: an atomic RADOS write operation under construction.

use std::ffi::CStr;
use std::ptr;

use super::*;

/// A write operation under construction (`rados_write_op_t`); run with [`IoCtx::operate`].
#[derive(Debug)]
pub(crate) struct WriteOp {
    pub(super) handle: WriteOpT,
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

    /// Writes `data` at `offset` (zero-filling a gap past the end).
    pub(crate) fn write(&mut self, data: &[u8], offset: u64) {
        // SAFETY: as in `append`.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_write(self.handle, data.as_ptr().cast(), data.len(), offset)
        };
    }

    /// Sets the object's size to `size` (extending with zeros or cutting).
    pub(crate) fn truncate(&mut self, size: u64) {
        // SAFETY: live op.
        #[allow(unsafe_code)]
        unsafe {
            rados_write_op_truncate(self.handle, size)
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
