//! Appends `N` batches of `SIZE` bytes to one `DirStore` object (durable, one writer) and prints
//! the rate; run under `strace -f -c` to count system calls per append.
//!
//! `cargo run --release -p object-store-trait --example append_probe -- [N] [SIZE] [DIR]`
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
    for _ in 0..n {
        store
            .append("obj", std::slice::from_ref(&batch), &AppendGuard::none())
            .unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("{n} appends of {size} B: {:.0}/s", n as f64 / secs);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
