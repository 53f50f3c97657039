//! Error behaviour of the player: a failing store read is reported with the object and can be
//! retried without losing or repeating entries; corruption found while seeking the commit
//! position is final.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod player_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use journal_core::header::ObjectSetPosition;
use journal_core::player::{Player, PlayerError, PlayerEvent, PlayerOptions};
use object_store_trait::{Hook, Intercept, ObjectStore, Op, OpKind, StoreError};
use player_support::{position, TestJournal};

/// Fails reads while `broken` is set (the hook of a `MemStore` whose reads break).
#[derive(Debug)]
struct BrokenReads {
    broken: AtomicBool,
}

impl Hook for BrokenReads {
    fn before(&self, op: Op<'_>) -> Result<(), StoreError> {
        if op.kind() == OpKind::Read && self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }
}

#[test]
fn store_errors_are_retryable() {
    // W = 2, set 0 closed after entry 3; entries 4, 5 in set 1.
    let j = TestJournal::new(12, 2);
    for (n, tid) in [(0, 0), (1, 1), (0, 2), (1, 3), (2, 4), (3, 5)] {
        j.put(n, 1, tid);
    }
    let flaky = Arc::new(Intercept::with_hook(
        j.store.clone(),
        BrokenReads {
            broken: AtomicBool::new(true),
        },
    ));
    let store: Arc<dyn ObjectStore> = flaky.clone();
    let mut p = Player::new(
        store,
        j.info(1),
        &ObjectSetPosition::default(),
        PlayerOptions::default(),
    );
    // Fails in the first read (prefetch) and again on retry while broken.
    for _ in 0..2 {
        match p.next() {
            Err(PlayerError::Store { oid, source }) => {
                assert!(oid.starts_with("journal_data.3.jtest."), "{oid}");
                assert!(matches!(source, StoreError::Closed));
            }
            other => panic!("expected a store error, got {other:?}"),
        }
    }
    flaky.hook().broken.store(false, Ordering::SeqCst);
    let mut got = Vec::new();
    for _ in 0..3 {
        match p.next().unwrap() {
            PlayerEvent::Entry(e) => got.push(e.entry.entry_tid),
            PlayerEvent::End => panic!("ended early"),
        }
    }
    // Break it again when the reader must move to set 1 (objects 0 and 1 are exhausted).
    flaky.hook().broken.store(true, Ordering::SeqCst);
    let mut failures = 0;
    loop {
        match p.next() {
            Ok(PlayerEvent::Entry(e)) => got.push(e.entry.entry_tid),
            Ok(PlayerEvent::End) => break,
            Err(PlayerError::Store { .. }) => {
                failures += 1;
                flaky.hook().broken.store(false, Ordering::SeqCst);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(failures, 1);
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn corruption_met_while_seeking_is_final() {
    let j = TestJournal::new(12, 2);
    j.put(0, 1, 0);
    j.put(1, 1, 1);
    j.raw(0, &[0x55; 16]);
    j.put(0, 1, 2);
    // The commit position names entry 2, which lies beyond the corrupt bytes of object 0.
    let start = position(&[(1, 2, 0), (1, 1, 1)]);
    let mut p = j.player(0, &start, journal_core::player::PlayMode::OneShot);
    for _ in 0..2 {
        match p.next() {
            Err(PlayerError::Corrupt { oid, offset }) => {
                assert_eq!((oid, offset), (j.oid(0), 43));
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }
    // Consumed (1,0): the start rule must look at what follows it in object 0, which is the
    // corrupt range, so even (1,1) in object 1 is not reached.
    let start = position(&[(1, 0, 0)]);
    let mut p = j.player(0, &start, journal_core::player::PlayMode::OneShot);
    assert!(matches!(
        p.next(),
        Err(PlayerError::Corrupt { offset: 43, .. })
    ));
    // From the beginning, the valid prefix of both objects comes first.
    let (got, err) = player_support::drain(&mut j.player(
        0,
        &ObjectSetPosition::default(),
        journal_core::player::PlayMode::OneShot,
    ));
    assert_eq!(got, vec![(1, 0, 0), (1, 1, 1)]);
    assert!(matches!(err, Some(PlayerError::Corrupt { offset: 43, .. })));
}
