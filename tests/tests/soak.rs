//! Soak (issue 6), ignored by default:
//!
//! ```sh
//! RBDJ_SOAK_SECS=60 cargo test -p rbdj-tests --release --test soak -- --ignored --nocapture
//! ```
//!
//! Writer threads drive a journaled primary image (journal-client's `JournaledImage`) on a
//! `DirStore` (or a `MemStore` with `RBDJ_SOAK_MEM=1`) for `RBDJ_SOAK_SECS` seconds (default
//! 20), each thread on its own stripe, recording every acknowledged IO in a byte-vector reference
//! model. Meanwhile the mirror agent is started and ended at random intervals — stopped, dropped,
//! or killed (its store handles fail every operation from one moment on, then it is dropped);
//! each incarnation sees both sites through a `FaultyStore` injecting EIO/ENOSPC on mutations
//! (half of them applied before the error is reported) and reads, and dropping or duplicating
//! notifications. At the end the writers close, a clean agent catches up, and the replica must
//! equal the primary and the reference model byte for byte. `RBDJ_SOAK_SEED` picks the seed
//! (default 1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use journal_client::image::BlockImage;
use journal_client::JournalSettings;
use object_store_trait::testing::{FaultyOptions, FaultyStore};
use object_store_trait::{DirStore, DirStoreOptions, MemStore, ObjectStore};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rbdj_tests::crash_model::{apply, gen_ops, Op};
use rbdj_tests::kill_switch::KillableStore;
use replay_engine::agent::{AgentOptions, MirrorAgent};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;

const IMAGE_SIZE: u64 = 4 << 20;
const WRITERS: u64 = 3;
const NAME: &str = "vol";

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn agent_options() -> AgentOptions {
    let mut o = AgentOptions {
        scan_interval: Duration::from_millis(20),
        retry_interval: Duration::from_millis(20),
        agent_id: Some("soak-agent".into()),
        ..AgentOptions::default()
    };
    o.replayer.flush_interval = Duration::from_millis(50);
    o.replayer.commit_interval = Duration::from_millis(20);
    o.replayer.check_interval = Duration::from_millis(20);
    o.bootstrap.sync.chunk_bytes = 64 << 10;
    o.bootstrap.sync.progress_every_chunks = 2;
    o
}

fn faulty(inner: Arc<dyn ObjectStore>, seed: u64) -> Arc<FaultyStore<Arc<dyn ObjectStore>>> {
    Arc::new(FaultyStore::new(
        inner,
        FaultyOptions {
            seed,
            mutation_error_rate: 0.002,
            applied_share: 0.5,
            read_error_rate: 0.001,
            enospc_share: 0.3,
            notify_drop_rate: 0.05,
            notify_dup_rate: 0.05,
            delay_rate: 0.02,
            max_delay: std::time::Duration::from_millis(3),
        },
    ))
}

fn image_bytes(site: &Site) -> Option<Vec<u8>> {
    let img = site.open_image(NAME).ok()?;
    img.read(0, img.size()).ok().map(|b| b.to_vec())
}

