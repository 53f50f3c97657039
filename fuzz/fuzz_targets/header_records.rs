//! Header records (`ObjectPosition`, `ObjectSetPosition`, `Client`, `Tag`), the scalar header
//! values, and the RBD blobs stored in them (`ClientData`, `TagData`, `SnapshotNamespace`).
//!
//! Oracle: whenever bytes decode, encoding the value and decoding that again gives the same
//! value (the decoders skip unknown envelope tails and accept older versions, so the bytes
//! themselves may differ); scalars are fixed-width and must re-encode byte for byte. Inputs are
//! either raw bytes or a valid encoding of a fuzzer-chosen value with a little damage.
#![no_main]

use std::collections::BTreeMap;
use std::fmt::Debug;

use arbitrary::Arbitrary;
use bytes::Bytes;
use journal_core::client_data::{
    ClientData, ClientMeta, ImageClientMeta, MirrorPeerClientMeta, MirrorPeerState,
    MirrorPeerSyncPoint,
};
use journal_core::encoding::{Decode, Encode};
use journal_core::header::{
    decode_i64, decode_u64, decode_u8, encode_i64, encode_u64, encode_u8, Client, ClientState,
    ObjectPosition, ObjectSetPosition, Tag,
};
use journal_core::snap_namespace::SnapshotNamespace;
use journal_core::tag_data::{TagData, TagPredecessor};
use libfuzzer_sys::fuzz_target;
use rbdj_fuzz::Damage;

#[derive(Arbitrary, Debug)]
enum Input {
    Raw { kind: u8, bytes: Vec<u8> },
    Damaged { value: Value, damage: Damage },
}

#[derive(Arbitrary, Debug)]
enum Value {
    Position(u64, u64, u64),
    SetPosition(Vec<(u64, u64, u64)>),
    Client {
        id: String,
        data: Meta,
        positions: Vec<(u64, u64, u64)>,
        disconnected: bool,
    },
    Tag {
        tid: u64,
        class: u64,
        data: TagSpec,
    },
    ClientData(Meta),
    TagData(TagSpec),
    Namespace(NsSpec),
}

#[derive(Arbitrary, Debug)]
enum Meta {
    Image(u64, bool),
    Peer {
        image_id: String,
        replaying: bool,
        count: u64,
        points: Vec<(NsSpec, String, String, Option<u64>)>,
        seqs: Vec<(u64, u64)>,
    },
    Cli,
    Other(u32),
}

#[derive(Arbitrary, Debug)]
struct TagSpec {
    uuid: String,
    pred_uuid: String,
    valid: bool,
    tag: u64,
    entry: u64,
}

#[derive(Arbitrary, Debug)]
enum NsSpec {
    User,
    Group(i64, String, String),
    Trash(String, u32),
    Other(u32),
}

fn pos(p: &(u64, u64, u64)) -> ObjectPosition {
    ObjectPosition {
        object_number: p.0,
        tag_tid: p.1,
        entry_tid: p.2,
    }
}

fn ns(n: &NsSpec) -> SnapshotNamespace {
    match n {
        NsSpec::User => SnapshotNamespace::User,
        NsSpec::Group(pool, g, s) => SnapshotNamespace::Group {
            pool: *pool,
            group_id: g.clone(),
            group_snapshot_id: s.clone(),
        },
        NsSpec::Trash(name, t) => SnapshotNamespace::Trash {
            original_name: name.clone(),
            original_type: *t,
        },
        NsSpec::Other(t) => SnapshotNamespace::Unknown {
            ns_type: (*t).max(4),
        },
    }
}

fn client_data(m: &Meta) -> ClientData {
    let meta = match m {
        Meta::Image(class, resync) => ClientMeta::Image(ImageClientMeta {
            tag_class: *class,
            resync_requested: *resync,
        }),
        Meta::Peer {
            image_id,
            replaying,
            count,
            points,
            seqs,
        } => ClientMeta::MirrorPeer(MirrorPeerClientMeta {
            image_id: image_id.clone(),
            state: if *replaying {
                MirrorPeerState::Replaying
            } else {
                MirrorPeerState::Syncing
            },
            sync_object_count: *count,
            sync_points: points
                .iter()
                .map(|(n, s, f, o)| MirrorPeerSyncPoint {
                    snap_namespace: ns(n),
                    snap_name: s.clone(),
                    from_snap_name: f.clone(),
                    object_number: *o,
                })
                .collect(),
            snap_seqs: seqs.iter().copied().collect::<BTreeMap<_, _>>(),
        }),
        Meta::Cli => ClientMeta::Cli,
        Meta::Other(t) => ClientMeta::Unknown {
            meta_type: (*t).max(3),
        },
    };
    ClientData { meta }
}

