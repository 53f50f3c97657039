//! Snapshots and image-meta that exist before mirroring starts reach the replica with the image
//! sync (same ids, names, sizes, protection and data), so later ops on them — rename, protect,
//! rollback — replay on the replica. Oracle: a reference MemImage given the same operations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use journal_client::image::{BlockImage, MemImage};
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

fn snaps(img: &dyn BlockImage) -> Vec<(u64, String, u64, bool)> {
    img.snap_list()
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.name, s.size, s.protected))
        .collect()
}

#[test]
fn pre_sync_snapshots_are_copied_and_later_ops_replay() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let reference = MemImage::new("vol", IMAGE_SIZE);
    let block = |v: u8| Bytes::from(vec![v; 8192]);

    // Before mirroring: data, two snapshots, image-meta.
    let img = open_product_writer(&a, "vol");
    img.write(0, block(1)).unwrap();
    reference.write(0, block(1)).unwrap();
    img.snap_create("s1").unwrap();
    reference.snap_create("s1").unwrap();
    img.write(0, block(2)).unwrap();
    reference.write(0, block(2)).unwrap();
    img.snap_create("s2").unwrap();
    reference.snap_create("s2").unwrap();
    img.metadata_set("owner", "team-a").unwrap();
    reference.metadata_set("owner", "team-a").unwrap();
    img.close().unwrap();

    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    let agent = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    let expected = contents(&reference);
    assert!(wait_replica_equals(
        &b,
        "vol",
        &expected,
        Duration::from_secs(20)
    ));

    // After the sync: ops on the pre-sync snapshots, then more writes.
    let img = open_product_writer(&a, "vol");
    img.snap_rename("s1", "s1-renamed").unwrap();
    reference.snap_rename("s1", "s1-renamed").unwrap();
    img.snap_protect("s2").unwrap();
    reference.snap_protect("s2").unwrap();
    img.write(16384, block(3)).unwrap();
    reference.write(16384, block(3)).unwrap();
    img.snap_rollback("s1-renamed").unwrap();
    reference.snap_rollback("s1-renamed").unwrap();
    img.write(32768, block(4)).unwrap();
    reference.write(32768, block(4)).unwrap();
    img.close().unwrap();

    let expected = contents(&reference);
    assert_eq!(contents(a.open_image("vol").unwrap().as_ref()), expected);
    assert!(
        wait_replica_equals(&b, "vol", &expected, Duration::from_secs(20)),
        "replica did not converge: {:?}",
        agent.status()
    );
    let replica = b.open_image("vol").unwrap();
    assert_eq!(snaps(replica.as_ref()), snaps(&reference));
    assert_eq!(
        replica.metadata_get("owner").unwrap().as_deref(),
        Some("team-a")
    );
    agent.stop();
    // The replica's copies hold the snapshots' data: roll the (no longer replicated) replica
    // back and read.
    replica.snap_rollback("s2").unwrap();
    assert_eq!(replica.read(0, 8192).unwrap(), block(2));
    replica.snap_rollback("s1-renamed").unwrap();
    assert_eq!(replica.read(0, 8192).unwrap(), block(1));
}
