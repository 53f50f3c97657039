//! The real `rbdj` binary, run as a user would: the demo verifies its replica, an export from
//! Ceph imports and exports again to Ceph's records byte for byte, inspect reports a corrupted
//! object, status JSON carries the documented fields, and bad arguments fail clearly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use common::{ok, rbdj, KillOnDrop};
use object_store_trait::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn ceph_export() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../journal-core/tests/data/librbd-basic/journal.export")
}

fn site(dir: &Path) -> String {
    format!("dir:{}", dir.join("site").display())
}

/// Runs `rbdj demo` on two small in-memory sites with 2 writers and `args`, and returns its
/// JSON report after checking that it verified the replica.
fn demo_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "demo",
        "--threads",
        "2",
        "--size-mib",
        "8",
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let out = ok(&all);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verified"], true, "{out}");
    assert_eq!(v["primary_crc32c"], v["replica_crc32c"], "{out}");
    v
}

#[test]
fn demo_verifies_and_reports_json() {
    let v = demo_json(&["--seconds", "2"]);
    assert!(v["writes"].as_u64().unwrap() > 0);
    assert!(v["lag_p50_ms"].as_f64().unwrap() >= 0.0);
    assert!(v["lag_p99_ms"].as_f64().unwrap() >= v["lag_p50_ms"].as_f64().unwrap());
    assert!(v["replica_ready_ms"].as_f64().unwrap() > 0.0);
}

/// `--rate` paces the writers: an open-loop schedule never issues more than the rate allows
/// in the time the workload ran (plus each writer's first write); a slow machine issues fewer.
#[test]
fn demo_paces_the_writers_to_the_rate() {
    let v = demo_json(&["--seconds", "1", "--rate", "300"]);
    assert_eq!(v["rate"], 300);
    let writes = v["writes"].as_u64().unwrap() as f64;
    let allowed = 300.0 * v["seconds"].as_f64().unwrap() + 2.0;
    assert!(
        writes > 0.0 && writes <= allowed,
        "{writes} writes, at most {allowed}: {v}"
    );
}

#[test]
fn demo_on_directories_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = ok(&[
        "demo",
        "--dir",
        d,
        "--seconds",
        "1",
        "--threads",
        "2",
        "--size-mib",
        "8",
    ]);
    assert!(out.contains("verified (replica == primary)  yes"), "{out}");
}

#[test]
fn ceph_export_imports_and_exports_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    ok(&[
        "image",
        "create",
        "--site",
        &s,
        "--size",
        "64M",
        "--journaling",
        "img",
    ]);
    let import = ok(&[
        "journal",
        "import",
        "--site",
        &s,
        "--image",
        "img",
        ceph_export().to_str().unwrap(),
    ]);
    assert!(
        import.contains("93 entries processed, 0 errors"),
        "{import}"
    );
    let out_file = dir.path().join("out.export");
    let export = ok(&[
        "journal",
        "export",
        "--site",
        &s,
        "--image",
        "img",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        export.contains("93 entries processed, 0 errors"),
        "{export}"
    );

    let ours = std::fs::read_to_string(&out_file).unwrap();
    let theirs = std::fs::read_to_string(ceph_export()).unwrap();
    let (our_head, our_records) = ours.split_once('\n').unwrap();
    let (_, their_records) = theirs.split_once('\n').unwrap();
    assert!(our_head.starts_with("# journal_id: "));
    assert_eq!(
        our_records, their_records,
        "records differ from Ceph's export"
    );

    // The imported journal inspects clean.
    let inspect = ok(&["journal", "inspect", "--site", &s, "--image", "img"]);
    assert!(
        inspect.ends_with("Summary:\n  93 entries inspected, 0 errors\n"),
        "{inspect}"
    );
}

