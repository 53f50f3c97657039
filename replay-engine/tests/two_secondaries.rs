//! One primary, two secondaries (one agent each, each with its own mirror-peer client and
//! position on the primary's journal): both replicas equal the primary and the reference; the
//! primary's journal keeps both clients.
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
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

#[test]
fn both_secondaries_converge_on_memstore() {
    run(|| Arc::new(MemStore::new()) as Arc<dyn ObjectStore>, 100);
}

#[test]
fn both_secondaries_converge_on_dirstore() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut next = dirs.iter();
    run(
        || {
            let dir = next.next().unwrap();
            Arc::new(DirStore::open(dir.path(), DirStoreOptions::default()).unwrap())
                as Arc<dyn ObjectStore>
        },
        30,
    );
}

fn run(mut store: impl FnMut() -> Arc<dyn ObjectStore>, ops_per_thread: u64) {
    let primary = Site::open(store(), 1);
    let sec_b = Site::open(store(), 1);
    let sec_c = Site::open(store(), 1);
    primary.set_mirror_mode(MirrorMode::Pool).unwrap();
    primary
        .create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let agent_b = MirrorAgent::start(sec_b.clone(), primary.clone(), fast_agent_options()).unwrap();
    let agent_c = MirrorAgent::start(sec_c.clone(), primary.clone(), fast_agent_options()).unwrap();

    let reference = MemImage::new("ref", IMAGE_SIZE);
    let writer = open_product_writer(&primary, "vol");
    random_workload(&writer, &reference, 99, 4, ops_per_thread);
    writer.close().unwrap();

    let expected = contents(&reference);
    for (site, agent) in [(&sec_b, &agent_b), (&sec_c, &agent_c)] {
        assert!(
            wait_replica_equals(site, "vol", &expected, Duration::from_secs(20)),
            "replica did not converge: {:?}",
            agent.status()
        );
    }
    let id = primary.image_id("vol").unwrap();
    let clients = primary
        .journal_header(&id)
        .get_mutable_metadata()
        .unwrap()
        .clients;
    let ids: Vec<&str> = clients.iter().map(|c| c.id.as_str()).collect();
    assert!(ids.contains(&sec_b.mirror_uuid().unwrap().as_str()));
    assert!(ids.contains(&sec_c.mirror_uuid().unwrap().as_str()));
    assert_eq!(
        clients.len(),
        3,
        "image client plus one client per secondary"
    );
    agent_b.stop();
    agent_c.stop();
}
