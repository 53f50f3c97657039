//! Shared helpers for the rbdj criterion benchmarks (see `benches/` and `docs/performance.md`).
//!
//! The benchmarks compare two sides measured in the same run (journaled vs unjournaled, recorder
//! vs memcpy + CRC, DirStore vs a plain `write` + `fdatasync` loop), so the interesting result is
//! the ratio of the two times, not the absolute numbers. `ratios.py` next to this crate's
//! `Cargo.toml` prints those ratios from criterion's JSON estimates.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use journal_client::JournalSettings;
//! use object_store_trait::MemStore;
//! use rbdj_benches::{run_threads, trimmed_mem_recorder, Rng};
//!
//! // A trimmed in-memory journal, and 64 appends of 4 KiB from 2 threads, each waited for.
//! let recorder = trimmed_mem_recorder(Arc::new(MemStore::new()), JournalSettings::default())?;
//! let payload = Bytes::from(Rng::new(1).bytes(4096));
//! let _wall_time = run_threads(2, 64, |_, _| {
//!     let _ = recorder.append(payload.clone()).and_then(|f| f.wait());
//! }, |_| {});
//! assert_eq!(recorder.next_entry_tid(), 64);
//! assert!(recorder.failure().is_none());
//! recorder.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Barrier;
use std::time::{Duration, Instant};

mod group_commit;
mod recorders;

pub use group_commit::GroupCommitLog;
pub use recorders::{
    bench_recorder, trimmed_mem_recorder, trimmed_recorder, warm_up_recorder, BENCH_JOURNAL,
};

/// Runs `total` operations split as evenly as possible over `threads` threads and returns the
/// wall time from the moment all threads are ready until the last one finishes.
///
/// `op(thread, i)` is called with the thread index and the operation's index within that
/// thread (`0..share`). `after(thread)` runs on each thread after its share, inside the timed
/// region (used to wait for outstanding work). Thread creation is not timed.
pub fn run_threads<F, A>(threads: usize, total: u64, op: F, after: A) -> Duration
where
    F: Fn(usize, u64) + Sync,
    A: Fn(usize) + Sync,
{
    let threads = threads.max(1);
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let (op, after, barrier) = (&op, &after, &barrier);
            let share = share_of(total, threads, t);
            handles.push(s.spawn(move || {
                barrier.wait();
                for i in 0..share {
                    op(t, i);
                }
                after(t);
            }));
        }
        barrier.wait();
        let started = Instant::now();
        for h in handles {
            // A panicking worker is re-raised by the scope when it ends.
            let _ = h.join();
        }
        started.elapsed()
    })
}

/// Operations thread `t` of `threads` runs out of `total` (the first `total % threads` threads
/// get one more).
pub fn share_of(total: u64, threads: usize, t: usize) -> u64 {
    let n = threads.max(1) as u64;
    let t = t as u64;
    total / n + u64::from(t < total % n)
}

/// A small deterministic pseudo-random generator (xorshift64*), for offsets and payloads.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n` > 0; returns 0 for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// How the writes of a benchmark are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Uniformly random, `io_size`-aligned offsets over the whole image.
    Random,
    /// Each thread writes its own region of the image front to back (wrapping around).
    Sequential,
}

/// Where a write benchmark keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `MemStore` journal + `MemImage` (everything in process memory).
    Mem,
    /// `DirStore` journal (fdatasync per append) + `SparseFileImage` in a temporary directory.
    Dir,
}

/// One write-benchmark configuration; its `Display` is the criterion benchmark id parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteConfig {
    /// Storage backend.
    pub backend: Backend,
    /// Bytes per write.
    pub io_size: u64,
    /// Offset pattern.
    pub pattern: Pattern,
    /// Concurrent writer threads.
    pub threads: usize,
}

impl WriteConfig {
    /// Offset of write number `i` of thread `t`, for an image of `image_size` bytes; `salt`
    /// varies the random pattern between runs.
    pub fn offset(&self, salt: u64, image_size: u64, t: usize, i: u64) -> u64 {
        let blocks = (image_size / self.io_size.max(1)).max(1);
        match self.pattern {
            Pattern::Random => {
                // The salt is mixed before the write's own number goes in: `salt ^ i` alone
                // gives every small salt the same set of seeds over a round (0..n permuted), so
                // every round wrote the same blocks.
                let mut rng = Rng::new(mix64(salt) ^ ((t as u64) << 40) ^ i);
                rng.below(blocks) * self.io_size
            }
            Pattern::Sequential => {
                let per_thread = (blocks / self.threads.max(1) as u64).max(1);
                let start = (t as u64 % blocks) * per_thread;
                ((start + i % per_thread) % blocks) * self.io_size
            }
        }
    }
}

