//! `rbdj bench`: the same write workload against a journaled image and the same kind of image
//! unjournaled, on one backend, in one run; reports both and their ratio.
//!
//! Durability at acknowledgement is the same on both sides:
//! * `dir:PATH` — unjournaled: each write goes to a sparse file and is `fdatasync`ed before it
//!   is acknowledged (like Ceph's unjournaled write, durable on the OSD when acked). Journaled:
//!   each write is acknowledged once its journal entry is `fdatasync`ed in a `DirStore`; the
//!   image write follows asynchronously and is replayed from the journal after a crash.
//! * `mem:` — both sides keep everything in memory (durable for the life of the process).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage, SparseFileImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{DirStore, DirStoreOptions, MemStore, ObjectStore};
use parking_lot::Mutex;
use serde::Serialize;

use crate::cli::{parse_size, BenchArgs};
use crate::error::{CliError, CliResult};
use crate::output::Format;
use crate::site_spec::SiteSpec;
use crate::stats::{percentile, Rng};

/// One side's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct SideResult {
    /// Acknowledged writes per second.
    pub iops: f64,
    /// MiB per second.
    pub mib_per_s: f64,
    /// Median acknowledgement latency (µs).
    pub p50_us: f64,
    /// 99th percentile acknowledgement latency (µs).
    pub p99_us: f64,
    /// Writes completed.
    pub writes: u64,
}

/// `rbdj bench --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Backend (`mem:` or `dir:PATH`).
    pub site: String,
    /// Bytes per write.
    pub io_size: u64,
    /// Writer threads.
    pub threads: usize,
    /// Journaled writes per second.
    pub journaled_iops: f64,
    /// Unjournaled writes per second.
    pub unjournaled_iops: f64,
    /// `journaled_iops / unjournaled_iops`.
    pub ratio: f64,
    /// Journaled median latency (µs).
    pub p50_us: f64,
    /// Journaled 99th percentile latency (µs).
    pub p99_us: f64,
    /// Unjournaled median latency (µs).
    pub unjournaled_p50_us: f64,
    /// Unjournaled 99th percentile latency (µs).
    pub unjournaled_p99_us: f64,
    /// Journaled MiB/s.
    pub journaled_mib_per_s: f64,
    /// Unjournaled MiB/s.
    pub unjournaled_mib_per_s: f64,
    /// What "acknowledged" means on this backend.
    pub durability: String,
    /// `preconditioned` (each image written in full before its run) or `thin` (`--thin`).
    pub image: String,
    /// `steady` (three object sets written and trimmed before the run) or `fresh`
    /// (`--fresh-journal`).
    pub journal: String,
}

/// Runs `threads` writers for `seconds` calling `write(offset, data)`; returns the measurements.
fn drive(
    label: &str,
    threads: usize,
    seconds: u64,
    io_size: u64,
    image_size: u64,
    write: &(dyn Fn(u64, Bytes) -> CliResult<()> + Sync),
) -> CliResult<SideResult> {
    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let latencies = Mutex::new(Vec::new());
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(seconds.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}] {bar:30}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_owned());
    std::thread::scope(|s| -> CliResult<()> {
        let mut handles = Vec::new();
        for t in 0..threads {
            let (stop, writes, latencies) = (&stop, &writes, &latencies);
            handles.push(s.spawn(move || -> CliResult<()> {
                let mut rng = Rng::new(0xbe4c4 + t as u64);
                let blocks = image_size / io_size;
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let offset = rng.below(blocks) * io_size;
                    let data = Bytes::from(rng.bytes(io_size as usize));
                    let t0 = Instant::now();
                    write(offset, data)?;
                    lat.push(t0.elapsed().as_secs_f64() * 1e6);
                    writes.fetch_add(1, Ordering::Relaxed);
                }
                latencies.lock().extend(lat);
                Ok(())
            }));
        }
        let deadline = started + Duration::from_secs(seconds);
        while Instant::now() < deadline && !handles.iter().any(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            bar.set_position(started.elapsed().as_secs());
        }
        bar.finish_and_clear();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join()
                .map_err(|_| CliError::Invalid("a writer thread panicked".into()))??;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let n = writes.load(Ordering::Relaxed);
    let mut lat = latencies.into_inner();
    Ok(SideResult {
        iops: n as f64 / elapsed,
        mib_per_s: (n * io_size) as f64 / elapsed / 1048576.0,
        p50_us: percentile(&mut lat, 50.0),
        p99_us: percentile(&mut lat, 99.0),
        writes: n,
    })
}

