//! Property tests for the header records: round trips, the field layout of spec §4.3 built by
//! hand, and decoders fed arbitrary or truncated bytes (must return errors, never panic).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use bytes::Bytes;
use journal_core::encoding::{Decode, Encode};
use journal_core::header::{
    decode_i64, decode_u64, decode_u8, parse_tag_key, tag_key, Client, ClientState, ObjectPosition,
    ObjectSetPosition, Tag,
};
use proptest::prelude::*;

fn position() -> impl Strategy<Value = ObjectPosition> {
    (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(o, t, e)| ObjectPosition {
        object_number: o,
        tag_tid: t,
        entry_tid: e,
    })
}

fn set_position() -> impl Strategy<Value = ObjectSetPosition> {
    prop::collection::vec(position(), 0..6).prop_map(ObjectSetPosition::new)
}

fn client() -> impl Strategy<Value = Client> {
    (
        ".{0,12}",
        prop::collection::vec(any::<u8>(), 0..40),
        set_position(),
        any::<bool>(),
    )
        .prop_map(|(id, data, commit_position, disconnected)| Client {
            id,
            data: Bytes::from(data),
            commit_position,
            state: if disconnected {
                ClientState::Disconnected
            } else {
                ClientState::Connected
            },
        })
}

fn tag() -> impl Strategy<Value = Tag> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(tid, tag_class, data)| Tag {
            tid,
            tag_class,
            data: Bytes::from(data),
        })
}

/// The §4.3 layout written out by hand: envelope (1, 1, len) then the fields.
fn envelope(body: &[u8]) -> Vec<u8> {
    let mut out = vec![1u8, 1];
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn hand_position(p: &ObjectPosition) -> Vec<u8> {
    let mut body = Vec::new();
    for v in [p.object_number, p.tag_tid, p.entry_tid] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    envelope(&body)
}

fn hand_set_position(s: &ObjectSetPosition) -> Vec<u8> {
    let mut body = (s.object_positions.len() as u32).to_le_bytes().to_vec();
    for p in &s.object_positions {
        body.extend(hand_position(p));
    }
    envelope(&body)
}

fn blob(b: &[u8]) -> Vec<u8> {
    let mut out = (b.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

fn hand_client(c: &Client) -> Vec<u8> {
    let mut body = blob(c.id.as_bytes());
    body.extend(blob(&c.data));
    body.extend(hand_set_position(&c.commit_position));
    body.push(match c.state {
        ClientState::Connected => 0,
        ClientState::Disconnected => 1,
    });
    envelope(&body)
}

fn hand_tag(t: &Tag) -> Vec<u8> {
    let mut body = t.tid.to_le_bytes().to_vec();
    body.extend_from_slice(&t.tag_class.to_le_bytes());
    body.extend(blob(&t.data));
    envelope(&body)
}

/// Every strict prefix of a valid encoding must fail to decode (and not panic).
fn prefixes_fail<T: Decode + std::fmt::Debug>(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        let r = T::from_bytes(Bytes::copy_from_slice(&bytes[..cut]));
        assert!(r.is_err(), "prefix of {cut} bytes decoded: {r:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn position_layout_and_round_trip(p in position()) {
        let bytes = p.to_bytes();
        prop_assert_eq!(&bytes[..], &hand_position(&p)[..]);
        prop_assert_eq!(ObjectPosition::from_bytes(bytes.clone()).unwrap(), p);
        prefixes_fail::<ObjectPosition>(&bytes);
    }

    #[test]
    fn set_position_layout_and_round_trip(s in set_position()) {
        let bytes = s.to_bytes();
        prop_assert_eq!(&bytes[..], &hand_set_position(&s)[..]);
        prop_assert_eq!(ObjectSetPosition::from_bytes(bytes.clone()).unwrap(), s);
        prefixes_fail::<ObjectSetPosition>(&bytes);
    }

    #[test]
    fn client_layout_and_round_trip(c in client()) {
        let bytes = c.to_bytes();
        prop_assert_eq!(&bytes[..], &hand_client(&c)[..]);
        prop_assert_eq!(Client::from_bytes(bytes.clone()).unwrap(), c);
        prefixes_fail::<Client>(&bytes);
    }

    #[test]
    fn tag_layout_and_round_trip(t in tag()) {
        let bytes = t.to_bytes();
        prop_assert_eq!(&bytes[..], &hand_tag(&t)[..]);
        prop_assert_eq!(Tag::from_bytes(bytes.clone()).unwrap(), t);
        prefixes_fail::<Tag>(&bytes);
    }

    /// A newer writer's extra trailing fields inside the envelope are skipped (§2.1).
    #[test]
    fn newer_versions_with_extra_fields_decode(t in tag(), extra in prop::collection::vec(any::<u8>(), 1..10)) {
        let mut body = hand_tag(&t)[6..].to_vec();
        body.extend_from_slice(&extra);
        let mut bytes = envelope(&body);
        bytes[0] = 3; // struct_v 3, compat still 1
        prop_assert_eq!(Tag::from_bytes(Bytes::from(bytes.clone())).unwrap(), t);
        bytes[1] = 2; // compat 2: this decoder (compat 1) must refuse
        prop_assert!(Tag::from_bytes(Bytes::from(bytes)).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let b = Bytes::from(bytes.clone());
        let _ = ObjectPosition::from_bytes(b.clone());
        let _ = ObjectSetPosition::from_bytes(b.clone());
        let _ = Client::from_bytes(b.clone());
        let _ = Tag::from_bytes(b);
        let _ = decode_u8("order", &bytes);
        let _ = decode_i64("pool_id", &bytes);
        let _ = decode_u64("active_set", &bytes);
    }

    /// Envelope-shaped garbage (plausible header, random body) exercises the field decoders.
    #[test]
    fn enveloped_garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..120)) {
        let b = Bytes::from(envelope(&body));
        let _ = ObjectSetPosition::from_bytes(b.clone());
        let _ = Client::from_bytes(b.clone());
        let _ = Tag::from_bytes(b);
    }

    #[test]
    fn tag_keys_sort_like_tids(a in any::<u64>(), b in any::<u64>()) {
        prop_assert_eq!(tag_key(a).cmp(&tag_key(b)), a.cmp(&b));
        prop_assert_eq!(parse_tag_key(&tag_key(a)), Some(a));
    }
}
