//! The player on hand-built journals. Each test places entries into objects the way the spec's
//! writer rules (§6) put them, adds one situation of §5.2 / §10, and compares the delivered
//! sequence with one worked out by hand from the rules of §10.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod player_support;

use journal_core::entry::Entry;
use journal_core::header::ObjectSetPosition;
use journal_core::player::{PlayMode, PlayerError, PlayerEvent};
use player_support::{drain, drain_ok, position, TestJournal};

fn empty() -> ObjectSetPosition {
    ObjectSetPosition::default()
}

/// W = 2, tag 1, entries 0..=7. Set 0 closes after entry 4 (offset 0 overflowed), so offset 1 of
/// set 0 ends at entry 3 and entry 5 goes to object 3.
fn two_sets() -> TestJournal {
    let j = TestJournal::new(12, 2);
    for (n, tid) in [
        (0, 0),
        (1, 1),
        (0, 2),
        (1, 3),
        (0, 4),
        (3, 5),
        (2, 6),
        (3, 7),
    ] {
        j.put(n, 1, tid);
    }
    j
}

#[test]
fn round_robin_across_sets() {
    let j = two_sets();
    let got = drain_ok(&mut j.player(1, &empty(), PlayMode::OneShot));
    // k alternates 0,1; an exhausted object of set 0 (< active set 1) gives way to +W.
    let want = vec![
        (1, 0, 0),
        (1, 1, 1),
        (1, 2, 0),
        (1, 3, 1),
        (1, 4, 0),
        (1, 5, 3),
        (1, 6, 2),
        (1, 7, 3),
    ];
    assert_eq!(got, want);
}

#[test]
fn active_set_bounds_the_walk() {
    // With active set 0 the reader does not look past set 0: object 1 is empty in the active
    // set after entry 3 ... but offset 0 still holds entry 4, and offset 1 then ends the tag.
    let j = two_sets();
    let got = drain_ok(&mut j.player(0, &empty(), PlayMode::OneShot));
    assert_eq!(
        got,
        vec![(1, 0, 0), (1, 1, 1), (1, 2, 0), (1, 3, 1), (1, 4, 0)]
    );
}

#[test]
fn start_after_a_commit_position() {
    let j = two_sets();
    // Consumed 0..=4: newest first, one per offset.
    let start = position(&[(1, 4, 0), (1, 3, 1)]);
    let mut p = j.player(1, &start, PlayMode::OneShot);
    assert_eq!(p.active_tag(), Some(1));
    assert_eq!(drain_ok(&mut p), vec![(1, 5, 3), (1, 6, 2), (1, 7, 3)]);
    assert_eq!(p.last_delivered(), Some((1, 7)));

    // Consumed 0..=5 (entry 5 read from object 3): the seek on offset 1 starts at object 3.
    let start = position(&[(1, 5, 3), (1, 4, 0)]);
    let got = drain_ok(&mut j.player(1, &start, PlayMode::OneShot));
    assert_eq!(got, vec![(1, 6, 2), (1, 7, 3)]);

    // Everything consumed.
    let start = position(&[(1, 7, 3), (1, 6, 2)]);
    assert!(drain_ok(&mut j.player(1, &start, PlayMode::OneShot)).is_empty());
}

#[test]
fn commit_entry_not_in_the_recorded_object_continues_in_the_next_one() {
    // The position says entry 6 was in object 0, but it is in object 2 (set 1): every entry
    // of object 0 is skipped and the search continues in object 2 (§10.1).
    let j = two_sets();
    let start = position(&[(1, 6, 0), (1, 5, 3)]);
    let got = drain_ok(&mut j.player(1, &start, PlayMode::OneShot));
    assert_eq!(got, vec![(1, 7, 3)]);
}

#[test]
fn trimmed_sets_read_as_empty() {
    // Sets 0 and 1 trimmed (objects missing), entries 8..=11 in set 2, active set 3 empty.
    let j = TestJournal::new(12, 2);
    for (n, tid) in [(4, 8), (5, 9), (4, 10), (5, 11)] {
        j.put(n, 5, tid);
    }
    let got = drain_ok(&mut j.player(3, &empty(), PlayMode::OneShot));
    assert_eq!(got, vec![(5, 8, 4), (5, 9, 5), (5, 10, 4), (5, 11, 5)]);
}

