//! `rbdj mirror run` (the agent as a process) and `rbdj mirror status`.
//!
//! Like rbd-mirror, the running agent publishes each image's status into the local site (omap of
//! object [`STATUS_OID`], one JSON record per image, refreshed every second), so `mirror status`
//! in another process can show the agent's state and rates. Positions, entries behind and
//! seconds behind are computed by `mirror status` itself from the primary's journal: the
//! mirror peer client's commit position, then a one-shot read of the entries after it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use journal_core::encoding::{Decode, UTime};
use journal_core::event::EventEntry;
use journal_core::header::{ClientState, JournalHeader, ObjectPosition};
use journal_core::player::{PlayMode, Player, PlayerEvent, PlayerOptions};
use object_store_trait::{ObjectStore, ObjectStoreExt, OmapBatch};
use replay_engine::agent::{AgentOptions, MirrorAgent};
use replay_engine::site::Site;
use replay_engine::status::ImageStatus;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};
use crate::output::Format;
use crate::site_spec::SiteSpec;

/// Object on the local (replica) site holding the agent's published status.
pub const STATUS_OID: &str = "rbdj_mirror_status";
/// A published record older than this means the agent is not running.
const STALE_AFTER: Duration = Duration::from_secs(10);
/// `mirror status` stops counting unapplied entries after this many.
const COUNT_LIMIT: u64 = 1_000_000;

/// The agent's published status of one image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedStatus {
    /// State (`starting`, `syncing`, `replaying`, `stopped`, `error`, `split-brain`).
    pub state: String,
    /// Detail.
    pub description: String,
    /// Entries behind, as the agent last saw it.
    pub entries_behind: u64,
    /// Seconds behind, as the agent last saw it.
    pub seconds_behind: f64,
    /// Payload bytes applied per second.
    pub bytes_per_second: f64,
    /// Entries applied per second.
    pub entries_per_second: f64,
    /// Entries applied since the agent started.
    pub entries_applied: u64,
    /// When this record was written (Unix seconds).
    pub updated_unix: f64,
    /// False in the last record an agent writes when it stops.
    pub running: bool,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn publish(store: &dyn ObjectStore, statuses: &[ImageStatus], running: bool) -> CliResult<()> {
    let mut batch = OmapBatch::new();
    for s in statuses {
        let record = PublishedStatus {
            state: s.state.to_string(),
            description: s.description.clone(),
            entries_behind: s.entries_behind,
            seconds_behind: s.seconds_behind,
            bytes_per_second: s.bytes_per_second,
            entries_per_second: s.entries_per_second,
            entries_applied: s.entries_applied,
            updated_unix: unix_now(),
            running,
        };
        batch.set(
            format!("image_{}", s.name),
            Bytes::from(serde_json::to_vec(&record)?),
        );
    }
    if !batch.is_noop() {
        store.omap_apply(STATUS_OID, &batch)?;
    }
    Ok(())
}

fn open(spec: &SiteSpec, pool_id: i64) -> CliResult<Site> {
    Ok(Site::open(
        spec.open_store(crate::site_spec::site_store_options())?,
        pool_id,
    ))
}

/// What `rbdj mirror run` was given.
#[derive(Debug)]
pub struct RunArgs<'a> {
    /// The replica site.
    pub local: &'a SiteSpec,
    /// The primary site.
    pub remote: &'a SiteSpec,
    /// Pool id in journal object names.
    pub pool_id: i64,
    /// Seconds replicas stay behind.
    pub replay_delay: u64,
    /// Seconds between status prints (0 = never).
    pub status_interval: u64,
    /// The agent's id in the leader lease (`None`: a fresh one).
    pub agent_id: Option<String>,
}

