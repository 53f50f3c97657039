//! `rbdj demo`: two sites, a journaled primary image under a multi-threaded write workload, and
//! a mirror agent replicating it; then verifies the replica equals the primary.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use journal_client::image::BlockImage;
use journal_client::JournalSettings;
use journal_core::encoding::UTime;
use parking_lot::Mutex;
use replay_engine::agent::{AgentHandle, AgentOptions, MirrorAgent};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use replay_engine::status::ImageState;
use serde::Serialize;

use crate::cli::DemoArgs;
use crate::error::{CliError, CliResult};
use crate::output::Format;
use crate::site_spec::{site_store_options, SiteSpec};
use crate::stats::{percentile, Rng};

const IMAGE: &str = "demo";
/// How long the replica may take to catch up after the workload stops.
const CATCH_UP: Duration = Duration::from_secs(40);

/// The demo's final report (`--format json`).
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// The replica equals the primary, byte for byte.
    pub verified: bool,
    /// Acknowledged writes.
    pub writes: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Seconds the workload ran.
    pub seconds: f64,
    /// Acknowledged writes per second.
    pub iops: f64,
    /// Write acknowledgement latency, median (µs).
    pub ack_p50_us: f64,
    /// Write acknowledgement latency, 99th percentile (µs).
    pub ack_p99_us: f64,
    /// Lag from an event's journal timestamp to its application on the replica, median (ms).
    pub lag_p50_ms: f64,
    /// The same lag, 99th percentile (ms).
    pub lag_p99_ms: f64,
    /// Events the agent applied on the replica.
    pub events_applied: u64,
    /// Journal data bytes left on the primary after the workload (trimmed sets excluded).
    pub journal_bytes: u64,
    /// Time from the end of the workload until the replica matched the primary (ms).
    pub catch_up_ms: f64,
    /// Time from the agent's start until it replayed the new image (replica created and
    /// synced), before the workload started (ms).
    pub replica_ready_ms: f64,
    /// The `--rate` the writers were paced to (writes per second; 0: unpaced).
    pub rate: u64,
    /// CRC-32C of the primary image.
    pub primary_crc32c: String,
    /// CRC-32C of the replica image.
    pub replica_crc32c: String,
    /// Where the sites live.
    pub backend: String,
}

/// The demo's site `name`: a directory under `dir`, or memory.
fn open_site(dir: Option<&Path>, name: &str) -> CliResult<Site> {
    let spec = match dir {
        Some(d) => SiteSpec::Dir(d.join(name)),
        None => SiteSpec::Mem,
    };
    Ok(Site::open(spec.open_store(site_store_options())?, 1))
}

/// Whole-image CRC-32C, read in 4 MiB chunks.
pub fn image_crc(image: &dyn BlockImage) -> CliResult<u32> {
    let size = image.size();
    let mut crc = 0u32;
    let mut pos = 0u64;
    while pos < size {
        let len = (4u64 << 20).min(size - pos);
        crc = crc32c::crc32c_append(crc, &image.read(pos, len)?);
        pos += len;
    }
    Ok(crc)
}

fn images_equal(a: &dyn BlockImage, b: &dyn BlockImage) -> CliResult<bool> {
    if a.size() != b.size() {
        return Ok(false);
    }
    let size = a.size();
    let mut pos = 0u64;
    while pos < size {
        let len = (4u64 << 20).min(size - pos);
        if a.read(pos, len)? != b.read(pos, len)? {
            return Ok(false);
        }
        pos += len;
    }
    Ok(true)
}

fn journal_bytes(site: &Site, image_id: &str) -> u64 {
    let prefix = journal_core::layout::data_oid_prefix(site.pool_id(), image_id);
    let store = site.store();
    store
        .list(&prefix)
        .map(|oids| {
            oids.iter()
                .filter_map(|oid| store.stat(oid).ok())
                .map(|s| s.size)
                .sum()
        })
        .unwrap_or(0)
}

struct Workload {
    writes: AtomicU64,
    bytes: AtomicU64,
    latencies_us: Mutex<Vec<f64>>,
    stop: AtomicBool,
}

fn agent_options(lags: Arc<Mutex<Vec<f64>>>, applied: Arc<AtomicU64>) -> AgentOptions {
    let mut options = AgentOptions {
        scan_interval: Duration::from_millis(50),
        retry_interval: Duration::from_millis(50),
        ..AgentOptions::default()
    };
    // The replica is flushed at the replayer's defaults (every 1,024 IO events or 1 s): each
    // flush syncs every dirty replica object, and on disk flushing every 20 ms (as the demo did
    // until session 7) doubled the lag's median (`docs/bench/replay.md`).
    options.replayer.commit_interval = Duration::from_millis(50);
    // ObjectImage writes in place, so the replica needs no write-back cache.
    options.replayer.write_back_chunks = 0;
    options.replayer.on_applied = Some(Arc::new(move |event| {
        applied.fetch_add(1, Ordering::Relaxed);
        if !event.timestamp.is_zero() {
            let lag = UTime::now()
                .as_duration()
                .saturating_sub(event.timestamp.as_duration());
            lags.lock().push(lag.as_secs_f64() * 1e3);
        }
    }));
    options
}

