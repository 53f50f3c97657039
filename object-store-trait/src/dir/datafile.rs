//! The open data file of a [`super::DirStore`] object, in either layout: a *sized* file (store
//! format 2, described here; its records are in `size_record.rs`) or a *log-mode* file (store
//! format 3, `logfile.rs`: objects created by an append or an omap update). A sized file holds a
//! small header with two size records, the object's bytes from [`DATA_START`], and preallocated
//! space after them.
//!
//! # Format (all integers little-endian)
//!
//! ```text
//! offset 0      size record slot 0 (48 bytes)
//! offset 512    size record slot 1 (48 bytes)
//! offset 4096   object bytes [0, size), then unspecified bytes up to the end of the file
//!               (zeros written ahead of appends, or leftovers of failed or torn appends)
//!
//! size record:
//!   magic        8 bytes "RBDJSIZE"
//!   seq          u64  higher = newer; the current record is the newest valid one
//!   size         u64  the object's size
//!   check_start  u64  <= size; the record certifies object bytes [check_start, size)
//!   check_crc    u32  CRC32C of those bytes (0 for an empty range)
//!   flags        u32  bit 0 = retired (the file was replaced or removed, see below)
//!   crc          u32  CRC32C of the 40 bytes before it
//!   zero         u32
//! ```
//!
//! # Why two records, and why a CRC of the data
//!
//! An append writes its bytes at `DATA_START + size` (space that is usually already allocated and
//! zero-filled, so the write is an overwrite), then the new record into the slot that does *not*
//! hold the current record, then issues one `fdatasync` for both. Because the file's length and
//! block map do not change, the sync needs no file-system metadata commit. A crash during that sync
//! can persist the record without (all of) the data; the record's `check_crc` over the appended
//! bytes detects that, and the reader falls back to the other slot, which holds the previous
//! record — durable, since the previous mutation returned only after its own sync. A torn record
//! fails its own CRC and is skipped the same way. The data check is needed only once per file and
//! process (page-cache contents are always consistent while the machine runs; see `DataFile`).
//!
//! A record whose data check fails is *distrusted* for the life of the open file; the next
//! mutation writes a record with a higher sequence number over it.
//!
//! # Retirement
//!
//! Processes keep data files open (see `files.rs`). Before `write_full` renames a new file over
//! an object's data file, and before `remove` moves the object away, the writer adds a *retired*
//! record (same size, next sequence number) to the old file while holding the object's stripe
//! exclusively. A process whose cached descriptor shows a retired current record reopens the file
//! by path. A freshly opened file whose current record is retired is still the live file (the
//! writer died between retiring and renaming) and is used as it is.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::fsutil::{parts_crc, pwrite_all_vectored};
use super::logfile::{
    clear_header, decode_file_header, read_ranges, LogSnapshot, LogState, SEG_HEADER_LEN,
};
use super::mmap;
use super::omap_file::read_full_at;
pub(super) use super::size_record::DATA_START;
use super::size_record::{certified, Header, SizeRecord, HEADER_READ};
use crate::{total_len, Result, StoreError};

/// Smallest step by which an append grows the preallocated space.
const MIN_GROW: u64 = 64 * 1024;
/// Appends zero-fill ahead only while the file's recent appends average at most this many bytes.
/// Zero-filling writes every appended byte twice (zeros, then data); for large appends that costs
/// more than the one metadata commit per append it saves. Measured with a paired append loop:
/// 4 KiB and 64 KiB appends gained (1.7x, 1.1-1.4x of a plain append loop), 1 MiB appends lost
/// (0.6x), and a recorder alternating 16 KiB and ~250 KiB appends lost (0.4-0.5x). Alternating
/// `DirStore::append` loops (fdatasync on, 3 pairs each, zero-fill on vs off): 65,600-byte
/// appends (a 64 KiB journal entry with its framing, which the earlier 64 KiB bound excluded)
/// 1.03-1.44x, 90,000 bytes 1.18-1.28x, 130,000 bytes 1.06-1.28x, 250,000 bytes 0.86-1.13x.
const PREALLOC_AVG_MAX: u64 = 128 * 1024;
static ZEROS: [u8; 256 * 1024] = [0; 256 * 1024];

