//! A RADOS backend for rbdj's [`object_store_trait::ObjectStore`], over librados (Ceph 16.2).
//!
//! With the cargo feature `rados` (which links `librados`; Debian package `librados-dev`) the
//! crate provides [`RadosStore`]. Without it only the pure helpers build, so a workspace build
//! does not need librados.
//!
//! ```no_run
//! # #[cfg(feature = "rados")] {
//! use rados_store::{RadosStore, RadosStoreOptions};
//! use object_store_trait::{AppendGuard, ObjectStore};
//!
//! let store = RadosStore::connect(RadosStoreOptions {
//!     conf_path: Some("/tmp/ceph/ceph.conf".into()),
//!     ..RadosStoreOptions::default()
//! })?;
//! store.append("obj", &[bytes::Bytes::from_static(b"x")], &AppendGuard::soft_max(1 << 24))?;
//! # }
//! # Ok::<(), object_store_trait::StoreError>(())
//! ```
//!
//! See `store.rs` (module docs of [`RadosStore`]) for how each part of the store contract is
//! mapped onto RADOS, and `docs/ceph-interop.md` for the local test cluster.

pub mod errno;
pub mod notify_reply;
mod options;

#[cfg(feature = "rados")]
#[allow(unsafe_code)]
mod ffi;
#[cfg(feature = "rados")]
mod known;
#[cfg(feature = "rados")]
mod store;

pub use options::RadosStoreOptions;
#[cfg(feature = "rados")]
pub use store::{CephCmpOp, RadosStore};
