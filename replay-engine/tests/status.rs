//! Status reporting: while a replay delay holds events back, the agent reports replaying with
//! entries behind, seconds behind at least the delay (from the events' timestamps) and non-zero
//! rates; once caught up, nothing is behind.
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
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

#[test]
fn status_reports_lag_and_rates() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let mut options = fast_agent_options();
    options.replayer.replay_delay = Duration::from_secs(1);
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    assert!(wait_state(
        &agent,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(10)
    ));

    let w = PrimaryWriter::open(&a, "vol");
    // Spread over about a second, so the replica applies events at least 1 s old for about a
    // second too: a status poll that runs late (a loaded machine) still finds that window.
    for i in 0..40u64 {
        w.write(i * 4096, Bytes::from(vec![3u8; 4096]));
        std::thread::sleep(Duration::from_millis(25));
    }
    w.commit_position();
    // The primary's image client has committed 40 entries the delayed replica has not applied.
    assert!(
        wait_until(Duration::from_secs(5), || agent
            .image_status("vol")
            .is_some_and(|s| s.entries_behind > 0)),
        "{:?}",
        agent.status()
    );
    // Applying an event no earlier than timestamp + 1 s means it is at least 1 s old.
    assert!(wait_until(Duration::from_secs(10), || agent
        .image_status("vol")
        .is_some_and(
            |s| s.entries_applied > 0 && s.seconds_behind >= 1.0
        )));
    assert!(wait_until(Duration::from_secs(10), || agent
        .image_status("vol")
        .is_some_and(
            |s| s.entries_per_second > 0.0 && s.bytes_per_second > 0.0
        )));
    w.close();
    let expected = contents(a.open_image("vol").unwrap().as_ref());
    assert!(wait_replica_equals(
        &b,
        "vol",
        &expected,
        Duration::from_secs(20)
    ));
    assert!(wait_until(Duration::from_secs(5), || agent
        .image_status("vol")
        .is_some_and(
            |s| s.entries_behind == 0 && s.seconds_behind == 0.0
        )));
    let st = agent.image_status("vol").unwrap();
    assert_eq!(st.state, ImageState::Replaying);
    assert_eq!(st.name, "vol");
    agent.stop();
}
