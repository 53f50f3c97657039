//! Checks of concurrent use: appenders, guarded appenders, CAS loops, exclusive creates, readers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;

use bytes::Bytes;

use super::{b, u64v, Factory};
use crate::{AppendGuard, ObjectStoreExt, OmapBatch, StoreError};

const THREADS: usize = 4;

/// Concurrent appends from many threads: each batch lands whole and contiguous, the returned
/// offsets are disjoint and cover the object exactly.
pub fn concurrent_appends(factory: Factory<'_>) {
    let store = factory();
    const PER_THREAD: usize = 25;
    let barrier = Barrier::new(THREADS);
    // Record format: [thread, seq, len_lo, len_hi] + len bytes of (thread ^ seq ^ i), split into
    // several buffers so a non-atomic writer could interleave them.
    let record = |t: usize, s: usize| -> Vec<Bytes> {
        let len = 10 + (t * 37 + s * 11) % 300;
        let mut bytes = vec![t as u8, s as u8, (len & 0xff) as u8, (len >> 8) as u8];
        bytes.extend((0..len).map(|i| (t ^ s ^ i) as u8));
        bytes.chunks(17).map(b).collect()
    };
    let offsets: Vec<Vec<(u64, usize, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    (0..PER_THREAD)
                        .map(|s| {
                            let off = store
                                .append("c", &record(t, s), &AppendGuard::none())
                                .unwrap();
                            (off, t, s)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut placed: Vec<(u64, usize, usize)> = offsets.into_iter().flatten().collect();
    placed.sort_unstable();
    let data = store.read_all("c").unwrap();
    let mut pos = 0u64;
    for (off, t, s) in placed {
        assert_eq!(off, pos, "offsets are not contiguous");
        let want: Vec<u8> = record(t, s).iter().flat_map(|x| x.to_vec()).collect();
        let got = &data[off as usize..off as usize + want.len()];
        assert_eq!(got, &want[..], "batch ({t}, {s}) torn or interleaved");
        pos += want.len() as u64;
    }
    assert_eq!(
        pos,
        data.len() as u64,
        "object holds bytes no append accounts for"
    );
}

/// Concurrent guarded appends: the soft-limit check is atomic with the write, so the object ends
/// below `limit + largest batch`, and every refusal happened at or past the limit.
pub fn concurrent_soft_limit(factory: Factory<'_>) {
    let store = factory();
    const LIMIT: u64 = 2_000;
    const BATCH: usize = 100;
    let accepted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (store, accepted) = (&store, &accepted);
            scope.spawn(move || loop {
                match store.append(
                    "lim",
                    &[b(&[t as u8; BATCH])],
                    &AppendGuard::soft_max(LIMIT),
                ) {
                    Ok(off) => {
                        assert!(off < LIMIT, "append accepted at offset {off}");
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(StoreError::Overflow { size, .. }) => {
                        assert!(size >= LIMIT);
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            });
        }
    });
    let size = store.stat("lim").unwrap().size;
    assert_eq!(size, (accepted.load(Ordering::SeqCst) * BATCH) as u64);
    assert!((LIMIT..LIMIT + BATCH as u64).contains(&size), "size {size}");
}

/// Compare-and-set increments from many threads (retrying on guard failure) lose no update.
pub fn concurrent_cas_counter(factory: Factory<'_>) {
    let store = factory();
    const PER_THREAD: u64 = 8;
    let mut init = OmapBatch::new();
    init.assert_absent("count").set("count", u64v(0));
    store.omap_apply("ctr", &init).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let store = &store;
            scope.spawn(move || {
                for _ in 0..PER_THREAD {
                    loop {
                        let cur = store.omap_get_one("ctr", "count").unwrap().unwrap();
                        let n = u64::from_le_bytes(cur[..].try_into().unwrap());
                        let mut batch = OmapBatch::new();
                        batch.assert_equals("count", cur).set("count", u64v(n + 1));
                        match store.omap_apply("ctr", &batch) {
                            Ok(()) => break,
                            Err(e) if e.is_guard_failed() => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let fin = store.omap_get_one("ctr", "count").unwrap().unwrap();
    assert_eq!(fin, u64v(THREADS as u64 * PER_THREAD));
}

/// Racing exclusive creates (`assert_absent` + set): exactly one wins, and its value stays.
pub fn concurrent_exclusive_create(factory: Factory<'_>) {
    let store = factory();
    let barrier = Barrier::new(THREADS);
    let winners: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, barrier) = (&store, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let mut batch = OmapBatch::new();
                    batch.assert_absent("owner").set("owner", u64v(t as u64));
                    match store.omap_apply("lockobj", &batch) {
                        Ok(()) => Some(t),
                        Err(e) if e.is_guard_failed() => None,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        store.omap_get_one("lockobj", "owner").unwrap(),
        Some(u64v(winners[0] as u64))
    );
}

/// Readers racing appenders only ever see whole batches: every size `stat` reports and every
/// `read` result ends on a batch boundary.
pub fn concurrent_reads_see_whole_batches(factory: Factory<'_>) {
    let store = factory();
    const PER_THREAD: usize = 30;
    let writers_done = AtomicUsize::new(0);
    // Record: [len_lo, len_hi, fill] + (len - 3) bytes of fill; len varies.
    let record = |t: usize, s: usize| -> Vec<Bytes> {
        let len = 3 + (t * 53 + s * 29) % 400;
        let fill = (t * PER_THREAD + s) as u8;
        let mut bytes = vec![(len & 0xff) as u8, (len >> 8) as u8, fill];
        bytes.resize(len, fill);
        bytes.chunks(50).map(b).collect()
    };
    let check_whole = |data: &[u8], what: &str| {
        let mut pos = 0usize;
        while pos < data.len() {
            assert!(pos + 3 <= data.len(), "{what}: torn record header at {pos}");
            let len = usize::from(data[pos]) | usize::from(data[pos + 1]) << 8;
            let fill = data[pos + 2];
            assert!(pos + len <= data.len(), "{what}: torn record at {pos}");
            assert!(
                data[pos + 3..pos + len].iter().all(|x| *x == fill),
                "{what}: mixed record"
            );
            pos += len;
        }
    };
    store.append("rw", &[], &AppendGuard::none()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..2 {
            let (store, done) = (&store, &writers_done);
            scope.spawn(move || {
                for s in 0..PER_THREAD {
                    store
                        .append("rw", &record(t, s), &AppendGuard::none())
                        .unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        for _ in 0..2 {
            let (store, done) = (&store, &writers_done);
            scope.spawn(move || loop {
                let finished = done.load(Ordering::SeqCst) == 2;
                let size = store.stat("rw").unwrap().size;
                let prefix = store.read("rw", 0, size).unwrap();
                assert_eq!(prefix.len() as u64, size, "object shrank");
                check_whole(&prefix, "stat+read");
                check_whole(&store.read("rw", 0, u64::MAX).unwrap(), "read to end");
                if finished {
                    break;
                }
            });
        }
    });
    let data = store.read_all("rw").unwrap();
    check_whole(&data, "final");
    let want: usize = (0..2)
        .flat_map(|t| (0..PER_THREAD).map(move |s| (t, s)))
        .map(|(t, s)| record(t, s).iter().map(Bytes::len).sum::<usize>())
        .sum();
    assert_eq!(data.len(), want);
}