/// A fresh image of `size` bytes; unless `thin`, written in full (and flushed) before the
/// run, so that both sides overwrite allocated blocks (their fastest case) instead of
/// allocating on the first write to each block.
fn new_image(site: &SiteSpec, name: &str, size: u64, thin: bool) -> CliResult<Arc<dyn BlockImage>> {
    let image = fresh_image(site, name, size)?;
    if !thin {
        let fill = Bytes::from(Rng::new(3).bytes(1 << 20));
        let mut at = 0;
        while at < size {
            let len = (size - at).min(fill.len() as u64);
            image.write(at, fill.slice(..len as usize))?;
            at += len;
        }
        image.flush()?;
    }
    Ok(image)
}

fn fresh_image(site: &SiteSpec, name: &str, size: u64) -> CliResult<Arc<dyn BlockImage>> {
    Ok(match site {
        SiteSpec::Mem => Arc::new(MemImage::new(name, size)),
        SiteSpec::Dir(path) => {
            let dir = path.join(name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(&dir)?;
            Arc::new(SparseFileImage::create(&dir, name, size)?)
        }
    })
}

fn journal_store(site: &SiteSpec) -> CliResult<Arc<dyn ObjectStore>> {
    Ok(match site {
        SiteSpec::Mem => Arc::new(MemStore::new()),
        SiteSpec::Dir(path) => {
            let dir = path.join("bench-journal");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            Arc::new(DirStore::open(&dir, DirStoreOptions::default())?)
        }
    })
}

/// Runs the benchmark and prints the report.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> CliResult<()> {
    let report = measure(args)?;
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Format::Plain => {
            writeln!(
                out,
                "rbdj bench: random {} B writes, {} threads, {} s per side on {}",
                report.io_size, report.threads, args.seconds, report.site
            )?;
            writeln!(out, "durability at ack: {}", report.durability)?;
            writeln!(out, "images: {}", report.image)?;
            writeln!(out, "journal: {}", report.journal)?;
            writeln!(
                out,
                "{:<12} {:>10} {:>10} {:>10} {:>10}",
                "", "IOPS", "MiB/s", "p50 µs", "p99 µs"
            )?;
            writeln!(
                out,
                "{:<12} {:>10.0} {:>10.1} {:>10.0} {:>10.0}",
                "journaled",
                report.journaled_iops,
                report.journaled_mib_per_s,
                report.p50_us,
                report.p99_us
            )?;
            writeln!(
                out,
                "{:<12} {:>10.0} {:>10.1} {:>10.0} {:>10.0}",
                "unjournaled",
                report.unjournaled_iops,
                report.unjournaled_mib_per_s,
                report.unjournaled_p50_us,
                report.unjournaled_p99_us
            )?;
            writeln!(
                out,
                "ratio (journaled / unjournaled IOPS): {:.3}",
                report.ratio
            )?;
        }
    }
    Ok(())
}

/// Measures both sides.
pub fn measure(args: &BenchArgs) -> CliResult<BenchReport> {
    let io_size = parse_size(&args.io_size).map_err(CliError::Invalid)?;
    let size = args.size_mib << 20;
    if io_size == 0 || io_size % 512 != 0 || io_size > size || args.threads == 0 {
        return Err(CliError::Invalid(
            "--io-size must be a positive multiple of 512 no larger than the image, and --threads positive".into(),
        ));
    }
    if let SiteSpec::Dir(path) = &args.site {
        std::fs::create_dir_all(path)?;
    }
    let durability = match &args.site {
        SiteSpec::Mem => "in memory on both sides".to_owned(),
        SiteSpec::Dir(_) => {
            "fdatasync before ack on both sides (journal entry vs data write)".to_owned()
        }
    };

    // Unjournaled: write + flush (fdatasync on a file) before the write counts as acknowledged.
    let plain = new_image(&args.site, "bench-unjournaled", size, args.thin)?;
    let unjournaled = drive(
        "unjournaled",
        args.threads,
        args.seconds,
        io_size,
        size,
        &|off, data| {
            plain.write(off, data)?;
            plain.flush()?;
            Ok(())
        },
    )?;
    drop(plain);

    // Journaled: acknowledged once the journal entry is durable.
    let image = new_image(&args.site, "bench-journaled", size, args.thin)?;
    let settings = JournalSettings {
        writethrough_until_flush: false,
        ..JournalSettings::default()
    };
    let set_bytes = u64::from(settings.splay_width) << settings.order;
    let disk = JournaledImage::open(journal_store(&args.site)?, "bench", image, settings)?;
    if !args.fresh_journal {
        warm_up(&disk, set_bytes, size)?;
    }
    let journaled = drive(
        "journaled",
        args.threads,
        args.seconds,
        io_size,
        size,
        &|off, data| {
            disk.write(off, data)?;
            Ok(())
        },
    )?;
    disk.close()?;
    cleanup(&args.site);

    Ok(BenchReport {
        site: args.site.to_string(),
        io_size,
        threads: args.threads,
        journaled_iops: journaled.iops,
        unjournaled_iops: unjournaled.iops,
        ratio: journaled.iops / unjournaled.iops.max(1e-9),
        p50_us: journaled.p50_us,
        p99_us: journaled.p99_us,
        unjournaled_p50_us: unjournaled.p50_us,
        unjournaled_p99_us: unjournaled.p99_us,
        journaled_mib_per_s: journaled.mib_per_s,
        unjournaled_mib_per_s: unjournaled.mib_per_s,
        durability,
        image: if args.thin { "thin" } else { "preconditioned" }.to_owned(),
        journal: if args.fresh_journal {
            "fresh"
        } else {
            "steady"
        }
        .to_owned(),
    })
}

