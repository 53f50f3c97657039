//! A raw capture of one journal (header omap, data objects, `rbd journal export`) and the codec
//! checks run on it: every value Ceph wrote decodes in journal-core and re-encodes byte-for-byte.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use journal_core::client_data::ClientData;
use journal_core::encoding::{Decode, Encode};
use journal_core::entry::scan_object;
use journal_core::event::EventEntry;
use journal_core::header::records::{decode_i64, decode_u64, decode_u8};
use journal_core::header::{Client, Tag};
use journal_core::layout::{parse_data_oid, Layout};
use journal_core::tag_data::TagData;

/// One journal, raw.
#[derive(Debug, Default)]
pub struct Capture {
    /// Pool id in the data object names.
    pub pool_id: i64,
    /// Journal (image) id.
    pub journal_id: String,
    /// Every omap entry of `journal.<id>`.
    pub header: BTreeMap<String, Bytes>,
    /// Every data object, by name.
    pub objects: BTreeMap<String, Bytes>,
    /// `rbd journal export` of the journal.
    pub export: String,
}

/// What a checked capture contained.
#[derive(Debug, Default)]
pub struct Stats {
    /// Entries found in the data objects.
    pub entries: usize,
    /// Distinct tag tids among the entries.
    pub entry_tags: BTreeSet<u64>,
    /// Tag records in the header.
    pub header_tags: usize,
    /// Event names seen.
    pub events: BTreeSet<&'static str>,
    /// Highest object number present.
    pub max_object: u64,
    /// Client ids.
    pub clients: Vec<String>,
}

impl Capture {
    /// Reads a capture saved by [`Capture::save`].
    pub fn load(dir: &Path) -> Capture {
        let meta = std::fs::read_to_string(dir.join("journal")).unwrap();
        let (pool, id) = meta.trim().split_once(' ').unwrap();
        let mut cap = Capture {
            pool_id: pool.parse().unwrap(),
            journal_id: id.to_owned(),
            export: std::fs::read_to_string(dir.join("journal.export")).unwrap(),
            ..Capture::default()
        };
        for (sub, map) in [
            ("header-omap", &mut cap.header),
            ("objects", &mut cap.objects),
        ] {
            for f in std::fs::read_dir(dir.join(sub)).unwrap() {
                let f = f.unwrap();
                let name = f.file_name().into_string().unwrap();
                map.insert(name, Bytes::from(std::fs::read(f.path()).unwrap()));
            }
        }
        cap
    }

