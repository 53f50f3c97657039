//! The RADOS behaviours RadosStore's design rests on, checked against the live cluster (the
//! oracle is the OSD itself). See the module docs of `store.rs`:
//!
//! * Ceph's `omap_cmp` compares a *missing* key as an empty value, fails the whole op with
//!   `-ENOENT` on a missing object, compares bytewise, and accepts only EQ / LT / GT — which is why
//!   the store does not map `OmapCmp::{Absent, Present, U64AtMost, U64AtLeast}` onto it;
//! * the `journal.guard_append` class method refuses at `size >= soft_max` and lets a missing
//!   object through (so the store refuses `soft_max == 0` itself);
//! * watch/notify reach a watcher in another process (a python3-rados process here).
//!
//! Without a cluster each test prints `SKIPPED: no Ceph cluster (set CEPH_CONF)`.
#![cfg(feature = "rados")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use object_store_trait::{AppendGuard, ObjectStore, OmapBatch, StoreError};
use rados_store::CephCmpOp;

use common::{base_store, conf_path, fresh_namespace};

#[test]
fn ceph_omap_cmp_semantics() {
    let Some(base) = base_store("ceph_omap_cmp_semantics") else {
        return;
    };
    let store = base.with_namespace(&fresh_namespace("sem")).unwrap();
    // Missing object: the comparison fails the op with -ENOENT, whatever the operand.
    assert!(store
        .omap_compare("o", "k", CephCmpOp::Eq, b"")
        .unwrap_err()
        .is_not_found());
    let mut batch = OmapBatch::new();
    batch
        .set("empty", Bytes::new())
        .set("v", Bytes::from_static(b"xyz"))
        .set("n", Bytes::copy_from_slice(&256u64.to_le_bytes()));
    store.omap_apply("o", &batch).unwrap();
    let cmp = |key: &str, op, operand: &[u8]| store.omap_compare("o", key, op, operand).unwrap();
    // A missing key and an empty value are the same to omap_cmp.
    assert!(cmp("missing", CephCmpOp::Eq, b""));
    assert!(cmp("empty", CephCmpOp::Eq, b""));
    assert!(!cmp("missing", CephCmpOp::Gt, b""));
    assert!(!cmp("empty", CephCmpOp::Gt, b""));
    assert!(cmp("v", CephCmpOp::Gt, b""));
    // Bytewise comparison of the stored value against the operand.
    assert!(cmp("v", CephCmpOp::Eq, b"xyz"));
    assert!(!cmp("v", CephCmpOp::Eq, b"xy"));
    assert!(cmp("v", CephCmpOp::Lt, b"xz"));
    assert!(!cmp("v", CephCmpOp::Gt, b"xz"));
    // Little-endian u64 256 sorts *below* 1 bytewise: numeric guards cannot use omap_cmp.
    assert!(cmp("n", CephCmpOp::Lt, &1u64.to_le_bytes()));
}

#[test]
fn ceph_guard_append_semantics() {
    let Some(base) = base_store("ceph_guard_append_semantics") else {
        return;
    };
    let store = base.with_namespace(&fresh_namespace("sem")).unwrap();
    let exec = |oid: &str, soft_max: u64| {
        store.exec(oid, "journal", "guard_append", &soft_max.to_le_bytes())
    };
    // A missing object passes even the limit 0 (so RadosStore refuses limit 0 itself).
    exec("d", 0).unwrap();
    store
        .append(
            "d",
            &[Bytes::from_static(b"0123456789")],
            &AppendGuard::none(),
        )
        .unwrap();
    exec("d", 11).unwrap();
    for limit in [10, 3] {
        match exec("d", limit) {
            Err(StoreError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(75)),
            other => panic!("limit {limit}: expected -EOVERFLOW, got {other:?}"),
        }
    }
}

