//! Scaffolding shared by the crash-state enumerations (`crash_states.rs`, single writer;
//! `crash_states_concurrent.rs`, several writers): the two sites before a workload, journal and
//! agent settings, and the checks that read a reopened site.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use journal_client::JournalSettings;
use journal_client::JournaledImage;
use object_store_trait::testing::{CrashMode, CrashStore};
use object_store_trait::MemSnapshot;
use rbdj_tests::crash_model::Op;
use replay_engine::agent::{AgentHandle, AgentOptions, MirrorAgent};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::{self, MirrorMode};
use replay_engine::status::ImageState;
use replay_engine::sync_mark;

/// Size of the workload's image (64 KiB).
pub const IMAGE_SIZE: u64 = 64 << 10;
/// The image's name on both sites.
pub const NAME: &str = "vol";
/// Largest write of a generated workload.
pub const MAX_WRITE: u64 = 6000;

/// Which sites run and which store crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Writer only; the primary crashes.
    Primary,
    /// Writer + agent; the primary's store crashes.
    MirrorPrimary,
    /// Writer + agent; the secondary's store crashes.
    MirrorSecondary,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Primary => "primary",
            Scenario::MirrorPrimary => "mirror-primary",
            Scenario::MirrorSecondary => "mirror-secondary",
        }
    }
    pub fn parse(s: &str) -> Option<Scenario> {
        [
            Scenario::Primary,
            Scenario::MirrorPrimary,
            Scenario::MirrorSecondary,
        ]
        .into_iter()
        .find(|x| x.name() == s)
    }
}

/// The crash mode of boundary `k` under `seed`: lost, torn, applied or random, in turn.
pub fn mode_for(seed: u64, k: u64) -> CrashMode {
    match (seed.wrapping_mul(31).wrapping_add(k)) % 4 {
        0 => CrashMode::Lost,
        1 => CrashMode::Torn,
        2 => CrashMode::Applied,
        _ => CrashMode::Random,
    }
}

/// Journal settings of the writer: commit positions every 5 ms, 4 KiB entries (writes split).
pub fn settings() -> JournalSettings {
    JournalSettings {
        commit_age: Duration::from_millis(5),
        max_payload_bytes: 4096,
        ..JournalSettings::default()
    }
}

/// Agent timers shortened to 10 ms so catch-up fits the test.
pub fn agent_options() -> AgentOptions {
    let mut o = AgentOptions {
        scan_interval: Duration::from_millis(10),
        retry_interval: Duration::from_millis(10),
        // The same agent across crashes and restarts: it takes its own leader lease back at
        // once instead of waiting for the crashed incarnation's lease to run out.
        agent_id: Some("crash-harness-agent".into()),
        ..AgentOptions::default()
    };
    o.replayer.flush_interval = Duration::from_millis(10);
    o.replayer.commit_interval = Duration::from_millis(10);
    o.replayer.check_interval = Duration::from_millis(10);
    o
}

/// The two sites before the workload: a journaled mirrored primary image, both mirror uuids set.
pub struct Bases {
    /// The primary site's durable state.
    pub primary: MemSnapshot,
    /// The secondary site's durable state.
    pub secondary: MemSnapshot,
}

/// Builds [`Bases`]: the primary with its journaled mirrored image, both mirror uuids set.
pub fn bases() -> Bases {
    let a = Arc::new(CrashStore::new(0));
    let primary = Site::open(a.clone(), 1);
    primary.set_mirror_mode(MirrorMode::Pool).unwrap();
    primary
        .create_image(
            NAME,
            IMAGE_SIZE,
            Some(JournalShape {
                order: 12,
                splay_width: 2,
            }),
        )
        .unwrap();
    primary.mirror_uuid().unwrap();
    let b = Arc::new(CrashStore::new(0));
    Site::open(b.clone(), 1).mirror_uuid().unwrap();
    Bases {
        primary: a.durable_snapshot(),
        secondary: b.durable_snapshot(),
    }
}

/// The bytes of image `vol` of `site`, if the image exists and is readable.
pub fn image_bytes(site: &Site) -> Option<Vec<u8>> {
    let img = site.open_image(NAME).ok()?;
    use journal_client::image::BlockImage;
    img.read(0, img.size()).ok().map(|b| b.to_vec())
}

/// Whether the replica's durable records say it is consistent: it is a mirrored replica and
/// carries no sync mark (replay-engine's `sync_mark`).
pub fn claims_consistency(site: &Site) -> bool {
    let Ok(id) = site.image_id(NAME) else {
        return false;
    };
    let store = site.store().as_ref();
    site_mirror::image_record(store, &id).is_ok_and(|r| r.is_some())
        && sync_mark::get(store, &id).is_ok_and(|m| m.is_none())
}

