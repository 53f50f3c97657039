//! Striped object locks that exclude other threads *and* other processes.
//!
//! Every object id hashes (CRC32C) to one of [`STRIPES`] stripes. A stripe is a lock file
//! `locks/NN` under the store root plus an in-process reader/writer state machine. Mutations hold a
//! stripe exclusively for their whole duration (including the store I/O); data reads hold it
//! shared. The in-process state decides which thread may touch the stripe's `flock`, so the kernel
//! lock (which belongs to the open file description, not to a thread) is taken and released by
//! exactly one owner at a time. The `parking_lot` mutex inside is only held to update the state,
//! never across I/O or the blocking `flock` call.
//!
//! A writer that releases a stripe while another thread of this process waits to write hands the
//! held `flock` over instead of unlocking it (the waiter then skips its own `flock` call), at
//! most [`MAX_HANDOFFS`] times in a row; then the file lock is released and taken again, so that
//! writers in other processes get their turn.

use std::fs::{File, OpenOptions};
use std::path::Path;

use parking_lot::{Condvar, Mutex};

use crate::{Result, StoreError};

/// Number of lock stripes (and lock files).
pub(crate) const STRIPES: usize = 64;

/// Consecutive in-process handovers of an exclusive `flock` before it is released once.
pub(crate) const MAX_HANDOFFS: u32 = 8;

/// The stripe an object id maps to; stable across processes and versions.
pub(crate) fn stripe_of(oid: &str) -> usize {
    crc32c::crc32c(oid.as_bytes()) as usize % STRIPES
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nobody holds the stripe; the file lock is released.
    Idle,
    /// One thread is acquiring or releasing the file lock; everyone else waits.
    Transition,
    /// This many in-process readers hold the stripe; the file lock is held shared.
    Shared(usize),
    /// One thread holds the stripe; the file lock is held exclusively.
    Exclusive,
    /// The last exclusive holder left the file lock held for a waiting in-process writer.
    Handoff,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    writers_waiting: usize,
    /// Handovers since the file lock was last taken.
    handoffs: u32,
}

#[derive(Debug)]
struct Stripe {
    file: File,
    state: Mutex<State>,
    cv: Condvar,
}

/// The lock table of one store directory (shared by every handle on it in this process).
#[derive(Debug)]
pub(crate) struct StripeLocks {
    stripes: Vec<Stripe>,
}

/// Holds a stripe until dropped.
#[derive(Debug)]
pub(crate) struct StripeGuard<'a> {
    stripe: &'a Stripe,
    exclusive: bool,
}

impl StripeLocks {
    /// Opens (creating if needed) the lock files in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let mut stripes = Vec::with_capacity(STRIPES);
        for i in 0..STRIPES {
            let path = dir.join(format!("{i:02}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| StoreError::io("open lock file", path.display().to_string(), e))?;
            stripes.push(Stripe {
                file,
                state: Mutex::new(State {
                    mode: Mode::Idle,
                    writers_waiting: 0,
                    handoffs: 0,
                }),
                cv: Condvar::new(),
            });
        }
        Ok(StripeLocks { stripes })
    }

    fn stripe(&self, index: usize) -> Result<&Stripe> {
        self.stripes
            .get(index)
            .ok_or_else(|| StoreError::InvalidArgument(format!("no lock stripe {index}")))
    }

    /// Takes stripe `index` exclusively (blocks).
    pub(crate) fn exclusive_stripe(&self, index: usize) -> Result<StripeGuard<'_>> {
        let stripe = self.stripe(index)?;
        let mut state = stripe.state.lock();
        state.writers_waiting += 1;
        loop {
            match state.mode {
                Mode::Idle => break,
                Mode::Handoff => {
                    // The previous writer left the file lock held for us.
                    state.writers_waiting -= 1;
                    state.mode = Mode::Exclusive;
                    return Ok(StripeGuard {
                        stripe,
                        exclusive: true,
                    });
                }
                _ => stripe.cv.wait(&mut state),
            }
        }
        state.writers_waiting -= 1;
        state.handoffs = 0;
        state.mode = Mode::Transition;
        drop(state);
        let locked = stripe.file.lock();
        let mut state = stripe.state.lock();
        match locked {
            Ok(()) => {
                state.mode = Mode::Exclusive;
                Ok(StripeGuard {
                    stripe,
                    exclusive: true,
                })
            }
            Err(e) => {
                state.mode = Mode::Idle;
                stripe.cv.notify_all();
                Err(StoreError::io("lock", format!("stripe {index}"), e))
            }
        }
    }

    /// Takes the stripe of `oid` exclusively (blocks).
    pub(crate) fn exclusive(&self, oid: &str) -> Result<StripeGuard<'_>> {
        self.exclusive_stripe(stripe_of(oid))
    }

    /// Takes the stripe of `oid` shared (blocks while a writer holds or waits for it).
    pub(crate) fn shared(&self, oid: &str) -> Result<StripeGuard<'_>> {
        let index = stripe_of(oid);
        let stripe = self.stripe(index)?;
        let mut state = stripe.state.lock();
        loop {
            match state.mode {
                Mode::Shared(n) if state.writers_waiting == 0 => {
                    state.mode = Mode::Shared(n + 1);
                    return Ok(StripeGuard {
                        stripe,
                        exclusive: false,
                    });
                }
                Mode::Idle if state.writers_waiting == 0 => break,
                _ => stripe.cv.wait(&mut state),
            }
        }
        state.mode = Mode::Transition;
        drop(state);
        let locked = stripe.file.lock_shared();
        let mut state = stripe.state.lock();
        let result = match locked {
            Ok(()) => {
                state.mode = Mode::Shared(1);
                Ok(StripeGuard {
                    stripe,
                    exclusive: false,
                })
            }
            Err(e) => {
                state.mode = Mode::Idle;
                Err(StoreError::io("lock shared", format!("stripe {index}"), e))
            }
        };
        // Other readers may have queued behind the transition.
        stripe.cv.notify_all();
        result
    }
}

impl Drop for StripeGuard<'_> {
    fn drop(&mut self) {
        let stripe = self.stripe;
        let mut state = stripe.state.lock();
        if !self.exclusive {
            if let Mode::Shared(n) = state.mode {
                if n > 1 {
                    state.mode = Mode::Shared(n - 1);
                    return;
                }
            }
        } else if state.writers_waiting > 0 && state.handoffs < MAX_HANDOFFS {
            state.handoffs += 1;
            state.mode = Mode::Handoff;
            stripe.cv.notify_all();
            return;
        }
        state.mode = Mode::Transition;
        drop(state);
        // Best effort: if unlocking fails the kernel still drops the lock when the process exits;
        // nothing better can be done from a destructor.
        let _ = stripe.file.unlock();
        let mut state = stripe.state.lock();
        state.mode = Mode::Idle;
        stripe.cv.notify_all();
    }
}
