//! A deterministic driver for instruction counts of the mirror's replay path (issue 7 item 4).
//!
//! Journals `N` 4 KiB writes into a `MemStore` primary through `JournaledImage` (one thread),
//! then, unless the mode is `ingest`, starts a `MirrorAgent` that replays them onto a `MemStore`
//! replica and stops it once all `N` are applied. Run it under callgrind for `N` and `3N`, and
//! for `ingest` alone, and take differences per entry:
//!
//! ```text
//! cargo build --release -p rbdj-benches --example replay_probe
//! valgrind --tool=callgrind --separate-threads=no target/release/examples/replay_probe 2000 replay
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::JournalSettings;
use object_store_trait::MemStore;
use rbdj_benches::{process_cpu, wait_until};
use replay_engine::agent::{AgentOptions, MirrorAgent};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

const BLOCK: u64 = 4096;
const IMAGE: u64 = 64 << 20;
/// How often the probe looks whether the agent is done.
const POLL: Duration = Duration::from_millis(2);

fn options() -> AgentOptions {
    AgentOptions {
        scan_interval: Duration::from_millis(20),
        retry_interval: Duration::from_millis(20),
        agent_id: Some("probe-agent".into()),
        ..AgentOptions::default()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let mode = args.next().unwrap_or_else(|| "replay".into());
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    let shape = JournalShape {
        order: 22,
        splay_width: 4,
    };
    a.create_image("vol", IMAGE, Some(shape)).unwrap();
    // Bootstrap: the replica exists and the agent's client is registered on the primary.
    let agent = MirrorAgent::start(b.clone(), a.clone(), options()).unwrap();
    assert!(wait_until(Duration::from_secs(600), POLL, || agent
        .image_status("vol")
        .is_some_and(|s| s.state == ImageState::Replaying)));
    agent.stop();

    let settings = JournalSettings {
        writethrough_until_flush: false,
        ..JournalSettings::default()
    };
    let writer = a.open_journaled("vol", settings).unwrap();
    for i in 0..n {
        let data = Bytes::from(vec![(i % 251) as u8 + 1; BLOCK as usize]);
        writer.write((i * BLOCK) % IMAGE, data).unwrap();
    }
    writer.close().unwrap();
    if mode == "ingest" {
        println!("ingested {n}");
        return;
    }
    let applied = Arc::new(AtomicU64::new(0));
    let hook = Arc::clone(&applied);
    let mut o = options();
    o.replayer.on_applied = Some(Arc::new(move |_| {
        hook.fetch_add(1, Ordering::Relaxed);
    }));
    let (start, cpu0) = (Instant::now(), process_cpu().0);
    let agent = MirrorAgent::start(b.clone(), a.clone(), o).unwrap();
    assert!(wait_until(Duration::from_secs(600), POLL, || applied
        .load(Ordering::Relaxed)
        >= n));
    let (wall, cpu) = (start.elapsed(), process_cpu().0.saturating_sub(cpu0));
    agent.stop();
    println!(
        "replayed {} in {:.3} s ({:.0} entries/s), process CPU {:.2} s ({:.2} µs per entry)",
        applied.load(Ordering::Relaxed),
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / n as f64 * 1e6
    );
}
