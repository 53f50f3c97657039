//! Watch/notify within one process: a registry of channels keyed by object id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// A notification delivered to a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The watched object.
    pub oid: String,
    /// The notifier's payload (empty for journal header notifies).
    pub payload: Bytes,
}

/// A registered watch. Dropping it unregisters.
#[derive(Debug)]
pub struct Watch {
    rx: Receiver<Notification>,
    _unregister: Box<dyn std::any::Any + Send + Sync>,
}

impl Watch {
    /// Builds a watch from a receiver and a guard value whose drop unregisters it.
    pub fn new(
        rx: Receiver<Notification>,
        unregister: Box<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        Watch {
            rx,
            _unregister: unregister,
        }
    }

    /// The channel notifications arrive on (for `select!`).
    pub fn receiver(&self) -> &Receiver<Notification> {
        &self.rx
    }

    /// Drains pending notifications, returning how many there were.
    pub fn drain(&self) -> usize {
        self.rx.try_iter().count()
    }
}

type Watchers = HashMap<String, Vec<(u64, Sender<Notification>)>>;

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
        let (tx, rx) = crossbeam_channel::unbounded();
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
        let senders: Vec<Sender<Notification>> = self
            .inner
            .lock()
            .get(oid)
            .map(|list| list.iter().map(|(_, tx)| tx.clone()).collect())
            .unwrap_or_default();
        let note = Notification {
            oid: oid.to_owned(),
            payload,
        };
        senders
            .iter()
            .filter(|tx| tx.send(note.clone()).is_ok())
            .count()
    }
}
