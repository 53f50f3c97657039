//! A mirror client flagged disconnected on the primary's journal (a laggy peer, §7.3) stops
//! replay; with `resync_after_disconnect` the agent re-registers and re-syncs the replica,
//! otherwise it reports an error.
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
use journal_core::header::ClientState;
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

fn setup() -> (Site, Site) {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    (a, b)
}

fn disconnect(a: &Site, b: &Site) {
    let header = a.journal_header(&a.image_id("vol").unwrap());
    header
        .client_update_state(&b.mirror_uuid().unwrap(), ClientState::Disconnected)
        .unwrap();
}

#[test]
fn disconnected_client_resyncs_when_allowed() {
    let (a, b) = setup();
    let mut options = fast_agent_options();
    options.bootstrap.resync_after_disconnect = true;
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    assert!(wait_state(
        &agent,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(10)
    ));
    agent.stop();
    let w = PrimaryWriter::open(&a, "vol");
    w.write(0, Bytes::from(vec![5u8; 8192]));
    w.close();
    disconnect(&a, &b);

    let mut options = fast_agent_options();
    options.bootstrap.resync_after_disconnect = true;
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    let expected = contents(a.open_image("vol").unwrap().as_ref());
    assert!(wait_replica_equals(
        &b,
        "vol",
        &expected,
        Duration::from_secs(10)
    ));
    let header = a.journal_header(&a.image_id("vol").unwrap());
    let client = header.get_client(&b.mirror_uuid().unwrap()).unwrap();
    assert_eq!(client.state, ClientState::Connected);
    agent.stop();
}

#[test]
fn disconnected_client_is_an_error_otherwise() {
    let (a, b) = setup();
    let agent = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    assert!(wait_state(
        &agent,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(10)
    ));
    disconnect(&a, &b);
    assert!(
        wait_state(&agent, "vol", ImageState::Error, Duration::from_secs(10)),
        "{:?}",
        agent.status()
    );
    assert!(agent
        .image_status("vol")
        .unwrap()
        .description
        .contains("disconnected"));
    agent.stop();
}
