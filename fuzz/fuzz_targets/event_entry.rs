//! `EventEntry` (the payload of every RBD journal entry): decode → encode → decode must give the
//! same value, and the `rbd journal inspect` JSON rendering of anything that decodes must not
//! panic. Inputs are raw bytes or a valid encoding of a fuzzer-built event with a little damage
//! (whose undamaged form must decode back to the event).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use journal_core::encoding::{Decode, Encode, UTime};
use journal_core::snap_namespace::SnapshotNamespace;
use journal_core::{Event, EventEntry};
use libfuzzer_sys::fuzz_target;
use rbdj_fuzz::Damage;

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Damaged {
        event: Ev,
        sec: u32,
        nsec: u32,
        damage: Damage,
    },
}

#[derive(Arbitrary, Debug)]
enum Ev {
    Discard(u64, u64, u32),
    Write(u64, Vec<u8>),
    Flush,
    OpFinish(u64, i32),
    SnapCreate(u64, String, Option<(i64, String, String)>),
    SnapRename(u64, String, u64, String),
    Resize(u64, u64),
    DemotePromote,
    UpdateFeatures(u64, u64, bool),
    MetadataSet(u64, String, String),
    WriteSame(u64, u64, Vec<u8>),
    CompareAndWrite(u64, Vec<u8>, Vec<u8>),
    Unknown(u32),
}

fn event(e: &Ev) -> Event {
    match e {
        Ev::Discard(offset, length, g) => Event::AioDiscard {
            offset: *offset,
            length: *length,
            discard_granularity_bytes: *g,
        },
        Ev::Write(offset, data) => Event::AioWrite {
            offset: *offset,
            length: data.len() as u64,
            data: Bytes::from(data.clone()),
        },
        Ev::Flush => Event::AioFlush,
        Ev::OpFinish(op_tid, result) => Event::OpFinish {
            op_tid: *op_tid,
            result: *result,
        },
        Ev::SnapCreate(op_tid, snap_name, group) => Event::SnapCreate {
            op_tid: *op_tid,
            snap_name: snap_name.clone(),
            namespace: match group {
                None => SnapshotNamespace::User,
                Some((pool, g, s)) => SnapshotNamespace::Group {
                    pool: *pool,
                    group_id: g.clone(),
                    group_snapshot_id: s.clone(),
                },
            },
        },
        Ev::SnapRename(op_tid, dst, id, src) => Event::SnapRename {
            op_tid: *op_tid,
            dst_snap_name: dst.clone(),
            src_snap_id: *id,
            src_snap_name: src.clone(),
        },
        Ev::Resize(op_tid, size) => Event::Resize {
            op_tid: *op_tid,
            size: *size,
        },
        Ev::DemotePromote => Event::DemotePromote,
        Ev::UpdateFeatures(op_tid, features, enabled) => Event::UpdateFeatures {
            op_tid: *op_tid,
            features: *features,
            enabled: *enabled,
        },
        Ev::MetadataSet(op_tid, key, value) => Event::MetadataSet {
            op_tid: *op_tid,
            key: key.clone(),
            value: value.clone(),
        },
        Ev::WriteSame(offset, length, data) => Event::AioWriteSame {
            offset: *offset,
            length: *length,
            data: Bytes::from(data.clone()),
        },
        Ev::CompareAndWrite(offset, cmp, write) => Event::AioCompareAndWrite {
            offset: *offset,
            length: write.len() as u64,
            cmp_data: Bytes::from(cmp.clone()),
            write_data: Bytes::from(write.clone()),
        },
        Ev::Unknown(t) => Event::Unknown {
            event_type: (*t).max(20),
        },
    }
}

fn check(bytes: Bytes) {
    let Ok(v) = EventEntry::from_bytes(bytes.clone()) else {
        return;
    };
    let again = EventEntry::from_bytes(v.to_bytes());
    assert_eq!(again.as_ref(), Ok(&v), "re-decode differs for {bytes:02x?}");
    let json = v.to_json();
    assert!(json.starts_with('{') && json.ends_with('}'));
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(b) => check(Bytes::from(b)),
        Input::Damaged {
            event: e,
            sec,
            nsec,
            damage,
        } => {
            let entry = EventEntry::new(event(&e), UTime { sec, nsec });
            let valid = entry.to_bytes();
            assert_eq!(EventEntry::from_bytes(valid.clone()), Ok(entry));
            check(Bytes::from(damage.apply(valid.to_vec())));
        }
    }
});
