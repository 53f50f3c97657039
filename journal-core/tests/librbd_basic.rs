//! The journal of a real image written by Ceph 16.2.15's librbd (`tests/data/librbd-basic`,
//! copied from the shared vectors). Ceph's own outputs are the oracle:
//!
//! * every data object scans clean, and each entry sits at splay offset `entry_tid mod 4`;
//! * every payload decodes as an `EventEntry` and re-encodes to the same bytes;
//! * in tid order the events equal what `rbd journal inspect --verbose` printed (`inspect.txt`,
//!   parsed field by field here), and `to_json` reproduces each printed block exactly;
//! * `rbd journal export`'s records carry the same payloads in the same order;
//! * the header's client and tag records carry ClientData / TagData blobs that round-trip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;
use journal_core::client_data::{ClientData, ClientMeta, ImageClientMeta};
use journal_core::encoding::{Decode, Decoder, Encode};
use journal_core::entry::{scan_object, Entry};
use journal_core::event::{Event, EventEntry};
use journal_core::layout::{parse_data_oid, Layout};
use journal_core::snap_namespace::SnapshotNamespace;
use journal_core::tag_data::TagData;

const JOURNAL_ID: &str = "101b91743424";
const POOL_ID: i64 = 1;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/librbd-basic")
}

/// All entries of the journal with their object numbers, in (tag, entry tid) order.
fn entries() -> Vec<(u64, Entry)> {
    let layout = Layout::new(24, 4).unwrap();
    let mut out = Vec::new();
    let mut objects = 0;
    for f in std::fs::read_dir(dir().join("objects")).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        let number = parse_data_oid(POOL_ID, JOURNAL_ID, &name).expect("a data object name");
        let data = Bytes::from(std::fs::read(f.path()).unwrap());
        let scan = scan_object(&data, 0);
        assert!(scan.is_clean(), "{name}: {:?}", scan.corrupt);
        assert!(!scan.partial_tail, "{name}");
        assert_eq!(scan.consumed, data.len() as u64, "{name}");
        for s in scan.entries {
            assert_eq!(
                layout.splay_offset(s.entry.entry_tid),
                layout.splay_offset_of_object(number),
                "{name}: entry {} at offset {}",
                s.entry.entry_tid,
                s.offset
            );
            // The framing re-encodes to the bytes on disk.
            let end = s.offset as usize + s.entry.encoded_len();
            assert_eq!(s.entry.to_bytes(), data.slice(s.offset as usize..end));
            out.push((number, s.entry));
        }
        objects += 1;
    }
    assert_eq!(objects, 4);
    out.sort_by_key(|(_, e)| (e.tag_tid, e.entry_tid));
    out
}

#[test]
fn entries_are_dense_and_round_trip() {
    let all = entries();
    assert_eq!(all.len(), 93);
    for (i, (_, e)) in all.iter().enumerate() {
        assert_eq!(e.tag_tid, 1, "one tag (tid 1) in this capture");
        assert_eq!(e.entry_tid, i as u64, "entry tids are dense from 0");
        let event = EventEntry::from_bytes(e.data.clone()).unwrap();
        assert_eq!(event.to_bytes(), e.data, "entry {}", e.entry_tid);
    }
}

/// One block of `inspect.txt`: the `Entry:` line's numbers and the JSON lines.
struct Inspected {
    tag_id: u64,
    commit_tid: u64,
    json: String,
    fields: Vec<(String, String)>,
}

