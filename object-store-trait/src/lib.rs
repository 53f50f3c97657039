//! The object store under rbdj's journals: a small, object-safe trait modelled on the subset of
//! RADOS that a Ceph journal needs, plus an in-memory backend ([`MemStore`]) and a directory backend
//! ([`DirStore`]).
//!
//! # The contract
//!
//! * Objects are named byte strings identified by an `oid` (a non-empty string without `/` or NUL).
//! * [`ObjectStore::append`] writes bytes at the current end of the object, atomically: the whole
//!   batch is written or nothing is. When the append carries a soft limit and the object already
//!   holds at least that many bytes, the append is refused with [`StoreError::Overflow`] and nothing
//!   is written (Ceph's `journal.guard_append`). An append may also carry omap guards on the same
//!   object; all guards and the data write form one atomic operation.
//! * Every mutation (`append`, `write_full`, `remove`, `omap_apply`) is **durable when it returns
//!   `Ok`** on a store configured for durability (the default for [`DirStore`]; [`MemStore`] is
//!   durable for the life of the process). A crash may lose or tear only operations that had not
//!   returned.
//! * [`ObjectStore::read`] returns up to `len` bytes from `offset`; a read past the end is short
//!   (possibly empty), a read of a missing object is [`StoreError::NotFound`].
//! * Each object has an omap (sorted string keys, byte values) changed only through
//!   [`ObjectStore::omap_apply`], an atomic batch of guards, sets and removes. An object that has
//!   only omap entries exists with size 0.
//! * [`ObjectStore::watch`] registers interest in an object; [`ObjectStore::notify`] delivers a
//!   [`Notification`] to every current watcher of that object. Notifications are hints for change
//!   detection: a consumer must still re-read state, and must tolerate lost or duplicated ones.
//!
//! # Backends and wrappers
//!
//! * [`MemStore`]: process memory; [`DirStore`]: a local directory, durable and shareable between
//!   processes (layout and crash-safety design in `docs/object-store.md`).
//! * [`Intercept`]: forwards every method to an inner store, calling a [`Hook`] around each
//!   operation (counting, gating, failing chosen operations) — the base of test wrappers.
//! * [`Checked`]: latches the first failed mutation (an [`Intercept`] with a [`PoisonLatch`]).
//! * With the `testing` cargo feature, `testing` adds a conformance suite every backend must pass
//!   (`conformance_tests!`), `CrashStore` (crash at a chosen durability boundary, then "reopen")
//!   and `FaultyStore` (seeded I/O errors and notification loss).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use object_store_trait::{AppendGuard, MemStore, ObjectStore, OmapBatch, StoreError};
//!
//! let store = MemStore::new();
//! store.append("obj", &[Bytes::from_static(b"hello ")], &AppendGuard::none())?;
//! store.append("obj", &[Bytes::from_static(b"world")], &AppendGuard::soft_max(64))?;
//! assert_eq!(&store.read("obj", 0, 100)?[..], b"hello world");
//!
//! // A guarded append refuses once the object reached its soft limit.
//! let full = store.append("obj", &[Bytes::from_static(b"!")], &AppendGuard::soft_max(8));
//! assert!(matches!(full, Err(StoreError::Overflow { .. })));
//!
//! // Omap batches with guards are atomic.
//! let mut batch = OmapBatch::new();
//! batch.assert_absent("order").set("order", Bytes::from_static(&[24]));
//! store.omap_apply("journal.x", &batch)?;
//! assert!(store.omap_apply("journal.x", &batch).is_err());
//! # Ok::<(), StoreError>(())
//! ```

mod checked;
mod dir;
mod error;
mod fnv;
mod intercept;
mod mem;
mod omap;
#[cfg(feature = "testing")]
pub mod testing;
mod watch;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

pub use checked::{Checked, PoisonLatch};
pub use dir::{DirStore, DirStoreOptions, SyncPolicy};
pub use error::{GuardFailure, Result, StoreError};
pub use intercept::{Hook, Intercept, NoopHook, Op, OpKind};
pub use mem::{MemSnapshot, MemStore};
pub use omap::{check_guards, OmapBatch, OmapCmp, OmapGuard};
pub use watch::{
    watch_channel, Notification, Waker, Watch, WatchReceiver, WatchRegistry, WatchSender,
};

/// Size and existence information about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectStat {
    /// Number of data bytes in the object.
    pub size: u64,
}

/// Conditions attached to an [`ObjectStore::append`]; checked atomically with the write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendGuard {
    /// Refuse the append with [`StoreError::Overflow`] if the object's size is already
    /// `>= soft_max_size` (a missing object has size 0). `None` = no limit.
    pub soft_max_size: Option<u64>,
    /// Omap guards on the same object that must hold for the append to happen.
    pub omap: Vec<OmapGuard>,
}

impl AppendGuard {
    /// No conditions: a plain append.
    pub fn none() -> Self {
        AppendGuard::default()
    }

