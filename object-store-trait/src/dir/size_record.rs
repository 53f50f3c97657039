//! Size records of sized data files (store format 2, see `datafile.rs`): their encoding, the
//! two-slot header, the check of the bytes a record certifies, and creation of such a file.

use std::fs::File;
use std::io;
use std::path::Path;

use bytes::Bytes;

use super::fsutil::{crc_matches, write_parts};
use super::omap_file::read_full_at;
use super::sealed::{intact, seal, u32_at, u64_at};
use crate::total_len;

/// File offset of the object's first byte.
pub(super) const DATA_START: u64 = 4096;
pub(super) const SLOT_OFFSETS: [u64; 2] = [0, 512];
pub(super) const RECORD_LEN: usize = 48;
pub(super) const HEADER_READ: usize = 512 + RECORD_LEN;
const MAGIC: &[u8; 8] = b"RBDJSIZE";
const FLAG_RETIRED: u32 = 1;
const FLAG_UNSYNCED: u32 = 2;

/// One size record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SizeRecord {
    pub(super) seq: u64,
    pub(super) size: u64,
    pub(super) check_start: u64,
    pub(super) check_crc: u32,
    pub(super) retired: bool,
    /// Written by an unsynced write (`DataFile::writes_unsynced`) and not yet confirmed by a
    /// sync: while such a record is current, the other slot holds the last durable record.
    pub(super) unsynced: bool,
}

impl SizeRecord {
    /// A record that certifies no bytes (their durability is established otherwise).
    pub(super) fn unchecked(seq: u64, size: u64) -> SizeRecord {
        SizeRecord {
            seq,
            size,
            check_start: size,
            check_crc: 0,
            retired: false,
            unsynced: false,
        }
    }

    pub(super) fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        let flags = if self.retired { FLAG_RETIRED } else { 0 }
            | if self.unsynced { FLAG_UNSYNCED } else { 0 };
        seal(
            &mut out,
            &[
                MAGIC,
                &self.seq.to_le_bytes(),
                &self.size.to_le_bytes(),
                &self.check_start.to_le_bytes(),
                &self.check_crc.to_le_bytes(),
                &flags.to_le_bytes(),
            ],
        );
        out
    }

    /// Decodes a record; `None` for anything that is not a whole, intact record.
    pub(super) fn decode(bytes: &[u8]) -> Option<SizeRecord> {
        if !intact(bytes, MAGIC, 40) {
            return None;
        }
        let flags = u32_at(bytes, 36)?;
        let record = SizeRecord {
            seq: u64_at(bytes, 8)?,
            size: u64_at(bytes, 16)?,
            check_start: u64_at(bytes, 24)?,
            check_crc: u32_at(bytes, 32)?,
            retired: flags & FLAG_RETIRED != 0,
            unsynced: flags & FLAG_UNSYNCED != 0,
        };
        (record.check_start <= record.size && record.size <= u64::MAX - DATA_START)
            .then_some(record)
    }
}

/// Both slots of a header as read from the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) slots: [Option<SizeRecord>; 2],
}

impl Header {
    pub(super) fn read(file: &File) -> io::Result<Header> {
        let mut buf = [0u8; HEADER_READ];
        let got = read_full_at(file, &mut buf, 0)?;
        Ok(Header::parse(&buf, got))
    }

    /// The header in the first `got` bytes of `buf` (the first [`HEADER_READ`] bytes of a file).
    pub(super) fn parse(buf: &[u8; HEADER_READ], got: usize) -> Header {
        let slot = |i: usize| {
            let at = usize::try_from(*SLOT_OFFSETS.get(i)?).ok()?;
            SizeRecord::decode(buf.get(at..(at + RECORD_LEN).min(got))?)
        };
        Header {
            slots: [slot(0), slot(1)],
        }
    }

    /// Valid records, newest first, as `(slot, record)`.
    pub(super) fn newest_first(&self) -> Vec<(usize, SizeRecord)> {
        let mut out: Vec<(usize, SizeRecord)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| (i, r)))
            .collect();
        out.sort_by_key(|(_, r)| std::cmp::Reverse(r.seq));
        out
    }

    /// Sequence number for the next record.
    pub(super) fn next_seq(&self) -> u64 {
        self.slots
            .iter()
            .flatten()
            .map(|r| r.seq)
            .max()
            .unwrap_or(0)
            .wrapping_add(1)
    }
}

/// Whether `record` describes bytes that are really in `file` (of length `phys`).
pub(super) fn certified(file: &File, record: &SizeRecord, phys: u64) -> io::Result<bool> {
    if DATA_START.saturating_add(record.size) > phys {
        return Ok(false);
    }
    crc_matches(
        file,
        DATA_START + record.check_start,
        record.size - record.check_start,
        record.check_crc,
    )
}

/// Creates the data file of a new object (or a replacement) at `path` holding `data`, and
/// syncs it if asked. Its record certifies nothing: the file becomes visible only by a rename
/// after this sync.
pub(super) fn create(path: &Path, data: &[Bytes], sync: bool) -> io::Result<()> {
    let size = total_len(data);
    let mut header = vec![0u8; DATA_START as usize];
    if let Some(slot) = header.get_mut(..RECORD_LEN) {
        slot.copy_from_slice(&SizeRecord::unchecked(1, size).encode());
    }
    let mut bufs = Vec::with_capacity(data.len() + 1);
    bufs.push(Bytes::from(header));
    bufs.extend(data.iter().filter(|b| !b.is_empty()).cloned());
    write_parts(path, &bufs, false, sync)
}
