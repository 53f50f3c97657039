//! `Checked`: latches the first failed mutation and refuses everything after it.

use std::collections::BTreeMap;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::{AppendGuard, ObjectStat, ObjectStore, OmapBatch, Result, StoreError, Watch};

/// A wrapper that poisons itself on the first mutation that fails with an error that leaves the
/// durable state unknown (I/O, no space, corruption). Every later mutation returns
/// [`StoreError::Poisoned`] until a new `Checked` is built over a reopened store.
///
/// Refusals that are part of the protocol (`Overflow`, `GuardFailed`, `NotFound`) do not poison.
#[derive(Debug)]
pub struct Checked<S> {
    inner: S,
    poison: Mutex<Option<String>>,
}

impl<S: ObjectStore> Checked<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Checked {
            inner,
            poison: Mutex::new(None),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The first failure, if the wrapper is poisoned.
    pub fn poisoned(&self) -> Option<String> {
        self.poison.lock().clone()
    }

    fn check(&self) -> Result<()> {
        match &*self.poison.lock() {
            Some(first) => Err(StoreError::Poisoned {
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    fn latch<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result {
            let fatal = matches!(
                err,
                StoreError::Io { .. }
                    | StoreError::NoSpace { .. }
                    | StoreError::Corrupt { .. }
                    | StoreError::Closed
            );
            if fatal {
                let mut poison = self.poison.lock();
                if poison.is_none() {
                    *poison = Some(err.to_string());
                }
            }
        }
        result
    }
}

impl<S: ObjectStore> ObjectStore for Checked<S> {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        self.check()?;
        self.latch(self.inner.append(oid, data, guard))
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.inner.read(oid, offset, len)
    }
    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        self.inner.stat(oid)
    }
    fn remove(&self, oid: &str) -> Result<()> {
        self.check()?;
        self.latch(self.inner.remove(oid))
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix)
    }
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        self.check()?;
        self.latch(self.inner.write_full(oid, data))
    }
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.check()?;
        self.latch(self.inner.write_at(oid, offset, data))
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        self.inner.omap_get(oid, keys)
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        self.inner.omap_list(oid, start_after, prefix, max)
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        self.check()?;
        self.latch(self.inner.omap_apply(oid, batch))
    }
    fn watch(&self, oid: &str) -> Result<Watch> {
        self.inner.watch(oid)
    }
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        self.inner.notify(oid, payload)
    }
    fn notify_crosses_processes(&self) -> bool {
        self.inner.notify_crosses_processes()
    }

    fn notify_is_cheap(&self) -> bool {
        self.inner.notify_is_cheap()
    }
}
