//! Shared helpers of the replay-engine scenario tests.
//!
//! [`PrimaryWriter`] is a minimal librbd-style journaled writer built from journal-client's
//! [`Recorder`]: it allocates a writer tag (§12.1), appends one `AioWrite`/`AioDiscard`/`AioFlush`
//! event per IO, acknowledges once the entry is durable, then writes the image and marks the
//! entry committed for the image client (§12.2). It stands in for journal-client's journaled
//! image wrapper in these tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    dead_code
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage, ObjectImage};
use journal_client::recorder::{AdvanceHook, Recorder, RecorderConfig};
use journal_client::JournalSettings;
use journal_core::commit::CommitTracker;
use journal_core::encoding::{Encode, UTime};
use journal_core::event::{Event, EventEntry};
use journal_core::header::{HeaderError, JournalHeader};
use journal_core::tag_data::{TagData, TagPredecessor};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replay_engine::agent::{AgentHandle, AgentOptions};
use replay_engine::image_journal;
use replay_engine::site::Site;
use replay_engine::status::ImageState;

pub const IMAGE_SIZE: u64 = 4 << 20;

/// A journaled writer on a primary image.
pub struct PrimaryWriter {
    pub recorder: Recorder,
    pub image: Arc<ObjectImage>,
    pub header: JournalHeader,
    pub tracker: Arc<Mutex<CommitTracker>>,
    last_commit: Mutex<Instant>,
}

impl PrimaryWriter {
    pub fn open(site: &Site, name: &str) -> PrimaryWriter {
        let info = site.image_info(name).unwrap();
        let header = site.journal_header(&info.id);
        let (current, current_data) = image_journal::current_tag(&header).unwrap();
        assert!(current_data.is_local_primary(), "image is not primary");
        let position = image_journal::image_commit_position(&header).unwrap();
        let newest = position.first().copied();
        let tag = TagData {
            mirror_uuid: String::new(),
            predecessor: TagPredecessor {
                mirror_uuid: String::new(),
                commit_valid: newest.is_some(),
                tag_tid: newest.map_or(current, |p| p.tag_tid),
                entry_tid: newest.map_or(0, |p| p.entry_tid),
            },
        };
        let tag_tid = image_journal::allocate_image_tag(&header, &tag).unwrap();
        let imm = header.get_immutable_metadata().unwrap();
        let layout = imm.layout().unwrap();
        let active_set = header.get_active_set().unwrap();
        let tracker = Arc::new(Mutex::new(CommitTracker::new(layout.splay_width, position)));
        let fenced = header.with_fence(tag_tid);
        let advance: AdvanceHook = Arc::new(move |set| match fenced.set_active_set(set) {
            Ok(()) | Err(HeaderError::Stale { .. }) => Ok(()),
            Err(e) => Err(journal_client::RecorderError::Store {
                op: "set_active_set",
                detail: e.to_string(),
                errno: e.errno(),
            }),
        });
        let settings = JournalSettings {
            order: imm.order,
            splay_width: imm.splay_width,
            name_pool_id: site.pool_id(),
            ..JournalSettings::default()
        };
        let recorder = Recorder::start(
            Arc::clone(site.store()),
            RecorderConfig {
                journal_id: info.id.clone(),
                name_pool_id: site.pool_id(),
                layout,
                tag_tid,
                active_set,
                fenced: true,
                settings,
            },
            Arc::clone(&tracker),
            advance,
        )
        .unwrap();
        PrimaryWriter {
            recorder,
            image: site.open_image(name).unwrap(),
            header: header.with_fence(tag_tid),
            tracker,
            last_commit: Mutex::new(Instant::now()),
        }
    }

    fn journal(&self, event: Event) -> journal_client::AppendFuture {
        let payload = EventEntry::new(event, UTime::now()).to_bytes();
        let fut = self.recorder.append(payload).unwrap();
        fut.wait().unwrap();
        fut
    }

    fn committed(&self, fut: &journal_client::AppendFuture) {
        self.tracker.lock().committed(fut.commit_tid()).unwrap();
        let due = self.last_commit.lock().elapsed() >= Duration::from_millis(20);
        if due {
            self.commit_position();
        }
    }

    /// Writes the image client's commit position now.
    pub fn commit_position(&self) {
        *self.last_commit.lock() = Instant::now();
        let pos = self.tracker.lock().take_if_changed();
        if let Some(pos) = pos {
            self.header.client_commit("", &pos).unwrap();
        }
    }

    /// Journals then applies a write; returns once acknowledged (entry durable) and applied.
    pub fn write(&self, offset: u64, data: Bytes) {
        let fut = self.journal(Event::AioWrite {
            offset,
            length: data.len() as u64,
            data: data.clone(),
        });
        self.image.write(offset, data).unwrap();
        self.committed(&fut);
    }

    pub fn discard(&self, offset: u64, length: u64) {
        let fut = self.journal(Event::AioDiscard {
            offset,
            length,
            discard_granularity_bytes: 0,
        });
        self.image.discard(offset, length).unwrap();
        self.committed(&fut);
    }

    pub fn flush(&self) {
        let fut = self.journal(Event::AioFlush);
        self.image.flush().unwrap();
        self.committed(&fut);
    }

    pub fn close(self) {
        self.recorder.flush().unwrap();
        self.recorder.shutdown();
        self.commit_position();
    }
}

/// A journaled writer the workloads drive: the test [`PrimaryWriter`] or journal-client's
/// `JournaledImage` (the product write path). Each call returns once the IO is acknowledged.
pub trait TestWriter: Sync {
    fn write(&self, offset: u64, data: Bytes);
    fn discard(&self, offset: u64, length: u64);
    fn flush(&self);
}

