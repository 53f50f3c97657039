//! Random identifiers: image ids, mirror uuids, global image ids.
//!
//! Ids only need to be unique, not unpredictable, so they come from std's per-process random
//! hasher keys mixed with the clock and a counter (no extra dependency).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// `digits` lowercase hex digits (at most 32).
pub fn random_hex(digits: usize) -> String {
    let mut s = format!("{:016x}{:016x}", random_u64(), random_u64());
    s.truncate(digits.min(32));
    s
}

/// A random RFC-4122-shaped uuid string (version 4 layout), e.g. for a site's mirror uuid.
pub fn random_uuid() -> String {
    let h = random_hex(32);
    let part = |a: usize, b: usize| h.get(a..b).unwrap_or("0").to_owned();
    format!(
        "{}-{}-4{}-a{}-{}",
        part(0, 8),
        part(8, 12),
        part(13, 16),
        part(17, 20),
        part(20, 32)
    )
}

/// A fresh image id: 12 hex digits, like librbd's.
pub fn new_image_id() -> String {
    random_hex(12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_uniqueness() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| new_image_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|i| i.len() == 12));
    }
}
