//! Appends `N` batches of `SIZE` bytes to one `DirStore` object (durable) from `THREADS` threads
//! (default 1; `N` in total) and prints the rate; run under `strace -f -c` to count system calls
//! per append.
//!
//! `cargo run --release -p object-store-trait --example append_probe -- [N] [SIZE] [DIR] [THREADS]`
//!
//! With `PROBE_WRITE_AT=1` each operation is instead a `write_at` of `SIZE` bytes at a random
//! `SIZE`-aligned offset below 4 MiB (memory-mapped reads off, as rbdj's site stores), so the
//! first writes grow the object and later ones overwrite it.
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
    if std::env::var("PROBE_WRITE_AT").is_ok() {
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        let opts = DirStoreOptions {
            mmap_reads: false,
            ..DirStoreOptions::default()
        };
        let store = DirStore::open(&dir, opts).unwrap();
        let slots = ((4u64 << 20) / size as u64).max(1);
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let t0 = Instant::now();
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let offset = (x % slots) * size as u64;
            store.write_at("img", offset, batch.clone()).unwrap();
        }
        let secs = t0.elapsed().as_secs_f64();
        println!("{n} write_at of {size} B: {:.0}/s", n as f64 / secs);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
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
