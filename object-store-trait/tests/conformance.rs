//! The conformance suite run against every backend and wrapper in this crate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use object_store_trait::{Checked, DirStore, DirStoreOptions, MemStore, ObjectStore, SyncPolicy};

/// A factory of DirStores in fresh sub-directories of one temporary directory (removed when the
/// factory is dropped at the end of the test).
fn dir_factory(opts: DirStoreOptions) -> impl Fn() -> Arc<dyn ObjectStore> {
    let tmp = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    move || {
        let path = tmp
            .path()
            .join(n.fetch_add(1, Ordering::SeqCst).to_string());
        Arc::new(DirStore::open(path, opts.clone()).unwrap()) as Arc<dyn ObjectStore>
    }
}

mod mem {
    use super::*;
    object_store_trait::conformance_tests!(|| Arc::new(MemStore::new()) as Arc<dyn ObjectStore>);
}

mod checked_mem {
    use super::*;
    object_store_trait::conformance_tests!(
        || Arc::new(Checked::new(MemStore::new())) as Arc<dyn ObjectStore>
    );
}

mod dir_synced {
    use super::*;
    object_store_trait::conformance_tests!(dir_factory(DirStoreOptions::default()));
}

mod dir_unsynced {
    use super::*;
    object_store_trait::conformance_tests!(dir_factory(DirStoreOptions {
        sync: SyncPolicy::None,
        ..DirStoreOptions::default()
    }));
}

mod dir_pread_only {
    use super::*;
    object_store_trait::conformance_tests!(dir_factory(DirStoreOptions {
        sync: SyncPolicy::None,
        mmap_reads: false,
        ..DirStoreOptions::default()
    }));
}

#[test]
fn run_all_covers_every_check() {
    // `run_all` and the macro list the same checks; running it once on MemStore keeps it honest.
    object_store_trait::testing::conformance::run_all(&|| {
        Arc::new(MemStore::new()) as Arc<dyn ObjectStore>
    });
    assert_eq!(object_store_trait::testing::conformance::CHECKS.len(), 23);
}
