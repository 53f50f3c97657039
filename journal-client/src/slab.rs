//! Entry buffers carved out of large, reused slabs.
//!
//! Allocating every journal entry on its own costs more than framing it: a store that keeps the
//! entries (a `MemStore` hands the same `Bytes` back to readers) makes the allocator grow its
//! heap and fault in fresh pages for every entry, and gives the pages back when the journal is
//! trimmed. Here each thread frames its entries back to back at the end of its current slab
//! (`SLAB_BYTES`) and splits each one off; the entries share the slab's allocation.
//!
//! A full slab is retired into a process-wide pool. When a thread needs a new slab it first
//! looks for a retired one whose entries have all been dropped (trimmed, or written by a store
//! that copies) and reclaims it ([`BytesMut::try_reclaim`]): the same, already mapped memory.
//! Only when none is free does it allocate. A slab still referenced by an entry is never
//! touched; reclaiming needs the slab handle to be the allocation's only owner.
//!
//! Memory: a slab stays allocated while any entry in it is alive, so one long-lived entry keeps
//! up to `SLAB_BYTES` alive. The pool keeps at most `POOL_SLABS` retired slabs (in use or
//! free); beyond that the oldest handle is dropped (its memory is freed with its last entry).
//! So after a trim, free slabs up to the high-water mark of live entries stay mapped for reuse,
//! at most `POOL_SLABS * SLAB_BYTES` (512 MiB, process-wide): enough for a trimmed journal at
//! the default layout (two object sets of 4 × 16 MiB in flight between trims) to reuse warm
//! memory. Entries larger than `LARGE_ENTRY` get their own allocation.

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::BytesMut;
use parking_lot::Mutex;

/// Size of one slab.
pub(crate) const SLAB_BYTES: usize = 1 << 20;
/// Entries above this size are allocated on their own.
const LARGE_ENTRY: usize = SLAB_BYTES / 4;
/// Retired slab handles kept for reuse (process-wide).
const POOL_SLABS: usize = 512;

/// Retired slabs, oldest first.
static POOL: Mutex<VecDeque<BytesMut>> = Mutex::new(VecDeque::new());

thread_local! {
    /// The slab this thread frames entries into (empty until the first entry).
    static CURRENT: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Runs `fill` on an empty buffer with at least `hint` bytes of spare capacity and returns what
/// it wrote, split off the thread's slab. `fill` may write more than `hint` (the buffer grows
/// into a fresh allocation then, which is correct but slower).
pub(crate) fn frame(hint: usize, fill: impl FnOnce(BytesMut) -> BytesMut) -> BytesMut {
    if hint > LARGE_ENTRY {
        return fill(BytesMut::with_capacity(hint));
    }
    let mut slab = CURRENT.with(|c| std::mem::take(&mut *c.borrow_mut()));
    if slab.capacity() < hint {
        slab = next_slab(slab);
    }
    let mut slab = fill(slab);
    let entry = slab.split();
    CURRENT.with(|c| *c.borrow_mut() = slab);
    entry
}

/// Retires `old` (if it ever was a slab) and returns a reclaimed or new empty slab.
fn next_slab(old: BytesMut) -> BytesMut {
    let mut pool = POOL.lock();
    if old.capacity() > 0 {
        // `old` is an empty remainder: its handle is what lets the whole slab be reclaimed.
        pool.push_back(old);
        if pool.len() > POOL_SLABS {
            pool.pop_front();
        }
    }
    // Look at every retired slab once (one atomic load each, once per MiB of entries): free
    // ones anywhere in the ring are found, not only those near the front.
    for _ in 0..pool.len() {
        let Some(mut slab) = pool.pop_front() else {
            break;
        };
        if slab.is_empty() && slab.try_reclaim(SLAB_BYTES) {
            return slab;
        }
        // Still referenced by entries: look again later.
        pool.push_back(slab);
    }
    drop(pool);
    BytesMut::with_capacity(SLAB_BYTES)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn put(bytes: &[u8]) -> impl FnOnce(BytesMut) -> BytesMut + '_ {
        move |mut b| {
            b.extend_from_slice(bytes);
            b
        }
    }

    #[test]
    fn entries_are_independent_and_keep_their_bytes() {
        // Fill more than one slab with distinct entries; every entry keeps its own bytes, even
        // after later entries reuse slabs freed by dropping earlier ones.
        let n = 3 * SLAB_BYTES / 1000;
        let mut kept = Vec::new();
        for i in 0..n {
            let v = vec![(i % 251) as u8; 1000];
            let e = frame(1000, put(&v)).freeze();
            if i % 2 == 0 {
                kept.push((i, e));
            }
        }
        for i in 0..n {
            let v = vec![(i % 239) as u8; 777];
            let e = frame(777, put(&v)).freeze();
            assert_eq!(&e[..], &v[..]);
        }
        for (i, e) in kept {
            assert_eq!(e.len(), 1000);
            assert!(e.iter().all(|b| *b == (i % 251) as u8), "entry {i} changed");
        }
        // Larger than the hint, and larger than a slab: still exact.
        let big = vec![7u8; 3 * SLAB_BYTES];
        assert_eq!(&frame(10, put(&big))[..], &big[..]);
        assert_eq!(&frame(big.len(), put(&big))[..], &big[..]);
    }
}
