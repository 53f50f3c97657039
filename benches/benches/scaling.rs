//! Scaling (issue 7 item 5): should be flat.
//!
//! * `journal` — **append cost per event as the journal grows** from 1e3 to 1e7 entries.
//!   `JournaledImage` writes of 64 B (an `AioWrite` entry of about 150 B) to a `MemImage`, the
//!   journal in a `MemStore` (in memory: no disk in the way). A second client is registered on
//!   the journal and never commits, so nothing is trimmed: objects, sets, the header's omap and
//!   the commit bookkeeping all accumulate. Every append is timed: the entry counts are cut into
//!   windows `[N·10^-0.1, N)` on a log grid and the wall time per append of each window is
//!   reported at its end `N`. The windows below 1e5 are repeated on fresh journals
//!   (`SMALL_REPEATS`) and the median is taken. Series: journal order 24 (16 MiB objects,
//!   librbd's default) and order 16 (64 KiB objects: many sets), 1 writer; order 24, 4 writers.
//! * `agent` — **per-event replay cost as the number of images per agent grows**: 1, 10, 100,
//!   1000 journaled images on a `MemStore` primary, mirrored by one `MirrorAgent` (default
//!   options: 10 ms poll age, 100 ms checks) into a `MemStore` replica. The same total of 4 KiB
//!   writes is spread evenly over the images. Measured per image count: bootstrap time; the
//!   idle agent's process CPU and store operations per second (all replicas caught up, no
//!   writes); ingest alone (agent stopped; writers round-robin over all images from 4 threads);
//!   replay of that backlog by a restarted agent (wall from the agent's start and from its
//!   first to its last applied entry, CPU, per event); and live ingest-to-applied (the same
//!   writes again while the agent runs: wall and CPU per event until every event is applied).
//!
//! Results go to stdout (markdown tables) and `target/rbdj-bench/scaling.json`;
//! `python3 benches/plot_scaling.py` turns that into `docs/bench/scaling_*.png`.
//!
//! Run: `cargo bench -p rbdj-benches --bench scaling` (both parts, about 8–10 minutes: the 1e7
//! journals about 3, the 1000-image live phase on one `MemStore` about 4), or `-- journal` / `-- agent` for one part. `RBDJ_SCALING_MAX`
//! (default 1e7) caps the journal size; `RBDJ_SCALING_IMAGES` (default `1,10,100,1000`) sets the
//! image counts; `RBDJ_IDLE_POLL_MAX_MS` overrides the live player's `idle_poll_age_max`
//! (10 turns the idle backoff off: the behaviour before it existed).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{
    AppendGuard, MemStore, ObjectStat, ObjectStore, OmapBatch, Result as StoreResult, Watch,
};
use parking_lot::Mutex;
use rbdj_benches::run_threads;
use replay_engine::agent::{AgentHandle, AgentOptions, MirrorAgent};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

/// Repetitions (fresh journals) of the windows below `SMALL_LIMIT` entries.
const SMALL_REPEATS: usize = 5;
const SMALL_LIMIT: u64 = 100_000;

/// Resident set size of the process in bytes (`/proc/self/statm`, 4 KiB pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Part 1: journal growth.

struct Series {
    label: String,
    order: u8,
    writers: usize,
}

/// Window boundaries: 10^(2.9 + k/10) up to `max` (so the first window ends at 1e3).
fn grid(max: u64) -> Vec<u64> {
    let mut g: Vec<u64> = (0..=41)
        .map(|k| 10f64.powf(2.9 + f64::from(k) / 10.0).round() as u64)
        .filter(|&n| n <= max)
        .collect();
    g.dedup();
    g
}

/// Whether `n` is 1, 10, 100, ...
fn is_power_of_ten(n: u64) -> bool {
    n.to_string().trim_end_matches('0') == "1"
}

