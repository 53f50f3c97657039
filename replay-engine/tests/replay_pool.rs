//! The agent serves many images from a few threads ([`replay_engine::replay_pool`]):
//!
//! * 24 images mirrored by an agent with 2 replay threads (and 2 bootstrap threads) all reach
//!   their primaries' bytes, checked against a reference image per primary that the workload
//!   wrote independently; the process never runs a mirror thread per image.
//! * An image sync blocked in the store (its data reads wait on a gate) holds one bootstrap
//!   thread; the other images, all replaying on a single replay thread, still reach their
//!   references while it is blocked, and the blocked image does once the gate opens.
//! * Notifications alone drive a replay thread: with every poll an hour away, 80 images on one
//!   replay thread (more than a thread could block on as channels) still reach their
//!   references, across journal object-set rollovers (new data-object watches).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use journal_client::image::MemImage;
use object_store_trait::{Hook, Intercept, MemStore, ObjectStore, Op, OpKind, StoreError};
use parking_lot::{Condvar, Mutex};
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

/// Threads of this process whose name starts with `mirror-` (the agent's threads).
fn mirror_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("mirror-"))
        })
        .count()
}

fn name(i: usize) -> String {
    format!("vol{i:02}")
}

/// A primary site in pool mirroring mode with `images` journaled images, and an empty replica
/// site, both in memory.
fn pool_with_images(images: usize) -> (Site, Site) {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    for i in 0..images {
        a.create_image(&name(i), IMAGE_SIZE, Some(small_journal()))
            .unwrap();
    }
    (a, b)
}

#[test]
fn many_images_on_two_replay_threads_reach_their_primaries() {
    const IMAGES: usize = 24;
    let (a, b) = pool_with_images(IMAGES);
    let mut options = fast_agent_options();
    options.replay_threads = 2;
    options.bootstrap_threads = 2;
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        let st = agent.status();
        st.len() == IMAGES && st.iter().all(|s| s.state == ImageState::Replaying)
    }));
    // Pool watcher + 2 replay + 2 bootstrap threads (the other two tests of this file may run
    // their own agents at the same time: at most 5 + 4 + 4), not one per image.
    let threads = mirror_threads();
    assert!(
        threads <= 13,
        "{threads} mirror threads for {IMAGES} images"
    );

    // Live replay: writes on every primary while the agent runs.
    let references: Vec<MemImage> = (0..IMAGES)
        .map(|i| MemImage::new(&name(i), IMAGE_SIZE))
        .collect();
    for (i, reference) in references.iter().enumerate() {
        let w = PrimaryWriter::open(&a, &name(i));
        random_workload(&w, reference, 100 + i as u64, 1, 12);
        w.close();
    }
    for (i, reference) in references.iter().enumerate() {
        let expected = contents(reference);
        let primary = contents(a.open_image(&name(i)).unwrap().as_ref());
        assert!(
            primary == expected,
            "primary {} differs from its reference",
            name(i)
        );
        assert!(
            wait_replica_equals(&b, &name(i), &expected, Duration::from_secs(30)),
            "replica {} never matched: {:?}",
            name(i),
            agent.image_status(&name(i))
        );
    }
    agent.stop();
}

#[test]
fn notifications_alone_wake_a_replay_thread_serving_many_images() {
    const IMAGES: usize = 80;
    let (a, b) = pool_with_images(IMAGES);
    let mut options = fast_agent_options();
    options.replay_threads = 1;
    options.bootstrap_threads = 2;
    // No polling to fall back on: only the watches' wakers can tell the thread about entries.
    let hour = Duration::from_secs(3600);
    options.replayer.live.poll_age = hour;
    options.replayer.live.idle_poll_age_max = hour;
    options.replayer.live.header_poll_age = hour;
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    assert!(wait_until(Duration::from_secs(60), || {
        let st = agent.status();
        st.len() == IMAGES && st.iter().all(|s| s.state == ImageState::Replaying)
    }));
    // Every fourth image gets a workload that rolls its journal over several object sets.
    let written: Vec<usize> = (0..IMAGES).step_by(4).collect();
    let references: Vec<MemImage> = written
        .iter()
        .map(|&i| MemImage::new(&name(i), IMAGE_SIZE))
        .collect();
    for (&i, reference) in written.iter().zip(&references) {
        let w = PrimaryWriter::open(&a, &name(i));
        random_workload(&w, reference, 500 + i as u64, 1, 150);
        w.close();
    }
    for (&i, reference) in written.iter().zip(&references) {
        assert!(
            wait_replica_equals(&b, &name(i), &contents(reference), Duration::from_secs(30)),
            "replica {} never matched: {:?}",
            name(i),
            agent.image_status(&name(i))
        );
    }
    agent.stop();
}

