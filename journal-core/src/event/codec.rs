//! The byte encoding of events: bodies by type, and the two envelopes of an `EventEntry`.

use super::{event_type, Event, EventEntry, EVENT_ENTRY_COMPAT, EVENT_ENTRY_VERSION};
use bytes::Bytes;

use crate::encoding::{Decode, Decoder, Encode, Encoder, UTime};
use crate::snap_namespace::SnapshotNamespace;
use crate::DecodeError;

impl Event {
    pub(super) fn encode_body(&self, e: &mut Encoder) {
        match self {
            Event::AioDiscard {
                offset,
                length,
                discard_granularity_bytes,
            } => {
                e.u64(*offset);
                e.u64(*length);
                e.bool(*discard_granularity_bytes > 0);
                e.u32(*discard_granularity_bytes);
            }
            Event::AioWrite {
                offset,
                length,
                data,
            }
            | Event::AioWriteSame {
                offset,
                length,
                data,
            } => {
                e.u64(*offset);
                e.u64(*length);
                e.blob(data);
            }
            Event::AioCompareAndWrite {
                offset,
                length,
                cmp_data,
                write_data,
            } => {
                e.u64(*offset);
                e.u64(*length);
                e.blob(cmp_data);
                e.blob(write_data);
            }
            Event::AioFlush | Event::DemotePromote | Event::Unknown { .. } => {}
            Event::OpFinish { op_tid, result } => {
                e.u64(*op_tid);
                e.u64(*op_tid);
                e.i32(*result);
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
                e.u64(*op_tid);
                e.string(snap_name);
                namespace.encode(e);
            }
            Event::SnapRename {
                op_tid,
                dst_snap_name,
                src_snap_id,
                src_snap_name,
            } => {
                e.u64(*op_tid);
                e.string(dst_snap_name);
                e.u64(*src_snap_id);
                e.string(src_snap_name);
            }
            Event::Rename { op_tid, image_name } => {
                e.u64(*op_tid);
                e.string(image_name);
            }
            Event::Resize { op_tid, size } => {
                e.u64(*op_tid);
                e.u64(*size);
            }
            Event::Flatten { op_tid } => e.u64(*op_tid),
            Event::SnapLimit { op_tid, limit } => {
                e.u64(*op_tid);
                e.u64(*limit);
            }
            Event::UpdateFeatures {
                op_tid,
                features,
                enabled,
            } => {
                e.u64(*op_tid);
                e.u64(*features);
                e.bool(*enabled);
            }
            Event::MetadataSet { op_tid, key, value } => {
                e.u64(*op_tid);
                e.string(key);
                e.string(value);
            }
            Event::MetadataRemove { op_tid, key } => {
                e.u64(*op_tid);
                e.string(key);
            }
        }
    }

