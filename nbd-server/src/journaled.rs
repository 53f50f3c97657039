//! [`JournaledExport`]: a [`JournaledImage`] as an [`ExportImage`], so NBD writes go through the
//! journal (acknowledged once durable there) and are mirrored from it.

use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{EINVAL, EIO};
use journal_client::{JournalClientError, JournaledImage, RecorderError};

use crate::image::{ExportError, ExportImage};

/// `-EROFS`: the image is not primary (a mirror peer owns the journal).
const EROFS: i32 = -30;

/// A journaled image exported over NBD.
#[derive(Debug, Clone)]
pub struct JournaledExport(pub Arc<JournaledImage>);

/// Maps a journaled-image error to an errno: the image's own errno when the image refused the
/// operation, `-EROFS` for a non-primary image, the store's errno for a failed journal append,
/// `-EIO` otherwise.
pub fn journal_export_error(e: JournalClientError) -> ExportError {
    let errno = match &e {
        JournalClientError::Image(i) => i.errno(),
        JournalClientError::NotPrimary { .. } => EROFS,
        JournalClientError::Recorder(RecorderError::Store { errno, .. }) => *errno,
        JournalClientError::Settings(_) => EINVAL,
        _ => EIO,
    };
    ExportError {
        errno,
        message: e.to_string(),
    }
}

impl ExportImage for JournaledExport {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read(&self, offset: u64, len: u64) -> Result<Bytes, ExportError> {
        self.0.read(offset, len).map_err(journal_export_error)
    }
    fn write(&self, offset: u64, data: Bytes) -> Result<(), ExportError> {
        self.0.write(offset, data).map_err(journal_export_error)
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), ExportError> {
        self.0.discard(offset, len).map_err(journal_export_error)
    }
    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> Result<(), ExportError> {
        self.0
            .write_same(offset, len, pattern)
            .map_err(journal_export_error)
    }
    fn flush(&self) -> Result<(), ExportError> {
        self.0.flush().map_err(journal_export_error)
    }
}

/// Wraps a journaled image for [`crate::NbdServer::bind_exports`].
pub fn export_journaled_image(image: Arc<JournaledImage>) -> Arc<dyn ExportImage> {
    Arc::new(JournaledExport(image))
}
