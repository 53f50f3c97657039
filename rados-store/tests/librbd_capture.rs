//! Codec interop with a live cluster: real librbd (through python3-rbd) writes a journal with
//! several tags, small objects, snapshot/resize/metadata/feature/rename ops
//! (`tests/data/make_rich_journal.py`); RadosStore captures its header omap and data objects, and
//! every value, entry and event must decode in journal-core and re-encode byte-for-byte; Ceph's
//! `rbd journal export` must list the same payloads.
//!
//! Then their journal, our replay: journal-core's `Player` reads the journal from RADOS and the
//! entries, in its order, go through journal-client's `EventApplier` (librbd's replay rules) into a `MemImage` of the image's creation size, which
//! must equal `rbd export` of the image byte-for-byte, with the same size and snapshots.
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

use std::sync::Arc;

use journal_client::apply::{ApplyOptions, EventApplier};
use journal_client::image::{BlockImage, MemImage};
use journal_core::encoding::Decode;
use journal_core::entry::scan_object;
use journal_core::event::EventEntry;
use journal_core::header::JournalHeader;
use journal_core::player::{JournalInfo, Player, PlayerEvent, PlayerOptions};
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
    replay_matches_rbd_export(
        Arc::new(store.with_namespace("").unwrap()),
        &cap,
        &format!("{image}-renamed"),
        &conf,
    );
    if let Some(dir) = std::env::var_os("RBDJ_WRITE_GOLDEN") {
        cap.save(Path::new(&dir));
        eprintln!("golden capture written to {dir:?}");
    }
}

/// Replays the journal, read from RADOS by journal-core's `Player` (one-shot, from the never-
/// committing HOLD client's position, i.e. the start), with journal-client's applier onto a
/// zeroed 16 MiB MemImage (the workload's creation size), and compares with Ceph's `rbd export`.
/// The entries the player delivers must be exactly the captured ones, in (tag, entry) order.
fn replay_matches_rbd_export(store: Arc<dyn ObjectStore>, cap: &Capture, image: &str, conf: &str) {
    let header = JournalHeader::new(Arc::clone(&store), cap.pool_id, &cap.journal_id);
    let info = JournalInfo {
        journal_id: cap.journal_id.clone(),
        pool_id_for_names: cap.pool_id,
        layout: header.get_immutable_metadata().unwrap().layout().unwrap(),
        active_set: header.get_active_set().unwrap(),
    };
    let hold = header.get_client("HOLD").unwrap();
    let mut player = Player::new(store, info, &hold.commit_position, PlayerOptions::default());
    let mem: Arc<dyn BlockImage> = Arc::new(MemImage::new(image, 16 << 20));
    let mut applier = EventApplier::new(Arc::clone(&mem), ApplyOptions::default());
    let mut played = Vec::new();
    let mut applied = 0;
    while let PlayerEvent::Entry(e) = player.next().unwrap() {
        let event = EventEntry::from_bytes(e.entry.data.clone()).unwrap().event;
        let i = played.len();
        applied += applier
            .apply(i, &event)
            .unwrap_or_else(|err| panic!("entry {i} ({}): {err}", event.name()))
            .len();
        played.push((e.entry.tag_tid, e.entry.entry_tid));
    }
    applied += applier.finish(false).unwrap().len();
    assert_eq!(applied, played.len(), "every entry applied");
    let mut captured = Vec::new();
    for data in cap.objects.values() {
        for s in scan_object(data, 0).entries {
            captured.push((s.entry.tag_tid, s.entry.entry_tid));
        }
    }
    captured.sort_unstable();
    assert_eq!(
        played, captured,
        "the player delivers every entry, in journal order"
    );

    let raw_path = std::env::temp_dir().join(format!("{image}.raw"));
    let out = Command::new("rbd")
        .arg("-c")
        .arg(conf)
        .args(["--pool", "rbd", "export", image])
        .arg(&raw_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::fs::read(&raw_path).unwrap();
    let _ = std::fs::remove_file(&raw_path);
    assert_eq!(mem.size(), raw.len() as u64, "image size");
    let ours = mem.read(0, mem.size()).unwrap();
    if let Some(at) = ours.iter().zip(&raw).position(|(a, b)| a != b) {
        panic!("replayed image differs from rbd export at byte {at}");
    }
    // Snapshots: the workload removed its only snapshot.
    assert!(mem.snap_list().unwrap().is_empty());
    assert_eq!(mem.meta().name, image, "the Rename event was applied");
}
