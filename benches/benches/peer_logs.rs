//! Durable append against peer log engines (issue 7 item 2): rbdj's `Recorder` on a `DirStore`
//! (`SyncPolicy::Data`) vs the `okaywal` and `raft-engine` crates, same disk (temporary
//! directories under `std::env::temp_dir()`), 4 KiB payloads, 16 writer threads and 1 writer.
//!
//! Every side acknowledges an append only once it is on stable storage (`fdatasync`/`fsync`
//! returned), and every side may group-commit appends of concurrent writers into one sync:
//!
//! * `rbdj`: `Recorder::append(payload)` + `AppendFuture::wait()`, librbd's journal layout
//!   (order 24, splay width 4: consecutive entries go to 4 object files). The entry (header,
//!   payload, CRC-32C) is `writev`'d to its object's file and `fdatasync`'d; object creation
//!   also `fsync`s the directories. Leader/follower group commit per object. In its steady
//!   state, as the peers (which recycle their segment and log files): each set rollover
//!   removes the objects two sets back, whose files the next objects reuse, and three object
//!   sets are written before the run (`RBDJ_JOURNAL=fresh`: a new journal never trimmed, every
//!   object a new file zero-filled ahead of its appends).
//! * `rbdj_splay1`: the same with splay width 1 (every entry in one object file).
//! * `okaywal`: `begin_entry` + `write_chunk` + `commit`; `commit` returns after `sync_data`
//!   (`fdatasync`) of the segment file (one sync covers every entry written before it) and,
//!   for a newly created segment, an `fsync` of the directory. Default configuration
//!   (segments pre-allocated with zeros to 1 MiB, checkpointed after 768 KiB and recycled; the
//!   log manager discards checkpointed entries).
//! * `raft-engine`: one raft group per writer thread, one `LogBatch` with one entry per append,
//!   `Engine::write(batch, sync = true)`: the write group's leader appends every member's batch
//!   and `fdatasync`s the log file before any member returns. Default configuration (files of
//!   128 MiB, `fallocate` ahead, recycling on, batches under 8 KiB not compressed).
//!
//! * `limit`: no engine, the bound for this sync policy on this disk — the simplest durable log
//!   there is: one file zero-filled ahead (reused round-robin, so no append ever grows it),
//!   leader/follower group commit (the first waiter writes every queued payload with one
//!   `pwritev` and `fdatasync`s; the others sleep until a sync covers them;
//!   `rbdj_benches::GroupCommitLog`). No framing, no CRC,
//!   no index, no recovery: whatever a log engine adds costs time on top of this.
//! * `limit_sized`: the same plus a 48-byte size record rewritten at the file's start before
//!   each sync — what a store that keeps objects of exact size in zero-filled files (as
//!   `DirStore` does) must write at least; a log that finds its end by scanning (as okaywal)
//!   does not need it.
//!
//! The sides take turns in short rounds (order rotating each round, as in `paired_ratios.rs`);
//! the table shows each side's throughput over all rounds, p50/p99 latency of single appends
//! over all rounds, and the ratio rbdj / peer as the median [min–max] of the per-round ratios
//! `time(peer) / time(rbdj)` (= throughput ratio).
//!
//! Run: `cargo bench -p rbdj-benches --bench peer_logs` (about 30 s). `RBDJ_PEER_ROUNDS`
//! (default 9) sets the rounds; a filter argument (`-- 16w` or `-- 1w`) picks one
//! configuration; `RBDJ_PEER_SIDES=okaywal,rbdj` picks sides (for `strace -f -c`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{AppendCounts, Counting};
use journal_client::{JournalSettings, Recorder};
use object_store_trait::{DirStore, DirStoreOptions, ObjectStore};
use okaywal::{LogVoid, WriteAheadLog};
use parking_lot::Mutex;
use protobuf::well_known_types::BytesValue;
use raft_engine::{Engine, LogBatch, MessageExt};
use rbdj_benches::{run_threads, GroupCommitLog, Rng};
use tempfile::TempDir;

/// Payload bytes per append.
const PAYLOAD: usize = 4096;

