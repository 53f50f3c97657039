//! A journal header written by rbdj (journal-core's `JournalHeader`, client-side class methods
//! over RadosStore) against Ceph's own `journal` object class and tools on a live cluster:
//!
//! * the same sequence of methods run by rbdj on one header and by the OSD's `journal` class
//!   (`exec`) on another leaves byte-identical omaps — the class is the oracle;
//! * `rbd journal info` / `rbd journal status` read rbdj's header and report what was written.
//!
//! Without a cluster each test prints `SKIPPED: no Ceph cluster (set CEPH_CONF)` and returns.
#![cfg(feature = "rados")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use journal_core::encoding::Encode;
use journal_core::header::{
    ClientState, JournalHeader, ObjectPosition, ObjectSetPosition, TAG_CLASS_NEW,
};
use object_store_trait::ObjectStore;
use rados_store::RadosStore;

use common::{base_store, conf_path};

/// One step of the workload, runnable both ways.
enum Step {
    Create(u8, u8, i64),
    Register(&'static str, &'static [u8]),
    TagCreate(u64, u64, &'static [u8]),
    Commit(&'static str, ObjectSetPosition),
    SetActive(u64),
    SetMinimum(u64),
    State(&'static str, ClientState),
    Unregister(&'static str),
}

fn pos(object_number: u64, tag_tid: u64, entry_tid: u64) -> ObjectPosition {
    ObjectPosition {
        object_number,
        tag_tid,
        entry_tid,
    }
}

fn workload() -> Vec<Step> {
    use Step::*;
    vec![
        Create(24, 4, -1),
        Register(
            "",
            b"\x02\x01\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ),
        Register("HOLD", b""),
        TagCreate(0, TAG_CLASS_NEW, b"tag zero data"),
        TagCreate(1, 0, b"tag one"),
        Commit(
            "",
            ObjectSetPosition::new(vec![pos(5, 1, 9), pos(4, 1, 8), pos(7, 1, 7), pos(6, 1, 6)]),
        ),
        SetActive(1),
        SetActive(2),
        SetMinimum(1),
        // Registered after a commit: its start position comes from the existing clients.
        Register("late", b"late blob"),
        Commit("HOLD", ObjectSetPosition::new(vec![pos(4, 1, 4)])),
        Register("later", b""),
        State("HOLD", ClientState::Disconnected),
        TagCreate(2, TAG_CLASS_NEW, b"second class"),
        TagCreate(3, 1, b""),
        Unregister("late"),
        Commit(
            "",
            ObjectSetPosition::new(vec![pos(9, 3, 0), pos(8, 1, 10)]),
        ),
    ]
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s);
}

/// Runs `step` through Ceph's `journal` class on `oid`; the inputs are the class's documented
/// argument encodings (spec §4.2).
fn run_ceph(store: &RadosStore, oid: &str, step: &Step) {
    let mut input = Vec::new();
    let method = match step {
        Step::Create(order, splay, pool) => {
            input.push(*order);
            input.push(*splay);
            input.extend_from_slice(&pool.to_le_bytes());
            "create"
        }
        Step::Register(id, data) => {
            string(&mut input, id.as_bytes());
            string(&mut input, data);
            "client_register"
        }
        Step::TagCreate(tid, class, data) => {
            input.extend_from_slice(&tid.to_le_bytes());
            input.extend_from_slice(&class.to_le_bytes());
            string(&mut input, data);
            "tag_create"
        }
        Step::Commit(id, position) => {
            string(&mut input, id.as_bytes());
            input.extend_from_slice(&position.to_bytes());
            "client_commit"
        }
        Step::SetActive(set) => {
            input.extend_from_slice(&set.to_le_bytes());
            "set_active_set"
        }
        Step::SetMinimum(set) => {
            input.extend_from_slice(&set.to_le_bytes());
            "set_minimum_set"
        }
        Step::State(id, state) => {
            string(&mut input, id.as_bytes());
            input.push(state.as_u8());
            "client_update_state"
        }
        Step::Unregister(id) => {
            string(&mut input, id.as_bytes());
            "client_unregister"
        }
    };
    store
        .exec(oid, "journal", method, &input)
        .unwrap_or_else(|e| panic!("Ceph's journal.{method} failed: {e}"));
}

fn run_rbdj(header: &JournalHeader, step: &Step) {
    match step {
        Step::Create(order, splay, pool) => header.create(*order, *splay, *pool).unwrap(),
        Step::Register(id, data) => header
            .client_register(id, Bytes::from_static(data))
            .unwrap(),
        Step::TagCreate(tid, class, data) => {
            header
                .tag_create(*tid, *class, Bytes::from_static(data))
                .unwrap();
        }
        Step::Commit(id, position) => header.client_commit(id, position).unwrap(),
        Step::SetActive(set) => header.set_active_set(*set).unwrap(),
        Step::SetMinimum(set) => header.set_minimum_set(*set).unwrap(),
        Step::State(id, state) => header.client_update_state(id, *state).unwrap(),
        Step::Unregister(id) => header.client_unregister(id).unwrap(),
    }
}

fn all_omap(store: &RadosStore, oid: &str) -> Vec<(String, Bytes)> {
    store.omap_list(oid, "", "", usize::MAX).unwrap()
}

fn unique_id(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}{:x}{:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

/// Sets up rbdj's header for `journal_id` in the default namespace and runs the workload on it.
fn rbdj_header(store: &'static RadosStore, journal_id: &str) -> JournalHeader {
    let shared: Arc<dyn ObjectStore> = Arc::new(store.with_namespace("").unwrap());
    let header = JournalHeader::new(shared, store.pool_id().unwrap(), journal_id);
    for step in &workload() {
        run_rbdj(&header, step);
    }
    header
}

#[test]
fn rbdj_header_equals_ceph_journal_class() {
    let Some(store) = base_store("rbdj_header_equals_ceph_journal_class") else {
        return;
    };
    let ours = unique_id("rbdjours");
    let theirs = unique_id("cephcls");
    let header = rbdj_header(store, &ours);
    let their_oid = format!("journal.{theirs}");
    for step in &workload() {
        run_ceph(store, &their_oid, step);
    }
    let mine = all_omap(store, header.oid());
    let cephs = all_omap(store, &their_oid);
    let keys = |m: &[(String, Bytes)]| m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&mine), keys(&cephs), "omap key sets differ");
    for ((key, a), (_, b)) in mine.iter().zip(&cephs) {
        assert_eq!(
            a, b,
            "value of {key:?} differs (rbdj vs Ceph's journal class)"
        );
    }
    // The workload exercised what it meant to: a client was removed, tags of two classes exist.
    assert!(!mine.iter().any(|(k, _)| k == "client_late"));
    assert!(mine.iter().any(|(k, _)| k == "client_later"));
    assert!(mine.iter().any(|(k, _)| k == "tag_0000000000000003"));
}

fn rbd_json(args: &[&str]) -> serde_json::Value {
    let conf = conf_path().unwrap();
    let out = Command::new("rbd")
        .arg("-c")
        .arg(&conf)
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("run rbd (ceph-common)");
    assert!(
        out.status.success(),
        "rbd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rbd_cli_reads_rbdj_header() {
    let Some(store) = base_store("rbd_cli_reads_rbdj_header") else {
        return;
    };
    let id = unique_id("rbdjcli");
    let header = rbdj_header(store, &id);
    let pool_id = store.pool_id().unwrap();

    let info = rbd_json(&["journal", "info", "--pool", "rbd", "--journal", &id]);
    assert_eq!(info["journal_id"], id.as_str());
    assert_eq!(info["header_oid"], format!("journal.{id}"));
    assert_eq!(
        info["object_oid_prefix"],
        format!("journal_data.{pool_id}.{id}.")
    );
    assert_eq!(info["order"], 24);
    assert_eq!(info["splay_width"], 4);

    let status = rbd_json(&["journal", "status", "--pool", "rbd", "--journal", &id]);
    assert_eq!(status["minimum_set"], 1);
    assert_eq!(status["active_set"], 2);
    let clients = status["registered_clients"].as_array().unwrap();
    let ours = header.clients().unwrap();
    assert_eq!(clients.len(), ours.len());
    for (printed, client) in clients.iter().zip(&ours) {
        assert_eq!(printed["id"], client.id.as_str());
        assert_eq!(printed["state"], client.state.name());
        let positions = printed["commit_position"]["object_positions"]
            .as_array()
            .unwrap();
        assert_eq!(
            positions.len(),
            client.commit_position.object_positions.len()
        );
        for (p, q) in positions
            .iter()
            .zip(&client.commit_position.object_positions)
        {
            assert_eq!(p["object_number"], q.object_number);
            assert_eq!(p["tag_tid"], q.tag_tid);
            assert_eq!(p["entry_tid"], q.entry_tid);
        }
        // rbd hex-dumps the data blob; an empty blob prints as "".
        assert_eq!(
            printed["data"].as_str().unwrap().is_empty(),
            client.data.is_empty()
        );
    }
    let ids: Vec<&str> = clients.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["", "HOLD", "later"]);
}