/// W = 3. Tag 1 writes entries 0..=4 and stops; tag 2 (a new lock owner) starts at entry 0 in
/// the same set; a late tag-1 append (1,5) lands in object 2 after tag 2's entry 2.
fn epochs() -> TestJournal {
    let j = TestJournal::new(12, 3);
    for tid in 0..5 {
        j.put(tid % 3, 1, tid);
    }
    for tid in 0..3 {
        j.put(tid % 3, 2, tid);
    }
    j.put(2, 1, 5);
    for tid in 3..6 {
        j.put(tid % 3, 2, tid);
    }
    j
}

#[test]
fn abrupt_tag_end_new_epoch_and_stale_leftovers() {
    let j = epochs();
    let got = drain_ok(&mut j.player(0, &empty(), PlayMode::OneShot));
    // After (1,4) at k=1, k=2 shows (2,2): tag 1 ended abruptly; from k=0, (2,0) starts the
    // new epoch. At k=2 after (2,4), (1,5) is stale and discarded before (2,5).
    let want: Vec<(u64, u64, u64)> = (0..5)
        .map(|t| (1, t, t % 3))
        .chain((0..6).map(|t| (2, t, t % 3)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn start_at_the_end_of_an_old_tag() {
    let j = epochs();
    // Consumed all of tag 1: playback starts at offset 1 (next front is (2,1), not tag 1, so
    // k stays), which ends tag 1 abruptly and finds (2,0) at offset 0.
    let start = position(&[(1, 4, 1), (1, 3, 0), (1, 2, 2)]);
    let got = drain_ok(&mut j.player(0, &start, PlayMode::OneShot));
    let want: Vec<(u64, u64, u64)> = (0..6).map(|t| (2, t, t % 3)).collect();
    assert_eq!(got, want);
}

#[test]
fn stale_tag_after_the_commit_position_is_discarded() {
    let j = epochs();
    // Consumed (2,0)..=(2,3); offsets 0 and 1 still hold tag-1 entries before them (skipped by
    // the seek). Playback starts at offset 0, which is empty now, so k moves to 1: (2,4). At
    // offset 2 the late (1,5) is stale and discarded before (2,5).
    let start = position(&[(2, 3, 0), (2, 2, 2), (2, 1, 1)]);
    let got = drain_ok(&mut j.player(0, &start, PlayMode::OneShot));
    assert_eq!(got, vec![(2, 4, 1), (2, 5, 2)]);
}

#[test]
fn stale_entry_right_after_the_commit_point_keeps_the_offset() {
    let j = epochs();
    // Consumed (2,0)..=(2,2), the newest at offset 2, where the stale (1,5) follows. The start
    // rule only moves past offset 2 when its next entry has the committed tag (2); (1,5) does
    // not, so k stays at 2, (1,5) is pruned as stale and (2,5) comes up before (2,3): Ceph's
    // reader fails this replay with -ENOMSG, and so does this one.
    let start = position(&[(2, 2, 2), (2, 1, 1), (2, 0, 0)]);
    let (got, err) = drain(&mut j.player(0, &start, PlayMode::OneShot));
    assert!(got.is_empty());
    assert!(
        matches!(
            err,
            Some(PlayerError::MissingEntry {
                tag_tid: 2,
                expected: 3,
                got: 5
            })
        ),
        "{err:?}"
    );
}

#[test]
fn ceph_start_rule_drops_the_rest_of_a_tag() {
    // W = 2. Tag 1: entries 0..=3; tag 2 follows: (2,0) in object 0, (2,1) in object 1. The
    // client consumed up to (1,2) (offset 0). After the seek, offset 0 shows (2,0) and offset 1
    // shows (1,3). The start rule only moves past offset 0 when its next entry has the
    // committed tag; (2,0) does not, so k stays at 0, (2,0) starts a new epoch and (1,3) is
    // pruned with tag 1. This is what Ceph's reader does (§10.1, §10.3); (1,3) is not
    // replayed.
    let j = TestJournal::new(12, 2);
    for tid in 0..4 {
        j.put(tid % 2, 1, tid);
    }
    j.put(0, 2, 0);
    j.put(1, 2, 1);
    let start = position(&[(1, 2, 0), (1, 1, 1)]);
    let got = drain_ok(&mut j.player(0, &start, PlayMode::OneShot));
    assert_eq!(got, vec![(2, 0, 0), (2, 1, 1)]);
    // One entry later, (1,3) is the newest consumed and nothing of tag 1 is left.
    let start = position(&[(1, 3, 1), (1, 2, 0)]);
    let got = drain_ok(&mut j.player(0, &start, PlayMode::OneShot));
    assert_eq!(got, vec![(2, 0, 0), (2, 1, 1)]);
}

#[test]
fn padding_is_skipped_and_a_partial_tail_ends_one_shot_replay() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.pad(0, 3);
    j.put(1, 1, 1);
    j.pad(1, 0);
    j.put(0, 1, 2);
    j.pad(0, 1);
    // Entry 3 is half-written at the end of the active set's object 1.
    let e3 = Entry::new(1, 3, vec![7u8; 40]).to_bytes();
    j.raw(1, &e3[..30]);
    let mut p = j.player(0, &empty(), PlayMode::OneShot);
    assert_eq!(drain_ok(&mut p), vec![(1, 0, 0), (1, 1, 1), (1, 2, 0)]);
    // What stays unparsed (§5.2 rule 1, fewer than 25 bytes or an entry cut short): the 13
    // trailing pad bytes of object 0 and the 30 bytes of entry 3.
    assert_eq!(p.buffered_bytes(), 13 + 30);
}

#[test]
fn live_mode_waits_for_a_partial_tail_then_delivers_it() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(1, 1, 1);
    j.put(0, 1, 2);
    let e3 = Entry::new(1, 3, vec![7u8; 40]).to_bytes();
    j.raw(1, &e3[..30]);
    let mut p = j.player(0, &empty(), PlayMode::Live);
    assert_eq!(drain_ok(&mut p), vec![(1, 0, 0), (1, 1, 1), (1, 2, 0)]);
    // Still nothing on a second poll.
    assert_eq!(p.next().unwrap(), PlayerEvent::End);
    // The rest of the append arrives; the next poll delivers it, then the writer goes on.
    j.raw(1, &e3[30..]);
    assert_eq!(drain_ok(&mut p), vec![(1, 3, 1)]);
    j.put(0, 1, 4);
    j.put(1, 1, 5);
    assert_eq!(drain_ok(&mut p), vec![(1, 4, 0), (1, 5, 1)]);
}

#[test]
fn live_mode_follows_a_set_change_after_refresh() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(1, 1, 1);
    let mut p = j.player(0, &empty(), PlayMode::Live);
    assert_eq!(drain_ok(&mut p), vec![(1, 0, 0), (1, 1, 1)]);
    // The writer closes set 0 and goes on in set 1.
    j.put(2, 1, 2);
    j.put(3, 1, 3);
    assert!(drain_ok(&mut p).is_empty(), "set 0 is still the active set");
    p.refresh(1);
    assert_eq!(p.active_set(), 1);
    assert_eq!(drain_ok(&mut p), vec![(1, 2, 2), (1, 3, 3)]);
}