/// The two sites' stores for one run (from `bases`, seeded with `store_seed`), with a crash
/// armed at boundary `crash` of the store the scenario crashes.
pub fn crash_stores(
    bases: &Bases,
    scenario: Scenario,
    seed: u64,
    store_seed: u64,
    crash: Option<u64>,
) -> (Arc<CrashStore>, Arc<CrashStore>) {
    let a = Arc::new(CrashStore::from_snapshot(bases.primary.clone(), store_seed));
    let b = Arc::new(CrashStore::from_snapshot(
        bases.secondary.clone(),
        store_seed ^ 1,
    ));
    if let Some(k) = crash {
        let target = if scenario == Scenario::MirrorSecondary {
            &b
        } else {
            &a
        };
        target.crash_at(k, mode_for(seed, k));
    }
    (a, b)
}

/// Whether the agent reports the image `Replaying`.
pub fn is_replaying(agent: &AgentHandle) -> bool {
    agent
        .image_status(NAME)
        .is_some_and(|s| s.state == ImageState::Replaying)
}

/// Starts the mirror agent (not for [`Scenario::Primary`]) replicating `primary` into the site
/// on `b`; with `wait_sync`, waits up to 3 s for the initial sync to finish. Returns the agent
/// and whether it reported `Replaying`.
pub fn start_agent(
    scenario: Scenario,
    primary: &Site,
    a: &CrashStore,
    b: &Arc<CrashStore>,
    wait_sync: bool,
) -> (Option<AgentHandle>, bool) {
    if scenario == Scenario::Primary {
        return (None, false);
    }
    let agent = MirrorAgent::start(Site::open(b.clone(), 1), primary.clone(), agent_options()).ok();
    let mut synced = false;
    if let (Some(agent), true) = (&agent, wait_sync) {
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end && !a.is_crashed() && !b.is_crashed() && !synced {
            synced = is_replaying(agent);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    (agent, synced)
}

/// Lets the agent catch up until the replica reads `target` (or the crash stops it, or 3 s
/// pass), then stops it. Returns whether it reported `Replaying` meanwhile.
pub fn catch_up(agent: AgentHandle, a: &CrashStore, b: &Arc<CrashStore>, target: &[u8]) -> bool {
    let mut synced = false;
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end && !a.is_crashed() && !b.is_crashed() {
        synced |= is_replaying(&agent);
        if image_bytes(&Site::open(b.clone(), 1)).as_deref() == Some(target) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    agent.stop();
    synced
}

/// Issues one op through the journaled image.
pub fn issue(ji: &JournaledImage, op: Op) -> journal_client::Result<()> {
    match op {
        Op::Write { offset, data } => ji.write(offset, data),
        Op::Discard { offset, len } => ji.discard(offset, len),
        Op::WriteSame {
            offset,
            len,
            pattern,
        } => ji.write_same(offset, len, pattern),
        Op::Flush => ji.flush(),
    }
}

/// Recovery of the reopened primary (invariants 1 and 3): opens the journaled image (replaying
/// its journal), hands what it reads to `check`, closes it, and requires the recovered state
/// to be durable in the image itself. Then, for the mirror scenarios, a restarted agent must
/// bring the replica on `secondary` to it ([`converges`]).
pub fn recover_and_converge(
    scenario: Scenario,
    primary: &Site,
    secondary: &Site,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let ji = primary
        .open_journaled(NAME, settings())
        .map_err(|e| format!("primary recovery failed: {e}"))?;
    let got = ji
        .read(0, IMAGE_SIZE)
        .map_err(|e| format!("read after recovery: {e}"))?;
    check(&got)?;
    ji.close()
        .map_err(|e| format!("close after recovery: {e}"))?;
    drop(ji);
    if image_bytes(primary).as_deref() != Some(&got[..]) {
        return Err("recovered primary image differs from what recovery read".into());
    }
    if scenario != Scenario::Primary {
        converges(primary, secondary, &got)?;
    }
    Ok(())
}

/// After recovery: a restarted agent brings the replica to exactly `recovered` within 10 s.
pub fn converges(primary: &Site, secondary: &Site, recovered: &[u8]) -> Result<(), String> {
    let agent = MirrorAgent::start(secondary.clone(), primary.clone(), agent_options())
        .map_err(|e| format!("agent restart failed: {e}"))?;
    let end = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < end {
        last = image_bytes(secondary);
        if last.as_deref() == Some(recovered) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = agent.status();
    agent.stop();
    if last.as_deref() != Some(recovered) {
        return Err(format!(
            "replica did not converge to the recovered primary (replica image {}; agent \
             status {status:?})",
            if last.is_some() { "differs" } else { "absent" }
        ));
    }
    Ok(())
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    format!(
        "panic: {}",
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    )
}

/// An environment variable as a number.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}
