//! The append cache of [`crate::RadosStore`]: what the store last knew about objects it appended
//! to. Only a hint: every write using it asserts the remembered version.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use parking_lot::Mutex;

/// What the store last knew about an object it appended to: its version, size and the omap keys
/// it had read (`None` = known absent). Valid exactly as long as the object's version is
/// `version`, which every write using it asserts; a stale entry only costs a retry.
#[derive(Debug, Clone)]
struct Known {
    version: u64,
    size: u64,
    omap: BTreeMap<String, Option<Bytes>>,
}

/// Largest number of objects remembered in [`crate::RadosStore`]'s append cache.
const MAX_KNOWN: usize = 4096;

/// State of an object as read before an optimistic write.
pub(crate) struct Observed {
    /// `None` if the object did not exist.
    pub(crate) version: Option<u64>,
    /// Data size (0 if missing).
    pub(crate) size: u64,
    /// Values of the keys read that exist.
    pub(crate) omap: BTreeMap<String, Bytes>,
}

/// Objects the store appended to, by id.
#[derive(Debug, Default)]
pub(crate) struct KnownObjects {
    map: Mutex<HashMap<String, Known>>,
}

impl KnownObjects {
    /// The cached state of `oid` if it covers every key in `keys`.
    pub(crate) fn state(&self, oid: &str, keys: &[&str]) -> Option<Observed> {
        let known = self.map.lock();
        let k = known.get(oid)?;
        let mut omap = BTreeMap::new();
        for key in keys {
            if let Some(value) = k.omap.get(*key)?.clone() {
                omap.insert((*key).to_owned(), value);
            }
        }
        Some(Observed {
            version: Some(k.version),
            size: k.size,
            omap,
        })
    }

    /// Records the state after a successful append that started from `seen`.
    pub(crate) fn remember(
        &self,
        oid: &str,
        version: u64,
        size: u64,
        keys: &[&str],
        seen: &Observed,
    ) {
        let omap = keys
            .iter()
            .map(|k| ((*k).to_owned(), seen.omap.get(*k).cloned()))
            .collect();
        let mut known = self.map.lock();
        if known.len() >= MAX_KNOWN && !known.contains_key(oid) {
            known.clear();
        }
        known.insert(
            oid.to_owned(),
            Known {
                version,
                size,
                omap,
            },
        );
    }

    /// Drops what is known about `oid`.
    pub(crate) fn forget(&self, oid: &str) {
        self.map.lock().remove(oid);
    }
}
