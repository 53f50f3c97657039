//! Decoding EventEntry and ClientData written by older librbd versions (spec §11.1–§11.3):
//! bytes are assembled by hand, field by field, from the table; the decoder must read them as
//! the table says and must refuse what Ceph refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use bytes::Bytes;
use journal_core::encoding::{Decode, Encoder, UTime};
use journal_core::event::{Event, EventEntry};
use journal_core::snap_namespace::SnapshotNamespace;
use journal_core::DecodeError;

/// An event envelope of version `v` with `body`, plus the metadata envelope if `v >= 4`.
fn payload(v: u8, ty: u32, body: impl FnOnce(&mut Encoder)) -> Bytes {
    let mut e = Encoder::new();
    e.envelope(v, 1, |e| {
        e.u32(ty);
        body(e);
    });
    if v >= 4 {
        e.envelope(1, 1, |e| {
            e.u32(7);
            e.u32(8);
        });
    }
    e.finish()
}

fn user_ns(e: &mut Encoder) {
    e.envelope(1, 1, |e| e.u32(0));
}

fn group_ns(e: &mut Encoder) {
    e.envelope(1, 1, |e| {
        e.u32(1);
        e.i64(3);
        e.string("g");
        e.string("gs");
    });
}

fn decode(b: Bytes) -> EventEntry {
    EventEntry::from_bytes(b).unwrap()
}

#[test]
fn discard_by_version() {
    let body = |skip: bool, gran: Option<u32>| {
        move |e: &mut Encoder| {
            e.u64(10);
            e.u64(20);
            if let Some(g) = gran {
                e.bool(skip);
                e.u32(g);
            }
        }
    };
    // v3: offset and length only; no timestamp.
    let got = decode(payload(3, 0, body(false, None)));
    assert_eq!(
        got,
        EventEntry::new(
            Event::AioDiscard {
                offset: 10,
                length: 20,
                discard_granularity_bytes: 0
            },
            UTime::default()
        )
    );
    // v4: the skip-partial flag alone; set means "granularity unknown" = u32::MAX.
    for (skip, want) in [(true, u32::MAX), (false, 0)] {
        let mut e = Encoder::new();
        e.envelope(4, 1, |e| {
            e.u32(0);
            e.u64(10);
            e.u64(20);
            e.bool(skip);
        });
        e.envelope(1, 1, |e| {
            e.u32(7);
            e.u32(8);
        });
        let got = decode(e.finish());
        assert_eq!(
            got.event,
            Event::AioDiscard {
                offset: 10,
                length: 20,
                discard_granularity_bytes: want
            }
        );
        assert_eq!(got.timestamp, UTime { sec: 7, nsec: 8 });
    }
    // v5: the granularity field.
    let got = decode(payload(5, 0, body(true, Some(512))));
    assert_eq!(
        got.event,
        Event::AioDiscard {
            offset: 10,
            length: 20,
            discard_granularity_bytes: 512
        }
    );
}

#[test]
fn snap_create_namespace_from_v3() {
    let body = |with_ns: bool| {
        move |e: &mut Encoder| {
            e.u64(9);
            e.string("s");
            if with_ns {
                group_ns(e);
            }
        }
    };
    let want = |namespace| Event::SnapCreate {
        op_tid: 9,
        snap_name: "s".into(),
        namespace,
    };
    assert_eq!(
        decode(payload(2, 4, body(false))).event,
        want(SnapshotNamespace::User)
    );
    let group = SnapshotNamespace::Group {
        pool: 3,
        group_id: "g".into(),
        group_snapshot_id: "gs".into(),
    };
    assert_eq!(decode(payload(3, 4, body(true))).event, want(group.clone()));
    assert_eq!(decode(payload(4, 4, body(true))).event, want(group));
}

#[test]
fn other_snap_events_namespace_from_v4() {
    for ty in [5u32, 7, 8, 9] {
        // v3: no namespace (an extra one would be skipped by the envelope, not read).
        let got = decode(payload(3, ty, |e| {
            e.u64(1);
            e.string("x");
            group_ns(e);
        }));
        assert_eq!(got.event.event_type(), ty);
        let (op_tid, name, ns) = match got.event {
            Event::SnapRemove {
                op_tid,
                snap_name,
                namespace,
            }
            | Event::SnapProtect {
                op_tid,
                snap_name,
                namespace,
            }
            | Event::SnapUnprotect {
                op_tid,
                snap_name,
                namespace,
            }
            | Event::SnapRollback {
                op_tid,
                snap_name,
                namespace,
            } => (op_tid, snap_name, namespace),
            other => panic!("type {ty}: {other:?}"),
        };
        assert_eq!(
            (op_tid, name.as_str(), ns),
            (1, "x", SnapshotNamespace::User)
        );
        // v4 reads it.
        let got = decode(payload(4, ty, |e| {
            e.u64(1);
            e.string("x");
            user_ns(e);
        }));
        assert_eq!(got.event.op_tid(), Some(1));
    }
}

