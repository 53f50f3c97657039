//! Mirror replay against primary ingest, measured in the same run (issue 7 item 4).
//!
//! For each backend (`mem`: both sites on `MemStore`; `dir`: both sites on `DirStore` with
//! `SyncPolicy::Data`, i.e. `fdatasync` per store mutation on both sides, and memory-mapped
//! reads off so image writes go in place):
//!
//! 1. **Throughput.** A `MirrorAgent` bootstraps the replica of a 64 MiB image and is stopped
//!    (its client stays registered on the primary's journal, so nothing is trimmed). A backlog of
//!    4 KiB writes is journaled through `JournaledImage` from 4 threads as fast as possible
//!    (ingest writes/s, and process CPU µs per write). A restarted agent then replays the
//!    backlog: rate from its first to its last applied entry (and from the agent's start),
//!    process CPU µs per entry.
//! 2. **Lag** from the writer's acknowledgement on the primary to the event being applied to
//!    the replica image (`ReplayerOptions::on_applied`, which runs before the replica flush)
//!    while 4 writer threads run an open-loop schedule at 50 % of the measured ingest rate;
//!    p50 / p99 / max, for the default poll age (10 ms) and Ceph's (5 s); also at 10 % load and
//!    for sporadic writes (one every 400 ms, 24 writes).
//! 3. **Memory** with a large backlog (256 MiB of 4 KiB writes; `dir` only, with memory-mapped
//!    reads off so every byte read is heap): peak heap growth (a counting global allocator in
//!    this binary) while (a) a bare `LivePlayer` with the default 16 MiB prefetch budget reads
//!    the whole backlog and (b) a restarted agent replays it; plus the player's peak buffered
//!    bytes. The backlog is written with `SyncPolicy::None` (only to write it quickly).
//!
//! Run: `cargo bench -p rbdj-benches --bench replay` (about a minute; `-- mem` or `-- dir` for
//! one backend). Numbers and discussion: `docs/bench/replay.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    unsafe_code
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::JournalSettings;
use journal_core::event::Event;
use object_store_trait::{DirStore, DirStoreOptions, MemStore, ObjectStore, SyncPolicy};
use parking_lot::Mutex;
use rbdj_benches::wait_until;
use replay_engine::agent::{AgentOptions, MirrorAgent};
use replay_engine::live_player::{LiveOptions, LivePlayer};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Heap accounting: while `COUNTING` is on, every allocation adds and every deallocation
// subtracts its size, so `DELTA` is the heap size minus the heap size when counting started
// (whenever the freed blocks were allocated) and `PEAK` its maximum.

struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static DELTA: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(n: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = DELTA.fetch_add(n as isize, Ordering::Relaxed) + n as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn shrank(n: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        DELTA.fetch_sub(n as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping only
// touches atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` with heap counting on; returns its result and the peak heap growth in bytes.
fn peak_heap_growth<T>(f: impl FnOnce() -> T) -> (T, i64) {
    DELTA.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (out, PEAK.load(Ordering::SeqCst) as i64)
}

// ---------------------------------------------------------------------------------------------

const SHAPE: JournalShape = JournalShape {
    order: 22,
    splay_width: 4,
};
const BLOCK: u64 = 4096;
const IMAGE: u64 = 64 << 20;
const WRITERS: u64 = 4;
/// How often the bench looks whether a condition it waits for holds.
const POLL: Duration = Duration::from_millis(2);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Mem,
    Dir,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Mem => "mem",
            Backend::Dir => "dir",
        }
    }
}

/// A primary and a replica site with image `vol` (pool mirroring) on the primary. `dirs` keeps
/// the directory stores alive.
struct Pair {
    a: Site,
    b: Site,
    _dirs: Vec<TempDir>,
}

fn store(
    backend: Backend,
    options: &DirStoreOptions,
    dirs: &mut Vec<TempDir>,
) -> Arc<dyn ObjectStore> {
    match backend {
        Backend::Mem => Arc::new(MemStore::new()),
        Backend::Dir => {
            let dir = tempfile::tempdir().unwrap();
            let s = DirStore::open(dir.path(), options.clone()).unwrap();
            dirs.push(dir);
            Arc::new(s)
        }
    }
}

