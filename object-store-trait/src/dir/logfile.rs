//! Log-mode data files (store format 3): an object's appends as self-describing segments, so
//! that an append is one contiguous write and one `fdatasync`.
//!
//! A sized data file (`datafile.rs`) keeps the object's bytes contiguous and records the size in
//! its header, a second region that every append rewrites: two separate extents for the sync to
//! write. On this project's virtio disk that costs 20–35 % of a 4 KiB append (a `pwrite` +
//! `fdatasync` loop: 10.2–10.7k/s with the data alone, 6.7–8.4k/s with a 48-byte record at the
//! file's start, 9.2–10.2k/s with the record right after the data). A log-mode file puts the
//! record in front of the data it describes.
//!
//! # Format (all integers little-endian)
//!
//! ```text
//! offset 0      file header: magic "RBDJLOG3", nonce u64, crc u32 (CRC32C of the 16 bytes
//!               before it), zero u32
//! offset 4096   segments, back to back, then zeros written ahead of appends or leftovers
//!
//! segment:
//!   magic     4 bytes "SEG3"
//!   flags     u32  bit 0 = retired (length 0; see datafile.rs, Retirement)
//!   index     u64  0 for the file's first segment, then +1 each
//!   nonce     u64  the file header's nonce
//!   len       u64  bytes of object data following the header
//!   data_crc  u32  CRC32C of those bytes
//!   crc       u32  CRC32C of the 36 bytes before it
//!   data      len bytes
//! ```
//!
//! The object's bytes are the data of the segments in order, up to the first position that does
//! not hold a valid header (wrong magic, CRC, nonce or index, or running past the file's end).
//!
//! # Crash safety
//!
//! An append writes its header and data with one `pwritev` at the end of the last segment
//! (into zero-filled space, or over the old bytes of a reused file, `spare.rs`) and syncs. Appends of a file are serialised and each returns
//! only after its sync, so a crash can tear only the newest segment: its header may persist
//! without (all of) its data. Whoever finds a segment last on a walk checks its data CRC and
//! drops it if the check fails. Earlier segments were durable before the next one was written.
//! A dropped segment's header may stay in the file until an append overwrites it; a walk finds
//! it last again and drops it again.
//!
//! Client data cannot pass for a header: a header must carry the file's nonce, a random value
//! stored only in the file header, which no object read returns; stale headers of a dropped
//! segment lie at or after the end, where the next append overwrites them first; the segments
//! of the object that had a reused file before carry that file's old nonce.
//!
//! A reused file gets a new file header before any segment is written into it, and an open file
//! is checked against its file header on every use (see [`LogState::snapshot`]), so a process
//! that still has the removed object's file open notices and reopens by path. Log-mode files are
//! never memory-mapped.
//!
//! Only [`super::DirStore`] appends, retirements and reads use log files. Any other mutation of a
//! log-mode object (an in-place `write_at`, `write_full`) replaces the file with a sized one.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use parking_lot::Mutex;

use super::fsutil::{crc_matches, parts_crc, write_parts};
use super::omap_file::read_full_at;
use super::sealed::{intact, seal, u32_at, u64_at};
use crate::total_len;

/// The file header's magic, which tells log-mode files from sized ones.
pub(super) const LOG_MAGIC: &[u8; 8] = b"RBDJLOG3";
/// File offset of the first segment.
pub(super) const SEGMENTS_START: u64 = 4096;
/// Length of a segment header.
pub(super) const SEG_HEADER_LEN: u64 = 40;
const FILE_HEADER_LEN: usize = 24;
const SEG_MAGIC: &[u8; 4] = b"SEG3";
const FLAG_RETIRED: u32 = 1;

/// One segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegHeader {
    pub(super) retired: bool,
    pub(super) index: u64,
    pub(super) len: u64,
    pub(super) data_crc: u32,
}

impl SegHeader {
    pub(super) fn encode(&self, nonce: u64) -> [u8; SEG_HEADER_LEN as usize] {
        let mut out = [0u8; SEG_HEADER_LEN as usize];
        let flags = if self.retired { FLAG_RETIRED } else { 0 };
        seal(
            &mut out,
            &[
                SEG_MAGIC,
                &flags.to_le_bytes(),
                &self.index.to_le_bytes(),
                &nonce.to_le_bytes(),
                &self.len.to_le_bytes(),
                &self.data_crc.to_le_bytes(),
            ],
        );
        out
    }

