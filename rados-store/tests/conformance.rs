//! The shared ObjectStore conformance suite, run against RadosStore on a live Ceph cluster
//! (each check in a fresh RADOS namespace). Without a cluster every test prints
//! `SKIPPED: no Ceph cluster (set CEPH_CONF)` to stderr and returns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[cfg(feature = "rados")]
mod common;

#[cfg(feature = "rados")]
mod rados {
    use std::sync::Arc;

    use object_store_trait::testing::conformance;
    use object_store_trait::ObjectStore;

    use super::common::{base_store, fresh_namespace};

    macro_rules! rados_conformance {
        ($($check:ident),* $(,)?) => {
            /// Every check of the suite, as listed here.
            const LISTED: &[&str] = &[$(stringify!($check)),*];
            $(
                #[test]
                fn $check() {
                    let Some(base) = base_store(stringify!($check)) else { return };
                    let factory = || {
                        Arc::new(base.with_namespace(&fresh_namespace("conf")).unwrap())
                            as Arc<dyn ObjectStore>
                    };
                    conformance::$check(&factory);
                }
            )*
        };
    }

    rados_conformance!(
        append_offsets,
        empty_append_creates,
        soft_limit,
        append_omap_guards,
        read_ranges,
        large_reads,
        stat_sizes,
        remove_object,
        list_prefix,
        write_full_replaces,
        write_at_splices,
        omap_get_keys,
        omap_list_ranges,
        omap_batch_atomicity,
        guard_kinds,
        invalid_oids,
        watch_notify,
        watch_wakers,
        concurrent_appends,
        concurrent_soft_limit,
        concurrent_cas_counter,
        concurrent_exclusive_create,
        concurrent_reads_see_whole_batches,
    );

    #[test]
    fn every_suite_check_is_listed() {
        assert_eq!(LISTED, conformance::CHECKS);
    }

    #[test]
    fn notify_crosses_processes() {
        let Some(base) = base_store("notify_crosses_processes") else {
            return;
        };
        assert!(base.notify_crosses_processes());
    }
}

#[cfg(not(feature = "rados"))]
#[test]
fn rados_conformance_not_built() {
    eprintln!(
        "SKIPPED: rados-store built without feature `rados` (no librados): conformance, \
         ceph_semantics, header_interop and librbd_capture tests not run"
    );
}
