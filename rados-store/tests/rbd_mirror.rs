//! Real `rbd-mirror` replays a journal written by rbdj: two local clusters (`RBDJ_CEPH_MIRROR_A`,
//! `RBDJ_CEPH_MIRROR_B`: the configuration files printed by `scripts/ceph-local.sh pair-start`, or of
//! the shared `ceph-mirror-pair.sh`), pool `rbd` mirrored A → B in journal mode by the rbd-mirror
//! daemon. rbdj allocates a local tag on a fresh image on A (as librbd does on lock acquisition)
//! and journal-client's `Recorder` appends events through RadosStore; the replica on B must
//! become byte-identical to the image the events describe.
//!
//! Without the two clusters the test prints a `SKIPPED` line and returns (fails with
//! `RBDJ_REQUIRE_CEPH=1`).
#![cfg(feature = "rados")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::recorder::AdvanceHook;
use journal_client::{JournalSettings, Recorder, RecorderConfig, RecorderError};
use journal_core::client_data::{ClientData, ClientMeta, MirrorPeerState};
use journal_core::commit::CommitTracker;
use journal_core::encoding::{Decode, Encode, UTime};
use journal_core::event::{Event, EventEntry};
use journal_core::header::{JournalHeader, ObjectSetPosition};
use journal_core::tag_data::{TagData, TagPredecessor};
use object_store_trait::ObjectStore;
use parking_lot::Mutex;
use rados_store::{RadosStore, RadosStoreOptions};

fn rbd(conf: &str, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("timeout")
        .args(["60", "rbd", "-c", conf, "--pool", "rbd"])
        .args(args)
        .output()
        .expect("run rbd (ceph-common)");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Polls `f` every 500 ms until it returns `Some`, for at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn pattern(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

#[test]
fn rbd_mirror_replays_rbdj_journal() {
    let (Some(a), Some(b)) = (
        std::env::var_os("RBDJ_CEPH_MIRROR_A"),
        std::env::var_os("RBDJ_CEPH_MIRROR_B"),
    ) else {
        assert!(
            std::env::var("RBDJ_REQUIRE_CEPH").map_or(true, |v| v != "1"),
            "RBDJ_REQUIRE_CEPH=1 but RBDJ_CEPH_MIRROR_A/B are not set"
        );
        eprintln!(
            "SKIPPED: no Ceph mirror pair (set RBDJ_CEPH_MIRROR_A and RBDJ_CEPH_MIRROR_B) \
             [rbd_mirror_replays_rbdj_journal]"
        );
        return;
    };
    let (a, b) = (
        a.to_str().unwrap().to_owned(),
        b.to_str().unwrap().to_owned(),
    );
    let base = RadosStore::connect(RadosStoreOptions {
        conf_path: Some(PathBuf::from(&a)),
        ..RadosStoreOptions::default()
    })
    .unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(base.with_namespace("").unwrap());
    let pool_id = base.pool_id().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let image = format!("mir{}x{:x}", std::process::id(), nanos & 0xffff_ffff);
    let size: u64 = 4 << 20;
    rbd(
        &a,
        &[
            "create",
            "--size",
            "4M",
            "--image-feature",
            "layering,exclusive-lock,journaling",
            &image,
        ],
    )
    .unwrap();
    let info: serde_json::Value =
        serde_json::from_slice(&rbd(&a, &["info", "--format", "json", &image]).unwrap()).unwrap();
    let image_id = info["id"].as_str().unwrap().to_owned();
    let header = JournalHeader::new(Arc::clone(&store), pool_id, &image_id);
    // rbd-mirror on B bootstraps the replica (pool mode): it registers a mirror-peer client in
    // A's journal and moves it from syncing to replaying. (`rbd mirror image status` needs a mgr,
    // which these clusters do not run.)
    wait_for("rbd-mirror replaying", Duration::from_secs(120), || {
        header.clients().ok()?.iter().find_map(|c| {
            let data = ClientData::from_bytes(c.data.clone()).ok()?;
            match data.meta {
                ClientMeta::MirrorPeer(peer) if peer.state == MirrorPeerState::Replaying => {
                    Some(())
                }
                _ => None,
            }
        })
    });
    let layout = header.get_immutable_metadata().unwrap().layout().unwrap();
    let me = header.get_client("").unwrap();
    let ClientMeta::Image(meta) = ClientData::from_bytes(me.data.clone()).unwrap().meta else {
        panic!("image client without ImageClientMeta");
    };
    let last = header
        .tag_list_all("", Some(meta.tag_class))
        .unwrap()
        .last()
        .unwrap()
        .tid;
    let first = me.commit_position.first().copied();
    let tag = header
        .allocate_tag(
            meta.tag_class,
            TagData {
                mirror_uuid: String::new(),
                predecessor: TagPredecessor {
                    mirror_uuid: String::new(),
                    commit_valid: first.is_some(),
                    tag_tid: first.map_or(last, |p| p.tag_tid),
                    entry_tid: first.map_or(0, |p| p.entry_tid),
                },
            }
            .to_bytes(),
        )
        .unwrap();

    let h = header.clone();
    let advance: AdvanceHook = Arc::new(move |set| match h.set_active_set(set) {
        Ok(()) => Ok(()),
        Err(e) if e.is_stale() => Ok(()),
        Err(e) => Err(RecorderError::Header {
            detail: e.to_string(),
            errno: e.errno(),
        }),
    });
    let recorder = Recorder::start(
        Arc::clone(&store),
        RecorderConfig {
            journal_id: image_id.clone(),
            name_pool_id: pool_id,
            layout,
            tag_tid: tag.tid,
            active_set: header.get_active_set().unwrap(),
            fenced: true,
            settings: JournalSettings::default(),
        },
        Arc::new(Mutex::new(CommitTracker::new(
            layout.splay_width,
            ObjectSetPosition::default(),
        ))),
        advance,
    )
    .unwrap();
    let mut expected = vec![0u8; size as usize];
    let mut futures = Vec::new();
    for i in 0..40u64 {
        let len = 512 * (1 + (i as usize % 8));
        let offset = (i * 77_773) % (size - 8192);
        let data = pattern(i + 1, len);
        expected[offset as usize..offset as usize + len].copy_from_slice(&data);
        let event = Event::AioWrite {
            offset,
            length: len as u64,
            data,
        };
        let payload = EventEntry::new(
            event,
            UTime {
                sec: 1_790_000_000,
                nsec: i as u32,
            },
        )
        .to_bytes();
        futures.push(recorder.append(payload).unwrap());
    }
    let flush = EventEntry::new(Event::AioFlush, UTime { sec: 0, nsec: 0 }).to_bytes();
    futures.push(recorder.append(flush).unwrap());
    recorder.flush().unwrap();
    for f in &futures {
        f.wait().unwrap();
    }
    recorder.shutdown();
    // Tell watchers (rbd-mirror) the journal changed; it also polls.
    let _ = header.notify();

    let raw_path = std::env::temp_dir().join(format!("{image}.replica.raw"));
    wait_for(
        "replica equal to rbdj's events",
        Duration::from_secs(90),
        || {
            let _ = std::fs::remove_file(&raw_path);
            rbd(&b, &["export", &image, raw_path.to_str().unwrap()]).ok()?;
            let raw = std::fs::read(&raw_path).ok()?;
            (raw == expected).then_some(())
        },
    );
    let _ = std::fs::remove_file(&raw_path);
}