    /// Decodes the header of segment `index` of a file with `nonce`; `None` for anything else.
    pub(super) fn decode(bytes: &[u8], nonce: u64, index: u64) -> Option<SegHeader> {
        if !intact(bytes, SEG_MAGIC, 36)
            || u64_at(bytes, 8)? != index
            || u64_at(bytes, 16)? != nonce
        {
            return None;
        }
        let header = SegHeader {
            retired: u32_at(bytes, 4)? & FLAG_RETIRED != 0,
            index,
            len: u64_at(bytes, 24)?,
            data_crc: u32_at(bytes, 32)?,
        };
        (!header.retired || header.len == 0).then_some(header)
    }
}

/// The file header of a log-mode file holding `nonce`.
pub(super) fn encode_file_header(nonce: u64) -> [u8; FILE_HEADER_LEN] {
    let mut out = [0u8; FILE_HEADER_LEN];
    seal(&mut out, &[LOG_MAGIC, &nonce.to_le_bytes()]);
    out
}

/// The nonce of a log-mode file header, or `None` if `bytes` do not start with an intact one.
pub(super) fn decode_file_header(bytes: &[u8]) -> Option<u64> {
    intact(bytes, LOG_MAGIC, 16)
        .then(|| u64_at(bytes, 8))
        .flatten()
}

/// Where a log-mode file ends, as seen under the object's stripe lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogSnapshot {
    /// The object's size.
    pub(super) size: u64,
    /// File offset after the last segment (where the next one goes).
    pub(super) end: u64,
    /// Index of the next segment.
    pub(super) next_index: u64,
    /// Index of the last segment if it is a retirement.
    pub(super) retired: Option<u64>,
    /// The file header no longer holds this file's nonce: the object was removed and its file
    /// reused for another (`spare.rs`).
    pub(super) reused: bool,
}

/// The segments of an open log-mode file known to this process.
#[derive(Debug)]
struct Segments {
    tail: LogSnapshot,
    /// `(object offset, file offset of the data)` of every segment with data, in order.
    starts: Vec<(u64, u64)>,
}

/// An open log-mode file's nonce and segment index.
#[derive(Debug)]
pub(super) struct LogState {
    nonce: u64,
    segments: Mutex<Segments>,
    /// Index of a retirement accepted at open (its writer died before renaming).
    accepted_retired: Option<u64>,
}

impl LogState {
    /// Walks the segments of `file` (length `phys`) with file header `nonce`.
    /// `Ok(Err(at))` if the walk stopped at a damaged header: a valid header of a later segment
    /// of this file lies at file offset `at` (see [`later_segment`]).
    pub(super) fn open(file: &File, nonce: u64, phys: u64) -> io::Result<Result<LogState, u64>> {
        let start = LogSnapshot {
            size: 0,
            end: SEGMENTS_START,
            next_index: 0,
            retired: None,
            reused: false,
        };
        let mut segments = Segments {
            tail: start,
            starts: Vec::new(),
        };
        walk(file, nonce, phys, &mut segments)?;
        if let Some(at) = later_segment(file, nonce, &segments.tail, phys)? {
            return Ok(Err(at));
        }
        Ok(Ok(LogState {
            nonce,
            accepted_retired: segments.tail.retired,
            segments: Mutex::new(segments),
        }))
    }

    /// The current end, after following segments other processes appended since the last look.
    ///
    /// It reads the header after the last known segment first and the file header second: a
    /// process that reuses the file of a removed object (`spare.rs`) rewrites the file header
    /// before it writes any segment, so a walker that finds the removal's retirement overwritten
    /// also finds the new nonce.
    pub(super) fn snapshot(&self, file: &File) -> io::Result<LogSnapshot> {
        let known = self.segments.lock().tail;
        let mut header = [0u8; SEG_HEADER_LEN as usize];
        let got = read_full_at(file, &mut header, known.end)?;
        let appended = SegHeader::decode(
            header.get(..got).unwrap_or_default(),
            self.nonce,
            known.next_index,
        )
        .is_some();
        if !self.still_current(file)? {
            return Ok(LogSnapshot {
                reused: true,
                ..known
            });
        }
        if !appended {
            return Ok(known);
        }
        // Another process appended: follow its segments. The stripe lock keeps appends out, so
        // concurrent walkers (readers) find the same segments; the first to finish records them.
        let mut found = Segments {
            tail: known,
            starts: Vec::new(),
        };
        walk(file, self.nonce, file.metadata()?.len(), &mut found)?;
        let mut segments = self.segments.lock();
        if segments.tail == known {
            segments.starts.append(&mut found.starts);
            segments.tail = found.tail;
        }
        Ok(segments.tail)
    }

    /// Whether `snap` shows that the file was replaced or removed since it was opened.
    pub(super) fn is_retired(&self, snap: &LogSnapshot) -> bool {
        snap.reused || (snap.retired.is_some() && snap.retired != self.accepted_retired)
    }

