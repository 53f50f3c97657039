//! Moving a CRC-32C register past a run of zero bytes in O(popcount(len)) table lookups.
//!
//! Ceph's entry CRC ([`crate::entry::ceph_crc32c`] with seed 0) is linear in the bytes: the CRC
//! of `x XOR y` is the CRC of `x` XOR the CRC of `y` for inputs of equal length. A writer can
//! therefore checksum an entry before it knows the entry's tid (with the tid's 8 bytes zero)
//! and correct the CRC afterwards: XOR in the CRC of the tid's bytes advanced past everything
//! that follows them, which [`crc32c_shift`] computes without touching those bytes. That keeps
//! the checksum of a whole payload out of a writer's critical section.
//!
//! Advancing the register by `2^k` zero bytes is a linear map on its 32 bits; each such map
//! (`k = 0..64`) is kept as four 256-entry tables (one per register byte), built once by
//! squaring the one-byte map. Advancing by `len` bytes applies the map of each bit set in
//! `len`.
//!
//! ```
//! use journal_core::crc_shift::crc32c_shift;
//! use journal_core::entry::ceph_crc32c;
//! let state = ceph_crc32c(0, b"entry header");
//! assert_eq!(crc32c_shift(state, 5000), ceph_crc32c(state, &[0u8; 5000]));
//! ```

use std::sync::OnceLock;

use crate::entry::ceph_crc32c;

/// One linear map on the CRC register, as lookup tables: `map(s)` is the XOR over the four
/// bytes `b_j` of `s` of `tables[j][b_j]`.
type ByteTables = [[u32; 256]; 4];

/// The maps advancing the register by `2^k` zero bytes, `k = 0..64` (lengths up to
/// `u64::MAX`; in practice an entry's tail is below 2^32 bytes).
static POWERS: OnceLock<Vec<ByteTables>> = OnceLock::new();

fn apply(tables: &ByteTables, s: u32) -> u32 {
    // A byte always indexes a 256-entry table (the `get`s cannot miss).
    tables.iter().zip(s.to_le_bytes()).fold(0, |acc, (t, b)| {
        acc ^ t.get(usize::from(b)).copied().unwrap_or(0)
    })
}

/// The tables of the linear map whose value on register bit `i` is `columns[i]`.
fn tables_of(columns: &[u32; 32]) -> ByteTables {
    let mut tables = [[0u32; 256]; 4];
    for (j, table) in tables.iter_mut().enumerate() {
        for (b, slot) in table.iter_mut().enumerate() {
            *slot = (0..8)
                .filter(|bit| b & (1 << bit) != 0)
                .filter_map(|bit| columns.get(8 * j + bit))
                .fold(0, |acc, c| acc ^ c);
        }
    }
    tables
}

fn powers() -> &'static [ByteTables] {
    POWERS.get_or_init(|| {
        // 256 KiB: built on the heap, not on the calling thread's stack.
        let mut out = vec![[[0u32; 256]; 4]; 64];
        // The one-byte map, column by column, from the CRC itself.
        let mut columns = [0u32; 32];
        for (i, c) in columns.iter_mut().enumerate() {
            *c = ceph_crc32c(1 << i, &[0]);
        }
        for slot in out.iter_mut() {
            *slot = tables_of(&columns);
            // Square: the map of twice as many bytes is this map applied twice.
            let mut next = [0u32; 32];
            for (i, n) in next.iter_mut().enumerate() {
                *n = apply(slot, apply(slot, 1 << i));
            }
            columns = next;
        }
        out
    })
}

/// `ceph_crc32c(state, &[0; len])`: the register `state` advanced past `len` zero bytes.
pub fn crc32c_shift(state: u32, len: u64) -> u32 {
    let mut s = state;
    let mut rest = len;
    for tables in powers().iter() {
        if rest == 0 {
            break;
        }
        if rest & 1 == 1 {
            s = apply(tables, s);
        }
        rest >>= 1;
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Against the CRC of real zero bytes.
        #[test]
        fn equals_the_crc_of_zeros(state in any::<u32>(), len in 0usize..70_000) {
            prop_assert_eq!(crc32c_shift(state, len as u64), ceph_crc32c(state, &vec![0u8; len]));
        }

        /// The use it is for: a CRC taken with 8 bytes zeroed, corrected afterwards, equals the
        /// CRC of the bytes with those 8 bytes filled in.
        #[test]
        fn patching_bytes_after_the_fact(
            data in proptest::collection::vec(any::<u8>(), 8..5000),
            at in any::<prop::sample::Index>(),
            value in any::<u64>(),
        ) {
            let at = at.index(data.len() - 7);
            let mut zeroed = data.clone();
            zeroed[at..at + 8].fill(0);
            let mut filled = zeroed.clone();
            filled[at..at + 8].copy_from_slice(&value.to_le_bytes());
            let tail = (data.len() - at - 8) as u64;
            let patched = ceph_crc32c(0, &zeroed)
                ^ crc32c_shift(ceph_crc32c(0, &value.to_le_bytes()), tail);
            prop_assert_eq!(patched, ceph_crc32c(0, &filled));
        }
    }
}
