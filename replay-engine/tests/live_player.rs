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

/// Counts reads of the journal header's omap and reads of data objects.
#[derive(Debug, Default)]
struct ReadCounts {
    header: std::sync::atomic::AtomicU64,
    data: std::sync::atomic::AtomicU64,
}

impl object_store_trait::Hook for ReadCounts {
    fn before(&self, op: object_store_trait::Op<'_>) -> object_store_trait::Result<()> {
        use object_store_trait::OpKind;
        use std::sync::atomic::Ordering::SeqCst;
        match op.kind() {
            OpKind::OmapGet | OpKind::OmapList if op.oid().starts_with("journal.") => {
                self.header.fetch_add(1, SeqCst);
            }
            OpKind::Read if op.oid().starts_with("journal_data.") => {
                self.data.fetch_add(1, SeqCst);
            }
            _ => {}
        }
        Ok(())
    }
}

/// As `setup`, on `inner` with its header and data reads counted.
fn counted_setup(
    inner: Arc<dyn object_store_trait::ObjectStore>,
) -> (Site, String, Arc<ReadCounts>) {
    let counts = Arc::new(ReadCounts::default());
    let store = object_store_trait::Intercept::with_hook(inner, counts.clone());
    let site = Site::open(Arc::new(store), 4);
    site.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let id = site.image_id("vol").unwrap();
    site.journal_header(&id)
        .client_register("reader", Bytes::new())
        .unwrap();
    (site, id, counts)
}

/// Idle polls of `live` (a few ms apart, none delivering anything); returns the header and data
/// reads they made.
fn idle_polls(live: &mut LivePlayer, counts: &ReadCounts, polls: usize) -> (u64, u64) {
    use std::sync::atomic::Ordering::SeqCst;
    let before = (counts.header.load(SeqCst), counts.data.load(SeqCst));
    for _ in 0..polls {
        std::thread::sleep(Duration::from_millis(3));
        assert!(live.try_next().unwrap().is_none());
    }
    (
        counts.header.load(SeqCst) - before.0,
        counts.data.load(SeqCst) - before.1,
    )
}

/// The idle tests' `idle_poll_age_max`.
const IDLE_MAX: Duration = Duration::from_millis(20);

/// Options for the idle tests: polls start at 1 ms and back off, and the header's safety-net
/// re-read never comes due.
fn idle_options() -> LiveOptions {
    LiveOptions {
        poll_age: Duration::from_millis(1),
        idle_poll_age_max: IDLE_MAX,
        header_poll_age: Duration::from_secs(3600),
        ..LiveOptions::default()
    }
}

/// Lets an idle tailer poll whenever a poll is due, until its poll interval exceeds `beyond`
/// or it polled 12 times; returns the interval it reached.
fn back_off(live: &mut LivePlayer, beyond: Duration) -> Duration {
    let mut interval = Duration::ZERO;
    for _ in 0..12 {
        if let Some(due) = live.next_poll() {
            std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        }
        assert!(live.try_next().unwrap().is_none());
        let due = live.next_poll().unwrap();
        interval = due.saturating_duration_since(std::time::Instant::now());
        if interval > beyond {
            break;
        }
    }
    interval
}

/// Where notifications are complete and cheap (MemStore: the recorder notifies every append),
/// an idle tailer's polls never re-read the header (its safety-net re-read, `header_poll_age`,
/// is an hour away here) and its backoff goes past `idle_poll_age_max`; the writer's appends
/// and set rollovers still reach it by notification, and every entry written arrives, in
/// order, across the new sets.
#[test]
fn idle_polls_skip_the_header_where_notifications_are_complete() {
    let (site, id, counts) = counted_setup(Arc::new(MemStore::new()));
    let writer = PrimaryWriter::open(&site, "vol");
    let mut live = idle_tailer(&site, &id, idle_options());
    let (header_reads, data_reads) = idle_polls(&mut live, &counts, 30);
    assert_eq!(header_reads, 0, "idle polls re-read the header");
    assert!(data_reads > 0, "no poll happened");
    // The backoff goes past `idle_poll_age_max` (towards `header_poll_age`).
    let interval = back_off(&mut live, IDLE_MAX);
    assert!(interval > IDLE_MAX, "backed off to {interval:?} only");

    // 720 KB of writes: 64 KiB objects, splay width 4, so the writer moves on to later sets.
    for i in 0..60u64 {
        writer.write(i * 12_000, Bytes::from(vec![i as u8 + 1; 12_000]));
    }
    writer.commit_position();
    let mut tids = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tids.len() < 60 && std::time::Instant::now() < deadline {
        match live.try_next().unwrap() {
            Some(e) => tids.push(e.entry.entry_tid),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    assert_eq!(tids, (0..60).collect::<Vec<_>>());
    assert!(
        live.player().active_set() > 0,
        "the writer never left set 0"
    );
    writer.close();
}

/// Where notifications may be missed (a `DirStore` other processes can write), every poll
/// re-reads the header as before.
#[test]
fn idle_polls_read_the_header_where_notifications_may_be_missed() {
    use object_store_trait::{DirStore, DirStoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path(), DirStoreOptions::default()).unwrap();
    let (site, id, counts) = counted_setup(Arc::new(store));
    let mut live = idle_tailer(&site, &id, idle_options());
    let (header_reads, data_reads) = idle_polls(&mut live, &counts, 10);
    assert!(data_reads > 0, "no poll happened");
    assert!(
        header_reads >= data_reads / 4,
        "polls skipped the header: {header_reads} header reads, {data_reads} data reads"
    );
    // Appends may come unannounced: the backoff stops at `idle_poll_age_max`.
    let interval = back_off(&mut live, IDLE_MAX);
    assert!(interval <= IDLE_MAX, "backed off to {interval:?}");
}