fn tag_data(t: &TagSpec) -> TagData {
    TagData {
        mirror_uuid: t.uuid.clone(),
        predecessor: TagPredecessor {
            mirror_uuid: t.pred_uuid.clone(),
            commit_valid: t.valid,
            tag_tid: t.tag,
            entry_tid: t.entry,
        },
    }
}

/// Encodes a value built by the fuzzer; its encoding must decode back to it.
fn enc<T: Decode + Encode + PartialEq + Debug>(v: T) -> Bytes {
    let b = v.to_bytes();
    assert_eq!(T::from_bytes(b.clone()).as_ref(), Ok(&v));
    b
}

/// Kind number and valid encoding of a value.
fn encode(v: &Value) -> (u8, Bytes) {
    match v {
        Value::Position(a, b, c) => (0, enc(pos(&(*a, *b, *c)))),
        Value::SetPosition(ps) => (1, enc(ObjectSetPosition::new(ps.iter().map(pos).collect()))),
        Value::Client {
            id,
            data,
            positions,
            disconnected,
        } => (
            2,
            enc(Client {
                id: id.clone(),
                data: enc(client_data(data)),
                commit_position: ObjectSetPosition::new(positions.iter().map(pos).collect()),
                state: if *disconnected {
                    ClientState::Disconnected
                } else {
                    ClientState::Connected
                },
            }),
        ),
        Value::Tag { tid, class, data } => (
            3,
            enc(Tag {
                tid: *tid,
                tag_class: *class,
                data: enc(tag_data(data)),
            }),
        ),
        Value::ClientData(m) => (4, enc(client_data(m))),
        Value::TagData(t) => (5, enc(tag_data(t))),
        Value::Namespace(n) => (6, enc(ns(n))),
    }
}

/// Decodes; on success re-encodes and decodes again, which must give the same value.
fn round_trip<T: Decode + Encode + PartialEq + Debug>(bytes: &Bytes) -> Option<T> {
    let v = T::from_bytes(bytes.clone()).ok()?;
    let again = T::from_bytes(v.to_bytes());
    assert_eq!(again.as_ref(), Ok(&v), "re-decode differs for {bytes:02x?}");
    Some(v)
}

fn check(kind: u8, bytes: &Bytes) {
    match kind % 10 {
        0 => {
            round_trip::<ObjectPosition>(bytes);
        }
        1 => {
            round_trip::<ObjectSetPosition>(bytes);
        }
        2 => {
            if let Some(c) = round_trip::<Client>(bytes) {
                round_trip::<ClientData>(&c.data);
            }
        }
        3 => {
            if let Some(t) = round_trip::<Tag>(bytes) {
                round_trip::<TagData>(&t.data);
            }
        }
        4 => {
            round_trip::<ClientData>(bytes);
        }
        5 => {
            round_trip::<TagData>(bytes);
        }
        6 => {
            round_trip::<SnapshotNamespace>(bytes);
        }
        7 => {
            if let Ok(v) = decode_u8("order", bytes) {
                assert_eq!(encode_u8(v), bytes);
            }
        }
        8 => {
            if let Ok(v) = decode_i64("pool_id", bytes) {
                assert_eq!(encode_i64(v), bytes);
            }
        }
        _ => {
            if let Ok(v) = decode_u64("active_set", bytes) {
                assert_eq!(encode_u64(v), bytes);
            }
        }
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw { kind, bytes } => check(kind, &Bytes::from(bytes)),
        Input::Damaged { value, damage } => {
            let (kind, valid) = encode(&value);
            let damaged = Bytes::from(damage.apply(valid.to_vec()));
            check(kind, &damaged);
        }
    }
});
