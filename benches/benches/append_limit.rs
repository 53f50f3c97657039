//! Append throughput against the machine's limit, in the same run (issue 7 item 3).
//!
//! * `append_limit_mem`: `Recorder` appends to a `MemStore` (bytes/s of payload until every
//!   entry is durable in the store) vs the physical limit: copying the same payloads into a
//!   buffer and computing their CRC-32C (`ceph_crc32c`), with the same thread count. Each
//!   recorder writer keeps up to 32 appends outstanding and waits for them in order. A second
//!   limit, `alloc_memcpy_crc32c`, copies each payload into a fresh buffer that is kept until
//!   the end of the sample (what any in-memory journal pays for fresh memory).
//! * `append_limit_dir`: one writer, batch sizes 4 KiB / 64 KiB / 1 MiB: a plain loop of
//!   `write` + `fdatasync` on one file vs `DirStore::append` of the same batch (`writev` +
//!   `fdatasync`, `SyncPolicy::Data`) vs the `Recorder` on a `DirStore` appending one entry of
//!   that payload size and waiting for it (33 bytes of framing more per entry; splay width 4,
//!   so consecutive entries go to 4 different object files). Every side has the batch on stable
//!   storage when the operation returns.
//!
//! Run: `cargo bench -p rbdj-benches --bench append_limit`, then
//! `python3 benches/ratios.py append_limit` for the ratios.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bench_recorder, no_advance, windowed_appends};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use journal_client::{JournalSettings, Recorder};
use journal_core::entry::ceph_crc32c;
use object_store_trait::{AppendGuard, DirStore, DirStoreOptions, MemStore, ObjectStore};
use parking_lot::Mutex;
use rbdj_benches::{human_size, run_threads, Rng};

fn start_recorder(store: Arc<dyn ObjectStore>) -> Recorder {
    let settings = JournalSettings {
        writethrough_until_flush: false,
        max_payload_bytes: (1 << 20) + 64,
        ..JournalSettings::default()
    };
    bench_recorder(store, 4, settings, no_advance())
}

fn payloads(threads: usize, size: usize) -> Vec<Bytes> {
    (0..threads)
        .map(|t| Bytes::from(Rng::new(t as u64 + 11).bytes(size)))
        .collect()
}

fn bench_mem(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_limit_mem");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (size, threads) in [(4096usize, 1usize), (4096, 16), (64 << 10, 1)] {
        let id = format!("{}_{}t", human_size(size as u64), threads);
        let data = payloads(threads, size);
        group.throughput(Throughput::Bytes(size as u64));

        let buffers: Vec<Mutex<Vec<u8>>> =
            (0..threads).map(|_| Mutex::new(vec![0u8; size])).collect();
        group.bench_function(BenchmarkId::new("memcpy_crc32c", &id), |b| {
            b.iter_custom(|iters| {
                run_threads(
                    threads,
                    iters,
                    |t, _| {
                        let mut buf = buffers[t].lock();
                        buf.copy_from_slice(&data[t]);
                        std::hint::black_box(ceph_crc32c(0, &buf));
                    },
                    |_| {},
                )
            })
        });

        // The same, but every payload copied into a fresh buffer that is kept until the end of
        // the sample, as a journal in memory keeps its entries (allocation + page faults).
        group.bench_function(BenchmarkId::new("alloc_memcpy_crc32c", &id), |b| {
            b.iter_custom(|iters| {
                let kept: Vec<Mutex<Vec<Bytes>>> =
                    (0..threads).map(|_| Mutex::new(Vec::new())).collect();
                let elapsed = run_threads(
                    threads,
                    iters,
                    |t, _| {
                        let copy = Bytes::copy_from_slice(&data[t]);
                        std::hint::black_box(ceph_crc32c(0, &copy));
                        kept[t].lock().push(copy);
                    },
                    |_| {},
                );
                drop(kept);
                elapsed
            })
        });

        group.bench_function(BenchmarkId::new("recorder", &id), |b| {
            b.iter_custom(|iters| {
                let recorder = start_recorder(Arc::new(MemStore::new()));
                let elapsed = windowed_appends(&recorder, &data, threads, iters);
                recorder.shutdown();
                elapsed
            })
        });
    }
    group.finish();
}

fn bench_dir(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_limit_dir");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for size in [4096usize, 64 << 10, 1 << 20] {
        let id = human_size(size as u64);
        let data = payloads(1, size);
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_function(BenchmarkId::new("write_fdatasync", &id), |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                let mut file = File::create(dir.path().join("log")).unwrap();
                file.sync_all().unwrap();
                let started = Instant::now();
                for _ in 0..iters {
                    file.write_all(&data[0]).unwrap();
                    file.sync_data().unwrap();
                }
                started.elapsed()
            })
        });

        group.bench_function(BenchmarkId::new("dirstore_append", &id), |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                let store = DirStore::open(dir.path(), DirStoreOptions::default()).unwrap();
                let batch = [data[0].clone()];
                // Create the object untimed (creation also syncs directories).
                store.append("obj", &batch, &AppendGuard::none()).unwrap();
                let started = Instant::now();
                for _ in 0..iters {
                    store.append("obj", &batch, &AppendGuard::none()).unwrap();
                }
                started.elapsed()
            })
        });

        group.bench_function(BenchmarkId::new("recorder", &id), |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                let store = DirStore::open(dir.path(), DirStoreOptions::default()).unwrap();
                let recorder = start_recorder(Arc::new(store));
                // Create the splay objects untimed.
                for _ in 0..4 {
                    recorder.append(data[0].clone()).unwrap().wait().unwrap();
                }
                let started = Instant::now();
                for _ in 0..iters {
                    recorder.append(data[0].clone()).unwrap().wait().unwrap();
                }
                let elapsed = started.elapsed();
                recorder.shutdown();
                elapsed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_mem, bench_dir);
criterion_main!(benches);
