//! Part 2 of the scaling bench (`agent`): images per agent. See `scaling.rs`'s module docs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{
    Hook, Intercept, MemStore, ObjectStore, Op, OpKind, Result as StoreResult,
};
use parking_lot::Mutex;
use rbdj_benches::{run_threads, wait_until};
use replay_engine::agent::{AgentHandle, AgentOptions, MirrorAgent};
use replay_engine::live_player::LiveOptions;
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;

// Part 2: images per agent.

/// Counts store operations by kind: reads (read, stat, omap_get, omap_list, list) and writes
/// (the mutations); watches and notifications are not counted.
#[derive(Debug, Default)]
struct OpCounts {
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Hook for OpCounts {
    fn before(&self, op: Op<'_>) -> StoreResult<()> {
        let kind = op.kind();
        if kind.is_mutation() {
            self.writes.fetch_add(1, Ordering::Relaxed);
        } else if !matches!(kind, OpKind::Watch | OpKind::Notify) {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// A store that counts its operations ([`OpCounts`]).
type Counting = Intercept<Arc<dyn ObjectStore>, OpCounts>;

fn counting(inner: Arc<dyn ObjectStore>) -> Arc<Counting> {
    Arc::new(Intercept::new(inner))
}

/// (reads, writes) so far.
fn counts(store: &Counting) -> (u64, u64) {
    let c = store.hook();
    (
        c.reads.load(Ordering::Relaxed),
        c.writes.load(Ordering::Relaxed),
    )
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
/// How often the bench looks whether a condition it waits for holds.
const POLL: Duration = Duration::from_millis(5);

fn name(i: usize) -> String {
    format!("img{i:04}")
}

/// CPU time of this process's threads whose name starts with `prefix` (from each thread's
/// `schedstat`, in ns: precise where the 10 ms ticks of `stat` are not), and how many there are.
/// The agent names its threads `mirror-…`; the writers' `JournaledImage`s name theirs `rbdj-…`.
fn threads_cpu(prefix: &str) -> (Duration, usize) {
    let mut ns = 0u64;
    let mut count = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = task.path();
        let named = std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.starts_with(prefix));
        if !named {
            continue;
        }
        count += 1;
        ns += std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
    }
    (Duration::from_nanos(ns), count)
}

/// Threads of this process.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
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
    if let Some(n) = replay_threads() {
        options.replay_threads = n;
    }
    options.replayer.live.header_poll_age = header_poll_age();
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

/// `RBDJ_HEADER_POLL_MS`: the live player's `header_poll_age` (the safety-net poll of an idle
/// image where notifications are complete; default: `LiveOptions`' default).
fn header_poll_age() -> Duration {
    std::env::var("RBDJ_HEADER_POLL_MS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(
            LiveOptions::default().header_poll_age,
            Duration::from_millis,
        )
}

/// `RBDJ_REPLAY_THREADS`: the agent's replay threads (default: `AgentOptions`' default).
fn replay_threads() -> Option<usize> {
    std::env::var("RBDJ_REPLAY_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
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
    idle_agent_cpu_pct: f64,
    idle_reads_per_s: f64,
    idle_writes_per_s: f64,
    ingest_wall_us: f64,
    ingest_cpu_us: f64,
    backlog_wall_us: f64,
    backlog_span_us: f64,
    backlog_cpu_us: f64,
    backlog_agent_cpu_us: f64,
    live_wall_us: f64,
    live_cpu_us: f64,
    live_agent_cpu_us: f64,
    live_agent_busy_us: f64,
    agent_threads: usize,
    live_threads: usize,
}

fn agent_run(n: usize) -> AgentResult {
    let remote = counting(Arc::new(MemStore::new()));
    let local = counting(Arc::new(MemStore::new()));
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
    assert!(wait_until(
        Duration::from_secs(600),
        POLL,
        || all_replaying(&agent, n)
    ));
    r.bootstrap_s = t.elapsed().as_secs_f64();

    // Idle: everything caught up, nothing written. The idle backoff doubles each image's
    // poll up to `header_poll_age`: settle for two of those (at least 1 s) and measure over
    // two more (at least 3 s), so the window sees the steady state.
    let poll = header_poll_age();
    std::thread::sleep(poll.saturating_mul(2).max(Duration::from_secs(1)));
    let (c0, r0, w0) = (
        rbdj_benches::process_cpu().0,
        counts(&remote),
        counts(&local),
    );
    let a0 = threads_cpu("mirror-").0;
    let t = Instant::now();
    std::thread::sleep(poll.saturating_mul(2).max(Duration::from_secs(3)));
    let secs = t.elapsed().as_secs_f64();
    let a1 = threads_cpu("mirror-").0;
    let (c1, r1, w1) = (
        rbdj_benches::process_cpu().0,
        counts(&remote),
        counts(&local),
    );
    r.idle_cpu_pct = (c1 - c0).as_secs_f64() / secs * 100.0;
    r.idle_agent_cpu_pct = (a1 - a0).as_secs_f64() / secs * 100.0;
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

    // Backlog replay by a restarted agent (the agent's threads are new: their CPU starts at 0).
    let applied = Applied::new();
    let (c0, t) = (rbdj_benches::process_cpu().0, Instant::now());
    let agent = start_agent(&b, &a, &applied);
    assert!(wait_until(Duration::from_secs(900), POLL, || applied
        .count()
        >= TOTAL_EVENTS));
    r.backlog_wall_us = t.elapsed().as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.backlog_cpu_us =
        (rbdj_benches::process_cpu().0 - c0).as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.backlog_span_us = applied.span().as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    let (agent_cpu, agent_threads) = threads_cpu("mirror-");
    r.backlog_agent_cpu_us = agent_cpu.as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.agent_threads = agent_threads;

    // Live: the same writes again while the agent runs, until every event is applied.
    std::thread::sleep(Duration::from_millis(500));
    let target = applied.count() + TOTAL_EVENTS;
    let a0 = threads_cpu("mirror-").0;
    let (c0, t) = (rbdj_benches::process_cpu().0, Instant::now());
    write_spread(&writers);
    assert!(wait_until(Duration::from_secs(900), POLL, || applied
        .count()
        >= target));
    r.live_wall_us = t.elapsed().as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.live_cpu_us = (rbdj_benches::process_cpu().0 - c0).as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.live_agent_cpu_us = (threads_cpu("mirror-").0 - a0).as_secs_f64() * 1e6 / TOTAL_EVENTS as f64;
    r.live_threads = thread_count();
    // What the agent spent on the events: its CPU minus what it spends idle in as much time
    // (the polling of N images, which does not depend on the events).
    r.live_agent_busy_us =
        (r.live_agent_cpu_us - r.idle_agent_cpu_pct / 100.0 * r.live_wall_us).max(0.0);
    agent.stop();
    for w in &writers {
        w.close().unwrap();
    }
    r
}

pub fn agent_part(counts: &[usize], json: &mut String) {
    println!(
        "\n## images per agent: {TOTAL_EVENTS} 4 KiB writes spread over N images (live, then backlog)"
    );
    println!("| images | bootstrap s | idle CPU % of one core (process / agent threads) | idle store reads/s | idle store writes/s | ingest alone wall / CPU µs/event | backlog replay wall (first→last) / CPU / agent CPU µs/event | live wall / CPU / agent CPU (above idle) µs/event | agent threads / all threads (live) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let results: Mutex<Vec<AgentResult>> = Mutex::new(Vec::new());
    for &n in counts {
        let r = agent_run(n);
        println!(
            "| {} | {:.2} | {:.1} / {:.1} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} ({:.1}) / {:.1} / {:.1} | {:.1} / {:.1} / {:.1} ({:.1}) | {} / {} |",
            r.images,
            r.bootstrap_s,
            r.idle_cpu_pct,
            r.idle_agent_cpu_pct,
            r.idle_reads_per_s,
            r.idle_writes_per_s,
            r.ingest_wall_us,
            r.ingest_cpu_us,
            r.backlog_wall_us,
            r.backlog_span_us,
            r.backlog_cpu_us,
            r.backlog_agent_cpu_us,
            r.live_wall_us,
            r.live_cpu_us,
            r.live_agent_cpu_us,
            r.live_agent_busy_us,
            r.agent_threads,
            r.live_threads
        );
        results.lock().push(r);
    }
    let rows: Vec<String> = results
        .lock()
        .iter()
        .map(|r| {
            format!(
                "{{\"images\": {}, \"bootstrap_s\": {:.3}, \"idle_cpu_pct\": {:.2}, \"idle_agent_cpu_pct\": {:.2}, \"idle_reads_per_s\": {:.1}, \"idle_writes_per_s\": {:.1}, \"ingest_wall_us\": {:.2}, \"ingest_cpu_us\": {:.2}, \"backlog_wall_us\": {:.2}, \"backlog_span_us\": {:.2}, \"backlog_cpu_us\": {:.2}, \"backlog_agent_cpu_us\": {:.2}, \"live_wall_us\": {:.2}, \"live_cpu_us\": {:.2}, \"live_agent_cpu_us\": {:.2}, \"live_agent_busy_us\": {:.2}, \"agent_threads\": {}, \"live_threads\": {}}}",
                r.images,
                r.bootstrap_s,
                r.idle_cpu_pct,
                r.idle_agent_cpu_pct,
                r.idle_reads_per_s,
                r.idle_writes_per_s,
                r.ingest_wall_us,
                r.ingest_cpu_us,
                r.backlog_wall_us,
                r.backlog_span_us,
                r.backlog_cpu_us,
                r.backlog_agent_cpu_us,
                r.live_wall_us,
                r.live_cpu_us,
                r.live_agent_cpu_us,
                r.live_agent_busy_us,
                r.agent_threads,
                r.live_threads
            )
        })
        .collect();
    let variant = format!(
        "idle_poll_age_max {}, header_poll_age {} ms, replay threads {}",
        std::env::var("RBDJ_IDLE_POLL_MAX_MS").map_or("default".into(), |v| format!("{v} ms")),
        header_poll_age().as_millis(),
        replay_threads().map_or("default".into(), |n| n.to_string()),
    );
    let _ = write!(
        json,
        "\"agent\": {{\"variant\": \"{variant}\", \"total_events\": {TOTAL_EVENTS}, \"io_bytes\": {BLOCK}, \"rows\": [{}]}}",
        rows.join(", ")
    );
}
