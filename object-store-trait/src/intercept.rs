//! [`Intercept`]: a store that forwards every [`ObjectStore`] method to an inner store and lets a
//! [`Hook`] look at (and refuse) each operation first.
//!
//! Wrappers that add one small behaviour to a store — count calls, block on a gate, fail once
//! killed, fail chosen operations, latch failures ([`crate::Checked`]) — are a hook over an
//! `Intercept` instead of a hand-written `impl ObjectStore` each. The forwarding is written once
//! here, so every method reaches the inner store as the *same* method: in particular the optional
//! ones with default implementations (`write_at`, `notify_crosses_processes`, `notify_is_cheap`),
//! which a hand-written wrapper that forgets them silently replaces with the trait's defaults.
//!
//! For each operation `Intercept` calls [`Hook::before`]; an error from it is returned and the
//! inner store is not called. Otherwise the operation runs on the inner store, [`Hook::after`] sees
//! whether it failed, and its result is returned unchanged. The capability queries
//! (`notify_crosses_processes`, `notify_is_cheap`) are not operations: they are forwarded without
//! calling the hook.
//!
//! # Example
//!
//! A hook that counts appends and refuses every operation on one object:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use bytes::Bytes;
//! use object_store_trait::{
//!     AppendGuard, Hook, Intercept, MemStore, ObjectStore, Op, OpKind, StoreError,
//! };
//!
//! #[derive(Debug, Default)]
//! struct Fence {
//!     appends: AtomicU64,
//! }
//!
//! impl Hook for Fence {
//!     fn before(&self, op: Op<'_>) -> Result<(), StoreError> {
//!         if op.kind() == OpKind::Append {
//!             self.appends.fetch_add(1, Ordering::SeqCst);
//!         }
//!         if op.oid() == "fenced" {
//!             return Err(StoreError::Closed);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let store: Intercept<MemStore, Fence> = Intercept::new(MemStore::new());
//! store.append("a", &[Bytes::from_static(b"x")], &AppendGuard::none())?;
//! let refused = store.append("fenced", &[Bytes::from_static(b"y")], &AppendGuard::none());
//! assert!(matches!(refused, Err(StoreError::Closed)));
//! assert_eq!(store.hook().appends.load(Ordering::SeqCst), 2);
//! // The refused append never reached the inner store.
//! assert!(matches!(store.inner().stat("fenced"), Err(StoreError::NotFound { .. })));
//! # Ok::<(), StoreError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

use crate::{AppendGuard, ObjectStat, ObjectStore, OmapBatch, Result, StoreError, Watch};

/// One operation on an [`ObjectStore`], with the arguments it was called with, as shown to a
/// [`Hook`]. One variant per operation method of the trait.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// [`ObjectStore::append`].
    Append {
        /// Object id.
        oid: &'a str,
        /// The buffers appended (one per journal entry for a recorder).
        data: &'a [Bytes],
        /// The append's guard.
        guard: &'a AppendGuard,
    },
    /// [`ObjectStore::read`].
    Read {
        /// Object id.
        oid: &'a str,
        /// First byte read.
        offset: u64,
        /// Most bytes read.
        len: u64,
    },
    /// [`ObjectStore::stat`].
    Stat {
        /// Object id.
        oid: &'a str,
    },
    /// [`ObjectStore::remove`].
    Remove {
        /// Object id.
        oid: &'a str,
    },
    /// [`ObjectStore::list`].
    List {
        /// Prefix of the ids listed.
        prefix: &'a str,
    },
    /// [`ObjectStore::sync_objects`].
    SyncObjects {
        /// The objects synced.
        oids: &'a [String],
    },
    /// [`ObjectStore::write_full`].
    WriteFull {
        /// Object id.
        oid: &'a str,
        /// The object's new data.
        data: &'a Bytes,
    },
    /// [`ObjectStore::write_at`].
    WriteAt {
        /// Object id.
        oid: &'a str,
        /// Where the data goes.
        offset: u64,
        /// The bytes written.
        data: &'a Bytes,
    },
    /// [`ObjectStore::omap_get`].
    OmapGet {
        /// Object id.
        oid: &'a str,
        /// Keys asked for.
        keys: &'a [&'a str],
    },
    /// [`ObjectStore::omap_list`].
    OmapList {
        /// Object id.
        oid: &'a str,
        /// Keys listed are greater than this one.
        start_after: &'a str,
        /// Keys listed start with this.
        prefix: &'a str,
        /// Most entries listed.
        max: usize,
    },
    /// [`ObjectStore::omap_apply`].
    OmapApply {
        /// Object id.
        oid: &'a str,
        /// The batch applied.
        batch: &'a OmapBatch,
    },
    /// [`ObjectStore::watch`].
    Watch {
        /// Object id.
        oid: &'a str,
    },
    /// [`ObjectStore::notify`].
    Notify {
        /// Object id.
        oid: &'a str,
        /// The notification's payload.
        payload: &'a Bytes,
    },
}

