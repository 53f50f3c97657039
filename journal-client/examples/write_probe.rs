//! A small, deterministic driver of one write configuration, for instruction counts
//! (`valgrind --tool=callgrind`) and syscall counts (`strace -f -c`).
//!
//! `cargo build --release -p journal-client --example write_probe`, then
//! `target/release/examples/write_probe SIDE ROUNDS [WRITES_PER_ROUND] [IO_SIZE]` with SIDE
//! `journaled` or `unjournaled`: one writer, random aligned writes of IO_SIZE bytes (default
//! 4096) into a 256 MiB `MemImage`, journaled on a `MemStore` with the benchmarks' settings
//! (Ceph's defaults, batching from the first write). As `paired_ratios`, each round of
//! WRITES_PER_ROUND (default 20,000) writes ends with `wait_applied` and
//! `flush_commit_position`. Instructions per write = the difference of two runs with different
//! ROUNDS divided by the difference in writes (removes start-up and tear-down).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{MemStore, ObjectStore};

const IMAGE: u64 = 256 << 20;

fn main() {
    // On a spawned thread, as the benchmarks' writers (a thread's own malloc arena, not the
    // main one: the image's chunk allocations cost the same on both sides).
    std::thread::spawn(run).join().unwrap();
}

fn run() {
    let args: Vec<String> = std::env::args().collect();
    let side = args.get(1).map_or("journaled", String::as_str).to_owned();
    let rounds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let per_round: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let size: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let data = Bytes::from((0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next_offset = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % (IMAGE / size)) * size
    };
    let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("probe", IMAGE));
    match side.as_str() {
        "unjournaled" => {
            for _ in 0..rounds * per_round {
                image.write(next_offset(), data.clone()).unwrap();
                image.flush().unwrap();
            }
        }
        "journaled" => {
            let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
            let settings = JournalSettings {
                writethrough_until_flush: false,
                ..JournalSettings::default()
            };
            let journaled = JournaledImage::open(store, "probe", image, settings).unwrap();
            for _ in 0..rounds {
                for _ in 0..per_round {
                    journaled.write(next_offset(), data.clone()).unwrap();
                }
                journaled.wait_applied().unwrap();
                journaled.flush_commit_position().unwrap();
            }
            journaled.close().unwrap();
        }
        other => panic!("unknown side {other}: journaled or unjournaled"),
    }
}
