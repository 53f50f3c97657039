//! rbdj's journal tools (`rbdj::journal_tools`, `rbdj::journal_import`) run on RadosStore against
//! a journal real librbd wrote (`tests/data/make_rich_journal.py`), compared with Ceph's
//! `rbd journal ...` on the same journal:
//!
//! * `info` and `status` (plain and JSON), `inspect --verbose` print byte-identical output;
//! * `export` writes a byte-identical export file;
//! * import both ways: Ceph's export file imported by Ceph (`rbd journal import`) into one image
//!   and by rbdj into another; `rbd journal export` of the two imported journals is identical
//!   (apart from the journal id line), and Ceph inspects rbdj's import with 0 errors.
//!
//! Without a cluster the test prints `SKIPPED: no Ceph cluster (set CEPH_CONF)`.
#![cfg(feature = "rados")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use journal_core::header::JournalHeader;
use object_store_trait::ObjectStore;
use rbdj::journal_tools;
use rbdj::output::Format;

use common::{base_store, conf_path};

fn rbd(args: &[&str]) -> Vec<u8> {
    let out = Command::new("timeout")
        .args(["120", "rbd", "-c", &conf_path().unwrap()])
        .args(args)
        .output()
        .expect("run rbd (ceph-common)");
    assert!(
        out.status.success(),
        "rbd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn image_id(image: &str) -> String {
    let info: serde_json::Value =
        serde_json::from_slice(&rbd(&["info", "--format", "json", image])).unwrap();
    info["id"].as_str().unwrap().to_owned()
}

fn export_with_ceph(image: &str, dir: &Path) -> String {
    let path = dir.join(format!("{image}.ceph-export"));
    rbd(&[
        "journal",
        "export",
        "--image",
        image,
        "--path",
        path.to_str().unwrap(),
    ]);
    let out = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    out
}

/// `rbd journal import` of `file` into a fresh image; returns the image. Ceph's importer
/// occasionally never returns from "Waiting for journal append to complete..." on a long-lived
/// test cluster (seen twice in many runs, never on a fresh one); such an attempt is abandoned
/// after 60 s, reported on stderr, and retried once into another fresh image.
fn ceph_import(file: &Path, name: &str, create: &dyn Fn(&str)) -> String {
    for attempt in 0..2 {
        let dest = format!("{name}-ceph-import{attempt}");
        create(&dest);
        let out = Command::new("timeout")
            .args([
                "60",
                "rbd",
                "-c",
                &conf_path().unwrap(),
                "journal",
                "import",
            ])
            .arg("--path")
            .arg(file)
            .args(["--dest", &dest])
            .output()
            .unwrap();
        if out.status.success() {
            return dest;
        }
        eprintln!(
            "WARNING: rbd journal import into {dest} failed or hung (attempt {attempt}): {}",
            text(&out.stderr)
        );
    }
    panic!("rbd journal import failed twice");
}

#[test]
fn rbdj_journal_tools_match_rbd_on_a_librbd_journal() {
    let Some(base) = base_store("rbdj_journal_tools_match_rbd_on_a_librbd_journal") else {
        return;
    };
    let conf = conf_path().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(base.with_namespace("").unwrap());
    let pool_id = base.pool_id().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("tools{}x{:x}", std::process::id(), nanos & 0xffff_ffff);
    let out = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/make_rich_journal.py"))
        .arg(&name)
        .env("CEPH_CONF", &conf)
        .output()
        .expect("run /usr/bin/python3 (python3-rbd)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let image = format!("{name}-renamed");
    let journal_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let header = JournalHeader::new(Arc::clone(&store), pool_id, &journal_id);

    for (format, flag) in [(Format::Plain, None), (Format::Json, Some("json"))] {
        let mut args = vec!["journal", "info", "--image", image.as_str()];
        args.extend(flag.map(|f| ["--format", f]).into_iter().flatten());
        let mut ours = Vec::new();
        journal_tools::info(&header, format, &mut ours).unwrap();
        assert_eq!(text(&ours), text(&rbd(&args)), "journal info {flag:?}");

        args[1] = "status";
        let mut ours = Vec::new();
        journal_tools::status(&header, format, &mut ours).unwrap();
        assert_eq!(text(&ours), text(&rbd(&args)), "journal status {flag:?}");
    }

    let theirs = rbd(&["journal", "inspect", "--verbose", "--image", &image]);
    let mut ours = Vec::new();
    let counts = journal_tools::inspect(&header, true, &mut ours).unwrap();
    assert_eq!(counts.errors, 0);
    assert!(counts.entries >= 100, "{} entries", counts.entries);
    assert_eq!(text(&ours), text(&theirs), "journal inspect --verbose");

    let tmp = std::env::temp_dir();
    let ceph_export = export_with_ceph(&image, &tmp);
    let mut our_export = Vec::new();
    let mut printed = Vec::new();
    journal_tools::export(&header, &mut our_export, false, &mut printed).unwrap();
    assert_eq!(text(&our_export), ceph_export, "journal export file");

    // Import both ways into fresh journaled images.
    let export_path = tmp.join(format!("{image}.to-import"));
    std::fs::write(&export_path, &ceph_export).unwrap();
    let mut imported = Vec::new();
    for who in ["ceph", "rbdj"] {
        let create = |dest: &str| {
            rbd(&[
                "create",
                "--size",
                "16M",
                "--image-feature",
                "layering,exclusive-lock,journaling",
                dest,
            ]);
        };
        let dest = if who == "ceph" {
            ceph_import(&export_path, &name, &create)
        } else {
            let dest = format!("{name}-rbdj-import");
            create(&dest);
            let dest_header = JournalHeader::new(Arc::clone(&store), pool_id, &image_id(&dest));
            let file = std::io::BufReader::new(std::fs::File::open(&export_path).unwrap());
            let mut out = Vec::new();
            let counts = rbdj::journal_import::import(&dest_header, file, false, &mut out).unwrap();
            assert_eq!(counts.errors, 0, "{}", text(&out));
            let inspect = text(&rbd(&["journal", "inspect", "--image", &dest]));
            assert!(
                inspect.contains(&format!("{} entries inspected, 0 errors", counts.entries)),
                "Ceph's inspect of rbdj's import: {inspect}"
            );
            dest
        };
        let export = export_with_ceph(&dest, &tmp);
        let (_, records) = export.split_once('\n').unwrap();
        imported.push(records.to_owned());
    }
    let _ = std::fs::remove_file(&export_path);
    assert!(!imported[0].is_empty());
    assert_eq!(
        imported[0], imported[1],
        "Ceph's and rbdj's imports export differently"
    );
}