impl<'a> Op<'a> {
    /// Which operation this is.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Append { .. } => OpKind::Append,
            Op::Read { .. } => OpKind::Read,
            Op::Stat { .. } => OpKind::Stat,
            Op::Remove { .. } => OpKind::Remove,
            Op::List { .. } => OpKind::List,
            Op::WriteFull { .. } => OpKind::WriteFull,
            Op::WriteAt { .. } => OpKind::WriteAt,
            Op::SyncObjects { .. } => OpKind::SyncObjects,
            Op::OmapGet { .. } => OpKind::OmapGet,
            Op::OmapList { .. } => OpKind::OmapList,
            Op::OmapApply { .. } => OpKind::OmapApply,
            Op::Watch { .. } => OpKind::Watch,
            Op::Notify { .. } => OpKind::Notify,
        }
    }

    /// The object the operation is on; for [`Op::List`], the prefix listed.
    pub fn oid(&self) -> &'a str {
        match *self {
            Op::Append { oid, .. }
            | Op::Read { oid, .. }
            | Op::Stat { oid }
            | Op::Remove { oid }
            | Op::WriteFull { oid, .. }
            | Op::WriteAt { oid, .. }
            | Op::OmapGet { oid, .. }
            | Op::OmapList { oid, .. }
            | Op::OmapApply { oid, .. }
            | Op::Watch { oid }
            | Op::Notify { oid, .. } => oid,
            Op::List { prefix } => prefix,
            Op::SyncObjects { oids } => oids.first().map_or("", String::as_str),
        }
    }
}

/// The kind of an [`Op`], without its arguments: for hooks that count or fail by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// [`ObjectStore::append`].
    Append,
    /// [`ObjectStore::read`].
    Read,
    /// [`ObjectStore::stat`].
    Stat,
    /// [`ObjectStore::remove`].
    Remove,
    /// [`ObjectStore::list`].
    List,
    /// [`ObjectStore::write_full`].
    WriteFull,
    /// [`ObjectStore::write_at`] (and [`ObjectStore::write_at_unsynced`]).
    WriteAt,
    /// [`ObjectStore::sync_objects`].
    SyncObjects,
    /// [`ObjectStore::omap_get`].
    OmapGet,
    /// [`ObjectStore::omap_list`].
    OmapList,
    /// [`ObjectStore::omap_apply`].
    OmapApply,
    /// [`ObjectStore::watch`].
    Watch,
    /// [`ObjectStore::notify`].
    Notify,
}

impl OpKind {
    /// Every kind, in trait order.
    pub const ALL: [OpKind; 13] = [
        OpKind::Append,
        OpKind::Read,
        OpKind::Stat,
        OpKind::Remove,
        OpKind::List,
        OpKind::WriteFull,
        OpKind::WriteAt,
        OpKind::SyncObjects,
        OpKind::OmapGet,
        OpKind::OmapList,
        OpKind::OmapApply,
        OpKind::Watch,
        OpKind::Notify,
    ];

    /// Whether the operation changes stored state (data or omap, or its durability): `append`,
    /// `remove`, `write_full`, `write_at`, `sync_objects`, `omap_apply`. Watches and
    /// notifications do not.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            OpKind::Append
                | OpKind::Remove
                | OpKind::WriteFull
                | OpKind::WriteAt
                | OpKind::SyncObjects
                | OpKind::OmapApply
        )
    }

    /// The trait method's name, e.g. `"write_at"`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Append => "append",
            OpKind::Read => "read",
            OpKind::Stat => "stat",
            OpKind::Remove => "remove",
            OpKind::List => "list",
            OpKind::WriteFull => "write_full",
            OpKind::WriteAt => "write_at",
            OpKind::SyncObjects => "sync_objects",
            OpKind::OmapGet => "omap_get",
            OpKind::OmapList => "omap_list",
            OpKind::OmapApply => "omap_apply",
            OpKind::Watch => "watch",
            OpKind::Notify => "notify",
        }
    }
}

/// What an [`Intercept`] does around each operation. Both methods default to doing nothing.
///
/// A hook is called from every thread using the store; keep locks brief and never hold one while
/// the inner store runs (`before` returns before it runs, `after` is called once it returned).
pub trait Hook: Debug + Send + Sync + 'static {
    /// Called before `op` reaches the inner store. An error is returned to the caller in place
    /// of the operation's result, and the inner store is not called. A hook may also block here
    /// (a gate) or sleep (latency).
    fn before(&self, _op: Op<'_>) -> Result<()> {
        Ok(())
    }

    /// Called after the inner store ran `op`, with its error if it failed. It cannot change the
    /// result. Not called when [`Hook::before`] refused the operation.
    fn after(&self, _op: Op<'_>, _outcome: std::result::Result<(), &StoreError>) {}
}

