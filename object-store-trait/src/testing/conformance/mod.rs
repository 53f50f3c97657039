//! A conformance suite for [`ObjectStore`] implementations.
//!
//! Every public function checks one part of the contract documented in the crate root against a
//! simple model (a `Vec<u8>` per object, a `BTreeMap` per omap) and panics on a violation. Each
//! takes a factory that returns a *fresh, empty* store. [`run_all`] runs them all in turn;
//! [`crate::conformance_tests!`] expands to one `#[test]` per check:
//!
//! ```no_run
//! use std::sync::Arc;
//! use object_store_trait::{MemStore, ObjectStore};
//!
//! object_store_trait::conformance_tests!(|| Arc::new(MemStore::new()) as Arc<dyn ObjectStore>);
//! # fn main() {}
//! ```

// This module is test support: its job is to panic with a clear message when a store breaks the
// contract.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod concurrency;
mod objects;
mod omap;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

pub use self::concurrency::{
    concurrent_appends, concurrent_cas_counter, concurrent_exclusive_create,
    concurrent_reads_see_whole_batches, concurrent_soft_limit,
};
pub use self::objects::{
    append_offsets, empty_append_creates, invalid_oids, large_reads, list_prefix, read_ranges,
    remove_object, soft_limit, stat_sizes, watch_notify, watch_wakers, write_at_splices,
    write_full_replaces,
};
pub use self::omap::{
    append_omap_guards, guard_kinds, omap_batch_atomicity, omap_get_keys, omap_list_ranges,
};
use crate::{GuardFailure, ObjectStore, StoreError};

/// Builds a fresh, empty store.
pub type Factory<'a> = &'a dyn Fn() -> Arc<dyn ObjectStore>;

pub(crate) fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

pub(crate) fn u64v(v: u64) -> Bytes {
    Bytes::copy_from_slice(&v.to_le_bytes())
}

pub(crate) fn all_omap(store: &dyn ObjectStore, oid: &str) -> BTreeMap<String, Bytes> {
    store
        .omap_list(oid, "", "", usize::MAX)
        .unwrap()
        .into_iter()
        .collect()
}

pub(crate) fn assert_guard_failed(result: crate::Result<()>, key: &str, reason: GuardFailure) {
    match result {
        Err(StoreError::GuardFailed {
            key: k, reason: r, ..
        }) => {
            assert_eq!(k, key, "guard failure names the wrong key");
            assert_eq!(r, reason, "guard failure on {key} has the wrong reason");
        }
        other => panic!("expected GuardFailed({key}, {reason:?}), got {other:?}"),
    }
}

/// Names of every check, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "append_offsets",
    "empty_append_creates",
    "soft_limit",
    "append_omap_guards",
    "read_ranges",
    "large_reads",
    "stat_sizes",
    "remove_object",
    "list_prefix",
    "write_full_replaces",
    "write_at_splices",
    "omap_get_keys",
    "omap_list_ranges",
    "omap_batch_atomicity",
    "guard_kinds",
    "invalid_oids",
    "watch_notify",
    "watch_wakers",
    "concurrent_appends",
    "concurrent_soft_limit",
    "concurrent_cas_counter",
    "concurrent_exclusive_create",
    "concurrent_reads_see_whole_batches",
];

/// Runs every check, each on a fresh store from `factory`.
pub fn run_all(factory: Factory<'_>) {
    append_offsets(factory);
    empty_append_creates(factory);
    soft_limit(factory);
    append_omap_guards(factory);
    read_ranges(factory);
    large_reads(factory);
    stat_sizes(factory);
    remove_object(factory);
    list_prefix(factory);
    write_full_replaces(factory);
    write_at_splices(factory);
    omap_get_keys(factory);
    omap_list_ranges(factory);
    omap_batch_atomicity(factory);
    guard_kinds(factory);
    invalid_oids(factory);
    watch_notify(factory);
    watch_wakers(factory);
    concurrent_appends(factory);
    concurrent_soft_limit(factory);
    concurrent_cas_counter(factory);
    concurrent_exclusive_create(factory);
    concurrent_reads_see_whole_batches(factory);
}

/// Expands to one `#[test]` per conformance check, each building its store with `$factory` (an
/// expression of a type implementing `Fn() -> Arc<dyn ObjectStore>`; evaluated once per test,
/// so it may own a temporary directory). Requires the `testing` feature.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            append_offsets, empty_append_creates, soft_limit, append_omap_guards, read_ranges,
            large_reads, stat_sizes, remove_object, list_prefix, write_full_replaces, write_at_splices,
            omap_get_keys, omap_list_ranges, omap_batch_atomicity, guard_kinds, invalid_oids,
            watch_notify, watch_wakers, concurrent_appends, concurrent_soft_limit, concurrent_cas_counter,
            concurrent_exclusive_create, concurrent_reads_see_whole_batches);
    };
    (@each $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let factory = $factory;
                $crate::testing::conformance::$check(&factory);
            }
        )*
    };
}
