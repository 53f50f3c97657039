//! The `rbdj` command-line tool's library half: site specs, Ceph's export file format and the
//! command implementations, so integration tests and other tools can reuse them.
//!
//! # Example
//!
//! ```
//! use rbdj::export_file::{write_header, write_record, ExportReader, ExportRecord};
//!
//! let mut out = Vec::new();
//! write_header(&mut out, "10226b8b4567")?;
//! let rec = ExportRecord { tag_id: 1, commit_tid: 1, event_type: 2, entry: bytes::Bytes::from_static(b"x") };
//! write_record(&mut out, &rec)?;
//! let mut reader = ExportReader::new(&out[..]);
//! assert_eq!(reader.next_record()?, Some(rec));
//! assert_eq!(reader.journal_id(), Some("10226b8b4567"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bench;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod error;
pub mod export_file;
pub mod image_cmd;
pub mod journal_import;
pub mod journal_tools;
pub mod mirror_cmd;
pub mod nbd_cmd;
pub mod output;
pub mod site_spec;
pub mod stats;
pub mod writable;
