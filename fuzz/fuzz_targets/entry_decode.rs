//! `Entry::decode` on arbitrary bytes, or on a validly framed entry (so the success path is
//! reached: random bytes almost never carry a matching CRC) with damage and trailing bytes.
//! Oracle: the entry format is canonical, so a decoded entry must re-encode to exactly the bytes
//! it was decoded from; errors must be consistent with the input (a truncation error only when
//! the input is shorter than the entry needs); an undamaged framed entry decodes to itself.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use journal_core::entry::{Entry, EntryError, ENTRY_OVERHEAD};
use libfuzzer_sys::fuzz_target;
use rbdj_fuzz::{Damage, EntrySpec};

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Framed {
        entry: EntrySpec,
        damage: Option<Damage>,
        trailing: Vec<u8>,
    },
}

fuzz_target!(|input: Input| {
    let data = match input {
        Input::Raw(b) => b,
        Input::Framed {
            entry,
            damage,
            trailing,
        } => {
            let mut framed = entry.framed();
            if damage.is_none() {
                let mut whole = framed.clone();
                whole.extend_from_slice(&trailing);
                let (e, used) = Entry::decode(&Bytes::from(whole)).expect("valid entry");
                assert_eq!(used, framed.len());
                assert_eq!(
                    (e.tag_tid, e.entry_tid, &e.data[..]),
                    (u64::from(entry.tag), u64::from(entry.tid), &entry.data[..])
                );
            }
            if let Some(d) = damage {
                framed = d.apply(framed);
            }
            framed.extend_from_slice(&trailing);
            framed
        }
    };
    let data = &data[..];
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
