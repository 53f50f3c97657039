//! Setup shared by the write benchmarks (`journal_overhead`, `paired_ratios`).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage, SparseFileImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{
    DirStore, DirStoreOptions, Hook, Intercept, MemStore, ObjectStore, Op, Result,
};
use rbdj_benches::{Backend, Pattern, Rng, WriteConfig};
use tempfile::TempDir;

/// Image size: big enough that 4 KiB random writes rarely hit the same block.
pub const IMAGE_SIZE: u64 = 256 << 20;

/// Every configuration of the journaling-overhead benchmark: both backends, 4 KiB random /
/// 64 KiB / 1 MiB sequential, 1 and 16 writers.
pub fn configs() -> Vec<WriteConfig> {
    let mut out = Vec::new();
    for backend in [Backend::Mem, Backend::Dir] {
        for (io_size, pattern) in [
            (4096, Pattern::Random),
            (64 << 10, Pattern::Sequential),
            (1 << 20, Pattern::Sequential),
        ] {
            for threads in [1, 16] {
                out.push(WriteConfig {
                    backend,
                    io_size,
                    pattern,
                    threads,
                });
            }
        }
    }
    out
}

/// A fresh image (and the temporary directory holding it, for `Dir`), written once in full
/// (preconditioned, as `fio` users do) so that every benchmark write overwrites allocated
/// blocks: the unjournaled side's steady state, its fastest. `RBDJ_IMAGE=thin` leaves it empty
/// (sparse), so that writes allocate, as the first writes to a thin-provisioned image do.
pub fn new_image(backend: Backend, name: &str) -> (Arc<dyn BlockImage>, Option<TempDir>) {
    let (image, dir): (Arc<dyn BlockImage>, _) = match backend {
        Backend::Mem => (Arc::new(MemImage::new(name, IMAGE_SIZE)), None),
        Backend::Dir => {
            let dir = tempfile::tempdir().unwrap();
            let image = SparseFileImage::create(dir.path(), name, IMAGE_SIZE).unwrap();
            (Arc::new(image), Some(dir))
        }
    };
    if std::env::var("RBDJ_IMAGE").as_deref() != Ok("thin") {
        let fill = Bytes::from(Rng::new(3).bytes(1 << 20));
        for at in (0..IMAGE_SIZE).step_by(1 << 20) {
            image.write(at, fill.clone()).unwrap();
        }
        image.flush().unwrap();
    }
    (image, dir)
}

/// The settings the benchmarks journal with: batching on from the start (as after the first
/// user flush), Ceph's defaults otherwise (`max_payload_bytes` 16 KiB, splay width 4).
pub fn settings() -> JournalSettings {
    JournalSettings {
        writethrough_until_flush: false,
        ..JournalSettings::default()
    }
}

/// A fresh journaled image over a fresh journal store (`MemStore`, or a `DirStore` with
/// `SyncPolicy::Data` in a temporary directory).
pub fn new_journaled(
    backend: Backend,
    settings: JournalSettings,
) -> (JournaledImage, Vec<TempDir>, Arc<AppendCounts>) {
    new_journaled_split(backend, backend, settings)
}

/// A fresh journaled image with the image on `image_backend` and the journal on
/// `journal_backend` (diagnostics: separates the journal's cost from the image's).
pub fn new_journaled_split(
    image_backend: Backend,
    journal_backend: Backend,
    settings: JournalSettings,
) -> (JournaledImage, Vec<TempDir>, Arc<AppendCounts>) {
    let (image, image_dir) = new_image(image_backend, "journaled");
    let mut dirs: Vec<TempDir> = image_dir.into_iter().collect();
    let inner: Arc<dyn ObjectStore> = match journal_backend {
        Backend::Mem => Arc::new(MemStore::new()),
        Backend::Dir => {
            let dir = tempfile::tempdir().unwrap();
            let store = DirStore::open(dir.path(), DirStoreOptions::default()).unwrap();
            dirs.push(dir);
            Arc::new(store)
        }
    };
    let counts = Arc::new(AppendCounts::default());
    let store = Arc::new(Counting::with_hook(inner, Arc::clone(&counts)));
    let set_bytes = u64::from(settings.splay_width) << settings.order;
    let journaled = JournaledImage::open(store, "bench", image, settings).unwrap();
    if std::env::var("RBDJ_JOURNAL").as_deref() != Ok("fresh") {
        warm_up(&journaled, set_bytes);
        counts.reset();
    }
    (journaled, dirs, counts)
}