/// One journal grown to `max` entries; returns the seconds per append of each window
/// `[grid[i], grid[i+1])`, and (entries, journal objects, RSS) at each power of ten.
fn grow(series: &Series, max: u64) -> (Vec<f64>, Vec<(u64, usize, u64)>) {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("scaling", 1 << 20));
    let settings = JournalSettings {
        order: series.order,
        writethrough_until_flush: false,
        ..JournalSettings::default()
    };
    let journaled = JournaledImage::open(Arc::clone(&store), "scaling", image, settings).unwrap();
    journaled
        .header()
        .client_register("holdback", Bytes::new())
        .unwrap();
    let data: Vec<Bytes> = (0..series.writers)
        .map(|t| Bytes::from(vec![t as u8 + 1; 64]))
        .collect();
    let g = grid(max);
    let mut per_append = Vec::new();
    let mut marks = Vec::new();
    // Fill to the first grid point (untimed).
    let mut written = 0u64;
    let write_n = |n: u64, from: u64| {
        run_threads(
            series.writers,
            n,
            |t, i| {
                let off = ((from + i * series.writers as u64 + t as u64) * 64) % (1 << 20);
                journaled.write(off, data[t].clone()).unwrap();
            },
            |_| {},
        )
    };
    write_n(g[0], 0);
    written += g[0];
    for w in g.windows(2) {
        let n = w[1] - w[0];
        let t = write_n(n, written);
        written += n;
        per_append.push(t.as_secs_f64() / n as f64);
        if is_power_of_ten(w[1]) {
            let objects = store
                .list(&journal_core::layout::data_oid_prefix(0, "scaling"))
                .map(|l| l.len())
                .unwrap_or(0);
            marks.push((w[1], objects, rss_bytes()));
        }
    }
    journaled.close().unwrap();
    (per_append, marks)
}

fn journal_part(max: u64, json: &mut String) {
    let all = [
        Series {
            label: "order 24 (16 MiB objects), 1 writer".into(),
            order: 24,
            writers: 1,
        },
        Series {
            label: "order 16 (64 KiB objects), 1 writer".into(),
            order: 16,
            writers: 1,
        },
        Series {
            label: "order 24 (16 MiB objects), 4 writers".into(),
            order: 24,
            writers: 4,
        },
    ];
    let g = grid(max);
    println!("\n## journal growth: µs per 64 B append (the window of appends that ends at N entries, from 0.79 N)");
    let _ = write!(json, "\"journal\": {{\"payload_bytes\": 64, \"series\": [");
    for (si, series) in all.iter().enumerate() {
        let started = Instant::now();
        let (big, marks) = grow(series, max);
        let mut reps = vec![big];
        for _ in 1..SMALL_REPEATS {
            reps.push(grow(series, SMALL_LIMIT.min(max)).0);
        }
        let per: Vec<f64> = (0..g.len() - 1)
            .map(|i| median(reps.iter().filter_map(|r| r.get(i).copied()).collect()))
            .collect();
        println!(
            "\n### {} ({:.0} s)\n| N entries | µs / append | journal objects | RSS MiB |\n|---|---|---|---|",
            series.label,
            started.elapsed().as_secs_f64()
        );
        for (i, p) in per.iter().enumerate() {
            let end = g[i + 1];
            let mark = marks.iter().find(|m| m.0 == end);
            if is_power_of_ten(end) {
                let (objs, rss) = mark.map_or(("–".into(), "–".into()), |m| {
                    (
                        m.1.to_string(),
                        format!("{:.0}", m.2 as f64 / (1 << 20) as f64),
                    )
                });
                println!("| {end} | {:.2} | {objs} | {rss} |", p * 1e6);
            }
        }
        let points: Vec<String> = per
            .iter()
            .enumerate()
            .map(|(i, p)| format!("[{}, {:.4}]", g[i + 1], p * 1e6))
            .collect();
        let marks: Vec<String> = marks
            .iter()
            .map(|m| format!("[{}, {}, {}]", m.0, m.1, m.2))
            .collect();
        let _ = write!(
            json,
            "{}{{\"label\": \"{}\", \"order\": {}, \"writers\": {}, \"us_per_append\": [{}], \"objects_rss\": [{}]}}",
            if si > 0 { ", " } else { "" },
            series.label,
            series.order,
            series.writers,
            points.join(", "),
            marks.join(", ")
        );
    }
    json.push_str("]}");
}

