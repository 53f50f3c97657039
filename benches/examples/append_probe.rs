//! A deterministic driver for instruction counts of the recorder's append path (issue 7 item 3).
//!
//! Appends `N` 4 KiB payloads (one writer, 32 outstanding, as `paired_ratios -- append_mem`'s
//! `recorder_trimmed` side) to a `Recorder` on a `MemStore` whose set rollover removes the set
//! two back. Run it under callgrind for `N` and `3N` and take the difference per entry:
//!
//! ```text
//! cargo build --release -p rbdj-benches --example append_probe
//! valgrind --tool=callgrind --separate-threads=no target/release/examples/append_probe 20000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use journal_client::recorder::AdvanceHook;
use journal_client::{JournalSettings, Recorder, RecorderConfig};
use journal_core::commit::CommitTracker;
use journal_core::header::ObjectSetPosition;
use journal_core::layout::data_oid;
use journal_core::Layout;
use object_store_trait::{MemStore, ObjectStore};

const WINDOW: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4096);
    let store = Arc::new(MemStore::new());
    let layout = Layout::new(24, 4).unwrap();
    let trim_store = Arc::clone(&store);
    let advance: AdvanceHook = Arc::new(move |next: u64| {
        if next >= 2 {
            for o in 0..layout.splay_width {
                let oid = data_oid(0, "probe", layout.object_number(next - 2, o));
                let _ = trim_store.remove(&oid);
            }
        }
        Ok(())
    });
    let settings = JournalSettings {
        writethrough_until_flush: false,
        max_payload_bytes: (1 << 20) + 64,
        ..JournalSettings::default()
    };
    let config = RecorderConfig {
        journal_id: "probe".to_owned(),
        name_pool_id: 0,
        layout,
        tag_tid: 0,
        active_set: 0,
        fenced: false,
        settings,
    };
    let tracker = Arc::new(parking_lot::Mutex::new(CommitTracker::new(
        4,
        ObjectSetPosition::default(),
    )));
    let store: Arc<dyn ObjectStore> = store;
    let recorder = Recorder::start(store, config, tracker, advance).unwrap();
    let payload = Bytes::from((0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    let mut outstanding = VecDeque::new();
    for _ in 0..n {
        outstanding.push_back(recorder.append(payload.clone()).unwrap());
        if outstanding.len() > WINDOW {
            outstanding.pop_front().unwrap().wait().unwrap();
        }
    }
    for f in outstanding {
        f.wait().unwrap();
    }
    recorder.shutdown();
}
