//! Header records against independent oracles: the expected bytes of spec §16.1 (Ceph's
//! dencoder test instances and a fresh journal's header), and the header omap of a real journal
//! written by Ceph 16.2.15 (`tests/data/librbd-basic/header-omap`) together with what
//! `rbd journal status/info --format json` printed for it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;

use bytes::Bytes;
use journal_core::encoding::{Decode, Encode};
use journal_core::header::{
    client_key, decode_i64, decode_u64, decode_u8, encode_i64, encode_u64, encode_u8, tag_key,
    Client, ClientState, ObjectPosition, ObjectSetPosition, Tag,
};
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ones(n: usize) -> String {
    "31".repeat(n)
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/librbd-basic")
}

fn omap_file(key: &str) -> Bytes {
    Bytes::from(std::fs::read(data_dir().join("header-omap").join(key)).unwrap())
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join(name)).unwrap()).unwrap()
}

#[test]
fn object_position_dencoder_2() {
    let want = hex("0101 18000000 0100000000000000 0200000000000000 0300000000000000");
    let pos = ObjectPosition {
        object_number: 1,
        tag_tid: 2,
        entry_tid: 3,
    };
    assert_eq!(&pos.to_bytes()[..], &want[..]);
    assert_eq!(ObjectPosition::from_bytes(Bytes::from(want)).unwrap(), pos);
}

#[test]
fn object_set_position_dencoder_2() {
    let want = hex(concat!(
        "0101 40000000 02000000",
        "0101 18000000 0000000000000000 0100000000000000 7800000000000000",
        "0101 18000000 7900000000000000 0200000000000000 7900000000000000"
    ));
    let pos = ObjectSetPosition::new(vec![
        ObjectPosition {
            object_number: 0,
            tag_tid: 1,
            entry_tid: 120,
        },
        ObjectPosition {
            object_number: 121,
            tag_tid: 2,
            entry_tid: 121,
        },
    ]);
    assert_eq!(&pos.to_bytes()[..], &want[..]);
    assert_eq!(
        ObjectSetPosition::from_bytes(Bytes::from(want)).unwrap(),
        pos
    );
}

#[test]
fn client_dencoder_2() {
    let want = hex(&format!(
        "0101 95000000 02000000 6964 80000000 {} 0101 04000000 00000000 00",
        ones(128)
    ));
    let client = Client {
        id: "id".into(),
        data: Bytes::from(vec![b'1'; 128]),
        commit_position: ObjectSetPosition::default(),
        state: ClientState::Connected,
    };
    assert_eq!(&client.to_bytes()[..], &want[..]);
    assert_eq!(Client::from_bytes(Bytes::from(want)).unwrap(), client);
}

#[test]
fn tag_dencoder_2() {
    let want = hex(&format!(
        "0101 94000000 7b00000000000000 ea00000000000000 80000000 {}",
        ones(128)
    ));
    let tag = Tag {
        tid: 123,
        tag_class: 234,
        data: Bytes::from(vec![b'1'; 128]),
    };
    assert_eq!(&tag.to_bytes()[..], &want[..]);
    assert_eq!(Tag::from_bytes(Bytes::from(want)).unwrap(), tag);
}

#[test]
fn fresh_journal_header_values() {
    assert_eq!(&encode_u8(24)[..], &hex("18")[..]);
    assert_eq!(&encode_u8(4)[..], &hex("04")[..]);
    assert_eq!(&encode_i64(-1)[..], &hex("ffffffffffffffff")[..]);
    assert_eq!(&encode_u64(0)[..], &hex("0000000000000000")[..]);
    assert_eq!(&encode_u64(1)[..], &hex("0100000000000000")[..]);
    let tag0 = Tag {
        tid: 0,
        tag_class: 0,
        data: Bytes::from(vec![0u8; 25]),
    };
    let want_tag0 = hex(&format!(
        "0101 2d000000 0000000000000000 0000000000000000 19000000 {}",
        "00".repeat(25)
    ));
    assert_eq!(&tag0.to_bytes()[..], &want_tag0[..]);
    assert_eq!(tag_key(0), "tag_0000000000000000");
    let image_client = Client {
        id: String::new(),
        data: Bytes::from(hex("0201 0d000000 00000000 0000000000000000 00")),
        commit_position: ObjectSetPosition::default(),
        state: ClientState::Connected,
    };
    let want_client = hex(
        "0101 26000000 00000000 13000000 0201 0d000000 00000000 0000000000000000 00 0101 04000000 00000000 00",
    );
    assert_eq!(&image_client.to_bytes()[..], &want_client[..]);
    assert_eq!(client_key(""), "client_");
}