    /// Decodes type and body from inside the event envelope of version `v`.
    pub(super) fn decode_body(d: &mut Decoder, v: u8) -> Result<Event, DecodeError> {
        use event_type as t;
        let ty = d.u32("event.type")?;
        // Snapshot ops: op tid, name, and a namespace from `ns_since` on.
        let snap = |d: &mut Decoder,
                    ns_since: u8|
         -> Result<(u64, String, SnapshotNamespace), DecodeError> {
            let op_tid = d.u64("event.op_tid")?;
            let snap_name = d.string("event.snap_name")?;
            let namespace = if v >= ns_since {
                SnapshotNamespace::decode(d)?
            } else {
                SnapshotNamespace::User
            };
            Ok((op_tid, snap_name, namespace))
        };
        Ok(match ty {
            t::AIO_DISCARD => {
                let offset = d.u64("discard.offset")?;
                let length = d.u64("discard.length")?;
                let skip_partial = if v >= 4 {
                    d.bool("discard.skip_partial")?
                } else {
                    false
                };
                let discard_granularity_bytes = if v >= 5 {
                    d.u32("discard.granularity")?
                } else if skip_partial {
                    u32::MAX
                } else {
                    0
                };
                Event::AioDiscard {
                    offset,
                    length,
                    discard_granularity_bytes,
                }
            }
            t::AIO_WRITE => Event::AioWrite {
                offset: d.u64("write.offset")?,
                length: d.u64("write.length")?,
                data: d.blob("write.data")?,
            },
            t::AIO_FLUSH => Event::AioFlush,
            t::OP_FINISH => {
                let _base_op_tid = d.u64("op_finish.op_tid")?;
                Event::OpFinish {
                    op_tid: d.u64("op_finish.op_tid")?,
                    result: d.i32("op_finish.result")?,
                }
            }
            t::SNAP_CREATE => {
                let (op_tid, snap_name, namespace) = snap(d, 3)?;
                Event::SnapCreate {
                    op_tid,
                    snap_name,
                    namespace,
                }
            }
            t::SNAP_REMOVE => {
                let (op_tid, snap_name, namespace) = snap(d, 4)?;
                Event::SnapRemove {
                    op_tid,
                    snap_name,
                    namespace,
                }
            }
            t::SNAP_RENAME => {
                let op_tid = d.u64("event.op_tid")?;
                let dst_snap_name = d.string("snap_rename.dst_snap_name")?;
                let src_snap_id = d.u64("snap_rename.src_snap_id")?;
                let src_snap_name = if v >= 2 {
                    d.string("snap_rename.src_snap_name")?
                } else {
                    String::new()
                };
                Event::SnapRename {
                    op_tid,
                    dst_snap_name,
                    src_snap_id,
                    src_snap_name,
                }
            }
            t::SNAP_PROTECT => {
                let (op_tid, snap_name, namespace) = snap(d, 4)?;
                Event::SnapProtect {
                    op_tid,
                    snap_name,
                    namespace,
                }
            }
            t::SNAP_UNPROTECT => {
                let (op_tid, snap_name, namespace) = snap(d, 4)?;
                Event::SnapUnprotect {
                    op_tid,
                    snap_name,
                    namespace,
                }
            }
            t::SNAP_ROLLBACK => {
                let (op_tid, snap_name, namespace) = snap(d, 4)?;
                Event::SnapRollback {
                    op_tid,
                    snap_name,
                    namespace,
                }
            }
            t::RENAME => Event::Rename {
                op_tid: d.u64("event.op_tid")?,
                image_name: d.string("rename.image_name")?,
            },
            t::RESIZE => Event::Resize {
                op_tid: d.u64("event.op_tid")?,
                size: d.u64("resize.size")?,
            },
            t::FLATTEN => Event::Flatten {
                op_tid: d.u64("event.op_tid")?,
            },
            t::DEMOTE_PROMOTE => Event::DemotePromote,
            t::SNAP_LIMIT => Event::SnapLimit {
                op_tid: d.u64("event.op_tid")?,
                limit: d.u64("snap_limit.limit")?,
            },
            t::UPDATE_FEATURES => Event::UpdateFeatures {
                op_tid: d.u64("event.op_tid")?,
                features: d.u64("update_features.features")?,
                enabled: d.bool("update_features.enabled")?,
            },
            t::METADATA_SET => Event::MetadataSet {
                op_tid: d.u64("event.op_tid")?,
                key: d.string("metadata_set.key")?,
                value: d.string("metadata_set.value")?,
            },
            t::METADATA_REMOVE => Event::MetadataRemove {
                op_tid: d.u64("event.op_tid")?,
                key: d.string("metadata_remove.key")?,
            },
            t::AIO_WRITE_SAME => Event::AioWriteSame {
                offset: d.u64("write_same.offset")?,
                length: d.u64("write_same.length")?,
                data: d.blob("write_same.data")?,
            },
            t::AIO_COMPARE_AND_WRITE => Event::AioCompareAndWrite {
                offset: d.u64("compare_and_write.offset")?,
                length: d.u64("compare_and_write.length")?,
                cmp_data: d.blob("compare_and_write.cmp_data")?,
                write_data: d.blob("compare_and_write.write_data")?,
            },
            event_type => Event::Unknown { event_type },
        })
    }
}

impl Encode for EventEntry {
    fn encode(&self, enc: &mut Encoder) {
        enc.envelope(EVENT_ENTRY_VERSION, EVENT_ENTRY_COMPAT, |e| {
            e.u32(self.event.event_type());
            self.event.encode_body(e);
        });
        enc.envelope(1, 1, |e| self.timestamp.encode(e));
    }
}

impl Decode for EventEntry {
    fn decode(dec: &mut Decoder) -> Result<Self, DecodeError> {
        let (event, struct_v) = dec.envelope("EventEntry", EVENT_ENTRY_COMPAT, |d, v| {
            Ok((Event::decode_body(d, v)?, v))
        })?;
        let timestamp = if struct_v >= 4 {
            dec.envelope("EventEntry metadata", 1, |d, _| UTime::decode(d))?
        } else {
            UTime::default()
        };
        Ok(EventEntry { event, timestamp })
    }
}

impl EventEntry {
    /// For an `AioWrite`, writes its [`Encode::encode`] bytes except the write's data to `enc`,
    /// and returns the data and where it belongs in `enc`'s buffer: inserting the data there
    /// gives the event's encoding, without the data ever being copied. `None`, with nothing
    /// written, for every other event.
    pub fn encode_around_data(&self, enc: &mut Encoder) -> Option<(Bytes, usize)> {
        let Event::AioWrite {
            offset,
            length,
            data,
        } = &self.event
        else {
            return None;
        };
        // The envelope's payload: event type, offset, length, the data's length and the data.
        let body = u32::try_from(4 + 8 + 8 + 4 + data.len()).ok()?;
        enc.u8(EVENT_ENTRY_VERSION);
        enc.u8(EVENT_ENTRY_COMPAT);
        enc.u32(body);
        enc.u32(self.event.event_type());
        enc.u64(*offset);
        enc.u64(*length);
        enc.len_u32(data.len());
        let at = enc.len();
        enc.envelope(1, 1, |e| self.timestamp.encode(e));
        Some((data.clone(), at))
    }
}