/// What each side has done when an append returns (printed with the results).
const PROMISES: [(&str, &str); 6] = [
    (
        "rbdj",
        "entry writev'd to its object file (splay width 4) + fdatasync (SyncPolicy::Data); dir fsync on object creation",
    ),
    (
        "rbdj_splay1",
        "as rbdj, splay width 1 (one object file)",
    ),
    (
        "okaywal",
        "entry written to the pre-allocated segment + sync_data (fdatasync); dir fsync after a new segment",
    ),
    (
        "raft-engine",
        "batch appended to the log file by the write-group leader + fdatasync (sync = true)",
    ),
    (
        "limit",
        "payloads queued; the group's leader pwritev's them into a zero-filled file + fdatasync",
    ),
    (
        "limit_sized",
        "as limit, plus a size record written at the file's start before the fdatasync",
    ),
];

/// One log engine: `append` returns once the payload is on stable storage.
trait DurableLog: Sync {
    fn append(&self, thread: usize, payload: &Bytes);
    /// A note printed after the results (entries per sync where the side can count them).
    fn note(&self) -> Option<String> {
        None
    }
    fn close(self: Box<Self>);
}

fn tempdir() -> TempDir {
    tempfile::tempdir_in(std::env::temp_dir()).unwrap()
}

struct RbdjLog {
    recorder: Recorder,
    counts: Arc<AppendCounts>,
    _dir: TempDir,
}

impl RbdjLog {
    fn open(splay_width: u8) -> Self {
        let dir = tempdir();
        let store = DirStore::open(dir.path(), DirStoreOptions::default()).unwrap();
        let counts = Arc::new(AppendCounts::default());
        let store: Arc<dyn ObjectStore> =
            Arc::new(Counting::with_hook(Arc::new(store), counts.clone()));
        let settings = JournalSettings {
            writethrough_until_flush: false,
            ..JournalSettings::default()
        };
        let recorder = if std::env::var("RBDJ_JOURNAL").as_deref() == Ok("fresh") {
            common::bench_recorder(store, splay_width, settings, common::no_advance())
        } else {
            let max_payload = settings.max_payload_bytes;
            let recorder = rbdj_benches::trimmed_recorder(store, splay_width, settings).unwrap();
            rbdj_benches::warm_up_recorder(&recorder, splay_width, max_payload).unwrap();
            counts.reset();
            recorder
        };
        RbdjLog {
            recorder,
            counts,
            _dir: dir,
        }
    }
}

impl DurableLog for RbdjLog {
    fn append(&self, _thread: usize, payload: &Bytes) {
        self.recorder
            .append(payload.clone())
            .unwrap()
            .wait()
            .unwrap();
    }
    fn note(&self) -> Option<String> {
        let (appends, entries) = self.counts.get();
        Some(format!(
            "{:.1} entries per store append (one fdatasync each)",
            entries as f64 / appends.max(1) as f64
        ))
    }
    fn close(self: Box<Self>) {
        self.recorder.shutdown();
    }
}

struct OkayWalLog {
    wal: WriteAheadLog,
    _dir: TempDir,
}

impl OkayWalLog {
    fn open() -> Self {
        let dir = tempdir();
        let wal = WriteAheadLog::recover(dir.path().join("wal"), LogVoid).unwrap();
        OkayWalLog { wal, _dir: dir }
    }
}

impl DurableLog for OkayWalLog {
    fn append(&self, _thread: usize, payload: &Bytes) {
        let mut entry = self.wal.begin_entry().unwrap();
        entry.write_chunk(payload).unwrap();
        entry.commit().unwrap();
    }
    fn close(self: Box<Self>) {
        self.wal.shutdown().unwrap();
    }
}

/// raft-engine entries: a protobuf `BytesValue` whose first 8 bytes are the entry's index.
struct IndexedBytes;

impl MessageExt for IndexedBytes {
    type Entry = BytesValue;
    fn index(e: &BytesValue) -> u64 {
        u64::from_le_bytes(e.get_value()[..8].try_into().unwrap())
    }
}

struct RaftEngineLog {
    engine: Engine,
    /// Next index of each writer's raft group.
    next_index: Vec<AtomicU64>,
    _dir: TempDir,
}