    /// Only a soft size limit (Ceph's `journal.append(soft_max_size, data)`).
    pub fn soft_max(soft_max_size: u64) -> Self {
        AppendGuard {
            soft_max_size: Some(soft_max_size),
            omap: Vec::new(),
        }
    }

    /// Adds an omap guard on the appended object.
    #[must_use]
    pub fn with_omap_guard(mut self, guard: OmapGuard) -> Self {
        self.omap.push(guard);
        self
    }

    /// The soft size limit's verdict on `oid` holding `size` bytes: [`StoreError::Overflow`]
    /// when it is at or past the limit.
    pub fn check_soft_max(&self, oid: &str, size: u64) -> Result<()> {
        match self.soft_max_size {
            Some(soft_max) if size >= soft_max => Err(StoreError::Overflow {
                oid: oid.to_owned(),
                size,
                soft_max,
            }),
            _ => Ok(()),
        }
    }
}

/// The storage under a journal: objects with byte data and an omap, plus watch/notify.
///
/// Implementations must be safe to call from many threads at once; operations on one object are
/// linearizable (each takes effect atomically at some instant between call and return).
///
/// A new method must also be forwarded by the two generic wrappers, `impl ObjectStore for Arc<S>`
/// and [`Intercept`] (with an [`Op`] variant if it is an operation); a wrapper that forgets an
/// optional method silently falls back to the default here.
pub trait ObjectStore: Send + Sync + Debug + 'static {
    /// Appends the concatenation of `data` to object `oid` (creating it if missing) if `guard`
    /// holds, atomically and durably. Returns the offset at which the first byte was written.
    ///
    /// Errors: [`StoreError::Overflow`] when `guard.soft_max_size` is reached,
    /// [`StoreError::GuardFailed`] when an omap guard fails; in both cases nothing was written.
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64>;

    /// Reads up to `len` bytes starting at `offset`. Short at the end of the object, empty past
    /// it; [`StoreError::NotFound`] if the object does not exist.
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes>;

    /// Size of the object, or [`StoreError::NotFound`].
    fn stat(&self, oid: &str) -> Result<ObjectStat>;

    /// Removes the object's data and omap. [`StoreError::NotFound`] if it does not exist.
    fn remove(&self, oid: &str) -> Result<()>;

    /// Ids of all existing objects whose id starts with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Replaces the object's data with `data` (creating it if missing), atomically and durably.
    /// The omap is untouched.
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()>;

    /// Writes `data` at `offset` (RADOS `write`), creating the object if missing and zero-filling
    /// any gap between its end and `offset`; bytes outside the range are unchanged. Atomic and
    /// durable like every mutation. The omap is untouched.
    ///
    /// The default reads the whole object and replaces it with [`ObjectStore::write_full`];
    /// backends that can write in place override it.
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        write_at_by_copy(self, oid, offset, &data)
    }

    /// [`ObjectStore::write_at`] without the durability: the bytes are visible at once but
    /// durable only once [`ObjectStore::sync_objects`] covers the object (or another durable
    /// mutation of its data does); a crash before that may lose any of them, never bytes
    /// outside the range or bytes made durable earlier. For data whose writer syncs before it
    /// relies on it: an image's writes, made durable by the image's flush. The default writes
    /// durably, as stores whose every write is durable on acknowledgement do (RADOS).
    fn write_at_unsynced(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.write_at(oid, offset, data)
    }

    /// Makes the unsynced writes to `oids` made before the call durable (a missing object has
    /// nothing to sync). The default has nothing to do: it goes with the default
    /// [`ObjectStore::write_at_unsynced`], which writes durably.
    fn sync_objects(&self, oids: &[String]) -> Result<()> {
        let _ = oids;
        Ok(())
    }

    /// Values of the given omap keys that exist (missing keys are simply absent from the map).
    /// A missing object yields an empty map.
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>>;

    /// Up to `max` omap entries whose key is `> start_after` and starts with `prefix`, in key
    /// order. A missing object yields an empty list.
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>>;

    /// Applies `batch` atomically and durably: if every guard holds, all removes then all sets take
    /// effect; otherwise nothing does and [`StoreError::GuardFailed`] names the first failing
    /// guard. Creates the object (size 0) if it does not exist and the batch sets a key.
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()>;

    /// Registers a watch on `oid` (the object need not exist). Notifications arrive on the
    /// returned handle's channel until it is dropped.
    fn watch(&self, oid: &str) -> Result<Watch>;

    /// Sends `payload` to every current watcher of `oid`; returns how many watchers were reached.
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize>;

    /// Whether watch/notify reaches watchers in other processes (and so can replace polling
    /// across processes). Defaults to `false`.
    fn notify_crosses_processes(&self) -> bool {
        false
    }

    /// Whether a change whose writer notifies always reaches this handle's watchers: true when
    /// every possible writer shares this process's registry (an in-memory store) or the
    /// notification crosses processes (RADOS); false when another process may write without
    /// this process hearing of it (`DirStore`). A reader may then rely on notifications for
    /// rarely changing objects (a journal header) and poll them only as a safety net. Defaults
    /// to `false`.
    fn notifications_complete(&self) -> bool {
        false
    }

    /// Whether a notification costs no more than an in-process call (no network round trip),
    /// so a writer may notify after every append and spare its readers a poll interval of
    /// lag. Defaults to `true`; a networked store (RADOS) says `false`.
    fn notify_is_cheap(&self) -> bool {
        true
    }
}

