//! Crash-state enumeration with **concurrent writers** (issue 6; `crash_states.rs` is the
//! single-writer version and explains the fault model). Two threads write through one
//! `JournaledImage`, each on its own half of the image, so the recorder has several appends in
//! flight across splay objects and group-commits them; the crash hits at every durability
//! boundary of that interleaving (lost / torn / applied / random), with the mirror agent
//! replicating (also with the writers starting during its image sync).
//!
//! Checks, per writer (oracle: one `RefModel` per half, built from that writer's op sequence):
//! 1. the recovered primary holds every write the writer had acknowledged (bytes of its one
//!    op in flight may hold that op's value);
//! 2. a replica whose durable records claim consistency holds, in each half, the state after
//!    some prefix of that writer's ops (plus part of the next), and a restarted agent brings it
//!    to the recovered primary; the agent never reported `Replaying` without those records;
//! 3. recovery never fails or panics.
//!
//! Cross-writer order (which of two concurrent writes came first) has no oracle outside the
//! journal, so write-order fidelity is checked per writer. Thread interleaving varies between
//! runs, so a printed failure replays the same seed and crash point but not always the same
//! interleaving. Env: `RBDJ_CRASH_MT_SEEDS=N` (default 6), `RBDJ_CRASH_MT_SEED=s` with optional
//! `RBDJ_CRASH_POINT=k`, `RBDJ_CRASH_SCENARIO`, `RBDJ_CRASH_LIVE_SYNC=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod crash_common;

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use object_store_trait::testing::CrashStore;
use rbdj_tests::crash_model::{gen_ops, Op, RefModel};
use replay_engine::site::Site;

use crash_common::*;

const WRITERS: usize = 2;
const OPS_PER_WRITER: usize = 16;
const HALF: u64 = IMAGE_SIZE / WRITERS as u64;

/// Each writer's ops (in its half's own coordinates) and their model.
struct Workload {
    ops: Vec<Vec<Op>>,
    models: Vec<RefModel>,
}

fn workload(seed: u64) -> Workload {
    let ops: Vec<Vec<Op>> = (0..WRITERS as u64)
        .map(|w| {
            gen_ops(
                seed * 1000 + w,
                OPS_PER_WRITER,
                HALF,
                MAX_WRITE.min(HALF / 2),
            )
        })
        .collect();
    let models = ops
        .iter()
        .map(|o| RefModel::new(HALF as usize, o))
        .collect();
    Workload { ops, models }
}

fn half(w: usize) -> Range<usize> {
    let start = w * HALF as usize;
    start..start + HALF as usize
}

struct Run {
    acked: Vec<usize>,
    attempted: Vec<usize>,
    primary_boundaries: u64,
    secondary_boundaries: u64,
    synced: bool,
}

