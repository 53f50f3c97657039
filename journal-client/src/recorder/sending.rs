//! The sending side of the recorder: the per-offset worker loop and the pieces a waiting
//! thread shares with it (claim an object, send one batch, close and advance a set).

use bytes::Bytes;
use parking_lot::MutexGuard;
use std::time::Instant;

use super::{Shared, State};
use crate::error::RecorderError;
use crate::fence::{claim_object, is_fence_failure, ClaimError};

pub(super) fn worker(s: &Shared, o: usize) {
    let limit = s.config.layout.soft_limit();
    let Some(cv) = s.work.get(o) else { return };
    let mut st = s.state.lock();
    loop {
        if st.failed.is_some() {
            if st.shutdown {
                return;
            }
            cv.wait(&mut st);
            continue;
        }
        let Some(q) = st.offsets.get(o) else { return };
        if q.in_flight {
            // A waiting thread is sending for this offset.
            cv.wait(&mut st);
            continue;
        }
        let below = match st.closing_at {
            Some(at) if q.sendable_before(at) => at,
            Some(at) => {
                let idle = st
                    .offsets
                    .iter()
                    .all(|q| !q.in_flight && !q.sendable_before(at));
                if idle && !st.advancing {
                    advance(s, &mut st);
                    continue;
                }
                if st.shutdown && q.queue.is_empty() {
                    return;
                }
                cv.wait(&mut st);
                continue;
            }
            None => {
                let now = Instant::now();
                if q.queue.is_empty() {
                    if st.shutdown {
                        return;
                    }
                    cv.wait(&mut st);
                    continue;
                }
                if !q.ready(&s.config.settings, s.policy(&st)) {
                    match q.age_deadline(&s.config.settings, now) {
                        Some(d) => {
                            cv.wait_for(&mut st, d);
                        }
                        None => cv.wait(&mut st),
                    }
                    continue;
                }
                u64::MAX
            }
        };
        let Some(oid) = st.oids.get(o).cloned() else {
            return;
        };
        if s.config.fenced && !q.fenced {
            claim(s, &mut st, o, &oid);
            continue;
        }
        send(s, &mut st, o, &oid, limit, below);
    }
}

/// Store appends slower than this (moving average) are worth running concurrently on several
/// objects: waking a worker costs a few microseconds.
const PARALLEL_APPEND_NANOS: u64 = 30_000;

/// A waiting thread's share of the work: claim or send the queue of one object whose front is
/// below the flush target and which has no append in flight. Set closing is left to workers.
pub(super) fn help(s: &Shared, st: &mut MutexGuard<'_, State>) -> bool {
    if st.failed.is_some() || st.closing_at.is_some() || st.advancing {
        return false;
    }
    let target = st.flush_target;
    let Some(o) = st.offsets.iter().position(|q| q.due(target)) else {
        return false;
    };
    if st.append_nanos > PARALLEL_APPEND_NANOS {
        // Slow store (a disk): the other due objects go out concurrently through their
        // workers instead of one after another behind this append (a 64 KiB write is four
        // entries on four objects).
        wake_due_workers(s, st, Some(o));
    }
    let Some(oid) = st.oids.get(o).cloned() else {
        return false;
    };
    if s.config.fenced && st.offsets.get(o).is_some_and(|q| !q.fenced) {
        claim(s, st, o, &oid);
    } else {
        send(s, st, o, &oid, s.config.layout.soft_limit(), u64::MAX);
    }
    true
}

/// Closes the current set at entry tid `at` (keeping an earlier cut).
pub(super) fn close_at(st: &mut State, at: u64) {
    st.closing_at = Some(st.closing_at.map_or(at, |c| c.min(at)));
}

/// Moves the header and every queue to the next set (no append may be in flight).
pub(super) fn advance(s: &Shared, st: &mut MutexGuard<'_, State>) {
    st.advancing = true;
    let next = st.min_next_set;
    let r = MutexGuard::unlocked(st, || (s.advance)(next));
    st.advancing = false;
    match r {
        Ok(()) => s.open_set(st, next),
        Err(e) => {
            let at = st.durable_through;
            s.latch(st, at, e);
            s.notify_all_waiters();
        }
    }
    s.notify_workers();
}

