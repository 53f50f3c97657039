//! [`EventApplier`]: librbd's event-application rules (spec §12.4) over any
//! [`BlockImage`], shared by local crash recovery and the mirror replayer.
//!
//! The applier is fed events in journal order, each with a caller-chosen id (`T`, e.g. a commit
//! tid), and answers with the ids that are now **applied** (and so may be committed):
//!
//! * IO events (write, discard, write-same, compare-and-write) are submitted to the image at
//!   once, but reported applied only after a later image flush: one is issued every
//!   [`ApplyOptions::flush_every`] unflushed IO events, on every `AioFlush`, and at
//!   [`EventApplier::finish`]. IO wholly past the image end is dropped (success); IO partly past
//!   it is clipped. A compare-and-write mismatch counts as success.
//! * Op events are parked under their op tid until the matching `OpFinish`: a non-negative
//!   recorded result executes the op (its re-apply errors — e.g. `SnapCreate -EEXIST` — count as
//!   success); a negative recorded result skips it, and is accepted if it is the op's expected
//!   failure (`SnapUnprotect -EBUSY`) or in its re-apply set, otherwise replay fails. Both
//!   entries are reported applied together. An `OpFinish` for an unknown op is acknowledged;
//!   a second op event with a parked op tid fails.
//! * SnapCreate, Resize and UpdateFeatures affect the IO around them, so — as in librbd — they
//!   are executed as soon as their op event is read (IO events after it land after them); their
//!   `OpFinish` then only settles the outcome (an execution error outside the re-apply set fails
//!   replay there).
//! * `DemotePromote` and unknown events are acknowledged at once.
//!
//! Where librbd would block further entries until such an op reaches a safe point, this engine
//! is synchronous: the op has finished executing before the next event is applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use journal_core::Event;

use crate::image::{expand_pattern, BlockImage, ImageError, EBUSY, EEXIST, EINVAL, ENOENT, ERANGE};

/// Tuning of an [`EventApplier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Issue an image flush after this many unflushed IO events. Default 32 (librbd's low-water
    /// mark).
    pub flush_every: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { flush_every: 32 }
    }
}

/// Why an event could not be applied. Replay stops; the entry is not committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The image failed an IO event, a flush, or an op with an error outside its ignore set.
    #[error("{event} failed: {source}")]
    Image {
        /// The event's name.
        event: &'static str,
        /// The image error.
        #[source]
        source: ImageError,
    },
    /// A second op event arrived for a parked op tid (`-EINVAL`).
    #[error("duplicate op event for op tid {op_tid}")]
    DuplicateOp {
        /// The op tid.
        op_tid: u64,
    },
    /// The recorded op result is a failure replay must not accept.
    #[error("{event} (op tid {op_tid}) was recorded as failed with {result}")]
    RecordedFailure {
        /// The op's name.
        event: &'static str,
        /// Op tid.
        op_tid: u64,
        /// The recorded result.
        result: i32,
    },
}

/// One entry reported applied, with the result to record for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied<T> {
    /// The caller's id of the entry.
    pub id: T,
    /// 0, or the (accepted) negative result of an op.
    pub result: i32,
}

/// An op event waiting for its `OpFinish`.
#[derive(Debug)]
struct Parked<T> {
    id: T,
    op: Event,
    executed: Option<Result<(), ImageError>>,
}

/// Ops executed when their op event is read (they affect the IO around them).
fn executes_immediately(event: &Event) -> bool {
    matches!(
        event,
        Event::SnapCreate { .. } | Event::Resize { .. } | Event::UpdateFeatures { .. }
    )
}

/// The event-application engine (see the module docs).
#[derive(Debug)]
pub struct EventApplier<T> {
    image: Arc<dyn BlockImage>,
    options: ApplyOptions,
    unflushed: Vec<T>,
    /// Parked ops: id, event, and the outcome if it was executed at its op event.
    parked: BTreeMap<u64, Parked<T>>,
}

/// Errors that re-applying `event` may legitimately produce (§12.4).
fn reapply_ignored(event: &Event, errno: i32) -> bool {
    match event {
        Event::SnapCreate { .. } | Event::SnapRename { .. } | Event::Rename { .. } => {
            errno == EEXIST
        }
        Event::SnapRemove { .. } | Event::MetadataRemove { .. } => errno == ENOENT,
        Event::SnapProtect { .. } => errno == EBUSY,
        Event::SnapUnprotect { .. } | Event::Flatten { .. } => errno == EINVAL,
        Event::SnapLimit { .. } => errno == ERANGE,
        _ => false,
    }
}

