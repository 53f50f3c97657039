//! Mirroring of an image written through journal-client's `JournaledImage` (the product write
//! path), including maintenance ops: a concurrent workload of writes, discards, write-same and
//! compare-and-write plus a resize and snapshots; the replica ends equal to the primary and to a
//! reference MemImage fed the same acknowledged operations, with the same size and snapshots.
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
use journal_client::JournalSettings;
use object_store_trait::MemStore;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replay_engine::agent::MirrorAgent;
use replay_engine::site::Site;
use replay_engine::site_mirror::MirrorMode;

#[test]
fn journaled_image_with_ops_is_mirrored() {
    let a = Site::open(Arc::new(MemStore::new()), 1);
    let b = Site::open(Arc::new(MemStore::new()), 1);
    a.set_mirror_mode(MirrorMode::Pool).unwrap();
    a.create_image("vol", IMAGE_SIZE, Some(small_journal()))
        .unwrap();
    let agent = MirrorAgent::start(b.clone(), a.clone(), fast_agent_options()).unwrap();

    let settings = JournalSettings {
        commit_age: Duration::from_millis(20),
        ..JournalSettings::default()
    };
    let img = a.open_journaled("vol", settings).unwrap();
    let reference = MemImage::new("ref", IMAGE_SIZE);
    let stripe = IMAGE_SIZE / 4;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (img, reference) = (&img, &reference);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(100 + t);
                for _ in 0..60 {
                    let len = rng.gen_range(1..=16u64) * 512;
                    let off = t * stripe + rng.gen_range(0..(stripe - len) / 512) * 512;
                    match rng.gen_range(0..8) {
                        0 => {
                            img.discard(off, len).unwrap();
                            reference.discard(off, len).unwrap();
                        }
                        1 => {
                            let p = Bytes::from(vec![t as u8, 0x77]);
                            img.write_same(off, len, p.clone()).unwrap();
                            reference.write_same(off, len, p).unwrap();
                        }
                        2 => {
                            // Compare against what this thread's stripe holds: always matches.
                            let cmp = reference.read(off, 512).unwrap();
                            let d = Bytes::from(vec![0xC0 | t as u8; 512]);
                            img.compare_and_write(off, cmp.clone(), d.clone()).unwrap();
                            reference.compare_and_write(off, cmp, d).unwrap();
                        }
                        _ => {
                            let d = Bytes::from(vec![rng.gen::<u8>(); len as usize]);
                            img.write(off, d.clone()).unwrap();
                            reference.write(off, d).unwrap();
                        }
                    }
                }
            });
        }
    });
    img.snap_create("before-grow").unwrap();
    reference.snap_create("before-grow").unwrap();
    img.resize(IMAGE_SIZE * 2).unwrap();
    reference.resize(IMAGE_SIZE * 2).unwrap();
    let tail = Bytes::from(vec![0xEE; 4096]);
    img.write(IMAGE_SIZE + 8192, tail.clone()).unwrap();
    reference.write(IMAGE_SIZE + 8192, tail).unwrap();
    img.snap_create("after-grow").unwrap();
    reference.snap_create("after-grow").unwrap();
    img.flush().unwrap();
    img.close().unwrap();

    let expected = contents(&reference);
    assert_eq!(contents(a.open_image("vol").unwrap().as_ref()), expected);
    assert!(
        wait_replica_equals(&b, "vol", &expected, Duration::from_secs(20)),
        "replica did not converge: {:?}",
        agent.status()
    );
    let snaps = |img: &dyn BlockImage| -> Vec<(String, u64)> {
        img.snap_list()
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.size))
            .collect()
    };
    assert!(wait_until(Duration::from_secs(10), || snaps(
        b.open_image("vol").unwrap().as_ref()
    ) == snaps(
        &reference
    )));
    agent.stop();
}
