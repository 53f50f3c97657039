//! The primary's journal object sets are trimmed once every peer (and the image itself) has
//! committed past them, and not while a peer still needs them.
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
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;

fn journal_objects(site: &Site, id: &str) -> Vec<String> {
    site.store()
        .list(&format!("journal_data.{}.{id}.", site.pool_id()))
        .unwrap()
}

#[test]
fn sets_are_trimmed_only_after_all_peers_commit() {
    let primary = Site::open(Arc::new(MemStore::new()), 5);
    let sec = Site::open(Arc::new(MemStore::new()), 5);
    primary.set_mirror_mode(MirrorMode::Pool).unwrap();
    // 4 KiB objects, width 2: every couple of writes closes a set.
    let shape = JournalShape {
        order: 12,
        splay_width: 2,
    };
    primary
        .create_image("vol", IMAGE_SIZE, Some(shape))
        .unwrap();
    let id = primary.image_id("vol").unwrap();
    let header = primary.journal_header(&id);

    // Let the agent register, then stop it: its position now holds back trimming.
    let agent = MirrorAgent::start(sec.clone(), primary.clone(), fast_agent_options()).unwrap();
    let expected0 = contents(primary.open_image("vol").unwrap().as_ref());
    assert!(wait_replica_equals(
        &sec,
        "vol",
        &expected0,
        Duration::from_secs(10)
    ));
    assert!(wait_until(Duration::from_secs(10), || header
        .get_client(&sec.mirror_uuid().unwrap())
        .is_ok()));
    agent.stop();

    let writer = PrimaryWriter::open(&primary, "vol");
    for i in 0..40u64 {
        writer.write(i * 4096, Bytes::from(vec![i as u8 + 1; 3000]));
    }
    writer.close();
    let meta = header.get_mutable_metadata().unwrap();
    assert!(meta.active_set >= 5, "workload should span several sets");
    // The image client committed everything, but the stopped peer did not: nothing trimmed.
    header.trim().unwrap();
    assert_eq!(header.get_mutable_metadata().unwrap().minimum_set, 0);
    assert!(journal_objects(&primary, &id)
        .iter()
        .any(|o| o.ends_with(".0")));

    // Restart the agent: it replays, commits, and its trimmer removes the old sets.
    let agent = MirrorAgent::start(sec.clone(), primary.clone(), fast_agent_options()).unwrap();
    let expected = contents(primary.open_image("vol").unwrap().as_ref());
    assert!(wait_replica_equals(
        &sec,
        "vol",
        &expected,
        Duration::from_secs(20)
    ));
    assert!(
        wait_until(Duration::from_secs(10), || {
            header.get_mutable_metadata().unwrap().minimum_set >= meta.active_set
        }),
        "minimum_set {} never reached {}",
        header.get_mutable_metadata().unwrap().minimum_set,
        meta.active_set
    );
    let min = header.get_mutable_metadata().unwrap().minimum_set;
    let layout = header.get_immutable_metadata().unwrap().layout().unwrap();
    for oid in journal_objects(&primary, &id) {
        let n: u64 = oid.rsplit('.').next().unwrap().parse().unwrap();
        assert!(
            layout.object_set(n) >= min,
            "object {oid} of a trimmed set still exists"
        );
    }
    agent.stop();
}
