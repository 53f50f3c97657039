//! The simplest durable log there is, as a bound for the benchmarks' journals: one file whose
//! blocks are written once before use (reused round-robin, so no append ever grows it) and
//! leader/follower group commit. The first waiting writer writes every queued payload with one
//! `pwritev` and `fdatasync`s; the others sleep until a sync covers them. No framing, no CRC, no
//! index, no recovery: whatever a log engine adds costs time on top of this.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

/// Where the log's data starts (the first block holds the optional size record).
const DATA_START: u64 = 4096;

/// A bare group-committed log in one pre-written file (see the module docs).
#[derive(Debug)]
pub struct GroupCommitLog {
    file: File,
    /// Bytes of the data area, reused from its start when a batch would run past it.
    data_len: u64,
    /// Rewrite a 48-byte size record at the file's start before each sync (what a store of
    /// exact-size objects in pre-written files must write at least).
    sized: bool,
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Payloads queued since the leader took the last batch.
    queued: Vec<Bytes>,
    /// Ticket of the next append.
    next: u64,
    /// Every ticket below this is durable.
    durable: u64,
    /// A leader is writing and syncing.
    leading: bool,
    /// Where the next batch goes, relative to the data start.
    offset: u64,
    /// Batches written and synced.
    syncs: u64,
}

impl GroupCommitLog {
    /// Creates the log at `path` (which must not exist) with `data_len` bytes of data area,
    /// written with zeros and synced before use.
    pub fn create(path: &Path, data_len: u64, sized: bool) -> io::Result<GroupCommitLog> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < DATA_START + data_len {
            file.write_all_at(&zeros, at)?;
            at += zeros.len() as u64;
        }
        file.sync_all()?;
        Ok(GroupCommitLog {
            file,
            data_len,
            sized,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        })
    }

    /// Appends `payload` (no copy: the leader writes the caller's buffer); returns once it is
    /// on stable storage.
    pub fn append(&self, payload: &Bytes) -> io::Result<()> {
        let mut st = self.state.lock();
        let ticket = st.next;
        st.next += 1;
        st.queued.push(payload.clone());
        while st.durable <= ticket {
            if st.leading {
                self.done.wait(&mut st);
                continue;
            }
            st.leading = true;
            let batch = std::mem::take(&mut st.queued);
            let through = st.next;
            let len: u64 = batch.iter().map(|b| b.len() as u64).sum();
            if st.offset + len > self.data_len {
                st.offset = 0;
            }
            let at = st.offset;
            st.offset += len;
            drop(st);
            let written = self.write_and_sync(&batch, at, through);
            st = self.state.lock();
            st.leading = false;
            if written.is_ok() {
                st.durable = through;
                st.syncs += 1;
            }
            self.done.notify_all();
            written?;
        }
        Ok(())
    }

    /// Writes `batch` at data offset `at` (and the size record) and syncs. No lock held.
    fn write_and_sync(&self, batch: &[Bytes], at: u64, through: u64) -> io::Result<()> {
        let mut pos = DATA_START + at;
        let mut rest: Vec<&[u8]> = batch.iter().map(|b| b.as_ref()).collect();
        while !rest.is_empty() {
            let slices: Vec<IoSlice<'_>> = rest.iter().map(|b| IoSlice::new(b)).collect();
            let mut n = rustix::io::pwritev(&self.file, &slices, pos)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            pos += n as u64;
            // Drop what was written, keeping the unwritten tail of a partly written buffer.
            while let Some(first) = rest.first_mut() {
                if n >= first.len() {
                    n -= first.len();
                    rest.remove(0);
                } else {
                    *first = first.get(n..).unwrap_or_default();
                    break;
                }
            }
        }
        if self.sized {
            let mut record = [0u8; 48];
            let end = pos - DATA_START;
            for (dst, src) in record
                .iter_mut()
                .zip(end.to_le_bytes().into_iter().chain(through.to_le_bytes()))
            {
                *dst = src;
            }
            self.file.write_all_at(&record, 0)?;
        }
        self.file.sync_data()
    }

    /// Appends per `fdatasync` so far (the group commit's batch size).
    pub fn appends_per_sync(&self) -> f64 {
        let st = self.state.lock();
        st.next as f64 / st.syncs.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use std::collections::BTreeSet;

    /// Every append of every writer is in the file once, whole, and the size record names the
    /// end of the last batch.
    #[test]
    fn concurrent_appends_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = GroupCommitLog::create(&path, 1 << 20, true).unwrap();
        let payload = |t: usize, i: usize| Bytes::from(vec![(t * 50 + i) as u8; 512]);
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..50 {
                        log.append(&payload(t, i)).unwrap();
                    }
                });
            }
        });
        assert!(log.appends_per_sync() >= 1.0);
        let bytes = std::fs::read(&path).unwrap();
        let data = &bytes[DATA_START as usize..DATA_START as usize + 200 * 512];
        let found: BTreeSet<u8> = data
            .chunks(512)
            .map(|c| {
                assert!(
                    c.iter().all(|b| *b == c[0]),
                    "a torn or interleaved payload"
                );
                c[0]
            })
            .collect();
        assert_eq!(found, (0..200).map(|v| v as u8).collect());
        let end = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!(end, 200 * 512);
    }
}
