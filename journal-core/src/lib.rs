//! The Ceph RBD journal format, byte-compatible with Ceph 16.2 (Pacific).
//!
//! * [`encoding`]: Ceph's encoding primitives and the versioned envelope.
//!
//! # Example
//!
//! ```
//! use journal_core::encoding::{Decode, Encode, UTime};
//!
//! let t = UTime { sec: 1, nsec: 2 };
//! let bytes = t.to_bytes();
//! assert_eq!(&bytes[..], &[1, 0, 0, 0, 2, 0, 0, 0]);
//! assert_eq!(UTime::from_bytes(bytes)?, t);
//! # Ok::<(), journal_core::DecodeError>(())
//! ```

pub mod client_data;
pub mod encoding;
pub mod entry;
mod error;
pub mod event;
pub mod header;
pub mod layout;
pub mod snap_namespace;
pub mod tag_data;

pub use error::{DecodeError, JournalError, Result};
