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
//!   The writers (N `JournaledImage`s: 4 recorder workers, an applier and a commit thread
//!   each, so about 6 threads per image) run in the same process as the agent, so the
//!   process CPU mixes both sides: the **agent's own CPU** is reported apart, summed over the
//!   threads named `mirror-…` from `/proc/self/task/*/schedstat` (ns), with its thread count.
//!   "Above idle" subtracts what the agent spends idle (polling N images) in as much time.
//!   Code is in `scaling_agent/mod.rs`.
//!
//! Results go to stdout (markdown tables) and `target/rbdj-bench/scaling.json`;
//! `python3 benches/plot_scaling.py` turns that into `docs/bench/scaling_*.png`.
//!
//! Run: `cargo bench -p rbdj-benches --bench scaling` (both parts, about 5 minutes: the 1e7
//! journals about 3), or `-- journal` / `-- agent` for one part. `RBDJ_SCALING_MAX` (default
//! 1e7) caps the journal size; `RBDJ_SCALING_IMAGES` (default `1,10,100,1000`) sets the image
//! counts; `RBDJ_IDLE_POLL_MAX_MS` overrides the live player's `idle_poll_age_max` (10 turns
//! the idle backoff off: the behaviour before it existed), `RBDJ_HEADER_POLL_MS` its
//! `header_poll_age`, and `RBDJ_REPLAY_THREADS` the agent's `replay_threads`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{MemStore, ObjectStore};
use rbdj_benches::{process_cpu, run_threads};

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

/// What [`grow`] records at each power of ten.
struct Mark {
    entries: u64,
    objects: usize,
    rss: u64,
    /// Minor page faults per append in the window that ends here (whole process).
    faults_per_append: f64,
    /// Process CPU per append in that window, in µs (10 ms ticks: coarse below ~1e5).
    cpu_us_per_append: f64,
}

/// One journal grown to `max` entries; returns the seconds per append of each window
/// `[grid[i], grid[i+1])`, and a [`Mark`] at each power of ten.
fn grow(series: &Series, max: u64) -> (Vec<f64>, Vec<Mark>) {
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
        let (cpu0, faults0) = process_cpu();
        let t = write_n(n, written);
        let (cpu1, faults1) = process_cpu();
        written += n;
        per_append.push(t.as_secs_f64() / n as f64);
        if is_power_of_ten(w[1]) {
            let objects = store
                .list(&journal_core::layout::data_oid_prefix(0, "scaling"))
                .map(|l| l.len())
                .unwrap_or(0);
            marks.push(Mark {
                entries: w[1],
                objects,
                rss: rss_bytes(),
                faults_per_append: (faults1 - faults0) as f64 / n as f64,
                cpu_us_per_append: (cpu1 - cpu0).as_secs_f64() * 1e6 / n as f64,
            });
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
            "\n### {} ({:.0} s)\n| N entries | µs / append | journal objects | RSS MiB | page faults / append | CPU µs / append |\n|---|---|---|---|---|---|",
            series.label,
            started.elapsed().as_secs_f64()
        );
        for (i, p) in per.iter().enumerate() {
            let end = g[i + 1];
            let mark = marks.iter().find(|m| m.entries == end);
            if is_power_of_ten(end) {
                let cells = mark.map_or_else(
                    || "– | – | – | –".to_owned(),
                    |m| {
                        format!(
                            "{} | {:.0} | {:.3} | {:.2}",
                            m.objects,
                            m.rss as f64 / (1 << 20) as f64,
                            m.faults_per_append,
                            m.cpu_us_per_append
                        )
                    },
                );
                println!("| {end} | {:.2} | {cells} |", p * 1e6);
            }
        }
        let points: Vec<String> = per
            .iter()
            .enumerate()
            .map(|(i, p)| format!("[{}, {:.4}]", g[i + 1], p * 1e6))
            .collect();
        let marks: Vec<String> = marks
            .iter()
            .map(|m| {
                format!(
                    "[{}, {}, {}, {:.4}, {:.3}]",
                    m.entries, m.objects, m.rss, m.faults_per_append, m.cpu_us_per_append
                )
            })
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

mod scaling_agent;

use scaling_agent::agent_part;

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