/// Recorded failures that are an op's normal outcome.
fn expected_failure(event: &Event, errno: i32) -> bool {
    matches!(event, Event::SnapUnprotect { .. }) && errno == EBUSY
}

/// Executes a maintenance op event on `image`. Non-op events are rejected with `-EINVAL`.
pub fn execute_op(image: &dyn BlockImage, event: &Event) -> Result<(), ImageError> {
    match event {
        Event::SnapCreate { snap_name, .. } => image.snap_create(snap_name).map(drop),
        Event::SnapRemove { snap_name, .. } => image.snap_remove(snap_name),
        Event::SnapRename {
            dst_snap_name,
            src_snap_id,
            src_snap_name,
            ..
        } => {
            let by_id = image
                .snap_list()?
                .into_iter()
                .find(|s| s.id == *src_snap_id);
            let src = by_id.map_or_else(|| src_snap_name.clone(), |s| s.name);
            image.snap_rename(&src, dst_snap_name)
        }
        Event::SnapProtect { snap_name, .. } => image.snap_protect(snap_name),
        Event::SnapUnprotect { snap_name, .. } => image.snap_unprotect(snap_name),
        Event::SnapRollback { snap_name, .. } => image.snap_rollback(snap_name),
        Event::Rename { image_name, .. } => image.rename(image_name),
        Event::Resize { size, .. } => image.resize(*size),
        Event::Flatten { .. } => image.flatten(),
        Event::SnapLimit { limit, .. } => image.snap_set_limit(*limit),
        Event::UpdateFeatures {
            features, enabled, ..
        } => image.update_features(*features, *enabled),
        Event::MetadataSet { key, value, .. } => image.metadata_set(key, value),
        Event::MetadataRemove { key, .. } => image.metadata_remove(key),
        other => Err(ImageError::InvalidArgument(format!(
            "{} is not an op event",
            other.name()
        ))),
    }
}

/// Clips `[offset, offset+len)` to an image of `size` bytes; `None` if nothing is left.
fn clip(offset: u64, len: u64, size: u64) -> Option<u64> {
    (offset < size && len > 0).then(|| len.min(size - offset))
}

/// Applies one IO event to `image` (clipped to its size). A compare mismatch is success.
pub fn apply_io(image: &dyn BlockImage, event: &Event) -> Result<(), ImageError> {
    let size = image.size();
    let r = match event {
        Event::AioWrite { offset, data, .. } => match clip(*offset, data.len() as u64, size) {
            Some(n) => image.write(*offset, data.slice(..n as usize)),
            None => Ok(()),
        },
        Event::AioDiscard {
            offset,
            length,
            discard_granularity_bytes,
        } => {
            let (mut start, mut end) = (*offset, offset.saturating_add(*length));
            let g = u64::from(*discard_granularity_bytes);
            if g > 1 {
                start = start.div_ceil(g).saturating_mul(g);
                end = end / g * g;
            }
            match (end > start)
                .then(|| clip(start, end - start, size))
                .flatten()
            {
                Some(n) => image.discard(start, n),
                None => Ok(()),
            }
        }
        Event::AioWriteSame {
            offset,
            length,
            data,
        } => {
            let plen = data.len() as u64;
            match clip(*offset, *length, size) {
                Some(n) if plen > 0 && n >= plen => {
                    image.write_same(*offset, n / plen * plen, data.clone())
                }
                Some(_) if plen > 0 => {
                    // Less than one pattern fits: write the pattern's prefix.
                    let n = size - offset;
                    expand_pattern(plen, data)
                        .and_then(|b| image.write(*offset, b.slice(..n as usize)))
                }
                _ => Ok(()),
            }
        }
        Event::AioCompareAndWrite {
            offset,
            cmp_data,
            write_data,
            ..
        } => {
            let len = cmp_data.len().min(write_data.len()) as u64;
            match clip(*offset, len, size) {
                Some(n) => {
                    let n = n as usize;
                    image.compare_and_write(*offset, cmp_data.slice(..n), write_data.slice(..n))
                }
                None => Ok(()),
            }
        }
        _ => Ok(()),
    };
    match r {
        Err(ImageError::CompareMismatch { .. }) => Ok(()),
        other => other,
    }
}

