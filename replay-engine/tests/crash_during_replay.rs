//! The agent crashes (its store handles die after a seeded number of operations) while it
//! replays a concurrent workload, and is restarted, repeatedly: the final replica equals the
//! primary and the reference. A crash never skips an event because the position on the primary
//! is committed only after the applied data was flushed on the replica.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use journal_client::image::MemImage;
use object_store_trait::{DirStore, DirStoreOptions, MemStore, ObjectStore};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

fn run(seed: u64, store_a: Arc<dyn ObjectStore>, store_b: Arc<dyn ObjectStore>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let primary = Site::open(Arc::clone(&store_a), 1);
    let secondary = Site::open(Arc::clone(&store_b), 1);
    primary.set_mirror_mode(MirrorMode::Pool).unwrap();
    primary
        .create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    // Fix both mirror uuids before any agent runs.
    primary.mirror_uuid().unwrap();
    secondary.mirror_uuid().unwrap();
    let reference = MemImage::new("ref", IMAGE_SIZE);
    let writer = PrimaryWriter::open(&primary, "vol");

    std::thread::scope(|s| {
        let w = s.spawn(|| random_workload(&writer, &reference, seed, 3, 120));
        let mut crashes = 0;
        while !w.is_finished() && crashes < 4 {
            // An agent whose store handles die after a random number of operations.
            let budget = rng.gen_range(200..3000);
            let ka = kill_switch(Arc::clone(&store_a), budget);
            let kb = kill_switch(Arc::clone(&store_b), budget);
            let agent = MirrorAgent::start(
                Site::open(kb.clone(), 1),
                Site::open(ka.clone(), 1),
                fast_agent_options(),
            )
            .unwrap();
            wait_until(Duration::from_secs(5), || {
                ka.hook().is_dead() || kb.hook().is_dead()
            });
            agent.stop();
            crashes += 1;
        }
        w.join().unwrap();
    });
    writer.close();

    let agent =
        MirrorAgent::start(secondary.clone(), primary.clone(), fast_agent_options()).unwrap();
    let expected = contents(&reference);
    assert_eq!(
        contents(primary.open_image("vol").unwrap().as_ref()),
        expected
    );
    assert!(
        wait_replica_equals(&secondary, "vol", &expected, Duration::from_secs(20)),
        "seed {seed}: replica did not converge: {:?}",
        agent.status()
    );
    agent.stop();
}

#[test]
fn crash_and_restart_during_replay() {
    for seed in [1, 2, 3] {
        run(seed, Arc::new(MemStore::new()), Arc::new(MemStore::new()));
    }
}

#[test]
fn crash_and_restart_during_replay_on_dirstore() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let open = |d: &tempfile::TempDir| -> Arc<dyn ObjectStore> {
        Arc::new(DirStore::open(d.path(), DirStoreOptions::default()).unwrap())
    };
    run(4, open(&da), open(&db));
}
