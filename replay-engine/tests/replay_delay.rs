//! Replay delay: the replica applies an event no earlier than its timestamp plus the delay,
//! then catches up.
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
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

#[test]
fn replica_stays_behind_by_the_delay() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let mut options = fast_agent_options();
    options.replayer.replay_delay = Duration::from_secs(3);
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    let zero = contents(a.open_image("vol").unwrap().as_ref());
    assert!(wait_replica_equals(
        &b,
        "vol",
        &zero,
        Duration::from_secs(10)
    ));

    let w = PrimaryWriter::open(&a, "vol");
    let data = Bytes::from(vec![9u8; 4096]);
    w.write(0, data.clone());
    // The event cannot be applied before its timestamp + 3 s; this read happens well before.
    let replica = b.open_image("vol").unwrap();
    assert_eq!(replica.read(0, 4096).unwrap(), Bytes::from(vec![0u8; 4096]));
    w.close();
    let expected = contents(a.open_image("vol").unwrap().as_ref());
    assert!(wait_replica_equals(
        &b,
        "vol",
        &expected,
        Duration::from_secs(20)
    ));
    agent.stop();
}
