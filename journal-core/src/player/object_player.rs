//! The read cursor of one data object (the role of Ceph's `ObjectPlayer`).
//!
//! An [`ObjectPlayer`] reads its object in chunks from a resume offset, scans each chunk with
//! [`scan_object`] (keeping an incomplete tail to be completed by the next read), and queues the
//! decoded entries until the [`super::Player`] takes them. It never reads on its own: the player
//! calls [`ObjectPlayer::fetch`] only for the object at the head of a splay offset whose queue is
//! empty, which is what bounds the memory held.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use object_store_trait::{ObjectStore, StoreError};

use crate::entry::{scan_object, Entry, ENTRY_DATA_OFFSET, ENTRY_OVERHEAD, PREAMBLE_BYTES};
use crate::key_index::KeyIndex;

/// Smallest read the player issues (it also reads at least what an incomplete entry needs).
pub(crate) const MIN_FETCH_BYTES: u64 = 4096;

/// Per-object read state.
#[derive(Debug)]
pub(crate) struct ObjectPlayer {
    object_number: u64,
    oid: String,
    /// Absolute offset of the next byte to read.
    read_off: u64,
    /// Bytes read but not parsed yet (an incomplete entry or pad); they start at
    /// `read_off - tail.len()`.
    tail: Bytes,
    /// Decoded entries not yet taken, in object order, with their sequence numbers.
    entries: VecDeque<Entry>,
    /// Sequence number of the front of `entries` (= entries taken so far).
    popped: u64,
    /// Sequence number each queued (tag tid, entry tid) was queued under.
    keys: KeyIndex,
    /// Per tag, the highest entry tid taken from this object.
    taken_max: BTreeMap<u64, u64>,
    /// Framed bytes of the queued entries plus the tail.
    buffered: u64,
    /// The last read reached the end of the object (or the object was missing) and no re-read
    /// was asked for since.
    caught_up: bool,
    /// The last read returned bytes but left an incomplete tail: a later re-read may complete
    /// it (Ceph's `REFETCH_STATE_REQUIRED`). Cleared by a read that returns nothing.
    refetch_required: bool,
    /// Absolute offset of the first byte that is neither an entry nor padding. Entries after
    /// it are not queued and the object is not read any further.
    corrupt_at: Option<u64>,
}

impl ObjectPlayer {
    /// A cursor at the start of object `object_number`, named `oid`. Reads nothing yet.
    pub(crate) fn new(object_number: u64, oid: String) -> Self {
        ObjectPlayer {
            object_number,
            oid,
            read_off: 0,
            tail: Bytes::new(),
            entries: VecDeque::new(),
            popped: 0,
            keys: KeyIndex::default(),
            taken_max: BTreeMap::new(),
            buffered: 0,
            caught_up: false,
            refetch_required: false,
            corrupt_at: None,
        }
    }

    pub(crate) fn object_number(&self) -> u64 {
        self.object_number
    }

    pub(crate) fn oid(&self) -> &str {
        &self.oid
    }

    /// True when no entry is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// Takes the front entry.
    pub(crate) fn pop_front(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.popped += 1;
        if self.entries.is_empty() {
            self.keys.drop_index();
        } else {
            self.keys.remove((entry.tag_tid, entry.entry_tid));
        }
        let max = self
            .taken_max
            .entry(entry.tag_tid)
            .or_insert(entry.entry_tid);
        *max = (*max).max(entry.entry_tid);
        self.buffered = self.buffered.saturating_sub(entry.encoded_len() as u64);
        Some(entry)
    }

    pub(crate) fn caught_up(&self) -> bool {
        self.caught_up
    }

    pub(crate) fn refetch_required(&self) -> bool {
        self.refetch_required
    }

    pub(crate) fn corrupt_at(&self) -> Option<u64> {
        self.corrupt_at
    }