fn inspect() -> Vec<Inspected> {
    let text = std::fs::read_to_string(dir().join("inspect.txt")).unwrap();
    let mut out: Vec<Inspected> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("Entry: tag_id=") {
            let (tag, commit) = rest.split_once(", commit_tid=").unwrap();
            let mut json = String::new();
            let mut fields = Vec::new();
            for l in lines.by_ref() {
                json.push_str(l);
                if l == "}" {
                    break;
                }
                json.push('\n');
                if let Some((k, v)) = l.trim().split_once(": ") {
                    let k = k.trim_matches('"').to_string();
                    let v = v.trim_end_matches(',').trim_matches('"').to_string();
                    fields.push((k, v));
                }
            }
            out.push(Inspected {
                tag_id: tag.parse().unwrap(),
                commit_tid: commit.parse().unwrap(),
                json,
                fields,
            });
        } else if line == "Summary:" {
            assert_eq!(lines.next(), Some("  93 entries inspected, 0 errors"));
        }
    }
    out
}

/// Parses Ceph's `2026-11-25T03:38:36.315964+0000` (UTC) into seconds and microseconds by
/// counting days, independently of the code under test.
fn parse_time(s: &str) -> (u32, u32) {
    let s = s.strip_suffix("+0000").unwrap();
    let (date, time) = s.split_once('T').unwrap();
    let d: Vec<u64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, usec) = time.split_once('.').unwrap();
    let t: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days = 0;
    for y in 1970..d[0] {
        days += if leap(y) { 366 } else { 365 };
    }
    let month_len = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    for m in 1..d[1] {
        days += month_len[m as usize - 1] + u64::from(m == 2 && leap(d[0]));
    }
    days += d[2] - 1;
    let sec = days * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    (sec as u32, usec.parse().unwrap())
}

/// The fields inspect printed for an event, as this test reads the decoded value
/// (independently of `to_json`).
fn expected_fields(e: &EventEntry) -> Vec<(String, String)> {
    let mut f: Vec<(&str, String)> = vec![("event_type", e.event.name().to_string())];
    let ns = |n: &SnapshotNamespace| {
        assert_eq!(n, &SnapshotNamespace::User);
        ("snapshot_namespace_type", "user".to_string())
    };
    match &e.event {
        Event::AioWrite {
            offset,
            length,
            data,
        } => {
            assert_eq!(data.len() as u64, *length);
            f.push(("offset", offset.to_string()));
            f.push(("length", length.to_string()));
        }
        Event::AioDiscard {
            offset,
            length,
            discard_granularity_bytes,
        } => {
            f.push(("offset", offset.to_string()));
            f.push(("length", length.to_string()));
            f.push((
                "discard_granularity_bytes",
                discard_granularity_bytes.to_string(),
            ));
        }
        Event::AioFlush => {}
        Event::OpFinish { op_tid, result } => {
            f.push(("op_tid", op_tid.to_string()));
            f.push(("op_tid", op_tid.to_string()));
            f.push(("result", result.to_string()));
        }
        Event::SnapCreate {
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
        } => {
            f.push(("op_tid", op_tid.to_string()));
            f.push(("snap_name", snap_name.clone()));
            f.push(ns(namespace));
        }
        Event::SnapRename {
            op_tid,
            dst_snap_name,
            src_snap_id,
            src_snap_name,
        } => {
            f.push(("op_tid", op_tid.to_string()));
            f.push(("src_snap_id", src_snap_id.to_string()));
            f.push(("src_snap_name", src_snap_name.clone()));
            f.push(("dest_snap_name", dst_snap_name.clone()));
        }
        Event::MetadataSet { op_tid, key, value } => {
            f.push(("op_tid", op_tid.to_string()));
            f.push(("key", key.clone()));
            f.push(("value", value.clone()));
        }
        Event::MetadataRemove { op_tid, key } => {
            f.push(("op_tid", op_tid.to_string()));
            f.push(("key", key.clone()));
        }
        Event::Resize { op_tid, size } => {
            f.push(("op_tid", op_tid.to_string()));
            f.push(("size", size.to_string()));
        }
        other => panic!("event not in this capture: {other:?}"),
    }
    f.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[test]
fn events_match_ceph_inspect() {
    let all = entries();
    let printed = inspect();
    assert_eq!(printed.len(), all.len());
    let mut kinds = std::collections::BTreeSet::new();
    for (i, ((_, entry), p)) in all.iter().zip(&printed).enumerate() {
        assert_eq!(p.commit_tid, i as u64 + 1);
        assert_eq!(p.tag_id, entry.tag_tid);
        let event = EventEntry::from_bytes(entry.data.clone()).unwrap();
        kinds.insert(event.event.name());
        // Field by field, timestamp last.
        let (ts_key, ts) = p.fields.last().unwrap();
        assert_eq!(ts_key, "timestamp");
        assert_eq!(
            parse_time(ts),
            (event.timestamp.sec, event.timestamp.nsec / 1000),
            "entry {i}"
        );
        assert_eq!(
            &p.fields[..p.fields.len() - 1],
            &expected_fields(&event)[..],
            "entry {i}"
        );
        // And the whole printed block.
        assert_eq!(event.to_json(), p.json, "entry {i}");
    }
    assert_eq!(kinds.len(), 11, "{kinds:?}");
}

#[test]
fn export_file_carries_the_same_payloads() {
    let text = std::fs::read_to_string(dir().join("journal.export")).unwrap();
    let mut lines = text.split_terminator('\n');
    assert_eq!(lines.next(), Some("# journal_id: 101b91743424"));
    let all = entries();
    let mut n = 0;
    for (line, (_, entry)) in lines.zip(&all) {
        let (len, json) = line.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), json.len());
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4);
        assert_eq!(v["tag_id"], entry.tag_tid);
        assert_eq!(v["commit_tid"], n + 1);
        let payload = base64::engine::general_purpose::STANDARD
            .decode(v["entry"].as_str().unwrap())
            .unwrap();
        assert_eq!(payload, entry.data, "record {n}");
        let event = EventEntry::from_bytes(Bytes::from(payload)).unwrap();
        assert_eq!(v["type"], event.event.event_type());
        n += 1;
    }
    assert_eq!(n, 93);
}

