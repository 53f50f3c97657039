//! `CrashStore`: a [`MemStore`] that can be made to "crash" at a chosen durability boundary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::{
    check_guards, total_len, validate_oid, AppendGuard, MemSnapshot, MemStore, ObjectStat,
    ObjectStore, OmapBatch, Result, StoreError, Watch,
};

/// What happens to the mutation that is interrupted by the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing of it reaches durable state.
    Lost,
    /// An append persists a random strict prefix of its bytes (possibly none), like a torn write;
    /// other (atomic) mutations are either lost or fully applied, chosen at random.
    Torn,
    /// It is fully applied, but the caller still sees an error (the reply was lost).
    Applied,
    /// One of the three above, chosen by the seeded generator.
    Random,
}

#[derive(Debug)]
struct State {
    boundaries: u64,
    armed: Option<(u64, CrashMode)>,
    rng: SmallRng,
}

/// An in-memory store for crash tests: everything it acknowledged is durable, and it can be told
/// to crash at the `k`-th durability boundary.
///
/// * Every mutation (`append`, `write_full`, `remove`, `omap_apply`) that succeeds is one
///   *durability boundary*; [`CrashStore::boundaries`] counts them. Refused mutations (guard
///   failures, overflow, not found) change nothing and are not boundaries.
/// * [`CrashStore::crash_at`]`(k, mode)` arms the store: the mutation that would have become
///   boundary `k` fails with [`StoreError::Closed`] and is lost, torn or applied according to
///   `mode`. From then on every operation (reads too) fails with [`StoreError::Closed`].
/// * [`CrashStore::reopen`] returns the surviving durable state as a fresh [`MemStore`], to be
///   handed to the code under test as the store after the restart.
/// * [`ObjectStore::write_at_unsynced`] to an existing object changes only the live bytes (and
///   size), as `DirStore`'s unsynced writes do: at a crash they are lost (the object's data
///   reverts to what it was before its first unsynced write, size included) unless
///   [`ObjectStore::sync_objects`] (one boundary) or a durable mutation of the object's data
///   (`append`, `write_full`, `write_at`, `remove`) came after them. An unsynced write that
///   creates the object is an ordinary durable `write_at`.
///
/// All randomness (torn lengths, [`CrashMode::Random`]) comes from the seed, so a failing run is
/// reproduced by its seed and `k`. A typical test runs a workload once to count boundaries `n`,
/// then reruns it for each `k in 1..=n` with the crash armed, reopens, and checks recovery.
///
/// Mutations are serialized (one at a time); reads run concurrently.
#[derive(Debug)]
pub struct CrashStore {
    inner: MemStore,
    state: Mutex<State>,
    crashed: AtomicBool,
    /// Objects with unsynced writes ([`ObjectStore::write_at_unsynced`]), with their durable
    /// data from before the first of them. Locked after `state`.
    unsynced: Mutex<BTreeMap<String, Bytes>>,
    /// Writes that took the unsynced path (for tests to check they exercised it).
    unsynced_writes: AtomicU64,
}

impl CrashStore {
    /// An empty store whose random choices derive from `seed`.
    pub fn new(seed: u64) -> Self {
        CrashStore::from_snapshot(MemSnapshot::new(), seed)
    }

    /// A store starting from `snapshot` (e.g. the result of an earlier [`CrashStore::reopen`]).
    pub fn from_snapshot(snapshot: MemSnapshot, seed: u64) -> Self {
        CrashStore {
            inner: MemStore::from_snapshot(snapshot),
            state: Mutex::new(State {
                boundaries: 0,
                armed: None,
                rng: SmallRng::seed_from_u64(seed),
            }),
            crashed: AtomicBool::new(false),
            unsynced: Mutex::new(BTreeMap::new()),
            unsynced_writes: AtomicU64::new(0),
        }
    }

    /// Successful mutations so far.
    pub fn boundaries(&self) -> u64 {
        self.state.lock().boundaries
    }

