//! DirStore crash safety: damage made outside the store API (torn temporary files, truncated or
//! flipped omap files, garbage after an object's end, leftovers of interrupted creations) and a
//! writer process killed mid-stream. Oracle: what the store acknowledged before the damage or the kill.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use bytes::Bytes;
use object_store_trait::{
    AppendGuard, DirStore, DirStoreOptions, ObjectStore, ObjectStoreExt, OmapBatch, OmapCmp,
    OmapGuard, StoreError,
};

fn open(dir: &Path) -> DirStore {
    DirStore::open(dir, DirStoreOptions::default()).unwrap()
}

fn omap_model() -> BTreeMap<String, Bytes> {
    [
        ("client_a".to_owned(), Bytes::from_static(b"position-1")),
        ("order".to_owned(), Bytes::from_static(&[24])),
    ]
    .into()
}

/// Builds `o` with data "abc" and the model omap, returns the path of its omap file.
fn setup(dir: &Path) -> std::path::PathBuf {
    let store = open(dir);
    store
        .append("o", &[Bytes::from_static(b"abc")], &AppendGuard::none())
        .unwrap();
    let mut batch = OmapBatch::new();
    for (k, v) in omap_model() {
        batch.set(k, v);
    }
    store.omap_apply("o", &batch).unwrap();
    dir.join("objects/o/omap")
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Corrupt { .. })),
        "{what}: expected Corrupt, got {result:?}"
    );
}

#[test]
fn torn_omap_temp_file_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let omap = setup(tmp.path());
    // A crash while rewriting the omap leaves a partial temporary file next to the real one.
    let full = fs::read(&omap).unwrap();
    fs::write(omap.with_file_name("omap.tmp"), &full[..full.len() / 2]).unwrap();
    let store = open(tmp.path());
    let all: BTreeMap<String, Bytes> = store
        .omap_list("o", "", "", 100)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(all, omap_model());
    let mut batch = OmapBatch::new();
    batch
        .assert_equals("order", Bytes::from_static(&[24]))
        .set("x", Bytes::from_static(b"y"));
    store.omap_apply("o", &batch).unwrap();
    assert_eq!(
        store.omap_get_one("o", "x").unwrap(),
        Some(Bytes::from_static(b"y"))
    );
}

#[test]
fn truncated_omap_file_is_reported_corrupt_at_every_length() {
    let tmp = tempfile::tempdir().unwrap();
    let omap = setup(tmp.path());
    let full = fs::read(&omap).unwrap();
    for len in [
        0,
        1,
        19,
        20,
        24,
        full.len() / 2,
        full.len() - 4,
        full.len() - 1,
    ] {
        fs::write(&omap, &full[..len]).unwrap();
        // Fresh handle in a fresh "process" (no other handle keeps the cache alive).
        let store = open(tmp.path());
        assert_corrupt(store.omap_get("o", &["order"]), "omap_get");
        assert_corrupt(store.omap_list("o", "", "", 10), "omap_list");
        let mut batch = OmapBatch::new();
        batch.set("k", Bytes::new());
        assert_corrupt(store.omap_apply("o", &batch), "omap_apply");
        let guarded = AppendGuard::none().with_omap_guard(OmapGuard {
            key: "order".into(),
            cmp: OmapCmp::Present,
        });
        assert_corrupt(
            store.append("o", &[Bytes::from_static(b"z")], &guarded),
            "append",
        );
        // The data is unaffected.
        assert_eq!(store.read_all("o").unwrap(), &b"abc"[..]);
        drop(store);
    }
}

#[test]
fn flipped_byte_in_omap_file_is_reported_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let omap = setup(tmp.path());
    let mut bytes = fs::read(&omap).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x40; // inside the last value, header untouched
                         // Rewrite in place (same inode, same size, same generation): only the CRC can tell.
    OpenOptions::new()
        .write(true)
        .open(&omap)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    let store = open(tmp.path());
    assert_corrupt(store.omap_get("o", &["order"]), "omap_get after bit flip");
}

#[test]
fn garbage_data_tail_keeps_every_acknowledged_byte() {
    for log in [false, true] {
        garbage_data_tail(log);
    }
}

