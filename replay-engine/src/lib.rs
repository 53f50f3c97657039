//! Journal player, replayer and mirror agent for rbdj.

mod error;
pub mod ids;
pub mod image_journal;

pub mod role;
pub mod site;
pub mod site_mirror;
pub mod status;
pub mod tag_chain;

pub use error::{ReplayError, Result};
