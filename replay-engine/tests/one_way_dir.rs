//! One-way mirroring between two DirStore sites (directories): concurrent random workload on the
//! primary, the agent running; after quiesce the replica equals the primary and the reference.
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
use object_store_trait::{DirStore, DirStoreOptions};
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

#[test]
fn replica_equals_primary_on_dirstore() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let store_a = Arc::new(DirStore::open(dir_a.path(), DirStoreOptions::default()).unwrap());
    let store_b = Arc::new(DirStore::open(dir_b.path(), DirStoreOptions::default()).unwrap());
    let primary = Site::open(store_a, 3);
    let secondary = Site::open(store_b, 3);
    primary.set_mirror_mode(MirrorMode::Image).unwrap();
    primary
        .create_image("disk", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    primary.mirror_enable("disk").unwrap();
    let agent =
        MirrorAgent::start(secondary.clone(), primary.clone(), fast_agent_options()).unwrap();

    let reference = MemImage::new("ref", IMAGE_SIZE);
    let writer = open_product_writer(&primary, "disk");
    random_workload(&writer, &reference, 7, 3, 40);
    writer.close().unwrap();

    let expected = contents(&reference);
    assert_eq!(
        contents(primary.open_image("disk").unwrap().as_ref()),
        expected
    );
    assert!(
        wait_replica_equals(&secondary, "disk", &expected, Duration::from_secs(30)),
        "replica did not converge: {:?}",
        agent.status()
    );
    agent.stop();
}