fn garbage_data_tail(log: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    if !log {
        // Created by a write: a sized data file; created by an append: a log-mode one.
        store.write_full("d", Bytes::new()).unwrap();
    }
    let mut model = Vec::new();
    let mut appends = 0u64;
    for i in 0..20u8 {
        let batch = vec![i; 10 + usize::from(i)];
        let off = store
            .append("d", &[Bytes::from(batch.clone())], &AppendGuard::none())
            .unwrap();
        assert_eq!(off, model.len() as u64);
        model.extend_from_slice(&batch);
        appends += 1;
    }
    drop(store);
    // A writer that died mid-append leaves unacknowledged bytes right after the object's end
    // (file offset 4096 + size in a sized file; in a log-mode file each append's data follows
    // a 40-byte segment header, see docs/object-store.md), and possibly more at the end of the
    // file.
    let file = OpenOptions::new()
        .write(true)
        .open(tmp.path().join("objects/d/data"))
        .unwrap();
    let headers = if log { 40 * appends } else { 0 };
    file.write_all_at(b"\xde\xad torn", 4096 + headers + model.len() as u64)
        .unwrap();
    let end = file.metadata().unwrap().len();
    file.write_all_at(b"more garbage", end).unwrap();
    drop(file);
    let store = open(tmp.path());
    // Only acknowledged bytes are object data.
    assert_eq!(store.read_all("d").unwrap(), &model[..]);
    assert_eq!(store.stat("d").unwrap().size, model.len() as u64);
    // The next append overwrites the torn bytes.
    let off = store
        .append("d", &[Bytes::from_static(b"next")], &AppendGuard::none())
        .unwrap();
    assert_eq!(off, model.len() as u64);
    model.extend_from_slice(b"next");
    assert_eq!(store.read_all("d").unwrap(), &model[..]);
}

#[test]
fn interrupted_creations_and_removals_are_invisible_and_cleaned_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    // Crash during creation of "half": staged under tmp/, never renamed.
    let staged = tmp.path().join("tmp/17-999-1-1");
    fs::create_dir_all(&staged).unwrap();
    fs::write(staged.join("data"), b"partial").unwrap();
    // Crash after a removal's rename, before its files were deleted.
    let grave = tmp.path().join("trash/999-2-2");
    fs::create_dir_all(&grave).unwrap();
    fs::write(grave.join("data"), b"dead").unwrap();
    let store = open(tmp.path());
    assert!(store.list("").unwrap().is_empty());
    assert!(store.stat("half").unwrap_err().is_not_found());
    assert!(!staged.exists(), "staging leftover not cleaned");
    assert!(!grave.exists(), "trash leftover not cleaned");
}

const CHILD_ENV: &str = "RBDJ_DIRSTORE_CRASH_CHILD";

/// Child side of `killed_writer_loses_no_acknowledged_update`: appends records and bumps an omap
/// counter forever, printing an acknowledgement line after each returns `Ok`.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only does something when re-executed by the parent test
    };
    let store = open(Path::new(&dir));
    let mut out = std::io::stdout().lock();
    for seq in 0u64.. {
        let record = record_bytes(seq);
        let off = store
            .append("log", &[Bytes::from(record)], &AppendGuard::none())
            .unwrap();
        writeln!(out, "ack append {seq} {off}").unwrap();
        let mut batch = OmapBatch::new();
        batch.set("seq", Bytes::copy_from_slice(&seq.to_le_bytes()));
        store.omap_apply("log", &batch).unwrap();
        writeln!(out, "ack omap {seq}").unwrap();
        out.flush().unwrap();
    }
}

fn record_bytes(seq: u64) -> Vec<u8> {
    let len = 100 + (seq as usize * 7919) % 5000;
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

#[test]
fn killed_writer_loses_no_acknowledged_update() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut appends: Vec<(u64, u64)> = Vec::new();
    let mut last_omap = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ack", "append", seq, off] => {
                appends.push((seq.parse().unwrap(), off.parse().unwrap()))
            }
            ["ack", "omap", seq] => last_omap = Some(seq.parse::<u64>().unwrap()),
            _ => continue,
        }
        if appends.len() >= 60 {
            break; // kill it while it is busy writing
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(appends.len() >= 60, "child stopped early");

    let store = open(tmp.path());
    let data = store.read_all("log").unwrap();
    for (seq, off) in &appends {
        let want = record_bytes(*seq);
        let got = data.get(*off as usize..*off as usize + want.len());
        assert_eq!(
            got,
            Some(&want[..]),
            "acknowledged record {seq} at {off} damaged"
        );
    }
    let seq = store.omap_get_one("log", "seq").unwrap().unwrap();
    let seq = u64::from_le_bytes(seq[..].try_into().unwrap());
    if let Some(acked) = last_omap {
        assert!(
            seq >= acked,
            "omap went back from acknowledged {acked} to {seq}"
        );
    }
    // The store stays usable for the next writer.
    store
        .append("log", &[Bytes::from_static(b"after")], &AppendGuard::none())
        .unwrap();
}
