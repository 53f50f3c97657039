//! [`RadosStore`]: the [`ObjectStore`] contract over librados.
//!
//! How each part of the contract maps onto RADOS:
//!
//! * **Offsets and guards: optimistic version checks.** RADOS does not report where an append
//!   landed, and Ceph's `omap_cmp` cannot express every [`OmapCmp`] (see below). So every append
//!   and every guarded omap batch first reads the object's size, version and guard keys in one
//!   read op, evaluates the soft limit and the guards locally, and then sends one write op that
//!   starts with `assert_version(v)` (or an exclusive create when the object was missing). If
//!   anyone changed the object in between, the OSD refuses the whole op (`-ERANGE`, `-EOVERFLOW`
//!   or `-EEXIST`) and the operation starts over. A success is therefore atomic with exactly the
//!   state that was checked: the append offset is the size that was read, and the guards held.
//! * **Append cache.** After a successful append the store remembers the object's new version
//!   (`rados_get_last_version` after the write), size and the guard keys it read. The next append
//!   to that object skips the read and asserts the remembered version directly, so a sole
//!   appender (the journal recorder: one append in flight per object) pays one round trip per
//!   append. The cache is only a hint: a stale entry fails the version assertion and the append
//!   falls back to reading; refusals (soft limit, guards) are only ever decided on fresh state.
//! * **Soft limit.** The write op of a guarded append also carries Ceph's own
//!   `journal.guard_append(soft_max)` before the data (the compat-mode append path, spec §5.3), so
//!   the OSD enforces the limit itself too; the limit 0 is refused without any I/O.
//! * **Ceph's `omap_cmp`, as verified on a 16.2.15 cluster** (`tests/ceph_semantics.rs`): it fails
//!   the whole op with `-ENOENT` on a missing object; a missing key compares as an *empty value*
//!   (so `Absent` and "present with an empty value" are indistinguishable); values compare as
//!   byte strings (so little-endian `u64` order cannot be expressed); only EQ, LT and GT are
//!   accepted (others give `-EINVAL`). Version assertions express all five kinds exactly, which is
//!   why the store uses them; [`RadosStore::omap_compare`] exposes the native comparison.
//! * **Watch/notify** are RADOS watch2/notify2 on the same object, so they reach watchers in other
//!   processes (and librbd's). RADOS cannot watch a missing object: [`ObjectStore::watch`] on a
//!   missing object first creates it empty (size 0, no omap).
//! * **Namespaces.** A store is bound to one pool and one RADOS namespace; [`ObjectStore::list`]
//!   lists that namespace only. Tests use a fresh namespace per store.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::Arc;

use bytes::Bytes;
use object_store_trait::{
    check_guards, total_len, validate_oid, AppendGuard, ObjectStat, ObjectStore, OmapBatch, Result,
    StoreError, Watch,
};
use parking_lot::Mutex;

use crate::errno::{self, map_errno};
use crate::ffi::{rewatch_loop, Cluster, IoCtx, WatchFault, WriteOp};
use crate::known::{KnownObjects, Observed};
use crate::options::RadosStoreOptions;

/// Reads up to this many bytes are sent as one read op without a preceding stat.
const DIRECT_READ_MAX: u64 = 4 << 20;
/// Larger reads are split into ops of at most this many bytes.
const READ_CHUNK: u64 = 16 << 20;
/// Page size of omap listings.
const OMAP_PAGE: u64 = 512;
/// Idle I/O contexts kept for reuse.
const MAX_IDLE_IOCTX: usize = 32;

/// The comparison operators Ceph's native `omap_cmp` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CephCmpOp {
    /// Stored value equals the operand (`LIBRADOS_CMPXATTR_OP_EQ`).
    Eq,
    /// Stored value sorts after the operand, bytewise (`LIBRADOS_CMPXATTR_OP_GT`).
    Gt,
    /// Stored value sorts before the operand, bytewise (`LIBRADOS_CMPXATTR_OP_LT`).
    Lt,
}

impl CephCmpOp {
    fn code(self) -> u8 {
        match self {
            CephCmpOp::Eq => 1,
            CephCmpOp::Gt => 3,
            CephCmpOp::Lt => 5,
        }
    }
}