impl TestWriter for PrimaryWriter {
    fn write(&self, offset: u64, data: Bytes) {
        PrimaryWriter::write(self, offset, data);
    }
    fn discard(&self, offset: u64, length: u64) {
        PrimaryWriter::discard(self, offset, length);
    }
    fn flush(&self) {
        PrimaryWriter::flush(self);
    }
}

impl TestWriter for journal_client::JournaledImage {
    fn write(&self, offset: u64, data: Bytes) {
        journal_client::JournaledImage::write(self, offset, data).unwrap();
    }
    fn discard(&self, offset: u64, length: u64) {
        journal_client::JournaledImage::discard(self, offset, length).unwrap();
    }
    fn flush(&self) {
        journal_client::JournaledImage::flush(self).unwrap();
    }
}

/// Opens `name` on `site` through journal-client's `JournaledImage`, committing its position
/// every 20 ms.
pub fn open_product_writer(site: &Site, name: &str) -> journal_client::JournaledImage {
    let settings = JournalSettings {
        commit_age: Duration::from_millis(20),
        ..JournalSettings::default()
    };
    site.open_journaled(name, settings).unwrap()
}

/// Runs a seeded random workload of `ops_per_thread` IOs on `threads` threads, each thread on
/// its own stripe of the image, mirroring every acknowledged IO into `reference`.
pub fn random_workload(
    writer: &dyn TestWriter,
    reference: &MemImage,
    seed: u64,
    threads: u64,
    ops_per_thread: u64,
) {
    let stripe = IMAGE_SIZE / threads;
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ (t * 7919 + 1));
                let base = t * stripe;
                for _ in 0..ops_per_thread {
                    let len = rng.gen_range(1..=8192u64);
                    let off = base + rng.gen_range(0..stripe - len);
                    match rng.gen_range(0..10) {
                        0 => {
                            writer.discard(off, len);
                            reference.discard(off, len).unwrap();
                        }
                        1 => writer.flush(),
                        _ => {
                            let byte: u8 = rng.gen();
                            let data = Bytes::from(vec![byte; len as usize]);
                            writer.write(off, data.clone());
                            reference.write(off, data).unwrap();
                        }
                    }
                }
            });
        }
    });
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Full contents of an image.
pub fn contents(image: &dyn BlockImage) -> Bytes {
    image.read(0, image.size()).unwrap()
}

/// Waits until image `name` on `replica` exists and equals `expected` byte for byte.
pub fn wait_replica_equals(
    replica: &Site,
    name: &str,
    expected: &Bytes,
    timeout: Duration,
) -> bool {
    wait_until(timeout, || match replica.open_image(name) {
        Ok(img) => img.size() == expected.len() as u64 && contents(img.as_ref()) == *expected,
        Err(_) => false,
    })
}

/// Waits until the agent reports `state` for image `name`.
pub fn wait_state(agent: &AgentHandle, name: &str, state: ImageState, timeout: Duration) -> bool {
    wait_until(timeout, || {
        agent.image_status(name).is_some_and(|s| s.state == state)
    })
}

/// Agent options tuned for fast tests.
pub fn fast_agent_options() -> AgentOptions {
    let mut o = AgentOptions {
        scan_interval: Duration::from_millis(20),
        retry_interval: Duration::from_millis(20),
        // The same agent across the tests' crash-and-restart loops: a restarted agent takes
        // its own leader lease back at once instead of waiting for it to run out.
        agent_id: Some("test-agent".into()),
        ..AgentOptions::default()
    };
    o.replayer.flush_interval = Duration::from_millis(50);
    o.replayer.commit_interval = Duration::from_millis(20);
    o.replayer.check_interval = Duration::from_millis(20);
    o.bootstrap.sync.chunk_bytes = 64 << 10;
    o.bootstrap.sync.progress_every_chunks = 2;
    o
}

/// Journal shape for tests: small objects so sets roll over and trimming happens.
pub fn small_journal() -> replay_engine::site::JournalShape {
    replay_engine::site::JournalShape {
        order: 16,
        splay_width: 4,
    }
}

/// A store handle that "dies" after a given number of operations: every later operation fails
/// with [`object_store_trait::StoreError::Closed`], like a crashed process whose in-flight work
/// never reaches the store. The underlying store lives on for a restarted agent. Built by
/// [`kill_switch`]; `hook().is_dead()` says whether it died.
pub type KillSwitch =
    object_store_trait::Intercept<Arc<dyn object_store_trait::ObjectStore>, OpBudget>;

/// A handle over `inner` that dies after `ops` operations.
pub fn kill_switch(inner: Arc<dyn object_store_trait::ObjectStore>, ops: i64) -> Arc<KillSwitch> {
    Arc::new(KillSwitch::with_hook(
        inner,
        OpBudget {
            ops_left: std::sync::atomic::AtomicI64::new(ops),
        },
    ))
}

/// The hook of [`KillSwitch`]: each operation spends one unit of the budget; none left = closed.
#[derive(Debug)]
pub struct OpBudget {
    ops_left: std::sync::atomic::AtomicI64,
}

impl OpBudget {
    pub fn is_dead(&self) -> bool {
        self.ops_left.load(std::sync::atomic::Ordering::SeqCst) <= 0
    }
}

impl object_store_trait::Hook for OpBudget {
    fn before(&self, _op: object_store_trait::Op<'_>) -> object_store_trait::Result<()> {
        if self
            .ops_left
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            <= 0
        {
            return Err(object_store_trait::StoreError::Closed);
        }
        Ok(())
    }
}
