//! One-way mirroring on MemStore: a primary journaled image under a random multi-threaded
//! workload, the agent running concurrently; after quiesce the replica equals the primary and a
//! reference MemImage fed the same acknowledged IO.
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
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

#[test]
fn replica_equals_primary_after_concurrent_workload() {
    let primary = Site::open(Arc::new(MemStore::new()), 1);
    let secondary = Site::open(Arc::new(MemStore::new()), 1);
    primary.set_mirror_mode(MirrorMode::Pool).unwrap();
    primary
        .create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let agent =
        MirrorAgent::start(secondary.clone(), primary.clone(), fast_agent_options()).unwrap();

    let reference = MemImage::new("ref", IMAGE_SIZE);
    let writer = open_product_writer(&primary, "vol");
    random_workload(&writer, &reference, 42, 4, 150);
    writer.close().unwrap();

    let expected = contents(&reference);
    assert_eq!(
        contents(primary.open_image("vol").unwrap().as_ref()),
        expected
    );
    assert!(
        wait_replica_equals(&secondary, "vol", &expected, Duration::from_secs(20)),
        "replica did not converge: {:?}",
        agent.status()
    );
    assert!(wait_state(
        &agent,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(5)
    ));
    let st = agent.image_status("vol").unwrap();
    assert!(st.entries_applied > 0);
    assert!(!secondary.is_primary("vol").unwrap());
    agent.stop();
}