/// An [`ObjectStore`] on a Ceph pool (and RADOS namespace) through librados.
#[derive(Debug)]
pub struct RadosStore {
    cluster: Arc<Cluster>,
    options: RadosStoreOptions,
    idle: Mutex<Vec<IoCtx>>,
    /// Version/size/omap of objects this store appended to, so a sole appender (the journal
    /// recorder) needs one round trip per append instead of a read and a write.
    known: KnownObjects,
    /// Where watch errors go: the store's re-watch thread, started with the first watch.
    rewatch: Mutex<Option<crossbeam_channel::Sender<WatchFault>>>,
}

/// An I/O context checked out of the store's idle list; returned on drop.
struct PooledIo<'a> {
    io: Option<IoCtx>,
    store: &'a RadosStore,
}

impl std::ops::Deref for PooledIo<'_> {
    type Target = IoCtx;
    fn deref(&self) -> &IoCtx {
        // Always `Some` until Drop.
        self.io
            .as_ref()
            .unwrap_or_else(|| unreachable!("ioctx taken before drop"))
    }
}

impl Drop for PooledIo<'_> {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            let mut idle = self.store.idle.lock();
            if idle.len() < MAX_IDLE_IOCTX {
                idle.push(io);
            }
        }
    }
}

impl RadosStore {
    /// Connects to the cluster described by `options` and opens its pool.
    pub fn connect(options: RadosStoreOptions) -> Result<RadosStore> {
        let conf = options
            .conf_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let overrides = vec![(
            "client_mount_timeout".to_owned(),
            options.mount_timeout_secs.to_string(),
        )];
        let cluster = Cluster::connect(conf.as_deref(), &options.client_name, &overrides)
            .map_err(|e| map_errno("connect", &options.pool, e))?;
        let store = RadosStore {
            cluster,
            options,
            idle: Mutex::new(Vec::new()),
            known: KnownObjects::default(),
            rewatch: Mutex::new(None),
        };
        // Fail early if the pool does not exist.
        drop(store.io("open pool")?);
        Ok(store)
    }

