//! The journal `Player` over 1–4 data objects of a `MemStore` journal holding arbitrary or
//! piece-built bytes, with an arbitrary layout, active set, commit position, prefetch budget and
//! mode. `next()` is called until `End` or an error and must never panic or loop forever.
//!
//! Oracles (spec §10): every delivered entry's framed bytes occur in the object it is reported
//! from; delivered tags never decrease; within a tag, entry tids are consecutive; a final error
//! (corrupt object, missing entry) is returned again by the next call; the bytes buffered never
//! exceed the bytes stored.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use arbitrary::Arbitrary;
use bytes::Bytes;
use journal_core::header::{ObjectPosition, ObjectSetPosition};
use journal_core::layout::{data_oid, Layout};
use journal_core::player::{
    JournalInfo, PlayMode, Player, PlayerError, PlayerEvent, PlayerOptions,
};
use libfuzzer_sys::fuzz_target;
use object_store_trait::{AppendGuard, MemStore, ObjectStore};
use rbdj_fuzz::ObjectBytes;

const POOL: i64 = 2;
const JOURNAL: &str = "fz";

#[derive(Arbitrary, Debug)]
struct Input {
    order: u8,
    width: u8,
    active_set: u8,
    live: bool,
    small_prefetch: bool,
    positions: Vec<(u8, u8, u8)>,
    objects: Vec<(u8, ObjectBytes)>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|input: Input| {
    // Orders 12..=16 (objects of 4-64 KiB), widths 1..=4, active set 0..=3: the player walks
    // every set below the active one, so a huge active set only costs time, not coverage.
    let Ok(layout) = Layout::new(12 + input.order % 5, 1 + input.width % 4) else {
        return;
    };
    let width = u64::from(layout.splay_width);
    let active_set = u64::from(input.active_set % 4);
    let store = Arc::new(MemStore::new());
    let mut stored: HashMap<u64, Vec<u8>> = HashMap::new();
    for (n, obj) in input.objects.iter().take(4) {
        let n = u64::from(*n) % (width * 4);
        let bytes = obj.bytes(0);
        if bytes.is_empty() || stored.contains_key(&n) {
            continue;
        }
        let oid = data_oid(POOL, JOURNAL, n);
        store
            .append(&oid, &[Bytes::from(bytes.clone())], &AppendGuard::none())
            .expect("memstore append");
        stored.insert(n, bytes);
    }
    let total: u64 = stored.values().map(|b| b.len() as u64).sum();
    let start = ObjectSetPosition::new(
        input
            .positions
            .iter()
            .take(4)
            .map(|&(o, t, e)| ObjectPosition {
                object_number: u64::from(o) % (width * 4),
                tag_tid: u64::from(t % 8),
                entry_tid: u64::from(e),
            })
            .collect(),
    );
    let info = JournalInfo {
        journal_id: JOURNAL.into(),
        pool_id_for_names: POOL,
        layout,
        active_set,
    };
    let options = PlayerOptions {
        prefetch_bytes_max: if input.small_prefetch { 4096 } else { 16 << 20 },
        max_fetch_bytes: None,
        mode: if input.live {
            PlayMode::Live
        } else {
            PlayMode::OneShot
        },
    };
    let mut player = Player::new(store, info, &start, options);

    let mut last: Option<(u64, u64)> = None;
    let mut ends = 0;
    let mut calls = 0u64;
    loop {
        calls += 1;
        assert!(
            calls <= total / 33 + 16,
            "player keeps going: {calls} calls, {total} bytes"
        );
        match player.next() {
            Ok(PlayerEvent::Entry(e)) => {
                let framed = e.entry.to_bytes();
                let obj = stored
                    .get(&e.object_number)
                    .expect("delivered from an object that exists");
                assert!(
                    contains(obj, &framed),
                    "entry not in object {}",
                    e.object_number
                );
                let (tag, tid) = (e.entry.tag_tid, e.entry.entry_tid);
                if let Some((lt, le)) = last {
                    assert!(tag >= lt, "tag went back: {lt} -> {tag}");
                    if tag == lt {
                        assert_eq!(tid, le + 1, "tag {tag}: tid {le} then {tid}");
                    }
                }
                last = Some((tag, tid));
                assert_eq!(player.last_delivered(), last);
            }
            Ok(PlayerEvent::End) => {
                ends += 1;
                // One-shot: stop at the first End; live: a re-read finds nothing new either.
                if !input.live || ends >= 2 {
                    break;
                }
            }
            Err(e) => {
                let final_error = matches!(
                    e,
                    PlayerError::Corrupt { .. } | PlayerError::MissingEntry { .. }
                );
                assert!(final_error, "unexpected error {e:?}");
                let again = player.next();
                assert_eq!(
                    format!("{:?}", again.err()),
                    format!("{:?}", Some(e)),
                    "final error not latched"
                );
                break;
            }
        }
    }
    assert!(player.peak_buffered_bytes() <= total);
});
