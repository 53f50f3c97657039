//! Paired, interleaved ratios for the noisy (disk) comparisons and a second estimate for the
//! in-memory ones. Not a criterion benchmark: the shared disk is too noisy for two criterion
//! runs minutes apart to be compared, so here the sides take turns in short rounds (the order
//! rotates each round) and the ratio is computed per round; the table shows the median and the
//! range of the per-round ratios.
//!
//! * `journal_overhead`: the configurations and durability promises of `journal_overhead.rs`,
//!   plus, for writes above 16 KiB, a journaled side with `max_payload_bytes` = 1 MiB (one
//!   entry per write instead of librbd's 16 KiB split), and for 4 KiB writes on the directory
//!   store a journaled side with splay width 1 (every entry on one object) and one with the
//!   journal on the directory store but the image in memory (`journal_only_memimage`).
//!   In memory, a side `bound_copy_crc` does the unjournaled write plus one copy of the payload
//!   into a warm buffer and its CRC-32C on the writer's thread: the least work a journaled write
//!   adds, so its ratio is the best a journal doing that work inline can reach on that store.
//!   On the directory store, a side `bound_wal` does the unjournaled write without its per-write
//!   flush after a bare, group-committed `pwritev` + `fdatasync` of the payload into one log
//!   file whose blocks are already written (`rbdj_benches::GroupCommitLog`), and flushes the
//!   image once per round: the least a journal that keeps the payload in its own files writes
//!   and syncs. Every journal starts in its steady state: three object sets written and
//!   trimmed before the run (`RBDJ_JOURNAL=fresh` starts it new; see `common::new_journaled`).
//! * `append_mem`: the physical-limit comparison of `append_limit.rs` (`append_limit_mem`):
//!   `memcpy_crc32c` (copy each payload into a warm per-thread buffer + CRC-32C) vs the
//!   `Recorder` on a `MemStore` (each writer keeps 32 appends outstanding; time until every
//!   entry is durable in the store). `recorder_trimmed` is a journal in steady state: one
//!   recorder for all rounds whose set rollover removes the objects of the set two sets back
//!   (as the trimmer does once the image's commit position has passed them), so at most two
//!   object sets (2 × 4 × 16 MiB) stay in memory and the recorder's entry slabs are reused
//!   (after an untimed warm-up of three sets). The recorder copies a 4 KiB payload into its
//!   slabs but not a payload of 8 KiB or more (`journal_client::prepared_entry::ZERO_COPY_MIN`):
//!   the store then keeps a reference to the caller's buffer between the entry's header and
//!   CRC, so the recorder's work is the CRC and the bookkeeping. `recorder_trimmed` appends the
//!   same buffer every time (warm in the caches, as the limit's source); `recorder_distinct`
//!   appends a different buffer each time, from 128 MiB of payloads built before the run, so
//!   its CRC (and its copy, at 4 KiB) reads memory beyond the caches.
//!   Every side: only in memory when an entry is durable, as the limit. A second table gives
//!   CPU time and minor page faults per operation (`/proc/self/stat`), which the load of the
//!   shared machine disturbs less. `RBDJ_PAIRED_SIDES=memcpy_crc32c,recorder_trimmed` runs
//!   only the named sides (also in `journal_overhead`, e.g. `unjournaled,journaled`) and `RBDJ_PAIRED_CONFIGS=4KiB_1t` only the named configs (also in
//!   `journal_overhead`, e.g. `mem_4KiB-rand_1t` or `dir-fdatasync_64KiB-seq_16t`). A
//!   fourth, diagnostic side `ring_memcpy_crc32c` copies into a 128 MiB ring instead of one
//!   warm buffer (memory beyond the caches, as large as what the trimmed journal keeps); the
//!   goal's limit stays `memcpy_crc32c`.
//! * `append_dir`: one writer, `write` + `fdatasync` loop vs `DirStore::append` vs `Recorder`
//!   on a `DirStore` (append + wait), each batch on stable storage when the call returns.
//!
//! Run: `cargo bench -p rbdj-benches --bench paired_ratios` (a few minutes);
//! `RBDJ_PAIRED_ROUNDS` (default 7) sets the rounds, `RBDJ_PAIRED_VERBOSE=1` prints every
//! side's rate in every round (on stderr).

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
use common::{
    bench_recorder, configs, new_image, new_journaled, new_journaled_split, no_advance, payloads,
    settings, windowed_appends, windowed_appends_of, AppendCounts, IMAGE_SIZE,
};
use journal_client::{JournalSettings, Recorder};
use journal_core::entry::ceph_crc32c;
use object_store_trait::{AppendGuard, DirStore, DirStoreOptions, MemStore, ObjectStore};
use parking_lot::Mutex;
use rbdj_benches::{human_size, run_threads, Backend, GroupCommitLog, Rng, WriteConfig};

