//! `rbdj journal` tools against a real Ceph 16.2.15 journal (header omap values and data objects
//! captured from a live cluster): the oracle is Ceph's own output for the same journal
//! (`rbd journal info/status --format json`, `rbd journal inspect --verbose`, `rbd journal export`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use journal_core::header::JournalHeader;
use object_store_trait::{AppendGuard, MemStore, ObjectStore, OmapBatch};
use rbdj::journal_tools;
use rbdj::output::Format;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../journal-core/tests/data/librbd-basic")
}

/// A MemStore holding exactly the captured journal.
fn ceph_journal() -> JournalHeader {
    let store = Arc::new(MemStore::new());
    let dir = data_dir();
    let mut batch = OmapBatch::new();
    for entry in std::fs::read_dir(dir.join("header-omap")).unwrap() {
        let entry = entry.unwrap();
        let key = entry.file_name().into_string().unwrap();
        batch.set(key, Bytes::from(std::fs::read(entry.path()).unwrap()));
    }
    store.omap_apply("journal.101b91743424", &batch).unwrap();
    for entry in std::fs::read_dir(dir.join("objects")).unwrap() {
        let entry = entry.unwrap();
        let oid = entry.file_name().into_string().unwrap();
        let data = Bytes::from(std::fs::read(entry.path()).unwrap());
        store.append(&oid, &[data], &AppendGuard::none()).unwrap();
    }
    JournalHeader::new(store, 1, "101b91743424")
}

fn text(path: &str) -> String {
    std::fs::read_to_string(data_dir().join(path)).unwrap()
}

#[test]
fn info_json_equals_ceph() {
    let header = ceph_journal();
    let mut out = Vec::new();
    journal_tools::info(&header, Format::Json, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        text("journal-info.json").trim_end()
    );
}

#[test]
fn info_plain_matches_ceph_layout() {
    let header = ceph_journal();
    let mut out = Vec::new();
    journal_tools::info(&header, Format::Plain, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out,
        "rbd journal '101b91743424':\n\theader_oid: journal.101b91743424\n\tobject_oid_prefix: journal_data.1.101b91743424.\n\torder: 24 (16 MiB objects)\n\tsplay_width: 4\n"
    );
}

#[test]
fn status_json_equals_ceph() {
    let header = ceph_journal();
    let mut out = Vec::new();
    journal_tools::status(&header, Format::Json, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        text("journal-status.json").trim_end()
    );
}

#[test]
fn inspect_verbose_equals_ceph() {
    let header = ceph_journal();
    let mut out = Vec::new();
    let counts = journal_tools::inspect(&header, true, &mut out).unwrap();
    assert_eq!(counts.entries, 93);
    assert_eq!(counts.errors, 0);
    assert_eq!(String::from_utf8(out).unwrap(), text("inspect.txt"));
    // The temporary INSPECT client is gone again.
    assert!(header.get_client("INSPECT").is_err());
}

#[test]
fn export_equals_ceph_byte_for_byte() {
    let header = ceph_journal();
    let mut file = Vec::new();
    let mut out = Vec::new();
    let counts = journal_tools::export(&header, &mut file, false, &mut out).unwrap();
    assert_eq!(counts.entries, 93);
    assert_eq!(
        file,
        std::fs::read(data_dir().join("journal.export")).unwrap()
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "93 entries processed, 0 errors\n"
    );
}

#[test]
fn inspect_reports_a_corrupted_object() {
    let header = ceph_journal();
    let store = header.store().clone();
    // Flip one byte in the middle of object 2: the entry there fails its CRC.
    let oid = "journal_data.1.101b91743424.2";
    let mut data = store.read(oid, 0, u64::MAX).unwrap().to_vec();
    data[5000] ^= 0xff;
    store.write_full(oid, Bytes::from(data)).unwrap();
    let mut out = Vec::new();
    let counts = journal_tools::inspect(&header, false, &mut out).unwrap();
    assert!(counts.errors >= 1, "{}", String::from_utf8_lossy(&out));
    assert!(counts.entries < 93);
}

#[test]
fn client_disconnect_flags_all_but_the_image_client() {
    let header = ceph_journal();
    let mut out = Vec::new();
    journal_tools::client_disconnect(&header, None, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "client HOLD disconnected\n"
    );
    let meta = header.get_mutable_metadata().unwrap();
    assert_eq!(meta.client("HOLD").unwrap().state.name(), "disconnected");
    assert_eq!(meta.client("").unwrap().state.name(), "connected");
}
