//! Several processes sharing one DirStore directory: concurrent appends to one object and
//! compare-and-set increments of one omap counter. Oracle: every process's own record of what it
//! wrote (self-describing records) and the total number of increments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use object_store_trait::{
    AppendGuard, DirStore, DirStoreOptions, ObjectStore, ObjectStoreExt, OmapBatch,
};

const CHILD_ENV: &str = "RBDJ_DIRSTORE_MP_CHILD";
const RECORDS: u64 = 40;
const INCREMENTS: u64 = 10;
const CHILDREN: u64 = 2;

/// Record: `[writer, seq, len_lo, len_hi]` then `len` bytes of `writer * 7 + seq + i`, written as
/// several buffers.
fn record(writer: u64, seq: u64) -> Vec<Bytes> {
    let len = 50 + ((writer * 131 + seq * 17) % 700) as usize;
    let mut bytes = vec![
        writer as u8,
        seq as u8,
        (len & 0xff) as u8,
        (len >> 8) as u8,
    ];
    bytes.extend((0..len).map(|i| (writer as usize * 7 + seq as usize + i) as u8));
    bytes.chunks(64).map(Bytes::copy_from_slice).collect()
}

fn work(dir: &Path, writer: u64) {
    let store = DirStore::open(dir, DirStoreOptions::default()).unwrap();
    while !dir.join("go").exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    for seq in 0..RECORDS {
        store
            .append("shared", &record(writer, seq), &AppendGuard::none())
            .unwrap();
        if seq % (RECORDS / INCREMENTS) == 0 {
            loop {
                let cur = store.omap_get_one("ctr", "n").unwrap().unwrap();
                let n = u64::from_le_bytes(cur[..].try_into().unwrap());
                let mut batch = OmapBatch::new();
                batch
                    .assert_equals("n", cur)
                    .set("n", Bytes::copy_from_slice(&(n + 1).to_le_bytes()));
                match store.omap_apply("ctr", &batch) {
                    Ok(()) => break,
                    Err(e) if e.is_guard_failed() => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
}

#[test]
fn mp_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // only active when re-executed by `processes_share_a_store`
    };
    let (writer, dir) = spec.split_once(':').unwrap();
    work(Path::new(dir), writer.parse().unwrap());
}

#[test]
fn processes_share_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DirStore::open(tmp.path(), DirStoreOptions::default()).unwrap();
    let mut init = OmapBatch::new();
    init.set("n", Bytes::copy_from_slice(&0u64.to_le_bytes()));
    store.omap_apply("ctr", &init).unwrap();
    let children: Vec<_> = (1..=CHILDREN)
        .map(|writer| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "mp_child", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, format!("{writer}:{}", tmp.path().display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(tmp.path().join("go"), b"").unwrap();
    work(tmp.path(), 0);
    for mut child in children {
        assert!(child.wait().unwrap().success(), "child writer failed");
    }

    // Parse the shared object back into records; every one must be whole and accounted for.
    let data = store.read_all("shared").unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let (writer, seq) = (u64::from(data[pos]), u64::from(data[pos + 1]));
        let want: Vec<u8> = record(writer, seq)
            .iter()
            .flat_map(|b| b.to_vec())
            .collect();
        assert_eq!(
            &data[pos..pos + want.len()],
            &want[..],
            "record at {pos} torn or interleaved"
        );
        assert!(seen.insert((writer, seq)), "record ({writer}, {seq}) twice");
        pos += want.len();
    }
    assert_eq!(seen.len() as u64, (CHILDREN + 1) * RECORDS);
    let n = store.omap_get_one("ctr", "n").unwrap().unwrap();
    assert_eq!(
        u64::from_le_bytes(n[..].try_into().unwrap()),
        (CHILDREN + 1) * INCREMENTS
    );
}