#[test]
#[ignore = "soak: run with RBDJ_SOAK_SECS=60 ... -- --ignored --nocapture"]
fn soak_mirror_with_agent_restarts_and_faults() {
    let secs = env_u64("RBDJ_SOAK_SECS").unwrap_or(20);
    let seed = env_u64("RBDJ_SOAK_SEED").unwrap_or(1);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (store_a, store_b): (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>) =
        if std::env::var("RBDJ_SOAK_MEM").is_ok() {
            (Arc::new(MemStore::new()), Arc::new(MemStore::new()))
        } else {
            (
                Arc::new(DirStore::open(dirs.0.path(), DirStoreOptions::default()).unwrap()),
                Arc::new(DirStore::open(dirs.1.path(), DirStoreOptions::default()).unwrap()),
            )
        };
    let primary = Site::open(store_a.clone(), 1);
    let secondary = Site::open(store_b.clone(), 1);
    primary.set_mirror_mode(MirrorMode::Pool).unwrap();
    primary
        .create_image(
            NAME,
            IMAGE_SIZE,
            Some(JournalShape {
                order: 16,
                splay_width: 4,
            }),
        )
        .unwrap();
    primary.mirror_uuid().unwrap();
    secondary.mirror_uuid().unwrap();

    let settings = JournalSettings {
        commit_age: Duration::from_millis(20),
        ..JournalSettings::default()
    };
    let writer = primary.open_journaled(NAME, settings).unwrap();
    let model = Mutex::new(vec![0u8; IMAGE_SIZE as usize]);
    let stop = AtomicBool::new(false);
    let acked = AtomicU64::new(0);
    let mut restarts = 0u64;
    let mut kills = 0u64;
    let mut injected = 0u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut rng = SmallRng::seed_from_u64(seed);

    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let (writer, model, stop, acked) = (&writer, &model, &stop, &acked);
            s.spawn(move || {
                let stripe = IMAGE_SIZE / WRITERS;
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let ops = gen_ops(seed ^ (t << 32) ^ round, 64, stripe, 16 << 10);
                    round += 1;
                    for op in ops {
                        let op = op.shifted(t * stripe);
                        let r = match &op {
                            Op::Write { offset, data } => writer.write(*offset, data.clone()),
                            Op::Discard { offset, len } => writer.discard(*offset, *len),
                            Op::WriteSame {
                                offset,
                                len,
                                pattern,
                            } => writer.write_same(*offset, *len, pattern.clone()),
                            Op::Flush => writer.flush(),
                        };
                        r.unwrap_or_else(|e| panic!("writer {t}: {e}"));
                        apply(&mut model.lock(), &op);
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // The agent: each incarnation sees both sites through its own faulty stores, runs for
        // a random while, then is stopped or dropped.
        while Instant::now() < deadline {
            let fa = faulty(store_a.clone(), rng.gen());
            let fb = faulty(store_b.clone(), rng.gen());
            let ka = Arc::new(KillableStore::new(fa.clone()));
            let kb = Arc::new(KillableStore::new(fb.clone()));
            let agent = MirrorAgent::start(
                Site::open(kb.clone(), 1),
                Site::open(ka.clone(), 1),
                agent_options(),
            );
            let life = Duration::from_millis(rng.gen_range(50..2000));
            std::thread::sleep(life.min(deadline.saturating_duration_since(Instant::now())));
            match (agent, rng.gen_range(0..3u8)) {
                (Ok(agent), 0) => agent.stop(),
                (Ok(agent), 1) => drop(agent),
                (agent, _) => {
                    // Killed: its store handles die mid-operation, then its threads go.
                    ka.hook().kill();
                    kb.hook().kill();
                    kills += 1;
                    drop(agent);
                }
            }
            injected += fa.injected() + fb.injected();
            restarts += 1;
        }
        stop.store(true, Ordering::Relaxed);
    });
    writer.close().unwrap();
    drop(writer);

    // A clean agent catches up; replica == primary == reference.
    let expected = model.into_inner();
    assert_eq!(
        image_bytes(&primary).as_deref(),
        Some(&expected[..]),
        "primary differs from the reference model"
    );
    let agent = MirrorAgent::start(secondary.clone(), primary.clone(), agent_options()).unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    let mut converged = false;
    while Instant::now() < end {
        if image_bytes(&secondary).as_deref() == Some(&expected[..]) {
            converged = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = agent.status();
    agent.stop();
    println!(
        "soak: seed {seed}, {secs} s, {} store, {} IOs acknowledged, {restarts} agent \
         restarts ({kills} killed), {injected} faults injected, replica == primary: {converged}",
        if std::env::var("RBDJ_SOAK_MEM").is_ok() {
            "MemStore"
        } else {
            "DirStore"
        },
        acked.load(Ordering::Relaxed)
    );
    assert!(
        converged,
        "seed {seed}: replica did not converge: {status:?}\n  replay: RBDJ_SOAK_SEED={seed} \
         RBDJ_SOAK_SECS={secs} cargo test -p rbdj-tests --release --test soak -- --ignored \
         --nocapture"
    );
}