fn run(
    bases: &Bases,
    scenario: Scenario,
    seed: u64,
    wl: &Workload,
    crash: Option<u64>,
    live_sync: bool,
) -> (Run, Arc<CrashStore>, Arc<CrashStore>) {
    let store_seed = seed
        .wrapping_mul(7_000_003)
        .wrapping_add(crash.unwrap_or(0));
    let (a, b) = crash_stores(bases, scenario, seed, store_seed, crash);
    let primary = Site::open(a.clone(), 1);
    let (agent, mut synced) = start_agent(scenario, &primary, &a, &b, !live_sync);
    let mut acked = vec![0; WRITERS];
    let mut attempted = vec![0; WRITERS];
    if let Ok(ji) = primary.open_journaled(NAME, settings()) {
        let counts: Vec<(usize, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = wl
                .ops
                .iter()
                .enumerate()
                .map(|(w, ops)| {
                    let ji = &ji;
                    s.spawn(move || {
                        let (mut ok, mut tried) = (0, 0);
                        for op in ops {
                            tried += 1;
                            let r = issue(ji, op.clone().shifted(w as u64 * HALF));
                            if r.is_err() {
                                break;
                            }
                            ok += 1;
                        }
                        (ok, tried)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (w, (ok, tried)) in counts.into_iter().enumerate() {
            acked[w] = ok;
            attempted[w] = tried;
        }
        let _ = ji.close();
    }
    if let Some(agent) = agent {
        let target: Vec<u8> = (0..WRITERS)
            .flat_map(|w| wl.models[w].state(attempted[w]).to_vec())
            .collect();
        synced |= catch_up(agent, &a, &b, &target);
    }
    let run = Run {
        acked,
        attempted,
        primary_boundaries: a.boundaries(),
        secondary_boundaries: b.boundaries(),
        synced,
    };
    (run, a, b)
}

fn check(bases: &Bases, scenario: Scenario, seed: u64, k: u64, live: bool) -> Result<(), String> {
    let wl = workload(seed);
    let (run, a, b) = run(bases, scenario, seed, &wl, Some(k), live);
    let primary = Site::open(Arc::new(a.reopen()), 1);
    let secondary = Site::open(Arc::new(b.reopen()), 1);

    let claims = claims_consistency(&secondary);
    if run.synced && !claims {
        return Err("the agent reported replaying without durable consistency records".into());
    }
    if claims {
        let got = image_bytes(&secondary).ok_or("a consistent replica is unreadable")?;
        if got.len() as u64 != IMAGE_SIZE {
            return Err(format!("replica reads {} bytes", got.len()));
        }
        for w in 0..WRITERS {
            let part = &got[half(w)];
            let model = &wl.models[w];
            if !(0..=run.attempted[w]).any(|n| model.check_recovered(part, n, n + 1).is_ok()) {
                return Err(format!(
                    "replica half {w} is no prefix of its writer's ops (acked {}, attempted {})",
                    run.acked[w], run.attempted[w]
                ));
            }
        }
    }

    recover_and_converge(scenario, &primary, &secondary, |got| {
        for w in 0..WRITERS {
            wl.models[w]
                .check_recovered(&got[half(w)], run.acked[w], run.attempted[w])
                .map_err(|e| format!("recovered primary, half {w}: {e}"))?;
        }
        Ok(())
    })
}

fn probe(bases: &Bases, scenario: Scenario, seed: u64, live: bool) -> u64 {
    let wl = workload(seed);
    let (run, _, _) = run(bases, scenario, seed, &wl, None, live);
    assert_eq!(
        run.acked,
        vec![OPS_PER_WRITER; WRITERS],
        "seed {seed}: a crash-free run failed"
    );
    if scenario == Scenario::MirrorSecondary {
        run.secondary_boundaries
    } else {
        run.primary_boundaries
    }
}

#[test]
fn concurrent_writer_crash_states() {
    let bases = bases();
    let (mut checked, mut failures) = (0u64, 0u64);
    let mut one = |scenario: Scenario, seed: u64, k: u64, live: bool| {
        checked += 1;
        let msg = match catch_unwind(AssertUnwindSafe(|| check(&bases, scenario, seed, k, live))) {
            Ok(Ok(())) => return,
            Ok(Err(m)) => m,
            Err(p) => panic_message(p.as_ref()),
        };
        failures += 1;
        println!(
            "FAIL concurrent scenario {} seed {seed} crash point {k} mode {:?}: {msg}\n  replay \
             (same seed and point; the interleaving may differ): {}RBDJ_CRASH_SCENARIO={} \
             RBDJ_CRASH_MT_SEED={seed} RBDJ_CRASH_POINT={k} cargo test -p rbdj-tests --test \
             crash_states_concurrent -- --nocapture",
            scenario.name(),
            mode_for(seed, k),
            if live { "RBDJ_CRASH_LIVE_SYNC=1 " } else { "" },
            scenario.name(),
        );
    };
    let points = |scenario: Scenario, seed: u64, live: bool| -> Vec<u64> {
        match env_u64("RBDJ_CRASH_POINT") {
            Some(k) => vec![k],
            // A little past the probe's count: other interleavings may have more boundaries.
            None => (1..=probe(&bases, scenario, seed, live) + 3).collect(),
        }
    };
    let mut cases = Vec::new();
    if let Some(seed) = env_u64("RBDJ_CRASH_MT_SEED") {
        let scenario = std::env::var("RBDJ_CRASH_SCENARIO")
            .ok()
            .and_then(|s| Scenario::parse(&s))
            .unwrap_or(Scenario::Primary);
        let live = std::env::var("RBDJ_CRASH_LIVE_SYNC").is_ok();
        cases.push((scenario, seed, live));
    } else {
        for seed in 1..=env_u64("RBDJ_CRASH_MT_SEEDS").unwrap_or(6) {
            cases.push((Scenario::Primary, seed, false));
            // Mirrored runs (slower) on every other seed, alternating a sync that finishes
            // before the writers start with writers running during the sync.
            if seed % 2 == 1 {
                let live = seed % 4 == 3;
                cases.push((Scenario::MirrorPrimary, seed, live));
                cases.push((Scenario::MirrorSecondary, seed, live));
            }
        }
    }
    let started = Instant::now();
    for (scenario, seed, live) in cases {
        for k in points(scenario, seed, live) {
            one(scenario, seed, k, live);
        }
    }
    println!("concurrent crash states checked: {checked}, failures: {failures}");
    eprintln!("(concurrent crash-state run took {:?})", started.elapsed());
    assert_eq!(failures, 0, "see the FAIL lines above");
}