    /// Bytes held: queued entries (framed size) plus the unparsed tail.
    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.buffered
    }

    /// Forgets that the end of the object was reached, so the next [`ObjectPlayer::fetch`]
    /// looks for bytes appended since (a live tailer's poll, or a new active set).
    pub(crate) fn mark_reread(&mut self) {
        if self.corrupt_at.is_none() {
            self.caught_up = false;
        }
    }

    /// How many bytes the next read asks for: the chunk minus what the tail already holds, but
    /// at least what the incomplete entry in the tail still needs (up to `max`, so a garbage
    /// length field cannot ask for gigabytes), and at least [`MIN_FETCH_BYTES`].
    fn read_len(&self, chunk: u64, max: u64) -> u64 {
        let tail = self.tail.len() as u64;
        let mut len = chunk.saturating_sub(tail).max(MIN_FETCH_BYTES);
        if self.tail.get(..PREAMBLE_BYTES.len()) == Some(&PREAMBLE_BYTES[..]) {
            let data_len = self
                .tail
                .get(ENTRY_DATA_OFFSET - 4..ENTRY_DATA_OFFSET)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes);
            if let Some(data_len) = data_len {
                let total = ENTRY_OVERHEAD as u64 + u64::from(data_len);
                len = len.max(total.saturating_sub(tail).min(max));
            }
        }
        len
    }

    /// Reads the next chunk (see [`ObjectPlayer::read_len`]; `max` bounds one read) and queues
    /// the entries it completes. A missing object reads as empty. Returns the number of new
    /// bytes read. Does nothing on an object found corrupt.
    pub(crate) fn fetch(
        &mut self,
        store: &dyn ObjectStore,
        chunk: u64,
        max: u64,
    ) -> Result<u64, StoreError> {
        if self.corrupt_at.is_some() {
            self.caught_up = true;
            return Ok(0);
        }
        let len = self.read_len(chunk, max);
        let data = match store.read(&self.oid, self.read_off, len) {
            Ok(data) => data,
            Err(StoreError::NotFound { .. }) => Bytes::new(),
            Err(e) => return Err(e),
        };
        let n = data.len() as u64;
        self.caught_up = n < len;
        if n == 0 {
            self.refetch_required = false;
            return Ok(0);
        }
        let base = self.read_off.saturating_sub(self.tail.len() as u64);
        self.read_off = self.read_off.saturating_add(n);
        let buf = if self.tail.is_empty() {
            data
        } else {
            let mut joined = BytesMut::with_capacity(self.tail.len() + data.len());
            joined.extend_from_slice(&self.tail);
            joined.extend_from_slice(&data);
            joined.freeze()
        };
        self.buffered = self.buffered.saturating_sub(self.tail.len() as u64);
        self.tail = Bytes::new();

        let scan = scan_object(&buf, base);
        let corrupt = scan.corrupt.first().map(|r| r.start);
        for scanned in scan.entries {
            if corrupt.is_some_and(|c| scanned.offset >= c) {
                break;
            }
            self.push(scanned.entry);
        }
        if let Some(offset) = corrupt {
            self.corrupt_at = Some(offset);
            self.caught_up = true;
            self.refetch_required = false;
            return Ok(n);
        }
        let consumed = usize::try_from(scan.consumed.saturating_sub(base)).unwrap_or(usize::MAX);
        self.tail = buf.slice(consumed.min(buf.len())..);
        self.buffered = self.buffered.saturating_add(self.tail.len() as u64);
        self.refetch_required = !self.tail.is_empty();
        Ok(n)
    }

    /// Queues a decoded entry. A (tag, entry) pair already queued is replaced in place (the
    /// later copy wins, Ceph's rule; found with a [`KeyIndex`]). An entry whose tid is not
    /// above every entry of its tag already taken from this object is a copy of a delivered
    /// one (entries of a tag are appended to an object in tid order) and is dropped; this
    /// keeps the bookkeeping to the queued entries plus two numbers per tag.
    fn push(&mut self, entry: Entry) {
        let key = (entry.tag_tid, entry.entry_tid);
        let size = entry.encoded_len() as u64;
        let (popped, entries) = (self.popped, &self.entries);
        let queued = self.keys.find(key, || {
            (popped..)
                .zip(entries.iter().map(|e| (e.tag_tid, e.entry_tid)))
                .map(|(s, k)| (k, s))
        });
        if let Some(seq) = queued {
            let slot = seq
                .checked_sub(self.popped)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.entries.get_mut(i));
            if let Some(slot) = slot {
                self.buffered = self
                    .buffered
                    .saturating_sub(slot.encoded_len() as u64)
                    .saturating_add(size);
                *slot = entry;
            }
            return;
        }
        if self
            .taken_max
            .get(&entry.tag_tid)
            .is_some_and(|&max| entry.entry_tid <= max)
        {
            return;
        }
        let seq = self.popped.saturating_add(self.entries.len() as u64);
        self.keys.insert(key, seq);
        self.entries.push_back(entry);
        self.buffered = self.buffered.saturating_add(size);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use object_store_trait::{AppendGuard, MemStore};

    fn entry(tag: u64, tid: u64, len: usize) -> Entry {
        Entry::new(tag, tid, Bytes::from(vec![tid as u8; len]))
    }

    fn append(store: &MemStore, oid: &str, e: &Entry) {
        store
            .append(oid, &[e.to_bytes()], &AppendGuard::none())
            .unwrap();
    }

    fn drain(p: &mut ObjectPlayer) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        while let Some(e) = p.pop_front() {
            out.push((e.tag_tid, e.entry_tid));
        }
        out
    }

    #[test]
    fn missing_object_is_empty_and_caught_up() {
        let store = MemStore::new();
        let mut p = ObjectPlayer::new(0, "o".into());
        assert_eq!(p.fetch(&store, 4096, 1 << 30).unwrap(), 0);
        assert!(p.is_empty() && p.caught_up() && !p.refetch_required());
    }

    /// Entries larger than a chunk are completed by reading what the length field says; small
    /// chunks deliver every entry exactly once.
    #[test]
    fn chunked_reads_reassemble_entries() {
        let store = MemStore::new();
        let entries: Vec<Entry> = (0..20)
            .map(|i| entry(1, i, 1000 + 700 * i as usize))
            .collect();
        for e in &entries {
            append(&store, "o", e);
        }
        let mut p = ObjectPlayer::new(0, "o".into());
        let mut got = Vec::new();
        let mut max_buffered = 0;
        while !p.caught_up() {
            p.fetch(&store, MIN_FETCH_BYTES, 1 << 30).unwrap();
            max_buffered = max_buffered.max(p.buffered_bytes());
            got.extend(drain(&mut p));
            assert_eq!(p.buffered_bytes(), p.tail.len() as u64);
        }
        let want: Vec<(u64, u64)> = entries.iter().map(|e| (1, e.entry_tid)).collect();
        assert_eq!(got, want);
        // Never more than one chunk or one entry (the largest is 1000+700*19+33 bytes).
        assert!(max_buffered <= (1000 + 700 * 19 + 33).max(MIN_FETCH_BYTES));
    }

    #[test]
    fn partial_tail_is_completed_by_a_later_read() {
        let store = MemStore::new();
        let a = entry(1, 0, 10).to_bytes();
        let b = entry(1, 4, 10).to_bytes();
        store
            .append("o", &[a.clone(), b.slice(..20)], &AppendGuard::none())
            .unwrap();
        let mut p = ObjectPlayer::new(0, "o".into());
        p.fetch(&store, 1 << 20, 1 << 30).unwrap();
        assert!(p.caught_up() && p.refetch_required());
        assert_eq!(drain(&mut p), vec![(1, 0)]);
        store
            .append("o", &[b.slice(20..)], &AppendGuard::none())
            .unwrap();
        p.mark_reread();
        p.fetch(&store, 1 << 20, 1 << 30).unwrap();
        assert!(!p.refetch_required());
        assert_eq!(drain(&mut p), vec![(1, 4)]);
        assert_eq!(p.buffered_bytes(), 0);
    }

    #[test]
    fn duplicate_replaces_queued_copy_and_drops_delivered_one() {
        let store = MemStore::new();
        let first = Entry::new(1, 0, Bytes::from_static(b"first"));
        let second = Entry::new(1, 0, Bytes::from_static(b"second"));
        let other = entry(1, 4, 3);
        append(&store, "o", &first);
        let mut p = ObjectPlayer::new(0, "o".into());
        p.fetch(&store, 1 << 20, 1 << 30).unwrap();
        append(&store, "o", &other);
        append(&store, "o", &second);
        p.mark_reread();
        p.fetch(&store, 1 << 20, 1 << 30).unwrap();
        // Replaced in place: still first in the queue, with the later payload.
        assert_eq!(p.pop_front().unwrap(), second);
        assert_eq!(p.pop_front().unwrap(), other);
        // A third copy after delivery is dropped.
        append(&store, "o", &first);
        p.mark_reread();
        p.fetch(&store, 1 << 20, 1 << 30).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.buffered_bytes(), 0);
    }

    #[test]
    fn corruption_keeps_the_valid_prefix_and_stops() {
        let store = MemStore::new();
        let a = entry(1, 0, 10).to_bytes();
        let b = entry(1, 4, 10).to_bytes();
        let garbage = Bytes::from_static(&[0xff; 16]);
        store
            .append("o", &[a.clone(), garbage, b], &AppendGuard::none())
            .unwrap();
        let mut p = ObjectPlayer::new(0, "o".into());
        p.fetch(&store, 1 << 20, 1 << 30).unwrap();
        assert_eq!(p.corrupt_at(), Some(a.len() as u64));
        assert_eq!(drain(&mut p), vec![(1, 0)]);
        p.mark_reread();
        assert!(p.caught_up());
        assert_eq!(p.fetch(&store, 1 << 20, 1 << 30).unwrap(), 0);
    }

    /// The queue against a plain model of its rules (a vector searched linearly): a key
    /// already queued is replaced in place, a tid at or below the highest taken of its tag is
    /// dropped, anything else is appended; whatever order and copies the entries come in.
    mod model {
        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Op {
            Push(u64, u64, u8),
            Pop,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0..3u64, 0..12u64, any::<u8>()).prop_map(|(t, e, b)| Op::Push(t, e, b)),
                2 => Just(Op::Pop),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn queue_follows_the_model(ops in proptest::collection::vec(op(), 1..80)) {
                let mut p = ObjectPlayer::new(0, "o".into());
                let mut queue: Vec<Entry> = Vec::new();
                let mut taken: Vec<(u64, u64)> = Vec::new();
                for op in ops {
                    match op {
                        Op::Push(tag, tid, b) => {
                            let e = Entry::new(tag, tid, Bytes::from(vec![b; 1 + usize::from(b % 5)]));
                            p.push(e.clone());
                            if let Some(q) = queue
                                .iter_mut()
                                .find(|q| (q.tag_tid, q.entry_tid) == (tag, tid))
                            {
                                *q = e;
                            } else if !taken.iter().any(|&(t, max)| t == tag && tid <= max) {
                                queue.push(e);
                            }
                        }
                        Op::Pop => {
                            let want = (!queue.is_empty()).then(|| queue.remove(0));
                            if let Some(w) = &want {
                                match taken.iter_mut().find(|(t, _)| *t == w.tag_tid) {
                                    Some((_, max)) => *max = (*max).max(w.entry_tid),
                                    None => taken.push((w.tag_tid, w.entry_tid)),
                                }
                            }
                            prop_assert_eq!(p.pop_front(), want);
                        }
                    }
                    let bytes: u64 = queue.iter().map(|e| e.encoded_len() as u64).sum();
                    prop_assert_eq!(p.buffered_bytes(), bytes);
                }
            }
        }
    }
}
