//! Property tests for every codec in this crate's format layer.
//!
//! Invariants checked:
//! * encode → decode is the identity for Entry, EventEntry (every event type), ClientData (every
//!   meta type), TagData and SnapshotNamespace (every namespace type), with bounded sizes;
//! * decoding arbitrary bytes never panics (Entry, scan_object, EventEntry, ClientData, TagData,
//!   SnapshotNamespace), and bytes that do decode re-encode to a value that decodes the same;
//! * an object built from entries and OSD-style zero padding scans back to exactly those
//!   entries, and any truncation of it scans to a prefix with the right partial-tail flag;
//! * splay / object-set arithmetic holds both ways round for every valid layout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use journal_core::client_data::{
    ClientData, ClientMeta, ImageClientMeta, MirrorPeerClientMeta, MirrorPeerState,
    MirrorPeerSyncPoint,
};
use journal_core::encoding::{Decode, Encode, Encoder, UTime};
use journal_core::entry::{scan_object, Entry, ENTRY_OVERHEAD};
use journal_core::event::{Event, EventEntry};
use journal_core::layout::{
    data_oid, parse_data_oid, Layout, DEFAULT_MAX_PAYLOAD_BYTES, MAX_ORDER, MIN_ORDER,
};
use journal_core::snap_namespace::{MirrorSnapshotState, SnapshotNamespace};
use journal_core::tag_data::{TagData, TagPredecessor};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

fn text() -> BoxedStrategy<String> {
    "\\PC{0,12}".boxed()
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..48).prop_map(Bytes::from)
}

fn utime() -> impl Strategy<Value = UTime> {
    (any::<u32>(), 0u32..1_000_000_000).prop_map(|(sec, nsec)| UTime { sec, nsec })
}

fn u64_map() -> impl Strategy<Value = BTreeMap<u64, u64>> {
    btree_map(any::<u64>(), any::<u64>(), 0..4)
}

fn mirror_state() -> impl Strategy<Value = MirrorSnapshotState> {
    any::<u8>().prop_map(MirrorSnapshotState::from_u8)
}

fn namespace() -> BoxedStrategy<SnapshotNamespace> {
    prop_oneof![
        Just(SnapshotNamespace::User),
        (any::<i64>(), text(), text()).prop_map(|(pool, group_id, group_snapshot_id)| {
            SnapshotNamespace::Group {
                pool,
                group_id,
                group_snapshot_id,
            }
        }),
        (text(), any::<u32>()).prop_map(|(original_name, original_type)| {
            SnapshotNamespace::Trash {
                original_name,
                original_type,
            }
        }),
        (
            mirror_state(),
            any::<bool>(),
            btree_set(text(), 0..3),
            text(),
            any::<u64>(),
            any::<u64>(),
            u64_map()
        )
            .prop_map(|(state, complete, peers, primary, snap_id, last, seqs)| {
                SnapshotNamespace::Mirror {
                    state,
                    complete,
                    mirror_peer_uuids: peers,
                    primary_mirror_uuid: primary,
                    primary_snap_id: snap_id,
                    last_copied_object_number: last,
                    snap_seqs: seqs,
                }
            }),
        (4u32..).prop_map(|ns_type| SnapshotNamespace::Unknown { ns_type }),
    ]
    .boxed()
}

