//! Codec interop with a live cluster: real librbd (through python3-rbd) writes a journal with
//! several tags, small objects, snapshot/resize/metadata/feature/rename ops
//! (`tests/data/make_rich_journal.py`); RadosStore captures its header omap and data objects, and
//! every value, entry and event must decode in journal-core and re-encode byte-for-byte; Ceph's
//! `rbd journal export` must list the same payloads.
//!
//! `RBDJ_WRITE_GOLDEN=DIR` also saves the capture under DIR (how `tests/data/rich-librbd` was
//! made). Without a cluster the test prints `SKIPPED: no Ceph cluster (set CEPH_CONF)`.
#![cfg(feature = "rados")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use object_store_trait::{ObjectStore, ObjectStoreExt};

use common::capture::Capture;
use common::{base_store, conf_path};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[test]
fn librbd_rich_journal_round_trips() {
    let Some(store) = base_store("librbd_rich_journal_round_trips") else {
        return;
    };
    let conf = conf_path().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let image = format!("rich{}x{:x}", std::process::id(), nanos & 0xffff_ffff);
    let out = Command::new("/usr/bin/python3")
        .arg(data_dir().join("make_rich_journal.py"))
        .arg(&image)
        .env("CEPH_CONF", &conf)
        .output()
        .expect("run /usr/bin/python3 (python3-rbd)");
    assert!(
        out.status.success(),
        "workload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let store = store.with_namespace("").unwrap();
    let pool_id = store.pool_id().unwrap();

    let export_path = std::env::temp_dir().join(format!("{image}.export"));
    let out = Command::new("rbd")
        .arg("-c")
        .arg(&conf)
        .args(["journal", "export", "--pool", "rbd", "--image"])
        .arg(format!("{image}-renamed"))
        .arg("--path")
        .arg(&export_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export = std::fs::read_to_string(&export_path).unwrap();
    let _ = std::fs::remove_file(&export_path);

    let header_oid = format!("journal.{journal_id}");
    let mut cap = Capture {
        pool_id,
        journal_id: journal_id.clone(),
        header: store
            .omap_list(&header_oid, "", "", usize::MAX)
            .unwrap()
            .into_iter()
            .collect(),
        export,
        ..Capture::default()
    };
    for oid in store
        .list(&format!("journal_data.{pool_id}.{journal_id}."))
        .unwrap()
    {
        let data = store.read_all(&oid).unwrap();
        cap.objects.insert(oid, data);
    }
    let stats = cap.check();
    eprintln!("captured {journal_id}: {stats:?}");
    // The workload produced what it is meant to exercise.
    assert!(stats.entries >= 40, "{stats:?}");
    assert!(
        stats.header_tags >= 5,
        "several tags (demote/promote): {stats:?}"
    );
    assert!(
        stats.entry_tags.len() >= 2,
        "entries under several tags: {stats:?}"
    );
    assert!(stats.max_object >= 8, "several object sets: {stats:?}");
    for kind in [
        "AioWrite",
        "AioDiscard",
        "AioFlush",
        "OpFinish",
        "SnapCreate",
        "SnapRename",
        "SnapRemove",
        "Resize",
        "MetadataSet",
        "UpdateFeatures",
        "Rename",
        "Demote/Promote",
    ] {
        assert!(stats.events.contains(kind), "no {kind} event: {stats:?}");
    }
    assert_eq!(stats.clients, ["", "HOLD"]);
    if let Some(dir) = std::env::var_os("RBDJ_WRITE_GOLDEN") {
        cap.save(Path::new(&dir));
        eprintln!("golden capture written to {dir:?}");
    }
}
