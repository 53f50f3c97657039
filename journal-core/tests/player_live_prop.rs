//! Live tailing while the journal is written: a writer following §6 appends entries of several
//! tags one by one (closing sets now and then and publishing the new active set), and between
//! appends a driver polls the live player the way a tailer would (refresh the active set, report
//! a newer tag, call `next` until `End`). Whatever the interleaving, the entries delivered are
//! exactly the entries written, tag by tag in entry-tid order, and nothing is delivered twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod player_support;

use std::collections::HashMap;

use bytes::Bytes;
use journal_core::entry::Entry;
use journal_core::header::ObjectSetPosition;
use journal_core::player::{PlayMode, Player, PlayerEvent, PlayerOptions};
use player_support::{payload, Placed, TestJournal};
use proptest::prelude::*;

/// What the driver knows from the header.
struct Header {
    active_set: u64,
    newest_tag: Option<u64>,
}

/// One poll round: refresh, report a newer tag, then take entries until `End`.
fn poll(player: &mut Player, header: &Header, out: &mut Vec<Placed>) -> usize {
    player.refresh(header.active_set);
    if player.active_tag().is_some() && player.active_tag() < header.newest_tag {
        player.mark_newer_tag_exists();
    }
    let mut n = 0;
    while let PlayerEvent::Entry(e) = player.next().unwrap() {
        out.push((e.entry.tag_tid, e.entry.entry_tid, e.object_number));
        n += 1;
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn tailing_while_writing_delivers_everything_once(
        width in 1u8..=4,
        tags in proptest::collection::vec(1usize..20, 1..4),
        sizes in proptest::collection::vec(0usize..700, 80),
        closes in proptest::collection::vec(prop_oneof![12 => Just(false), 1 => Just(true)], 80),
        polls in proptest::collection::vec(prop_oneof![2 => Just(false), 1 => Just(true)], 80),
        budget in prop_oneof![Just(4096u64), Just(1 << 20)],
    ) {
        let j = TestJournal::new(12, width);
        let w = u64::from(width);
        let limit = j.layout.soft_limit();
        let options = PlayerOptions { prefetch_bytes_max: budget, mode: PlayMode::Live, ..PlayerOptions::default() };
        let mut player = j.player_with(0, &ObjectSetPosition::default(), options);
        let mut header = Header { active_set: 0, newest_tag: None };
        let mut sizes_of: HashMap<u64, u64> = HashMap::new();
        let mut written = Vec::new();
        let mut got = Vec::new();
        let mut step = 0usize;
        for (t, &count) in tags.iter().enumerate() {
            let tag = 1 + t as u64 * 2;
            // A new owner allocates its tag before its first append.
            header.newest_tag = Some(tag);
            for tid in 0..count as u64 {
                let e = Entry::new(tag, tid, Bytes::from(payload(tag, tid, sizes[step % 80])));
                let len = e.encoded_len() as u64;
                let mut n = header.active_set * w + tid % w;
                if closes[step % 80] || sizes_of.get(&n).copied().unwrap_or(0) + len > limit {
                    // Close the set: later appends go to the next one, then the header moves.
                    header.active_set += 1;
                    n = header.active_set * w + tid % w;
                }
                j.raw(n, &e.to_bytes());
                *sizes_of.entry(n).or_insert(0) += len;
                written.push((tag, tid, n));
                if polls[step % 80] {
                    poll(&mut player, &header, &mut got);
                }
                step += 1;
            }
        }
        // The writers are done; the tailer keeps polling until nothing comes for a few rounds.
        let mut idle = 0;
        while idle < 3 {
            if poll(&mut player, &header, &mut got) == 0 {
                idle += 1;
            } else {
                idle = 0;
            }
        }
        prop_assert_eq!(got, written);
    }
}
