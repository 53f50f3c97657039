//! Small file-system helpers for [`super::DirStore`]: whole-batch writes, syncs, unique names.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};

/// Most buffers one `pwritev` call accepts (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call: `<pid>-<counter>-<nanos>`.
pub(super) fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{nanos}", std::process::id())
}

/// A 64-bit value that differs between creations (process id, counter and clock mixed).
pub(super) fn unique_u64() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos ^ (u64::from(std::process::id()) << 40) ^ n.rotate_left(20);
    // Never 0: generation 0 means "no omap file".
    mixed.max(1)
}

#[cfg(test)]
thread_local! {
    /// Test failpoint: the next batch write on this thread writes this many bytes, then fails.
    pub(super) static FAIL_WRITE_AFTER: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

/// Writes every buffer of `data`, in order, at file offset `offset` with as few `pwritev` calls
/// as the kernel allows.
pub(super) fn pwrite_all_vectored(file: &File, data: &[Bytes], offset: u64) -> io::Result<()> {
    #[cfg(test)]
    if let Some(limit) = FAIL_WRITE_AFTER.with(|f| f.take()) {
        use std::os::unix::fs::FileExt;
        let all: Vec<u8> = data.iter().flat_map(|b| b.iter().copied()).collect();
        file.write_all_at(all.get(..limit).unwrap_or(&all), offset)?;
        return Err(io::Error::other("injected write failure"));
    }
    let mut slices: Vec<IoSlice<'_>> = data
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| IoSlice::new(b))
        .collect();
    let mut bufs: &mut [IoSlice<'_>] = &mut slices;
    let mut at = offset;
    while !bufs.is_empty() {
        let n = bufs.len().min(IOV_MAX);
        match rustix::io::pwritev(file, bufs.get(..n).unwrap_or_default(), at) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(done) => {
                IoSlice::advance_slices(&mut bufs, done);
                at += done as u64;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Creates or truncates `path`, writes `bytes` and optionally syncs it.
pub(super) fn overwrite_file(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

/// `fsync`s a directory so that entries created, renamed or removed in it are durable.
pub(super) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}
