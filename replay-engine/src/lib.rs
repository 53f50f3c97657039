//! Journal player, replayer and mirror agent for rbdj: what Ceph's rbd-mirror daemon does for
//! journal-based mirroring, as a library.
//!
//! * [`site`]: a *site* (an object store and a pool id) holding images: directory, create / list
//!   / open / remove, journaled images; [`site_mirror`]: its mirroring settings (mode, mirror
//!   uuid, peers, per-image records).
//! * [`live_player`]: live tailing of a journal over journal-core's player (watch/notify with a
//!   poll fallback, bounded prefetch).
//! * [`replayer`]: applies a remote journal to a local replica through journal-client's event
//!   applier ([`applier`]), committing its position on the remote journal only after the
//!   replica was flushed, and mapping tags across sites ([`tag_chain`]).
//! * [`bootstrap`], [`image_sync`]: replica creation, mirror-peer registration, resumable full
//!   image sync from a journal sync point, resync; [`sync_mark`]: the durable mark that a replica
//!   is not yet consistent (copying, or replaying up to the newest entry the copy may hold).
//! * [`role`]: promote, demote, force-promote.
//! * [`agent`]: the mirror agent (pool watcher + an image replayer per image, run by a few
//!   [`replay_pool`] threads whatever the number of images), reporting [`status`] per image.
//!
//! The design is written up in `docs/mirroring.md`.
//!
//! # Example
//!
//! One-way mirroring of a journaled image between two in-memory sites: the agent on the
//! secondary creates the replica, syncs it and replays; a failover then swaps the roles.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use object_store_trait::MemStore;
//! use replay_engine::agent::{AgentOptions, MirrorAgent};
//! use replay_engine::role::{change_role, RoleChange};
//! use replay_engine::site::{JournalShape, Site};
//! use replay_engine::site_mirror::MirrorMode;
//! use replay_engine::status::ImageState;
//!
//! let primary = Site::open(Arc::new(MemStore::new()), 1);
//! let secondary = Site::open(Arc::new(MemStore::new()), 1);
//! primary.set_mirror_mode(MirrorMode::Pool)?;
//! primary.create_image("vol", 1 << 20, Some(JournalShape::default()))?;
//!
//! let agent = MirrorAgent::start(secondary.clone(), primary.clone(), AgentOptions::default())?;
//! let deadline = Instant::now() + Duration::from_secs(20);
//! while agent.image_status("vol").map(|s| s.state) != Some(ImageState::Replaying) {
//!     assert!(Instant::now() < deadline, "{:?}", agent.status());
//!     std::thread::sleep(Duration::from_millis(10));
//! }
//! assert!(!secondary.is_primary("vol")?);
//! assert_eq!(
//!     secondary.mirror_image("vol")?.map(|m| m.global_id),
//!     primary.mirror_image("vol")?.map(|m| m.global_id),
//! );
//! agent.stop();
//!
//! // A forced promotion makes the replica primary (the old primary must then be demoted and
//! // resynced, or both sides report split-brain).
//! change_role(&secondary, "vol", RoleChange::ForcePromote)?;
//! assert!(secondary.is_primary("vol")?);
//! # Ok::<(), replay_engine::ReplayError>(())
//! ```

mod error;

pub mod agent;
pub mod applier;
pub mod bootstrap;
pub mod ids;
pub mod image_journal;
pub mod image_sync;
mod image_task;
pub mod leader;
pub mod live_player;
pub mod replay_pool;
pub mod replayer;
mod replayer_options;
pub mod role;
pub mod site;
pub mod site_mirror;
pub mod snapshot_copy;
pub mod status;
pub mod sync_mark;
pub mod tag_chain;
pub mod write_back;

pub use error::{ReplayError, Result};