fn progress_bar(seconds: u64) -> ProgressBar {
    let bar = ProgressBar::new(seconds.max(1));
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn status_line(agent: &AgentHandle, writes_per_s: f64, journal_bytes: u64, lag_ms: f64) -> String {
    let behind = agent
        .image_status(IMAGE)
        .map(|s| format!("{} ({} behind)", s.state, s.entries_behind))
        .unwrap_or_else(|| "starting".into());
    format!(
        "{writes_per_s:>8.0} writes/s | journal {:>7.1} MiB | replica {behind} | lag {lag_ms:.1} ms",
        journal_bytes as f64 / (1u64 << 20) as f64
    )
}

/// One writer's share of `--rate`: the instant its next write is due.
struct Pace {
    interval: Option<Duration>,
    due: Instant,
}

impl Pace {
    /// A writer's schedule when `threads` writers share `rate` writes per second (0: none).
    fn new(rate: u64, threads: usize) -> Self {
        Pace {
            interval: (rate > 0).then(|| Duration::from_secs_f64(threads as f64 / rate as f64)),
            due: Instant::now(),
        }
    }

    /// Sleeps until the next write is due (open loop: a late write does not push the later
    /// ones back).
    fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        if self.due > now {
            std::thread::sleep(self.due - now);
        }
        self.due += interval;
    }
}

/// Runs the demo and prints the summary to `out`.
pub fn run(args: &DemoArgs, out: &mut dyn Write) -> CliResult<()> {
    let report = run_demo(args)?;
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Format::Plain => print_table(&report, out)?,
    }
    if !report.verified {
        return Err(CliError::Invalid(
            "verification failed: the replica differs from the primary".into(),
        ));
    }
    Ok(())
}