fn event() -> impl Strategy<Value = Event> {
    let snap = (any::<u64>(), text(), namespace());
    prop_oneof![
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(offset, length, g)| {
            Event::AioDiscard {
                offset,
                length,
                discard_granularity_bytes: g,
            }
        }),
        (any::<u64>(), any::<u64>(), blob()).prop_map(|(offset, length, data)| Event::AioWrite {
            offset,
            length,
            data
        }),
        Just(Event::AioFlush),
        (any::<u64>(), any::<i32>())
            .prop_map(|(op_tid, result)| Event::OpFinish { op_tid, result }),
        snap.clone()
            .prop_map(|(op_tid, snap_name, namespace)| Event::SnapCreate {
                op_tid,
                snap_name,
                namespace
            }),
        snap.clone()
            .prop_map(|(op_tid, snap_name, namespace)| Event::SnapRemove {
                op_tid,
                snap_name,
                namespace
            }),
        (any::<u64>(), text(), any::<u64>(), text()).prop_map(|(op_tid, dst, id, src)| {
            Event::SnapRename {
                op_tid,
                dst_snap_name: dst,
                src_snap_id: id,
                src_snap_name: src,
            }
        }),
        snap.clone()
            .prop_map(|(op_tid, snap_name, namespace)| Event::SnapProtect {
                op_tid,
                snap_name,
                namespace
            }),
        snap.clone()
            .prop_map(|(op_tid, snap_name, namespace)| Event::SnapUnprotect {
                op_tid,
                snap_name,
                namespace
            }),
        snap.prop_map(|(op_tid, snap_name, namespace)| Event::SnapRollback {
            op_tid,
            snap_name,
            namespace
        }),
        (any::<u64>(), text())
            .prop_map(|(op_tid, image_name)| Event::Rename { op_tid, image_name }),
        (any::<u64>(), any::<u64>()).prop_map(|(op_tid, size)| Event::Resize { op_tid, size }),
        any::<u64>().prop_map(|op_tid| Event::Flatten { op_tid }),
        Just(Event::DemotePromote),
        (any::<u64>(), any::<u64>()).prop_map(|(op_tid, limit)| Event::SnapLimit { op_tid, limit }),
        (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(op_tid, features, enabled)| {
            Event::UpdateFeatures {
                op_tid,
                features,
                enabled,
            }
        }),
        (any::<u64>(), text(), text()).prop_map(|(op_tid, key, value)| Event::MetadataSet {
            op_tid,
            key,
            value
        }),
        (any::<u64>(), text()).prop_map(|(op_tid, key)| Event::MetadataRemove { op_tid, key }),
        (any::<u64>(), any::<u64>(), blob()).prop_map(|(offset, length, data)| {
            Event::AioWriteSame {
                offset,
                length,
                data,
            }
        }),
        (any::<u64>(), any::<u64>(), blob(), blob()).prop_map(|(offset, length, c, w)| {
            Event::AioCompareAndWrite {
                offset,
                length,
                cmp_data: c,
                write_data: w,
            }
        }),
        (20u32..).prop_map(|event_type| Event::Unknown { event_type }),
    ]
}

fn sync_point() -> impl Strategy<Value = MirrorPeerSyncPoint> {
    (namespace(), text(), text(), option::of(any::<u64>())).prop_map(|(ns, name, from, obj)| {
        MirrorPeerSyncPoint {
            snap_namespace: ns,
            snap_name: name,
            from_snap_name: from,
            object_number: obj,
        }
    })
}

fn client_data() -> impl Strategy<Value = ClientData> {
    prop_oneof![
        (any::<u64>(), any::<bool>()).prop_map(|(tag_class, resync_requested)| ClientMeta::Image(
            ImageClientMeta {
                tag_class,
                resync_requested
            }
        )),
        (
            text(),
            any::<bool>(),
            any::<u64>(),
            vec(sync_point(), 0..3),
            u64_map()
        )
            .prop_map(|(image_id, replaying, count, points, seqs)| {
                ClientMeta::MirrorPeer(MirrorPeerClientMeta {
                    image_id,
                    state: if replaying {
                        MirrorPeerState::Replaying
                    } else {
                        MirrorPeerState::Syncing
                    },
                    sync_object_count: count,
                    sync_points: points,
                    snap_seqs: seqs,
                })
            }),
        Just(ClientMeta::Cli),
        (3u32..).prop_map(|meta_type| ClientMeta::Unknown { meta_type }),
    ]
    .prop_map(|meta| ClientData { meta })
}

fn tag_data() -> impl Strategy<Value = TagData> {
    (text(), text(), any::<bool>(), any::<u64>(), any::<u64>()).prop_map(
        |(mirror_uuid, pred_uuid, commit_valid, tag_tid, entry_tid)| TagData {
            mirror_uuid,
            predecessor: TagPredecessor {
                mirror_uuid: pred_uuid,
                commit_valid,
                tag_tid,
                entry_tid,
            },
        },
    )
}

fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(
    v: &T,
) -> Result<(), TestCaseError> {
    let bytes = v.to_bytes();
    prop_assert_eq!(&T::from_bytes(bytes.clone()).unwrap(), v);
    // A trailing byte is refused.
    let mut longer = BytesMut::from(&bytes[..]);
    longer.extend_from_slice(&[0]);
    prop_assert!(T::from_bytes(longer.freeze()).is_err());
    Ok(())
}

/// Decoding never panics; whatever decodes re-encodes to something that decodes the same.
fn no_panic<T: Encode + Decode + PartialEq + std::fmt::Debug>(
    bytes: Vec<u8>,
) -> Result<(), TestCaseError> {
    if let Ok(v) = T::from_bytes(Bytes::from(bytes)) {
        prop_assert_eq!(T::from_bytes(v.to_bytes()).unwrap(), v);
    }
    Ok(())
}

/// Object pieces: an entry, or a run of zero padding up to the next `align` boundary.
#[derive(Clone, Debug)]
enum Piece {
    Entry(Entry),
    Pad(u64),
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    vec(
        prop_oneof![
            3 => (0u64..4, 0u64..1000, vec(any::<u8>(), 0..80))
                .prop_map(|(t, e, d)| Piece::Entry(Entry::new(t, e, d))),
            1 => prop_oneof![Just(8u64), Just(64), Just(4096)].prop_map(Piece::Pad),
        ],
        0..12,
    )
}

/// Builds the object; returns it and the (offset, entry) list a reader must find.
fn build(base: u64, pieces: &[Piece]) -> (Bytes, Vec<(u64, Entry)>) {
    let mut buf = BytesMut::new();
    let mut want = Vec::new();
    for p in pieces {
        match p {
            Piece::Entry(e) => {
                want.push((base + buf.len() as u64, e.clone()));
                e.encode_into(&mut buf);
            }
            Piece::Pad(align) => {
                let at = base + buf.len() as u64;
                let pad = at.next_multiple_of(*align) - at;
                buf.extend_from_slice(&vec![0; pad as usize]);
            }
        }
    }
    (buf.freeze(), want)
}