fn omap(key: &str) -> Bytes {
    Bytes::from(std::fs::read(dir().join("header-omap").join(key)).unwrap())
}

/// The data blob of a `Client` record (envelope, id, blob, ...), read minimally.
fn client_blob(record: Bytes) -> (String, Bytes) {
    let mut d = Decoder::new(record);
    d.envelope("client", 1, |d, _| Ok((d.string("id")?, d.blob("data")?)))
        .unwrap()
}

/// The data blob of a `Tag` record (envelope, tid, class, blob), read minimally.
fn tag_blob(record: Bytes) -> (u64, u64, Bytes) {
    let mut d = Decoder::new(record);
    let out = d
        .envelope("tag", 1, |d, _| {
            Ok((d.u64("tid")?, d.u64("class")?, d.blob("data")?))
        })
        .unwrap();
    assert_eq!(d.remaining(), 0);
    out
}

#[test]
fn header_client_and_tag_blobs() {
    let (id, blob) = client_blob(omap("client_"));
    assert_eq!(id, "");
    let data = ClientData::from_bytes(blob.clone()).unwrap();
    assert_eq!(
        data.meta,
        ClientMeta::Image(ImageClientMeta {
            tag_class: 0,
            resync_requested: false
        })
    );
    assert_eq!(data.to_bytes(), blob);

    // The extra client was registered the way the CLI does: with an empty blob.
    let (id, blob) = client_blob(omap("client_HOLD"));
    assert_eq!((id.as_str(), blob.len()), ("HOLD", 0));

    for (key, tid) in [("tag_0000000000000000", 0), ("tag_0000000000000001", 1)] {
        let (got_tid, class, blob) = tag_blob(omap(key));
        assert_eq!((got_tid, class), (tid, 0));
        let tag = TagData::from_bytes(blob.clone()).unwrap();
        assert!(tag.is_local_primary());
        assert_eq!(tag, TagData::default());
        assert_eq!(tag.to_bytes(), blob);
    }
}