/// Brings a new journal to its steady state: three object sets (`set_bytes` each) and a bit
/// more of 1 MiB writes over the image (of `size` bytes), applied, committed and trimmed, so
/// that the measured appends go to later sets (on a `DirStore`, into the files of the trimmed
/// objects instead of new ones).
fn warm_up(disk: &JournaledImage, set_bytes: u64, size: u64) -> CliResult<()> {
    let fill = Bytes::from(Rng::new(4).bytes(1 << 20));
    let step = size.min(fill.len() as u64);
    let mut written = 0;
    let mut at = 0;
    while written <= 3 * set_bytes {
        if at + step > size {
            at = 0;
        }
        disk.write(at, fill.slice(..step as usize))?;
        at += step;
        written += step;
    }
    disk.wait_applied()?;
    disk.flush_commit_position()?;
    Ok(())
}

fn cleanup(site: &SiteSpec) {
    if let SiteSpec::Dir(path) = site {
        for name in ["bench-unjournaled", "bench-journaled", "bench-journal"] {
            let p: &Path = path.as_ref();
            let _ = std::fs::remove_dir_all(p.join(name));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn images_are_written_in_full_unless_thin() {
        // 1.5 MiB: the last fill is a partial one.
        let size = 3 << 19;
        let full = new_image(&SiteSpec::Mem, "p", size, false).unwrap();
        let fill = Rng::new(3).bytes(1 << 20);
        let got = full.read(0, size).unwrap();
        assert_eq!(&got[..1 << 20], &fill[..]);
        assert_eq!(&got[1 << 20..], &fill[..size as usize - (1 << 20)]);
        let dir = tempfile::tempdir().unwrap();
        let site = SiteSpec::Dir(dir.path().to_path_buf());
        let on_disk = new_image(&site, "d", size, false).unwrap();
        assert_eq!(on_disk.read(0, size).unwrap(), got);
        let thin = new_image(&SiteSpec::Mem, "t", size, true).unwrap();
        assert!(thin.read(0, size).unwrap().iter().all(|b| *b == 0));
    }

    #[test]
    fn warm_up_moves_the_journal_past_three_trimmed_sets() {
        // Small objects (order 16, 64 KiB) keep the test quick; the bench uses librbd's 16 MiB.
        let settings = JournalSettings {
            order: 16,
            writethrough_until_flush: false,
            ..JournalSettings::default()
        };
        let set_bytes = u64::from(settings.splay_width) << settings.order;
        let pool = settings.name_pool_id;
        let store = Arc::new(MemStore::new());
        let size = 4 << 20;
        let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("w", size));
        let disk = JournaledImage::open(store.clone(), "bench", image, settings).unwrap();
        assert_eq!(disk.active_set(), 0);
        warm_up(&disk, set_bytes, size).unwrap();
        assert!(disk.active_set() >= 3, "active set {}", disk.active_set());
        // The first set's objects were trimmed once the commit position passed them.
        let names = store
            .list(&journal_core::layout::data_oid_prefix(pool, "bench"))
            .unwrap();
        assert!(!names.is_empty());
        let first = journal_core::layout::data_oid(pool, "bench", 0);
        assert!(!names.contains(&first), "{first} still there: {names:?}");
        // What was written is what the image holds (the first write went to offset 0).
        let fill = Rng::new(4).bytes(1 << 20);
        assert!(
            disk.read(0, 1 << 20).unwrap() == fill,
            "image differs from the fill"
        );
    }
}
