#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

#[test]
fn envelope_skips_unknown_trailing_fields() {
    // v2 payload with an extra u32 a v1 decoder does not know.
    let mut enc = Encoder::new();
    enc.envelope(2, 1, |e| {
        e.u64(7);
        e.u32(99);
    });
    let mut dec = Decoder::new(enc.finish());
    let v = dec.envelope("t", 1, |d, _| d.u64("x")).unwrap();
    assert_eq!(v, 7);
    assert_eq!(dec.remaining(), 0);
}

#[test]
fn envelope_refuses_newer_compat() {
    let mut enc = Encoder::new();
    enc.envelope(3, 2, |e| e.u8(0));
    let mut dec = Decoder::new(enc.finish());
    let err = dec.envelope("t", 1, |d, _| d.u8("x")).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::IncompatibleVersion {
            struct_compat: 2,
            ..
        }
    ));
}

#[test]
fn envelope_overrun_and_truncation() {
    let bytes = Bytes::from_static(&[1, 1, 2, 0, 0, 0, 5, 6]);
    let err = Decoder::new(bytes.clone())
        .envelope("t", 1, |d, _| d.u32("x"))
        .unwrap_err();
    assert!(matches!(err, DecodeError::EnvelopeOverrun { .. }));
    let err = Decoder::new(bytes.slice(..7))
        .envelope("t", 1, |d, _| d.u8("x"))
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }));
}

#[test]
fn huge_list_count_does_not_allocate() {
    let bytes = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    let err = Decoder::new(bytes)
        .list("l", 8, |d| d.u64("x"))
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }));
}

proptest! {
    #[test]
    fn primitives_round_trip(a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(),
                             e in any::<i32>(), f in any::<i64>(), s in ".*", blob in proptest::collection::vec(any::<u8>(), 0..64),
                             opt in proptest::option::of(any::<u64>()), list in proptest::collection::vec(any::<u64>(), 0..8)) {
        let mut enc = Encoder::new();
        enc.u8(a); enc.u16(b); enc.u32(c); enc.u64(d); enc.i32(e); enc.i64(f);
        enc.string(&s); enc.blob(&blob);
        enc.optional(opt.as_ref(), |e, v| e.u64(*v));
        enc.list(&list, |e, v| e.u64(*v));
        let mut dec = Decoder::new(enc.finish());
        prop_assert_eq!(dec.u8("a").unwrap(), a);
        prop_assert_eq!(dec.u16("b").unwrap(), b);
        prop_assert_eq!(dec.u32("c").unwrap(), c);
        prop_assert_eq!(dec.u64("d").unwrap(), d);
        prop_assert_eq!(dec.i32("e").unwrap(), e);
        prop_assert_eq!(dec.i64("f").unwrap(), f);
        prop_assert_eq!(dec.string("s").unwrap(), s);
        prop_assert_eq!(&dec.blob("blob").unwrap()[..], &blob[..]);
        prop_assert_eq!(dec.optional("o", |d| d.u64("v")).unwrap(), opt);
        prop_assert_eq!(dec.list("l", 8, |d| d.u64("v")).unwrap(), list);
        prop_assert_eq!(dec.remaining(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let mut dec = Decoder::from_slice(&bytes);
        let _ = dec.envelope("t", 1, |d, _| {
            let _ = d.string("s")?;
            d.list("l", 1, |d| d.blob("b"))
        });
    }
}