/// Columns of side results in the printed tables.
const MAX_SIDES: usize = 5;

type Side<'a> = (&'static str, Box<dyn FnMut(u64) -> Duration + 'a>);

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs every side `n` operations per round for `rounds` rounds (plus one short untimed
/// warm-up), rotating the order; prints one table row: ops/s per side (over all rounds) and,
/// for every side after the first, the median [min–max] of `time(first) / time(side)`.
fn paired(label: &str, rounds: usize, n: u64, sides: &mut [Side<'_>]) {
    for (_, run) in sides.iter_mut() {
        run((n / 4).max(1));
    }
    let k = sides.len();
    let mut times = vec![Vec::with_capacity(rounds); k];
    for r in 0..rounds {
        for j in 0..k {
            let i = (r + j) % k;
            let t = (sides[i].1)(n);
            if std::env::var_os("RBDJ_PAIRED_VERBOSE").is_some() {
                eprintln!(
                    "round {r} {}: {:.0}/s",
                    sides[i].0,
                    n as f64 / t.as_secs_f64()
                );
            }
            times[i].push(t.as_secs_f64().max(1e-9));
        }
    }
    let mut row = format!("| {label} | {n}×{rounds} |");
    for i in 0..MAX_SIDES {
        match (sides.get(i), times.get(i)) {
            (Some((name, _)), Some(t)) => {
                let ops = (n * rounds as u64) as f64 / t.iter().sum::<f64>();
                row += &format!(" {name}: {ops:.0}/s |");
            }
            _ => row += " – |",
        }
    }
    for i in 1..MAX_SIDES {
        if i >= k {
            row += " – |";
            continue;
        }
        let mut ratios: Vec<f64> = (0..rounds).map(|r| times[0][r] / times[i][r]).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        let med = median(&mut ratios);
        row += &format!(" {}: **{med:.2}** [{lo:.2}–{hi:.2}] |", sides[i].0);
    }
    println!("{row}");
}

/// The header of a [`paired`] table: `what` names a row, `unit` the sides' rate.
fn print_header(what: &str, unit: &str) {
    let mut head = format!("| {what} | ops×rounds | baseline {unit} |");
    for i in 2..=MAX_SIDES {
        head += &format!(" side {i} {unit} |");
    }
    for i in 2..=MAX_SIDES {
        head += &format!(" side {i} ratio |");
    }
    println!("{head}\n|{}", "---|".repeat(2 * MAX_SIDES + 1));
}

/// Operations per round, so a round of the slowest side lasts roughly 0.1–0.4 s.
fn ops_per_round(cfg: &WriteConfig) -> u64 {
    let base: u64 = match (cfg.backend, cfg.io_size) {
        (Backend::Mem, 4096) => 20_000,
        (Backend::Mem, s) if s <= 64 << 10 => 3_000,
        (Backend::Mem, _) => 200,
        (Backend::Dir, 4096) => 400,
        (Backend::Dir, s) if s <= 64 << 10 => 200,
        (Backend::Dir, _) => 40,
    };
    if cfg.threads > 1 && cfg.backend == Backend::Dir {
        base * 4
    } else {
        base
    }
}

fn unjournaled_side<'a>(cfg: WriteConfig, data: &'a [Bytes], salt: &'a Mutex<u64>) -> Side<'a> {
    plain_side("unjournaled", cfg, data, salt, false)
}

/// The in-memory bound of a journaled write: the unjournaled write plus the least a journal adds
/// to it — one copy of the payload into a warm per-thread buffer and its CRC-32C — done on the
/// writer's thread. A journal that does its minimum work inline cannot do better; one that hands
/// the image write to another thread (rbdj's applier) can, when a core is free.
fn bound_side<'a>(cfg: WriteConfig, data: &'a [Bytes], salt: &'a Mutex<u64>) -> Side<'a> {
    plain_side("bound_copy_crc", cfg, data, salt, true)
}

/// The on-disk bound of a journaled write: the unjournaled image write, without its per-write
/// flush, after a bare write-ahead record of the payload in [`GroupCommitLog`] (one file whose
/// blocks are already written, as the journal's reused files; leader/follower group commit
/// across the writers; no framing, no CRC). The image is flushed once at the end of the round:
/// the least that a journal keeping a copy of the payload in its own files writes and syncs.
fn wal_bound_side<'a>(cfg: WriteConfig, data: &'a [Bytes], salt: &'a Mutex<u64>) -> Side<'a> {
    let (plain, dir) = new_image(cfg.backend, "bound_wal");
    let log_dir = tempfile::tempdir().unwrap();
    let log_len = (64u64 << 20).max(4 * cfg.threads as u64 * cfg.io_size);
    let log = GroupCommitLog::create(&log_dir.path().join("log"), log_len, false).unwrap();
    (
        "bound_wal",
        Box::new(move |n| {
            let _keep = (&dir, &log_dir);
            let s = next_salt(salt);
            let t0 = Instant::now();
            run_threads(
                cfg.threads,
                n,
                |t, i| {
                    log.append(&data[t]).unwrap();
                    plain
                        .write(cfg.offset(s, IMAGE_SIZE, t, i), data[t].clone())
                        .unwrap();
                },
                |_| {},
            );
            plain.flush().unwrap();
            t0.elapsed()
        }),
    )
}

/// Image writes (`write` + `flush`) without a journal; with `copy_crc`, each write first copies
/// its payload into a per-thread buffer and computes its CRC-32C.
fn plain_side<'a>(
    name: &'static str,
    cfg: WriteConfig,
    data: &'a [Bytes],
    salt: &'a Mutex<u64>,
    copy_crc: bool,
) -> Side<'a> {
    let (plain, dir) = new_image(cfg.backend, name);
    let buffers: Vec<Mutex<Vec<u8>>> = data
        .iter()
        .map(|d| {
            Mutex::new(if copy_crc {
                vec![0u8; d.len()]
            } else {
                Vec::new()
            })
        })
        .collect();
    (
        name,
        Box::new(move |n| {
            let _keep = &dir;
            let s = next_salt(salt);
            run_threads(
                cfg.threads,
                n,
                |t, i| {
                    if copy_crc {
                        let mut buf = buffers[t].lock();
                        buf.copy_from_slice(&data[t]);
                        std::hint::black_box(ceph_crc32c(0, &buf));
                    }
                    plain
                        .write(cfg.offset(s, IMAGE_SIZE, t, i), data[t].clone())
                        .unwrap();
                    plain.flush().unwrap();
                },
                |_| {},
            )
        }),
    )
}

