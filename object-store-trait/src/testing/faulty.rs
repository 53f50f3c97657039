//! `FaultyStore`: injects I/O errors and notification loss/duplication at seeded rates.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::{AppendGuard, ObjectStat, ObjectStore, OmapBatch, Result, StoreError, Watch};

/// Fault rates for [`FaultyStore`]; every rate is a probability in `[0, 1]` (clamped).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultyOptions {
    /// Seed of the generator deciding every fault. Default: 0.
    pub seed: u64,
    /// Probability that a mutation fails with an injected error. Default: 0.
    pub mutation_error_rate: f64,
    /// Of the injected mutation errors, the share that happen *after* the mutation was applied
    /// (the store did it, the reply was an error). Default: 0.
    pub applied_share: f64,
    /// Probability that a read (`read`, `stat`, `list`, `omap_get`, `omap_list`) fails. Default: 0.
    pub read_error_rate: f64,
    /// Of the injected errors, the share reported as [`StoreError::NoSpace`] (`ENOSPC`); the rest
    /// are [`StoreError::Io`] with `EIO`. Default: 0.5.
    pub enospc_share: f64,
    /// Probability that a notification is silently dropped (no watcher sees it). Default: 0.
    pub notify_drop_rate: f64,
    /// Probability that a notification is delivered twice. Default: 0.
    pub notify_dup_rate: f64,
    /// Probability that an operation's completion is delayed: a read waits before it runs, a
    /// mutation waits after it was applied and before it returns, so concurrent callers see
    /// completions in another order than the store applied them. Default: 0.
    pub delay_rate: f64,
    /// Longest injected delay (each delay is uniform in `0..=max_delay`, seeded). Default: 5 ms.
    pub max_delay: std::time::Duration,
}

impl Default for FaultyOptions {
    fn default() -> Self {
        FaultyOptions {
            seed: 0,
            mutation_error_rate: 0.0,
            applied_share: 0.0,
            read_error_rate: 0.0,
            enospc_share: 0.5,
            notify_drop_rate: 0.0,
            notify_dup_rate: 0.0,
            delay_rate: 0.0,
            max_delay: std::time::Duration::from_millis(5),
        }
    }
}

/// A wrapper over any store that injects faults at seeded rates (see [`FaultyOptions`]).
///
/// Injected errors that are not "applied" leave the inner store unchanged. Faults can be switched
/// off with [`FaultyStore::set_enabled`], e.g. to verify the final state through the same handle.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    opts: FaultyOptions,
    rng: Mutex<SmallRng>,
    enabled: AtomicBool,
    injected: AtomicU64,
}

enum Fault {
    None,
    Before(StoreError),
    After(StoreError),
}

impl<S: ObjectStore> FaultyStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, opts: FaultyOptions) -> Self {
        FaultyStore {
            rng: Mutex::new(SmallRng::seed_from_u64(opts.seed)),
            inner,
            opts,
            enabled: AtomicBool::new(true),
            injected: AtomicU64::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Turns fault injection on or off (on at creation).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// How many faults (errors, dropped or duplicated notifications) were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn roll(&self, rate: f64) -> bool {
        if !self.enabled.load(Ordering::SeqCst) || rate <= 0.0 {
            return false;
        }
        let hit = self.rng.lock().gen_bool(rate.min(1.0));
        if hit {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }

    fn error(&self, op: &'static str, oid: &str) -> StoreError {
        let errno = if self
            .rng
            .lock()
            .gen_bool(self.opts.enospc_share.clamp(0.0, 1.0))
        {
            28
        } else {
            5
        };
        StoreError::io(op, oid, io::Error::from_raw_os_error(errno))
    }

    fn mutation_fault(&self, op: &'static str, oid: &str) -> Fault {
        if !self.roll(self.opts.mutation_error_rate) {
            return Fault::None;
        }
        let err = self.error(op, oid);
        let after = self
            .rng
            .lock()
            .gen_bool(self.opts.applied_share.clamp(0.0, 1.0));
        if after {
            Fault::After(err)
        } else {
            Fault::Before(err)
        }
    }

    /// Sleeps a seeded random time when a delay is due (no lock held while sleeping).
    fn maybe_delay(&self) {
        if !self.enabled.load(Ordering::SeqCst) || self.opts.delay_rate <= 0.0 {
            return;
        }
        let nanos = {
            let mut rng = self.rng.lock();
            if !rng.gen_bool(self.opts.delay_rate.min(1.0)) {
                return;
            }
            let max = u64::try_from(self.opts.max_delay.as_nanos()).unwrap_or(u64::MAX);
            rng.gen_range(0..=max)
        };
        std::thread::sleep(std::time::Duration::from_nanos(nanos));
    }

    fn mutate<T>(&self, op: &'static str, oid: &str, f: impl FnOnce(&S) -> Result<T>) -> Result<T> {
        match self.mutation_fault(op, oid) {
            Fault::None => {
                let result = f(&self.inner);
                self.maybe_delay();
                result
            }
            Fault::Before(err) => Err(err),
            Fault::After(err) => {
                f(&self.inner)?;
                Err(err)
            }
        }
    }

    fn read_op<T>(
        &self,
        op: &'static str,
        oid: &str,
        f: impl FnOnce(&S) -> Result<T>,
    ) -> Result<T> {
        if self.roll(self.opts.read_error_rate) {
            return Err(self.error(op, oid));
        }
        self.maybe_delay();
        f(&self.inner)
    }
}

impl<S: ObjectStore> ObjectStore for FaultyStore<S> {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        self.mutate("append", oid, |s| s.append(oid, data, guard))
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.read_op("read", oid, |s| s.read(oid, offset, len))
    }
    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        self.read_op("stat", oid, |s| s.stat(oid))
    }
    fn remove(&self, oid: &str) -> Result<()> {
        self.mutate("remove", oid, |s| s.remove(oid))
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.read_op("list", prefix, |s| s.list(prefix))
    }
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        self.mutate("write_full", oid, |s| s.write_full(oid, data))
    }
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.mutate("write_at", oid, |s| s.write_at(oid, offset, data))
    }
    fn write_at_unsynced(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.mutate("write_at", oid, |s| s.write_at_unsynced(oid, offset, data))
    }
    fn sync_objects(&self, oids: &[String]) -> Result<()> {
        let first = oids.first().map_or("", String::as_str);
        self.mutate("sync_objects", first, |s| s.sync_objects(oids))
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        self.read_op("omap_get", oid, |s| s.omap_get(oid, keys))
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        self.read_op("omap_list", oid, |s| {
            s.omap_list(oid, start_after, prefix, max)
        })
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        self.mutate("omap_apply", oid, |s| s.omap_apply(oid, batch))
    }
    fn watch(&self, oid: &str) -> Result<Watch> {
        self.inner.watch(oid)
    }
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        if self.roll(self.opts.notify_drop_rate) {
            return Ok(0);
        }
        let reached = self.inner.notify(oid, payload.clone())?;
        if self.roll(self.opts.notify_dup_rate) {
            self.inner.notify(oid, payload)?;
        }
        Ok(reached)
    }
    fn notify_crosses_processes(&self) -> bool {
        self.inner.notify_crosses_processes()
    }

    /// Not when this store drops notifications on purpose.
    fn notifications_complete(&self) -> bool {
        self.opts.notify_drop_rate <= 0.0 && self.inner.notifications_complete()
    }

    fn notify_is_cheap(&self) -> bool {
        self.inner.notify_is_cheap()
    }
}
