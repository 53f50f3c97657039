//! The `journal` class methods of [`JournalHeader`] on a [`MemStore`].
//!
//! Oracles: the header omap of a real Ceph 16.2.15 journal and what `rbd journal info/status`
//! printed for it (`tests/data/librbd-basic`), and the error cases and rules of spec §4.2, §8.3,
//! §9.3 and §9.4, with the expected outcomes worked out by hand in the comments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use journal_core::header::{
    Client, ClientState, HeaderError, JournalHeader, ObjectPosition, ObjectSetPosition,
    TAG_CLASS_NEW,
};
use object_store_trait::{AppendGuard, MemStore, ObjectStore, ObjectStoreExt, OmapBatch};
use serde_json::Value;

const REAL_ID: &str = "101b91743424";

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/librbd-basic")
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join(name)).unwrap()).unwrap()
}

/// A MemStore holding the real header's omap under `journal.<id>`.
fn real_header() -> (Arc<MemStore>, JournalHeader) {
    let store = Arc::new(MemStore::new());
    let mut batch = OmapBatch::new();
    for entry in std::fs::read_dir(data_dir().join("header-omap")).unwrap() {
        let entry = entry.unwrap();
        let key = entry.file_name().into_string().unwrap();
        batch.set(key, Bytes::from(std::fs::read(entry.path()).unwrap()));
    }
    store
        .omap_apply(&format!("journal.{REAL_ID}"), &batch)
        .unwrap();
    let header = JournalHeader::new(store.clone(), 1, REAL_ID);
    (store, header)
}

fn fresh() -> (Arc<MemStore>, JournalHeader) {
    let store = Arc::new(MemStore::new());
    let header = JournalHeader::new(store.clone(), 1, "j1");
    header.create(24, 4, -1).unwrap();
    (store, header)
}

fn pos(object_number: u64, tag_tid: u64, entry_tid: u64) -> ObjectPosition {
    ObjectPosition {
        object_number,
        tag_tid,
        entry_tid,
    }
}

fn positions_from_json(v: &Value) -> ObjectSetPosition {
    ObjectSetPosition::new(
        v["object_positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                pos(
                    p["object_number"].as_u64().unwrap(),
                    p["tag_tid"].as_u64().unwrap(),
                    p["entry_tid"].as_u64().unwrap(),
                )
            })
            .collect(),
    )
}

fn tids(tags: &[journal_core::header::Tag]) -> Vec<u64> {
    tags.iter().map(|t| t.tid).collect()
}

