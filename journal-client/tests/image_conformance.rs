//! Every `BlockImage` implementation against a plain `Vec<u8>` model: seeded random sequences of
//! writes, discards, write-same, compare-and-write, resizes and snapshot create/rollback/remove;
//! after every step the image reads back as the model. Plus the errno rules of the maintenance
//! operations that replay relies on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{
    BlockImage, ImageError, MemImage, ObjectImage, SparseFileImage, EBUSY, EEXIST, EINVAL, ENOENT,
    ERANGE,
};
use object_store_trait::{MemStore, ObjectStore};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const MIB: u64 = 1 << 20;

fn run_model(image: &dyn BlockImage, seed: u64, steps: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut model = vec![0u8; image.size() as usize];
    let mut snaps: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for step in 0..steps {
        let size = model.len() as u64;
        let off = rng.gen_range(0..size);
        let len = rng.gen_range(1..=(size - off).min(3 * 4096 + 17));
        match rng.gen_range(0..100) {
            0..=39 => {
                let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                image.write(off, Bytes::from(data.clone())).unwrap();
                model[off as usize..(off + len) as usize].copy_from_slice(&data);
            }
            40..=54 => {
                image.discard(off, len).unwrap();
                model[off as usize..(off + len) as usize].fill(0);
            }
            55..=64 => {
                let plen = rng.gen_range(1..=8u64);
                let len = (len / plen).max(1) * plen;
                if off + len > size {
                    continue;
                }
                let pattern: Vec<u8> = (0..plen).map(|_| rng.gen()).collect();
                image
                    .write_same(off, len, Bytes::from(pattern.clone()))
                    .unwrap();
                for (i, b) in model[off as usize..(off + len) as usize]
                    .iter_mut()
                    .enumerate()
                {
                    *b = pattern[i % plen as usize];
                }
            }
            65..=79 => {
                let range = off as usize..(off + len) as usize;
                let mut cmp = model[range.clone()].to_vec();
                let expect_mismatch = rng.gen_bool(0.5);
                if expect_mismatch {
                    let i = rng.gen_range(0..cmp.len());
                    cmp[i] ^= 0x5a;
                }
                let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                let r = image.compare_and_write(
                    off,
                    Bytes::from(cmp.clone()),
                    Bytes::from(data.clone()),
                );
                if expect_mismatch {
                    let first = cmp
                        .iter()
                        .zip(&model[range])
                        .position(|(a, b)| a != b)
                        .unwrap();
                    match r {
                        Err(ImageError::CompareMismatch { offset }) => {
                            assert_eq!(offset, off + first as u64)
                        }
                        other => panic!("step {step}: expected mismatch, got {other:?}"),
                    }
                } else {
                    r.unwrap();
                    model[off as usize..(off + len) as usize].copy_from_slice(&data);
                }
            }
            80..=84 => {
                let new = rng.gen_range(1..=2 * MIB);
                image.resize(new).unwrap();
                model.resize(new as usize, 0);
            }
            85..=89 => {
                let name = format!("s{step}");
                image.snap_create(&name).unwrap();
                snaps.insert(name, model.clone());
            }
            90..=94 => {
                if let Some(name) = snaps
                    .keys()
                    .nth(rng.gen_range(0..snaps.len().max(1)))
                    .cloned()
                {
                    image.snap_rollback(&name).unwrap();
                    model = snaps[&name].clone();
                }
            }
            _ => {
                if let Some(name) = snaps.keys().next().cloned() {
                    image.snap_remove(&name).unwrap();
                    snaps.remove(&name);
                }
            }
        }
        assert_eq!(image.size(), model.len() as u64, "step {step}");
        let got = image.read(0, model.len() as u64).unwrap();
        assert!(
            got[..] == model[..],
            "seed {seed} step {step}: image differs from model"
        );
    }
    assert!(image.read(model.len() as u64, 1).is_err());
    image.flush().unwrap();
}

#[test]
fn mem_image_matches_model() {
    for seed in 0..4 {
        run_model(&MemImage::new("m", MIB), seed, 120);
    }
}