/// Runs the agent until Ctrl-C (or SIGTERM), publishing status every second.
pub fn run(args: &RunArgs<'_>, out: &mut dyn Write) -> CliResult<()> {
    let RunArgs {
        local,
        remote,
        pool_id,
        replay_delay,
        status_interval,
        ..
    } = *args;
    if matches!(local, SiteSpec::Mem) || matches!(remote, SiteSpec::Mem) {
        return Err(CliError::Invalid(
            "mirror run needs persistent sites (dir:PATH); mem: sites vanish with the process"
                .into(),
        ));
    }
    let local_site = open(local, pool_id)?;
    let remote_site = open(remote, pool_id)?;
    let mut options = AgentOptions {
        agent_id: args.agent_id.clone(),
        ..AgentOptions::default()
    };
    options.replayer.replay_delay = Duration::from_secs(replay_delay);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| CliError::Invalid(format!("cannot install the Ctrl-C handler: {e}")))?;
    let agent = MirrorAgent::start(local_site.clone(), remote_site, options)?;
    writeln!(
        out,
        "mirror agent running ({remote} -> {local}); Ctrl-C stops it"
    )?;
    out.flush()?;
    let mut last_print = Instant::now();
    let mut was_leader = false;
    let mut said_standby = false;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        let statuses = agent.status();
        // Only the agent holding the leader lease mirrors, so only it publishes: a standby
        // would overwrite the leader's status with its own empty one.
        if agent.is_leader() {
            was_leader = true;
            if let Err(e) = publish(local_site.store().as_ref(), &statuses, true) {
                tracing::warn!("cannot publish mirror status: {e}");
            }
        } else if !said_standby {
            said_standby = true;
            writeln!(
                out,
                "standby: another agent holds the leader lease for this pair of sites"
            )?;
            out.flush()?;
        }
        if status_interval > 0 && last_print.elapsed() >= Duration::from_secs(status_interval) {
            last_print = Instant::now();
            for s in &statuses {
                writeln!(
                    out,
                    "{}: {} entries_behind={} seconds_behind={:.3} entries/s={:.0}",
                    s.name, s.state, s.entries_behind, s.seconds_behind, s.entries_per_second
                )?;
            }
            out.flush()?;
        }
    }
    writeln!(out, "stopping: flushing replicas and committing positions")?;
    let mut last = agent.status();
    agent.stop();
    for s in &mut last {
        s.state = replay_engine::status::ImageState::Stopped;
        s.description = "agent stopped".into();
        s.bytes_per_second = 0.0;
        s.entries_per_second = 0.0;
    }
    if was_leader {
        publish(local_site.store().as_ref(), &last, false)?;
    }
    writeln!(out, "mirror agent stopped")?;
    Ok(())
}

/// One image's row of `mirror status`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRow {
    /// Image name.
    pub name: String,
    /// State.
    pub state: String,
    /// Detail.
    pub description: String,
    /// Entries in the primary's journal after the mirror peer's commit position.
    pub entries_behind: u64,
    /// Age of the oldest unapplied event (from its journal timestamp), 0 when caught up.
    pub seconds_behind: f64,
    /// Bytes per second (from the running agent; 0 when it is not running).
    pub bytes_per_second: f64,
    /// Entries per second (from the running agent).
    pub entries_per_second: f64,
    /// The primary image client's newest commit position.
    pub primary_position: Option<PositionRow>,
    /// The mirror peer's newest commit position.
    pub non_primary_position: Option<PositionRow>,
    /// Whether a running agent published this image's status in the last 10 s.
    pub agent_running: bool,
}

/// A commit position.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PositionRow {
    /// Object number.
    pub object_number: u64,
    /// Tag tid.
    pub tag_tid: u64,
    /// Entry tid.
    pub entry_tid: u64,
}

impl From<&ObjectPosition> for PositionRow {
    fn from(p: &ObjectPosition) -> Self {
        PositionRow {
            object_number: p.object_number,
            tag_tid: p.tag_tid,
            entry_tid: p.entry_tid,
        }
    }
}

/// `mirror status` output.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// `OK`, `WARNING` or `ERROR`.
    pub pool_health: String,
    /// The agent holding the leader lease for this pair of sites (the one that mirrors), if
    /// the lease is held and has not expired.
    pub leader: Option<String>,
    /// One row per journaled image of the primary site.
    pub images: Vec<ImageRow>,
}

/// Counts the entries after `client_id`'s position and the age of the first one.
fn backlog(header: &JournalHeader, client_id: &str) -> CliResult<(u64, f64)> {
    let options = PlayerOptions {
        mode: PlayMode::OneShot,
        prefetch_bytes_max: 1 << 20,
        ..PlayerOptions::default()
    };
    let mut player = Player::open(header, client_id, options)
        .map_err(|e| CliError::Invalid(format!("reading the primary journal: {e}")))?;
    let mut count = 0u64;
    let mut oldest: Option<UTime> = None;
    while count < COUNT_LIMIT {
        match player.next() {
            Ok(PlayerEvent::Entry(e)) => {
                count += 1;
                if oldest.is_none() {
                    oldest = EventEntry::from_bytes(e.entry.data)
                        .ok()
                        .map(|ev| ev.timestamp)
                        .filter(|t| !t.is_zero());
                }
            }
            Ok(PlayerEvent::End) => break,
            Err(e) => {
                return Err(CliError::Invalid(format!(
                    "reading the primary journal: {e}"
                )))
            }
        }
    }
    let age = oldest.map_or(0.0, |t| {
        UTime::now()
            .as_duration()
            .saturating_sub(t.as_duration())
            .as_secs_f64()
    });
    Ok((count, age))
}