fn journaled_side<'a>(
    name: &'static str,
    cfg: WriteConfig,
    settings: JournalSettings,
    data: &'a [Bytes],
    salt: &'a Mutex<u64>,
    counted: &mut Vec<(&'static str, Arc<AppendCounts>)>,
) -> Side<'a> {
    let (journaled, dirs, counts) = new_journaled(cfg.backend, settings);
    counted.push((name, counts));
    journaled_side_on(name, cfg, journaled, dirs, data, salt)
}

fn journaled_side_on<'a>(
    name: &'static str,
    cfg: WriteConfig,
    journaled: journal_client::JournaledImage,
    dirs: Vec<tempfile::TempDir>,
    data: &'a [Bytes],
    salt: &'a Mutex<u64>,
) -> Side<'a> {
    (
        name,
        Box::new(move |n| {
            let _keep = &dirs;
            let s = next_salt(salt);
            let writes = run_threads(
                cfg.threads,
                n,
                |t, i| {
                    journaled
                        .write(cfg.offset(s, IMAGE_SIZE, t, i), data[t].clone())
                        .unwrap();
                },
                |_| {},
            );
            let drain = Instant::now();
            journaled.wait_applied().unwrap();
            let elapsed = writes + drain.elapsed();
            journaled.flush_commit_position().unwrap();
            elapsed
        }),
    )
}

fn next_salt(salt: &Mutex<u64>) -> u64 {
    let mut s = salt.lock();
    *s += 1;
    *s
}