#[test]
fn inspect_reports_a_corrupted_object() {
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    ok(&[
        "image",
        "create",
        "--site",
        &s,
        "--size",
        "64M",
        "--journaling",
        "img",
    ]);
    ok(&[
        "journal",
        "import",
        "--site",
        &s,
        "--image",
        "img",
        ceph_export().to_str().unwrap(),
    ]);
    // Flip a byte inside the first entry of one journal data object, on disk: object offset 200.
    // The store checks the bytes of an object's latest append (a mismatch reads as a torn
    // append, which it rolls back), and a journal object's appends are timing-dependent; so the
    // object is first rewritten whole (`write_full`: a sized data file whose size record
    // certifies nothing, docs/object-store.md), where offset 200 is file offset 4,296 after the
    // 4 KiB header and the flip reaches the journal's own CRC.
    let store = object_store_trait::DirStore::open(
        dir.path().join("site"),
        object_store_trait::DirStoreOptions::default(),
    )
    .unwrap();
    let mut journal_objects: Vec<String> = store
        .list("journal_data.")
        .unwrap()
        .into_iter()
        .filter(|oid| store.stat(oid).unwrap().size > 20_000)
        .collect();
    journal_objects.sort();
    let victim = journal_objects.first().expect("a journal data object");
    let whole = store.read_all(victim).unwrap();
    store.write_full(victim, whole.clone()).unwrap();
    drop(store);
    let data_file = dir.path().join("site/objects").join(victim).join("data");
    let mut bytes = std::fs::read(&data_file).unwrap();
    assert_eq!(&bytes[4096..4096 + whole.len()], &whole[..]);
    bytes[4096 + 200] ^= 0x5a;
    std::fs::write(&data_file, &bytes).unwrap();

    let out = rbdj(&["journal", "inspect", "--site", &s, "--image", "img"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("failed to replay journal"), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.contains("entries inspected") && !summary.ends_with(" 0 errors"),
        "{summary}"
    );
}

#[test]
fn status_json_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    ok(&[
        "image",
        "create",
        "--site",
        &s,
        "--size",
        "8M",
        "--journaling",
        "img",
    ]);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, vec![0xabu8; 100_000]).unwrap();
    ok(&[
        "image",
        "write",
        "--site",
        &s,
        "--offset",
        "4096",
        "img",
        input.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "journal", "status", "--site", &s, "--image", "img", "--format", "json",
    ]))
    .unwrap();
    assert!(v["minimum_set"].is_u64() && v["active_set"].is_u64());
    let clients = v["registered_clients"].as_array().unwrap();
    let image_client = clients.iter().find(|c| c["id"] == "").unwrap();
    assert_eq!(image_client["state"], "connected");
    // The write was committed by the image client: its position names tag 1.
    let positions = image_client["commit_position"]["object_positions"]
        .as_array()
        .unwrap();
    assert!(!positions.is_empty());
    assert_eq!(positions[0]["tag_tid"], 1);

    let info: serde_json::Value = serde_json::from_str(&ok(&[
        "journal", "info", "--site", &s, "--image", "img", "--format", "json",
    ]))
    .unwrap();
    assert_eq!(info["order"], 24);
    assert_eq!(info["splay_width"], 4);
    assert_eq!(
        info["header_oid"],
        format!("journal.{}", info["journal_id"].as_str().unwrap())
    );

    // The data is in the image.
    let exported = dir.path().join("img.raw");
    ok(&[
        "image",
        "export",
        "--site",
        &s,
        "img",
        exported.to_str().unwrap(),
    ]);
    let raw = std::fs::read(&exported).unwrap();
    assert_eq!(raw.len(), 8 << 20);
    assert!(raw[..4096].iter().all(|b| *b == 0));
    assert!(raw[4096..104_096].iter().all(|b| *b == 0xab));
    assert!(raw[104_096..].iter().all(|b| *b == 0));
}