#[test]
fn live_mode_moves_to_a_newer_tag_once_told() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(1, 1, 1);
    j.put(0, 1, 2);
    let mut p = j.player(0, &empty(), PlayMode::Live);
    assert_eq!(drain_ok(&mut p), vec![(1, 0, 0), (1, 1, 1), (1, 2, 0)]);
    // A new owner starts tag 2 at offset 0; offset 1 (where tag 1 would continue) stays empty.
    j.put(0, 2, 0);
    assert!(
        drain_ok(&mut p).is_empty(),
        "live mode waits at the empty offset"
    );
    assert_eq!(p.active_tag(), Some(1));
    p.mark_newer_tag_exists();
    assert_eq!(drain_ok(&mut p), vec![(2, 0, 0)]);
    assert_eq!(p.active_tag(), Some(2));
    // In one-shot mode the empty offset ends tag 1 by itself.
    let got = drain_ok(&mut j.player(0, &empty(), PlayMode::OneShot));
    assert_eq!(got, vec![(1, 0, 0), (1, 1, 1), (1, 2, 0), (2, 0, 0)]);
}

#[test]
fn live_mode_treats_a_late_entry_of_a_finished_tag_as_stale() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(1, 1, 1);
    let mut p = j.player(0, &empty(), PlayMode::Live);
    assert_eq!(drain_ok(&mut p), vec![(1, 0, 0), (1, 1, 1)]);
    // Tag 2 exists (no entries yet): offset 0 stays empty, so tag 1 is finished.
    p.mark_newer_tag_exists();
    assert!(drain_ok(&mut p).is_empty());
    // A late append of the old owner lands before the new owner's first entry.
    j.put(0, 1, 2);
    j.put(0, 2, 0);
    assert_eq!(drain_ok(&mut p), vec![(2, 0, 0)]);
}

