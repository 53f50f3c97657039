//! Bounded memory: a large backlog played with a small prefetch budget never holds more than
//! the budget plus one read chunk of fetched-but-undelivered bytes, and still delivers every
//! entry in order. The oracle is the list of entries the test wrote.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod player_support;

use journal_core::entry::Entry;
use journal_core::header::ObjectSetPosition;
use journal_core::player::{PlayMode, PlayerEvent, PlayerOptions};
use player_support::{payload, TestJournal};

#[test]
fn large_backlog_stays_within_budget() {
    const ENTRIES: u64 = 4000;
    const PAYLOAD: usize = 16 << 10;
    const BUDGET: u64 = 1 << 20;
    // 4 MiB objects, W = 4: about 16 MiB per set, so the 64 MiB backlog spans four sets.
    let j = TestJournal::new(22, 4);
    let limit = j.layout.soft_limit();
    let width = u64::from(j.layout.splay_width);
    let mut set = 0u64;
    let mut sizes = vec![0u64; 64];
    let mut placed = Vec::new();
    for tid in 0..ENTRIES {
        let e = Entry::new(1, tid, payload(1, tid, PAYLOAD));
        let len = e.encoded_len() as u64;
        let mut n = set * width + tid % width;
        if sizes[n as usize] + len > limit {
            // The object would overflow: the writer closes the whole set (§6.3).
            set += 1;
            n = set * width + tid % width;
        }
        j.raw(n, &e.to_bytes());
        sizes[n as usize] += len;
        placed.push((tid, n));
    }
    assert!(set >= 3, "the backlog should span several sets, got {set}");

    let options = PlayerOptions {
        prefetch_bytes_max: BUDGET,
        mode: PlayMode::OneShot,
        ..PlayerOptions::default()
    };
    let mut p = j.player_with(set, &ObjectSetPosition::default(), options);
    let chunk = p.chunk_bytes();
    assert_eq!(chunk, BUDGET / width);
    let mut got = Vec::new();
    let mut max_seen = 0;
    while let PlayerEvent::Entry(e) = p.next().unwrap() {
        assert_eq!(e.entry.data.len(), PAYLOAD);
        assert_eq!(&e.entry.data[..8], &payload(1, e.entry.entry_tid, 8)[..]);
        got.push((e.entry.entry_tid, e.object_number));
        max_seen = max_seen.max(p.buffered_bytes());
    }
    assert_eq!(got, placed);
    assert!(max_seen <= BUDGET + chunk, "max buffered {max_seen}");
    let peak = p.peak_buffered_bytes();
    assert!(peak >= max_seen);
    assert!(peak <= BUDGET + chunk, "peak buffered {peak}");
    // The budget is actually used (reads are not trivially small).
    assert!(peak > BUDGET / 2, "peak buffered {peak}");
    assert_eq!(p.buffered_bytes(), 0);
}