impl RaftEngineLog {
    fn open(threads: usize) -> Self {
        let dir = tempdir();
        let cfg = raft_engine::Config {
            dir: dir.path().join("raft").to_str().unwrap().to_owned(),
            ..raft_engine::Config::default()
        };
        let engine = Engine::open(cfg).unwrap();
        RaftEngineLog {
            engine,
            next_index: (0..threads).map(|_| AtomicU64::new(1)).collect(),
            _dir: dir,
        }
    }
}

impl DurableLog for RaftEngineLog {
    fn append(&self, thread: usize, payload: &Bytes) {
        let index = self.next_index[thread].fetch_add(1, Ordering::Relaxed);
        let mut value = payload.to_vec();
        value[..8].copy_from_slice(&index.to_le_bytes());
        let mut entry = BytesValue::new();
        entry.set_value(value);
        let mut batch = LogBatch::with_capacity(1);
        batch
            .add_entries::<IndexedBytes>(thread as u64 + 1, &[entry])
            .unwrap();
        self.engine.write(&mut batch, true).unwrap();
    }
    fn close(self: Box<Self>) {}
}

/// Bytes of the `limit` side's file after its 4 KiB header (zero-filled once, reused).
const LIMIT_FILE_BYTES: u64 = 64 << 20;

/// The `limit` sides: [`GroupCommitLog`] in a temporary directory (see the module docs).
struct RawGroupCommit {
    log: GroupCommitLog,
    _dir: TempDir,
}

impl RawGroupCommit {
    fn open(sized: bool) -> Self {
        let dir = tempdir();
        let log = GroupCommitLog::create(&dir.path().join("log"), LIMIT_FILE_BYTES, sized).unwrap();
        RawGroupCommit { log, _dir: dir }
    }
}

impl DurableLog for RawGroupCommit {
    fn append(&self, _thread: usize, payload: &Bytes) {
        self.log.append(payload).unwrap();
    }
    fn note(&self) -> Option<String> {
        Some(format!(
            "{:.1} appends per fdatasync",
            self.log.appends_per_sync()
        ))
    }
    fn close(self: Box<Self>) {}
}

struct Side {
    name: &'static str,
    log: Box<dyn DurableLog>,
    /// Wall time of each timed round.
    times: Vec<f64>,
    /// Latency of every timed append, nanoseconds.
    latencies: Vec<u64>,
}

/// Runs `n` appends split over `threads` writers; returns the wall time and every append's
/// latency.
fn round(log: &dyn DurableLog, data: &[Bytes], threads: usize, n: u64) -> (Duration, Vec<u64>) {
    let lat: Vec<Mutex<Vec<u64>>> = (0..threads)
        .map(|_| Mutex::new(Vec::with_capacity(n as usize / threads + 1)))
        .collect();
    let elapsed = run_threads(
        threads,
        n,
        |t, _| {
            let t0 = Instant::now();
            log.append(t, &data[t]);
            let ns = t0.elapsed().as_nanos() as u64;
            lat[t].lock().push(ns);
        },
        |_| {},
    );
    (
        elapsed,
        lat.into_iter().flat_map(Mutex::into_inner).collect(),
    )
}

