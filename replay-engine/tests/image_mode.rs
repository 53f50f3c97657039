//! Image mode: only images enabled one by one are mirrored; disabling mirroring removes the
//! replica.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use object_store_trait::MemStore;
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

fn has(site: &Site, name: &str) -> bool {
    site.list_images().unwrap().iter().any(|i| i.name == name)
}

#[test]
fn only_enabled_images_are_mirrored() {
    let a = Site::open(Arc::new(MemStore::new()), 2);
    let b = Site::open(Arc::new(MemStore::new()), 2);
    a.set_mirror_mode(MirrorMode::Image).unwrap();
    a.create_image("x", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    a.create_image("y", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    assert!(
        a.mirror_image("x").unwrap().is_none(),
        "image mode does not auto-enable"
    );
    a.mirror_enable("x").unwrap();
    let agent = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();
    assert!(wait_until(Duration::from_secs(10), || has(&b, "x")));
    // The pool watcher has scanned several times; y is still not mirrored.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!has(&b, "y"));
    assert!(agent.image_status("y").is_none());

    a.mirror_enable("y").unwrap();
    assert!(wait_until(Duration::from_secs(10), || has(&b, "y")));
    a.mirror_disable("x").unwrap();
    assert!(wait_until(Duration::from_secs(10), || !has(&b, "x")));
    assert!(has(&a, "x"), "disabling mirroring keeps the primary");
    agent.stop();
}
