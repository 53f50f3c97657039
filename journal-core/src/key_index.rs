//! Finding an earlier copy of an entry by its (tag tid, entry tid) key.
//!
//! A reader meets the same key twice only when an append was repeated (Ceph's rule: the later
//! copy wins). Entries of a tag are appended in tid order, so an entry whose tid is above every
//! tid of its tag seen so far cannot repeat one; that is every entry of a well-formed object,
//! and the check is a lookup in a map of one node per tag (a B-tree: no hashing per entry and
//! no hash flooding by keys read off the store). Only a key at or below that bound needs the
//! index of every key's position, which is built then, once, from the caller's entries and
//! kept up to date until the caller drops it.

use std::collections::{BTreeMap, HashMap};

/// A (tag tid, entry tid) key.
pub(crate) type Key = (u64, u64);

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    /// Per tag, the highest entry tid inserted (a bound: removals leave it).
    max: BTreeMap<u64, u64>,
    /// Position of every key inserted and not removed, once needed.
    index: Option<HashMap<Key, u64>>,
}

impl KeyIndex {
    /// The position `key` was inserted under, if it is still there. `all` lists every key
    /// still inserted with its position; it is called only to build the index.
    pub(crate) fn find<I>(&mut self, key: Key, all: impl FnOnce() -> I) -> Option<u64>
    where
        I: IntoIterator<Item = (Key, u64)>,
    {
        if self.max.get(&key.0).is_none_or(|&max| key.1 > max) {
            return None;
        }
        let index = self
            .index
            .get_or_insert_with(|| all().into_iter().collect());
        index.get(&key).copied()
    }

    /// Records `key` at `position` (a key not present).
    pub(crate) fn insert(&mut self, key: Key, position: u64) {
        let max = self.max.entry(key.0).or_insert(key.1);
        *max = (*max).max(key.1);
        if let Some(index) = &mut self.index {
            index.insert(key, position);
        }
    }

    /// Forgets `key`'s position.
    pub(crate) fn remove(&mut self, key: Key) {
        if let Some(index) = &mut self.index {
            index.remove(&key);
        }
    }

    /// Drops the index (nothing is inserted any more); the bounds stay.
    pub(crate) fn drop_index(&mut self) {
        self.index = None;
    }
}