    /// Whether the file header still holds this file's nonce (the file was not reused for
    /// another object since it was opened).
    pub(super) fn still_current(&self, file: &File) -> io::Result<bool> {
        let mut head = [0u8; FILE_HEADER_LEN];
        let got = read_full_at(file, &mut head, 0)?;
        Ok(decode_file_header(head.get(..got).unwrap_or_default()) == Some(self.nonce))
    }

    /// The header of the next segment after `snap`, holding `len` bytes with CRC `data_crc`.
    pub(super) fn next_header(
        &self,
        snap: &LogSnapshot,
        len: u64,
        data_crc: u32,
        retired: bool,
    ) -> Bytes {
        let header = SegHeader {
            retired,
            index: snap.next_index,
            len,
            data_crc,
        };
        Bytes::copy_from_slice(&header.encode(self.nonce))
    }

    /// Records a segment of `len` bytes this process wrote after `snap`.
    pub(super) fn appended(&self, snap: &LogSnapshot, len: u64, retired: bool) {
        let mut segments = self.segments.lock();
        debug_assert_eq!(
            segments.tail, *snap,
            "log segments changed under the stripe lock"
        );
        let data_at = snap.end + SEG_HEADER_LEN;
        if len > 0 {
            segments.starts.push((snap.size, data_at));
        }
        segments.tail = LogSnapshot {
            size: snap.size + len,
            end: data_at + len,
            next_index: snap.next_index + 1,
            retired: retired.then_some(snap.next_index),
            reused: false,
        };
    }

    /// The file ranges holding object bytes `[offset, offset + len)`, all below the size of the
    /// last snapshot. Caller holds the stripe.
    pub(super) fn file_ranges(&self, offset: u64, len: u64) -> Vec<Range<u64>> {
        let segments = self.segments.lock();
        let end = offset.saturating_add(len).min(segments.tail.size);
        let mut out = Vec::new();
        // The last segment starting at or before `offset`.
        let first = segments
            .starts
            .partition_point(|(obj, _)| *obj <= offset)
            .saturating_sub(1);
        let mut at = offset;
        for (i, (obj, file_at)) in segments.starts.iter().enumerate().skip(first) {
            if at >= end {
                break;
            }
            let seg_end = segments
                .starts
                .get(i + 1)
                .map_or(segments.tail.size, |(next, _)| *next);
            if seg_end <= at {
                continue;
            }
            let upto = seg_end.min(end);
            let from = file_at + (at - obj);
            out.push(from..from + (upto - at));
            at = upto;
        }
        out
    }
}

/// Follows valid segments from `segments.tail`, appending what it finds; checks the data of the
/// last one found and drops that one if the check fails (a torn append).
fn walk(file: &File, nonce: u64, phys: u64, segments: &mut Segments) -> io::Result<()> {
    let mut header = [0u8; SEG_HEADER_LEN as usize];
    let mut last: Option<(SegHeader, LogSnapshot, bool)> = None;
    loop {
        let tail = segments.tail;
        let got = read_full_at(file, &mut header, tail.end)?;
        let Some(seg) = SegHeader::decode(
            header.get(..got).unwrap_or_default(),
            nonce,
            tail.next_index,
        ) else {
            break;
        };
        let data_at = tail.end + SEG_HEADER_LEN;
        let Some(seg_end) = data_at.checked_add(seg.len).filter(|e| *e <= phys) else {
            break;
        };
        let Some(size) = tail.size.checked_add(seg.len) else {
            break;
        };
        if seg.len > 0 {
            segments.starts.push((tail.size, data_at));
        }
        last = Some((seg, tail, seg.len > 0));
        segments.tail = LogSnapshot {
            size,
            end: seg_end,
            next_index: tail.next_index + 1,
            retired: seg.retired.then_some(tail.next_index),
            reused: false,
        };
    }
    if let Some((seg, before, pushed)) = last {
        if !crc_matches(file, before.end + SEG_HEADER_LEN, seg.len, seg.data_crc)? {
            if pushed {
                segments.starts.pop();
            }
            segments.tail = before;
        }
    }
    Ok(())
}

/// How far past the end of the segments [`later_segment`] looks: more than any one append the
/// journal's recorder makes (its `flush_bytes` is 1 MiB by default).
const LATER_SEGMENT_WINDOW: u64 = 4 << 20;