/// Brings a new journal to its steady state, as [`new_image`] does the image: writes three
/// object sets' worth of 1 MiB writes (each set rollover commits and trims the set two back), so
/// that the measured appends go to journal objects like a long-running journal's. On a
/// `DirStore` those reuse the files of trimmed objects (`DirStoreOptions::spare_files`) and
/// overwrite written blocks; a fresh journal's first sets write new files, zero-filling ahead of
/// their appends. `RBDJ_JOURNAL=fresh` skips this.
fn warm_up(journaled: &JournaledImage, set_bytes: u64) {
    let fill = Bytes::from(Rng::new(4).bytes(1 << 20));
    let total = 3 * set_bytes + (1 << 20);
    for i in 0..total.div_ceil(1 << 20) {
        journaled
            .write((i << 20) % IMAGE_SIZE, fill.clone())
            .unwrap();
    }
    journaled.wait_applied().unwrap();
    journaled.flush_commit_position().unwrap();
}

/// Store appends and the entries (buffers) they carried, counted by [`Counting`].
#[derive(Debug, Default)]
pub struct AppendCounts {
    appends: AtomicU64,
    pieces: AtomicU64,
}

impl AppendCounts {
    /// Starts counting again from zero.
    pub fn reset(&self) {
        self.appends.store(0, Ordering::Relaxed);
        self.pieces.store(0, Ordering::Relaxed);
    }

    /// `(appends, journal entries)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.appends.load(Ordering::Relaxed),
            self.pieces.load(Ordering::Relaxed),
        )
    }
}

/// An [`ObjectStore`] that counts appends (to measure group commit: entries per store append,
/// each of which is one `fdatasync` on a `DirStore`): `Counting::with_hook(inner, counts)`.
pub type Counting = Intercept<Arc<dyn ObjectStore>, Arc<AppendCounts>>;

impl Hook for AppendCounts {
    fn before(&self, op: Op<'_>) -> Result<()> {
        if let Op::Append { data, .. } = op {
            self.appends.fetch_add(1, Ordering::Relaxed);
            // An entry may come in parts (header, the caller's data, CRC): count the buffers
            // that begin an entry (an entry's preamble).
            let entries = data
                .iter()
                .filter(|b| b.starts_with(&journal_core::entry::PREAMBLE_BYTES))
                .count();
            self.pieces.fetch_add(entries as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// One payload per writer thread, reused by every write of that thread (the image write copies
/// it; a journal entry of 8 KiB or more references it instead of copying it, so the journal's
/// CRC reads the same, cache-warm buffer each time, as the unjournaled side's copy does).
pub fn payloads(cfg: &WriteConfig) -> Vec<Bytes> {
    (0..cfg.threads)
        .map(|t| Bytes::from(Rng::new(t as u64 + 1).bytes(cfg.io_size as usize)))
        .collect()
}

/// Appends each recorder writer keeps outstanding before waiting for the oldest.
pub const WINDOW: usize = 32;

/// A set-rollover hook that does nothing (no header to update, nothing trimmed).
pub fn no_advance() -> journal_client::recorder::AdvanceHook {
    Arc::new(|_set| Ok(()))
}

/// [`rbdj_benches::bench_recorder`], which cannot fail with the benchmarks' arguments.
pub fn bench_recorder(
    store: Arc<dyn ObjectStore>,
    splay_width: u8,
    settings: JournalSettings,
    advance: journal_client::recorder::AdvanceHook,
) -> journal_client::Recorder {
    rbdj_benches::bench_recorder(store, splay_width, settings, advance).unwrap()
}

/// `n` appends of `data[t]` over `threads` writers on `recorder`, each keeping [`WINDOW`]
/// outstanding; returns the time until all are durable.
pub fn windowed_appends(
    recorder: &journal_client::Recorder,
    data: &[Bytes],
    threads: usize,
    n: u64,
) -> std::time::Duration {
    windowed_appends_of(recorder, threads, n, |t, _| data[t].clone())
}

/// [`windowed_appends`] with the payload of operation `i` of thread `t` given by `payload`.
pub fn windowed_appends_of(
    recorder: &journal_client::Recorder,
    threads: usize,
    n: u64,
    payload: impl Fn(usize, u64) -> Bytes + Sync,
) -> std::time::Duration {
    let outstanding: Vec<
        parking_lot::Mutex<std::collections::VecDeque<journal_client::AppendFuture>>,
    > = (0..threads).map(|_| Default::default()).collect();
    rbdj_benches::run_threads(
        threads,
        n,
        |t, i| {
            let f = recorder.append(payload(t, i)).unwrap();
            let mut q = outstanding[t].lock();
            q.push_back(f);
            if q.len() > WINDOW {
                let oldest = q.pop_front().unwrap();
                drop(q);
                oldest.wait().unwrap();
            }
        },
        |t| {
            let q = std::mem::take(&mut *outstanding[t].lock());
            for f in q {
                f.wait().unwrap();
            }
        },
    )
}
