//! The player on the journal real librbd (Ceph 16.2.15) wrote: the oracle is Ceph's own reader,
//! through `rbd journal export` (`journal.export`, records in Ceph's replay order with the
//! payload base64-encoded) and `rbd journal status` (the image client's commit position).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use journal_core::header::{HeaderError, JournalHeader, ObjectPosition, ObjectSetPosition};
use journal_core::layout::Layout;
use journal_core::player::{JournalInfo, Player, PlayerError, PlayerEvent, PlayerOptions};
use object_store_trait::{AppendGuard, MemStore, ObjectStore, OmapBatch};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/librbd-basic")
}

/// The real objects loaded under their own names.
fn store() -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    let mut n = 0;
    for f in std::fs::read_dir(dir().join("objects")).unwrap() {
        let f = f.unwrap();
        let oid = f.file_name().into_string().unwrap();
        let bytes = Bytes::from(std::fs::read(f.path()).unwrap());
        store.append(&oid, &[bytes], &AppendGuard::none()).unwrap();
        n += 1;
    }
    assert_eq!(n, 4);
    store
}

fn info() -> JournalInfo {
    // journal-info.json / journal-status.json: order 24, splay width 4, header pool 1,
    // active set 0.
    JournalInfo {
        journal_id: "101b91743424".into(),
        pool_id_for_names: 1,
        layout: Layout::new(24, 4).unwrap(),
        active_set: 0,
    }
}

/// (tag, payload) of every record of `journal.export`, in Ceph's order.
fn export_records() -> Vec<(u64, Bytes)> {
    let text = std::fs::read_to_string(dir().join("journal.export")).unwrap();
    let mut lines = text.split_terminator('\n');
    assert_eq!(lines.next(), Some("# journal_id: 101b91743424"));
    lines
        .map(|line| {
            let (len, json) = line.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), json.len());
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let payload = base64::engine::general_purpose::STANDARD
                .decode(v["entry"].as_str().unwrap())
                .unwrap();
            (v["tag_id"].as_u64().unwrap(), Bytes::from(payload))
        })
        .collect()
}

/// The image client's commit position from `rbd journal status`.
fn image_client_position() -> ObjectSetPosition {
    let text = std::fs::read_to_string(dir().join("journal-status.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let client = v["registered_clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "")
        .unwrap();
    let positions = client["commit_position"]["object_positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| ObjectPosition {
            object_number: p["object_number"].as_u64().unwrap(),
            tag_tid: p["tag_tid"].as_u64().unwrap(),
            entry_tid: p["entry_tid"].as_u64().unwrap(),
        })
        .collect();
    ObjectSetPosition {
        object_positions: positions,
    }
}

/// Plays to the end: (tag, entry tid, object number, payload) per entry.
fn play(start: &ObjectSetPosition, options: PlayerOptions) -> Vec<(u64, u64, u64, Bytes)> {
    let store: Arc<dyn ObjectStore> = store();
    let mut player = Player::new(store, info(), start, options);
    let mut out = Vec::new();
    while let PlayerEvent::Entry(e) = player.next().unwrap() {
        out.push((
            e.entry.tag_tid,
            e.entry.entry_tid,
            e.object_number,
            e.entry.data,
        ));
    }
    // End is stable.
    assert_eq!(player.next().unwrap(), PlayerEvent::End);
    out
}

#[test]
fn full_replay_matches_ceph_export_order() {
    let want = export_records();
    assert_eq!(want.len(), 93);
    for budget in [16 << 20, 64 << 10, 4 << 10] {
        let options = PlayerOptions {
            prefetch_bytes_max: budget,
            ..PlayerOptions::default()
        };
        let got = play(&ObjectSetPosition::default(), options);
        let got_records: Vec<(u64, Bytes)> = got.iter().map(|g| (g.0, g.3.clone())).collect();
        assert_eq!(got_records, want, "budget {budget}");
        // Entry tids of the one tag run 0..=92, each read from object tid mod 4 (set 0).
        for (i, g) in got.iter().enumerate() {
            assert_eq!((g.1, g.2), (i as u64, i as u64 % 4), "budget {budget}");
        }
    }
}

#[test]
fn from_the_image_client_position_nothing_is_left() {
    let start = image_client_position();
    assert_eq!(
        start.object_positions.first(),
        Some(&ObjectPosition {
            object_number: 0,
            tag_tid: 1,
            entry_tid: 92
        })
    );
    assert!(play(&start, PlayerOptions::default()).is_empty());
}

#[test]
fn from_a_mid_position_exactly_the_suffix_is_delivered() {
    let want = export_records();
    // Position after consuming entries 0..=m, as Ceph's fold records it: the last (up to) four
    // consumed entries, newest first, each in object tid mod 4.
    for m in [0u64, 1, 2, 3, 4, 45, 46, 47, 90, 91] {
        let positions = (m.saturating_sub(3)..=m)
            .rev()
            .map(|e| ObjectPosition {
                object_number: e % 4,
                tag_tid: 1,
                entry_tid: e,
            })
            .collect();
        let start = ObjectSetPosition {
            object_positions: positions,
        };
        let got: Vec<(u64, Bytes)> = play(&start, PlayerOptions::default())
            .into_iter()
            .map(|g| (g.0, g.3))
            .collect();
        assert_eq!(got, want[m as usize + 1..].to_vec(), "after entry {m}");
    }
}

/// The real header omap loaded too: `Player::open` takes the layout, active set and commit
/// positions from Ceph's own header records.
#[test]
fn open_from_the_real_header() {
    let store = store();
    let mut batch = OmapBatch::new();
    for f in std::fs::read_dir(dir().join("header-omap")).unwrap() {
        let f = f.unwrap();
        let key = f.file_name().into_string().unwrap();
        batch.set(&key, Bytes::from(std::fs::read(f.path()).unwrap()));
    }
    store.omap_apply("journal.101b91743424", &batch).unwrap();
    let store: Arc<dyn ObjectStore> = store;
    let header = JournalHeader::new(store, 1, "101b91743424");

    // The image client committed everything.
    let mut p = Player::open(&header, "", PlayerOptions::default()).unwrap();
    assert_eq!(p.active_tag(), Some(1));
    assert_eq!(p.next().unwrap(), PlayerEvent::End);

    // HOLD never committed: all of Ceph's export, in order.
    let mut p = Player::open(&header, "HOLD", PlayerOptions::default()).unwrap();
    let mut got = Vec::new();
    while let PlayerEvent::Entry(e) = p.next().unwrap() {
        got.push((e.entry.tag_tid, e.entry.data));
    }
    assert_eq!(got, export_records());

    assert!(matches!(
        Player::open(&header, "nobody", PlayerOptions::default()),
        Err(PlayerError::Header(HeaderError::NotFound { .. }))
    ));
}