#[test]
fn notify_reaches_another_process() {
    let Some(base) = base_store("notify_reaches_another_process") else {
        return;
    };
    let ns = fresh_namespace("xproc");
    let store = base.with_namespace(&ns).unwrap();
    store.write_full("hdr", Bytes::new()).unwrap();
    // A python3-rados process watches "hdr", prints "ready", then prints each payload (hex) it
    // gets; it notifies "back" with payload "pong" when told to on stdin.
    let script = r#"
import os, sys, rados
cl = rados.Rados(conffile=os.environ['CEPH_CONF']); cl.connect()
io = cl.open_ioctx('rbd'); io.set_namespace(sys.argv[1])
def cb(notify_id, notifier_id, watch_id, data):
    print('got', (data or b'').hex(), flush=True)
w = io.watch('hdr', cb)
print('ready', flush=True)
for line in sys.stdin:
    if line.strip() == 'notify':
        io.notify('back', 'pong')
        print('sent', flush=True)
    else:
        break
w.close(); io.close(); cl.shutdown()
"#;
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(&ns)
        .env("CEPH_CONF", conf_path().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (python3-rados)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    // Our notify reaches their watch (and their ack is counted).
    assert_eq!(store.notify("hdr", Bytes::from_static(b"ping")).unwrap(), 1);
    assert_eq!(
        lines.next().unwrap().unwrap(),
        format!("got {}", hex(b"ping"))
    );

    // Their notify reaches our watch.
    let watch = store.watch("back").unwrap();
    writeln!(stdin, "notify").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "sent");
    let note = watch
        .receiver()
        .recv_timeout(Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        (note.oid.as_str(), &note.payload[..]),
        ("back", &b"pong"[..])
    );
    writeln!(stdin, "quit").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `write_at` edge cases RadosStore handles itself (empty writes past the end, gaps), compared
/// with MemStore as a second implementation.
#[test]
fn write_at_edges_match_memstore() {
    let Some(base) = base_store("write_at_edges_match_memstore") else {
        return;
    };
    let rados = base.with_namespace(&fresh_namespace("sem")).unwrap();
    let mem = object_store_trait::MemStore::new();
    let steps: [(u64, &[u8]); 6] = [
        (5, b""),
        (0, b"ab"),
        (10, b""),
        (12, b"xyz"),
        (3, b""),
        (1, b"Q"),
    ];
    for (i, (offset, data)) in steps.iter().enumerate() {
        for store in [&rados as &dyn ObjectStore, &mem] {
            store
                .write_at("w", *offset, Bytes::copy_from_slice(data))
                .unwrap();
        }
        let want = mem.read("w", 0, 1 << 20).unwrap();
        assert_eq!(rados.read("w", 0, 1 << 20).unwrap(), want, "after step {i}");
        assert_eq!(rados.stat("w").unwrap(), mem.stat("w").unwrap(), "step {i}");
    }
}

/// RadosStore remembers the version of objects it appended to (one round trip per append for a
/// sole appender). Another store instance — its own cache, like another process — changing the
/// object in between must never be missed: offsets stay exact and guards see the new omap.
#[test]
fn append_cache_sees_other_writers() {
    let Some(base) = base_store("append_cache_sees_other_writers") else {
        return;
    };
    let ns = fresh_namespace("sem");
    let (s1, s2) = (
        base.with_namespace(&ns).unwrap(),
        base.with_namespace(&ns).unwrap(),
    );
    let absent = AppendGuard::soft_max(1 << 20).with_omap_guard(object_store_trait::OmapGuard {
        key: "closed".into(),
        cmp: object_store_trait::OmapCmp::Absent,
    });
    let mut model = Vec::new();
    for round in 0..6u8 {
        for (who, store) in [(1u8, &s1), (2u8, &s2)] {
            let data = vec![round * 2 + who; 10 + usize::from(round)];
            let off = store
                .append("obj", &[Bytes::from(data.clone())], &absent)
                .unwrap();
            assert_eq!(off, model.len() as u64, "round {round}, store {who}");
            model.extend_from_slice(&data);
        }
        // A write_full by the other store shrinks the object under s1's cache.
        if round == 3 {
            s2.write_full("obj", Bytes::from_static(b"reset")).unwrap();
            model = b"reset".to_vec();
        }
    }
    assert_eq!(s1.read("obj", 0, 1 << 20).unwrap(), model);
    // s1 has the key cached as absent; s2 sets it; s1's guarded append must be refused.
    let mut batch = OmapBatch::new();
    batch.set("closed", Bytes::from_static(b"1"));
    s2.omap_apply("obj", &batch).unwrap();
    match s1.append("obj", &[Bytes::from_static(b"late")], &absent) {
        Err(StoreError::GuardFailed { key, .. }) => assert_eq!(key, "closed"),
        other => panic!("expected GuardFailed, got {other:?}"),
    }
    // And a soft limit reached through the other store is seen too.
    s2.append("obj", &[Bytes::from(vec![0u8; 64])], &AppendGuard::none())
        .unwrap();
    let size = s2.stat("obj").unwrap().size;
    match s1.append(
        "obj",
        &[Bytes::from_static(b"x")],
        &AppendGuard::soft_max(size),
    ) {
        Err(StoreError::Overflow { size: got, .. }) => assert_eq!(got, size),
        other => panic!("expected Overflow, got {other:?}"),
    }
}

/// A watch the OSD dropped is registered again. Deleting a watched object makes the OSD drop
/// its watches on demand (librados then reports `-ENOTCONN`, as Ceph's own `Watch2Delete`
/// test checks): the watcher is woken, the store does not re-create the object, and once
/// another client creates it again the watch comes back by itself, so a notify reaches it.
#[test]
fn a_dropped_watch_is_registered_again() {
    let Some(base) = base_store("a_dropped_watch_is_registered_again") else {
        return;
    };
    let ns = fresh_namespace("rewatch");
    let watcher = base.with_namespace(&ns).unwrap();
    let other = base.with_namespace(&ns).unwrap();
    other.write_full("o", Bytes::from_static(b"v1")).unwrap();
    let watch = watcher.watch("o").unwrap();
    let next = |what: &str, secs: u64| {
        watch
            .receiver()
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("no notification within {secs} s: {what}"))
    };
    assert_eq!(other.notify("o", Bytes::from_static(b"before")).unwrap(), 1);
    assert_eq!(&next("a plain notify", 10).payload[..], b"before");

    other.remove("o").unwrap();
    let woken = next("the wake-up after the watched object was deleted", 30);
    assert!(woken.payload.is_empty(), "{woken:?}");
    // The store keeps trying to watch, but never creates the object.
    std::thread::sleep(Duration::from_millis(800));
    assert!(other.stat("o").unwrap_err().is_not_found());
    assert!(
        watch.receiver().try_recv().is_err(),
        "woken twice for one deletion"
    );

    other.write_full("o", Bytes::from_static(b"v2")).unwrap();
    let back = next("the wake-up once the watch was registered again", 15);
    assert!(back.payload.is_empty(), "{back:?}");
    assert_eq!(other.notify("o", Bytes::from_static(b"after")).unwrap(), 1);
    assert_eq!(
        &next("a notify after the re-watch", 10).payload[..],
        b"after"
    );

    drop(watch);
    assert_eq!(other.notify("o", Bytes::from_static(b"gone")).unwrap(), 0);
}
