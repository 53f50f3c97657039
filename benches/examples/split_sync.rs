//! What librbd's journal layout costs on one disk (issue 7 item 1, `docs/performance.md` §1g).
//!
//! librbd splits a write into entries of at most 16 KiB (`rbd_journal_max_payload_bytes`) and
//! spreads consecutive entries over the journal's `splay_width` (4) objects, so on a store that
//! keeps each object in its own file a 64 KiB write is four appends to four files, each made
//! durable by its own `fdatasync`. This probe measures that pattern without any journal code, in
//! alternating rounds, all overwriting blocks that are already written:
//!
//! * `one_file`: the write as one `pwrite` + `fdatasync` of one file;
//! * `split_parallel`: the write cut into `files` equal pieces, each written and `fdatasync`ed on
//!   its own file by its own thread, all at once, the write done when every piece is (what the
//!   recorder does on a slow store: the entries a write puts on one object go out as one append,
//!   so a 1 MiB write is four appends of 256 KiB);
//! * `split_serial`: the same pieces one after another on one thread.
//!
//! ```text
//! cargo run --release -p rbdj-benches --example split_sync -- [size_kib] [files] [writes] [rounds]
//! ```
//! (defaults 64, 4, 500, 5; the files go to a temporary directory under `TMPDIR`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Barrier;
use std::time::{Duration, Instant};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A file of `len` bytes, written and synced, so that later writes overwrite written blocks.
fn written_file(dir: &std::path::Path, name: &str, len: u64) -> File {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join(name))
        .unwrap();
    let fill = vec![0x5au8; 1 << 20];
    for at in (0..len).step_by(fill.len()) {
        file.write_all_at(&fill, at).unwrap();
    }
    file.sync_all().unwrap();
    file
}

fn main() {
    let size = arg(1, 64) << 10;
    let pieces = arg(2, 4).max(1) as usize;
    let writes = arg(3, 500);
    let rounds = arg(4, 5) as usize;
    let piece = size.div_ceil(pieces as u64);
    let dir = tempfile::tempdir().unwrap();
    let one = written_file(dir.path(), "one", writes * size);
    let split: Vec<File> = (0..pieces)
        .map(|k| written_file(dir.path(), &format!("piece{k}"), writes * piece))
        .collect();
    let data = vec![0xa5u8; size as usize];
    let chunk = &data[..piece as usize];

    let one_file = || {
        let t0 = Instant::now();
        for i in 0..writes {
            one.write_all_at(&data, i * size).unwrap();
            one.sync_data().unwrap();
        }
        t0.elapsed()
    };
    let split_serial = || {
        let t0 = Instant::now();
        for i in 0..writes {
            for f in &split {
                f.write_all_at(chunk, i * piece).unwrap();
                f.sync_data().unwrap();
            }
        }
        t0.elapsed()
    };
    let split_parallel = || {
        // Two barrier waits per write: start together, finish together.
        let barrier = Barrier::new(pieces + 1);
        std::thread::scope(|s| {
            for f in &split {
                let barrier = &barrier;
                s.spawn(move || {
                    for i in 0..writes {
                        barrier.wait();
                        f.write_all_at(chunk, i * piece).unwrap();
                        f.sync_data().unwrap();
                        barrier.wait();
                    }
                });
            }
            let t0 = Instant::now();
            for _ in 0..writes {
                barrier.wait();
                barrier.wait();
            }
            t0.elapsed()
        })
    };

    println!(
        "{} KiB writes, {pieces} pieces of {} KiB, {writes} writes per round",
        size >> 10,
        piece >> 10
    );
    println!("| round | one_file writes/s | split_parallel ratio | split_serial ratio |");
    println!("|---|---|---|---|");
    let rate = |d: Duration| writes as f64 / d.as_secs_f64().max(1e-9);
    let mut par = Vec::new();
    let mut ser = Vec::new();
    for r in 0..rounds {
        // Rotate the order so no side always runs after the same one.
        let mut t = [Duration::ZERO; 3];
        for j in 0..3 {
            match (r + j) % 3 {
                0 => t[0] = one_file(),
                1 => t[1] = split_parallel(),
                _ => t[2] = split_serial(),
            }
        }
        let p = t[0].as_secs_f64() / t[1].as_secs_f64();
        let s = t[0].as_secs_f64() / t[2].as_secs_f64();
        par.push(p);
        ser.push(s);
        println!("| {r} | {:.0} | {p:.2} | {s:.2} |", rate(t[0]));
    }
    par.sort_by(f64::total_cmp);
    ser.sort_by(f64::total_cmp);
    println!(
        "median: split_parallel {:.2}, split_serial {:.2} of one_file",
        par[par.len() / 2],
        ser[ser.len() / 2]
    );
}