/// After a walk that stopped at `tail`: the file offset of a valid header of this file with a
/// later index within [`LATER_SEGMENT_WINDOW`] bytes, if any. A torn last append leaves no
/// later segment, so one found means a header in the middle of the file was damaged, which
/// would otherwise silently hide every later segment. Headers are found by the file's nonce,
/// which no object data contains.
fn later_segment(
    file: &File,
    nonce: u64,
    tail: &LogSnapshot,
    phys: u64,
) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 1 << 20;
    let needle = nonce.to_le_bytes();
    let finder = memchr::memmem::Finder::new(&needle);
    let limit = phys.min(tail.end.saturating_add(LATER_SEGMENT_WINDOW));
    let mut buf = vec![0u8; (CHUNK + SEG_HEADER_LEN) as usize];
    let mut from = tail.end;
    while from < limit {
        // Chunks overlap by a header, so a header across a chunk boundary is seen whole.
        let len = (limit - from).min(CHUNK + SEG_HEADER_LEN) as usize;
        let chunk = buf.get_mut(..len).unwrap_or_default();
        let got = read_full_at(file, chunk, from)?;
        let chunk = chunk.get(..got).unwrap_or_default();
        for hit in finder.find_iter(chunk) {
            // The nonce sits 16 bytes into a header.
            let Some(start) = hit.checked_sub(16) else {
                continue;
            };
            let Some(bytes) = chunk.get(start..start + SEG_HEADER_LEN as usize) else {
                continue;
            };
            let at = from + start as u64;
            let index = u64_at(bytes, 8).unwrap_or_default();
            let later = index > tail.next_index || (index == tail.next_index && at != tail.end);
            if later && SegHeader::decode(bytes, nonce, index).is_some() {
                return Ok(Some(at));
            }
        }
        if got < len {
            break;
        }
        from += CHUNK;
    }
    Ok(None)
}

/// Reads the file ranges `ranges` (from [`LogState::file_ranges`]) into one buffer: one read of
/// the span they cover, then the segment headers between them squeezed out.
pub(super) fn read_ranges(file: &File, ranges: &[Range<u64>]) -> io::Result<Vec<u8>> {
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
        return Ok(Vec::new());
    };
    let span =
        usize::try_from(last.end - first.start).map_err(|_| io::Error::other("read too large"))?;
    let mut buf = vec![0u8; span];
    if read_full_at(file, &mut buf, first.start)? < span {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "log-mode data file shorter than its segments",
        ));
    }
    let mut kept = 0usize;
    for range in ranges {
        let from = (range.start - first.start) as usize;
        let len = (range.end - range.start) as usize;
        buf.copy_within(from..from + len, kept);
        kept += len;
    }
    buf.truncate(kept);
    Ok(buf)
}

/// Writes zeros over the header a failed append may have left at `at`, so that no later walk
/// takes the failed segment for a valid one.
pub(super) fn clear_header(file: &File, at: u64) {
    let _ = file.write_all_at(&[0u8; SEG_HEADER_LEN as usize], at);
}

/// Clears the file header of the log-mode file at `path`, if it is one, so that every process
/// that has it open finds it no longer current (a damaged file that cannot be retired by a
/// segment). Anything else is left alone.
pub(super) fn invalidate(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut head = [0u8; FILE_HEADER_LEN];
    let got = read_full_at(&file, &mut head, 0)?;
    if head.get(..got).unwrap_or_default().starts_with(LOG_MAGIC) {
        file.write_all_at(&[0u8; FILE_HEADER_LEN], 0)?;
    }
    Ok(())
}

/// A nonce no client can predict: a value unique to this call, hashed with the process's
/// randomly keyed SipHash.
fn new_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(super::fsutil::unique_u64());
    hasher.finish()
}

/// Creates a log-mode data file at `path` holding `data` (one segment, none if empty), and syncs
/// it if asked; with `reused`, `path` is a spare file (`spare.rs`) whose old bytes stay after
/// them (their headers carry another nonce). The file becomes visible only by a rename after this
/// sync.
pub(super) fn create(path: &Path, data: &[Bytes], sync: bool, reused: bool) -> io::Result<()> {
    let nonce = new_nonce();
    let len = total_len(data);
    let mut head = vec![0u8; SEGMENTS_START as usize];
    if let Some(dst) = head.get_mut(..FILE_HEADER_LEN) {
        dst.copy_from_slice(&encode_file_header(nonce));
    }
    let mut bufs = vec![Bytes::from(head)];
    if len > 0 {
        let header = SegHeader {
            retired: false,
            index: 0,
            len,
            data_crc: parts_crc(data),
        };
        bufs.push(Bytes::copy_from_slice(&header.encode(nonce)));
        bufs.extend(data.iter().filter(|b| !b.is_empty()).cloned());
    }
    write_parts(path, &bufs, reused, sync)
}
