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
use journal_core::client_data::{
    ClientData, ClientMeta, ImageClientMeta, MirrorPeerClientMeta, MirrorPeerState,
    MirrorPeerSyncPoint,
};
use journal_core::encoding::{Decode, Encode, UTime};
use journal_core::entry::{ceph_crc32c, Entry, EntryError};
use journal_core::event::{Event, EventEntry};
use journal_core::snap_namespace::SnapshotNamespace;
use journal_core::tag_data::{TagData, TagPredecessor};

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

// ---- EventEntry (librbd::journal::EventEntry test instances) ----

const META_1_1: &str = "0101 08000000 01000000 01000000";
const T11: UTime = UTime { sec: 1, nsec: 1 };

/// Decodes `bytes` as `T`, checks it equals `want`, and that `want` encodes back to `bytes`.
fn golden<T: Decode + Encode + PartialEq + std::fmt::Debug>(bytes: &Bytes, want: &T) {
    let got = T::from_bytes(bytes.clone()).unwrap();
    assert_eq!(&got, want);
    assert_eq!(want.to_bytes(), *bytes, "{want:?}");
}

fn event(hex_body: &str, ts_hex: &str, event: Event, timestamp: UTime) {
    let bytes = hex(&format!("{hex_body} {ts_hex}"));
    golden(&bytes, &EventEntry::new(event, timestamp));
}

#[test]
fn event_2_aio_discard() {
    event(
        "0501 19000000 00000000 7b00000000000000 5901000000000000 01 00100000",
        META_1_1,
        Event::AioDiscard {
            offset: 123,
            length: 345,
            discard_granularity_bytes: 4096,
        },
        T11,
    );
}

#[test]
fn event_4_aio_write() {
    let ones = "31".repeat(32);
    event(
        &format!("0501 38000000 01000000 7b00000000000000 c801000000000000 20000000 {ones}"),
        META_1_1,
        Event::AioWrite {
            offset: 123,
            length: 456,
            data: Bytes::from(vec![b'1'; 32]),
        },
        T11,
    );
}

#[test]
fn event_5_aio_flush() {
    event(
        "0501 04000000 02000000",
        "0101 08000000 0000000000000000",
        Event::AioFlush,
        UTime::default(),
    );
}

#[test]
fn event_6_op_finish() {
    event(
        "0501 18000000 03000000 7b00000000000000 7b00000000000000 ffffffff",
        META_1_1,
        Event::OpFinish {
            op_tid: 123,
            result: -1,
        },
        T11,
    );
}

#[test]
fn event_8_snap_create() {
    event(
        "0501 1e000000 04000000 ea00000000000000 04000000 736e6170 0101 04000000 00000000",
        META_1_1,
        Event::SnapCreate {
            op_tid: 234,
            snap_name: "snap".into(),
            namespace: SnapshotNamespace::User,
        },
        T11,
    );
}

#[test]
fn event_12_snap_rename() {
    event(
        "0501 2d000000 06000000 c801000000000000 09000000 6465737420736e6170 \
         0100000000000000 08000000 73726320736e6170",
        META_1_1,
        Event::SnapRename {
            op_tid: 456,
            dst_snap_name: "dest snap".into(),
            src_snap_id: 1,
            src_snap_name: "src snap".into(),
        },
        T11,
    );
}

#[test]
fn event_22_resize() {
    event(
        "0501 14000000 0b000000 8503000000000000 d204000000000000",
        META_1_1,
        Event::Resize {
            op_tid: 901,
            size: 1234,
        },
        T11,
    );
}

#[test]
fn event_24_demote_promote() {
    event(
        "0501 04000000 0d000000",
        "0101 08000000 0000000000000000",
        Event::DemotePromote,
        UTime::default(),
    );
}

#[test]
fn event_26_update_features() {
    event(
        "0501 15000000 0f000000 7b00000000000000 7f00000000000000 01",
        META_1_1,
        Event::UpdateFeatures {
            op_tid: 123,
            features: 127,
            enabled: true,
        },
        T11,
    );
}

#[test]
fn event_28_metadata_set() {
    event(
        "0501 1c000000 10000000 7b00000000000000 03000000 6b6579 05000000 76616c7565",
        META_1_1,
        Event::MetadataSet {
            op_tid: 123,
            key: "key".into(),
            value: "value".into(),
        },
        T11,
    );
}