fn print_table(r: &DemoReport, out: &mut dyn Write) -> CliResult<()> {
    let rows: Vec<(&str, String)> = vec![
        ("backend", r.backend.clone()),
        ("writes acknowledged", r.writes.to_string()),
        (
            "data written",
            format!("{:.1} MiB", r.bytes as f64 / 1048576.0),
        ),
        (
            "replica ready after",
            format!("{:.0} ms", r.replica_ready_ms),
        ),
        ("workload time", format!("{:.1} s", r.seconds)),
        (
            "write IOPS",
            match r.rate {
                0 => format!("{:.0} (unpaced)", r.iops),
                rate => format!("{:.0} (paced to {rate})", r.iops),
            },
        ),
        (
            "ack latency p50 / p99",
            format!("{:.0} / {:.0} µs", r.ack_p50_us, r.ack_p99_us),
        ),
        (
            "journal bytes",
            format!("{:.1} MiB", r.journal_bytes as f64 / 1048576.0),
        ),
        ("events applied on replica", r.events_applied.to_string()),
        (
            "replication lag p50 / p99",
            format!("{:.2} / {:.1} ms", r.lag_p50_ms, r.lag_p99_ms),
        ),
        ("catch-up after stop", format!("{:.0} ms", r.catch_up_ms)),
        ("primary crc32c", r.primary_crc32c.clone()),
        ("replica crc32c", r.replica_crc32c.clone()),
        (
            "verified (replica == primary)",
            if r.verified {
                "yes".into()
            } else {
                "NO".into()
            },
        ),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    writeln!(out, "rbdj demo summary")?;
    writeln!(out, "{}", "-".repeat(width + 24))?;
    for (k, v) in rows {
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}

fn run_demo(args: &DemoArgs) -> CliResult<DemoReport> {
    if args.threads == 0 || args.size_mib == 0 {
        return Err(CliError::Invalid(
            "--threads and --size-mib must be positive".into(),
        ));
    }
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)?;
    }
    let backend = match &args.dir {
        Some(d) => format!("dir:{} (DirStore, fdatasync per append)", d.display()),
        None => "mem: (MemStore)".to_owned(),
    };
    let primary = open_site(args.dir.as_deref(), "site-a")?;
    let replica = open_site(args.dir.as_deref(), "site-b")?;
    primary.set_mirror_mode(MirrorMode::Pool)?;
    if primary.image_info(IMAGE).is_ok() {
        primary.remove_image(IMAGE)?;
    }
    if replica.image_info(IMAGE).is_ok() {
        replica.remove_image(IMAGE)?;
    }
    let size = args.size_mib << 20;
    let shape = JournalShape {
        order: 22,
        splay_width: 4,
    };
    primary.create_image(IMAGE, size, Some(shape))?;
    let image_id = primary.image_id(IMAGE)?;

    let lags = Arc::new(Mutex::new(Vec::new()));
    let applied = Arc::new(AtomicU64::new(0));
    let agent = MirrorAgent::start(
        replica.clone(),
        primary.clone(),
        agent_options(Arc::clone(&lags), Arc::clone(&applied)),
    )?;
    // The lag is that of replication, not of the replica's first sync: start writing once
    // the agent replays the image.
    let agent_started = Instant::now();
    while !agent
        .image_status(IMAGE)
        .is_some_and(|s| s.state == ImageState::Replaying)
    {
        if agent_started.elapsed() > CATCH_UP {
            agent.stop();
            return Err(CliError::Invalid(format!(
                "the mirror agent did not start replaying the image within {} s",
                CATCH_UP.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let replica_ready_ms = agent_started.elapsed().as_secs_f64() * 1e3;

    let settings = JournalSettings {
        commit_age: Duration::from_millis(200),
        ..JournalSettings::default()
    };
    let disk = primary.open_journaled(IMAGE, settings)?;
    let workload = Workload {
        writes: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        latencies_us: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    };
    let bar = progress_bar(args.seconds);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let result: CliResult<()> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for t in 0..args.threads {
            let (disk, workload) = (&disk, &workload);
            handles.push(s.spawn(move || -> CliResult<()> {
                let mut rng = Rng::new(0x5eed ^ t as u64);
                let mut lat = Vec::new();
                let mut pace = Pace::new(args.rate, args.threads);
                while !workload.stop.load(Ordering::Relaxed) {
                    pace.wait();
                    let len = 4096u64 << rng.below(5); // 4 KiB .. 64 KiB
                    let blocks = (size - len) / 4096;
                    let offset = rng.below(blocks + 1) * 4096;
                    let data = Bytes::from(rng.bytes(len as usize));
                    let t0 = Instant::now();
                    disk.write(offset, data)?;
                    lat.push(t0.elapsed().as_secs_f64() * 1e6);
                    workload.writes.fetch_add(1, Ordering::Relaxed);
                    workload.bytes.fetch_add(len, Ordering::Relaxed);
                }
                workload.latencies_us.lock().extend(lat);
                Ok(())
            }));
        }
        let mut last = (Instant::now(), 0u64);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
            let writes = workload.writes.load(Ordering::Relaxed);
            let rate = (writes - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
            last = (Instant::now(), writes);
            let lag = lags.lock().last().copied().unwrap_or(0.0);
            bar.set_position(started.elapsed().as_secs());
            bar.set_message(status_line(
                &agent,
                rate,
                journal_bytes(&primary, &image_id),
                lag,
            ));
            if handles.iter().any(|h| h.is_finished()) {
                break;
            }
        }
        workload.stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join()
                .map_err(|_| CliError::Invalid("a writer thread panicked".into()))??;
        }
        Ok(())
    });
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    result?;
    disk.close()?;
    let journal_total = journal_bytes(&primary, &image_id);

    // Wait for the replica to catch up, then compare byte for byte.
    let stopped = Instant::now();
    let primary_image = primary.open_image(IMAGE)?;
    let mut verified = false;
    while stopped.elapsed() < CATCH_UP {
        if let Ok(replica_image) = replica.open_image(IMAGE) {
            if images_equal(primary_image.as_ref(), replica_image.as_ref())? {
                verified = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let catch_up_ms = stopped.elapsed().as_secs_f64() * 1e3;
    agent.stop();
    let primary_crc = image_crc(primary_image.as_ref())?;
    let replica_crc = match replica.open_image(IMAGE) {
        Ok(img) => format!("{:08x}", image_crc(img.as_ref())?),
        Err(_) => "missing".to_owned(),
    };

    let mut latencies = std::mem::take(&mut *workload.latencies_us.lock());
    let mut lag_samples = std::mem::take(&mut *lags.lock());
    let writes = workload.writes.load(Ordering::Relaxed);
    Ok(DemoReport {
        verified,
        writes,
        bytes: workload.bytes.load(Ordering::Relaxed),
        seconds,
        iops: writes as f64 / seconds.max(1e-9),
        ack_p50_us: percentile(&mut latencies, 50.0),
        ack_p99_us: percentile(&mut latencies, 99.0),
        lag_p50_ms: percentile(&mut lag_samples, 50.0),
        lag_p99_ms: percentile(&mut lag_samples, 99.0),
        events_applied: applied.load(Ordering::Relaxed),
        journal_bytes: journal_total,
        catch_up_ms,
        replica_ready_ms,
        rate: args.rate,
        primary_crc32c: format!("{primary_crc:08x}"),
        replica_crc32c: replica_crc,
        backend,
    })
}