/// The directory stores' options: `fdatasync` per mutation, memory-mapped reads off (with
/// them on, `DirStore::write_at` rewrites the whole 4 MiB image object per write).
fn dir_options() -> DirStoreOptions {
    DirStoreOptions {
        sync: SyncPolicy::Data,
        mmap_reads: false,
        ..DirStoreOptions::default()
    }
}

fn pair(backend: Backend, options: &DirStoreOptions) -> Pair {
    let mut dirs = Vec::new();
    let a = Site::open(store(backend, options, &mut dirs), 1);
    let b = Site::open(store(backend, options, &mut dirs), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE, Some(SHAPE)).unwrap();
    Pair { a, b, _dirs: dirs }
}

/// Default agent options except a 20 ms image scan (faster start); `RBDJ_IDLE_POLL_MAX_MS`
/// overrides the live player's `idle_poll_age_max` (10 turns its idle backoff off).
fn agent_options() -> AgentOptions {
    let mut o = AgentOptions {
        scan_interval: Duration::from_millis(20),
        retry_interval: Duration::from_millis(20),
        // Restarted agents (the backlog runs) take their lease back at once.
        agent_id: Some("bench-agent".into()),
        ..AgentOptions::default()
    };
    if let Some(ms) = std::env::var("RBDJ_IDLE_POLL_MAX_MS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        o.replayer.live.idle_poll_age_max = Duration::from_millis(ms);
    }
    o
}

/// Starts an agent until the replica of `vol` is replaying, then stops it: the replica exists
/// and the agent's client is registered on the primary's journal.
fn bootstrap(p: &Pair) {
    let agent = MirrorAgent::start(p.b.clone(), p.a.clone(), agent_options()).unwrap();
    assert!(wait_until(Duration::from_secs(120), POLL, || agent
        .image_status("vol")
        .is_some_and(|s| s.state == ImageState::Replaying)));
    agent.stop();
}

fn writer_settings() -> JournalSettings {
    JournalSettings {
        writethrough_until_flush: false,
        ..JournalSettings::default()
    }
}

/// Journals `n` 4 KiB writes from `WRITERS` threads as fast as possible; returns writes/s and
/// process CPU per write.
fn ingest(p: &Pair, n: u64) -> (f64, Duration) {
    let writer = p.a.open_journaled("vol", writer_settings()).unwrap();
    let cpu = rbdj_benches::process_cpu().0;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let writer = &writer;
            s.spawn(move || {
                for i in (t..n).step_by(WRITERS as usize) {
                    let off = (i * BLOCK) % IMAGE;
                    let data = Bytes::from(vec![(i % 251) as u8 + 1; BLOCK as usize]);
                    writer.write(off, data).unwrap();
                }
            });
        }
    });
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let cpu = rbdj_benches::process_cpu().0.saturating_sub(cpu);
    writer.close().unwrap();
    (rate, cpu / n as u32)
}

/// First and last applied instants and the count.
#[derive(Default)]
struct Applied {
    first: Option<Instant>,
    last: Option<Instant>,
    n: u64,
}

/// Restarts the agent and waits until `n` entries are applied. Returns (entries/s first to
/// last, entries/s from the agent's start, CPU per entry).
fn replay(p: &Pair, n: u64, write_back_chunks: usize) -> (f64, f64, Duration) {
    let applied: Arc<Mutex<Applied>> = Arc::default();
    let hook = Arc::clone(&applied);
    let mut options = agent_options();
    options.replayer.write_back_chunks = write_back_chunks;
    options.replayer.on_applied = Some(Arc::new(move |_| {
        let mut g = hook.lock();
        let now = Instant::now();
        g.first.get_or_insert(now);
        g.last = Some(now);
        g.n += 1;
    }));
    let cpu = rbdj_benches::process_cpu().0;
    let start = Instant::now();
    let agent = MirrorAgent::start(p.b.clone(), p.a.clone(), options).unwrap();
    assert!(wait_until(Duration::from_secs(600), POLL, || applied
        .lock()
        .n
        >= n));
    let cpu = rbdj_benches::process_cpu().0.saturating_sub(cpu);
    let g = applied.lock();
    let (first, last) = (g.first.unwrap(), g.last.unwrap());
    let rate = g.n as f64 / last.duration_since(first).as_secs_f64().max(1e-9);
    let from_start = g.n as f64 / last.duration_since(start).as_secs_f64().max(1e-9);
    let per = cpu / g.n as u32;
    drop(g);
    agent.stop();
    (rate, from_start, per)
}

