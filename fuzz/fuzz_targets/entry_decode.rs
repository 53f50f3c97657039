//! `Entry::decode` on arbitrary bytes. Oracle: the entry format is canonical, so a decoded
//! entry must re-encode to exactly the bytes it was decoded from; errors must be consistent
//! with the input (a truncation error only when the input is shorter than the entry needs).
#![no_main]

use bytes::Bytes;
use journal_core::entry::{Entry, EntryError, ENTRY_OVERHEAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    match Entry::decode(&bytes) {
        Ok((entry, used)) => {
            assert_eq!(used, entry.encoded_len());
            assert!(used <= data.len());
            assert_eq!(&entry.to_bytes()[..], &data[..used]);
            // The limited decoder agrees when the limit admits the entry, and refuses otherwise.
            let len = entry.data.len() as u64;
            assert_eq!(
                Entry::decode_limited(&bytes, len),
                Ok((entry.clone(), used))
            );
            if len > 0 {
                assert!(matches!(
                    Entry::decode_limited(&bytes, len - 1),
                    Err(EntryError::TooLarge { .. })
                ));
            }
        }
        Err(EntryError::Truncated {
            offset,
            needed,
            available,
        }) => {
            assert_eq!(offset, 0);
            assert_eq!(available, data.len() as u64);
            assert!(needed > available);
            assert!(needed >= 25 && needed <= ENTRY_OVERHEAD as u64 + u64::from(u32::MAX));
        }
        Err(EntryError::BadPreamble { offset })
        | Err(EntryError::BadVersion { offset, .. })
        | Err(EntryError::ChecksumMismatch { offset, .. }) => assert_eq!(offset, 0),
        Err(e) => panic!("unexpected error {e:?}"),
    }
});
