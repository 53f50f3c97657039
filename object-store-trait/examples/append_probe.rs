//! Appends `N` batches of `SIZE` bytes to one `DirStore` object (durable) from `THREADS` threads
//! (default 1; `N` in total) and prints the rate; run under `strace -f -c` to count system calls
//! per append.
//!
//! `cargo run --release -p object-store-trait --example append_probe -- [N] [SIZE] [DIR] [THREADS]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Instant;

use bytes::Bytes;
use object_store_trait::{AppendGuard, DirStore, DirStoreOptions, ObjectStore};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4096);
    let threads: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let dir = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "/tmp/append_probe".to_owned());
    let _ = std::fs::remove_dir_all(&dir);
    let store = DirStore::open(&dir, DirStoreOptions::default()).unwrap();
    let batch = Bytes::from(vec![0x5a_u8; size]);
    store
        .append("obj", std::slice::from_ref(&batch), &AppendGuard::none())
        .unwrap();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..n / threads {
                    store
                        .append("obj", std::slice::from_ref(&batch), &AppendGuard::none())
                        .unwrap();
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let done = n / threads * threads;
    println!(
        "{done} appends of {size} B, {threads} threads: {:.0}/s",
        done as f64 / secs
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
