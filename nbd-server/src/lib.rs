//! An NBD (Network Block Device) server for rbdj images, so unmodified clients — `qemu-io`,
//! `qemu-img`, qemu itself, fio's nbd engine, the kernel's `nbd-client` — can read and write a
//! journaled (and so mirrored) image.
//!
//! The server is generic over [`ExportImage`] (read, write, discard, write-same, flush, size),
//! which every [`journal_client::image::BlockImage`] implements: it exports plain images and
//! journaled images alike. Protocol coverage: fixed newstyle negotiation (`NBD_OPT_GO`, `INFO`,
//! `EXPORT_NAME`, `LIST`, `ABORT`; everything else, structured replies included, is refused with
//! `NBD_REP_ERR_UNSUP`), simple replies, and the commands READ, WRITE, FLUSH, TRIM,
//! WRITE_ZEROES and DISC with FUA. Requests are pipelined per connection (see [`connection`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use journal_client::image::{BlockImage, MemImage};
//! use rbdj_nbd::{ListenAddr, NbdServer, ServerOptions};
//!
//! let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("disk", 1 << 30));
//! let addr = ListenAddr::Tcp("127.0.0.1:10809".parse()?);
//! let server = NbdServer::bind(addr, vec![("disk".into(), image)], ServerOptions::default())?;
//! let stop = server.shutdown_handle(); // call stop.shutdown() from elsewhere
//! let summary = server.serve()?; // returns after shutdown, exports flushed
//! # drop(stop); let _ = summary;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod connection;
mod error;
pub mod export;
pub mod handshake;
pub mod image;
mod journaled;
mod options;
pub mod protocol;
mod server;
mod stream;

pub use connection::ConnectionStats;
pub use error::{NbdError, Result};
pub use export::{Export, Exports};
pub use image::{export_block_image, BlockImageExport, ExportError, ExportImage};
pub use journaled::{export_journaled_image, journal_export_error, JournaledExport};
pub use options::ServerOptions;
pub use server::{ListenAddr, NbdServer, RunningServer, ServeSummary, ShutdownHandle};
pub use stream::NbdStream;