/// Computes the status of every journaled image of `remote` as mirrored into `local`.
/// Read-only: a site without a mirror uuid yet (no agent ever ran) gets none.
pub fn compute(local: &Site, remote: &Site) -> CliResult<StatusReport> {
    let peer_id = local.existing_mirror_uuid()?;
    let mut images = Vec::new();
    for info in remote.list_images()? {
        if !info.journaled() {
            continue;
        }
        let header = remote.journal_header(&info.id);
        let meta = header.get_mutable_metadata()?;
        let primary_position = meta
            .client("")
            .and_then(|c| c.commit_position.first())
            .map(PositionRow::from);
        let peer = peer_id.as_deref().and_then(|id| meta.client(id));
        let non_primary_position = peer
            .and_then(|c| c.commit_position.first())
            .map(PositionRow::from);
        let published = local
            .store()
            .omap_get_one(STATUS_OID, &format!("image_{}", info.name))?
            .and_then(|v| serde_json::from_slice::<PublishedStatus>(&v).ok())
            .filter(|p| !p.running || unix_now() - p.updated_unix < STALE_AFTER.as_secs_f64());
        let (mut state, mut description) = match &published {
            Some(p) => (p.state.clone(), p.description.clone()),
            None => ("stopped".to_owned(), "no running agent".to_owned()),
        };
        let (entries_behind, seconds_behind) = match peer {
            None => {
                if published.is_none() {
                    description = "not registered on the primary journal".into();
                }
                (0, 0.0)
            }
            Some(c) if c.state == ClientState::Disconnected => {
                state = "error".into();
                description = "mirror peer client disconnected from the primary journal".into();
                (0, 0.0)
            }
            Some(c) => backlog(&header, &c.id)?,
        };
        images.push(ImageRow {
            name: info.name.clone(),
            state,
            description,
            entries_behind,
            seconds_behind,
            bytes_per_second: published.as_ref().map_or(0.0, |p| p.bytes_per_second),
            entries_per_second: published.as_ref().map_or(0.0, |p| p.entries_per_second),
            primary_position,
            non_primary_position,
            agent_running: published.as_ref().is_some_and(|p| p.running),
        });
    }
    let health = if images
        .iter()
        .any(|r| r.state == "error" || r.state == "split-brain")
    {
        "ERROR"
    } else if images.iter().any(|r| r.state != "replaying") {
        "WARNING"
    } else {
        "OK"
    };
    let leader = match remote.existing_mirror_uuid()? {
        Some(remote_uuid) => {
            replay_engine::leader::current_holder(local.store().as_ref(), &remote_uuid)?
                .filter(|h| !h.expired())
                .map(|h| h.agent_id)
        }
        None => None,
    };
    Ok(StatusReport {
        pool_health: health.to_owned(),
        leader,
        images,
    })
}

/// `mirror status`.
pub fn status(
    local: &SiteSpec,
    remote: &SiteSpec,
    pool_id: i64,
    format: Format,
    out: &mut dyn Write,
) -> CliResult<()> {
    let report = compute(&open(local, pool_id)?, &open(remote, pool_id)?)?;
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Format::Plain => {
            writeln!(out, "health: {}", report.pool_health)?;
            match &report.leader {
                Some(id) => writeln!(out, "agent: {id} (holds the leader lease)")?,
                None => writeln!(out, "agent: none holds the leader lease")?,
            }
            writeln!(out, "images: {} total", report.images.len())?;
            for r in &report.images {
                writeln!(out)?;
                writeln!(out, "{}:", r.name)?;
                writeln!(out, "  state:             {}", r.state)?;
                writeln!(out, "  description:       {}", r.description)?;
                writeln!(out, "  entries_behind:    {}", r.entries_behind)?;
                writeln!(out, "  seconds_behind:    {:.3}", r.seconds_behind)?;
                writeln!(
                    out,
                    "  rates:             {:.0} entries/s, {:.0} bytes/s",
                    r.entries_per_second, r.bytes_per_second
                )?;
            }
        }
    }
    Ok(())
}
