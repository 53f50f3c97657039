//! Mutations of sized data files (store format 2, `datafile.rs`): appends with a size record,
//! in-place writes, and unsynced writes with the size records they need and their confirmation.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::datafile::{DataFile, SizedSnapshot, Snapshot, DATA_START};
use super::fsutil::{parts_crc, pwrite_all_vectored};
use super::size_record::{SizeRecord, RECORD_LEN, SLOT_OFFSETS};
use crate::total_len;

impl DataFile {
    /// Writes `record` into the slot that does not hold the current one. If the current record
    /// is an unsynced one (`writes_unsynced`), that slot holds the last durable record, so the
    /// file is synced first.
    pub(super) fn put_record(&self, snap: &SizedSnapshot, record: &SizeRecord) -> io::Result<()> {
        if snap.record.unsynced {
            self.file.sync_data()?;
        }
        self.put_record_unchecked(snap, record)
    }

    fn put_record_unchecked(&self, snap: &SizedSnapshot, record: &SizeRecord) -> io::Result<()> {
        let other = SLOT_OFFSETS.get(1 - snap.slot.min(1)).copied().unwrap_or(0);
        self.file.write_all_at(&record.encode(), other)
    }

    /// Puts the other slot back as it was in `snap` (after a failed mutation). A distrusted
    /// record is cleared instead: the failed write may have left bytes that it would match.
    fn restore_other_slot(&self, snap: &SizedSnapshot) {
        let other = 1 - snap.slot.min(1);
        let offset = SLOT_OFFSETS.get(other).copied().unwrap_or(0);
        let bytes = match snap.header.slots.get(other).copied().flatten() {
            Some(old) if Some(old.seq) != self.distrusted() => old.encode(),
            _ => [0u8; RECORD_LEN],
        };
        let _ = self.file.write_all_at(&bytes, offset);
    }

    pub(super) fn append_sized(
        &self,
        snap: &SizedSnapshot,
        data: &[Bytes],
        sync: bool,
        prealloc_max: u64,
    ) -> io::Result<()> {
        let size = snap.record.size;
        let len = total_len(data);
        let new_size = size
            .checked_add(len)
            .filter(|s| *s <= u64::MAX - DATA_START)
            .ok_or_else(|| io::Error::other("object size overflows"))?;
        let record = SizeRecord {
            seq: snap.header.next_seq(),
            size: new_size,
            check_start: size,
            check_crc: parts_crc(data),
            retired: false,
            unsynced: false,
        };
        let written = self
            .grow_past(DATA_START + new_size, len, size, prealloc_max)
            .and_then(|()| pwrite_all_vectored(&self.file, data, DATA_START + size))
            .and_then(|()| self.put_record(snap, &record))
            .and_then(|()| self.sync(sync));
        if let Err(e) = written {
            self.restore_other_slot(snap);
            let _ = self.sync(sync);
            return Err(e);
        }
        Ok(())
    }

    /// Writes `data` at object offset `offset` in place (RADOS `write`), zero-filling a gap after
    /// the current end. Caller holds the stripe exclusively.
    ///
    /// When bytes below the current size change while the current record certifies some of
    /// them, a record that certifies nothing is made durable first, so that a crash in the
    /// middle cannot make the reader distrust (and drop) acknowledged bytes. A write that grows
    /// the object syncs its bytes before it records the new size (two syncs), so records written
    /// here never certify bytes.
    pub(super) fn write_in_place(
        &self,
        snap: &Snapshot,
        offset: u64,
        data: &[u8],
        sync: bool,
    ) -> io::Result<()> {
        let Snapshot::Sized(snap) = snap else {
            return Err(io::Error::other("in-place write to a log-mode data file"));
        };
        let size = snap.record.size;
        let end = write_end(offset, data)?;
        let mut snap = *snap;
        // A record that certifies bytes about to change, or an unsynced record (which the next
        // unsynced write may overwrite in place, while this write's bytes must stay durable),
        // is replaced first.
        if (offset < size && snap.record.check_start < size) || (sync && snap.record.unsynced) {
            self.confirm_size(&mut snap, sync)?;
        }
        let result = self.write_range(&snap, offset, end, data, sync);
        if result.is_err() && end > size {
            self.restore_other_slot(&snap);
            let _ = self.sync(sync);
        }
        result
    }

    /// Whether a write may go unsynced ([`super::DirStore`]'s `write_at_unsynced`,
    /// [`DataFile::write_unsynced`]): a sized file whose current record certifies none of the
    /// object's bytes. The write is a plain `pwrite` (with the zeros of a gap before it); if it
    /// extends the object, a record of the new size marked *unsynced* goes into the slot that
    /// does not hold the last durable record (the other slot, or the current one if that is
    /// itself unsynced), also without a sync. While an unsynced record is current the other slot
    /// holds the last durable one: every mutation that writes a record there syncs first, a
    /// durable write confirms the unsynced record before it writes (so the next unsynced write
    /// cannot overwrite a record that covers durable bytes), and [`DataFile::sync_unsynced`]
    /// confirms it. So a crash before the sync can leave each sector
    /// of the range (and of the gap) new or as the file held it before, and any size from the
    /// last durable one up, never losing bytes made durable earlier. Past the object's end the
    /// file holds zeros, or the leftovers of a failed append to the object.
    pub(super) fn writes_unsynced(snap: &Snapshot) -> bool {
        match snap {
            Snapshot::Sized(s) => s.record.check_start >= s.record.size,
            Snapshot::Log(_) => false,
        }
    }