    /// Arms a crash at boundary `k` (1-based, counted from the store's creation): the mutation
    /// that would make [`CrashStore::boundaries`] reach `k` is interrupted per `mode`. `k` at or
    /// below the current count crashes at the next successful-to-be mutation.
    pub fn crash_at(&self, k: u64, mode: CrashMode) {
        self.state.lock().armed = Some((k, mode));
    }

    /// Crashes now, between operations: everything acknowledged survives.
    pub fn crash_now(&self) {
        self.crashed.store(true, Ordering::SeqCst);
    }

    /// Whether the store has crashed.
    pub fn is_crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// The durable state: every acknowledged mutation plus whatever the crash left behind.
    pub fn durable_snapshot(&self) -> MemSnapshot {
        let _serialize = self.state.lock();
        let unsynced = self.unsynced.lock();
        if unsynced.is_empty() {
            return self.inner.snapshot();
        }
        let durable = MemStore::from_snapshot(self.inner.snapshot());
        for (oid, data) in unsynced.iter() {
            // `write_full` keeps the omap: only the data reverts.
            let _ = durable.write_full(oid, data.clone());
        }
        durable.snapshot()
    }

    /// How many [`ObjectStore::write_at_unsynced`] calls changed only the live bytes.
    pub fn unsynced_writes(&self) -> u64 {
        self.unsynced_writes.load(Ordering::Relaxed)
    }

    /// The object's unsynced writes became durable with a mutation of its data.
    fn synced(&self, oid: &str) {
        self.unsynced.lock().remove(oid);
    }

    /// "Restarts": the durable state as a new [`MemStore`]. Usable whether or not a crash happened.
    pub fn reopen(&self) -> MemStore {
        MemStore::from_snapshot(self.durable_snapshot())
    }