    /// A store on the same connection and pool, in another RADOS namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<RadosStore> {
        let store = RadosStore {
            cluster: Arc::clone(&self.cluster),
            options: RadosStoreOptions {
                namespace: namespace.to_owned(),
                ..self.options.clone()
            },
            idle: Mutex::new(Vec::new()),
            known: KnownObjects::default(),
            rewatch: Mutex::new(None),
        };
        drop(store.io("open namespace")?);
        Ok(store)
    }

    /// The sender of the store's re-watch thread, starting the thread on first use. The
    /// thread ends once the store and every watch it made are gone.
    fn faults(&self) -> Result<crossbeam_channel::Sender<WatchFault>> {
        let mut slot = self.rewatch.lock();
        if let Some(tx) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("rados-rewatch".into())
            .spawn(move || rewatch_loop(&rx))
            .map_err(|e| StoreError::io("start the re-watch thread", "", e))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &RadosStoreOptions {
        &self.options
    }

    /// Id of the store's pool (the number in journal data object names).
    pub fn pool_id(&self) -> Result<i64> {
        Ok(self.io("pool id")?.pool_id())
    }

    /// Runs object-class method `class.method` with `input` as a write op on `oid` (e.g. Ceph's
    /// own `journal` class methods, for interop checks). The method's output is not returned.
    pub fn exec(&self, oid: &str, class: &str, method: &str, input: &[u8]) -> Result<()> {
        validate_oid(oid)?;
        let bad = |what: &str| StoreError::InvalidArgument(format!("{what} has a NUL"));
        let class = CString::new(class).map_err(|_| bad("class name"))?;
        let method = CString::new(method).map_err(|_| bad("method name"))?;
        let mut wop = WriteOp::new();
        wop.exec(&class, &method, input);
        self.io("exec")?
            .operate(oid, wop)
            .map_err(|e| map_errno("exec", oid, e))
    }

    /// Ceph's native `omap_cmp` of `key` on `oid` against `operand`, run as a write op with no
    /// other effect: `Ok(true)` if the comparison held, `Ok(false)` if the OSD answered
    /// `-ECANCELED`. The store's own guards do not use it (see the module docs); it is exposed so
    /// the semantics can be checked against a live cluster.
    pub fn omap_compare(
        &self,
        oid: &str,
        key: &str,
        op: CephCmpOp,
        operand: &[u8],
    ) -> Result<bool> {
        validate_oid(oid)?;
        let key_c = CString::new(key)
            .map_err(|_| StoreError::InvalidArgument(format!("omap key {key:?} has a NUL")))?;
        let mut wop = WriteOp::new();
        wop.omap_cmp(&key_c, op.code(), operand);
        match self.io("omap_cmp")?.operate(oid, wop) {
            Ok(()) => Ok(true),
            Err(e) if e == -errno::ECANCELED => Ok(false),
            Err(e) => Err(map_errno("omap_cmp", oid, e)),
        }
    }

    fn io(&self, op: &'static str) -> Result<PooledIo<'_>> {
        let reused = self.idle.lock().pop();
        let io = match reused {
            Some(io) => io,
            None => self
                .cluster
                .ioctx(&self.options.pool, &self.options.namespace)
                .map_err(|e| map_errno(op, &self.options.pool, e))?,
        };
        Ok(PooledIo {
            io: Some(io),
            store: self,
        })
    }

    /// Reads size, version and the given omap keys of `oid` in one op (missing = empty).
    fn observe(&self, io: &IoCtx, op: &'static str, oid: &str, keys: &[&str]) -> Result<Observed> {
        match io.stat_and_omap_get(oid, keys) {
            Ok((size, version, entries)) => Ok(Observed {
                version: Some(version),
                size,
                omap: entries
                    .into_iter()
                    .map(|(k, v)| (k, Bytes::from(v)))
                    .collect(),
            }),
            Err(e) if e == -errno::ENOENT => Ok(Observed {
                version: None,
                size: 0,
                omap: BTreeMap::new(),
            }),
            Err(e) => Err(map_errno(op, oid, e)),
        }
    }

    /// A write op that only succeeds if the object is still as `seen`.
    fn conditional_op(seen: &Observed) -> WriteOp {
        let mut wop = WriteOp::new();
        match seen.version {
            Some(v) => wop.assert_version(v),
            None => wop.create(true),
        }
        wop
    }

    fn too_contended(&self, op: &'static str, oid: &str) -> StoreError {
        StoreError::io(
            op,
            oid,
            std::io::Error::other(format!(
                "object changed concurrently {} times in a row",
                self.options.max_cas_attempts
            )),
        )
    }
}

/// True for the errors that mean "the object changed since it was observed": retry.
fn is_conflict(e: i32) -> bool {
    e == -errno::ERANGE || e == -errno::EOVERFLOW || e == -errno::EEXIST || e == -errno::ENOENT
}

fn check_key(key: &str) -> Result<()> {
    if key.as_bytes().contains(&0) {
        return Err(StoreError::InvalidArgument(format!(
            "omap key {key:?} has a NUL"
        )));
    }
    Ok(())
}

impl ObjectStore for RadosStore {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        validate_oid(oid)?;
        let keys: Vec<&str> = guard.omap.iter().map(|g| g.key.as_str()).collect();
        for key in &keys {
            check_key(key)?;
        }
        let io = self.io("append")?;
        if guard.soft_max_size == Some(0) {
            // Every size is >= 0: refused without writing; report the current size.
            let size = io.stat(oid).map(|(s, _)| s).unwrap_or(0);
            return Err(StoreError::Overflow {
                oid: oid.to_owned(),
                size,
                soft_max: 0,
            });
        }
        let class = c"journal";
        let method = c"guard_append";
        let mut cached = self.known.state(oid, &keys);
        for _ in 0..self.options.max_cas_attempts {
            let from_cache = cached.is_some();
            let seen = match cached.take() {
                Some(seen) => seen,
                None => self.observe(&io, "append", oid, &keys)?,
            };
            if from_cache {
                // Refusals are only decided on fresh state.
                let refused = guard.check_soft_max(oid, seen.size).is_err()
                    || check_guards(oid, &seen.omap, &guard.omap).is_err();
                if refused {
                    self.known.forget(oid);
                    continue;
                }
            }
            guard.check_soft_max(oid, seen.size)?;
            check_guards(oid, &seen.omap, &guard.omap)?;
            let mut wop = Self::conditional_op(&seen);
            if let Some(soft_max) = guard.soft_max_size {
                wop.exec(class, method, &soft_max.to_le_bytes());
            }
            for buf in data {
                if !buf.is_empty() {
                    wop.append(buf);
                }
            }
            match io.operate_versioned(oid, wop) {
                Ok(version) => {
                    let size = seen.size.saturating_add(total_len(data));
                    self.known.remember(oid, version, size, &keys, &seen);
                    return Ok(seen.size);
                }
                Err(e) if is_conflict(e) => {
                    self.known.forget(oid);
                    continue;
                }
                Err(e) => {
                    self.known.forget(oid);
                    return Err(map_errno("append", oid, e));
                }
            }
        }
        Err(self.too_contended("append", oid))
    }

    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        validate_oid(oid)?;
        let io = self.io("read")?;
        let read_chunk = |off: u64, n: u64| -> Result<Vec<u8>> {
            let n = usize::try_from(n)
                .map_err(|_| StoreError::InvalidArgument(format!("read length {n}")))?;
            io.read(oid, off, n).map_err(|e| map_errno("read", oid, e))
        };
        if len == 0 {
            // A zero-length RADOS read means "to the end"; only check existence.
            io.stat(oid).map_err(|e| map_errno("read", oid, e))?;
            return Ok(Bytes::new());
        }
        if len <= DIRECT_READ_MAX {
            return read_chunk(offset, len).map(Bytes::from);
        }
        let (size, _) = io.stat(oid).map_err(|e| map_errno("read", oid, e))?;
        let end = offset.saturating_add(len).min(size);
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            let n = (end - pos).min(READ_CHUNK);
            let chunk = read_chunk(pos, n)?;
            let got = chunk.len() as u64;
            out.extend_from_slice(&chunk);
            if got < n {
                break; // the object shrank meanwhile
            }
            pos += got;
        }
        Ok(Bytes::from(out))
    }

    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        validate_oid(oid)?;
        let (size, _) = self
            .io("stat")?
            .stat(oid)
            .map_err(|e| map_errno("stat", oid, e))?;
        Ok(ObjectStat { size })
    }

    fn remove(&self, oid: &str) -> Result<()> {
        validate_oid(oid)?;
        self.known.forget(oid);
        self.io("remove")?
            .remove(oid)
            .map_err(|e| map_errno("remove", oid, e))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .io("list")?
            .list()
            .map_err(|e| map_errno("list", prefix, e))?
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        validate_oid(oid)?;
        self.known.forget(oid);
        let mut wop = WriteOp::new();
        wop.create(false);
        wop.write_full(&data);
        self.io("write_full")?
            .operate(oid, wop)
            .map_err(|e| map_errno("write_full", oid, e))
    }

    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        validate_oid(oid)?;
        self.known.forget(oid);
        object_store_trait::write_end(offset, data.len())?;
        let io = self.io("write_at")?;
        if !data.is_empty() {
            // RADOS `write`: atomic, creates the object, zero-fills a gap past the end.
            let mut wop = WriteOp::new();
            wop.create(false);
            wop.write(&data, offset);
            return io
                .operate(oid, wop)
                .map_err(|e| map_errno("write_at", oid, e));
        }
        // An empty write still creates the object and extends it to `offset`.
        for _ in 0..self.options.max_cas_attempts {
            let seen = self.observe(&io, "write_at", oid, &[])?;
            let mut wop = Self::conditional_op(&seen);
            if offset > seen.size {
                wop.truncate(offset);
            } else if seen.version.is_some() {
                return Ok(());
            }
            match io.operate(oid, wop) {
                Ok(()) => return Ok(()),
                Err(e) if is_conflict(e) => continue,
                Err(e) => return Err(map_errno("write_at", oid, e)),
            }
        }
        Err(self.too_contended("write_at", oid))
    }

    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        validate_oid(oid)?;
        for key in keys {
            check_key(key)?;
        }
        if keys.is_empty() {
            return Ok(BTreeMap::new());
        }
        let io = self.io("omap_get")?;
        Ok(self.observe(&io, "omap_get", oid, keys)?.omap)
    }

    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        validate_oid(oid)?;
        check_key(start_after)?;
        check_key(prefix)?;
        let io = self.io("omap_list")?;
        let mut out: Vec<(String, Bytes)> = Vec::new();
        let mut after = start_after.to_owned();
        while out.len() < max {
            let want = ((max - out.len()) as u64).min(OMAP_PAGE);
            let (entries, more) = match io.omap_get_vals(oid, &after, prefix, want) {
                Ok(page) => page,
                Err(e) if e == -errno::ENOENT => break,
                Err(e) => return Err(map_errno("omap_list", oid, e)),
            };
            let Some((last, _)) = entries.last() else {
                break;
            };
            after = last.clone();
            out.extend(entries.into_iter().map(|(k, v)| (k, Bytes::from(v))));
            if !more {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }

    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        validate_oid(oid)?;
        self.known.forget(oid);
        let keys: Vec<&str> = batch.guards.iter().map(|g| g.key.as_str()).collect();
        for key in keys
            .iter()
            .copied()
            .chain(batch.removes.iter().map(String::as_str))
        {
            check_key(key)?;
        }
        for (key, _) in &batch.sets {
            check_key(key)?;
        }
        let removes: Vec<&str> = batch.removes.iter().map(String::as_str).collect();
        let sets: Vec<(&str, &[u8])> = batch
            .sets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        let io = self.io("omap_apply")?;
        if batch.guards.is_empty() {
            if batch.is_noop() {
                return Ok(());
            }
            let mut wop = WriteOp::new();
            if !sets.is_empty() {
                wop.create(false);
            }
            wop.omap_rm_keys(&removes);
            wop.omap_set(&sets);
            return match io.operate(oid, wop) {
                Ok(()) => Ok(()),
                // Only removes, on a missing object: nothing to remove.
                Err(e) if e == -errno::ENOENT && sets.is_empty() => Ok(()),
                Err(e) => Err(map_errno("omap_apply", oid, e)),
            };
        }
        for _ in 0..self.options.max_cas_attempts {
            let seen = self.observe(&io, "omap_apply", oid, &keys)?;
            check_guards(oid, &seen.omap, &batch.guards)?;
            if sets.is_empty() && (seen.version.is_none() || removes.is_empty()) {
                return Ok(()); // nothing would change in the state just checked
            }
            let mut wop = Self::conditional_op(&seen);
            if seen.version.is_some() {
                wop.omap_rm_keys(&removes);
            }
            wop.omap_set(&sets);
            match io.operate(oid, wop) {
                Ok(()) => return Ok(()),
                Err(e) if is_conflict(e) => continue,
                Err(e) => return Err(map_errno("omap_apply", oid, e)),
            }
        }
        Err(self.too_contended("omap_apply", oid))
    }

    /// A RADOS watch on `oid` (created empty if missing). After a watch error the store
    /// registers it again (`ffi/watch.rs`), and the watcher gets a notification with an empty
    /// payload once it is back, or once its object is found missing (never re-created by the
    /// store).
    fn watch(&self, oid: &str) -> Result<Watch> {
        validate_oid(oid)?;
        let (tx, rx) = object_store_trait::watch_channel();
        let faults = self.faults()?;
        let open = || {
            self.cluster
                .ioctx(&self.options.pool, &self.options.namespace)
                .map_err(|e| map_errno("watch", oid, e))
        };
        let handle = match open()?.watch(oid, tx.clone(), faults.clone()) {
            Ok(handle) => handle,
            Err(e) if e == -errno::ENOENT => {
                // RADOS can only watch an existing object: create it empty, then watch.
                let mut wop = WriteOp::new();
                wop.create(false);
                self.io("watch")?
                    .operate(oid, wop)
                    .map_err(|e| map_errno("watch", oid, e))?;
                open()?
                    .watch(oid, tx, faults)
                    .map_err(|e| map_errno("watch", oid, e))?
            }
            Err(e) => return Err(map_errno("watch", oid, e)),
        };
        Ok(Watch::new(rx, Box::new(handle)))
    }

    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        validate_oid(oid)?;
        let reply = match self
            .io("notify")?
            .notify(oid, &payload, self.options.notify_timeout_ms)
        {
            Ok(reply) => reply,
            Err(e) if e == -errno::ENOENT => return Ok(0),
            Err(e) => return Err(map_errno("notify", oid, e)),
        };
        let parsed = crate::notify_reply::parse(&reply).ok_or_else(|| StoreError::Corrupt {
            oid: oid.to_owned(),
            detail: "malformed notify reply".into(),
        })?;
        Ok(parsed.acks.len())
    }

    fn notify_crosses_processes(&self) -> bool {
        true
    }

    /// Notifications reach every watcher of the object, in any process (a watch lost to an
    /// error is registered again; readers keep a slow poll as a safety net for the gap).
    fn notifications_complete(&self) -> bool {
        true
    }

    /// A notify is a round trip to the OSD that waits for every watcher's ack.
    fn notify_is_cheap(&self) -> bool {
        false
    }
}
