//! `CommitTracker` against a naive reference model of spec §7.2: after any sequence of
//! out-of-order commits, the position equals the initial position with the **longest committed
//! prefix** of records (in allocation order) pushed at the front one by one, then reduced to the
//! first occurrence of each splay offset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use journal_core::commit::{CommitTid, CommitTracker};
use journal_core::header::{ObjectPosition, ObjectSetPosition};
use proptest::prelude::*;

/// The reference: fold the whole prefix from scratch, exactly as the spec words it.
fn reference(
    width: u64,
    initial: &[ObjectPosition],
    prefix: &[ObjectPosition],
) -> Vec<ObjectPosition> {
    let mut list: Vec<ObjectPosition> = initial.to_vec();
    for p in prefix {
        list.insert(0, *p);
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for p in list {
        let offset = p.object_number % width;
        if !seen.contains(&offset) {
            seen.push(offset);
            out.push(p);
        }
    }
    out
}

/// A plausible stream of records: a writer of one tag appending entries round robin, sets
/// advancing now and then (object numbers grow per offset), plus a random commit order.
fn scenario() -> impl Strategy<Value = (u8, Vec<u64>, Vec<usize>)> {
    (1u8..=6, 1usize..40).prop_flat_map(|(width, n)| {
        (
            Just(width),
            // per-entry set bump flags
            proptest::collection::vec(prop_oneof![9 => Just(0u64), 1 => Just(1u64)], n),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn matches_reference_model((width, bumps, order) in scenario(), initial_sets in 0u64..2) {
        let w = u64::from(width);
        // Initial position: one entry of an older tag per offset in set `initial_sets`, newest
        // first (entry tids descending).
        let initial: Vec<ObjectPosition> = (0..w)
            .rev()
            .map(|o| ObjectPosition { object_number: initial_sets * w + o, tag_tid: 1, entry_tid: o })
            .collect();
        let mut tracker = CommitTracker::new(width, ObjectSetPosition { object_positions: initial.clone() });

        let mut set = initial_sets;
        let mut records = Vec::new();
        let mut tids = Vec::new();
        for (e, bump) in bumps.iter().enumerate() {
            set += bump;
            let e = e as u64;
            let p = ObjectPosition { object_number: set * w + e % w, tag_tid: 2, entry_tid: e };
            tids.push(tracker.allocate(p.object_number, p.tag_tid, p.entry_tid));
            records.push(p);
        }
        prop_assert_eq!(tids.first().copied(), Some(CommitTid(1)));

        let mut done = vec![false; records.len()];
        let mut prev_prefix = 0;
        for i in order {
            let changed = tracker.committed(tids[i]).unwrap();
            done[i] = true;
            let prefix = done.iter().take_while(|d| **d).count();
            let expected = reference(w, &initial, &records[..prefix]);
            let now = tracker.position();
            prop_assert_eq!(&now.object_positions, &expected);
            prop_assert_eq!(changed, prefix > prev_prefix);
            if changed {
                prop_assert_eq!(tracker.take_if_changed(), Some(now.clone()));
            } else {
                prop_assert_eq!(tracker.take_if_changed(), None);
            }
            prop_assert_eq!(tracker.outstanding(), records.len() - prefix);
            prev_prefix = prefix;
        }
    }
}