    /// Writes the capture under `dir` (`journal` = "<pool id> <journal id>", `header-omap/<key>`,
    /// `objects/<oid>`, `journal.export`).
    pub fn save(&self, dir: &Path) {
        for sub in ["header-omap", "objects"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(
            dir.join("journal"),
            format!("{} {}\n", self.pool_id, self.journal_id),
        )
        .unwrap();
        std::fs::write(dir.join("journal.export"), &self.export).unwrap();
        for (key, value) in &self.header {
            assert!(!key.is_empty() && !key.contains('/'), "omap key {key:?}");
            std::fs::write(dir.join("header-omap").join(key), value).unwrap();
        }
        for (oid, data) in &self.objects {
            std::fs::write(dir.join("objects").join(oid), data).unwrap();
        }
    }

    /// Checks every header value, entry and event; panics on the first mismatch.
    pub fn check(&self) -> Stats {
        let mut stats = Stats::default();
        let h = |k: &str| {
            self.header
                .get(k)
                .unwrap_or_else(|| panic!("header key {k} missing"))
        };
        let order = decode_u8("order", h("order")).unwrap();
        let splay = decode_u8("splay_width", h("splay_width")).unwrap();
        let pool = decode_i64("pool_id", h("pool_id")).unwrap();
        assert_eq!(h("pool_id").as_ref(), pool.to_le_bytes());
        for key in [
            "minimum_set",
            "active_set",
            "next_tag_tid",
            "next_tag_class",
        ] {
            let v = decode_u64(key, h(key)).unwrap();
            assert_eq!(h(key).as_ref(), v.to_le_bytes(), "{key}");
        }
        let layout = Layout::new(order, splay).unwrap();
        for (key, value) in &self.header {
            if let Some(id) = key.strip_prefix("client_") {
                let client = Client::from_bytes(value.clone()).unwrap();
                assert_eq!(client.id, id);
                assert_eq!(&client.to_bytes(), value, "{key} re-encodes");
                if !client.data.is_empty() {
                    let data = ClientData::from_bytes(client.data.clone()).unwrap();
                    assert_eq!(data.to_bytes(), client.data, "{key} ClientData re-encodes");
                }
                stats.clients.push(client.id);
            } else if let Some(hex) = key.strip_prefix("tag_") {
                let tag = Tag::from_bytes(value.clone()).unwrap();
                assert_eq!(u64::from_str_radix(hex, 16).unwrap(), tag.tid);
                assert_eq!(&tag.to_bytes(), value, "{key} re-encodes");
                let data = TagData::from_bytes(tag.data.clone()).unwrap();
                assert_eq!(data.to_bytes(), tag.data, "{key} TagData re-encodes");
                stats.header_tags += 1;
            }
        }
        // Data objects: clean scans, entries at their splay offset, byte-exact re-encoding.
        let mut payloads: BTreeMap<(u64, u64), Bytes> = BTreeMap::new();
        for (oid, data) in &self.objects {
            let number = parse_data_oid(self.pool_id, &self.journal_id, oid)
                .unwrap_or_else(|| panic!("{oid} is not a data object of this journal"));
            stats.max_object = stats.max_object.max(number);
            let scan = scan_object(data, 0);
            assert!(scan.is_clean(), "{oid}: {:?}", scan.corrupt);
            assert!(!scan.partial_tail, "{oid}: partial tail");
            for s in scan.entries {
                let e = &s.entry;
                let end = s.offset as usize + e.encoded_len();
                assert_eq!(
                    e.to_bytes(),
                    data.slice(s.offset as usize..end),
                    "{oid}@{}",
                    s.offset
                );
                assert_eq!(
                    layout.splay_offset_of_object(number),
                    layout.splay_offset(e.entry_tid),
                    "{oid}: entry {} at the wrong splay offset",
                    e.entry_tid
                );
                let event = EventEntry::from_bytes(e.data.clone())
                    .unwrap_or_else(|err| panic!("{oid} entry {}: {err}", e.entry_tid));
                assert_eq!(
                    event.to_bytes(),
                    e.data,
                    "{oid} entry {} re-encodes",
                    e.entry_tid
                );
                stats.events.insert(event.event.name());
                stats.entry_tags.insert(e.tag_tid);
                assert!(payloads
                    .insert((e.tag_tid, e.entry_tid), e.data.clone())
                    .is_none());
            }
        }
        stats.entries = payloads.len();
        // Ceph's own export lists the same entries, in (tag, entry) order, with the same payloads.
        let mut lines = self.export.split_terminator('\n');
        assert_eq!(
            lines.next(),
            Some(format!("# journal_id: {}", self.journal_id).as_str())
        );
        let records: Vec<&str> = lines.collect();
        assert_eq!(
            records.len(),
            payloads.len(),
            "export and objects disagree on the entry count"
        );
        let mut exported = 0;
        for (line, ((tag, _), payload)) in records.iter().zip(&payloads) {
            let (len, json) = line.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), json.len());
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(v["tag_id"], *tag);
            let b64 = v["entry"].as_str().unwrap();
            assert_eq!(
                base64_decode(b64),
                payload.as_ref(),
                "export record {exported}"
            );
            exported += 1;
        }
        assert_eq!(exported, payloads.len());
        stats
    }
}

/// Standard base64 (with padding), decoded independently of journal-core.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}