#[test]
fn live_mode_gives_a_closed_object_with_a_partial_tail_one_more_poll() {
    // W = 1, set 0 closed (active set 1). Object 0 ends in half an entry when first read.
    let j = TestJournal::new(12, 1);
    j.put(0, 1, 0);
    let e1 = Entry::new(1, 1, vec![1u8; 40]).to_bytes();
    j.raw(0, &e1[..30]);
    let mut p = j.player(1, &empty(), PlayMode::Live);
    assert_eq!(drain_ok(&mut p), vec![(1, 0, 0)]);
    // The append completes, and the writer goes on in set 1: the re-read finds entry 1 before
    // the reader moves on to object 1.
    j.raw(0, &e1[30..]);
    j.put(1, 1, 2);
    assert_eq!(drain_ok(&mut p), vec![(1, 1, 0), (1, 2, 1)]);
}

#[test]
fn duplicate_in_an_object_later_copy_wins() {
    let j = TestJournal::new(12, 2);
    j.put_payload(0, 1, 0, b"first copy");
    j.put(1, 1, 1);
    j.put(0, 1, 2);
    j.put_payload(0, 1, 0, b"second copy");
    let mut p = j.player(0, &empty(), PlayMode::OneShot);
    match p.next().unwrap() {
        PlayerEvent::Entry(e) => {
            assert_eq!((e.entry.tag_tid, e.entry.entry_tid), (1, 0));
            assert_eq!(&e.entry.data[..], b"second copy");
        }
        PlayerEvent::End => panic!("expected an entry"),
    }
    assert_eq!(drain_ok(&mut p), vec![(1, 1, 1), (1, 2, 0)]);
}

#[test]
fn missing_entry_fails_replay() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(1, 1, 1);
    j.put(0, 1, 2);
    j.put(1, 1, 5);
    let mut p = j.player(0, &empty(), PlayMode::OneShot);
    let (got, err) = drain(&mut p);
    assert_eq!(got, vec![(1, 0, 0), (1, 1, 1), (1, 2, 0)]);
    assert!(
        matches!(
            err,
            Some(PlayerError::MissingEntry {
                tag_tid: 1,
                expected: 3,
                got: 5
            })
        ),
        "{err:?}"
    );
    // Latched.
    assert!(matches!(
        p.next(),
        Err(PlayerError::MissingEntry { expected: 3, .. })
    ));
}

#[test]
fn corrupt_object_fails_after_its_valid_prefix() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(1, 1, 1);
    j.put(0, 1, 2);
    j.put(1, 1, 3);
    let bad_at = j.size(0);
    j.raw(0, &[0xde; 24]);
    j.put(0, 1, 4);
    j.put(1, 1, 5);
    let mut p = j.player(0, &empty(), PlayMode::OneShot);
    let (got, err) = drain(&mut p);
    assert_eq!(got, vec![(1, 0, 0), (1, 1, 1), (1, 2, 0), (1, 3, 1)]);
    let oid0 = j.oid(0);
    match err {
        Some(PlayerError::Corrupt { oid, offset }) => {
            assert_eq!((oid, offset), (oid0.clone(), bad_at));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(matches!(p.next(), Err(PlayerError::Corrupt { oid, .. }) if oid == oid0));
}

#[test]
fn newer_tag_past_its_first_entry_at_offset_zero_is_an_error() {
    // Tag 1 ends at entry 0; offset 0 then shows tag 2 at entry 2 with no entry 0 anywhere.
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(0, 2, 2);
    let mut p = j.player(0, &empty(), PlayMode::OneShot);
    let (got, err) = drain(&mut p);
    assert_eq!(got, vec![(1, 0, 0)]);
    assert!(
        matches!(
            err,
            Some(PlayerError::MissingEntry {
                tag_tid: 2,
                expected: 0,
                got: 2
            })
        ),
        "{err:?}"
    );
}
