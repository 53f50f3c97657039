//! Rough throughput comparison: journaled vs plain writes on the same in-memory image.
//!
//! `cargo run --release -p journal-client --example write_ratio [seconds-per-case]`
//!
//! Prints writes per second for each (size, writers) case and the journaled/plain ratio. This is
//! a quick measurement tool, not a benchmark suite (see `benches/` for criterion benchmarks).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{MemStore, ObjectStore};

const IMAGE: u64 = 64 << 20;

fn run(writers: u64, size: u64, secs: f64, write: Arc<dyn Fn(u64, Bytes) + Send + Sync>) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..writers)
        .map(|t| {
            let (stop, done, write) = (stop.clone(), done.clone(), write.clone());
            std::thread::spawn(move || {
                let data = Bytes::from(vec![t as u8; size as usize]);
                let mut x = t.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let off = (x % (IMAGE / size)) * size;
                    write(off, data.clone());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!(
        "{:>8} {:>8} {:>12} {:>12} {:>7}",
        "size", "writers", "plain w/s", "journal w/s", "ratio"
    );
    let only: Option<u64> = std::env::args().nth(2).and_then(|s| s.parse().ok());
    for size in [4096u64, 65536, 1 << 20] {
        if only.is_some_and(|o| o != size) {
            continue;
        }
        let only_writers: Option<u64> = std::env::args().nth(3).and_then(|s| s.parse().ok());
        for writers in [1u64, 16] {
            if only_writers.is_some_and(|w| w != writers) {
                continue;
            }
            let plain: Arc<dyn BlockImage> = Arc::new(MemImage::new("p", IMAGE));
            let p = plain.clone();
            let base = run(
                writers,
                size,
                secs,
                Arc::new(move |o, d| p.write(o, d).unwrap()),
            );

            let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
            let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("j", IMAGE));
            let settings = JournalSettings {
                order: 26,
                ..JournalSettings::default()
            };
            let ji = Arc::new(JournaledImage::open(store, "j", image, settings).unwrap());
            let j = ji.clone();
            let journaled = run(
                writers,
                size,
                secs,
                Arc::new(move |o, d| j.write(o, d).unwrap()),
            );
            ji.close().unwrap();
            println!(
                "{:>8} {:>8} {:>12.0} {:>12.0} {:>7.2}",
                size,
                writers,
                base,
                journaled,
                journaled / base
            );
        }
    }
}
