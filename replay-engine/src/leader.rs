//! The agent's leader lease: at most one agent mirrors from a given remote site into a given
//! local site at a time (the role of rbd-mirror's leader lock, kept simpler).
//!
//! Two agents replaying the same images would apply every event twice and move each other's
//! commit positions. So an agent only mirrors while it holds a lease: one omap key per remote
//! site on the local site's [`LEADER_OID`] object, `leader_<remote mirror uuid>`, whose value
//! is `<agent id> <expiry in unix milliseconds>`.
//!
//! * An agent takes the lease when the key is absent, expired or unreadable, and renews it
//!   every quarter of [`AgentOptions::leader_lease`](crate::agent::AgentOptions). Every write is
//!   guarded by the exact value read just before (or by the key's absence), so of two agents
//!   racing for the same lease at most one succeeds.
//! * A leader that has not renewed for half the lease (store unreachable, process stalled)
//!   stops acting as leader by itself. That leaves the other half of the lease for its image
//!   replayers to stop before any other agent may take over.
//! * Expiry is wall-clock time: agents on different hosts need clocks that agree to well
//!   within half the lease.
//! * An agent stopped in an orderly way releases the lease at once. An agent restarted with
//!   the same agent id ([`AgentOptions::agent_id`](crate::agent::AgentOptions)) takes its own
//!   lease back without waiting for it to expire (it is the same agent, restarted). Two live
//!   agents must never share an id.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store_trait::{ObjectStore, ObjectStoreExt, OmapBatch};

use crate::error::Result;

/// The local site's object holding one leader lease per remote site.
pub const LEADER_OID: &str = "rbdj_mirror_leader";

/// The omap key of the lease for mirroring from the remote site `remote_uuid`.
pub fn lease_key(remote_uuid: &str) -> String {
    format!("leader_{remote_uuid}")
}

/// Who holds a lease, as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's agent id.
    pub agent_id: String,
    /// When the lease expires, in unix milliseconds.
    pub expires_unix_ms: u64,
}

impl LeaseHolder {
    /// Whether the lease has run out (by this host's clock).
    pub fn expired(&self) -> bool {
        self.expires_unix_ms <= unix_ms_now()
    }

    fn to_bytes(&self) -> Bytes {
        Bytes::from(format!("{} {}", self.agent_id, self.expires_unix_ms))
    }

    /// Parses a stored value; `None` for anything that is not `<id> <u64>`.
    fn parse(value: &[u8]) -> Option<LeaseHolder> {
        let text = std::str::from_utf8(value).ok()?;
        let (id, expiry) = text.rsplit_once(' ')?;
        Some(LeaseHolder {
            agent_id: id.to_owned(),
            expires_unix_ms: expiry.parse().ok()?,
        })
    }
}

