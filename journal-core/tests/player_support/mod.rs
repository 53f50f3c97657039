//! Shared helpers of the player tests: a tiny journal writer that places framed entries into
//! objects by hand (independent of any writer code in the crate), and a drain loop.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    missing_docs
)]

use std::sync::Arc;

use bytes::Bytes;
use journal_core::entry::Entry;
use journal_core::header::{ObjectPosition, ObjectSetPosition};
use journal_core::layout::{data_oid, Layout};
use journal_core::player::{
    JournalInfo, PlayMode, Player, PlayerError, PlayerEvent, PlayerOptions,
};
use object_store_trait::{AppendGuard, MemStore, ObjectStore};

pub const JOURNAL_ID: &str = "jtest";
pub const POOL: i64 = 3;

/// Where a test put an entry: (tag, entry tid, object number).
pub type Placed = (u64, u64, u64);

/// Writes entries straight into objects of a `MemStore`.
pub struct TestJournal {
    pub store: Arc<MemStore>,
    pub layout: Layout,
}

impl TestJournal {
    pub fn new(order: u8, width: u8) -> Self {
        TestJournal {
            store: Arc::new(MemStore::new()),
            layout: Layout::new(order, width).unwrap(),
        }
    }

    pub fn oid(&self, object_number: u64) -> String {
        data_oid(POOL, JOURNAL_ID, object_number)
    }

    /// Appends raw bytes to object `n`.
    pub fn raw(&self, n: u64, bytes: &[u8]) {
        self.store
            .append(
                &self.oid(n),
                &[Bytes::copy_from_slice(bytes)],
                &AppendGuard::none(),
            )
            .unwrap();
    }

    /// Appends the framed entry (tag, tid, payload) to object `n`.
    pub fn put_payload(&self, n: u64, tag: u64, tid: u64, payload: &[u8]) -> Entry {
        let e = Entry::new(tag, tid, Bytes::copy_from_slice(payload));
        self.raw(n, &e.to_bytes());
        e
    }

    /// Appends entry (tag, tid) with a payload derived from both to object `n`.
    pub fn put(&self, n: u64, tag: u64, tid: u64) -> Placed {
        self.put_payload(n, tag, tid, &payload(tag, tid, 10));
        (tag, tid, n)
    }

    /// Appends zeros up to the next multiple of 8 of object `n`'s size, plus `extra_words` * 8.
    pub fn pad(&self, n: u64, extra_words: usize) {
        let size = self.size(n);
        let fill = (8 - size % 8) % 8;
        self.raw(n, &vec![0u8; fill as usize + 8 * extra_words]);
    }

    pub fn size(&self, n: u64) -> u64 {
        self.store.stat(&self.oid(n)).map(|s| s.size).unwrap_or(0)
    }

    pub fn info(&self, active_set: u64) -> JournalInfo {
        JournalInfo {
            journal_id: JOURNAL_ID.into(),
            pool_id_for_names: POOL,
            layout: self.layout,
            active_set,
        }
    }

    pub fn player(&self, active_set: u64, start: &ObjectSetPosition, mode: PlayMode) -> Player {
        let options = PlayerOptions {
            mode,
            ..PlayerOptions::default()
        };
        self.player_with(active_set, start, options)
    }

    pub fn player_with(
        &self,
        active_set: u64,
        start: &ObjectSetPosition,
        options: PlayerOptions,
    ) -> Player {
        let store: Arc<dyn ObjectStore> = self.store.clone();
        Player::new(store, self.info(active_set), start, options)
    }
}

/// A payload that names its entry, so a mix-up shows.
pub fn payload(tag: u64, tid: u64, len: usize) -> Vec<u8> {
    let mut p = format!("t{tag}e{tid}:").into_bytes();
    p.resize(len.max(p.len()), (tid % 251) as u8);
    p
}

/// Plays until `End` or an error; returns what was delivered and the error, if any.
pub fn drain(player: &mut Player) -> (Vec<Placed>, Option<PlayerError>) {
    let mut out = Vec::new();
    loop {
        match player.next() {
            Ok(PlayerEvent::Entry(e)) => {
                out.push((e.entry.tag_tid, e.entry.entry_tid, e.object_number));
            }
            Ok(PlayerEvent::End) => return (out, None),
            Err(err) => return (out, Some(err)),
        }
    }
}

/// Plays to `End`, failing the test on an error.
pub fn drain_ok(player: &mut Player) -> Vec<Placed> {
    let (out, err) = drain(player);
    assert!(err.is_none(), "unexpected error {err:?} after {out:?}");
    out
}

/// A commit position written by hand: the given (object, tag, entry) triples, newest first.
pub fn position(newest_first: &[Placed]) -> ObjectSetPosition {
    ObjectSetPosition {
        object_positions: newest_first
            .iter()
            .map(|&(tag_tid, entry_tid, object_number)| ObjectPosition {
                object_number,
                tag_tid,
                entry_tid,
            })
            .collect(),
    }
}

/// The spec's fold (§7.2) of a consumed prefix, written naively: newest first, first
/// occurrence per splay offset.
pub fn fold(consumed: &[Placed], width: u8) -> ObjectSetPosition {
    let mut kept: Vec<Placed> = Vec::new();
    for p in consumed.iter().rev() {
        if !kept
            .iter()
            .any(|q| q.2 % u64::from(width) == p.2 % u64::from(width))
        {
            kept.push(*p);
        }
    }
    position(&kept)
}
