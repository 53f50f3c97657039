//! Two-way mirroring with an orderly failover: data flows A → B; A is demoted, B (having copied
//! the demotion) is promoted; the agent on A fails back and data written on B flows to A.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::*;
use journal_client::image::MemImage;
use object_store_trait::{Hook, Intercept, MemStore, Op};
use replay_engine::agent::{AgentHandle, MirrorAgent};
use replay_engine::image_journal;
use replay_engine::role::{change_role, RoleChange};
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

fn current_is_orphan(site: &Site, name: &str) -> bool {
    let Ok(id) = site.image_id(name) else {
        return false;
    };
    image_journal::current_tag(&site.journal_header(&id))
        .map(|(_, t)| t.is_orphan())
        .unwrap_or(false)
}

/// Phase 1 of both tests: image "vol" created on A (primary), written, replicated to B; an
/// agent runs on each site. Returns the agents and the reference image of what was written.
fn a_primary_replicated_to_b(a: &Site, b: &Site) -> (AgentHandle, AgentHandle, MemImage) {
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    b.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let agent_b = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    let agent_a = MirrorAgent::start(a.clone(), b.clone(), fast_agent_options()).unwrap();
    let reference = MemImage::new("ref", IMAGE_SIZE);
    let writer = PrimaryWriter::open(a, "vol");
    random_workload(&writer, &reference, 5, 2, 80);
    writer.close();
    let expected = contents(&reference);
    assert!(wait_replica_equals(
        b,
        "vol",
        &expected,
        Duration::from_secs(20)
    ));
    assert!(wait_state(
        &agent_a,
        "vol",
        ImageState::Stopped,
        Duration::from_secs(5)
    ));
    (agent_a, agent_b, reference)
}

/// Demotes A and waits until B's agent copied the demotion.
fn demote_a(a: &Site, b: &Site, agent_b: &AgentHandle) {
    change_role(a, "vol", RoleChange::Demote).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || current_is_orphan(b, "vol")),
        "B never copied A's demotion: {:?}",
        agent_b.status()
    );
}

/// Phase 2 of both tests: B (now primary) is written and A follows it by replay alone.
fn b_writes_and_a_follows_by_replay(
    a: &Site,
    b: &Site,
    agents: (AgentHandle, AgentHandle),
    reference: &MemImage,
) {
    let (agent_a, agent_b) = agents;
    let writer = PrimaryWriter::open(b, "vol");
    random_workload(&writer, reference, 6, 2, 80);
    writer.close();
    let expected = contents(reference);
    assert_eq!(contents(b.open_image("vol").unwrap().as_ref()), expected);
    assert!(
        wait_replica_equals(a, "vol", &expected, Duration::from_secs(20)),
        "A did not follow B: {:?}",
        agent_a.status()
    );
    assert!(wait_state(
        &agent_a,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(5)
    ));
    // The failback went by replay alone: B's promotion registered A's client at the promotion
    // marker, and no image sync ran for it (a sync records its object count).
    let b_header = b.journal_header(&b.image_id("vol").unwrap());
    let meta = replay_engine::image_sync::peer_meta(&b_header, &a.mirror_uuid().unwrap()).unwrap();
    assert_eq!(meta.sync_object_count, 0, "failback ran an image sync");
    assert_eq!(meta.image_id, a.image_id("vol").unwrap());
    assert!(wait_state(
        &agent_b,
        "vol",
        ImageState::Stopped,
        Duration::from_secs(5)
    ));
    agent_a.stop();
    agent_b.stop();
}

#[test]
fn demote_promote_reverses_direction() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    let (agent_a, agent_b, reference) = a_primary_replicated_to_b(&a, &b);

    // Failover: demote A; B copies the demotion; promote B.
    demote_a(&a, &b, &agent_b);
    assert!(
        change_role(&a, "vol", RoleChange::Demote).is_err(),
        "A is no longer primary"
    );
    change_role(&b, "vol", RoleChange::Promote).unwrap();
    assert!(b.is_primary("vol").unwrap());
    assert!(!a.is_primary("vol").unwrap());

    // Phase 2: B is primary; data flows back to A.
    b_writes_and_a_follows_by_replay(&a, &b, (agent_a, agent_b), &reference);
}

/// Holds one thread's first read of one omap key until released: pauses a promotion between
/// its new tag and the registration of a peer's client.
#[derive(Debug, Default)]
struct PauseAtKey {
    /// The thread paused and the key it is paused at; nothing is paused until set.
    armed: StdMutex<Option<(ThreadId, String)>>,
    reached: AtomicBool,
    released: (StdMutex<bool>, Condvar),
}

impl Hook for PauseAtKey {
    fn before(&self, op: Op<'_>) -> object_store_trait::Result<()> {
        let hit = match (&*self.armed.lock().unwrap(), op) {
            (Some((thread, key)), Op::OmapGet { keys, .. }) => {
                *thread == thread::current().id() && keys.contains(&key.as_str())
            }
            _ => false,
        };
        {
            if hit {
                self.reached.store(true, Ordering::SeqCst);
                let (lock, cv) = &self.released;
                let mut open = lock.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            }
        }
        Ok(())
    }
}

/// The demoted site's agent looks at the new primary while its promotion is half done (tag
/// allocated, marker appended, A's client not registered yet). It must wait for the promotion
/// rather than register its own client for a sync: that made the promotion fail with "client
/// exists" (seen in CI), or the failback run a needless full image sync.
#[test]
fn failback_waits_for_a_promotion_in_progress() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let pause = Arc::new(PauseAtKey::default());
    let b_store = Intercept::with_hook(MemStore::new(), pause.clone());
    let b = Site::open(Arc::new(b_store), 1);
    let (agent_a, agent_b, reference) = a_primary_replicated_to_b(&a, &b);
    demote_a(&a, &b, &agent_b);

    let key = format!("client_{}", a.mirror_uuid().unwrap());
    let promoter = {
        let (b, pause) = (b.clone(), pause.clone());
        thread::spawn(move || {
            *pause.armed.lock().unwrap() = Some((thread::current().id(), key));
            change_role(&b, "vol", RoleChange::Promote)
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || pause
            .reached
            .load(Ordering::SeqCst)),
        "the promotion never reached A's client registration"
    );
    // B's new tag is visible: A's agent bootstraps against the half-done promotion.
    assert!(
        wait_until(Duration::from_secs(10), || agent_a
            .image_status("vol")
            .is_some_and(|s| s.description.contains("promotion in progress"))),
        "A's agent did not wait for the promotion: {:?}",
        agent_a.status()
    );
    {
        let (lock, cv) = &pause.released;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
    promoter.join().unwrap().unwrap();
    assert!(b.is_primary("vol").unwrap());
    b_writes_and_a_follows_by_replay(&a, &b, (agent_a, agent_b), &reference);
}
