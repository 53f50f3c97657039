//! A deterministic driver for instruction counts of the mirror's replay path (issue 7 item 4).
//!
//! Journals `N` 4 KiB writes into a `MemStore` primary through `JournaledImage` (one thread),
//! then, unless the mode is `ingest`, starts a `MirrorAgent` that replays them onto a `MemStore`
//! replica and stops it once all `N` are applied. Run it under callgrind for `N` and `3N`, and
//! for `ingest` alone, and take differences per entry:
//!
//! ```text
//! cargo build --release -p replay-engine --example replay_probe
//! valgrind --tool=callgrind --separate-threads=no target/release/examples/replay_probe 2000 replay
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::JournalSettings;
use object_store_trait::MemStore;
use replay_engine::agent::{AgentOptions, MirrorAgent};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

const BLOCK: u64 = 4096;
const IMAGE: u64 = 64 << 20;

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

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
    assert!(wait_until(Duration::from_secs(600), || agent
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
    let (start, cpu0) = (Instant::now(), process_cpu_ticks());
    let agent = MirrorAgent::start(b.clone(), a.clone(), o).unwrap();
    assert!(wait_until(Duration::from_secs(600), || applied
        .load(Ordering::Relaxed)
        >= n));
    let (wall, cpu) = (start.elapsed(), process_cpu_ticks().saturating_sub(cpu0));
    agent.stop();
    println!(
        "replayed {} in {:.3} s ({:.0} entries/s), process CPU {:.2} s ({:.2} µs per entry)",
        applied.load(Ordering::Relaxed),
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        cpu as f64 / 100.0,
        cpu as f64 / 100.0 / n as f64 * 1e6
    );
}

/// User + system CPU of this process in clock ticks (1/100 s on Linux), from `/proc/self/stat`.
fn process_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tick(11) + tick(12)
}
