//! An image opened for writing: through its journal when it is journaled, directly otherwise.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use journal_client::image::{BlockImage, ObjectImage};
use journal_client::{JournalSettings, JournaledImage};
use replay_engine::site::Site;

use crate::error::CliResult;

/// An image open for writing.
#[derive(Debug)]
pub enum Writable {
    /// An image without the journaling feature.
    Plain(Arc<ObjectImage>),
    /// A journaled image: every mutation is durable in the journal before it returns.
    Journaled(JournaledImage),
}

impl Writable {
    /// Opens image `name` of `site` for writing.
    pub fn open(site: &Site, name: &str) -> CliResult<Writable> {
        let info = site.image_info(name)?;
        if info.journaled() {
            let settings = JournalSettings {
                commit_age: Duration::from_millis(100),
                ..JournalSettings::default()
            };
            Ok(Writable::Journaled(site.open_journaled(name, settings)?))
        } else {
            Ok(Writable::Plain(site.open_image(name)?))
        }
    }

    /// Writes `data` at `offset`.
    pub fn write(&self, offset: u64, data: Bytes) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.write(offset, data)?,
            Writable::Journaled(j) => j.write(offset, data)?,
        }
        Ok(())
    }

    /// Flushes earlier writes.
    pub fn flush(&self) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.flush()?,
            Writable::Journaled(j) => j.flush()?,
        }
        Ok(())
    }

    /// Creates a snapshot.
    pub fn snap_create(&self, snap: &str) -> CliResult<()> {
        match self {
            Writable::Plain(i) => drop(i.snap_create(snap)?),
            Writable::Journaled(j) => j.snap_create(snap)?,
        }
        Ok(())
    }

    /// Removes a snapshot.
    pub fn snap_remove(&self, snap: &str) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.snap_remove(snap)?,
            Writable::Journaled(j) => j.snap_remove(snap)?,
        }
        Ok(())
    }

    /// Renames a snapshot.
    pub fn snap_rename(&self, snap: &str, new_name: &str) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.snap_rename(snap, new_name)?,
            Writable::Journaled(j) => j.snap_rename(snap, new_name)?,
        }
        Ok(())
    }

    /// Protects a snapshot.
    pub fn snap_protect(&self, snap: &str) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.snap_protect(snap)?,
            Writable::Journaled(j) => j.snap_protect(snap)?,
        }
        Ok(())
    }

    /// Unprotects a snapshot.
    pub fn snap_unprotect(&self, snap: &str) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.snap_unprotect(snap)?,
            Writable::Journaled(j) => j.snap_unprotect(snap)?,
        }
        Ok(())
    }

    /// Rolls back to a snapshot.
    pub fn snap_rollback(&self, snap: &str) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.snap_rollback(snap)?,
            Writable::Journaled(j) => j.snap_rollback(snap)?,
        }
        Ok(())
    }

    /// Closes the image: for a journaled image, waits until everything is applied and writes
    /// the commit position.
    pub fn close(self) -> CliResult<()> {
        match self {
            Writable::Plain(i) => i.flush()?,
            Writable::Journaled(j) => j.close()?,
        }
        Ok(())
    }
}

/// Opens image `name` for writing, runs `f`, and closes it (also when `f` fails).
pub fn with_writable(
    site: &Site,
    name: &str,
    f: impl FnOnce(&Writable) -> CliResult<()>,
) -> CliResult<()> {
    let image = Writable::open(site, name)?;
    let result = f(&image);
    let closed = image.close();
    result?;
    closed
}
