//! Journal player, replayer and mirror agent for rbdj.

pub mod applier;
pub mod bootstrap;
mod error;
pub mod ids;
pub mod image_journal;
pub mod image_sync;

pub mod role;
pub mod site;
pub mod site_mirror;
pub mod status;
pub mod tag_chain;

pub use error::{ReplayError, Result};
