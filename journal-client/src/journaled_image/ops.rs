//! Maintenance operations of [`JournaledImage`], journaled the librbd way (spec §12.3): quiesce
//! IO, append the op event, wait for it and for every earlier request to be applied, flush the
//! commit position, execute, append `OpFinish(op_tid, result)`, commit both entries.

use journal_core::encoding::{Encode, UTime};
use journal_core::snap_namespace::SnapshotNamespace;
use journal_core::{Event, EventEntry};

use super::JournaledImage;
use crate::append_future::AppendFuture;
use crate::apply::execute_op;
use crate::error::{JournalClientError, Result};
use crate::image::{ImageError, ImageMeta, ImageResult};

impl JournaledImage {
    /// Runs a maintenance op the librbd way (§12.3). `precheck` validates the op against a copy
    /// of the image metadata first: like librbd's own checks before it journals an op, a request
    /// that cannot succeed (a missing snapshot, a protected one, the snapshot limit...) fails
    /// without any journal entry, so recorded op failures are real execution failures only.
    fn run_op(
        &self,
        precheck: impl FnOnce(&mut ImageMeta) -> ImageResult<()>,
        event: impl FnOnce(u64) -> Event,
    ) -> Result<()> {
        self.check_io()?;
        let inner = &self.inner;
        let mut sub = inner.submit.lock();
        while sub.op_in_progress {
            inner.submit_cv.wait(&mut sub);
        }
        if sub.apply_tx.is_none() {
            return Err(JournalClientError::Stopped("image is closed".into()));
        }
        // Quiesce: IO submitters wait while an op is in progress.
        sub.op_in_progress = true;
        drop(sub);
        let result = (|| {
            let mut meta = inner.image.meta();
            precheck(&mut meta)?;
            let mut sub = inner.submit.lock();
            let op_tid = sub.next_op_tid;
            sub.next_op_tid += 1;
            let barrier = sub.next_seq;
            let event = event(op_tid);
            let appended = inner
                .recorder
                .append(EventEntry::new(event.clone(), UTime::now()).to_bytes());
            drop(sub);
            self.op_body(&appended?, op_tid, &event, barrier)
        })();
        let mut sub = inner.submit.lock();
        sub.op_in_progress = false;
        sub.size = inner.image.size();
        drop(sub);
        inner.submit_cv.notify_all();
        result
    }

    fn op_body(&self, op: &AppendFuture, op_tid: u64, event: &Event, barrier: u64) -> Result<()> {
        op.wait()?;
        self.inner.wait_applied(barrier)?;
        self.flush_commit_position()?;
        let r = execute_op(self.inner.image.as_ref(), event);
        let result = r.as_ref().err().map_or(0, ImageError::errno);
        let finish = EventEntry::new(Event::OpFinish { op_tid, result }, UTime::now());
        let fin = self.inner.recorder.append(finish.to_bytes())?;
        fin.wait()?;
        {
            let mut tracker = self.inner.tracker.lock();
            let _ = tracker.committed(op.commit_tid());
            let _ = tracker.committed(fin.commit_tid());
        }
        self.flush_commit_position()?;
        Ok(r?)
    }

    /// Creates a snapshot.
    pub fn snap_create(&self, name: &str) -> Result<()> {
        self.run_op(
            |m| m.snap_create(name).map(drop),
            |op_tid| Event::SnapCreate {
                op_tid,
                snap_name: name.to_owned(),
                namespace: SnapshotNamespace::User,
            },
        )
    }

    /// Removes a snapshot.
    pub fn snap_remove(&self, name: &str) -> Result<()> {
        self.run_op(
            |m| m.snap_remove(name).map(drop),
            |op_tid| Event::SnapRemove {
                op_tid,
                snap_name: name.to_owned(),
                namespace: SnapshotNamespace::User,
            },
        )
    }

    /// Renames a snapshot.
    pub fn snap_rename(&self, src: &str, dst: &str) -> Result<()> {
        let src_snap_id = self
            .inner
            .image
            .snap_list()?
            .into_iter()
            .find(|s| s.name == src)
            .map_or(0, |s| s.id);
        self.run_op(
            |m| m.snap_rename(src, dst),
            |op_tid| Event::SnapRename {
                op_tid,
                dst_snap_name: dst.to_owned(),
                src_snap_id,
                src_snap_name: src.to_owned(),
            },
        )
    }

    /// Protects a snapshot.
    pub fn snap_protect(&self, name: &str) -> Result<()> {
        self.run_op(
            |m| m.snap_protect(name),
            |op_tid| Event::SnapProtect {
                op_tid,
                snap_name: name.to_owned(),
                namespace: SnapshotNamespace::User,
            },
        )
    }

    /// Unprotects a snapshot.
    pub fn snap_unprotect(&self, name: &str) -> Result<()> {
        self.run_op(
            |m| m.snap_unprotect(name),
            |op_tid| Event::SnapUnprotect {
                op_tid,
                snap_name: name.to_owned(),
                namespace: SnapshotNamespace::User,
            },
        )
    }

    /// Rolls the image back to a snapshot.
    pub fn snap_rollback(&self, name: &str) -> Result<()> {
        self.run_op(
            |m| m.snap(name).map(drop),
            |op_tid| Event::SnapRollback {
                op_tid,
                snap_name: name.to_owned(),
                namespace: SnapshotNamespace::User,
            },
        )
    }

    /// Sets the snapshot limit.
    pub fn snap_set_limit(&self, limit: u64) -> Result<()> {
        self.run_op(
            |m| m.snap_set_limit(limit),
            |op_tid| Event::SnapLimit { op_tid, limit },
        )
    }

    /// Resizes the image.
    pub fn resize(&self, size: u64) -> Result<()> {
        self.run_op(|_| Ok(()), |op_tid| Event::Resize { op_tid, size })
    }

    /// Renames the image.
    pub fn rename(&self, name: &str) -> Result<()> {
        self.run_op(
            |m| m.rename(name),
            |op_tid| Event::Rename {
                op_tid,
                image_name: name.to_owned(),
            },
        )
    }

    /// Flattens the image (fails with `-EINVAL` for an image without parent).
    pub fn flatten(&self) -> Result<()> {
        self.run_op(|_| Ok(()), |op_tid| Event::Flatten { op_tid })
    }

    /// Sets or clears feature bits.
    pub fn update_features(&self, features: u64, enabled: bool) -> Result<()> {
        self.run_op(
            |m| m.update_features(features, enabled),
            |op_tid| Event::UpdateFeatures {
                op_tid,
                features,
                enabled,
            },
        )
    }

    /// Sets an image-meta key.
    pub fn metadata_set(&self, key: &str, value: &str) -> Result<()> {
        self.run_op(
            |_| Ok(()),
            |op_tid| Event::MetadataSet {
                op_tid,
                key: key.to_owned(),
                value: value.to_owned(),
            },
        )
    }

    /// Removes an image-meta key.
    pub fn metadata_remove(&self, key: &str) -> Result<()> {
        self.run_op(
            |m| m.metadata_remove(key),
            |op_tid| Event::MetadataRemove {
                op_tid,
                key: key.to_owned(),
            },
        )
    }
}