fn journal_overhead(rounds: usize) {
    println!("\n### journal_overhead (ratio = unjournaled time / journaled time = IOPS ratio)\n");
    print_header("config", "IOPS");
    let salt = Mutex::new(0);
    let mut notes = Vec::new();
    for cfg in configs() {
        if !config_wanted(&cfg.to_string()) {
            continue;
        }
        let data = payloads(&cfg);
        let mut counted = Vec::new();
        let mut sides = vec![
            unjournaled_side(cfg, &data, &salt),
            journaled_side("journaled", cfg, settings(), &data, &salt, &mut counted),
        ];
        if cfg.io_size <= 16 << 10 && cfg.backend == Backend::Dir {
            // All entries on one object: tests how much the splay costs group commit.
            let splay1 = JournalSettings {
                splay_width: 1,
                ..settings()
            };
            sides.push(journaled_side(
                "journaled_splay1",
                cfg,
                splay1,
                &data,
                &salt,
                &mut counted,
            ));
            // Journal on the directory store, image in memory: the journal's cost alone,
            // without the image's page-cache writeback sharing the file system's commits.
            let (j, dirs, counts) = new_journaled_split(Backend::Mem, Backend::Dir, settings());
            counted.push(("journal_only_memimage", counts));
            sides.push(journaled_side_on(
                "journal_only_memimage",
                cfg,
                j,
                dirs,
                &data,
                &salt,
            ));
        }
        if cfg.io_size > 16 << 10 {
            let big = JournalSettings {
                max_payload_bytes: (1 << 20) + 64,
                ..settings()
            };
            sides.push(journaled_side(
                "journaled_payload1M",
                cfg,
                big,
                &data,
                &salt,
                &mut counted,
            ));
        }
        match cfg.backend {
            Backend::Mem => sides.push(bound_side(cfg, &data, &salt)),
            Backend::Dir => sides.push(wal_bound_side(cfg, &data, &salt)),
        }
        // `RBDJ_PAIRED_SIDES=unjournaled,journaled` runs only those sides (profiling); ratios are
        // to the first side left.
        sides.retain(|(name, _)| listed_or_unset("RBDJ_PAIRED_SIDES", name));
        if sides.is_empty() {
            continue;
        }
        paired(&cfg.to_string(), rounds, ops_per_round(&cfg), &mut sides);
        let per_append: Vec<String> = counted
            .iter()
            .map(|(name, c)| {
                let (appends, entries) = c.get();
                format!("{name} {:.1}", entries as f64 / appends.max(1) as f64)
            })
            .collect();
        notes.push(format!("- {cfg}: {}", per_append.join(", ")));
    }
    println!("\nJournal entries per store append (one `fdatasync` each on `dir`), all rounds:\n");
    for n in notes {
        println!("{n}");
    }
}

/// `RBDJ_PAIRED_CONFIGS=4KiB_1t,mem_4KiB-rand_16t` runs only the named configs (profiling);
/// all when unset.
fn config_wanted(label: &str) -> bool {
    listed_or_unset("RBDJ_PAIRED_CONFIGS", label)
}

/// Whether the comma-separated list in environment variable `var` names `name`, or `var` is
/// unset.
fn listed_or_unset(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |list| list.split(',').any(|x| x == name))
}

/// Size of the cold-memory ring of the `ring_memcpy_crc32c` side (what the trimmed recorder
/// keeps: two object sets of 4 × 16 MiB).
const RING_BYTES: usize = 128 << 20;

/// A recorder on `store` (splay width 4, order 24) taking entries up to 1 MiB.
fn start_recorder(store: Arc<dyn ObjectStore>) -> Recorder {
    bench_recorder(store, 4, recorder_settings(), no_advance())
}

fn recorder_settings() -> JournalSettings {
    JournalSettings {
        max_payload_bytes: (1 << 20) + 64,
        ..settings()
    }
}

/// CPU time (user + system, all threads, in clock ticks of 10 ms) and minor page faults of
/// this process so far.
fn cpu_ticks() -> (u64, u64) {
    let (cpu, faults) = rbdj_benches::process_cpu();
    (
        u64::try_from(cpu.as_millis() / 10).unwrap_or(u64::MAX),
        faults,
    )
}

