//! Measurements (not assertions on time): primary ingest vs replay throughput, lag from ack on
//! the primary to applied on the replica under steady load at half the ingest rate, and the
//! live player's peak buffered bytes on a large backlog. Run with
//! `cargo test -p replay-engine --release --test measure -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use journal_client::{JournalSettings, JournaledImage};
use journal_core::event::Event;
use object_store_trait::MemStore;
use parking_lot::Mutex;
use replay_engine::agent::MirrorAgent;
use replay_engine::live_player::{LiveOptions, LivePlayer};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

const SHAPE: JournalShape = JournalShape {
    order: 22,
    splay_width: 4,
};
const BLOCK: u64 = 4096;
const IMAGE: u64 = 64 << 20;

fn sites() -> (Site, Site) {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE, Some(SHAPE)).unwrap();
    (a, b)
}

/// Something that journals and acknowledges 4 KiB writes.
trait Writer: Sync {
    fn put(&self, off: u64, data: Bytes);
}

impl Writer for PrimaryWriter {
    fn put(&self, off: u64, data: Bytes) {
        self.write(off, data);
    }
}

impl Writer for JournaledImage {
    fn put(&self, off: u64, data: Bytes) {
        self.write(off, data).unwrap();
    }
}

/// Writes `n` 4 KiB blocks from `threads` threads as fast as possible; returns writes/s.
fn ingest(writer: &dyn Writer, n: u64, threads: u64, base: u64) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in (t..n).step_by(threads as usize) {
                    let off = ((base + i) * BLOCK) % IMAGE;
                    writer.put(off, Bytes::from(vec![(i % 250) as u8 + 1; BLOCK as usize]));
                }
            });
        }
    });
    n as f64 / start.elapsed().as_secs_f64()
}

/// First and last apply instants and the count applied.
type FirstLast = (Option<Instant>, Option<Instant>, u64);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
#[ignore]
fn throughput_and_lag() {
    // 1. Ingest alone (the replica exists and its client is registered, but no agent runs).
    let (a, b) = sites();
    let agent = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    assert!(wait_state(
        &agent,
        "vol",
        ImageState::Replaying,
        Duration::from_secs(60)
    ));
    agent.stop();
    let writer = a.open_journaled("vol", JournalSettings::default()).unwrap();
    let backlog = 40_000u64;
    let ingest_rate = ingest(&writer, backlog, 4, 0);
    writer.close().unwrap();

    // 2. Replay of that backlog by a restarted agent, timed from its first to its last applied
    //    entry (bootstrap excluded).
    let first_last: Arc<Mutex<FirstLast>> = Arc::default();
    let fl = Arc::clone(&first_last);
    let mut options = fast_agent_options();
    options.replayer.on_applied = Some(Arc::new(move |_| {
        let mut g = fl.lock();
        let now = Instant::now();
        g.0.get_or_insert(now);
        g.1 = Some(now);
        g.2 += 1;
    }));
    let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
    assert!(wait_until(Duration::from_secs(300), || first_last.lock().2 >= backlog));
    let (first, last, n) = *first_last.lock();
    let replay_rate = n as f64 / last.unwrap().duration_since(first.unwrap()).as_secs_f64();
    agent.stop();
    println!(
        "ingest (JournaledImage): {ingest_rate:.0} writes/s (4 KiB, 4 threads); replay of the \
         {backlog} entry backlog: {replay_rate:.0} entries/s; ratio {:.2}",
        replay_rate / ingest_rate
    );

    // 3. Lag at half the ingest rate, for two poll ages.
    for (poll, product) in [
        (Duration::from_millis(10), true),
        (Duration::from_millis(10), false),
        (Duration::from_secs(5), false),
    ] {
        let (a, b) = sites();
        let mut acks: HashMap<u64, Instant> = HashMap::new();
        let applied: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let mut options = fast_agent_options();
        options.replayer.live = LiveOptions {
            poll_age: poll,
            ..LiveOptions::default()
        };
        let applied2 = Arc::clone(&applied);
        options.replayer.on_applied = Some(Arc::new(move |e| {
            if let Event::AioWrite { offset, .. } = e.event {
                applied2.lock().entry(offset).or_insert_with(Instant::now);
            }
        }));
        let agent = MirrorAgent::start(b.clone(), a.clone(), options).unwrap();
        let zero = contents(a.open_image("vol").unwrap().as_ref());
        assert!(wait_replica_equals(
            &b,
            "vol",
            &zero,
            Duration::from_secs(30)
        ));
        // The product writer (JournaledImage) notifies the header only when it commits its
        // position (every commit_age); the test writer commits every 20 ms, so its header
        // notifications wake a tailer whose poll age is 5 s.
        let writer: Box<dyn Writer> = if product {
            Box::new(a.open_journaled("vol", JournalSettings::default()).unwrap())
        } else {
            Box::new(PrimaryWriter::open(&a, "vol"))
        };
        let interval = Duration::from_secs_f64(2.0 / ingest_rate);
        let n = 2000u64;
        let start = Instant::now();
        for i in 0..n {
            let due = start + interval * i as u32;
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let off = i * BLOCK;
            writer.put(off, Bytes::from(vec![1u8; BLOCK as usize]));
            acks.insert(off, Instant::now());
        }
        drop(writer);
        assert!(wait_until(Duration::from_secs(60), || applied.lock().len()
            as u64
            >= n));
        // An event can be applied before the writer's ack returns (lag 0).
        let applied = applied.lock();
        let mut l: Vec<Duration> = acks
            .iter()
            .map(|(off, ack)| applied[off].saturating_duration_since(*ack))
            .collect();
        l.sort();
        println!(
            "lag ack->applied at {:.0} writes/s, {} writer, poll_age {poll:?}: p50 {:?} p99 {:?} max {:?} ({} samples)",
            ingest_rate / 2.0,
            if product { "JournaledImage" } else { "test (commits every 20 ms)" },
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l.last().unwrap(),
            l.len()
        );
        agent.stop();
    }

    // 4. Memory: a live player over a large backlog with a 4 MiB prefetch budget.
    let (a, _) = sites();
    let id = a.image_id("vol").unwrap();
    let header = a.journal_header(&id);
    // Registered first, so the writer's trimmer keeps everything for it.
    header.client_register("reader", Bytes::new()).unwrap();
    let writer = a.open_journaled("vol", JournalSettings::default()).unwrap();
    let _ = ingest(&writer, 8192, 4, 0); // 32 MiB of payload
    writer.close().unwrap();
    let budget = 4 << 20;
    let mut live = LivePlayer::new(
        header,
        "reader",
        &Default::default(),
        LiveOptions {
            prefetch_bytes_max: budget,
            ..LiveOptions::default()
        },
    )
    .unwrap();
    let mut count = 0;
    while live
        .next_timeout(Duration::from_millis(50))
        .unwrap()
        .is_some()
    {
        count += 1;
    }
    println!(
        "live player over {count} entries (~32 MiB): peak buffered {} KiB with a {} KiB budget",
        live.player().peak_buffered_bytes() / 1024,
        budget / 1024
    );
}
