//! The JSON dump of an event as `rbd journal inspect --verbose` prints it.
//!
//! Ceph's pretty JSON formatter: one field per line, 4-space indentation, `"key": value`, fields
//! in the order each event's dump writes them. Verified against real output for every event
//! type in the librbd-basic capture (writes, flush, discard, snapshot create / rename / protect /
//! unprotect, op finish, metadata set / remove, resize); the other types follow the same
//! pattern from the Ceph dump code as read, and non-user snapshot namespaces are best effort.

use std::fmt::Write as _;

use super::{Event, EventEntry};
use crate::encoding::UTime;
use crate::snap_namespace::{MirrorSnapshotState, SnapshotNamespace};

/// A value in a dump.
enum Value {
    /// A number or boolean, printed as is.
    Raw(String),
    /// A string, quoted and escaped.
    Str(String),
    /// An array of values.
    Array(Vec<Value>),
}

/// Fields of one JSON object, in order.
#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn num(&mut self, key: &'static str, v: impl ToString) {
        self.0.push((key, Value::Raw(v.to_string())));
    }
    fn str(&mut self, key: &'static str, v: impl Into<String>) {
        self.0.push((key, Value::Str(v.into())));
    }
    fn bool(&mut self, key: &'static str, v: bool) {
        self.0
            .push((key, Value::Raw(if v { "true" } else { "false" }.into())));
    }
    fn array(&mut self, key: &'static str, v: Vec<Value>) {
        self.0.push((key, Value::Array(v)));
    }
}

fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Raw(s) => out.push_str(s),
        Value::Str(s) => escape(out, s),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&"    ".repeat(depth + 1));
                write_value(out, item, depth + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"    ".repeat(depth));
            out.push(']');
        }
    }
}

fn render(fields: &Fields) -> String {
    let mut out = String::from("{\n");
    for (i, (key, value)) in fields.0.iter().enumerate() {
        out.push_str("    ");
        escape(&mut out, key);
        out.push_str(": ");
        write_value(&mut out, value, 1);
        out.push_str(if i + 1 < fields.0.len() { ",\n" } else { "\n" });
    }
    out.push('}');
    out
}

/// Days since 1970-01-01 to a (year, month, day) civil date (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the 400-year era
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153; // March-based month
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Ceph's `utime_t` stream form: times within ten years of the epoch print as relative
/// `sec.usec`; others as an ISO 8601 date with microseconds and zone offset. rbdj always prints
/// UTC (`+0000`); Ceph prints the host's local zone.
pub(crate) fn format_utime(t: UTime) -> String {
    let usec = t.nsec / 1000;
    if t.sec < 60 * 60 * 24 * 365 * 10 {
        return format!("{}.{usec:06}", t.sec);
    }
    let secs = i64::from(t.sec);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{usec:06}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn ns_type_name(t: u32) -> &'static str {
    use crate::snap_namespace as ns;
    match t {
        ns::NS_TYPE_USER => "user",
        ns::NS_TYPE_GROUP => "group",
        ns::NS_TYPE_TRASH => "trash",
        ns::NS_TYPE_MIRROR => "mirror",
        _ => "unknown",
    }
}

fn dump_namespace(f: &mut Fields, ns: &SnapshotNamespace) {
    f.str("snapshot_namespace_type", ns.type_name());
    match ns {
        SnapshotNamespace::User | SnapshotNamespace::Unknown { .. } => {}
        SnapshotNamespace::Group {
            pool,
            group_id,
            group_snapshot_id,
        } => {
            f.num("group_pool", pool);
            f.str("group_id", group_id.as_str());
            f.str("group_snapshot_id", group_snapshot_id.as_str());
        }
        SnapshotNamespace::Trash {
            original_name,
            original_type,
        } => {
            f.str("original_name", original_name.as_str());
            f.str("original_snapshot_namespace", ns_type_name(*original_type));
        }
        SnapshotNamespace::Mirror {
            state,
            complete,
            mirror_peer_uuids,
            primary_mirror_uuid,
            primary_snap_id,
            last_copied_object_number,
            snap_seqs,
        } => {
            f.str("state", state.name());
            f.bool("complete", *complete);
            f.array(
                "mirror_peer_uuids",
                mirror_peer_uuids
                    .iter()
                    .map(|u| Value::Str(u.clone()))
                    .collect(),
            );
            if matches!(
                state,
                MirrorSnapshotState::Primary | MirrorSnapshotState::PrimaryDemoted
            ) {
                // Newer Ceph names the same field "clean_since_snap_id" on primaries.
                f.num("clean_since_snap_id", primary_snap_id);
            } else {
                f.str("primary_mirror_uuid", primary_mirror_uuid.as_str());
                f.num("primary_snap_id", primary_snap_id);
                f.num("last_copied_object_number", last_copied_object_number);
                let seqs: Vec<String> = snap_seqs
                    .iter()
                    .map(|(k, v)| format!("({k}, {v})"))
                    .collect();
                f.str("snap_seqs", format!("{{{}}}", seqs.join(", ")));
            }
        }
    }
}