/// CPU ticks, page faults and operations of a side's runs.
type CpuAcc = Mutex<(u64, u64, u64)>;

/// Wraps a side so the CPU ticks, page faults and operations of its runs add up in `acc`.
fn cpu_counted<'a>(side: Side<'a>, acc: &'a CpuAcc) -> Side<'a> {
    let (name, mut run) = side;
    (
        name,
        Box::new(move |n| {
            let (c0, f0) = cpu_ticks();
            let t = run(n);
            let (c1, f1) = cpu_ticks();
            let mut a = acc.lock();
            a.0 += c1 - c0;
            a.1 += f1 - f0;
            a.2 += n;
            t
        }),
    )
}

fn append_mem(rounds: usize) {
    let mut cpu_rows = Vec::new();
    println!("\n### append_mem (ratio = memcpy_crc32c time / side time = bytes/s ratio)\n");
    print_header("config", "ops/s");
    for (size, threads, n) in [
        (4096usize, 1usize, 40_000u64),
        (4096, 16, 40_000),
        (64 << 10, 1, 4_000),
    ] {
        let label = format!("{}_{threads}t", human_size(size as u64));
        if !config_wanted(&label) {
            continue;
        }
        let data: Vec<Bytes> = (0..threads)
            .map(|t| Bytes::from(Rng::new(t as u64 + 11).bytes(size)))
            .collect();
        let buffers: Vec<Mutex<Vec<u8>>> =
            (0..threads).map(|_| Mutex::new(vec![0u8; size])).collect();
        // A second, diagnostic limit: the same copy + CRC, but into a 128 MiB ring (touched
        // beforehand) as large as what the trimmed journal keeps, so the copy goes to memory
        // that is not in the caches, as a journal's must.
        let per_thread = (RING_BYTES / threads / size).max(1) * size;
        let rings: Vec<Mutex<Vec<u8>>> = (0..threads)
            .map(|_| Mutex::new(vec![1u8; per_thread]))
            .collect();
        // Distinct payloads, 128 MiB per config as the ring (untimed to build): with every
        // operation's payload in memory of its own, the CRC reads memory beyond the caches, as
        // it would for a client whose writes are not all the same buffer.
        let pools: Vec<Vec<Bytes>> = (0..threads)
            .map(|t| {
                let mut rng = Rng::new(t as u64 + 101);
                (0..(RING_BYTES / threads / size).max(1))
                    .map(|_| Bytes::from(rng.bytes(size)))
                    .collect()
            })
            .collect();
        let trimmed =
            rbdj_benches::trimmed_mem_recorder(Arc::new(MemStore::new()), recorder_settings())
                .unwrap();
        // Untimed warm-up into the steady state: three object sets, so the first trims have
        // happened and the entry slabs are being reused.
        windowed_appends(&trimmed, &data, threads, 3 * (64 << 20) / size as u64);
        let d = &data;
        let sides: Vec<Side<'_>> = vec![
            (
                "memcpy_crc32c",
                Box::new(|n| {
                    run_threads(
                        threads,
                        n,
                        |t, _| {
                            let mut buf = buffers[t].lock();
                            buf.copy_from_slice(&d[t]);
                            std::hint::black_box(ceph_crc32c(0, &buf));
                        },
                        |_| {},
                    )
                }),
            ),
            (
                "recorder_distinct",
                Box::new(|n| {
                    windowed_appends_of(&trimmed, threads, n, |t, i| {
                        let pool = &pools[t];
                        pool[i as usize % pool.len()].clone()
                    })
                }),
            ),
            (
                "recorder_trimmed",
                Box::new(|n| windowed_appends(&trimmed, d, threads, n)),
            ),
            (
                "ring_memcpy_crc32c",
                Box::new(|n| {
                    run_threads(
                        threads,
                        n,
                        |t, i| {
                            let mut ring = rings[t].lock();
                            let slots = ring.len() / size;
                            let at = (i as usize % slots) * size;
                            let slot = &mut ring[at..at + size];
                            slot.copy_from_slice(&d[t]);
                            std::hint::black_box(ceph_crc32c(0, slot));
                        },
                        |_| {},
                    )
                }),
            ),
        ];
        // `RBDJ_PAIRED_SIDES=memcpy_crc32c,recorder_trimmed` runs only those sides (profiling).
        let sides: Vec<Side<'_>> = sides
            .into_iter()
            .filter(|(name, _)| listed_or_unset("RBDJ_PAIRED_SIDES", name))
            .collect();
        let accs: Vec<CpuAcc> = (0..sides.len()).map(|_| Mutex::new((0, 0, 0))).collect();
        let mut sides: Vec<Side<'_>> = sides
            .into_iter()
            .zip(&accs)
            .map(|(side, acc)| cpu_counted(side, acc))
            .collect();
        paired(&label, rounds, n, &mut sides);
        // CPU time per operation (all threads; robust against other load on the machine).
        // The warm-up runs are counted too (same share for every side).
        let per_op: Vec<(f64, f64)> = accs
            .iter()
            .map(|a| {
                let (ticks, faults, ops) = *a.lock();
                let ops = ops.max(1) as f64;
                (ticks as f64 * 10e6 / ops, faults as f64 / ops)
            })
            .collect();
        let names: Vec<&str> = sides.iter().map(|s| s.0).collect();
        let cpu: Vec<String> = names
            .iter()
            .zip(&per_op)
            .map(|(n, (c, f))| format!("{n}: {c:.0} ns, {f:.2} faults"))
            .collect();
        let ratios: Vec<String> = names
            .iter()
            .zip(&per_op)
            .skip(1)
            .map(|(n, (c, _))| format!("{n}: **{:.2}**", per_op[0].0 / c.max(1e-9)))
            .collect();
        cpu_rows.push(format!(
            "| {label} | {} | {} |",
            cpu.join(" | "),
            ratios.join(" | ")
        ));
        drop(sides);
        trimmed.shutdown();
    }
    println!("\nCPU time and minor page faults per operation (user + system, all threads, 10 ms ticks; ratio = baseline CPU / side CPU):\n");
    println!("| config | baseline | side 2 | side 3 | side 4 | side 2 ratio | side 3 ratio | side 4 ratio |\n|---|---|---|---|---|---|---|---|");
    for r in cpu_rows {
        println!("{r}");
    }
}

