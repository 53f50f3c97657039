//! Repeated orderly failovers between two sites with two-way agents: A → B → A → B, writing
//! through journal-client's JournaledImage on whichever side is primary; after each round the
//! other side equals it and the reference.
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
use replay_engine::image_journal;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

fn is_orphan(site: &Site) -> bool {
    site.image_id("vol")
        .ok()
        .and_then(|id| image_journal::current_tag(&site.journal_header(&id)).ok())
        .is_some_and(|(_, t)| t.is_orphan())
}

#[test]
fn failover_back_and_forth() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    b.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let agent_b = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    let agent_a = MirrorAgent::start(a.clone(), b.clone(), fast_agent_options()).unwrap();
    let reference = MemImage::new("ref", IMAGE_SIZE);

    let mut primary = &a;
    let mut secondary = &b;
    for round in 0..4u64 {
        let writer = open_product_writer(primary, "vol");
        random_workload(&writer, &reference, 1000 + round, 2, 40);
        writer.close().unwrap();
        let expected = contents(&reference);
        assert_eq!(
            contents(primary.open_image("vol").unwrap().as_ref()),
            expected
        );
        assert!(
            wait_replica_equals(secondary, "vol", &expected, Duration::from_secs(20)),
            "round {round}: replica behind: A {:?} B {:?}",
            agent_a.status(),
            agent_b.status()
        );
        primary.demote("vol").unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || is_orphan(secondary)),
            "round {round}: demotion not copied"
        );
        secondary.promote("vol", false).unwrap();
        std::mem::swap(&mut primary, &mut secondary);
        assert!(primary.is_primary("vol").unwrap());
        assert!(!secondary.is_primary("vol").unwrap());
    }
    agent_a.stop();
    agent_b.stop();
}
