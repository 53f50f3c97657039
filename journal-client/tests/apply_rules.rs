//! The event-application engine against the replay rules of spec §12.4, one rule per check,
//! on a `MemImage` read back directly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use bytes::Bytes;
use journal_client::apply::{ApplyError, ApplyOptions, EventApplier};
use journal_client::image::{BlockImage, MemImage, EBUSY};
use journal_core::snap_namespace::SnapshotNamespace;
use journal_core::Event;

fn engine(size: u64) -> (Arc<MemImage>, EventApplier<u32>) {
    let image = Arc::new(MemImage::new("img", size));
    let dyn_image: Arc<dyn BlockImage> = image.clone();
    (image, EventApplier::new(dyn_image, ApplyOptions::default()))
}

fn write(offset: u64, data: &'static [u8]) -> Event {
    Event::AioWrite {
        offset,
        length: data.len() as u64,
        data: Bytes::from_static(data),
    }
}

fn snap(op_tid: u64, name: &str) -> Event {
    Event::SnapCreate {
        op_tid,
        snap_name: name.into(),
        namespace: SnapshotNamespace::User,
    }
}

fn ids(v: Vec<journal_client::apply::Applied<u32>>) -> Vec<u32> {
    v.into_iter().map(|a| a.id).collect()
}

#[test]
fn io_is_applied_at_once_but_acknowledged_after_a_flush() {
    let (image, mut e) = engine(4096);
    assert!(e.apply(1, &write(0, b"abc")).unwrap().is_empty());
    assert_eq!(&image.read(0, 3).unwrap()[..], b"abc");
    assert_eq!(ids(e.apply(2, &Event::AioFlush).unwrap()), vec![1, 2]);
    // 32 unflushed IO events trigger a flush by themselves.
    for i in 0..31 {
        assert!(e.apply(10 + i, &write(0, b"x")).unwrap().is_empty());
    }
    assert_eq!(e.apply(41, &write(0, b"y")).unwrap().len(), 32);
}

#[test]
fn io_past_the_end_is_dropped_or_clipped_and_mismatch_is_success() {
    let (image, mut e) = engine(8);
    e.apply(1, &write(100, b"gone")).unwrap();
    e.apply(2, &write(6, b"wxyz")).unwrap();
    assert_eq!(&image.read(0, 8).unwrap()[..], b"\0\0\0\0\0\0wx");
    let cw = Event::AioCompareAndWrite {
        offset: 0,
        length: 2,
        cmp_data: Bytes::from_static(b"no"),
        write_data: Bytes::from_static(b"ok"),
    };
    e.apply(3, &cw).unwrap();
    assert_eq!(&image.read(0, 2).unwrap()[..], b"\0\0");
    assert_eq!(ids(e.finish(false).unwrap()), vec![1, 2, 3]);
}

#[test]
fn ops_wait_for_their_op_finish() {
    let (image, mut e) = engine(4096);
    let set = Event::MetadataSet {
        op_tid: 7,
        key: "k".into(),
        value: "v".into(),
    };
    assert!(e.apply(1, &set).unwrap().is_empty());
    assert_eq!(image.metadata_get("k").unwrap(), None);
    let done = e
        .apply(
            2,
            &Event::OpFinish {
                op_tid: 7,
                result: 0,
            },
        )
        .unwrap();
    assert_eq!(ids(done), vec![1, 2]);
    assert_eq!(image.metadata_get("k").unwrap().as_deref(), Some("v"));
    // Unknown op tid: acknowledged alone.
    assert_eq!(
        ids(e
            .apply(
                3,
                &Event::OpFinish {
                    op_tid: 99,
                    result: 0
                }
            )
            .unwrap()),
        vec![3]
    );
    // Duplicate op tid.
    e.apply(4, &Event::Flatten { op_tid: 8 }).unwrap();
    assert!(matches!(
        e.apply(5, &Event::Flatten { op_tid: 8 }),
        Err(ApplyError::DuplicateOp { op_tid: 8 })
    ));
}

#[test]
fn snap_create_takes_effect_at_its_op_event() {
    let (image, mut e) = engine(4096);
    e.apply(1, &write(0, b"old")).unwrap();
    e.apply(2, &snap(1, "s")).unwrap();
    e.apply(3, &write(0, b"new")).unwrap();
    e.apply(
        4,
        &Event::OpFinish {
            op_tid: 1,
            result: 0,
        },
    )
    .unwrap();
    image.snap_rollback("s").unwrap();
    assert_eq!(&image.read(0, 3).unwrap()[..], b"old");
}

#[test]
fn recorded_failures_and_reapplied_ops() {
    let (image, mut e) = engine(4096);
    image.snap_create("s").unwrap();
    // Re-applying an op that already happened: SnapCreate -EEXIST is ignored.
    e.apply(1, &snap(1, "s")).unwrap();
    assert_eq!(
        e.apply(
            2,
            &Event::OpFinish {
                op_tid: 1,
                result: 0
            }
        )
        .unwrap()
        .len(),
        2
    );
    // A recorded -EBUSY is SnapUnprotect's expected failure: accepted, not executed.
    image.snap_protect("s").unwrap();
    let unprotect = Event::SnapUnprotect {
        op_tid: 2,
        snap_name: "s".into(),
        namespace: SnapshotNamespace::User,
    };
    e.apply(3, &unprotect).unwrap();
    let done = e
        .apply(
            4,
            &Event::OpFinish {
                op_tid: 2,
                result: EBUSY,
            },
        )
        .unwrap();
    assert!(done.iter().all(|a| a.result == EBUSY));
    assert!(image.snap_list().unwrap()[0].protected);
    // The same errno recorded for SnapRemove fails replay.
    let remove = Event::SnapRemove {
        op_tid: 3,
        snap_name: "s".into(),
        namespace: SnapshotNamespace::User,
    };
    e.apply(5, &remove).unwrap();
    let r = e.apply(
        6,
        &Event::OpFinish {
            op_tid: 3,
            result: EBUSY,
        },
    );
    assert!(matches!(
        r,
        Err(ApplyError::RecordedFailure { op_tid: 3, .. })
    ));
}

#[test]
fn finish_executes_or_cancels_ops_without_op_finish() {
    let (image, mut e) = engine(4096);
    e.apply(
        1,
        &Event::MetadataSet {
            op_tid: 1,
            key: "a".into(),
            value: "1".into(),
        },
    )
    .unwrap();
    assert_eq!(ids(e.finish(false).unwrap()), vec![1]);
    assert_eq!(image.metadata_get("a").unwrap().as_deref(), Some("1"));
    e.apply(
        2,
        &Event::MetadataSet {
            op_tid: 2,
            key: "b".into(),
            value: "2".into(),
        },
    )
    .unwrap();
    assert!(e.finish(true).unwrap().is_empty());
    assert_eq!(image.metadata_get("b").unwrap(), None);
    assert_eq!(ids(e.apply(3, &Event::DemotePromote).unwrap()), vec![3]);
    assert_eq!(
        ids(e.apply(4, &Event::Unknown { event_type: 77 }).unwrap()),
        vec![4]
    );
}
