//! Recorders set up the way the append benchmarks use them (no journal header, no image).

use std::error::Error;
use std::sync::Arc;

use journal_client::recorder::AdvanceHook;
use journal_client::{JournalSettings, Recorder, RecorderConfig};
use journal_core::commit::CommitTracker;
use journal_core::header::ObjectSetPosition;
use journal_core::layout::data_oid;
use journal_core::Layout;
use object_store_trait::{MemStore, ObjectStore};

/// The journal id of every benchmark recorder.
pub const BENCH_JOURNAL: &str = "bench";

/// A recorder on journal [`BENCH_JOURNAL`] (order 24, `splay_width`, unfenced) with `settings`
/// (its splay width set to the layout's), calling `advance` at each set rollover.
pub fn bench_recorder(
    store: Arc<dyn ObjectStore>,
    splay_width: u8,
    settings: JournalSettings,
    advance: AdvanceHook,
) -> Result<Recorder, Box<dyn Error>> {
    let layout = Layout::new(24, splay_width)?;
    let config = RecorderConfig {
        journal_id: BENCH_JOURNAL.to_owned(),
        name_pool_id: 0,
        layout,
        tag_tid: 0,
        active_set: 0,
        fenced: false,
        settings: JournalSettings {
            splay_width,
            ..settings
        },
    };
    let tracker = Arc::new(parking_lot::Mutex::new(CommitTracker::new(
        splay_width,
        ObjectSetPosition::default(),
    )));
    Ok(Recorder::start(store, config, tracker, advance)?)
}

/// A recorder on `store` (splay width 4, order 24) whose set rollover removes the objects of the
/// set two sets back, as the trimmer does once the commit position has passed them: the steady
/// state of a trimmed in-memory journal (two object sets, 128 MiB, kept).
pub fn trimmed_mem_recorder(
    store: Arc<MemStore>,
    settings: JournalSettings,
) -> Result<Recorder, Box<dyn Error>> {
    trimmed_recorder(store, 4, settings)
}

/// A recorder on `store` (order 24, `splay_width`) whose set rollover removes the objects of the
/// set two sets back, as the trimmer does once the commit position has passed them. On a
/// `DirStore` the removed objects' files become spare files that later objects reuse.
pub fn trimmed_recorder(
    store: Arc<dyn ObjectStore>,
    splay_width: u8,
    settings: JournalSettings,
) -> Result<Recorder, Box<dyn Error>> {
    let layout = Layout::new(24, splay_width)?;
    let trim_store = Arc::clone(&store);
    let advance: AdvanceHook = Arc::new(move |next: u64| {
        if next >= 2 {
            for o in 0..layout.splay_width {
                let oid = data_oid(0, BENCH_JOURNAL, layout.object_number(next - 2, o));
                // Best effort, as the trimmer's removals: a missing object is already gone.
                let _ = trim_store.remove(&oid);
            }
        }
        Ok(())
    });
    bench_recorder(store, splay_width, settings, advance)
}

/// Brings a [`trimmed_recorder`] to its steady state: appends payloads of `payload_len` bytes
/// (at most the recorder's `max_payload_bytes`) until three object sets and one more MiB are
/// written, and waits until they are durable, so that the sets of later appends reuse what the
/// trimmed ones left (on a `DirStore`, their files).
pub fn warm_up_recorder(
    recorder: &Recorder,
    splay_width: u8,
    payload_len: usize,
) -> Result<(), Box<dyn Error>> {
    let total = (u64::from(splay_width) << 24) * 3 + (1 << 20);
    let payload = bytes::Bytes::from(vec![0x5a; payload_len.max(1)]);
    let mut futures = std::collections::VecDeque::new();
    for _ in 0..total.div_ceil(payload.len() as u64) {
        futures.push_back(recorder.append(payload.clone())?);
        if futures.len() > 256 {
            if let Some(f) = futures.pop_front() {
                f.wait()?;
            }
        }
    }
    for f in futures {
        f.wait()?;
    }
    Ok(())
}