/// A hook that does nothing: `Intercept<S, NoopHook>` behaves exactly like `S`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NoopHook;

impl Hook for NoopHook {}

/// A shared hook: lets a test keep a handle on the hook's state while the store is elsewhere.
impl<H: Hook + ?Sized> Hook for Arc<H> {
    fn before(&self, op: Op<'_>) -> Result<()> {
        (**self).before(op)
    }
    fn after(&self, op: Op<'_>, outcome: std::result::Result<(), &StoreError>) {
        (**self).after(op, outcome);
    }
}

/// A store that forwards every [`ObjectStore`] method to `S`, calling the hook `H` around each
/// operation (see the module docs).
#[derive(Debug, Default)]
pub struct Intercept<S, H> {
    inner: S,
    hook: H,
}

impl<S, H> Intercept<S, H> {
    /// Wraps `inner`, calling `hook` around each operation.
    pub fn with_hook(inner: S, hook: H) -> Self {
        Intercept { inner, hook }
    }

    /// The wrapped store (operations on it bypass the hook).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The wrapped store and the hook.
    pub fn into_parts(self) -> (S, H) {
        (self.inner, self.hook)
    }
}

impl<S, H: Default> Intercept<S, H> {
    /// Wraps `inner` with the hook's default value.
    pub fn new(inner: S) -> Self {
        Intercept::with_hook(inner, H::default())
    }
}

impl<S: ObjectStore, H: Hook> Intercept<S, H> {
    /// A `write_at` (durable or not, `run` decides) as [`Op::WriteAt`] to the hook.
    fn call_write_at(
        &self,
        oid: &str,
        offset: u64,
        data: Bytes,
        run: impl FnOnce(&S, Bytes) -> Result<()>,
    ) -> Result<()> {
        let shown = data.clone();
        let op = Op::WriteAt {
            oid,
            offset,
            data: &shown,
        };
        self.call(op, |s| run(s, data))
    }

    /// Runs `op` through the hook and, unless refused, `run` on the inner store.
    fn call<T>(&self, op: Op<'_>, run: impl FnOnce(&S) -> Result<T>) -> Result<T> {
        self.hook.before(op)?;
        let result = run(&self.inner);
        self.hook.after(op, result.as_ref().map(|_| ()));
        result
    }
}

impl<S: ObjectStore, H: Hook> ObjectStore for Intercept<S, H> {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> Result<u64> {
        self.call(Op::Append { oid, data, guard }, |s| {
            s.append(oid, data, guard)
        })
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.call(Op::Read { oid, offset, len }, |s| s.read(oid, offset, len))
    }
    fn stat(&self, oid: &str) -> Result<ObjectStat> {
        self.call(Op::Stat { oid }, |s| s.stat(oid))
    }
    fn remove(&self, oid: &str) -> Result<()> {
        self.call(Op::Remove { oid }, |s| s.remove(oid))
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.call(Op::List { prefix }, |s| s.list(prefix))
    }
    fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        let shown = data.clone();
        self.call(Op::WriteFull { oid, data: &shown }, |s| {
            s.write_full(oid, data)
        })
    }
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.call_write_at(oid, offset, data, |s, data| s.write_at(oid, offset, data))
    }
    fn write_at_unsynced(&self, oid: &str, offset: u64, data: Bytes) -> Result<()> {
        self.call_write_at(oid, offset, data, |s, data| {
            s.write_at_unsynced(oid, offset, data)
        })
    }
    fn sync_objects(&self, oids: &[String]) -> Result<()> {
        self.call(Op::SyncObjects { oids }, |s| s.sync_objects(oids))
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> Result<BTreeMap<String, Bytes>> {
        self.call(Op::OmapGet { oid, keys }, |s| s.omap_get(oid, keys))
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<(String, Bytes)>> {
        let op = Op::OmapList {
            oid,
            start_after,
            prefix,
            max,
        };
        self.call(op, |s| s.omap_list(oid, start_after, prefix, max))
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> Result<()> {
        self.call(Op::OmapApply { oid, batch }, |s| s.omap_apply(oid, batch))
    }
    fn watch(&self, oid: &str) -> Result<Watch> {
        self.call(Op::Watch { oid }, |s| s.watch(oid))
    }
    fn notify(&self, oid: &str, payload: Bytes) -> Result<usize> {
        let shown = payload.clone();
        self.call(
            Op::Notify {
                oid,
                payload: &shown,
            },
            |s| s.notify(oid, payload),
        )
    }
    fn notify_crosses_processes(&self) -> bool {
        self.inner.notify_crosses_processes()
    }
    fn notifications_complete(&self) -> bool {
        self.inner.notifications_complete()
    }
    fn notify_is_cheap(&self) -> bool {
        self.inner.notify_is_cheap()
    }
}
