//! Omap batches and guards, shared by every backend.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::{GuardFailure, Result, StoreError};

/// A comparison an omap guard makes against the stored value of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OmapCmp {
    /// The key must not exist.
    Absent,
    /// The key must exist (any value).
    Present,
    /// The key must exist with exactly this value.
    Equals(Bytes),
    /// The key must exist and hold a little-endian `u64` (8 bytes) that is `<=` this number.
    U64AtMost(u64),
    /// The key must exist and hold a little-endian `u64` (8 bytes) that is `>=` this number.
    U64AtLeast(u64),
}

/// A condition on one omap key; a batch applies only if all its guards hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmapGuard {
    /// The key compared.
    pub key: String,
    /// The comparison.
    pub cmp: OmapCmp,
}

/// An atomic omap update: guards, then removes, then sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OmapBatch {
    /// Conditions that must all hold.
    pub guards: Vec<OmapGuard>,
    /// Keys to remove (missing keys are ignored).
    pub removes: Vec<String>,
    /// Keys to set, in order (a later set of the same key wins).
    pub sets: Vec<(String, Bytes)>,
}

impl OmapBatch {
    /// An empty batch.
    pub fn new() -> Self {
        OmapBatch::default()
    }

    /// Adds a guard.
    pub fn guard(&mut self, key: impl Into<String>, cmp: OmapCmp) -> &mut Self {
        self.guards.push(OmapGuard {
            key: key.into(),
            cmp,
        });
        self
    }

    /// Requires `key` to be absent.
    pub fn assert_absent(&mut self, key: impl Into<String>) -> &mut Self {
        self.guard(key, OmapCmp::Absent)
    }

    /// Requires `key` to be present.
    pub fn assert_present(&mut self, key: impl Into<String>) -> &mut Self {
        self.guard(key, OmapCmp::Present)
    }

    /// Requires `key` to hold exactly `value`.
    pub fn assert_equals(&mut self, key: impl Into<String>, value: Bytes) -> &mut Self {
        self.guard(key, OmapCmp::Equals(value))
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: Bytes) -> &mut Self {
        self.sets.push((key.into(), value));
        self
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl Into<String>) -> &mut Self {
        self.removes.push(key.into());
        self
    }

    /// True if the batch changes nothing (it may still carry guards).
    pub fn is_noop(&self) -> bool {
        self.removes.is_empty() && self.sets.is_empty()
    }

    /// Applies removes then sets to `map` (guards must have been checked already).
    pub fn apply_to(&self, map: &mut BTreeMap<String, Bytes>) {
        for key in &self.removes {
            map.remove(key);
        }
        for (key, value) in &self.sets {
            map.insert(key.clone(), value.clone());
        }
    }
}

/// Checks `guards` against `map`; the error names the first guard that failed.
pub fn check_guards(oid: &str, map: &BTreeMap<String, Bytes>, guards: &[OmapGuard]) -> Result<()> {
    for guard in guards {
        let stored = map.get(&guard.key);
        let failure = match (&guard.cmp, stored) {
            (OmapCmp::Absent, Some(_)) => Some(GuardFailure::Exists),
            (OmapCmp::Absent, None) => None,
            (_, None) => Some(GuardFailure::Missing),
            (OmapCmp::Present, Some(_)) => None,
            (OmapCmp::Equals(want), Some(have)) => {
                (want != have).then_some(GuardFailure::ValueMismatch)
            }
            (OmapCmp::U64AtMost(limit), Some(have)) => read_u64(have)
                .is_none_or(|v| v > *limit)
                .then_some(GuardFailure::Comparison),
            (OmapCmp::U64AtLeast(limit), Some(have)) => read_u64(have)
                .is_none_or(|v| v < *limit)
                .then_some(GuardFailure::Comparison),
        };
        if let Some(reason) = failure {
            return Err(StoreError::GuardFailed {
                oid: oid.to_owned(),
                key: guard.key.clone(),
                reason,
            });
        }
    }
    Ok(())
}

fn read_u64(value: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = value.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Selects the entries of `map` for [`crate::ObjectStore::omap_list`].
pub(crate) fn list_range(
    map: &BTreeMap<String, Bytes>,
    start_after: &str,
    prefix: &str,
    max: usize,
) -> Vec<(String, Bytes)> {
    use std::ops::Bound;
    let lower = if start_after < prefix {
        Bound::Included(prefix.to_owned())
    } else {
        Bound::Excluded(start_after.to_owned())
    };
    map.range((lower, Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(prefix))
        .take(max)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