/// The state of a sized data file read under the object's stripe lock.
#[derive(Debug, Clone, Copy)]
pub(super) struct SizedSnapshot {
    pub(super) header: Header,
    pub(super) slot: usize,
    /// The current record.
    pub(super) record: SizeRecord,
}

/// The state of a data file read under the object's stripe lock.
#[derive(Debug, Clone, Copy)]
pub(super) enum Snapshot {
    /// A sized file (this module).
    Sized(SizedSnapshot),
    /// A log-mode file (`logfile.rs`).
    Log(LogSnapshot),
}

impl Snapshot {
    /// The object's size.
    pub(super) fn size(&self) -> u64 {
        match self {
            Snapshot::Sized(s) => s.record.size,
            Snapshot::Log(s) => s.size,
        }
    }
}

/// How a data file is laid out, with what its opener learned about it.
#[derive(Debug)]
enum Format {
    /// Size records in the header (this module).
    Sized {
        /// Sequence number of a record whose data check failed at open (a torn append); never
        /// used.
        distrusted: Option<u64>,
        /// Sequence number of a retired record accepted at open (its writer died before
        /// renaming).
        accepted_retired: Option<u64>,
    },
    /// Segments (`logfile.rs`).
    Log(LogState),
}

/// An open data file, checked when it was opened.
#[derive(Debug)]
pub(super) struct DataFile {
    pub(super) file: File,
    format: Format,
    /// Length of the file as last seen or set by this process (files never shrink).
    pub(super) phys_len: AtomicU64,
    /// Moving average of this process's append lengths to the file (weight 1/4 per append).
    avg_append: AtomicU64,
}

fn stale_snapshot() -> io::Error {
    io::Error::other("snapshot of another data file")
}

fn corrupt(oid: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        oid: oid.to_owned(),
        detail: detail.into(),
    }
}