impl<S: ObjectStore + ?Sized> ObjectStore for Arc<S> {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        (**self).append(oid, data, guard)
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        (**self).read(oid, offset, len)
    }
    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        (**self).stat(oid)
    }
    fn remove(&self, oid: &str) -> Result<()> {
        (**self).remove(oid)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        (**self).list(prefix)
    }
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        (**self).write_full(oid, data)
    }
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        (**self).write_at(oid, offset, data)
    }
    fn write_at_unsynced(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        (**self).write_at_unsynced(oid, offset, data)
    }
    fn sync_objects(&self, oids: &[String]) -> Result<()> {
        (**self).sync_objects(oids)
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        (**self).omap_get(oid, keys)
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        (**self).omap_list(oid, start_after, prefix, max)
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        (**self).omap_apply(oid, batch)
    }
    fn watch(&self, oid: &str) -> Result<Watch> {
        (**self).watch(oid)
    }
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        (**self).notify(oid, payload)
    }
    fn notify_crosses_processes(&self) -> bool {
        (**self).notify_crosses_processes()
    }
    fn notifications_complete(&self) -> bool {
        (**self).notifications_complete()
    }
    fn notify_is_cheap(&self) -> bool {
        (**self).notify_is_cheap()
    }
}

/// Convenience methods over any [`ObjectStore`].
pub trait ObjectStoreExt: ObjectStore {
    /// Reads one omap value.
    fn omap_get_one(&self, oid: &str, key: &str) -> Result<Option<Bytes>> {
        Ok(self.omap_get(oid, &[key])?.remove(key))
    }

    /// Reads a whole object (empty if it does not exist is *not* implied: missing is `NotFound`).
    fn read_all(&self, oid: &str) -> Result<Bytes> {
        let size = self.stat(oid)?.size;
        self.read(oid, 0, size)
    }
}

impl<S: ObjectStore + ?Sized> ObjectStoreExt for S {}

/// Checks that an object id is acceptable to every backend: non-empty, at most 255 bytes, no `/`,
/// no NUL, not `.` or `..`, and not starting with `.` (reserved for backend-private files).
pub fn validate_oid(oid: &str) -> Result<()> {
    let bad = oid.is_empty()
        || oid.len() > 255
        || oid.starts_with('.')
        || oid.bytes().any(|b| b == b'/' || b == 0);
    if bad {
        return Err(StoreError::InvalidArgument(format!(
            "invalid object id {oid:?}"
        )));
    }
    Ok(())
}

/// The end of a write of `len` bytes at `offset`: the object size it implies. A write whose
/// end overflows is an invalid argument, for every backend alike.
pub fn write_end(offset: u64, len: usize) -> Result<u64> {
    offset
        .checked_add(len as u64)
        .ok_or_else(|| StoreError::InvalidArgument(format!("write at {offset} overflows")))
}

/// `write_at` by copy: reads the whole object (a missing one is empty), splices `data` in and
/// replaces the object with `write_full`. The trait's default, and the fallback of backends that
/// cannot write in place.
pub fn write_at_by_copy<S: ObjectStore + ?Sized>(
    store: &S,
    oid: &str,
    offset: u64,
    data: &[u8],
) -> Result<()> {
    let current = match store.stat(oid) {
        Ok(stat) => store.read(oid, 0, stat.size)?,
        Err(StoreError::NotFound { .. }) => Bytes::new(),
        Err(e) => return Err(e),
    };
    store.write_full(oid, splice(&current, offset, data)?)
}

/// `current` with `data` written at `offset` (zero-filled up to `offset` if it lies past the end).
pub fn splice(current: &[u8], offset: u64, data: &[u8]) -> Result<Bytes> {
    let too_big = || StoreError::InvalidArgument(format!("write at {offset} overflows"));
    let start = usize::try_from(offset).map_err(|_| too_big())?;
    let end = start.checked_add(data.len()).ok_or_else(too_big)?;
    let mut out = bytes::BytesMut::with_capacity(end.max(current.len()));
    out.extend_from_slice(current.get(..start.min(current.len())).unwrap_or_default());
    out.resize(start, 0);
    out.extend_from_slice(data);
    if let Some(rest) = current.get(end..) {
        out.extend_from_slice(rest);
    }
    Ok(out.freeze())
}

/// Total length of a list of buffers.
pub fn total_len(data: &[Bytes]) -> u64 {
    data.iter().map(|b| b.len() as u64).sum()
}