/// Holds reads of objects under `prefix` until opened.
#[derive(Debug, Default)]
struct Gate {
    prefix: Mutex<Option<String>>,
    open: Mutex<bool>,
    opened: Condvar,
    blocked: AtomicU64,
    /// A read gave up waiting (the test would then prove nothing about the blocked sync).
    timed_out: AtomicBool,
}

impl Gate {
    fn release(&self) {
        *self.open.lock() = true;
        self.opened.notify_all();
    }
}

impl Hook for Gate {
    fn before(&self, op: Op<'_>) -> Result<(), StoreError> {
        let gated = op.kind() == OpKind::Read
            && self
                .prefix
                .lock()
                .as_deref()
                .is_some_and(|p| op.oid().starts_with(p));
        if gated {
            self.blocked.fetch_add(1, Ordering::SeqCst);
            let end = Instant::now() + Duration::from_secs(60);
            let mut open = self.open.lock();
            while !*open && Instant::now() < end {
                self.opened.wait_for(&mut open, Duration::from_millis(50));
            }
            if !*open {
                self.timed_out.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

#[test]
fn a_blocked_image_sync_does_not_hold_up_the_other_images() {
    const OTHERS: usize = 4;
    let gated = Arc::new(Intercept::with_hook(MemStore::new(), Gate::default()));
    let a = Site::open(Arc::clone(&gated) as Arc<dyn ObjectStore>, 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.create_image("stuck", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    for i in 0..OTHERS {
        a.create_image(&name(i), IMAGE_SIZE, Some(small_journal()))
            .unwrap();
    }
    // Data written before mirroring reaches the replica only through the image sync, which
    // must read the primary's data objects: those reads wait at the gate.
    let stuck_ref = MemImage::new("stuck", IMAGE_SIZE);
    {
        let w = PrimaryWriter::open(&a, "stuck");
        random_workload(&w, &stuck_ref, 7, 1, 16);
        w.close();
    }
    let id = a.image_id("stuck").unwrap();
    *gated.hook().prefix.lock() = Some(format!("rbd_data.{id}."));
    a.set_mirror_mode(MirrorMode::Pool).unwrap();

    let mut options = fast_agent_options();
    options.replay_threads = 1;
    options.bootstrap_threads = 2;
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || gated
            .hook()
            .blocked
            .load(Ordering::SeqCst)
            > 0),
        "the sync never reached the gate: {:?}",
        agent.status()
    );

    // While the sync is blocked, the other images replay live writes to their primaries' state.
    let references: Vec<MemImage> = (0..OTHERS)
        .map(|i| MemImage::new(&name(i), IMAGE_SIZE))
        .collect();
    for (i, reference) in references.iter().enumerate() {
        let w = PrimaryWriter::open(&a, &name(i));
        random_workload(&w, reference, 200 + i as u64, 1, 12);
        w.close();
    }
    for (i, reference) in references.iter().enumerate() {
        assert!(
            wait_replica_equals(&b, &name(i), &contents(reference), Duration::from_secs(30)),
            "replica {} never matched: {:?}",
            name(i),
            agent.status()
        );
    }
    let stuck = agent.image_status("stuck").unwrap();
    assert_eq!(stuck.state, ImageState::Syncing, "{stuck:?}");
    assert!(
        !gated.hook().timed_out.load(Ordering::SeqCst),
        "a gated read gave up"
    );

    // Once the store answers, the blocked image catches up as well.
    gated.hook().release();
    let expected = contents(&stuck_ref);
    assert!(contents(a.open_image("stuck").unwrap().as_ref()) == expected);
    assert!(
        wait_replica_equals(&b, "stuck", &expected, Duration::from_secs(30)),
        "{:?}",
        agent.image_status("stuck")
    );
    agent.stop();
}