fn append_dir(rounds: usize) {
    println!("\n### append_dir (one writer; ratio = write+fdatasync time / side time)\n");
    print_header("batch", "ops/s");
    for (size, n) in [(4096usize, 300u64), (64 << 10, 200), (1 << 20, 30)] {
        let batch = Bytes::from(Rng::new(5).bytes(size));
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("log")).unwrap();
        file.sync_all().unwrap();
        let store = DirStore::open(dir.path().join("store"), DirStoreOptions::default()).unwrap();
        store
            .append("obj", std::slice::from_ref(&batch), &AppendGuard::none())
            .unwrap();
        let rec_store = DirStore::open(dir.path().join("rec"), DirStoreOptions::default()).unwrap();
        let recorder = start_recorder(Arc::new(rec_store));
        let b = &batch;
        let mut sides: Vec<Side<'_>> = vec![
            (
                "write_fdatasync",
                Box::new(move |n| {
                    let t0 = Instant::now();
                    for _ in 0..n {
                        file.write_all(b).unwrap();
                        file.sync_data().unwrap();
                    }
                    t0.elapsed()
                }),
            ),
            (
                "dirstore_append",
                Box::new(|n| {
                    let t0 = Instant::now();
                    for _ in 0..n {
                        store
                            .append("obj", std::slice::from_ref(b), &AppendGuard::none())
                            .unwrap();
                    }
                    t0.elapsed()
                }),
            ),
            (
                "recorder",
                Box::new(|n| {
                    let t0 = Instant::now();
                    for _ in 0..n {
                        recorder.append(b.clone()).unwrap().wait().unwrap();
                    }
                    t0.elapsed()
                }),
            ),
        ];
        paired(&human_size(size as u64), rounds, n, &mut sides);
        drop(sides);
        recorder.shutdown();
    }
}

fn main() {
    let rounds = std::env::var("RBDJ_PAIRED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7usize)
        .max(1);
    // `cargo bench` passes `--bench` and maybe a filter; a filter picks one table.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wants("journal_overhead") {
        journal_overhead(rounds);
    }
    if wants("append_mem") {
        append_mem(rounds);
    }
    if wants("append_dir") {
        append_dir(rounds);
    }
}
