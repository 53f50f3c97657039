//! [`SparseFileImage`]: an image kept in a directory as a sparse file.
//!
//! Layout of the directory:
//! * `data`: the image bytes (created sparse with `set_len`; never-written ranges are holes);
//! * `meta.json`: the [`ImageMeta`], replaced crash-safely (write a temporary file, fsync it,
//!   rename over, fsync the directory);
//! * `snap.<id>`: a full copy of `data` taken at snapshot time (made the same crash-safe way).
//!
//! Discard writes zeros (the standard library has no hole-punching call); rollback replaces
//! `data` with a copy of the snapshot file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use super::{BackedImage, ImageBackend, ImageError, ImageMeta, ImageResult};

const ZERO_BLOCK: usize = 64 * 1024;
const META_FILE: &str = "meta.json";
const DATA_FILE: &str = "data";

/// The files of a [`SparseFileImage`].
#[derive(Debug)]
pub struct SparseFileBackend {
    dir: PathBuf,
    data: RwLock<File>,
}

/// An image in a sparse file.
pub type SparseFileImage = BackedImage<SparseFileBackend>;

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> ImageError {
    move |e| ImageError::io(op, e)
}

fn sync_dir(dir: &Path) -> ImageResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory"))
}

/// Writes `path` atomically: temporary file, fsync, rename, fsync of the directory.
fn replace_file(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> ImageResult<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    write(&tmp).map_err(io("write temporary file"))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync temporary file"))?;
    fs::rename(&tmp, dir.join(name)).map_err(io("rename"))?;
    sync_dir(dir)
}

fn open_data(dir: &Path) -> ImageResult<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(DATA_FILE))
        .map_err(io("open data file"))
}

impl BackedImage<SparseFileBackend> {
    /// Creates a zero-filled image of `size` bytes in the (existing, empty) directory `dir`.
    pub fn create(dir: impl AsRef<Path>, name: &str, size: u64) -> ImageResult<Self> {
        let dir = dir.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(DATA_FILE))
            .map_err(io("create data file"))?;
        file.set_len(size).map_err(io("size data file"))?;
        file.sync_all().map_err(io("fsync data file"))?;
        let backend = SparseFileBackend {
            dir,
            data: RwLock::new(file),
        };
        let meta = ImageMeta::new(name, size);
        backend.save_meta(&meta)?;
        Ok(BackedImage::from_parts(backend, meta))
    }

    /// Opens an image made by [`SparseFileImage::create`].
    pub fn open(dir: impl AsRef<Path>) -> ImageResult<Self> {
        let dir = dir.as_ref().to_path_buf();
        let meta =
            ImageMeta::from_json(&fs::read(dir.join(META_FILE)).map_err(io("read metadata"))?)?;
        let file = open_data(&dir)?;
        // A crash between a resize's data change and its metadata write leaves the file at the
        // other size; the metadata is authoritative.
        file.set_len(meta.size).map_err(io("size data file"))?;
        Ok(BackedImage::from_parts(
            SparseFileBackend {
                dir,
                data: RwLock::new(file),
            },
            meta,
        ))
    }
}

impl SparseFileBackend {
    fn snap_name(snap_id: u64) -> String {
        format!("snap.{snap_id}")
    }
}

impl ImageBackend for SparseFileBackend {
    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes> {
        let len = usize::try_from(len)
            .map_err(|_| ImageError::InvalidArgument("read too large".into()))?;
        let mut buf = BytesMut::zeroed(len);
        let file = self.data.read();
        let mut done = 0usize;
        while done < len {
            let Some(dst) = buf.get_mut(done..) else {
                break;
            };
            let n = file
                .read_at(dst, offset + done as u64)
                .map_err(io("read data file"))?;
            if n == 0 {
                break; // past the end of the file: zeros
            }
            done += n;
        }
        Ok(buf.freeze())
    }

    fn write(&self, offset: u64, data: &Bytes) -> ImageResult<()> {
        self.data
            .read()
            .write_all_at(data, offset)
            .map_err(io("write data file"))
    }

    fn zero(&self, offset: u64, len: u64) -> ImageResult<()> {
        let zeros = vec![0u8; ZERO_BLOCK];
        let file = self.data.read();
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let n = (end - pos).min(ZERO_BLOCK as u64) as usize;
            let block = zeros.get(..n).unwrap_or_default();
            file.write_all_at(block, pos)
                .map_err(io("zero data file"))?;
            pos += n as u64;
        }
        Ok(())
    }

    fn resize(&self, _old: u64, new: u64) -> ImageResult<()> {
        let file = self.data.read();
        file.set_len(new).map_err(io("resize data file"))?;
        file.sync_all().map_err(io("fsync data file"))
    }

    fn snap_save(&self, snap_id: u64, _size: u64) -> ImageResult<()> {
        self.data.read().sync_all().map_err(io("fsync data file"))?;
        let src = self.dir.join(DATA_FILE);
        replace_file(&self.dir, &Self::snap_name(snap_id), |tmp| {
            fs::copy(&src, tmp).map(drop)
        })
    }

    fn snap_restore(&self, snap_id: u64, size: u64, _current_size: u64) -> ImageResult<()> {
        let src = self.dir.join(Self::snap_name(snap_id));
        let mut file = self.data.write();
        replace_file(&self.dir, DATA_FILE, |tmp| {
            fs::copy(&src, tmp)?;
            OpenOptions::new().write(true).open(tmp)?.set_len(size)
        })?;
        *file = open_data(&self.dir)?;
        Ok(())
    }

    fn snap_delete(&self, snap_id: u64) -> ImageResult<()> {
        match fs::remove_file(self.dir.join(Self::snap_name(snap_id))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ImageError::io("remove snapshot", e))
            }
            _ => sync_dir(&self.dir),
        }
    }

    fn flush(&self) -> ImageResult<()> {
        self.data.read().sync_data().map_err(io("fsync data file"))
    }

    fn save_meta(&self, meta: &ImageMeta) -> ImageResult<()> {
        let json = meta.to_json()?;
        replace_file(&self.dir, META_FILE, |tmp| {
            let mut f = File::create(tmp)?;
            f.write_all(&json)
        })
    }
}
