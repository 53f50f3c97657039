//! `ceph_crc32c` against a bit-at-a-time CRC-32C written from the definition (reflected
//! polynomial 0x82F63B78, the seed as the starting register, no final XOR): every length around
//! the point where the implementation changes method, random seeds, and chaining.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use journal_core::entry::ceph_crc32c;
use proptest::prelude::*;

fn reference(seed: u32, data: &[u8]) -> u32 {
    let mut crc = seed;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn bytes(len: usize, salt: u64) -> Vec<u8> {
    let mut x = salt | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn every_length_up_to_2_kib_matches_the_definition() {
    for len in 0..2048 {
        let data = bytes(len, len as u64);
        for seed in [0, u32::MAX, 0x1234_5678] {
            assert_eq!(
                ceph_crc32c(seed, &data),
                reference(seed, &data),
                "len {len}"
            );
        }
    }
}

proptest! {
    #[test]
    fn large_inputs_match_the_definition(len in 0usize..70_000, seed in any::<u32>(), salt in any::<u64>()) {
        let data = bytes(len, salt);
        prop_assert_eq!(ceph_crc32c(seed, &data), reference(seed, &data));
    }

    #[test]
    fn chaining_is_checksumming_the_concatenation(a in 0usize..3000, b in 0usize..3000, seed in any::<u32>()) {
        let data = bytes(a + b, seed.into());
        let (first, second) = data.split_at(a);
        prop_assert_eq!(ceph_crc32c(ceph_crc32c(seed, first), second), ceph_crc32c(seed, &data));
    }
}