impl<T> EventApplier<T> {
    /// An applier writing into `image`.
    pub fn new(image: Arc<dyn BlockImage>, options: ApplyOptions) -> Self {
        EventApplier {
            image,
            options,
            unflushed: Vec::new(),
            parked: BTreeMap::new(),
        }
    }

    /// The image events are applied to.
    pub fn image(&self) -> &Arc<dyn BlockImage> {
        &self.image
    }

    /// IO events submitted to the image but not yet covered by a flush (not yet reported
    /// applied).
    pub fn unflushed(&self) -> usize {
        self.unflushed.len()
    }

    /// Op events waiting for their `OpFinish`.
    pub fn parked_ops(&self) -> usize {
        self.parked.len()
    }

    fn flush(&mut self, out: &mut Vec<Applied<T>>) -> Result<(), ApplyError> {
        self.image.flush().map_err(|source| ApplyError::Image {
            event: "flush",
            source,
        })?;
        out.extend(self.unflushed.drain(..).map(|id| Applied { id, result: 0 }));
        Ok(())
    }

    /// Applies one event; returns the ids now applied (in journal order of their completion).
    pub fn apply(&mut self, id: T, event: &Event) -> Result<Vec<Applied<T>>, ApplyError> {
        let mut out = Vec::new();
        match event {
            Event::AioWrite { .. }
            | Event::AioDiscard { .. }
            | Event::AioWriteSame { .. }
            | Event::AioCompareAndWrite { .. } => {
                apply_io(self.image.as_ref(), event).map_err(|source| ApplyError::Image {
                    event: event.name(),
                    source,
                })?;
                self.unflushed.push(id);
                if self.unflushed.len() >= self.options.flush_every.max(1) {
                    self.flush(&mut out)?;
                }
            }
            Event::AioFlush => {
                self.flush(&mut out)?;
                out.push(Applied { id, result: 0 });
            }
            Event::OpFinish { op_tid, result } => match self.parked.remove(op_tid) {
                None => out.push(Applied { id, result: 0 }),
                Some(parked) => {
                    let recorded = self.finish_op(&parked.op, *op_tid, *result, parked.executed)?;
                    out.push(Applied {
                        id: parked.id,
                        result: recorded,
                    });
                    out.push(Applied {
                        id,
                        result: recorded,
                    });
                }
            },
            Event::DemotePromote | Event::Unknown { .. } => out.push(Applied { id, result: 0 }),
            op => {
                let op_tid = op.op_tid().unwrap_or(0);
                if self.parked.contains_key(&op_tid) {
                    return Err(ApplyError::DuplicateOp { op_tid });
                }
                let executed =
                    executes_immediately(op).then(|| execute_op(self.image.as_ref(), op));
                self.parked.insert(
                    op_tid,
                    Parked {
                        id,
                        op: op.clone(),
                        executed,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Executes (or skips) a parked op for its `OpFinish`; returns the result to report.
    /// `executed` holds the outcome of an op already executed at its op event.
    fn finish_op(
        &mut self,
        op: &Event,
        op_tid: u64,
        result: i32,
        executed: Option<Result<(), ImageError>>,
    ) -> Result<i32, ApplyError> {
        if result < 0 {
            if expected_failure(op, result) || reapply_ignored(op, result) {
                return Ok(result);
            }
            return Err(ApplyError::RecordedFailure {
                event: op.name(),
                op_tid,
                result,
            });
        }
        match executed.unwrap_or_else(|| execute_op(self.image.as_ref(), op)) {
            Ok(()) => Ok(0),
            Err(e) if reapply_ignored(op, e.errno()) => Ok(0),
            Err(source) => Err(ApplyError::Image {
                event: op.name(),
                source,
            }),
        }
    }

    /// Ends replay: flushes the image and reports every remaining IO event applied. Ops still
    /// waiting for their `OpFinish` are executed (orderly shutdown, `cancel == false`) or
    /// dropped unapplied (`cancel == true`, librbd's `-ERESTART`).
    pub fn finish(&mut self, cancel: bool) -> Result<Vec<Applied<T>>, ApplyError> {
        let mut out = Vec::new();
        let parked = std::mem::take(&mut self.parked);
        if !cancel {
            for (op_tid, p) in parked {
                let result = self.finish_op(&p.op, op_tid, 0, p.executed)?;
                out.push(Applied { id: p.id, result });
            }
        }
        self.flush(&mut out)?;
        Ok(out)
    }
}