/// Claims the current object of offset `o` with this writer's fence.
pub(super) fn claim(s: &Shared, st: &mut MutexGuard<'_, State>, o: usize, oid: &str) {
    set_in_flight(st, o, true);
    let r = MutexGuard::unlocked(st, || claim_object(s.store.as_ref(), oid, s.tag_tid));
    set_in_flight(st, o, false);
    match r {
        Ok(()) => {
            if let Some(q) = st.offsets.get_mut(o) {
                q.fenced = true;
            }
        }
        Err(e) => {
            let at = st.durable_through;
            let err = match e {
                ClaimError::Fenced { .. } => RecorderError::Fenced {
                    tag_tid: s.tag_tid,
                    detail: e.to_string(),
                },
                ClaimError::Store(e) => RecorderError::store("claim data object", &e),
            };
            s.latch(st, at, err);
            s.notify_all_waiters();
        }
    }
    s.notify_workers();
}

/// Sends one batch (entries below `below` that fit) of offset `o` to `oid`.
pub(super) fn send(
    s: &Shared,
    st: &mut MutexGuard<'_, State>,
    o: usize,
    oid: &str,
    limit: u64,
    below: u64,
) {
    let Some(q) = st.offsets.get_mut(o) else {
        return;
    };
    let (mut batch, cut) = q.take_batch(limit, below);
    if let Some(at) = cut {
        close_at(st, at);
        s.notify_workers();
    }
    let Some(first) = batch.first().map(|e| e.entry_tid) else {
        if let Some(q) = st.offsets.get_mut(o) {
            q.spare.0 = batch;
        }
        return;
    };
    set_in_flight(st, o, true);
    if let Some(q) = st.offsets.get_mut(o) {
        q.in_flight_first = Some(first);
    }
    st.in_flight_appends += 1;
    let mut data = st
        .offsets
        .get_mut(o)
        .map(|q| std::mem::take(&mut q.spare.1))
        .unwrap_or_default();
    data.extend(batch.iter().flat_map(|e| e.bytes.parts()).cloned());
    let guard = &s.guard;
    let started = Instant::now();
    let r = MutexGuard::unlocked(st, || {
        let r = s.store.append(oid, &data, guard);
        if r.is_ok() && s.notify_appends {
            // Best effort: a reader that misses it still finds the entries at its next poll.
            let _ = s.store.notify(oid, Bytes::new());
        }
        r
    });
    let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    st.append_nanos = (st.append_nanos.saturating_mul(7) / 8).saturating_add(took / 8);
    set_in_flight(st, o, false);
    if let Some(q) = st.offsets.get_mut(o) {
        q.in_flight_first = None;
    }
    st.in_flight_appends -= 1;
    let watermark = st.durable_through;
    match r {
        Ok(_) => s.advance_watermark(st),
        Err(e) if e.is_overflow() => {
            if let Some(q) = st.offsets.get_mut(o) {
                q.requeue_front(&mut batch);
                q.overflowed = true;
            }
            close_at(st, first);
        }
        Err(e) if is_fence_failure(&e) => {
            let err = RecorderError::Fenced {
                tag_tid: s.tag_tid,
                detail: e.to_string(),
            };
            s.latch(st, first, err);
        }
        Err(e) => {
            let err = RecorderError::store("append", &e);
            s.latch(st, first, err);
        }
    }
    if let Some(q) = st.offsets.get_mut(o) {
        q.recycle(batch, data);
    }
    if st.failed.is_some() {
        s.notify_all_waiters();
    } else {
        s.notify_covered(watermark, st.durable_through);
    }
    if st.closing_at.is_some() || st.failed.is_some() {
        s.notify_workers();
    }
}

/// Wakes the worker of every object (but `except`) whose queue has due entries and no append in
/// flight, so nothing due waits for a sleeping waiter.
pub(super) fn wake_due_workers(s: &Shared, st: &State, except: Option<usize>) {
    let target = st.flush_target;
    for (o, q) in st.offsets.iter().enumerate() {
        if Some(o) != except && q.due(target) {
            if let Some(cv) = s.work.get(o) {
                cv.notify_one();
            }
        }
    }
}

pub(super) fn set_in_flight(st: &mut State, o: usize, v: bool) {
    if let Some(q) = st.offsets.get_mut(o) {
        q.in_flight = v;
    }
}
