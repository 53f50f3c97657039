//! Journaled vs unjournaled image writes on the same backend, in the same run (issue 3, issue 7
//! item 1). Throughput is in elements = acknowledged writes, so criterion's "thrpt" is IOPS and
//! the ratio journaled / unjournaled is the journaling cost.
//!
//! Durability each side promises when a write returns:
//! * `mem`: both sides in process memory. Unjournaled: `MemImage::write` + `flush` (a no-op).
//!   Journaled: `JournaledImage::write` returns once the entry is appended to a `MemStore`
//!   journal; the image write follows on the applier thread.
//! * `dir-fdatasync`: both sides on stable storage. Unjournaled: `SparseFileImage::write` +
//!   `flush` (`fdatasync` of the data file) per write. Journaled: `JournaledImage::write`
//!   returns once its entry is in a `DirStore` (`SyncPolicy::Data`: `writev` + `fdatasync` per
//!   append, group commit across writers); the image write follows asynchronously and would be
//!   replayed from the journal after a crash.
//!
//! The journaled time includes draining the apply queue (`wait_applied`) at the end of each
//! sample, so no image work is left outside the measurement; trimming (`flush_commit_position`)
//! happens between samples, untimed.
//!
//! Run: `cargo bench -p rbdj-benches --bench journal_overhead`, then
//! `python3 benches/ratios.py journal_overhead` for the ratios.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{configs, new_image, new_journaled, payloads, settings, IMAGE_SIZE};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rbdj_benches::run_threads;

fn bench_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_overhead");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let salt = AtomicU64::new(1);
    for cfg in configs() {
        let data = payloads(&cfg);

        let (plain, _plain_dir) = new_image(cfg.backend, "plain");
        group.bench_function(BenchmarkId::new("unjournaled", cfg), |b| {
            b.iter_custom(|iters| {
                let salt = salt.fetch_add(1, Ordering::Relaxed);
                run_threads(
                    cfg.threads,
                    iters,
                    |t, i| {
                        let off = cfg.offset(salt, IMAGE_SIZE, t, i);
                        plain.write(off, data[t].clone()).unwrap();
                        plain.flush().unwrap();
                    },
                    |_| {},
                )
            })
        });
        drop(plain);

        let (journaled, _dirs, _counts) = new_journaled(cfg.backend, settings());
        group.bench_function(BenchmarkId::new("journaled", cfg), |b| {
            b.iter_custom(|iters| {
                let salt = salt.fetch_add(1, Ordering::Relaxed);
                let writes = run_threads(
                    cfg.threads,
                    iters,
                    |t, i| {
                        let off = cfg.offset(salt, IMAGE_SIZE, t, i);
                        journaled.write(off, data[t].clone()).unwrap();
                    },
                    |_| {},
                );
                let drain = Instant::now();
                journaled.wait_applied().unwrap();
                let elapsed = writes + drain.elapsed();
                // Untimed: commit and trim so the in-memory journal does not grow without bound.
                journaled.flush_commit_position().unwrap();
                elapsed
            })
        });
        journaled.close().unwrap();
    }
    group.finish();
}

criterion_group!(benches, bench_overhead);
criterion_main!(benches);
