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
use journal_client::JournalSettings;
use object_store_trait::MemStore;
use rbdj_benches::trimmed_mem_recorder;

const WINDOW: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4096);
    let settings = JournalSettings {
        writethrough_until_flush: false,
        max_payload_bytes: (1 << 20) + 64,
        ..JournalSettings::default()
    };
    let recorder = trimmed_mem_recorder(Arc::new(MemStore::new()), settings).unwrap();
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