/// The write number a lag-run write carries in its first 8 bytes.
fn write_key(data: &Bytes) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&data[..8]);
    u64::from_le_bytes(k)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Lag percentiles at `rate` writes/s (open loop over `WRITERS` threads) with `poll`.
/// `n` writes (default: about 3 s' worth, at least 2,000).
fn lag(backend: Backend, rate: f64, poll: Duration, n: Option<u64>) -> (f64, usize, [Duration; 3]) {
    let p = pair(backend, &dir_options());
    let applied: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let hook = Arc::clone(&applied);
    let mut options = agent_options();
    options.replayer.live.poll_age = poll;
    options.replayer.on_applied = Some(Arc::new(move |e| {
        if let Event::AioWrite { data, .. } = &e.event {
            hook.lock()
                .entry(write_key(data))
                .or_insert_with(Instant::now);
        }
    }));
    let agent = MirrorAgent::start(p.b.clone(), p.a.clone(), options).unwrap();
    assert!(wait_until(Duration::from_secs(120), POLL, || agent
        .image_status("vol")
        .is_some_and(|s| s.state == ImageState::Replaying)));
    let writer = p.a.open_journaled("vol", writer_settings()).unwrap();
    // About 3 s of writes; each carries its number in its first 8 bytes.
    let n = n.unwrap_or(((rate * 3.0) as u64).max(2000));
    let interval = Duration::from_secs_f64(WRITERS as f64 / rate);
    let start = Instant::now() + Duration::from_millis(20);
    let acks: Vec<(u64, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|t| {
                let writer = &writer;
                s.spawn(move || {
                    let mut acks = Vec::new();
                    for (k, i) in (t..n).step_by(WRITERS as usize).enumerate() {
                        let due =
                            start + interval * k as u32 + interval * t as u32 / WRITERS as u32;
                        if let Some(d) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                        let mut data = vec![1u8; BLOCK as usize];
                        data[..8].copy_from_slice(&i.to_le_bytes());
                        writer
                            .write((i * BLOCK) % IMAGE, Bytes::from(data))
                            .unwrap();
                        acks.push((i, Instant::now()));
                    }
                    acks
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    assert!(wait_until(
        Duration::from_secs(120),
        POLL,
        || applied.lock().len() as u64 >= n
    ));
    writer.close().unwrap();
    agent.stop();
    let applied = applied.lock();
    // An event can be applied before its writer's ack returns (lag 0).
    let mut l: Vec<Duration> = acks
        .iter()
        .map(|(i, ack)| applied[i].saturating_duration_since(*ack))
        .collect();
    l.sort();
    let max = *l.last().unwrap();
    (
        achieved,
        l.len(),
        [percentile(&l, 0.5), percentile(&l, 0.99), max],
    )
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn run_backend(backend: Backend) {
    let name = backend.name();
    let backlog: u64 = match backend {
        Backend::Mem => 40_000,
        Backend::Dir => 10_000,
    };
    println!("\n## {name}: throughput (4 KiB writes, {WRITERS} writer threads, backlog {backlog})");
    let p = pair(backend, &dir_options());
    bootstrap(&p);
    let (ingest_rate, ingest_cpu) = ingest(&p, backlog);
    let (replay_rate, replay_from_start, replay_cpu) = replay(&p, backlog, 0);
    drop(p);
    // The same on a fresh pair with the replica's write-back cache (8 chunks = 32 MiB).
    let p = pair(backend, &dir_options());
    bootstrap(&p);
    let (ingest2, _) = ingest(&p, backlog);
    let (wb_rate, _, wb_cpu) = replay(&p, backlog, 8);
    drop(p);
    println!("| side | entries/s | CPU µs / entry |");
    println!("|---|---|---|");
    println!(
        "| ingest (JournaledImage) | {ingest_rate:.0} | {:.1} |",
        ingest_cpu.as_secs_f64() * 1e6
    );
    println!(
        "| replay (first→last applied) | {replay_rate:.0} | {:.1} |",
        replay_cpu.as_secs_f64() * 1e6
    );
    println!("| replay (from agent start) | {replay_from_start:.0} | – |");
    println!(
        "| replay, `write_back_chunks` = 8 (first→last; its own ingest run: {ingest2:.0}/s) | {wb_rate:.0} | {:.1} |",
        wb_cpu.as_secs_f64() * 1e6
    );
    println!(
        "ratio replay / ingest: {:.2} (from agent start: {:.2}; with write-back: {:.2})",
        replay_rate / ingest_rate,
        replay_from_start / ingest_rate,
        wb_rate / ingest2
    );

    println!("\n## {name}: lag ack → applied (target rate = fraction of the max ingest above)");
    println!("| load | poll age | achieved writes/s | samples | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    // `RBDJ_LAG_LOADS=0.2,0.3` measures other loads (poll age 10 ms) instead.
    let loads: Vec<(f64, Duration)> = match std::env::var("RBDJ_LAG_LOADS") {
        Ok(list) => list
            .split(',')
            .filter_map(|f| f.trim().parse().ok())
            .map(|f| (f, Duration::from_millis(10)))
            .collect(),
        Err(_) => vec![
            (0.5, Duration::from_millis(10)),
            (0.5, Duration::from_secs(5)),
            (0.1, Duration::from_millis(10)),
        ],
    };
    for (fraction, poll) in loads {
        let (achieved, samples, [p50, p99, max]) = lag(backend, ingest_rate * fraction, poll, None);
        println!(
            "| {:.0} % | {poll:?} | {achieved:.0} | {samples} | {:.2} ms | {:.2} ms | {:.2} ms |",
            fraction * 100.0,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    // Sporadic writes (one every 400 ms): each finds the replayer idle, so this shows the
    // first-entry-after-idle lag (bounded by the live player's idle backoff).
    let (achieved, samples, [p50, p99, max]) =
        lag(backend, 2.5, Duration::from_millis(10), Some(24));
    println!(
        "| sporadic | 10ms | {achieved:.1} | {samples} | {:.2} ms | {:.2} ms | {:.2} ms |",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );

    if backend == Backend::Dir {
        memory();
    }
}

/// Peak heap growth of a bare live player and of a replaying agent over a 256 MiB backlog.
fn memory() {
    let entries: u64 = 65_536; // 256 MiB of 4 KiB writes
    println!(
        "\n## dir: memory with a {} MiB backlog ({entries} entries)",
        (entries * BLOCK) >> 20
    );
    let options = DirStoreOptions {
        sync: SyncPolicy::None,
        mmap_reads: false,
        ..DirStoreOptions::default()
    };
    let p = pair(Backend::Dir, &options);
    bootstrap(&p);
    let _ = ingest(&p, entries);
    let remote_uuid = p.b.mirror_uuid().unwrap();
    let id = p.a.image_id("vol").unwrap();
    let header = p.a.journal_header(&id);
    let start = header.get_client(&remote_uuid).unwrap().commit_position;
    let budget = LiveOptions::default().prefetch_bytes_max;
    let ((count, peak_buffered), player_heap) = peak_heap_growth(|| {
        let mut live =
            LivePlayer::new(header, &remote_uuid, &start, LiveOptions::default()).unwrap();
        let mut count = 0u64;
        while live
            .next_timeout(Duration::from_millis(100))
            .unwrap()
            .is_some()
        {
            count += 1;
        }
        (count, live.player().peak_buffered_bytes())
    });
    let ((), agent_heap) = peak_heap_growth(|| {
        let _ = replay(&p, entries, 0);
    });
    println!(
        "| reader | entries read | peak heap growth | player peak buffered | prefetch budget |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| bare LivePlayer | {count} | {:.1} MiB | {:.1} MiB | {:.0} MiB |",
        mib(player_heap),
        mib(peak_buffered as i64),
        mib(budget as i64)
    );
    println!(
        "| MirrorAgent replay | {entries} | {:.1} MiB | – | {:.0} MiB |",
        mib(agent_heap),
        mib(budget as i64)
    );
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |b: Backend| filter.is_empty() || filter.iter().any(|f| f == b.name());
    println!("# replay vs ingest (issue 7 item 4)");
    for backend in [Backend::Mem, Backend::Dir] {
        if wanted(backend) {
            run_backend(backend);
        }
    }
}