impl DataFile {
    /// Opens the data file at `path` and checks it (see the module docs); `None` if it is missing.
    pub(super) fn open(path: &Path, oid: &str) -> Result<Option<DataFile>> {
        let io_err = |e| StoreError::io("open", oid, e);
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // A store on read-only media (or files this user may not write) can still be read;
            // mutations then fail on their first write.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                match File::open(path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(e)),
                }
            }
            Err(e) => return Err(io_err(e)),
        };
        let phys = file.metadata().map_err(io_err)?.len();
        let mut buf = [0u8; HEADER_READ];
        let got = read_full_at(&file, &mut buf, 0).map_err(io_err)?;
        let format = match decode_file_header(buf.get(..got).unwrap_or_default()) {
            Some(nonce) => match LogState::open(&file, nonce, phys).map_err(io_err)? {
                Ok(state) => Format::Log(state),
                Err(at) => {
                    return Err(corrupt(
                        oid,
                        format!("damaged segment header before the one at file offset {at}"),
                    ))
                }
            },
            None => sized_format(&file, &Header::parse(&buf, got), phys)
                .map_err(io_err)?
                .ok_or_else(|| corrupt(oid, "data file has no intact size record"))?,
        };
        Ok(Some(DataFile {
            file,
            format,
            phys_len: AtomicU64::new(phys),
            avg_append: AtomicU64::new(0),
        }))
    }

    /// The underlying file (for reads and memory maps).
    pub(super) fn file(&self) -> &File {
        &self.file
    }

    /// Reads the header. Caller holds the object's stripe.
    pub(super) fn snapshot(&self, oid: &str) -> Result<Snapshot> {
        let io_err = |e| StoreError::io("read", oid, e);
        let distrusted = match &self.format {
            Format::Log(state) => {
                return Ok(Snapshot::Log(state.snapshot(&self.file).map_err(io_err)?))
            }
            Format::Sized { distrusted, .. } => *distrusted,
        };
        let header = Header::read(&self.file).map_err(io_err)?;
        header
            .newest_first()
            .into_iter()
            .find(|(_, r)| Some(r.seq) != distrusted)
            .map(|(slot, record)| {
                Snapshot::Sized(SizedSnapshot {
                    header,
                    slot,
                    record,
                })
            })
            .ok_or_else(|| corrupt(oid, "data file has no intact size record"))
    }

    /// Reads up to `len` object bytes from `offset` (fewer at the end of the object as of
    /// `snap`). Reads of at least `mmap_from` bytes of a sized file are memory-mapped; log-mode
    /// files are never mapped, since their inode may be reused for another object (`spare.rs`).
    /// Caller holds the stripe.
    pub(super) fn read(
        &self,
        snap: &Snapshot,
        offset: u64,
        len: u64,
        mmap_from: Option<u64>,
    ) -> io::Result<Bytes> {
        let want = len.min(snap.size().saturating_sub(offset));
        if want == 0 {
            return Ok(Bytes::new());
        }
        let want_usize = usize::try_from(want)
            .map_err(|_| io::Error::other(format!("read of {want} bytes too large")))?;
        let start = match &self.format {
            Format::Sized { .. } => {
                if mmap_from.is_some_and(|from| want >= from) {
                    return mmap::map_range(&self.file, DATA_START + offset, want_usize);
                }
                DATA_START + offset
            }
            Format::Log(state) => {
                let ranges = state.file_ranges(offset, want);
                match ranges.as_slice() {
                    // Within one segment: read it like a sized file's bytes.
                    [one] => one.start,
                    _ => return read_ranges(&self.file, &ranges).map(Bytes::from),
                }
            }
        };
        let mut buf = vec![0u8; want_usize];
        let got = read_full_at(&self.file, &mut buf, start)?;
        buf.truncate(got);
        Ok(Bytes::from(buf))
    }

    /// Whether the file still belongs to the object it was opened for (a log-mode file may be
    /// reused for another object once its own is removed, `spare.rs`).
    pub(super) fn still_current(&self) -> io::Result<bool> {
        match &self.format {
            Format::Log(state) => state.still_current(&self.file),
            Format::Sized { .. } => Ok(true),
        }
    }

    /// Whether this is a log-mode file (`logfile.rs`), which takes appends only.
    pub(super) fn is_log(&self) -> bool {
        matches!(self.format, Format::Log(_))
    }

    /// Whether `snap` shows that the file was replaced or removed since it was opened.
    pub(super) fn is_retired(&self, snap: &Snapshot) -> bool {
        match (&self.format, snap) {
            (Format::Log(state), Snapshot::Log(s)) => state.is_retired(s),
            (
                Format::Sized {
                    accepted_retired, ..
                },
                Snapshot::Sized(s),
            ) => s.record.retired && *accepted_retired != Some(s.record.seq),
            // A snapshot of another file: treat it as stale.
            _ => true,
        }
    }

    pub(super) fn distrusted(&self) -> Option<u64> {
        match self.format {
            Format::Sized { distrusted, .. } => distrusted,
            Format::Log(_) => None,
        }
    }

    pub(super) fn sync(&self, sync: bool) -> io::Result<()> {
        if sync {
            self.file.sync_data()?;
        }
        #[cfg(test)]
        capture_sync_point(&self.file)?;
        Ok(())
    }

    /// Appends `data` (non-empty) after the object's current end. Caller holds the stripe
    /// exclusively. On error the object is left as in `snap`.
    pub(super) fn append(
        &self,
        snap: &Snapshot,
        data: &[Bytes],
        sync: bool,
        prealloc_max: u64,
    ) -> io::Result<()> {
        match (&self.format, snap) {
            (Format::Sized { .. }, Snapshot::Sized(snap)) => {
                self.append_sized(snap, data, sync, prealloc_max)
            }
            (Format::Log(state), Snapshot::Log(snap)) => {
                self.append_log(state, snap, data, sync, prealloc_max)
            }
            _ => Err(stale_snapshot()),
        }
    }

    /// A log-mode append: one segment, header and data in one write (see `logfile.rs`).
    fn append_log(
        &self,
        state: &LogState,
        snap: &LogSnapshot,
        data: &[Bytes],
        sync: bool,
        prealloc_max: u64,
    ) -> io::Result<()> {
        let len = total_len(data);
        let end = snap
            .end
            .checked_add(SEG_HEADER_LEN)
            .and_then(|e| e.checked_add(len))
            .filter(|_| snap.size.checked_add(len).is_some())
            .ok_or_else(|| io::Error::other("object size overflows"))?;
        let mut parts = Vec::with_capacity(data.len() + 1);
        parts.push(state.next_header(snap, len, parts_crc(data), false));
        parts.extend(data.iter().cloned());
        let written = self
            .grow_past(end, len, snap.size, prealloc_max)
            .and_then(|()| pwrite_all_vectored(&self.file, &parts, snap.end))
            .and_then(|()| self.sync(sync));
        if let Err(e) = written {
            clear_header(&self.file, snap.end);
            let _ = self.sync(sync);
            return Err(e);
        }
        self.phys_len.fetch_max(end, Ordering::Relaxed);
        state.appended(snap, len, false);
        Ok(())
    }

    /// Before an append of `len` bytes that ends at file offset `end`: unless the file already
    /// reaches that far, zero-fills a step past `end` that grows with the object (`size`) up to
    /// `prealloc_max`, so that the next appends land in allocated blocks. It does nothing with
    /// `prealloc_max` 0 or while recent appends average more than [`PREALLOC_AVG_MAX`] bytes.
    /// Caller holds the stripe exclusively.
    pub(super) fn grow_past(
        &self,
        end: u64,
        len: u64,
        size: u64,
        prealloc_max: u64,
    ) -> io::Result<()> {
        let avg = self.avg_append.load(Ordering::Relaxed);
        let avg = avg.saturating_mul(3).saturating_add(len) / 4;
        self.avg_append.store(avg, Ordering::Relaxed);
        if prealloc_max == 0
            || avg > PREALLOC_AVG_MAX
            || end <= self.phys_len.load(Ordering::Relaxed)
        {
            return Ok(());
        }
        // Another process may have grown the file since this one last looked.
        let phys = self.file.metadata()?.len();
        self.phys_len.fetch_max(phys, Ordering::Relaxed);
        if end <= phys {
            return Ok(());
        }
        let step = size.clamp(MIN_GROW, prealloc_max.max(MIN_GROW));
        let target = end.saturating_add(step).div_ceil(4096).saturating_mul(4096);
        self.write_zeros(end, target)?;
        self.phys_len.fetch_max(target, Ordering::Relaxed);
        Ok(())
    }

    /// Writes zeros over file bytes `[from, to)`.
    pub(super) fn write_zeros(&self, from: u64, to: u64) -> io::Result<()> {
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZEROS.len() as u64) as usize;
            self.file
                .write_all_at(ZEROS.get(..n).unwrap_or_default(), at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Marks the file retired (see the module docs). Caller holds the stripe exclusively and
    /// renames or removes the file next.
    pub(super) fn retire(&self, snap: &Snapshot) -> io::Result<()> {
        match (&self.format, snap) {
            (Format::Sized { .. }, Snapshot::Sized(snap)) => {
                let record = SizeRecord {
                    retired: true,
                    ..SizeRecord::unchecked(snap.header.next_seq(), snap.record.size)
                };
                self.put_record(snap, &record)
            }
            (Format::Log(state), Snapshot::Log(snap)) => {
                let header = state.next_header(snap, 0, 0, true);
                self.file.write_all_at(&header, snap.end)?;
                state.appended(snap, 0, true);
                Ok(())
            }
            _ => Err(stale_snapshot()),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Test hook: when set, every sync point of a data file on this thread (an `fdatasync`, or
    /// where one would be under `SyncPolicy::None`) appends the file's whole contents afterwards
    /// (the state a crash right after that sync would leave).
    pub(super) static SYNC_POINTS: std::cell::RefCell<Option<Vec<Vec<u8>>>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
fn capture_sync_point(file: &File) -> io::Result<()> {
    SYNC_POINTS.with(|points| {
        if let Some(points) = points.borrow_mut().as_mut() {
            let len = file.metadata()?.len() as usize;
            let mut bytes = vec![0u8; len];
            let got = read_full_at(file, &mut bytes, 0)?;
            bytes.truncate(got);
            points.push(bytes);
        }
        Ok(())
    })
}

/// What opening a sized file with `header` (file length `phys`) learns: the newest record whose
/// bytes are in the file, with the newer one it distrusts; `None` if no record is intact.
fn sized_format(file: &File, header: &Header, phys: u64) -> io::Result<Option<Format>> {
    let mut distrusted = None;
    for (_, record) in header.newest_first() {
        if certified(file, &record, phys)? {
            return Ok(Some(Format::Sized {
                distrusted,
                accepted_retired: record.retired.then_some(record.seq),
            }));
        }
        // Only the newest record may be a torn append; the one before it was durable.
        if distrusted.is_some() {
            break;
        }
        distrusted = Some(record.seq);
    }
    Ok(None)
}