    fn check_open(&self) -> Result<()> {
        if self.is_crashed() {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// Runs one mutation: `precheck` decides (without changing anything) whether it would
    /// succeed, `apply` performs it, `tear` performs a torn version of it.
    fn mutate<T>(
        &self,
        precheck: impl FnOnce(&MemStore) -> Result<()>,
        apply: impl FnOnce(&MemStore) -> Result<T>,
        tear: impl FnOnce(&MemStore, &mut SmallRng),
    ) -> Result<T> {
        let mut state = self.state.lock();
        self.check_open()?;
        let crash_mode = match state.armed {
            Some((k, mode)) if state.boundaries.saturating_add(1) >= k => Some(mode),
            _ => None,
        };
        let Some(mode) = crash_mode else {
            let result = apply(&self.inner);
            if result.is_ok() {
                state.boundaries += 1;
            }
            return result;
        };
        precheck(&self.inner)?;
        let mode = match mode {
            CrashMode::Random => match state.rng.gen_range(0..3u8) {
                0 => CrashMode::Lost,
                1 => CrashMode::Torn,
                _ => CrashMode::Applied,
            },
            other => other,
        };
        match mode {
            CrashMode::Applied => {
                let _ = apply(&self.inner);
            }
            CrashMode::Torn => tear(&self.inner, &mut state.rng),
            CrashMode::Lost | CrashMode::Random => {}
        }
        state.armed = None;
        self.crashed.store(true, Ordering::SeqCst);
        Err(StoreError::Closed)
    }
}

fn stored_size(store: &MemStore, oid: &str) -> Result<u64> {
    match store.stat(oid) {
        Ok(stat) => Ok(stat.size),
        Err(StoreError::NotFound { .. }) => Ok(0),
        Err(e) => Err(e),
    }
}

fn check_omap_guards(store: &MemStore, oid: &str, guards: &[crate::OmapGuard]) -> Result<()> {
    let keys: Vec<&str> = guards.iter().map(|g| g.key.as_str()).collect();
    let current: BTreeMap<String, Bytes> = store.omap_get(oid, &keys)?;
    check_guards(oid, &current, guards)
}

/// Atomic mutations tear into either nothing or everything.
fn lost_or_applied<T>(rng: &mut SmallRng, apply: impl FnOnce() -> Result<T>) {
    if rng.gen_bool(0.5) {
        let _ = apply();
    }
}

impl ObjectStore for CrashStore {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        self.mutate(
            |s| {
                validate_oid(oid)?;
                let size = stored_size(s, oid)?;
                guard.check_soft_max(oid, size)?;
                check_omap_guards(s, oid, &guard.omap)
            },
            |s| {
                let size = s.append(oid, data, guard)?;
                self.synced(oid);
                Ok(size)
            },
            |s, rng| {
                let total = total_len(data);
                let keep = if total == 0 {
                    0
                } else {
                    rng.gen_range(0..total)
                };
                let mut prefix = BytesMut::new();
                for buf in data {
                    let room = keep.saturating_sub(prefix.len() as u64);
                    let take = usize::try_from(room.min(buf.len() as u64)).unwrap_or(0);
                    prefix.extend_from_slice(buf.get(..take).unwrap_or_default());
                }
                if !prefix.is_empty() {
                    let _ = s.append(oid, &[prefix.freeze()], &AppendGuard::none());
                }
            },
        )
    }

    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.check_open()?;
        self.inner.read(oid, offset, len)
    }

    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        self.check_open()?;
        self.inner.stat(oid)
    }

    fn remove(&self, oid: &str) -> Result<()> {
        self.mutate(
            |s| s.stat(oid).map(|_| ()),
            |s| {
                s.remove(oid)?;
                self.synced(oid);
                Ok(())
            },
            |s, rng| lost_or_applied(rng, || s.remove(oid)),
        )
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.check_open()?;
        self.inner.list(prefix)
    }

    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        self.mutate(
            |_| validate_oid(oid),
            |s| {
                s.write_full(oid, data.clone())?;
                self.synced(oid);
                Ok(())
            },
            |s, rng| lost_or_applied(rng, || s.write_full(oid, data.clone())),
        )
    }

    fn write_at_unsynced(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        let state = self.state.lock();
        self.check_open()?;
        validate_oid(oid)?;
        crate::write_end(offset, data.len())?;
        let size = match self.inner.stat(oid) {
            Ok(stat) => Some(stat.size),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        match size {
            Some(size) => {
                let mut unsynced = self.unsynced.lock();
                if !unsynced.contains_key(oid) {
                    let before = self.inner.read(oid, 0, size)?;
                    unsynced.insert(oid.to_owned(), before);
                }
                self.unsynced_writes.fetch_add(1, Ordering::Relaxed);
                self.inner.write_at(oid, offset, data)
            }
            _ => {
                drop(state);
                self.write_at(oid, offset, data)
            }
        }
    }

    fn sync_objects(&self, oids: &[String]) -> Result<()> {
        self.mutate(
            |_| Ok(()),
            |_| {
                let mut unsynced = self.unsynced.lock();
                for oid in oids {
                    unsynced.remove(oid);
                }
                Ok(())
            },
            |_, rng| {
                // Interrupted: any of the objects may have been synced.
                let mut unsynced = self.unsynced.lock();
                for oid in oids {
                    if rng.gen_bool(0.5) {
                        unsynced.remove(oid);
                    }
                }
            },
        )
    }

    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        self.check_open()?;
        self.inner.omap_get(oid, keys)
    }

    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        self.check_open()?;
        self.inner.omap_list(oid, start_after, prefix, max)
    }

    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        self.mutate(
            |s| {
                validate_oid(oid)?;
                check_omap_guards(s, oid, &batch.guards)
            },
            |s| s.omap_apply(oid, batch),
            |s, rng| lost_or_applied(rng, || s.omap_apply(oid, batch)),
        )
    }

    fn watch(&self, oid: &str) -> Result<Watch> {
        self.check_open()?;
        self.inner.watch(oid)
    }

    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        self.check_open()?;
        self.inner.notify(oid, payload)
    }
}
