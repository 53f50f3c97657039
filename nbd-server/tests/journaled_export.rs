//! A journaled image exported over NBD, driven by real clients (`qemu-img convert`/`compare`,
//! `qemu-io`). Checked three ways: `qemu-img compare` against the source file; the image bytes
//! against a reference byte model after the journaled image is closed; and the journal itself,
//! decoded with journal-core and replayed by a small independent applier written here into a
//! zeroed buffer, against the same model (what a mirror replaying the journal would produce).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// NBD is big-endian on the wire.
#![allow(clippy::big_endian_bytes)]

mod support;

use std::process::Command;
use std::sync::Arc;

use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use journal_core::encoding::Decode;
use journal_core::{scan_object, Event, EventEntry};
use object_store_trait::{MemStore, ObjectStore};
use rbdj_nbd::{export_journaled_image, ListenAddr, NbdServer, ServerOptions};
use support::{have_tool, qemu_io, random_bytes, run_ok};

const SIZE: usize = 4 << 20;
const JOURNAL: &str = "jimg";

/// Replays every event of the journal, in (tag, entry) order, into a zeroed buffer.
fn replay_journal(store: &dyn ObjectStore) -> Vec<u8> {
    let prefix = journal_core::layout::data_oid_prefix(0, JOURNAL);
    let mut entries = Vec::new();
    for oid in store.list(&prefix).unwrap() {
        let size = store.stat(&oid).unwrap().size;
        let scan = scan_object(&store.read(&oid, 0, size).unwrap(), 0);
        assert!(scan.is_clean(), "journal object {oid} is not clean");
        entries.extend(scan.entries.into_iter().map(|e| e.entry));
    }
    entries.sort_by_key(|e| (e.tag_tid, e.entry_tid));
    let mut disk = vec![0u8; SIZE];
    for e in entries {
        match EventEntry::from_bytes(e.data).unwrap().event {
            Event::AioWrite { offset, data, .. } => {
                disk[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
            }
            Event::AioDiscard { offset, length, .. } => {
                disk[offset as usize..(offset + length) as usize].fill(0);
            }
            Event::AioWriteSame {
                offset,
                length,
                data,
            } => {
                for (i, b) in disk[offset as usize..(offset + length) as usize]
                    .iter_mut()
                    .enumerate()
                {
                    *b = data[i % data.len()];
                }
            }
            Event::AioFlush => {}
            other => panic!("unexpected event {}", other.name()),
        }
    }
    disk
}

#[test]
fn qemu_clients_write_a_journaled_image_and_the_journal_replays_to_the_same_bytes() {
    if !have_tool("qemu-img", "journaled export") || !have_tool("qemu-io", "journaled export") {
        return;
    }
    let store = Arc::new(MemStore::new());
    let base = Arc::new(MemImage::new("jimg", SIZE as u64));
    let journaled = Arc::new(
        JournaledImage::open(
            store.clone(),
            JOURNAL,
            base.clone(),
            JournalSettings::default(),
        )
        .unwrap(),
    );
    let server = NbdServer::bind_exports(
        ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        vec![("jdisk".into(), export_journaled_image(journaled.clone()))],
        ServerOptions::default(),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let url = format!("nbd://{}/jdisk", server.addr());

    // Copy a disk in with qemu-img, compare with qemu-img.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    let mut model = random_bytes(SIZE, 77);
    model[1 << 20..2 << 20].fill(0);
    std::fs::write(&src, &model).unwrap();
    run_ok(
        Command::new("qemu-img")
            .args(["convert", "-n", "-f", "raw", "-O", "raw"])
            .arg(&src)
            .arg(&url),
    );
    let out = run_ok(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "raw"])
            .arg(&src)
            .arg(&url),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Images are identical"));

    // Patterns, discard, write-zeroes and flush with qemu-io.
    qemu_io(
        &url,
        &[
            "write -P 0xab 0 64k",
            "discard 64k 64k",
            "write -z 192k 8k",
            "flush",
            "read -P 0xab 0 64k",
        ],
    );
    model[..64 << 10].fill(0xab);
    model[64 << 10..128 << 10].fill(0);
    model[192 << 10..200 << 10].fill(0);
    assert_eq!(journaled.read(0, SIZE as u64).unwrap().as_ref(), &model[..]);

    let summary = server.shutdown().unwrap();
    assert_eq!(summary.connection_errors, 0, "{summary:?}");
    journaled.close().unwrap();
    // The data image holds every acknowledged write...
    assert_eq!(base.read(0, SIZE as u64).unwrap().as_ref(), &model[..]);
    // ...and so does the journal, replayed independently.
    assert_eq!(replay_journal(store.as_ref()), model);
}