// ---------------------------------------------------------------------------------------------
// Part 2: images per agent.

/// Counts store operations by kind (reads = read + stat + omap_get + omap_list + list).
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ObjectStore>,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Counting {
    fn new(inner: Arc<dyn ObjectStore>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        })
    }
    fn r(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
    fn w(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
    fn counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

impl ObjectStore for Counting {
    fn append(&self, oid: &str, data: &[Bytes], guard: &AppendGuard) -> StoreResult<u64> {
        self.w();
        self.inner.append(oid, data, guard)
    }
    fn read(&self, oid: &str, offset: u64, len: u64) -> StoreResult<Bytes> {
        self.r();
        self.inner.read(oid, offset, len)
    }
    fn stat(&self, oid: &str) -> StoreResult<ObjectStat> {
        self.r();
        self.inner.stat(oid)
    }
    fn remove(&self, oid: &str) -> StoreResult<()> {
        self.w();
        self.inner.remove(oid)
    }
    fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        self.r();
        self.inner.list(prefix)
    }
    fn write_full(&self, oid: &str, data: Bytes) -> StoreResult<()> {
        self.w();
        self.inner.write_full(oid, data)
    }
    fn write_at(&self, oid: &str, offset: u64, data: Bytes) -> StoreResult<()> {
        self.w();
        self.inner.write_at(oid, offset, data)
    }
    fn omap_get(&self, oid: &str, keys: &[&str]) -> StoreResult<BTreeMap<String, Bytes>> {
        self.r();
        self.inner.omap_get(oid, keys)
    }
    fn omap_list(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> StoreResult<Vec<(String, Bytes)>> {
        self.r();
        self.inner.omap_list(oid, start_after, prefix, max)
    }
    fn omap_apply(&self, oid: &str, batch: &OmapBatch) -> StoreResult<()> {
        self.w();
        self.inner.omap_apply(oid, batch)
    }
    fn watch(&self, oid: &str) -> StoreResult<Watch> {
        self.inner.watch(oid)
    }
    fn notify(&self, oid: &str, payload: Bytes) -> StoreResult<usize> {
        self.inner.notify(oid, payload)
    }
    fn notify_crosses_processes(&self) -> bool {
        self.inner.notify_crosses_processes()
    }
}

const BLOCK: u64 = 4096;
const IMAGE_SIZE: u64 = 4 << 20;
const SHAPE: JournalShape = JournalShape {
    order: 22,
    splay_width: 4,
};
/// 4 KiB writes in each of the live and backlog phases, spread over the images.
const TOTAL_EVENTS: u64 = 20_000;
const WRITERS: usize = 4;

fn name(i: usize) -> String {
    format!("img{i:04}")
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

fn all_replaying(agent: &AgentHandle, n: usize) -> bool {
    let st = agent.status();
    st.len() == n && st.iter().all(|s| s.state == ImageState::Replaying)
}

/// Applied-entry count and the instants of the first and last applied entry.
#[derive(Default)]
struct Applied {
    count: AtomicU64,
    span: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Applied {
    fn new() -> Arc<Applied> {
        Arc::default()
    }
    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    fn span(&self) -> Duration {
        match *self.span.lock() {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

/// Starts the agent (default options) with an applied-entry counter.
fn start_agent(b: &Site, a: &Site, applied: &Arc<Applied>) -> AgentHandle {
    let mut options = AgentOptions::default();
    if let Some(ms) = std::env::var("RBDJ_IDLE_POLL_MAX_MS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        options.replayer.live.idle_poll_age_max = Duration::from_millis(ms);
    }
    let counter = Arc::clone(applied);
    options.replayer.on_applied = Some(Arc::new(move |_| {
        counter.count.fetch_add(1, Ordering::Relaxed);
        let mut span = counter.span.lock();
        let now = Instant::now();
        span.0.get_or_insert(now);
        span.1 = Some(now);
    }));
    MirrorAgent::start(b.clone(), a.clone(), options).unwrap()
}

/// Writes `TOTAL_EVENTS` 4 KiB writes round-robin over `writers`' images from `WRITERS` threads.
fn write_spread(writers: &[JournaledImage]) {
    let n = writers.len() as u64;
    run_threads(
        WRITERS,
        TOTAL_EVENTS,
        |t, i| {
            let k = i * WRITERS as u64 + t as u64;
            let img = &writers[(k % n) as usize];
            let off = ((k / n) * BLOCK) % IMAGE_SIZE;
            img.write(off, Bytes::from(vec![(k % 251) as u8 + 1; BLOCK as usize]))
                .unwrap();
        },
        |_| {},
    );
}

#[derive(Debug, Default)]
struct AgentResult {
    images: usize,
    bootstrap_s: f64,
    idle_cpu_pct: f64,
    idle_reads_per_s: f64,
    idle_writes_per_s: f64,
    ingest_wall_us: f64,
    ingest_cpu_us: f64,
    backlog_wall_us: f64,
    backlog_span_us: f64,
    backlog_cpu_us: f64,
    live_wall_us: f64,
    live_cpu_us: f64,
}

fn agent_run(n: usize) -> AgentResult {
    let remote = Counting::new(Arc::new(MemStore::new()));
    let local = Counting::new(Arc::new(MemStore::new()));
    let a = Site::open(Arc::clone(&remote) as Arc<dyn ObjectStore>, 1);
    let b = Site::open(Arc::clone(&local) as Arc<dyn ObjectStore>, 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    for i in 0..n {
        a.create_image(&name(i), IMAGE_SIZE, Some(SHAPE)).unwrap();
    }
    let mut r = AgentResult {
        images: n,
        ..AgentResult::default()
    };

    // Bootstrap.
    let applied = Applied::new();
    let t = Instant::now();
    let agent = start_agent(&b, &a, &applied);
    assert!(wait_until(Duration::from_secs(600), || all_replaying(
        &agent, n
    )));
    r.bootstrap_s = t.elapsed().as_secs_f64();

    // Idle: everything caught up, nothing written.
    std::thread::sleep(Duration::from_millis(1000));
    let (c0, r0, w0) = (
        rbdj_benches::process_cpu().0,
        remote.counts(),
        local.counts(),
    );
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let secs = t.elapsed().as_secs_f64();
    let (c1, r1, w1) = (
        rbdj_benches::process_cpu().0,
        remote.counts(),
        local.counts(),
    );
    r.idle_cpu_pct = (c1 - c0).as_secs_f64() / secs * 100.0;
    r.idle_reads_per_s = ((r1.0 - r0.0) + (w1.0 - w0.0)) as f64 / secs;
    r.idle_writes_per_s = ((r1.1 - r0.1) + (w1.1 - w0.1)) as f64 / secs;

    // Ingest alone: the agent stopped, writers on every image (this is the backlog).
    agent.stop();
    let settings = JournalSettings {
        writethrough_until_flush: false,
        ..JournalSettings::default()
    };
    let writers: Vec<JournaledImage> = (0..n)
        .map(|i| a.open_journaled(&name(i), settings.clone()).unwrap())
        .collect();
    let (c0, t) = (rbdj_benches::process_cpu().0, Instant::now());
    write_spread(&writers);
    r.ingest_wall_us = t.elapsed().as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.ingest_cpu_us =
        (rbdj_benches::process_cpu().0 - c0).as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;

    // Backlog replay by a restarted agent.
    let applied = Applied::new();
    let (c0, t) = (rbdj_benches::process_cpu().0, Instant::now());
    let agent = start_agent(&b, &a, &applied);
    assert!(wait_until(Duration::from_secs(900), || applied.count() >= TOTAL_EVENTS));
    r.backlog_wall_us = t.elapsed().as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.backlog_cpu_us =
        (rbdj_benches::process_cpu().0 - c0).as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.backlog_span_us = applied.span().as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;

    // Live: the same writes again while the agent runs, until every event is applied.
    std::thread::sleep(Duration::from_millis(500));
    let target = applied.count() + TOTAL_EVENTS;
    let (c0, t) = (rbdj_benches::process_cpu().0, Instant::now());
    write_spread(&writers);
    assert!(wait_until(Duration::from_secs(900), || applied.count() >= target));
    r.live_wall_us = t.elapsed().as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.live_cpu_us = (rbdj_benches::process_cpu().0 - c0).as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    agent.stop();
    for w in &writers {
        w.close().unwrap();
    }
    r
}

fn agent_part(counts: &[usize], json: &mut String) {
    println!(
        "\n## images per agent: {TOTAL_EVENTS} 4 KiB writes spread over N images (live, then backlog)"
    );
    println!("| images | bootstrap s | idle CPU % (of one core) | idle store reads/s | idle store writes/s | ingest alone wall / CPU µs/event | backlog replay wall (first→last) / CPU µs/event | live wall / CPU µs/event |");
    println!("|---|---|---|---|---|---|---|---|");
    let results: Mutex<Vec<AgentResult>> = Mutex::new(Vec::new());
    for &n in counts {
        let r = agent_run(n);
        println!(
            "| {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} ({:.1}) / {:.1} | {:.1} / {:.1} |",
            r.images,
            r.bootstrap_s,
            r.idle_cpu_pct,
            r.idle_reads_per_s,
            r.idle_writes_per_s,
            r.ingest_wall_us,
            r.ingest_cpu_us,
            r.backlog_wall_us,
            r.backlog_span_us,
            r.backlog_cpu_us,
            r.live_wall_us,
            r.live_cpu_us
        );
        results.lock().push(r);
    }
    let rows: Vec<String> = results
        .lock()
        .iter()
        .map(|r| {
            format!(
                "{{\"images\": {}, \"bootstrap_s\": {:.3}, \"idle_cpu_pct\": {:.2}, \"idle_reads_per_s\": {:.1}, \"idle_writes_per_s\": {:.1}, \"ingest_wall_us\": {:.2}, \"ingest_cpu_us\": {:.2}, \"backlog_wall_us\": {:.2}, \"backlog_span_us\": {:.2}, \"backlog_cpu_us\": {:.2}, \"live_wall_us\": {:.2}, \"live_cpu_us\": {:.2}}}",
                r.images,
                r.bootstrap_s,
                r.idle_cpu_pct,
                r.idle_reads_per_s,
                r.idle_writes_per_s,
                r.ingest_wall_us,
                r.ingest_cpu_us,
                r.backlog_wall_us,
                r.backlog_span_us,
                r.backlog_cpu_us,
                r.live_wall_us,
                r.live_cpu_us
            )
        })
        .collect();
    let variant = format!(
        "idle_poll_age_max {}",
        std::env::var("RBDJ_IDLE_POLL_MAX_MS").map_or("default".into(), |v| format!("{v} ms")),
    );
    let _ = write!(
        json,
        "\"agent\": {{\"variant\": \"{variant}\", \"total_events\": {TOTAL_EVENTS}, \"io_bytes\": {BLOCK}, \"rows\": [{}]}}",
        rows.join(", ")
    );
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| filter.is_empty() || filter.iter().any(|f| f == part);
    let max: u64 = std::env::var("RBDJ_SCALING_MAX")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(10_000_000, |v| v as u64);
    let counts: Vec<usize> = std::env::var("RBDJ_SCALING_IMAGES")
        .unwrap_or_else(|_| "1,10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("# scaling (issue 7 item 5)");
    let mut parts = Vec::new();
    if wanted("journal") {
        let mut json = String::new();
        journal_part(max, &mut json);
        parts.push(json);
    }
    if wanted("agent") {
        let mut json = String::new();
        agent_part(&counts, &mut json);
        parts.push(json);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rbdj-bench");
    let _ = std::fs::create_dir_all(&dir);
    let file = if filter.len() == 1 {
        format!("scaling-{}.json", filter[0])
    } else {
        "scaling.json".into()
    };
    let path = dir.join(file);
    std::fs::write(&path, format!("{{{}}}\n", parts.join(", "))).unwrap();
    println!("\nwrote {}", path.display());
}
