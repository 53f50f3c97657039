//! Regression for limitation B (found by the crash-state harness, issue 6): an image sync copies
//! the live primary, then replays from the sync point, so right after the copy the replay puts
//! older writes over newer copied data. The replica must carry its consistency mark through that
//! window: reported as syncing, promotion refused, and consistent (a prefix of the primary's
//! order) from the moment the mark is gone.
//!
//! Deterministic: the primary's image client never commits while the agent syncs (commit age of
//! an hour), so the sync point is the journal's start while the image already holds both writes;
//! a hook on the replayer pauses it after each applied event so the test can look at the replica.
//! Oracle: the primary's states after each prefix of its two writes.
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
use crossbeam_channel::{bounded, Receiver};
use journal_client::JournalSettings;
use journal_core::event::{Event, EventEntry};
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;
use replay_engine::sync_mark::{self, SyncMark};
use replay_engine::ReplayError;

const BLOCK: usize = 4096;

/// The primary's state after the first `n` of its writes (W1: block 0 = 1; W2: blocks 0..2 = 2).
fn prefix_state(n: usize) -> Vec<u8> {
    let mut s = vec![0u8; IMAGE_SIZE as usize];
    if n >= 1 {
        s[..BLOCK].fill(1);
    }
    if n >= 2 {
        s[..2 * BLOCK].fill(2);
    }
    s
}

fn is_prefix(bytes: &[u8]) -> bool {
    (0..=2).any(|n| prefix_state(n) == bytes)
}

fn next_write(events: &Receiver<Event>) -> Event {
    loop {
        let e = events
            .recv_timeout(Duration::from_secs(20))
            .expect("no event applied in time");
        if matches!(e, Event::AioWrite { .. }) {
            return e;
        }
    }
}

#[test]
fn replica_is_marked_inconsistent_until_replay_passes_the_copy() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let settings = JournalSettings {
        commit_age: Duration::from_secs(3600),
        ..JournalSettings::default()
    };
    let writer = a.open_journaled("vol", settings).unwrap();
    writer.write(0, Bytes::from(vec![1u8; BLOCK])).unwrap();
    writer.write(0, Bytes::from(vec![2u8; 2 * BLOCK])).unwrap();
    writer.wait_applied().unwrap();
    // Precondition: the image holds both writes, the image client committed none.
    assert!(contents(a.open_image("vol").unwrap().as_ref()) == prefix_state(2));
    let primary_header = a.journal_header(&a.image_id("vol").unwrap());
    let committed = replay_engine::image_journal::image_commit_position(&primary_header).unwrap();
    assert!(committed.first().is_none(), "{committed:?}");

    // Pause the replayer after each applied event until the test says go.
    let (event_tx, events) = bounded::<Event>(0);
    let (go_tx, go) = bounded::<()>(0);
    let mut options = fast_agent_options();
    options.replayer.on_applied = Some(Arc::new(move |e: &EventEntry| {
        if event_tx.send(e.event.clone()).is_ok() {
            let _ = go.recv_timeout(Duration::from_secs(20));
        }
    }));
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();

    // Paused after W1: the copy held W2's bytes, W1 went over them.
    assert!(
        matches!(next_write(&events), Event::AioWrite { length, .. } if length == BLOCK as u64)
    );
    let replica = contents(b.open_image("vol").unwrap().as_ref());
    assert!(
        !is_prefix(&replica),
        "the window exists: block 0 = {}, block 1 = {}",
        replica[0],
        replica[BLOCK]
    );
    let st = agent.image_status("vol").unwrap();
    assert_eq!(st.state, ImageState::Syncing, "{st:?}");
    let id = b.image_id("vol").unwrap();
    assert!(matches!(
        sync_mark::get(b.store().as_ref(), &id).unwrap(),
        Some(SyncMark::CatchingUp { .. })
    ));
    assert!(matches!(
        b.promote("vol", true),
        Err(ReplayError::WrongRole { .. })
    ));
    go_tx.send(()).unwrap();

    // W2 and the flush: then the replica is the primary's state, and says so.
    assert!(
        matches!(next_write(&events), Event::AioWrite { length, .. } if length == 2 * BLOCK as u64)
    );
    go_tx.send(()).unwrap();
    let acker = std::thread::spawn(move || {
        while events.recv_timeout(Duration::from_secs(2)).is_ok() {
            if go_tx.send(()).is_err() {
                break;
            }
        }
    });
    assert!(wait_state(
        &agent,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(20)
    ));
    assert_eq!(sync_mark::get(b.store().as_ref(), &id).unwrap(), None);
    assert!(is_prefix(&contents(b.open_image("vol").unwrap().as_ref())));

    // Later writes keep it a prefix; once caught up it equals the primary.
    writer
        .write(BLOCK as u64, Bytes::from(vec![3u8; BLOCK]))
        .unwrap();
    writer.flush().unwrap();
    let mut expected = prefix_state(2);
    expected[BLOCK..2 * BLOCK].fill(3);
    let expected = Bytes::from(expected);
    assert!(wait_replica_equals(
        &b,
        "vol",
        &expected,
        Duration::from_secs(20)
    ));
    agent.stop();
    acker.join().unwrap();
    writer.close().unwrap();
    // The mark is gone, so a failover may promote the replica.
    b.promote("vol", true).unwrap();
}
