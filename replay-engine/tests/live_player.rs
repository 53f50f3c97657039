//! Live tailing: entries appended after the player reached the end are delivered; a header
//! notification wakes the player long before its poll age; without notifications it polls.
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
use journal_core::header::ObjectSetPosition;
use object_store_trait::MemStore;
use replay_engine::live_player::{LiveOptions, LivePlayer};
use replay_engine::site::Site;

fn setup() -> (Site, String) {
    let site = Site::open(Arc::new(MemStore::new()), 4);
    site.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let id = site.image_id("vol").unwrap();
    site.journal_header(&id)
        .client_register("reader", Bytes::new())
        .unwrap();
    (site, id)
}

/// A tailer of image `id`'s journal as client "reader" from the start, already at the end of an
/// empty journal.
fn idle_tailer(site: &Site, id: &str, options: LiveOptions) -> LivePlayer {
    let header = site.journal_header(id);
    let mut live =
        LivePlayer::new(header, "reader", &ObjectSetPosition::default(), options).unwrap();
    assert!(live
        .next_timeout(Duration::from_millis(1))
        .unwrap()
        .is_none());
    live
}

#[test]
fn notification_wakes_the_tailer() {
    let (site, id) = setup();
    let options = LiveOptions {
        poll_age: Duration::from_secs(600),
        ..LiveOptions::default()
    };
    let mut live = idle_tailer(&site, &id, options);
    let writer = PrimaryWriter::open(&site, "vol");
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(30));
            writer.write(0, Bytes::from(vec![1u8; 512]));
            // The writer's header update (commit position) notifies the header's watchers.
            writer.commit_position();
        });
        let mut tids = Vec::new();
        while tids.is_empty() {
            if let Some(e) = live.next_timeout(Duration::from_secs(30)).unwrap() {
                tids.push(e.entry.entry_tid);
            }
        }
        assert_eq!(tids, vec![0]);
    });
    // With a 600 s poll age, only a notification can have ended the wait.
    assert!(live.notified_wakes() >= 1);
    writer.close();
}

#[test]
fn polling_without_notifications_sees_appends() {
    let (site, id) = setup();
    let options = LiveOptions {
        poll_age: Duration::from_millis(5),
        use_notifications: false,
        ..LiveOptions::default()
    };
    let mut live = idle_tailer(&site, &id, options);
    let writer = PrimaryWriter::open(&site, "vol");
    for i in 0..50u64 {
        writer.write(i * 512, Bytes::from(vec![2u8; 512]));
    }
    let mut got = Vec::new();
    while got.len() < 50 {
        match live.next_timeout(Duration::from_secs(10)).unwrap() {
            Some(e) => got.push(e.entry.entry_tid),
            None => panic!("tailer stalled after {} entries", got.len()),
        }
    }
    assert_eq!(
        got,
        (0..50).collect::<Vec<u64>>(),
        "Ceph order within one tag"
    );
    assert_eq!(live.notified_wakes(), 0);
    writer.close();
}

#[test]
fn the_recorders_append_notification_wakes_the_tailer() {
    let (site, id) = setup();
    // The writer's tag allocation (a header notification) happens before the tailer watches.
    let writer = PrimaryWriter::open(&site, "vol");
    let options = LiveOptions {
        poll_age: Duration::from_secs(600),
        ..LiveOptions::default()
    };
    let mut live = idle_tailer(&site, &id, options);
    let payload = journal_core::event::EventEntry::new(
        journal_core::event::Event::AioFlush,
        journal_core::encoding::UTime::now(),
    );
    let payload = journal_core::encoding::Encode::to_bytes(&payload);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(30));
            // Only the append: no header update follows it.
            writer.recorder.append(payload).unwrap().wait().unwrap();
        });
        let got = live.next_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(got.map(|e| e.entry.entry_tid), Some(0));
    });
    // With a 600 s poll age, only the data object's notification can have ended the wait.
    assert!(live.notified_wakes() >= 1);
    writer.close();
}