#[test]
fn real_scalar_values_agree_with_rbd_journal_info_and_status() {
    let info = json("journal-info.json");
    let status = json("journal-status.json");
    let order = decode_u8("order", &omap_file("order")).unwrap();
    let width = decode_u8("splay_width", &omap_file("splay_width")).unwrap();
    assert_eq!(u64::from(order), info["order"].as_u64().unwrap());
    assert_eq!(u64::from(width), info["splay_width"].as_u64().unwrap());
    assert_eq!(decode_i64("pool_id", &omap_file("pool_id")).unwrap(), -1);
    let min = decode_u64("minimum_set", &omap_file("minimum_set")).unwrap();
    let active = decode_u64("active_set", &omap_file("active_set")).unwrap();
    assert_eq!(min, status["minimum_set"].as_u64().unwrap());
    assert_eq!(active, status["active_set"].as_u64().unwrap());
    // README: one tag class, tags 0 and 1.
    assert_eq!(
        decode_u64("next_tag_tid", &omap_file("next_tag_tid")).unwrap(),
        2
    );
    assert_eq!(
        decode_u64("next_tag_class", &omap_file("next_tag_class")).unwrap(),
        1
    );
    // Scalar encoders reproduce the stored bytes.
    assert_eq!(encode_u8(order), omap_file("order"));
    assert_eq!(encode_u8(width), omap_file("splay_width"));
    assert_eq!(encode_i64(-1), omap_file("pool_id"));
    assert_eq!(encode_u64(min), omap_file("minimum_set"));
}

#[test]
fn real_clients_agree_with_rbd_journal_status() {
    let status = json("journal-status.json");
    let want_clients = status["registered_clients"].as_array().unwrap();
    assert_eq!(want_clients.len(), 2);
    for want in want_clients {
        let id = want["id"].as_str().unwrap();
        let bytes = omap_file(&client_key(id));
        let client = Client::from_bytes(bytes.clone()).unwrap();
        assert_eq!(
            client.to_bytes(),
            bytes,
            "client {id:?} re-encodes byte-exact"
        );
        assert_eq!(client.id, id);
        assert_eq!(client.state.name(), want["state"].as_str().unwrap());
        let want_positions = want["commit_position"]["object_positions"]
            .as_array()
            .unwrap();
        let got: Vec<(u64, u64, u64)> = client
            .commit_position
            .object_positions
            .iter()
            .map(|p| (p.object_number, p.tag_tid, p.entry_tid))
            .collect();
        let expected: Vec<(u64, u64, u64)> = want_positions
            .iter()
            .map(|p| {
                (
                    p["object_number"].as_u64().unwrap(),
                    p["tag_tid"].as_u64().unwrap(),
                    p["entry_tid"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected, "client {id:?} commit position");
        // `data` is printed as a hexdump: its first line's bytes are the blob's first bytes.
        let dump = want["data"].as_str().unwrap();
        let printed: Vec<u8> = dump
            .lines()
            .filter(|l| l.len() > 10 && l.contains('|'))
            .flat_map(|l| {
                let body = &l[8..l.find('|').unwrap()];
                body.split_whitespace()
                    .map(|h| u8::from_str_radix(h, 16).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(&client.data[..], &printed[..], "client {id:?} data blob");
    }
}

#[test]
fn real_tags_round_trip() {
    for tid in [0u64, 1] {
        let bytes = omap_file(&tag_key(tid));
        let tag = Tag::from_bytes(bytes.clone()).unwrap();
        assert_eq!(tag.tid, tid);
        assert_eq!(tag.tag_class, 0);
        assert_eq!(tag.data.len(), 25);
        assert_eq!(tag.to_bytes(), bytes);
    }
}