#[test]
fn bench_json_has_the_documented_fields() {
    let out = ok(&[
        "bench",
        "--site",
        "mem:",
        "--io-size",
        "4K",
        "--threads",
        "2",
        "--seconds",
        "1",
        "--size-mib",
        "8",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for field in [
        "journaled_iops",
        "unjournaled_iops",
        "ratio",
        "p50_us",
        "p99_us",
    ] {
        assert!(v[field].as_f64().is_some(), "missing {field}: {out}");
    }
    assert!(v["journaled_iops"].as_f64().unwrap() > 0.0);
    assert_eq!(v["image"], "preconditioned", "{out}");
    assert_eq!(v["journal"], "steady", "{out}");
}

#[test]
fn bad_arguments_fail_clearly() {
    let out = rbdj(&["image", "create", "--site", "bogus:x", "--size", "1M", "a"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid site"));

    let out = rbdj(&["image", "create", "--site", "mem:", "--size", "12Q", "a"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown size suffix"));

    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    let out = rbdj(&["journal", "info", "--site", &s, "--image", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("rbdj: error:"), "{err}");

    let out = rbdj(&["journal", "info", "--site", &s]);
    assert!(!out.status.success(), "missing --image/--journal must fail");
}

#[test]
fn nbd_serve_writes_through_the_journal_with_qemu_io() {
    use std::io::BufRead;
    if Command::new("qemu-io").arg("--version").output().is_err() {
        eprintln!("SKIPPED: qemu-io not installed (apt-get install qemu-utils)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    ok(&[
        "image",
        "create",
        "--site",
        &s,
        "--size",
        "8M",
        "--journaling",
        "vol",
    ]);
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_rbdj"))
            .args([
                "nbd",
                "serve",
                "--site",
                &s,
                "--listen",
                "127.0.0.1:0",
                "vol",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("serving NBD on ")
        .and_then(|r| r.split(';').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let url = format!("nbd://{addr}/vol");
    let io = Command::new("qemu-io")
        .args([
            "-f",
            "raw",
            &url,
            "-c",
            "write -P 0x5c 4096 64k",
            "-c",
            "discard 8192 4096",
            "-c",
            "flush",
        ])
        .output()
        .unwrap();
    assert!(
        io.status.success(),
        "{}",
        String::from_utf8_lossy(&io.stderr)
    );
    Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(child.0.wait().unwrap().success());

    let raw_path = dir.path().join("vol.raw");
    ok(&[
        "image",
        "export",
        "--site",
        &s,
        "vol",
        raw_path.to_str().unwrap(),
    ]);
    let raw = std::fs::read(&raw_path).unwrap();
    let mut expected = vec![0u8; 8 << 20];
    expected[4096..4096 + 65536].fill(0x5c);
    expected[8192..8192 + 4096].fill(0);
    assert!(
        raw == expected,
        "image differs from the reference after NBD writes"
    );
}

#[test]
fn snapshots_through_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    ok(&[
        "image",
        "create",
        "--site",
        &s,
        "--size",
        "1M",
        "--journaling",
        "vol",
    ]);
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.bin");
    std::fs::write(&a, vec![0xaau8; 8192]).unwrap();
    std::fs::write(&b, vec![0xbbu8; 8192]).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    ok(&["image", "write", "--site", &s, "vol", a]);
    ok(&["image", "snap", "create", "--site", &s, "vol", "s1"]);
    ok(&["image", "snap", "protect", "--site", &s, "vol", "s1"]);
    assert!(
        !rbdj(&["image", "snap", "rm", "--site", &s, "vol", "s1"])
            .status
            .success(),
        "a protected snapshot must not be removable"
    );
    ok(&["image", "snap", "rename", "--site", &s, "vol", "s1", "s2"]);
    ok(&["image", "write", "--site", &s, "vol", b]);
    let ls = ok(&["image", "snap", "ls", "--site", &s, "vol"]);
    assert!(ls.contains(" s2 ") && !ls.contains(" s1 "), "{ls}");
    ok(&["image", "snap", "rollback", "--site", &s, "vol", "s2"]);
    let raw = dir.path().join("vol.raw");
    ok(&[
        "image",
        "export",
        "--site",
        &s,
        "vol",
        raw.to_str().unwrap(),
    ]);
    let data = std::fs::read(&raw).unwrap();
    assert!(
        data[..8192].iter().all(|x| *x == 0xaa),
        "rollback did not restore the snapshot"
    );
    assert!(data[8192..].iter().all(|x| *x == 0));
    ok(&["image", "snap", "unprotect", "--site", &s, "vol", "s2"]);
    ok(&["image", "snap", "rm", "--site", &s, "vol", "s2"]);
    let ls = ok(&["image", "snap", "ls", "--site", &s, "vol"]);
    assert_eq!(ls.lines().count(), 1, "{ls}");
}
