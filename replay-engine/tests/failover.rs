//! Two-way mirroring with an orderly failover: data flows A → B; A is demoted, B (having copied
//! the demotion) is promoted; the agent on A fails back and data written on B flows to A.
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

#[test]
fn demote_promote_reverses_direction() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    b.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let agent_b = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    let agent_a = MirrorAgent::start(a.clone(), b.clone(), fast_agent_options()).unwrap();

    // Phase 1: A is primary.
    let reference = MemImage::new("ref", IMAGE_SIZE);
    let writer = PrimaryWriter::open(&a, "vol");
    random_workload(&writer, &reference, 5, 2, 80);
    writer.close();
    let expected = contents(&reference);
    assert!(wait_replica_equals(
        &b,
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

    // Failover: demote A; B copies the demotion; promote B.
    change_role(&a, "vol", RoleChange::Demote).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || current_is_orphan(&b, "vol")),
        "B never copied A's demotion: {:?}",
        agent_b.status()
    );
    assert!(
        change_role(&a, "vol", RoleChange::Demote).is_err(),
        "A is no longer primary"
    );
    change_role(&b, "vol", RoleChange::Promote).unwrap();
    assert!(b.is_primary("vol").unwrap());
    assert!(!a.is_primary("vol").unwrap());

    // Phase 2: B is primary; data flows back to A.
    let writer = PrimaryWriter::open(&b, "vol");
    random_workload(&writer, &reference, 6, 2, 80);
    writer.close();
    let expected = contents(&reference);
    assert_eq!(contents(b.open_image("vol").unwrap().as_ref()), expected);
    assert!(
        wait_replica_equals(&a, "vol", &expected, Duration::from_secs(20)),
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
