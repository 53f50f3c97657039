//! Pool mode: every journaled image of the primary site is mirrored, images created later are
//! picked up, non-journaled images are not mirrored, and a deleted primary image's replica is
//! removed.
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
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

fn names(site: &Site) -> Vec<String> {
    site.list_images()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect()
}

#[test]
fn pool_mode_follows_image_creation_and_removal() {
    let a = Site::open(Arc::new(MemStore::new()), 2);
    let b = Site::open(Arc::new(MemStore::new()), 2);
    a.create_image("early", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    a.create_image("plain", IMAGE_SIZE, None).unwrap();
    // Switching to pool mode enables the existing journaled image.
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    assert!(a.mirror_image("early").unwrap().is_some());
    assert!(a.mirror_image("plain").unwrap().is_none());
    let agent = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();

    // A journaled image created later is mirrored too.
    a.create_image("late", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let w = PrimaryWriter::open(&a, "late");
    w.write(4096, Bytes::from(vec![7u8; 4096]));
    w.close();
    let expected = contents(a.open_image("late").unwrap().as_ref());
    assert!(wait_replica_equals(
        &b,
        "late",
        &expected,
        Duration::from_secs(10)
    ));
    assert!(wait_until(Duration::from_secs(10), || names(&b)
        .contains(&"early".to_owned())));
    assert!(
        !names(&b).contains(&"plain".to_owned()),
        "non-journaled image mirrored"
    );
    assert_eq!(
        b.mirror_image("late").unwrap().unwrap().global_id,
        a.mirror_image("late").unwrap().unwrap().global_id
    );

    // Removing the primary image removes its replica.
    a.remove_image("early").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !names(&b)
            .contains(&"early".to_owned())),
        "replica of a deleted image kept: {:?}",
        names(&b)
    );
    assert!(names(&b).contains(&"late".to_owned()));
    agent.stop();
}
