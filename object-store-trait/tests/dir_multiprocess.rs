//! Several processes sharing one DirStore directory: concurrent appends to one object and
//! compare-and-set increments of one omap counter (oracle: every process's own record of what it
//! wrote, self-describing records, and the total number of increments); and one process creating
//! many new objects while others keep opening the store (oracle: every operation succeeds and
//! every created object reads back what the creator wrote).
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

const CREATE_ENV: &str = "RBDJ_DIRSTORE_MP_CREATE";
/// Objects the creator makes per operation kind.
const CREATES: usize = 150;
const OPENERS: usize = 3;

fn wait_for(path: &Path) {
    while !path.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Opens the store (racing the other processes' first opens of a directory that does not exist
/// yet), creates `CREATES` new objects with each of `omap_apply`, `append` and `write_full` while
/// other threads append to and read existing objects (a long-running agent publishing status
/// objects), then writes `base/done`.
fn create_many(base: &Path) {
    wait_for(&base.join("go"));
    let store = DirStore::open(base.join("store"), DirStoreOptions::default())
        .unwrap_or_else(|e| panic!("creator open: {e}"));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for t in 0..3 {
            let (store, stop) = (&store, &stop);
            scope.spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let oid = format!("busy_{t}_{}", n % 64);
                    store
                        .append(&oid, &[Bytes::from_static(b"x")], &AppendGuard::none())
                        .unwrap();
                    store.read(&oid, 0, 8).unwrap();
                    store.stat(&format!("busy_{}_{}", (t + 1) % 3, n % 64)).ok();
                    n += 1;
                }
            });
        }
        create_loop(&store);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    std::fs::write(base.join("done"), b"").unwrap();
}

fn create_loop(store: &DirStore) {
    for i in 0..CREATES {
        let mut batch = OmapBatch::new();
        batch.set("i", Bytes::from(i.to_string()));
        let oid = format!("status_{i}");
        store
            .omap_apply(&oid, &batch)
            .unwrap_or_else(|e| panic!("omap_apply creating {oid}: {e}"));
        let oid = format!("log_{i}");
        store
            .append(&oid, &[Bytes::from(i.to_string())], &AppendGuard::none())
            .unwrap_or_else(|e| panic!("append creating {oid}: {e}"));
        let oid = format!("full_{i}");
        store
            .write_full(&oid, Bytes::from(i.to_string()))
            .unwrap_or_else(|e| panic!("write_full creating {oid}: {e}"));
    }
}

/// Opens the store afresh (every open cleans leftovers) and reads from it until `done` appears
/// (short-lived CLI processes run in a loop).
fn open_repeatedly(base: &Path) {
    wait_for(&base.join("go"));
    let mut i = 0usize;
    while !base.join("done").exists() {
        let store = DirStore::open(base.join("store"), DirStoreOptions::default())
            .unwrap_or_else(|e| panic!("opener open: {e}"));
        let oid = format!("log_{}", i % CREATES);
        match store.read(&oid, 0, 64) {
            Ok(bytes) => assert_eq!(bytes, Bytes::from((i % CREATES).to_string())),
            Err(e) if e.is_not_found() => {}
            Err(e) => panic!("read {oid}: {e}"),
        }
        store.list("status_").unwrap();
        drop(store);
        i += 1;
    }
}

#[test]
fn mp_create_child() {
    let Ok(spec) = std::env::var(CREATE_ENV) else {
        return; // only active when re-executed by `creating_while_others_open`
    };
    let (role, dir) = spec.split_once(':').unwrap();
    match role {
        "create" => create_many(Path::new(dir)),
        "init" => open_fresh_stores(Path::new(dir)),
        _ => open_repeatedly(Path::new(dir)),
    }
}

/// Fresh store directories opened at once by several processes.
const FRESH_STORES: usize = 60;

/// Opens `base/s<k>` for every k, in order, as soon as `go` appears: the processes doing this
/// race each other's first open (and initialisation) of every directory.
fn open_fresh_stores(base: &Path) {
    wait_for(&base.join("go"));
    for k in 0..FRESH_STORES {
        let dir = base.join(format!("s{k}"));
        let store = DirStore::open(&dir, DirStoreOptions::unsynced())
            .unwrap_or_else(|e| panic!("first open of {}: {e}", dir.display()));
        store.list("").unwrap();
    }
}

#[test]
fn processes_initialise_a_fresh_store_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "mp_create_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CREATE_ENV, format!("init:{}", tmp.path().display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(tmp.path().join("go"), b"").unwrap();
    let failed = children
        .into_iter()
        .filter_map(|mut child| (!child.wait().unwrap().success()).then_some(()))
        .count();
    assert_eq!(failed, 0, "processes failed to open a fresh store");
    for k in 0..FRESH_STORES {
        let dir = tmp.path().join(format!("s{k}"));
        assert_eq!(
            std::fs::read(dir.join("FORMAT")).unwrap(),
            b"rbdj-dirstore 3\n",
            "{}",
            dir.display()
        );
    }
}

#[test]
fn creating_while_others_open() {
    let tmp = tempfile::tempdir().unwrap();
    let spawn = |role: &str| {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "mp_create_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CREATE_ENV, format!("{role}:{}", tmp.path().display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let creator = spawn("create");
    let openers: Vec<_> = (0..OPENERS).map(|_| spawn("open")).collect();
    std::fs::write(tmp.path().join("go"), b"").unwrap();
    let mut failed = Vec::new();
    for (name, mut child) in
        std::iter::once(("creator", creator)).chain(openers.into_iter().map(|c| ("opener", c)))
    {
        if !child.wait().unwrap().success() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "child processes failed: {failed:?}");
    let store = DirStore::open(tmp.path().join("store"), DirStoreOptions::default()).unwrap();
    for i in 0..CREATES {
        let want = Bytes::from(i.to_string());
        let status = store.omap_get_one(&format!("status_{i}"), "i").unwrap();
        assert_eq!(status, Some(want.clone()));
        assert_eq!(store.read_all(&format!("log_{i}")).unwrap(), want);
        assert_eq!(store.read_all(&format!("full_{i}")).unwrap(), want);
    }
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
