//! [`ExportImage`]: the six operations the server needs from an exported image.
//!
//! Every [`BlockImage`] is an `ExportImage` (blanket implementation). Images that expose the same
//! operations with another error type — the journaled image of `journal-client` — get a small
//! adapter (see `journaled.rs` when present). The server only ever holds
//! `Arc<dyn ExportImage>`.
//!
//! Because of the blanket implementation, a scope that imports both `ExportImage` and
//! `BlockImage` must call the methods of a concrete image in fully qualified form
//! (`BlockImage::read(&img, ..)`); importing only one of them (the usual case) needs nothing.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, ImageError};

/// Why an image operation failed: a librbd-style negative errno plus a message for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (errno {errno})")]
pub struct ExportError {
    /// Negative errno (`-5` = EIO, `-22` = EINVAL, `-28` = ENOSPC, ...).
    pub errno: i32,
    /// Human-readable cause.
    pub message: String,
}

impl From<ImageError> for ExportError {
    fn from(e: ImageError) -> Self {
        ExportError {
            errno: e.errno(),
            message: e.to_string(),
        }
    }
}

/// What an exported image must do. Methods may be called from many threads at once; a method
/// returns only when its effect is acknowledged (for a journaled image: durable in the journal).
pub trait ExportImage: Send + Sync + Debug {
    /// Current size in bytes.
    fn size(&self) -> u64;
    /// Reads `len` bytes at `offset`.
    fn read(&self, offset: u64, len: u64) -> Result<Bytes, ExportError>;
    /// Writes `data` at `offset`.
    fn write(&self, offset: u64, data: Bytes) -> Result<(), ExportError>;
    /// Zeroes `len` bytes at `offset` (may deallocate).
    fn discard(&self, offset: u64, len: u64) -> Result<(), ExportError>;
    /// Fills `len` bytes at `offset` with repetitions of `pattern`.
    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> Result<(), ExportError>;
    /// Makes every completed write durable.
    fn flush(&self) -> Result<(), ExportError>;
}

impl<T: BlockImage + ?Sized> ExportImage for T {
    fn size(&self) -> u64 {
        BlockImage::size(self)
    }
    fn read(&self, offset: u64, len: u64) -> Result<Bytes, ExportError> {
        Ok(BlockImage::read(self, offset, len)?)
    }
    fn write(&self, offset: u64, data: Bytes) -> Result<(), ExportError> {
        Ok(BlockImage::write(self, offset, data)?)
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), ExportError> {
        Ok(BlockImage::discard(self, offset, len)?)
    }
    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> Result<(), ExportError> {
        Ok(BlockImage::write_same(self, offset, len, pattern)?)
    }
    fn flush(&self) -> Result<(), ExportError> {
        Ok(BlockImage::flush(self)?)
    }
}

/// An `Arc<dyn BlockImage>` seen as an export (trait objects cannot be upcast directly).
#[derive(Debug, Clone)]
pub struct BlockImageExport(pub Arc<dyn BlockImage>);

impl ExportImage for BlockImageExport {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read(&self, offset: u64, len: u64) -> Result<Bytes, ExportError> {
        Ok(self.0.read(offset, len)?)
    }
    fn write(&self, offset: u64, data: Bytes) -> Result<(), ExportError> {
        Ok(self.0.write(offset, data)?)
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), ExportError> {
        Ok(self.0.discard(offset, len)?)
    }
    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> Result<(), ExportError> {
        Ok(self.0.write_same(offset, len, pattern)?)
    }
    fn flush(&self) -> Result<(), ExportError> {
        Ok(self.0.flush()?)
    }
}

/// Wraps a [`BlockImage`] trait object for [`crate::NbdServer::bind_exports`].
pub fn export_block_image(image: Arc<dyn BlockImage>) -> Arc<dyn ExportImage> {
    Arc::new(BlockImageExport(image))
}
