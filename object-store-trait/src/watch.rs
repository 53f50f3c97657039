//! Watch/notify within one process: a registry of channels keyed by object id.
//!
//! A [`Watch`] is a channel of [`Notification`]s. Its holder may also install a [`Waker`]: a
//! callback the notifier runs once per arming ([`Watch::set_waker`], [`Watch::arm`]), so a
//! thread that serves thousands of watches learns *which* one has news from one queue of its
//! own instead of scanning every channel. Backends send through a [`WatchSender`], which rings
//! the waker; [`watch_channel`] makes the pair.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::fnv::Fnv;

/// A notification delivered to a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The watched object.
    pub oid: String,
    /// The notifier's payload (empty for journal header notifies).
    pub payload: Bytes,
}

/// A callback a notifier runs when a notification reaches an armed watch (see the module
/// docs). It runs on the notifier's thread, so it must be quick and must not block: typically
/// a send on an unbounded channel. Cloning shares the callback.
#[derive(Clone)]
pub struct Waker(Arc<dyn Fn() + Send + Sync>);

impl Waker {
    /// A waker that runs `f`.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Waker(Arc::new(f))
    }

    /// Runs the callback.
    pub fn wake(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// What a watch's two halves share: whether the next notification runs the waker, and the
/// waker.
#[derive(Default)]
struct Bell {
    armed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Bell {
    /// Runs the waker if the watch is armed, disarming it.
    fn ring(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            let waker = self.waker.lock().clone();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// The sending half of a watch's channel: what a backend delivers notifications through.
#[derive(Clone)]
pub struct WatchSender {
    tx: Sender<Notification>,
    bell: Arc<Bell>,
}

impl std::fmt::Debug for WatchSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSender").finish_non_exhaustive()
    }
}

impl WatchSender {
    /// Queues `note` for the watch and runs its waker if the watch is armed. Returns false
    /// when the watch is gone.
    pub fn send(&self, note: Notification) -> bool {
        if self.tx.send(note).is_err() {
            return false;
        }
        // After the send: whoever the waker wakes finds the notification queued.
        self.bell.ring();
        true
    }
}

/// The receiving half of a watch's channel, before [`Watch::new`] ties it to its
/// registration.
pub struct WatchReceiver {
    rx: Receiver<Notification>,
    bell: Arc<Bell>,
}

impl std::fmt::Debug for WatchReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchReceiver").finish_non_exhaustive()
    }
}

/// A new watch channel: the backend keeps the sender, the receiver goes into [`Watch::new`].
pub fn watch_channel() -> (WatchSender, WatchReceiver) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let bell = Arc::new(Bell::default());
    (
        WatchSender {
            tx,
            bell: Arc::clone(&bell),
        },
        WatchReceiver { rx, bell },
    )
}

/// A registered watch. Dropping it unregisters.
pub struct Watch {
    rx: Receiver<Notification>,
    bell: Arc<Bell>,
    _unregister: Box<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("pending", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// Builds a watch from its channel and a guard value whose drop unregisters it.
    pub fn new(rx: WatchReceiver, unregister: Box<dyn std::any::Any + Send + Sync>) -> Self {
        Watch {
            rx: rx.rx,
            bell: rx.bell,
            _unregister: unregister,
        }
    }

    /// The channel notifications arrive on (for `select!`).
    pub fn receiver(&self) -> &Receiver<Notification> {
        &self.rx
    }

    /// Drains pending notifications, returning how many there were.
    pub fn drain(&self) -> usize {
        // The common case on a busy replay path: nothing pending (cheaper than a failed recv).
        if self.rx.is_empty() {
            return 0;
        }
        self.rx.try_iter().count()
    }

    /// Installs `waker` and arms the watch: the next notification runs it once. Notifications
    /// already pending (they rang no waker) run it at once, so none waits unseen. Returns
    /// whether there were any.
    pub fn set_waker(&self, waker: Waker) -> bool {
        *self.bell.waker.lock() = Some(waker.clone());
        let pending = self.arm();
        if pending {
            waker.wake();
        }
        pending
    }

    /// Arms the watch again after its waker ran: the next notification runs it once more.
    /// Returns whether notifications are pending; those that arrived while the watch was
    /// disarmed ran no waker, so the caller looks at them now.
    pub fn arm(&self) -> bool {
        self.bell.armed.store(true, Ordering::SeqCst);
        !self.rx.is_empty()
    }
}

/// Watchers by object name, hashed with FNV-1a (looked up on every journal append).
type Watchers = HashMap<String, Vec<(u64, WatchSender)>, BuildHasherDefault<Fnv>>;

/// Per-process watch bookkeeping that a backend embeds.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    inner: Arc<Mutex<Watchers>>,
    next_id: AtomicU64,
}

struct Unregister {
    registry: Weak<Mutex<Watchers>>,
    oid: String,
    id: u64,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            let mut map = registry.lock();
            if let Some(list) = map.get_mut(&self.oid) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    map.remove(&self.oid);
                }
            }
        }
    }
}

impl WatchRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        WatchRegistry::default()
    }

    /// Registers a watcher on `oid`.
    pub fn watch(&self, oid: &str) -> Watch {
        let (tx, rx) = watch_channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .lock()
            .entry(oid.to_owned())
            .or_default()
            .push((id, tx));
        Watch::new(
            rx,
            Box::new(Unregister {
                registry: Arc::downgrade(&self.inner),
                oid: oid.to_owned(),
                id,
            }),
        )
    }

    /// Delivers `payload` to every watcher of `oid`.
    pub fn notify(&self, oid: &str, payload: Bytes) -> usize {
        let senders: Vec<WatchSender> = match self.inner.lock().get(oid) {
            Some(list) => list.iter().map(|(_, tx)| tx.clone()).collect(),
            // Nobody watches (a journal appends to data objects few watch): nothing to build.
            None => return 0,
        };
        let note = Notification {
            oid: oid.to_owned(),
            payload,
        };
        senders.iter().filter(|tx| tx.send(note.clone())).count()
    }
}