/// Expected result under the model: later duplicates replace earlier ones in place.
fn dedup(found: Vec<(u64, Entry)>) -> Vec<(u64, Entry)> {
    let mut out: Vec<(u64, Entry)> = Vec::new();
    for (off, e) in found {
        match out
            .iter_mut()
            .find(|(_, x)| (x.tag_tid, x.entry_tid) == (e.tag_tid, e.entry_tid))
        {
            Some(slot) => *slot = (off, e),
            None => out.push((off, e)),
        }
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn entry_round_trip(tag in any::<u64>(), tid in any::<u64>(), data in vec(any::<u8>(), 0..256)) {
        let e = Entry::new(tag, tid, data);
        let bytes = e.to_bytes();
        prop_assert_eq!(bytes.len(), ENTRY_OVERHEAD + e.data.len());
        prop_assert_eq!(Entry::decode(&bytes).unwrap(), (e, bytes.len()));
    }

    #[test]
    fn event_entry_round_trip(event in event(), timestamp in utime()) {
        round_trip(&EventEntry::new(event, timestamp))?;
    }

    /// The encoding of an `AioWrite` without its data, with the data (returned by reference)
    /// inserted where it says, is exactly the whole encoding; every other event has none.
    #[test]
    fn split_encoding_equals_the_whole(event in event(), timestamp in utime()) {
        let entry = EventEntry::new(event, timestamp);
        let mut enc = Encoder::new();
        let is_write = matches!(entry.event, Event::AioWrite { .. });
        match entry.encode_around_data(&mut enc) {
            Some((data, at)) => {
                prop_assert!(is_write);
                let mut joined = enc.into_buffer();
                let tail = joined.split_off(at);
                joined.extend_from_slice(&data);
                joined.extend_from_slice(&tail);
                prop_assert_eq!(joined.freeze(), entry.to_bytes());
            }
            None => {
                prop_assert!(!is_write);
                prop_assert!(enc.is_empty());
            }
        }
    }

    #[test]
    fn client_data_round_trip(v in client_data()) { round_trip(&v)?; }

    #[test]
    fn tag_data_round_trip(v in tag_data()) { round_trip(&v)?; }

    #[test]
    fn namespace_round_trip(v in namespace()) { round_trip(&v)?; }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..160), base in 0u64..64) {
        no_panic::<EventEntry>(bytes.clone())?;
        no_panic::<ClientData>(bytes.clone())?;
        no_panic::<TagData>(bytes.clone())?;
        no_panic::<SnapshotNamespace>(bytes.clone())?;
        let bytes = Bytes::from(bytes);
        let _ = Entry::decode(&bytes);
        let scan = scan_object(&bytes, base);
        prop_assert!(scan.consumed >= base && scan.consumed <= base + bytes.len() as u64);
        for r in &scan.corrupt {
            prop_assert!(r.start < r.end && r.start >= base && r.end <= scan.consumed);
        }
    }

    /// Arbitrary bytes behind a valid prefix: the prefix is still found.
    #[test]
    fn garbage_after_entries_never_panics(p in pieces(), junk in vec(any::<u8>(), 0..100)) {
        let (obj, want) = build(0, &p);
        let mut buf = BytesMut::from(&obj[..]);
        buf.extend_from_slice(&junk);
        let scan = scan_object(&buf.freeze(), 0);
        let found: Vec<_> = scan.entries.iter().map(|s| (s.offset, s.entry.clone())).collect();
        // Entries found include every wanted entry key (the junk may add or replace some).
        for (_, e) in &want {
            prop_assert!(found.iter().any(|(_, f)| (f.tag_tid, f.entry_tid) == (e.tag_tid, e.entry_tid)));
        }
    }

    /// Valid encodings with a few bytes overwritten and a random truncation: decoding never
    /// panics, and what still decodes re-encodes consistently.
    #[test]
    fn mutated_encodings_never_panic(
        event in event(),
        data in client_data(),
        ns in namespace(),
        tag in tag_data(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mutate = |bytes: Bytes| -> Vec<u8> {
            let mut v = bytes.to_vec();
            if v.is_empty() {
                return v;
            }
            for (i, b) in &edits {
                let at = i.index(v.len());
                v[at] = *b;
            }
            let keep = cut.index(v.len() + 1);
            v.truncate(keep.max(v.len() / 2));
            v
        };
        no_panic::<EventEntry>(mutate(EventEntry::new(event, UTime::default()).to_bytes()))?;
        no_panic::<ClientData>(mutate(data.to_bytes()))?;
        no_panic::<SnapshotNamespace>(mutate(ns.to_bytes()))?;
        no_panic::<TagData>(mutate(tag.to_bytes()))?;
    }

    /// A valid object with bytes overwritten: never panics, ranges stay ordered and in bounds,
    /// and every entry reported really decodes at its offset.
    #[test]
    fn mutated_objects_scan_sanely(
        p in pieces(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let (obj, _) = build(0, &p);
        let mut v = obj.to_vec();
        if !v.is_empty() {
            for (i, b) in &edits {
                let at = i.index(v.len());
                v[at] = *b;
            }
        }
        let obj = Bytes::from(v);
        let scan = scan_object(&obj, 0);
        let mut last = 0;
        for r in &scan.corrupt {
            prop_assert!(r.start >= last && r.start < r.end && r.end <= scan.consumed);
            last = r.end;
        }
        for s in &scan.entries {
            let (e, _) = Entry::decode_at(&obj, s.offset as usize, 0).unwrap();
            prop_assert_eq!(&e, &s.entry);
        }
    }

    #[test]
    fn scan_finds_exactly_the_entries(p in pieces(), base in prop_oneof![Just(0u64), 0u64..10_000]) {
        let (obj, want) = build(base, &p);
        let scan = scan_object(&obj, base);
        let found: Vec<_> = scan.entries.iter().map(|s| (s.offset, s.entry.clone())).collect();
        prop_assert_eq!(found, dedup(want.clone()));
        prop_assert!(scan.is_clean());
        // Fully parsed unless the object ends in a zero run shorter than a header.
        let end = base + obj.len() as u64;
        let last_end = want.last().map_or(base, |(o, e)| o + e.encoded_len() as u64);
        prop_assert!(scan.consumed <= end && scan.consumed >= last_end);
        prop_assert_eq!(scan.partial_tail, scan.consumed < end);
        prop_assert!(end - scan.consumed < 25);
    }

    #[test]
    fn truncated_scan_is_a_prefix(p in pieces(), cut_frac in 0.0f64..1.0) {
        let (obj, want) = build(0, &p);
        let cut = (obj.len() as f64 * cut_frac) as usize;
        let scan = scan_object(&obj.slice(..cut), 0);
        let complete: Vec<_> = want
            .iter()
            .filter(|(o, e)| *o as usize + e.encoded_len() <= cut)
            .cloned()
            .collect();
        let found: Vec<_> = scan.entries.iter().map(|s| (s.offset, s.entry.clone())).collect();
        prop_assert_eq!(found, dedup(complete.clone()));
        prop_assert!(scan.is_clean());
        let cut_inside_entry = want
            .iter()
            .any(|(o, e)| (*o as usize) < cut && cut < *o as usize + e.encoded_len());
        if cut_inside_entry {
            prop_assert!(scan.partial_tail);
        }
    }

    #[test]
    fn layout_arithmetic_both_ways(
        order in MIN_ORDER..=MAX_ORDER,
        width in 1u8..=255,
        set in 0u64..(1 << 40),
        tid in any::<u64>(),
        n in 0u64..(1 << 48),
    ) {
        let l = Layout::new(order, width).unwrap();
        let w = u64::from(width);
        prop_assert_eq!(l.soft_limit(), 1u64 << order);
        let o = l.splay_offset(tid);
        prop_assert_eq!(u64::from(o), tid % w);
        let obj = l.object_number(set, o);
        prop_assert_eq!(l.object_set(obj), set);
        prop_assert_eq!(l.splay_offset_of_object(obj), o);
        prop_assert_eq!(l.object_number(l.object_set(n), l.splay_offset_of_object(n)), n);
        let objs: Vec<u64> = l.objects_in_set(set).collect();
        prop_assert_eq!(objs.len(), width as usize);
        for (i, obj) in objs.iter().enumerate() {
            prop_assert_eq!(*obj, set * w + i as u64);
            prop_assert_eq!(l.object_set(*obj), set);
        }
        let max = l.max_payload(DEFAULT_MAX_PAYLOAD_BYTES);
        prop_assert!(max as u64 + ENTRY_OVERHEAD as u64 <= l.soft_limit());
        prop_assert!(max <= DEFAULT_MAX_PAYLOAD_BYTES);
    }

    #[test]
    fn layout_validation(order in any::<u8>(), width in any::<u8>()) {
        let ok = (12..=26).contains(&order) && width >= 1;
        prop_assert_eq!(Layout::new(order, width).is_ok(), ok);
    }

    #[test]
    fn data_oid_round_trip(pool in -1i64..100, id in "[0-9a-f]{1,16}", n in any::<u64>()) {
        prop_assert_eq!(parse_data_oid(pool, &id, &data_oid(pool, &id, n)), Some(n));
    }
}

#[test]
fn namespaces_sets_are_sorted_on_the_wire() {
    // set<string> is written in sorted order regardless of insertion order.
    let ns = SnapshotNamespace::Mirror {
        state: MirrorSnapshotState::NonPrimary,
        complete: true,
        mirror_peer_uuids: ["b", "a"]
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>(),
        primary_mirror_uuid: String::new(),
        primary_snap_id: 0,
        last_copied_object_number: 0,
        snap_seqs: BTreeMap::new(),
    };
    let bytes = ns.to_bytes();
    let a = bytes
        .windows(5)
        .position(|w| w == [1, 0, 0, 0, b'a'])
        .unwrap();
    let b = bytes
        .windows(5)
        .position(|w| w == [1, 0, 0, 0, b'b'])
        .unwrap();
    assert!(a < b);
}
