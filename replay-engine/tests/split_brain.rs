//! A forced promotion of the replica while the primary keeps writing is reported as
//! split-brain by both agents, and the two images are never merged; a resync of the side given
//! up (demote + resync request) makes it a replica again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use journal_client::image::BlockImage;
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::role::{change_role, RoleChange};
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

#[test]
fn forced_promotion_then_writes_is_split_brain() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    b.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let agent_b = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    let agent_a = MirrorAgent::start(a.clone(), b.clone(), fast_agent_options()).unwrap();

    let base = Bytes::from(vec![0x11; 8192]);
    let writer_a = PrimaryWriter::open(&a, "vol");
    writer_a.write(0, base.clone());
    let expected = contents(a.open_image("vol").unwrap().as_ref());
    assert!(wait_replica_equals(
        &b,
        "vol",
        &expected,
        Duration::from_secs(10)
    ));
    // Promotion needs a consistent replica (its image sync and catch-up done).
    assert!(wait_state(
        &agent_b,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(10)
    ));

    // Disaster recovery drill: B is force-promoted while A is still primary; both write.
    change_role(&b, "vol", RoleChange::ForcePromote).unwrap();
    let writer_b = PrimaryWriter::open(&b, "vol");
    let a_data = Bytes::from(vec![0xAA; 4096]);
    let b_data = Bytes::from(vec![0xBB; 4096]);
    for i in 0..20u64 {
        writer_a.write((1 << 20) | (i * 4096), a_data.clone());
        writer_b.write((2 << 20) | (i * 4096), b_data.clone());
    }
    for (agent, site) in [(&agent_a, "A"), (&agent_b, "B")] {
        assert!(
            wait_state(
                agent,
                "vol",
                ImageState::SplitBrain,
                Duration::from_secs(10)
            ),
            "agent on {site} did not report split-brain: {:?}",
            agent.status()
        );
    }
    // More writes on A after the report must not reach B either.
    writer_a.write(3 << 20, a_data.clone());
    std::thread::sleep(Duration::from_millis(200));
    let img_a = a.open_image("vol").unwrap();
    let img_b = b.open_image("vol").unwrap();
    let zeros = Bytes::from(vec![0u8; 20 * 4096]);
    assert_eq!(
        img_b.read(1 << 20, 20 * 4096).unwrap(),
        zeros,
        "A's writes merged into B"
    );
    assert_eq!(
        img_b.read(3 << 20, 4096).unwrap(),
        Bytes::from(vec![0u8; 4096])
    );
    assert_eq!(
        img_a.read(2 << 20, 20 * 4096).unwrap(),
        zeros,
        "B's writes merged into A"
    );
    assert_eq!(img_b.read(0, 8192).unwrap(), base);
    assert!(a.is_primary("vol").unwrap() && b.is_primary("vol").unwrap());

    // Resolution: give up B's side. Demote it and request a resync: the agent on B rebuilds
    // it from A.
    writer_b.close();
    change_role(&b, "vol", RoleChange::Demote).unwrap();
    b.request_resync("vol").unwrap();
    writer_a.close();
    let expected = contents(a.open_image("vol").unwrap().as_ref());
    assert!(
        wait_replica_equals(&b, "vol", &expected, Duration::from_secs(20)),
        "resync did not rebuild B: {:?}",
        agent_b.status()
    );
    assert!(!b.is_primary("vol").unwrap());
    assert!(wait_state(
        &agent_b,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(10)
    ));
    agent_a.stop();
    agent_b.stop();
}
