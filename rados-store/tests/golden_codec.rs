//! Codec check on the golden capture `tests/data/rich-librbd` (written by real librbd 16.2.15 on
//! a local cluster, captured through RadosStore; see `tests/data/README.md`). Runs without a
//! cluster and without the `rados` feature: every header value, entry and event decodes in
//! journal-core and re-encodes to the bytes Ceph wrote, and Ceph's `rbd journal export` of the
//! same journal carries the same payloads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "common/capture.rs"]
mod capture;

use std::path::Path;

#[test]
fn golden_rich_librbd_journal_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rich-librbd");
    let cap = capture::Capture::load(&dir);
    assert_eq!(cap.objects.len(), 48);
    let stats = cap.check();
    // What the capture holds (counted when it was made, see the README).
    assert_eq!(stats.entries, 111);
    assert_eq!(stats.entry_tags, (1..=10).collect());
    assert_eq!(stats.header_tags, 11);
    assert_eq!(stats.max_object, 81);
    assert_eq!(stats.clients, ["", "HOLD"]);
    let kinds: Vec<&str> = stats.events.iter().copied().collect();
    assert_eq!(
        kinds,
        [
            "AioDiscard",
            "AioFlush",
            "AioWrite",
            "Demote/Promote",
            "MetadataRemove",
            "MetadataSet",
            "OpFinish",
            "Rename",
            "Resize",
            "SnapCreate",
            "SnapProtect",
            "SnapRemove",
            "SnapRename",
            "SnapUnprotect",
            "UpdateFeatures"
        ]
    );
}
