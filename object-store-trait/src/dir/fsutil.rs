//! Small file-system helpers for [`super::DirStore`]: whole-batch writes, new files, checks of
//! stored bytes against their CRC, syncs, unique names.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};

/// Most buffers one `pwritev` call accepts (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::omap_file::read_full_at;

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

/// Writes `parts` from the start of the file at `path` (created, and refused if it exists, unless
/// `existing`) and syncs it if asked.
pub(super) fn write_parts(
    path: &Path,
    parts: &[Bytes],
    existing: bool,
    sync: bool,
) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(!existing)
        .open(path)?;
    pwrite_all_vectored(&file, parts, 0)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

/// CRC32C of `parts` taken in order, as if they were one buffer.
pub(super) fn parts_crc(parts: &[Bytes]) -> u32 {
    parts
        .iter()
        .fold(0u32, |crc, b| crc32c::crc32c_append(crc, b))
}

/// Whether the `len` bytes of `file` at offset `at` are all there and have CRC32C `crc`. Reads
/// at most 1 MiB at a time.
pub(super) fn crc_matches(file: &File, at: u64, len: u64, crc: u32) -> io::Result<bool> {
    let mut buf = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0u64;
    let mut got_crc = 0u32;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        if read_full_at(file, chunk, at + done)? < n {
            return Ok(false);
        }
        got_crc = crc32c::crc32c_append(got_crc, chunk);
        done += n as u64;
    }
    Ok(got_crc == crc)
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
