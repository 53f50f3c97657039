//! The journaled image write path of rbdj: every write to a block image becomes a durable,
//! Ceph-format journal entry before the caller hears "done"; the image is written afterwards, in
//! journal order, and replayed from the journal after a crash.
//!
//! * [`JournaledImage`]: wraps any [`image::BlockImage`] (write, discard, write-same,
//!   compare-and-write, flush, snapshot and other maintenance ops), with read-your-writes,
//!   commit positions, trimming, single-writer fencing and crash recovery.
//! * [`image`]: the [`image::BlockImage`] trait and three images (memory, sparse file, object
//!   store).
//! * [`settings`]: librbd's journal options.
//! * [`recorder`]: the journal writer (group commit, prefix-durable [`AppendFuture`]s, set
//!   rollover), with [`fence`] keeping stale writers out of the data objects.
//! * [`apply`]: librbd's event-application rules, shared by crash recovery and mirroring.
//!
//! The run-time design is written up in `docs/design.md` (section journal-client).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use journal_client::image::{BlockImage, MemImage};
//! use journal_client::{JournalSettings, JournaledImage};
//! use object_store_trait::{MemStore, ObjectStore};
//!
//! let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
//! let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("disk", 1 << 20));
//!
//! // Creates the journal `journal.img1` and takes ownership of it (tag 1).
//! let disk = JournaledImage::open(store.clone(), "img1", image.clone(), JournalSettings::default())?;
//! disk.write(4096, Bytes::from_static(b"hello"))?; // durable in the journal when it returns
//! assert_eq!(&disk.read(4096, 5)?[..], b"hello"); // visible even before the image write
//! disk.snap_create("before")?;
//! disk.write(4096, Bytes::from_static(b"HELLO"))?;
//! disk.snap_rollback("before")?;
//! assert_eq!(&disk.read(4096, 5)?[..], b"hello");
//! disk.close()?;
//!
//! // The journal holds the events librbd would have written, under tag 1.
//! let objects = store.list("journal_data.0.img1.")?;
//! assert!(!objects.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod append_future;
pub mod apply;
mod error;
pub mod fence;
pub mod image;
mod journaled_image;
mod object_recorder;
pub mod prepared_entry;
pub mod recorder;
pub mod settings;
mod slab;

pub use append_future::AppendFuture;
pub use error::{JournalClientError, RecorderError, Result};
pub use journaled_image::{JournaledImage, IMAGE_CLIENT_ID};
pub use prepared_entry::PreparedEntry;
pub use recorder::{Recorder, RecorderConfig};
pub use settings::JournalSettings;
