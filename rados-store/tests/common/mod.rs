//! Shared helpers of the cluster tests: find the local cluster or skip loudly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rados_store::{RadosStore, RadosStoreOptions};

/// The skip line every cluster test prints when no cluster is configured.
pub const SKIP: &str = "SKIPPED: no Ceph cluster (set CEPH_CONF)";

/// A store on the cluster named by `RBDJ_CEPH_CONF`/`CEPH_CONF` (pool `rbd`, default namespace),
/// or `None` after printing the skip line. A configured but unreachable cluster fails the test, and
/// so does a missing one when `RBDJ_REQUIRE_CEPH=1` (set by `.ci/run`).
pub fn base_store(test: &str) -> Option<&'static RadosStore> {
    static STORE: OnceLock<Option<RadosStore>> = OnceLock::new();
    let store = STORE.get_or_init(|| {
        let options = RadosStoreOptions::from_env()?;
        Some(RadosStore::connect(options.clone()).unwrap_or_else(|e| {
            panic!(
                "CEPH_CONF is set ({:?}) but connecting failed: {e}",
                options.conf_path
            )
        }))
    });
    if store.is_none() {
        if std::env::var("RBDJ_REQUIRE_CEPH").is_ok_and(|v| v == "1") {
            panic!("RBDJ_REQUIRE_CEPH=1 but neither RBDJ_CEPH_CONF nor CEPH_CONF is set [{test}]");
        }
        eprintln!("{SKIP} [{test}]");
    }
    store.as_ref()
}

/// A fresh, empty RADOS namespace name, unique to this process and call.
pub fn fresh_namespace(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "rbdj-{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The `CEPH_CONF` path the tests use (for running `rbd`/`rados` CLIs against the same cluster).
pub fn conf_path() -> Option<String> {
    std::env::var("RBDJ_CEPH_CONF")
        .ok()
        .or_else(|| std::env::var("CEPH_CONF").ok())
        .filter(|v| !v.is_empty())
}

pub mod capture;
