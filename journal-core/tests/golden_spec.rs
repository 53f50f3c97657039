//! Golden vectors: the expected bytes of spec §16.1 (the instances Ceph's `ceph-dencoder`
//! builds) and the CRC check values of §5.1. Every vector decodes to the value the spec
//! describes and re-encodes to the same bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use bytes::Bytes;
use journal_core::entry::{ceph_crc32c, Entry, EntryError};

/// Hex with spaces and `…`-free runs, as written in the spec tables.
fn hex(s: &str) -> Bytes {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {s}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect::<Vec<u8>>()
        .into()
}

#[test]
fn crc_check_values() {
    assert_eq!(ceph_crc32c(0, b"foo bar baz"), 4_119_623_852);
    assert_eq!(ceph_crc32c(0, b"foo bar baz"), 0xF58C_78AC);
    assert_eq!(ceph_crc32c(1234, b"foo bar baz"), 881_700_046);
    assert_eq!(ceph_crc32c(0, b"whiz bang boom"), 2_360_230_088);
}

#[test]
fn entry_1_empty_payload() {
    let bytes = hex("9397585326594131 01 7b00000000000000 0100000000000000 00000000 37c44f46");
    let (e, used) = Entry::decode(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(e, Entry::new(1, 123, Bytes::new()));
    assert_eq!(e.to_bytes(), bytes);
    assert_eq!(e.encoded_len(), 33);
}

#[test]
fn entry_2_with_payload() {
    let bytes =
        hex("9397585326594131 01 7b00000000000000 0200000000000000 04000000 64617461 d9ac335e");
    let (e, used) = Entry::decode(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(e, Entry::new(2, 123, Bytes::from_static(b"data")));
    assert_eq!(e.to_bytes(), bytes);
    // The payload is a slice of the input, not a copy.
    assert_eq!(e.data.as_ptr(), bytes[29..].as_ptr());
}

#[test]
fn entry_decode_reports_ceph_rejections() {
    let good =
        hex("9397585326594131 01 7b00000000000000 0200000000000000 04000000 64617461 d9ac335e");
    let mut bad_crc = good.to_vec();
    bad_crc[30] ^= 1;
    assert!(matches!(
        Entry::decode(&Bytes::from(bad_crc)),
        Err(EntryError::ChecksumMismatch {
            offset: 0,
            expected: 0x5e33_acd9,
            ..
        })
    ));
    let mut bad_version = good.to_vec();
    bad_version[8] = 2;
    assert_eq!(
        Entry::decode(&Bytes::from(bad_version)),
        Err(EntryError::BadVersion { offset: 0, got: 2 })
    );
    let mut bad_preamble = good.to_vec();
    bad_preamble[0] = 0;
    assert_eq!(
        Entry::decode(&Bytes::from(bad_preamble)),
        Err(EntryError::BadPreamble { offset: 0 })
    );
    assert_eq!(
        Entry::decode(&good.slice(..36)),
        Err(EntryError::Truncated {
            offset: 0,
            needed: 37,
            available: 36
        })
    );
    assert_eq!(
        Entry::decode(&good.slice(..26)),
        Err(EntryError::Truncated {
            offset: 0,
            needed: 29,
            available: 26
        })
    );
    assert_eq!(
        Entry::decode(&good.slice(..3)),
        Err(EntryError::Truncated {
            offset: 0,
            needed: 25,
            available: 3
        })
    );
    assert!(matches!(
        Entry::decode_limited(&good, 3),
        Err(EntryError::TooLarge {
            data_len: 4,
            max: 3,
            ..
        })
    ));
    assert!(Entry::decode_limited(&good, 4).is_ok());
}
