//! `EventEntry::to_json` for event types the librbd-basic capture does not contain. Expected
//! texts are written by hand from the field names and order of Ceph's event dump functions and
//! its pretty JSON formatter (4-space indent), as confirmed on the captured types.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use journal_core::encoding::UTime;
use journal_core::event::{Event, EventEntry};
use journal_core::snap_namespace::SnapshotNamespace;

fn json(event: Event, timestamp: UTime) -> String {
    EventEntry::new(event, timestamp).to_json()
}

#[test]
fn demote_promote_with_zero_timestamp() {
    // A zero utime prints in Ceph's relative form.
    assert_eq!(
        json(Event::DemotePromote, UTime::default()),
        "{\n    \"event_type\": \"Demote/Promote\",\n    \"timestamp\": \"0.000000\"\n}"
    );
}

#[test]
fn update_features_and_limits() {
    assert_eq!(
        json(
            Event::UpdateFeatures {
                op_tid: 3,
                features: 64,
                enabled: false
            },
            UTime { sec: 12, nsec: 345_678_999 }
        ),
        "{\n    \"event_type\": \"UpdateFeatures\",\n    \"op_tid\": 3,\n    \"features\": 64,\n    \
         \"enabled\": false,\n    \"timestamp\": \"12.345678\"\n}"
    );
    assert_eq!(
        json(
            Event::SnapLimit {
                op_tid: 1,
                limit: 9
            },
            UTime::default()
        ),
        "{\n    \"event_type\": \"SnapLimit\",\n    \"op_tid\": 1,\n    \"limit\": 9,\n    \
         \"timestamp\": \"0.000000\"\n}"
    );
    assert_eq!(
        json(Event::Flatten { op_tid: 4 }, UTime::default()),
        "{\n    \"event_type\": \"Flatten\",\n    \"op_tid\": 4,\n    \"timestamp\": \"0.000000\"\n}"
    );
}

#[test]
fn snapshot_with_group_namespace_and_escaping() {
    assert_eq!(
        json(
            Event::SnapRemove {
                op_tid: 2,
                snap_name: "a\"b\\c\n".into(),
                namespace: SnapshotNamespace::Group {
                    pool: -1,
                    group_id: "g".into(),
                    group_snapshot_id: "s".into(),
                },
            },
            UTime::default()
        ),
        "{\n    \"event_type\": \"SnapRemove\",\n    \"op_tid\": 2,\n    \
         \"snap_name\": \"a\\\"b\\\\c\\n\",\n    \"snapshot_namespace_type\": \"group\",\n    \
         \"group_pool\": -1,\n    \"group_id\": \"g\",\n    \"group_snapshot_id\": \"s\",\n    \
         \"timestamp\": \"0.000000\"\n}"
    );
}

#[test]
fn unknown_event_prints_ceph_placeholder_type() {
    // Ceph decodes any unknown type into one placeholder whose type number is (u32)-1.
    assert_eq!(
        json(Event::Unknown { event_type: 42 }, UTime::default()),
        "{\n    \"event_type\": \"Unknown (4294967295)\",\n    \"timestamp\": \"0.000000\"\n}"
    );
}

#[test]
fn write_same_and_compare_and_write_print_only_the_extent() {
    let j = json(
        Event::AioCompareAndWrite {
            offset: 512,
            length: 512,
            cmp_data: vec![1; 512].into(),
            write_data: vec![2; 512].into(),
        },
        UTime::default(),
    );
    assert_eq!(
        j,
        "{\n    \"event_type\": \"AioCompareAndWrite\",\n    \"offset\": 512,\n    \
         \"length\": 512,\n    \"timestamp\": \"0.000000\"\n}"
    );
}
