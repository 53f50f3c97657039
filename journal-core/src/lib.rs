//! The Ceph RBD journal format, byte-compatible with Ceph 16.2 (Pacific).
//!
//! * [`encoding`]: Ceph's encoding primitives and the versioned envelope.
//! * [`layout`]: object names and the splay / object-set arithmetic.
//! * [`entry`]: entry framing in data objects (preamble, tids, payload, CRC-32C) and the
//!   reader's scan of a whole object (padding, partial tails, corrupt ranges).
//! * [`event`]: librbd's `EventEntry`, the payload of every RBD journal entry.
//! * [`client_data`], [`tag_data`], [`snap_namespace`]: librbd's client and tag data blobs
//!   and cls_rbd's snapshot namespaces.
//! * [`header`]: header records and the `journal` object-class operations.
//! * [`commit`]: commit-position bookkeeping (commit tids folded into a client's position).
//! * [`player`]: the journal reader (replay order, tag rules, live tailing, bounded memory).
//!
//! The byte layouts are written up in `docs/format.md`.
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
//!
//! Framing a librbd write event and reading it back from an object:
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use journal_core::encoding::{Decode, Encode, UTime};
//! use journal_core::{scan_object, Entry, Event, EventEntry, Layout};
//!
//! let layout = Layout::new(24, 4)?;
//! let event = EventEntry::new(
//!     Event::AioWrite { offset: 0, length: 5, data: Bytes::from_static(b"hello") },
//!     UTime { sec: 1_700_000_000, nsec: 0 },
//! );
//! let entry = Entry::new(1, 6, event.to_bytes());
//! assert_eq!(layout.splay_offset(entry.entry_tid), 2); // goes to object 2 of the set
//!
//! let mut object = BytesMut::new();
//! entry.encode_into(&mut object);
//! let scan = scan_object(&object.freeze(), 0);
//! assert!(scan.is_clean() && !scan.partial_tail);
//! let back = EventEntry::from_bytes(scan.entries[0].entry.data.clone())?;
//! assert_eq!(back, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client_data;
pub mod commit;
pub mod crc_shift;
pub mod encoding;
pub mod entry;
mod error;
pub mod event;
pub mod header;
mod key_index;
pub mod layout;
pub mod player;
pub mod snap_namespace;
pub mod tag_data;

pub use entry::{scan_object, Entry, EntryError, ObjectScan, ScannedEntry};
pub use error::{DecodeError, JournalError, Result};
pub use event::{Event, EventEntry};
pub use header::{HeaderError, JournalHeader};
pub use layout::Layout;