#[test]
fn real_header_metadata_equals_rbd_journal_info_and_status() {
    let (_, header) = real_header();
    let info = json("journal-info.json");
    let status = json("journal-status.json");
    assert_eq!(info["header_oid"].as_str().unwrap(), header.oid());
    let imm = header.get_immutable_metadata().unwrap();
    assert_eq!(u64::from(imm.order), info["order"].as_u64().unwrap());
    assert_eq!(
        u64::from(imm.splay_width),
        info["splay_width"].as_u64().unwrap()
    );
    assert_eq!(imm.pool_id, -1);
    let meta = header.get_mutable_metadata().unwrap();
    assert_eq!(meta.minimum_set, status["minimum_set"].as_u64().unwrap());
    assert_eq!(meta.active_set, status["active_set"].as_u64().unwrap());
    assert_eq!(header.get_minimum_set().unwrap(), meta.minimum_set);
    assert_eq!(header.get_active_set().unwrap(), meta.active_set);
    let want = status["registered_clients"].as_array().unwrap();
    assert_eq!(meta.clients.len(), want.len());
    for (got, want) in meta.clients.iter().zip(want) {
        assert_eq!(got.id, want["id"].as_str().unwrap());
        assert_eq!(got.state.name(), want["state"].as_str().unwrap());
        assert_eq!(
            got.commit_position,
            positions_from_json(&want["commit_position"])
        );
        assert_eq!(&header.get_client(&got.id).unwrap(), got);
    }
    // client_list pages: from the start (including the image client ""), then after "".
    let ids = |v: Vec<Client>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(header.client_list("", 256).unwrap()), vec!["", "HOLD"]);
    assert_eq!(ids(header.client_list("", 1).unwrap()), vec![""]);
    assert_eq!(
        ids(header.client_list("HOLD", 256).unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(header.get_next_tag_tid().unwrap(), 2);
}

#[test]
fn real_header_tags_and_visibility() {
    let (_, header) = real_header();
    assert_eq!(header.get_tag(1).unwrap().tid, 1);
    assert_eq!(header.get_tag(0).unwrap().tag_class, 0);
    assert!(header.get_tag(2).unwrap_err().is_not_found());
    // "" committed in tag 1: class 0's threshold is 1, so only tag 1 is visible to it.
    assert_eq!(tids(&header.tag_list(0, 64, "", None).unwrap()), vec![1]);
    // HOLD committed nothing: every tag is visible.
    assert_eq!(
        tids(&header.tag_list(0, 64, "HOLD", None).unwrap()),
        vec![0, 1]
    );
    assert_eq!(
        tids(&header.tag_list(0, 64, "HOLD", Some(1)).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(tids(&header.tag_list(0, 1, "HOLD", None).unwrap()), vec![0]);
    assert_eq!(
        tids(&header.tag_list_all("HOLD", Some(0)).unwrap()),
        vec![0, 1]
    );
    let err = header.tag_list(0, 64, "nobody", None).unwrap_err();
    assert_eq!(err.errno(), -2);
    assert!(!header.newer_tag_exists("", 1).unwrap());
    assert!(header.newer_tag_exists("HOLD", 0).unwrap());
}

#[test]
fn real_header_register_and_unregister() {
    let (store, header) = real_header();
    // HOLD has never committed, so a new client starts from the beginning.
    header.client_register("INSPECT", Bytes::new()).unwrap();
    let inspect = header.get_client("INSPECT").unwrap();
    assert!(inspect.commit_position.is_empty());
    assert_eq!(inspect.state, ClientState::Connected);
    header.client_unregister("INSPECT").unwrap();
    // INSPECT and HOLD were empty: nothing expired.
    assert!(header.get_tag(0).is_ok());
    // Without HOLD, the only connected client "" committed in tag 1: tag 0 (class 0, older
    // than class 0's newest tag at the cut-off) expires; tag 1 stays.
    header.client_unregister("HOLD").unwrap();
    assert!(header.get_tag(0).unwrap_err().is_not_found());
    assert!(header.get_tag(1).is_ok());
    // A client registered now starts at the image client's position (what rbd printed).
    header.client_register("EXPORT", Bytes::new()).unwrap();
    let status = json("journal-status.json");
    let image_pos = positions_from_json(&status["registered_clients"][0]["commit_position"]);
    assert_eq!(
        header.get_client("EXPORT").unwrap().commit_position,
        image_pos
    );
    // The other keys of the real header are untouched.
    let order = store
        .omap_get_one(&format!("journal.{REAL_ID}"), "order")
        .unwrap();
    assert_eq!(order.as_deref(), Some(&[24u8][..]));
}

#[test]
fn create_errors() {
    let store = Arc::new(MemStore::new());
    let header = JournalHeader::new(store, 1, "j");
    assert!(header.get_immutable_metadata().unwrap_err().is_not_found());
    for bad in [0, 11, 27, 255] {
        let err = header.create(bad, 4, -1).unwrap_err();
        assert!(matches!(err, HeaderError::OutOfRange { order } if order == bad));
        assert_eq!(err.errno(), -33);
    }
    assert_eq!(header.create(24, 0, -1).unwrap_err().errno(), -22);
    header.create(12, 1, 7).unwrap();
    let err = header.create(26, 4, -1).unwrap_err();
    assert!(err.is_exists());
    assert_eq!(err.errno(), -17);
    let imm = header.get_immutable_metadata().unwrap();
    assert_eq!((imm.order, imm.splay_width, imm.pool_id), (12, 1, 7));
    let meta = header.get_mutable_metadata().unwrap();
    assert_eq!((meta.minimum_set, meta.active_set), (0, 0));
    assert!(meta.clients.is_empty());
    assert_eq!(header.get_next_tag_tid().unwrap(), 0);
    assert_eq!(header.get_next_tag_class().unwrap(), 0);
}

#[test]
fn set_rules() {
    let (_, header) = fresh();
    // minimum_set: EINVAL above active_set.
    assert_eq!(header.set_minimum_set(1).unwrap_err().errno(), -22);
    header.set_active_set(5).unwrap();
    header.set_active_set(5).unwrap(); // equal: no-op
    let stale = header.set_active_set(4).unwrap_err();
    assert!(matches!(
        stale,
        HeaderError::Stale {
            requested: 4,
            current: 5,
            ..
        }
    ));
    assert_eq!(stale.errno(), -116);
    header.set_minimum_set(3).unwrap();
    header.set_minimum_set(3).unwrap();
    assert!(header.set_minimum_set(2).unwrap_err().is_stale());
    assert_eq!(header.set_minimum_set(6).unwrap_err().errno(), -22);
    header.set_minimum_set(5).unwrap();
    // active below minimum: EINVAL (checked before staleness).
    assert_eq!(header.set_active_set(4).unwrap_err().errno(), -22);
    assert_eq!(
        (
            header.get_minimum_set().unwrap(),
            header.get_active_set().unwrap()
        ),
        (5, 5)
    );
}

#[test]
fn client_errors() {
    let store = Arc::new(MemStore::new());
    let header = JournalHeader::new(store, 1, "j");
    // No header yet.
    assert_eq!(
        header
            .client_register("a", Bytes::new())
            .unwrap_err()
            .errno(),
        -2
    );
    header.create(24, 4, -1).unwrap();
    assert_eq!(header.get_client("a").unwrap_err().errno(), -2);
    assert_eq!(
        header
            .client_update_data("a", Bytes::new())
            .unwrap_err()
            .errno(),
        -2
    );
    assert_eq!(
        header
            .client_update_state("a", ClientState::Disconnected)
            .unwrap_err()
            .errno(),
        -2
    );
    assert_eq!(header.client_unregister("a").unwrap_err().errno(), -2);
    let one = ObjectSetPosition::new(vec![pos(0, 0, 0)]);
    assert_eq!(header.client_commit("a", &one).unwrap_err().errno(), -2);
    header
        .client_register("a", Bytes::from_static(b"x"))
        .unwrap();
    assert_eq!(
        header
            .client_register("a", Bytes::new())
            .unwrap_err()
            .errno(),
        -17
    );
    header
        .client_update_data("a", Bytes::from_static(b"yz"))
        .unwrap();
    header
        .client_update_state("a", ClientState::Disconnected)
        .unwrap();
    let five = ObjectSetPosition::new((0..5).map(|i| pos(i, 0, i)).collect());
    assert_eq!(header.client_commit("a", &five).unwrap_err().errno(), -22);
    let four = ObjectSetPosition::new((0..4).rev().map(|i| pos(i, 0, i)).collect());
    header.client_commit("a", &four).unwrap();
    let a = header.get_client("a").unwrap();
    assert_eq!(&a.data[..], b"yz");
    assert_eq!(a.state, ClientState::Disconnected);
    assert_eq!(a.commit_position, four);
    header.client_unregister("a").unwrap();
    assert!(header.get_client("a").unwrap_err().is_not_found());
}

#[test]
fn unchanged_commit_and_no_op_sets_do_not_write_or_notify() {
    let (_, header) = fresh();
    header.client_register("", Bytes::new()).unwrap();
    let p = ObjectSetPosition::new(vec![pos(1, 0, 1), pos(0, 0, 0)]);
    header.client_commit("", &p).unwrap();
    let watch = header.watch().unwrap();
    header.client_commit("", &p).unwrap();
    header.set_active_set(0).unwrap();
    assert_eq!(watch.drain(), 0);
    header.set_active_set(1).unwrap();
    assert_eq!(watch.drain(), 1);
}

#[test]
fn tag_create_errors_and_classes() {
    let (_, header) = fresh();
    // Class 0 does not exist yet.
    assert_eq!(
        header.tag_create(0, 0, Bytes::new()).unwrap_err().errno(),
        -22
    );
    let t0 = header.tag_create(0, TAG_CLASS_NEW, Bytes::new()).unwrap();
    assert_eq!((t0.tid, t0.tag_class), (0, 0));
    assert_eq!(header.get_next_tag_class().unwrap(), 1);
    assert_eq!(header.get_next_tag_tid().unwrap(), 1);
    // Existing tag wins over staleness; other stale tids are -ESTALE.
    assert_eq!(
        header.tag_create(0, 0, Bytes::new()).unwrap_err().errno(),
        -17
    );
    assert_eq!(
        header.tag_create(5, 0, Bytes::new()).unwrap_err().errno(),
        -116
    );
    assert_eq!(
        header.tag_create(1, 1, Bytes::new()).unwrap_err().errno(),
        -22
    );
    let t1 = header.tag_create(1, 0, Bytes::from_static(b"d")).unwrap();
    assert_eq!(header.get_tag(1).unwrap(), t1);
    let t2 = header.allocate_tag(TAG_CLASS_NEW, Bytes::new()).unwrap();
    assert_eq!((t2.tid, t2.tag_class), (2, 1));
    assert_eq!(header.get_next_tag_tid().unwrap(), 3);
    assert_eq!(header.get_next_tag_class().unwrap(), 2);
    // Without a header.
    let empty = JournalHeader::new(Arc::new(MemStore::new()), 1, "none");
    assert!(empty
        .allocate_tag(0, Bytes::new())
        .unwrap_err()
        .is_not_found());
}

// §9.3 by hand; each step's expected survivors are worked out in the comments below.
// Tags: 0 (class 0), 1 (class 1), 2 (class 0), 3 (class 1). Clients: a committed in tag 2, b in
// tags 3 and 1.
#[test]
fn tag_expiry_scenario() {
    let (_, header) = fresh();
    header.allocate_tag(TAG_CLASS_NEW, Bytes::new()).unwrap(); // 0, class 0
    header.allocate_tag(TAG_CLASS_NEW, Bytes::new()).unwrap(); // 1, class 1
    header.allocate_tag(0, Bytes::new()).unwrap(); // 2
    header.allocate_tag(1, Bytes::new()).unwrap(); // 3
    header.client_register("a", Bytes::new()).unwrap();
    header.client_register("b", Bytes::new()).unwrap();
    header
        .client_commit("a", &ObjectSetPosition::new(vec![pos(0, 2, 0)]))
        .unwrap();
    header
        .client_commit(
            "b",
            &ObjectSetPosition::new(vec![pos(1, 3, 1), pos(0, 1, 0)]),
        )
        .unwrap();
    let live =
        |h: &JournalHeader| -> Vec<u64> { (0..8).filter(|&t| h.get_tag(t).is_ok()).collect() };
    // min_tid 1; walk 0, 1 (stop) → class 0 keeps 0, class 1 keeps 1 → nothing expires.
    header.allocate_tag(0, Bytes::new()).unwrap(); // 4
    assert_eq!(live(&header), vec![0, 1, 2, 3, 4]);
    header
        .client_commit("b", &ObjectSetPosition::new(vec![pos(1, 3, 1)]))
        .unwrap();
    // min_tid 2; walk 0, 1, 2 (stop) → class 0 keeps 2, class 1 keeps 1 → tag 0 expires.
    header.allocate_tag(0, Bytes::new()).unwrap(); // 5
    assert_eq!(live(&header), vec![1, 2, 3, 4, 5]);
    // Unregistering b: min_tid 2 from a alone → same thresholds, nothing more expires.
    header.client_unregister("b").unwrap();
    assert_eq!(live(&header), vec![1, 2, 3, 4, 5]);
    header
        .client_commit("a", &ObjectSetPosition::new(vec![pos(0, 4, 0)]))
        .unwrap();
    // min_tid 4; walk 1, 2, 3, 4 (stop) → class 0 keeps 4, class 1 keeps 3 → 1 and 2 expire.
    header.allocate_tag(0, Bytes::new()).unwrap(); // 6
    assert_eq!(live(&header), vec![3, 4, 5, 6]);
    // Visibility for a (committed in 4): class 0 threshold 4, class 1 threshold 3.
    assert_eq!(
        tids(&header.tag_list(0, 64, "a", None).unwrap()),
        vec![3, 4, 5, 6]
    );
    assert_eq!(
        tids(&header.tag_list(4, 64, "a", Some(0)).unwrap()),
        vec![5, 6]
    );
    // A disconnected client does not hold tags back: register c (copies a's position),
    // disconnect a, c commits in tag 6 → min 6, class 0 keeps 6, class 1 keeps 3 → 4, 5 expire.
    header.client_register("c", Bytes::new()).unwrap();
    header
        .client_update_state("a", ClientState::Disconnected)
        .unwrap();
    header
        .client_commit("c", &ObjectSetPosition::new(vec![pos(0, 6, 0)]))
        .unwrap();
    header.allocate_tag(0, Bytes::new()).unwrap(); // 7
    assert_eq!(live(&header), vec![3, 6, 7]);
    assert_eq!(header.get_tag(3).unwrap().tag_class, 1);
    assert!(header.get_tag(5).is_err());
}

#[test]
fn remove_journal_and_trim() {
    let (store, header) = fresh();
    let data = |n: u64| format!("journal_data.1.j1.{n}");
    for n in 0..16 {
        store
            .append(&data(n), &[Bytes::from_static(b"x")], &AppendGuard::none())
            .unwrap();
    }
    // Trim: client a at objects 9, 8 (set 2), active 3 → sets 0 and 1 go, minimum becomes 2.
    header.client_register("a", Bytes::new()).unwrap();
    header.set_active_set(3).unwrap();
    header
        .client_commit(
            "a",
            &ObjectSetPosition::new(vec![pos(9, 0, 9), pos(8, 0, 8)]),
        )
        .unwrap();
    assert_eq!(header.trim().unwrap(), 0..2);
    assert_eq!(header.get_minimum_set().unwrap(), 2);
    let left = store.list("journal_data.").unwrap();
    assert_eq!(left, (8..16).map(data).collect::<Vec<_>>().tap_sort());
    assert_eq!(header.trim().unwrap(), 2..2);

    // Removal: without force, other clients → EBUSY; nobody → EINVAL.
    assert_eq!(header.remove_journal(false, "me").unwrap_err().errno(), -16);
    header.remove_journal(false, "a").unwrap();
    // Sets 2..=3 (objects 8..=15) and the header are gone.
    assert!(store.list("journal_data.").unwrap().is_empty());
    assert!(store.stat("journal.j1").unwrap_err().is_not_found());
    assert!(header.get_immutable_metadata().unwrap_err().is_not_found());

    let (_, lonely) = fresh();
    assert_eq!(lonely.remove_journal(false, "").unwrap_err().errno(), -22);
    lonely.remove_journal(true, "").unwrap();
}

trait TapSort {
    fn tap_sort(self) -> Self;
}
impl TapSort for Vec<String> {
    fn tap_sort(mut self) -> Self {
        self.sort();
        self
    }
}

#[test]
fn fencing() {
    let (_, header) = fresh();
    let mine = header.allocate_tag(TAG_CLASS_NEW, Bytes::new()).unwrap();
    header.client_register("", Bytes::new()).unwrap();
    let fenced = header.with_fence(mine.tid);
    assert_eq!(fenced.fence(), Some(mine.tid));
    fenced.set_active_set(1).unwrap();
    fenced
        .client_commit("", &ObjectSetPosition::new(vec![pos(4, 0, 0)]))
        .unwrap();
    // Someone else takes over the journal with a newer tag.
    let other = JournalHeader::new(header.store().clone(), 1, "j1");
    let theirs = other.allocate_tag(0, Bytes::new()).unwrap();
    let err = fenced.set_active_set(2).unwrap_err();
    assert!(matches!(
        err,
        HeaderError::Fenced {
            tag_tid: 0,
            next_tag_tid: Some(2)
        }
    ));
    assert_eq!(err.errno(), -108);
    assert!(fenced
        .client_commit("", &ObjectSetPosition::new(vec![pos(5, 0, 1)]))
        .unwrap_err()
        .is_fenced());
    assert!(fenced
        .allocate_tag(0, Bytes::new())
        .unwrap_err()
        .is_fenced());
    // Nothing the fenced handle tried was written; reads still work through it.
    assert_eq!(fenced.get_active_set().unwrap(), 1);
    assert_eq!(
        fenced.get_client("").unwrap().commit_position,
        ObjectSetPosition::new(vec![pos(4, 0, 0)])
    );
    // The new owner's fence holds.
    let new_owner = other.with_fence(theirs.tid);
    new_owner.set_active_set(2).unwrap();
    assert!(new_owner.unfenced().fence().is_none());
}

#[test]
fn mutations_notify_watchers() {
    let store = Arc::new(MemStore::new());
    let header = JournalHeader::new(store, 1, "j");
    let watch = header.watch().unwrap();
    header.create(24, 4, -1).unwrap();
    header.allocate_tag(TAG_CLASS_NEW, Bytes::new()).unwrap();
    header.client_register("", Bytes::new()).unwrap();
    header.set_active_set(1).unwrap();
    let got: Vec<_> = watch.receiver().try_iter().collect();
    assert_eq!(got.len(), 4);
    assert!(got
        .iter()
        .all(|n| n.payload.is_empty() && n.oid == "journal.j"));
}