/// Block-aligned writes (whole 4 KiB chunks of `MemImage`, overwritten in place when nothing
/// else holds them) between snapshots: every snapshot keeps its bytes, whichever chunks the
/// writes after it replaced whole or in part.
#[test]
fn mem_image_aligned_overwrites_keep_snapshots() {
    let image = MemImage::new("m", MIB);
    let mut rng = SmallRng::seed_from_u64(9);
    let mut model = vec![0u8; MIB as usize];
    let mut snaps = Vec::new();
    for step in 0..400 {
        let block = rng.gen_range(0..MIB / 4096 - 4);
        let (off, len) = match rng.gen_range(0..4) {
            0 => (block * 4096, 4096),
            1 => (block * 4096, 4 * 4096),
            2 => (block * 4096 + 100, 300),
            _ => (block * 4096 + 4000, 200),
        };
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        image.write(off, Bytes::from(data.clone())).unwrap();
        model[off as usize..(off + len) as usize].copy_from_slice(&data);
        if step % 50 == 0 {
            let name = format!("s{step}");
            image.snap_create(&name).unwrap();
            snaps.push((name, model.clone()));
        }
    }
    assert_eq!(&image.read(0, MIB).unwrap()[..], &model[..]);
    for (name, want) in snaps.iter().rev() {
        image.snap_rollback(name).unwrap();
        assert_eq!(
            &image.read(0, MIB).unwrap()[..],
            &want[..],
            "snapshot {name}"
        );
    }
}

#[test]
fn sparse_file_image_matches_model_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let image = SparseFileImage::create(dir.path(), "f", MIB).unwrap();
    run_model(&image, 7, 120);
    let before = image.read(0, image.size()).unwrap();
    let meta = image.meta();
    drop(image);
    let reopened = SparseFileImage::open(dir.path()).unwrap();
    assert_eq!(reopened.meta(), meta);
    assert_eq!(reopened.read(0, reopened.size()).unwrap(), before);
}

#[test]
fn object_image_matches_model_and_reopens() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore::new());
    // Larger than one 4 MiB object so writes straddle objects.
    let image = ObjectImage::create(store.clone(), "abc", "o", 9 * MIB).unwrap();
    image
        .write(4 * MIB - 3, Bytes::from_static(b"straddle"))
        .unwrap();
    assert_eq!(&image.read(4 * MIB - 3, 8).unwrap()[..], b"straddle");
    assert!(store.stat("rbd_data.abc.0000000000000001").is_ok());
    image.resize(MIB).unwrap();
    run_model(&image, 11, 80);
    let before = image.read(0, image.size()).unwrap();
    let reopened = ObjectImage::open(store, "abc").unwrap();
    assert_eq!(reopened.read(0, reopened.size()).unwrap(), before);
    assert!(ObjectImage::create(Arc::new(MemStore::new()), "x", "x", 1).is_ok());
}

#[test]
fn maintenance_errors_carry_librbd_errnos() {
    let image = MemImage::new("img", 4096);
    let errno = |r: Result<(), ImageError>| r.unwrap_err().errno();
    image.snap_create("a").unwrap();
    assert_eq!(errno(image.snap_create("a").map(drop)), EEXIST);
    assert_eq!(errno(image.snap_remove("zz")), ENOENT);
    image.snap_protect("a").unwrap();
    assert_eq!(errno(image.snap_protect("a")), EBUSY);
    assert_eq!(errno(image.snap_remove("a")), EBUSY);
    image.snap_unprotect("a").unwrap();
    assert_eq!(errno(image.snap_unprotect("a")), EINVAL);
    image.snap_create("b").unwrap();
    assert_eq!(errno(image.snap_rename("a", "b")), EEXIST);
    image.snap_rename("a", "c").unwrap();
    assert_eq!(errno(image.snap_set_limit(1)), ERANGE);
    image.snap_set_limit(2).unwrap();
    assert!(matches!(
        image.snap_create("d"),
        Err(ImageError::SnapLimitReached { limit: 2 })
    ));
    assert_eq!(errno(image.rename("img")), EEXIST);
    image.rename("img2").unwrap();
    assert_eq!(errno(image.flatten()), EINVAL);
    assert_eq!(errno(image.metadata_remove("k")), ENOENT);
    image.metadata_set("k", "v").unwrap();
    assert_eq!(image.metadata_get("k").unwrap().as_deref(), Some("v"));
    image.update_features(0b101, true).unwrap();
    image.update_features(0b1, false).unwrap();
    let meta = image.meta();
    assert_eq!(meta.features, 0b100);
    assert_eq!(meta.name, "img2");
    let names: Vec<_> = image
        .snap_list()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["c".to_owned(), "b".to_owned()]);
    assert!(matches!(
        image.write(4000, Bytes::from(vec![1u8; 200])),
        Err(ImageError::OutOfRange { .. })
    ));
}