pub(super) fn event_entry_json(entry: &EventEntry) -> String {
    let mut f = Fields::default();
    match &entry.event {
        // Ceph's decoder turns unknown types into an event whose type prints as -1 (u32).
        Event::Unknown { .. } => f.str("event_type", format!("Unknown ({})", u32::MAX)),
        event => f.str("event_type", event.name()),
    }
    match &entry.event {
        Event::AioDiscard {
            offset,
            length,
            discard_granularity_bytes,
        } => {
            f.num("offset", offset);
            f.num("length", length);
            f.num("discard_granularity_bytes", discard_granularity_bytes);
        }
        Event::AioWrite { offset, length, .. }
        | Event::AioWriteSame { offset, length, .. }
        | Event::AioCompareAndWrite { offset, length, .. } => {
            f.num("offset", offset);
            f.num("length", length);
        }
        Event::AioFlush | Event::DemotePromote | Event::Unknown { .. } => {}
        Event::OpFinish { op_tid, result } => {
            // The op tid is dumped by the base event and again by OpFinish itself.
            f.num("op_tid", op_tid);
            f.num("op_tid", op_tid);
            f.num("result", result);
        }
        Event::SnapCreate {
            op_tid,
            snap_name,
            namespace,
        }
        | Event::SnapRemove {
            op_tid,
            snap_name,
            namespace,
        }
        | Event::SnapProtect {
            op_tid,
            snap_name,
            namespace,
        }
        | Event::SnapUnprotect {
            op_tid,
            snap_name,
            namespace,
        }
        | Event::SnapRollback {
            op_tid,
            snap_name,
            namespace,
        } => {
            f.num("op_tid", op_tid);
            f.str("snap_name", snap_name.as_str());
            dump_namespace(&mut f, namespace);
        }
        Event::SnapRename {
            op_tid,
            dst_snap_name,
            src_snap_id,
            src_snap_name,
        } => {
            f.num("op_tid", op_tid);
            f.num("src_snap_id", src_snap_id);
            f.str("src_snap_name", src_snap_name.as_str());
            f.str("dest_snap_name", dst_snap_name.as_str());
        }
        Event::Rename { op_tid, image_name } => {
            f.num("op_tid", op_tid);
            f.str("image_name", image_name.as_str());
        }
        Event::Resize { op_tid, size } => {
            f.num("op_tid", op_tid);
            f.num("size", size);
        }
        Event::Flatten { op_tid } => f.num("op_tid", op_tid),
        Event::SnapLimit { op_tid, limit } => {
            f.num("op_tid", op_tid);
            f.num("limit", limit);
        }
        Event::UpdateFeatures {
            op_tid,
            features,
            enabled,
        } => {
            f.num("op_tid", op_tid);
            f.num("features", features);
            f.bool("enabled", *enabled);
        }
        Event::MetadataSet { op_tid, key, value } => {
            f.num("op_tid", op_tid);
            f.str("key", key.as_str());
            f.str("value", value.as_str());
        }
        Event::MetadataRemove { op_tid, key } => {
            f.num("op_tid", op_tid);
            f.str("key", key.as_str());
        }
    }
    f.str("timestamp", format_utime(entry.timestamp));
    render(&f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_forms() {
        // Values from the librbd-basic capture (commit_tid 1) and the relative form.
        let t = UTime {
            sec: 1_795_577_916,
            nsec: 315_964_123,
        };
        assert_eq!(format_utime(t), "2026-11-25T03:38:36.315964+0000");
        assert_eq!(format_utime(UTime::default()), "0.000000");
        assert_eq!(format_utime(UTime { sec: 5, nsec: 7000 }), "5.000007");
        assert_eq!(
            format_utime(UTime {
                sec: 951_782_400,
                nsec: 0
            }),
            "2000-02-29T00:00:00.000000+0000"
        );
    }
}