#[test]
fn snap_rename_source_name_from_v2() {
    let got = decode(payload(1, 6, |e| {
        e.u64(4);
        e.string("new");
        e.u64(12);
    }));
    assert_eq!(
        got.event,
        Event::SnapRename {
            op_tid: 4,
            dst_snap_name: "new".into(),
            src_snap_id: 12,
            src_snap_name: String::new()
        }
    );
}

#[test]
fn op_finish_reads_the_second_op_tid() {
    let got = decode(payload(5, 3, |e| {
        e.u64(1);
        e.u64(2);
        e.i32(-22);
    }));
    assert_eq!(
        got.event,
        Event::OpFinish {
            op_tid: 2,
            result: -22
        }
    );
}

#[test]
fn unknown_type_body_is_skipped() {
    let got = decode(payload(5, 77, |e| e.raw(&[1, 2, 3, 4, 5])));
    assert_eq!(got.event, Event::Unknown { event_type: 77 });
    assert_eq!(got.event.op_tid(), None);
    assert_eq!(got.timestamp, UTime { sec: 7, nsec: 8 });
}

#[test]
fn newer_fields_are_skipped() {
    // A v6 writer with one more field after the v5 body: skipped by the envelope.
    let got = decode(payload(6, 11, |e| {
        e.u64(1);
        e.u64(4096);
        e.u64(0xdead);
    }));
    assert_eq!(
        got.event,
        Event::Resize {
            op_tid: 1,
            size: 4096
        }
    );
}

#[test]
fn refusals() {
    // compat 2 is newer than the decoder.
    let mut e = Encoder::new();
    e.envelope(6, 2, |e| e.u32(2));
    assert!(matches!(
        EventEntry::from_bytes(e.finish()),
        Err(DecodeError::IncompatibleVersion { .. })
    ));
    // v5 without the metadata envelope.
    let mut e = Encoder::new();
    e.envelope(5, 1, |e| e.u32(2));
    assert!(matches!(
        EventEntry::from_bytes(e.finish()),
        Err(DecodeError::Truncated { .. })
    ));
    // A write whose data length runs past the envelope.
    let bytes = payload(5, 1, |e| {
        e.u64(0);
        e.u64(4);
        e.u32(100);
        e.raw(b"abcd");
    });
    assert!(EventEntry::from_bytes(bytes).is_err());
    // Trailing bytes after the metadata envelope.
    let mut v = payload(5, 2, |_| {}).to_vec();
    v.push(0);
    assert!(matches!(
        EventEntry::from_bytes(Bytes::from(v)),
        Err(DecodeError::TrailingBytes { extra: 1, .. })
    ));
}

#[test]
fn client_data_v1_sync_points_have_no_namespace() {
    use journal_core::client_data::{ClientData, ClientMeta, MirrorPeerState};
    let mut e = Encoder::new();
    e.envelope(1, 1, |e| {
        e.u32(1); // mirror peer
        e.string("img");
        e.u32(1); // replaying
        e.u64(5);
        e.u32(1); // one sync point
        e.string("snap");
        e.string("");
        e.u8(0); // no object number
        e.u32(0); // empty snap_seqs
    });
    let data = ClientData::from_bytes(e.finish()).unwrap();
    let ClientMeta::MirrorPeer(m) = data.meta else {
        panic!("{data:?}")
    };
    assert_eq!(m.state, MirrorPeerState::Replaying);
    assert_eq!(m.sync_points.len(), 1);
    assert_eq!(m.sync_points[0].snap_name, "snap");
    assert_eq!(m.sync_points[0].object_number, None);
    assert_eq!(m.sync_points[0].snap_namespace, SnapshotNamespace::User);
    assert!(m.snap_seqs.is_empty());
}

#[test]
fn client_data_unknown_type_and_bad_state() {
    use journal_core::client_data::{ClientData, ClientMeta};
    let mut e = Encoder::new();
    e.envelope(2, 1, |e| {
        e.u32(9);
        e.raw(&[1, 2, 3]);
    });
    assert_eq!(
        ClientData::from_bytes(e.finish()).unwrap().meta,
        ClientMeta::Unknown { meta_type: 9 }
    );
    let mut e = Encoder::new();
    e.envelope(2, 1, |e| {
        e.u32(1);
        e.string("");
        e.u32(7); // no such mirror peer state
    });
    assert!(matches!(
        ClientData::from_bytes(e.finish()),
        Err(DecodeError::InvalidValue { .. })
    ));
}