/// SplitMix64's finaliser: every input bit affects every output bit.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `4KiB`, `64KiB`, `1MiB`, or plain bytes.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{}KiB", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Mem => "mem",
            Backend::Dir => "dir-fdatasync",
        })
    }
}

impl fmt::Display for WriteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pattern = match self.pattern {
            Pattern::Random => "rand",
            Pattern::Sequential => "seq",
        };
        write!(
            f,
            "{}_{}-{}_{}t",
            self.backend,
            human_size(self.io_size),
            pattern,
            self.threads
        )
    }
}

/// Polls `cond` every `poll` until it holds or `timeout` has passed; returns whether it held
/// (checked once more at the deadline).
pub fn wait_until(timeout: Duration, poll: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(poll);
    }
    cond()
}

/// CPU time (user + system, all threads) and minor page faults of this process so far, from
/// `/proc/self/stat` (clock ticks taken as 10 ms). Zeros where the file is unreadable.
pub fn process_cpu() -> (Duration, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): minflt is the 8th, utime
    // the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    (Duration::from_millis((get(11) + get(12)) * 10), get(7))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for total in [0u64, 1, 15, 16, 17, 1000] {
            for threads in [1usize, 2, 16] {
                let sum: u64 = (0..threads).map(|t| share_of(total, threads, t)).sum();
                assert_eq!(sum, total, "total {total} threads {threads}");
            }
        }
    }

    #[test]
    fn run_threads_runs_every_operation_once() {
        let seen = parking_lot::Mutex::new(Vec::new());
        run_threads(3, 10, |t, i| seen.lock().push((t, i)), |_| {});
        let mut seen = seen.into_inner();
        seen.sort_unstable();
        let mut expected = Vec::new();
        for t in 0..3 {
            for i in 0..share_of(10, 3, t) {
                expected.push((t, i));
            }
        }
        assert_eq!(seen, expected);
    }

    #[test]
    fn offsets_stay_inside_the_image_and_aligned() {
        for pattern in [Pattern::Random, Pattern::Sequential] {
            let c = WriteConfig {
                backend: Backend::Mem,
                io_size: 65536,
                pattern,
                threads: 16,
            };
            for t in 0..16 {
                for i in 0..100 {
                    let off = c.offset(7, 1 << 22, t, i);
                    assert!(off + 65536 <= 1 << 22);
                    assert_eq!(off % 65536, 0);
                }
            }
        }
    }

    #[test]
    fn random_offsets_differ_between_salts() {
        // Each round of a benchmark passes a new salt; its writes must go to other blocks than
        // the last round's (the bug this guards against: every salt gave the same 400 blocks).
        let c = WriteConfig {
            backend: Backend::Dir,
            io_size: 4096,
            pattern: Pattern::Random,
            threads: 1,
        };
        let blocks = (256u64 << 20) / 4096;
        let round = |salt: u64| -> std::collections::HashSet<u64> {
            (0..400).map(|i| c.offset(salt, 256 << 20, 0, i)).collect()
        };
        for salt in 1..8u64 {
            let (a, b) = (round(salt), round(salt + 1));
            let shared = a.intersection(&b).count();
            // Two independent draws of 400 of 65,536 blocks share about 2.4 on average.
            assert!(
                shared < 20,
                "salts {salt} and {} share {shared} blocks",
                salt + 1
            );
            assert!(
                a.len() > 390,
                "a round repeats blocks: {} distinct",
                a.len()
            );
            assert!(a.iter().all(|o| *o < blocks * 4096));
        }
    }

    #[test]
    fn ids_are_readable() {
        let c = WriteConfig {
            backend: Backend::Dir,
            io_size: 4096,
            pattern: Pattern::Random,
            threads: 16,
        };
        assert_eq!(c.to_string(), "dir-fdatasync_4KiB-rand_16t");
        assert_eq!(human_size(1 << 20), "1MiB");
        assert_eq!(human_size(100), "100B");
    }
}