    /// An unsynced write (see [`DataFile::writes_unsynced`], which must hold for `snap`): the
    /// bytes, and if they extend the object a record of the new size marked unsynced, in the
    /// slot of the current record if that is an unsynced one too, else in the other slot.
    /// Caller holds the stripe exclusively.
    pub(super) fn write_unsynced(
        &self,
        snap: &Snapshot,
        offset: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let Snapshot::Sized(snap) = snap else {
            return Err(io::Error::other("unsynced write to a log-mode data file"));
        };
        let end = write_end(offset, data)?;
        self.write_bytes(snap, offset, end, data)?;
        if end <= snap.record.size {
            return Ok(());
        }
        let record = SizeRecord {
            unsynced: true,
            ..SizeRecord::unchecked(snap.header.next_seq(), end)
        };
        if snap.record.unsynced {
            let slot = SLOT_OFFSETS.get(snap.slot).copied().unwrap_or(0);
            self.file.write_all_at(&record.encode(), slot)
        } else {
            self.put_record_unchecked(snap, &record)
        }
    }

    /// Whether the current record of `snap` is an unsynced one ([`DataFile::writes_unsynced`]).
    pub(super) fn has_unsynced_record(snap: &Snapshot) -> bool {
        matches!(snap, Snapshot::Sized(s) if s.record.unsynced)
    }

    /// Makes the unsynced writes before it durable: one `fdatasync`, and if the current record
    /// is an unsynced one, a copy of it not marked so in the other slot and a second sync.
    /// Caller holds the stripe exclusively.
    pub(super) fn sync_unsynced(&self, snap: &Snapshot) -> io::Result<()> {
        match snap {
            Snapshot::Sized(snap) if snap.record.unsynced => {
                let mut snap = *snap;
                self.confirm_size(&mut snap, true)
            }
            _ => self.file.sync_data(),
        }
    }

    /// Replaces the current record of `snap` by one of the same size that certifies nothing,
    /// made durable (with `sync`) before it returns, and makes it current in `snap`. An unsynced
    /// current record has its bytes synced first (`put_record`).
    fn confirm_size(&self, snap: &mut SizedSnapshot, sync: bool) -> io::Result<()> {
        let record = SizeRecord::unchecked(snap.header.next_seq(), snap.record.size);
        self.put_record(snap, &record)?;
        self.sync(sync)?;
        let other = 1 - snap.slot.min(1);
        if let Some(slot) = snap.header.slots.get_mut(other) {
            *slot = Some(record);
        }
        snap.slot = other;
        snap.record = record;
        Ok(())
    }

    /// Writes `data` at object offset `offset` (ending at `end`), zero-filling a gap after the
    /// object's end first. Syncs nothing.
    fn write_bytes(
        &self,
        snap: &SizedSnapshot,
        offset: u64,
        end: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let size = snap.record.size;
        if offset > size {
            // The gap may hold leftovers of failed appends; past the file's end it reads as zeros.
            let phys = self.file.metadata()?.len();
            self.write_zeros(
                DATA_START + size,
                (DATA_START + offset).min(phys.max(DATA_START)),
            )?;
        }
        self.file.write_all_at(data, DATA_START + offset)?;
        self.phys_len.fetch_max(DATA_START + end, Ordering::Relaxed);
        Ok(())
    }

    fn write_range(
        &self,
        snap: &SizedSnapshot,
        offset: u64,
        end: u64,
        data: &[u8],
        sync: bool,
    ) -> io::Result<()> {
        let size = snap.record.size;
        self.write_bytes(snap, offset, end, data)?;
        self.sync(sync)?;
        if end > size {
            // The new bytes are durable now, so the record certifies nothing and no opener ever
            // has to read (possibly megabytes of) them back to check it; an image object written
            // at random offsets would otherwise be checked at every reopen.
            self.put_record(snap, &SizeRecord::unchecked(snap.header.next_seq(), end))?;
            self.sync(sync)?;
        }
        Ok(())
    }
}

/// Where a write of `data` at object offset `offset` ends, if its file offsets fit in a `u64`.
fn write_end(offset: u64, data: &[u8]) -> io::Result<u64> {
    offset
        .checked_add(data.len() as u64)
        .filter(|e| *e <= u64::MAX - DATA_START)
        .ok_or_else(|| io::Error::other("write overflows"))
}