/// The current holder of the lease for mirroring from `remote_uuid` into the site of `store`,
/// if the key exists and parses.
pub fn current_holder(store: &dyn ObjectStore, remote_uuid: &str) -> Result<Option<LeaseHolder>> {
    Ok(store
        .omap_get_one(LEADER_OID, &lease_key(remote_uuid))?
        .and_then(|v| LeaseHolder::parse(&v)))
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One agent's side of the lease.
pub(crate) struct LeaderLease {
    store: Arc<dyn ObjectStore>,
    key: String,
    agent_id: String,
    lease: Duration,
    /// Until when (this process's clock) this agent may act as leader; `None` when it is not.
    valid_until: Option<Instant>,
    /// When to try to take or renew the lease next.
    next_attempt: Instant,
    /// The other agent holding the lease, when the last attempt found one.
    pub(crate) other_holder: Option<String>,
}

impl LeaderLease {
    /// The lease for mirroring from `remote_uuid` into the site of `store`, not yet held.
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        remote_uuid: &str,
        agent_id: String,
        lease: Duration,
    ) -> Self {
        LeaderLease {
            store,
            key: lease_key(remote_uuid),
            agent_id,
            lease,
            valid_until: None,
            next_attempt: Instant::now(),
            other_holder: None,
        }
    }

    /// Takes or renews the lease when an attempt is due; returns whether this agent is the
    /// leader now. A store error leaves a held lease valid until it runs out.
    pub(crate) fn tick(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.next_attempt {
            self.next_attempt = now + self.lease / 4;
            match self.try_take() {
                Ok(true) => {
                    self.valid_until = Some(now + self.lease / 2);
                    self.other_holder = None;
                }
                Ok(false) => self.valid_until = None,
                Err(e) => tracing::warn!("mirror leader lease: {e}"),
            }
        }
        self.is_leader()
    }

    /// Whether this agent holds the lease now (without trying to renew it).
    pub(crate) fn is_leader(&self) -> bool {
        self.valid_until.is_some_and(|v| Instant::now() < v)
    }

    /// When [`LeaderLease::tick`] next has something to do.
    pub(crate) fn next_attempt(&self) -> Instant {
        self.next_attempt
    }

    /// One compare-and-swap attempt: take the lease if it is free, expired or ours.
    fn try_take(&mut self) -> Result<bool> {
        let store = self.store.as_ref();
        let current = store.omap_get_one(LEADER_OID, &self.key)?;
        let mut batch = OmapBatch::new();
        match &current {
            None => {
                batch.assert_absent(self.key.clone());
            }
            Some(value) => {
                if let Some(holder) = LeaseHolder::parse(value) {
                    if holder.agent_id != self.agent_id && !holder.expired() {
                        self.other_holder = Some(holder.agent_id);
                        return Ok(false);
                    }
                }
                batch.assert_equals(self.key.clone(), value.clone());
            }
        }
        let expiry =
            unix_ms_now().saturating_add(u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX));
        let ours = LeaseHolder {
            agent_id: self.agent_id.clone(),
            expires_unix_ms: expiry,
        };
        batch.set(self.key.clone(), ours.to_bytes());
        match store.omap_apply(LEADER_OID, &batch) {
            Ok(()) => Ok(true),
            // Another agent wrote the key since we read it.
            Err(e) if e.is_guard_failed() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up if this agent holds it (an orderly stop), so another agent can take
    /// over at once.
    pub(crate) fn release(&mut self) {
        self.valid_until = None;
        let store = self.store.as_ref();
        let Ok(Some(value)) = store.omap_get_one(LEADER_OID, &self.key) else {
            return;
        };
        if LeaseHolder::parse(&value).is_none_or(|h| h.agent_id != self.agent_id) {
            return;
        }
        let mut batch = OmapBatch::new();
        batch.assert_equals(self.key.clone(), value);
        batch.remove(self.key.clone());
        if let Err(e) = store.omap_apply(LEADER_OID, &batch) {
            tracing::warn!("mirror leader lease: release failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use object_store_trait::MemStore;

    fn lease(store: &Arc<MemStore>, id: &str, ms: u64) -> LeaderLease {
        let store: Arc<dyn ObjectStore> = store.clone();
        LeaderLease::new(store, "remote", id.into(), Duration::from_millis(ms))
    }

    #[test]
    fn one_holder_at_a_time_and_takeover_after_expiry() {
        let store = Arc::new(MemStore::new());
        let mut a = lease(&store, "a", 400);
        let mut b = lease(&store, "b", 400);
        assert!(a.tick());
        assert!(!b.tick());
        assert_eq!(b.other_holder.as_deref(), Some("a"));
        let held = current_holder(store.as_ref(), "remote").unwrap().unwrap();
        assert_eq!(held.agent_id, "a");
        // `a` stops renewing: it steps down after half the lease, and `b` takes over only
        // once the lease has expired.
        std::thread::sleep(Duration::from_millis(250));
        assert!(!a.is_leader());
        while !held.expired() {
            std::thread::sleep(Duration::from_millis(20));
        }
        b.next_attempt = Instant::now();
        assert!(b.tick());
        // `a` comes back: it finds `b`'s lease and stays standby.
        a.next_attempt = Instant::now();
        assert!(!a.tick());
        // An orderly release hands over at once.
        b.release();
        assert!(current_holder(store.as_ref(), "remote").unwrap().is_none());
        a.next_attempt = Instant::now();
        assert!(a.tick());
    }

    #[test]
    fn a_restart_with_the_same_id_takes_its_lease_back_at_once() {
        let store = Arc::new(MemStore::new());
        let mut first = lease(&store, "agent-1", 60_000);
        assert!(first.tick());
        drop(first); // killed: never released
        let mut other = lease(&store, "agent-2", 60_000);
        assert!(!other.tick());
        let mut restarted = lease(&store, "agent-1", 60_000);
        assert!(restarted.tick());
    }

    #[test]
    fn garbage_in_the_key_is_taken_over() {
        let store = Arc::new(MemStore::new());
        let mut batch = OmapBatch::new();
        batch.set(
            lease_key("remote"),
            Bytes::from_static(b"\xff\x00 not a lease"),
        );
        store.omap_apply(LEADER_OID, &batch).unwrap();
        let mut a = lease(&store, "a", 60_000);
        assert!(a.tick());
        assert_eq!(
            current_holder(store.as_ref(), "remote")
                .unwrap()
                .unwrap()
                .agent_id,
            "a"
        );
    }
}