/// Median, min and max over the rounds of `side`'s throughput divided by `base`'s.
fn per_round_ratio(side: &Side, base: &Side, rounds: usize) -> (f64, f64, f64) {
    let mut ratios: Vec<f64> = (0..rounds).map(|r| base.times[r] / side.times[r]).collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    (median(&mut ratios), lo, hi)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0) as f64 / 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn wanted_sides() -> Vec<String> {
    std::env::var("RBDJ_PEER_SIDES")
        .unwrap_or_else(|_| "rbdj,rbdj_splay1,okaywal,raft-engine,limit,limit_sized".to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect()
}

fn open_sides(threads: usize) -> Vec<Side> {
    let wanted = wanted_sides();
    let mut sides = Vec::new();
    for name in [
        "rbdj",
        "rbdj_splay1",
        "okaywal",
        "raft-engine",
        "limit",
        "limit_sized",
    ] {
        if !wanted.iter().any(|w| w == name) {
            continue;
        }
        let log: Box<dyn DurableLog> = match name {
            "rbdj" => Box::new(RbdjLog::open(4)),
            "rbdj_splay1" => Box::new(RbdjLog::open(1)),
            "okaywal" => Box::new(OkayWalLog::open()),
            "raft-engine" => Box::new(RaftEngineLog::open(threads)),
            "limit" => Box::new(RawGroupCommit::open(false)),
            _ => Box::new(RawGroupCommit::open(true)),
        };
        sides.push(Side {
            name,
            log,
            times: Vec::new(),
            latencies: Vec::new(),
        });
    }
    sides
}

fn run_config(threads: usize, n: u64, rounds: usize) {
    let data: Vec<Bytes> = (0..threads)
        .map(|t| Bytes::from(Rng::new(t as u64 + 21).bytes(PAYLOAD)))
        .collect();
    let mut sides = open_sides(threads);
    // Untimed warm-up: creates the files / objects and fills the page cache's metadata.
    for side in &sides {
        round(
            side.log.as_ref(),
            &data,
            threads,
            (n / 4).max(threads as u64),
        );
    }
    let k = sides.len();
    for r in 0..rounds {
        for j in 0..k {
            let side = &mut sides[(r + j) % k];
            let (t, lat) = round(side.log.as_ref(), &data, threads, n);
            side.times.push(t.as_secs_f64().max(1e-9));
            side.latencies.extend(lat);
        }
    }

    println!(
        "\n### {threads} writer{}, {} B payload, {n} appends × {rounds} rounds per side\n",
        if threads == 1 { "" } else { "s" },
        PAYLOAD
    );
    println!("| side | appends/s | MiB/s | p50 µs | p99 µs |\n|---|---|---|---|---|");
    for side in &mut sides {
        let total: f64 = side.times.iter().sum();
        let ops = (n * rounds as u64) as f64 / total;
        let mib = ops * PAYLOAD as f64 / f64::from(1 << 20);
        side.latencies.sort_unstable();
        println!(
            "| {} | {ops:.0} | {mib:.1} | {:.0} | {:.0} |",
            side.name,
            percentile(&side.latencies, 0.5),
            percentile(&side.latencies, 0.99)
        );
    }
    println!("\n| ratio (throughput, per round) | median [min–max] | goal ≥ 1.5 |\n|---|---|---|");
    let is_peer = |s: &&Side| !s.name.starts_with("rbdj") && !s.name.starts_with("limit");
    for ours in sides.iter().filter(|s| s.name.starts_with("rbdj")) {
        for peer in sides.iter().filter(is_peer) {
            let (med, lo, hi) = per_round_ratio(ours, peer, rounds);
            println!(
                "| {} / {} | **{med:.2}** [{lo:.2}–{hi:.2}] | {} |",
                ours.name,
                peer.name,
                if med >= 1.5 { "met" } else { "not met" }
            );
        }
    }
    if let Some(limit) = sides.iter().find(|s| s.name == "limit") {
        println!(
            "\n| fraction of the limit (throughput, per round) | median [min–max] |\n|---|---|"
        );
        for side in sides.iter().filter(|s| s.name != "limit") {
            let (med, lo, hi) = per_round_ratio(side, limit, rounds);
            println!("| {} / limit | **{med:.2}** [{lo:.2}–{hi:.2}] |", side.name);
        }
    }
    println!();
    for side in &sides {
        if let Some(note) = side.log.note() {
            println!("- {}: {note}", side.name);
        }
    }
    for side in sides {
        side.log.close();
    }
}

fn main() {
    let rounds = std::env::var("RBDJ_PEER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9usize)
        .max(1);
    // `cargo bench` passes `--bench` and maybe a filter; a filter picks one configuration.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    println!(
        "peer_logs: temp dir {} ({} sides interleaved per round, order rotating)",
        std::env::temp_dir().display(),
        wanted_sides().len()
    );
    println!("\n| side | durable when the append returns |\n|---|---|");
    for (name, promise) in PROMISES {
        println!("| {name} | {promise} |");
    }
    for (label, threads, n) in [("16w", 16usize, 3200u64), ("1w", 1, 400)] {
        if filter.as_deref().is_none_or(|f| label.contains(f)) {
            run_config(threads, n, rounds);
        }
    }
}
