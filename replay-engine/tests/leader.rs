//! Two agents for the same pair of sites: only the holder of the leader lease mirrors; the other
//! waits and takes over when the leader stops (at once) or dies (once its lease runs out). The
//! oracle for "never both": the standby's handle on the replica site is counted, and while it
//! is a standby it changes no object there (the lease itself is one omap key, not counted).
//! The oracle for "nothing lost in the hand-over": a reference image fed the same writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use journal_client::image::MemImage;
use object_store_trait::{Hook, Intercept, MemStore, ObjectStore, Op, OpKind};
use replay_engine::agent::{AgentHandle, AgentOptions, MirrorAgent};
use replay_engine::leader;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

/// Counts the operations that change an object's data or remove it (not omap updates: the
/// lease and the peer record are omap keys).
#[derive(Debug, Default)]
struct DataWrites(AtomicU64);

impl Hook for DataWrites {
    fn before(&self, op: Op<'_>) -> object_store_trait::Result<()> {
        if matches!(
            op.kind(),
            OpKind::Append | OpKind::WriteAt | OpKind::WriteFull | OpKind::Remove
        ) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn options(id: &str) -> AgentOptions {
    AgentOptions {
        agent_id: Some(id.into()),
        leader_lease: Duration::from_millis(800),
        ..fast_agent_options()
    }
}

/// Starts agent `id` for B <- A with its replica-site handle counted.
fn start(a: &Site, b_store: &Arc<MemStore>, id: &str) -> (AgentHandle, Arc<DataWrites>) {
    let counts = Arc::new(DataWrites::default());
    let inner: Arc<dyn ObjectStore> = b_store.clone();
    let b = Site::open(Arc::new(Intercept::with_hook(inner, counts.clone())), 1);
    (
        MirrorAgent::start(b, a.clone(), options(id)).unwrap(),
        counts,
    )
}

fn write_and_converge(a: &Site, b: &Site, reference: &MemImage, seed: u64, agent: &AgentHandle) {
    let writer = PrimaryWriter::open(a, "vol");
    random_workload(&writer, reference, seed, 2, 60);
    writer.close();
    let expected = contents(reference);
    assert!(
        wait_replica_equals(b, "vol", &expected, Duration::from_secs(20)),
        "replica did not converge: {:?}",
        agent.status()
    );
}

fn primary_and_replica() -> (Site, Arc<MemStore>, Site, MemImage) {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b_store = Arc::new(MemStore::new());
    let b = Site::open(b_store.clone(), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    (a, b_store, b, MemImage::new("ref", IMAGE_SIZE))
}

#[test]
fn the_standby_waits_and_takes_over_at_an_orderly_stop() {
    let (a, b_store, b, reference) = primary_and_replica();
    let (first, _) = start(&a, &b_store, "first");
    assert!(wait_until(Duration::from_secs(5), || first.is_leader()));
    let (second, second_writes) = start(&a, &b_store, "second");
    write_and_converge(&a, &b, &reference, 1, &first);
    // The standby never became leader, handles no image and changed nothing on the replica
    // site while the leader mirrored.
    assert!(!second.is_leader());
    assert!(second.status().is_empty());
    assert_eq!(second_writes.0.load(Ordering::SeqCst), 0);
    let held = leader::current_holder(b_store.as_ref(), &a.mirror_uuid().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(held.agent_id, "first");

    // An orderly stop releases the lease: the standby takes over at its next attempt (every
    // quarter of the 800 ms lease) and mirrors what follows.
    first.stop();
    assert!(
        leader::current_holder(b_store.as_ref(), &a.mirror_uuid().unwrap())
            .unwrap()
            .is_none_or(|h| h.agent_id == "second")
    );
    assert!(wait_until(Duration::from_secs(5), || second.is_leader()));
    write_and_converge(&a, &b, &reference, 2, &second);
    assert!(second_writes.0.load(Ordering::SeqCst) > 0);
    second.stop();
}

#[test]
fn the_standby_takes_over_once_a_dead_leaders_lease_runs_out() {
    let (a, b_store, b, reference) = primary_and_replica();
    // The leader's handle on the replica site dies after a few hundred operations, in the
    // middle of replaying the writes below: it can then neither renew nor release its lease.
    let dying = kill_switch(b_store.clone(), 300);
    let leader_agent =
        MirrorAgent::start(Site::open(dying.clone(), 1), a.clone(), options("dying")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || leader_agent.is_leader()));
    let (standby, standby_writes) = start(&a, &b_store, "standby");
    let writer = PrimaryWriter::open(&a, "vol");
    random_workload(&writer, &reference, 3, 2, 80);
    writer.close();
    assert!(
        wait_until(Duration::from_secs(10), || dying.hook().is_dead()),
        "the leader's handle never died"
    );
    assert!(
        wait_until(Duration::from_secs(10), || standby.is_leader()),
        "the standby never took over: {:?}",
        standby.status()
    );
    assert!(
        !leader_agent.is_leader(),
        "the dead leader did not step down"
    );
    // Whatever the dead leader had not replayed, and what is written now, reaches the replica.
    write_and_converge(&a, &b, &reference, 4, &standby);
    assert!(standby_writes.0.load(Ordering::SeqCst) > 0);
    leader_agent.stop();
    standby.stop();
}
