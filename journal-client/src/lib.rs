//! The journaled image write path of rbdj.
//!
//! * [`image`]: the [`image::BlockImage`] trait and three images (memory, sparse file, object
//!   store).
//! * [`settings`]: librbd's journal options.
//! * [`recorder`]: the journal writer (group commit, prefix-durable [`AppendFuture`]s, set
//!   rollover), with [`fence`] keeping stale writers out of the data objects.
//! * [`apply`]: librbd's event-application rules, shared by crash recovery and mirroring.

pub mod append_future;
pub mod apply;
mod error;
pub mod fence;
pub mod image;
mod object_recorder;
pub mod recorder;
pub mod settings;

pub use append_future::AppendFuture;
pub use error::{JournalClientError, RecorderError, Result};
pub use recorder::{Recorder, RecorderConfig};
pub use settings::JournalSettings;