#[test]
fn aio_write_data_is_zero_copy() {
    let ones = "31".repeat(32);
    let bytes = hex(&format!(
        "0501 38000000 01000000 7b00000000000000 c801000000000000 20000000 {ones} {META_1_1}"
    ));
    let e = EventEntry::from_bytes(bytes.clone()).unwrap();
    let Event::AioWrite { data, .. } = &e.event else {
        panic!("not a write: {e:?}")
    };
    assert_eq!(data.as_ptr(), bytes[30..].as_ptr());
}

#[test]
fn export_example_record_payload() {
    // Spec §14.1's example record: an AioFlush with a zero timestamp.
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode("BQEEAAAAAgAAAAEBCAAAAAAAAAAAAAAA")
        .unwrap();
    golden(
        &Bytes::from(payload),
        &EventEntry::new(Event::AioFlush, UTime::default()),
    );
}

// ---- SnapshotNamespace ----

#[test]
fn user_namespace() {
    golden(&hex("0101 04000000 00000000"), &SnapshotNamespace::User);
}

// ---- ClientData ----

#[test]
fn client_data_2_image() {
    golden(
        &hex("0201 0d000000 00000000 7b00000000000000 00"),
        &ClientData {
            meta: ClientMeta::Image(ImageClientMeta {
                tag_class: 123,
                resync_requested: false,
            }),
        },
    );
}

#[test]
fn client_data_4_mirror_peer() {
    let bytes = hex(
        "0201 6b000000 01000000 08000000 696d6167655f6964 00000000 0000000000000000 \
         01000000 06000000 736e61702032 06000000 736e61702031 01 7b00000000000000 \
         0101 04000000 00000000 02000000 0100000000000000 0200000000000000 \
         0300000000000000 0400000000000000",
    );
    golden(
        &bytes,
        &ClientData {
            meta: ClientMeta::MirrorPeer(MirrorPeerClientMeta {
                image_id: "image_id".into(),
                state: MirrorPeerState::Syncing,
                sync_object_count: 0,
                sync_points: vec![MirrorPeerSyncPoint {
                    snap_namespace: SnapshotNamespace::User,
                    snap_name: "snap 2".into(),
                    from_snap_name: "snap 1".into(),
                    object_number: Some(123),
                }],
                snap_seqs: [(1, 2), (3, 4)].into_iter().collect(),
            }),
        },
    );
}

#[test]
fn client_data_5_cli() {
    golden(
        &hex("0201 04000000 02000000"),
        &ClientData {
            meta: ClientMeta::Cli,
        },
    );
}

#[test]
fn client_data_of_a_fresh_image_client() {
    // The data blob inside spec §16.1's `client_` record.
    let record = hex(
        "0101 26000000 00000000 13000000 0201 0d000000 00000000 0000000000000000 00 \
         0101 04000000 00000000 00",
    );
    let blob = record.slice(14..14 + 0x13);
    golden(&blob, &ClientData::image(0));
}

// ---- TagData ----

#[test]
fn tag_data_3() {
    golden(
        &hex(
            "0b000000 6d6972726f722d75756964 12000000 72656d6f74652d6d6972726f722d75756964 \
             01 7b00000000000000 ea00000000000000",
        ),
        &TagData {
            mirror_uuid: "mirror-uuid".into(),
            predecessor: TagPredecessor {
                mirror_uuid: "remote-mirror-uuid".into(),
                commit_valid: true,
                tag_tid: 123,
                entry_tid: 234,
            },
        },
    );
}

#[test]
fn tag_data_of_tag_0() {
    // spec §16.1: `tag_0000000000000000` = envelope, tid 0, class 0, then a 25-byte blob of zeros.
    let record = hex(&format!(
        "0101 2d000000 0000000000000000 0000000000000000 19000000 {}",
        "00".repeat(25)
    ));
    let blob = record.slice(26..);
    assert_eq!(blob.len(), 25);
    golden(&blob, &TagData::default());
}

#[test]
fn format_md_worked_example() {
    // docs/format.md §5.1: the CRC was computed with an independent bitwise CRC-32C
    // (reflected 0x82F63B78, init 0, no final xor), not with this crate.
    let bytes = hex(
        "9397585326594131 01 0000000000000000 0100000000000000 18000000 \
         0501 04000000 02000000 0101 08000000 0000000000000000 18baa25a",
    );
    let (e, used) = Entry::decode(&bytes).unwrap();
    assert_eq!(used, 57);
    assert_eq!((e.tag_tid, e.entry_tid), (1, 0));
    assert_eq!(
        EventEntry::from_bytes(e.data.clone()).unwrap(),
        EventEntry::new(Event::AioFlush, UTime::default())
    );
    assert_eq!(e.to_bytes(), bytes);
}
