//! `rbdj image ...`: image management on a site.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use bytes::Bytes;
use journal_client::image::BlockImage;
use replay_engine::site::{ImageInfo, JournalShape, Site};
use serde::Serialize;

use crate::commands::print;
use crate::error::{CliError, CliResult};
use crate::output::Format;
pub use crate::writable::with_writable;

/// Bytes moved per request by export/import/write.
const CHUNK: u64 = 4 << 20;

#[derive(Debug, Serialize)]
struct ImageJson<'a> {
    name: &'a str,
    id: &'a str,
    size: u64,
    features: u64,
    journaling: bool,
}

fn image_json(info: &ImageInfo) -> ImageJson<'_> {
    ImageJson {
        name: &info.name,
        id: &info.id,
        size: info.size,
        features: info.features,
        journaling: info.journaled(),
    }
}

/// `image ls`.
pub fn list(site: &Site, format: Format, out: &mut dyn Write) -> CliResult<()> {
    let images = site.list_images()?;
    let json: Vec<ImageJson<'_>> = images.iter().map(image_json).collect();
    print(out, format, &json, |out| {
        for info in &images {
            writeln!(out, "{}", info.name)?;
        }
        Ok(())
    })
}

/// `image info`.
pub fn info(site: &Site, name: &str, format: Format, out: &mut dyn Write) -> CliResult<()> {
    let info = site.image_info(name)?;
    print(out, format, &image_json(&info), |out| {
        writeln!(out, "rbd image '{}':", info.name)?;
        writeln!(out, "\tsize {}", crate::journal_tools::size_text(info.size))?;
        writeln!(out, "\tid: {}", info.id)?;
        writeln!(
            out,
            "\tfeatures: {}",
            if info.journaled() {
                "exclusive-lock, journaling"
            } else {
                ""
            }
        )?;
        Ok(())
    })
}

/// `image write NAME FILE --offset N`: writes the file's bytes through the journal when the image
/// is journaled (each chunk acknowledged only once durable in the journal).
pub fn write_file(
    site: &Site,
    name: &str,
    offset: u64,
    file: &Path,
    out: &mut dyn Write,
) -> CliResult<()> {
    let data = std::fs::read(file)?;
    let written = data.len();
    with_writable(site, name, |image| {
        let mut pos = 0usize;
        for chunk in data.chunks(CHUNK as usize) {
            image.write(offset + pos as u64, Bytes::copy_from_slice(chunk))?;
            pos += chunk.len();
        }
        image.flush()?;
        Ok(())
    })?;
    writeln!(out, "wrote {written} bytes at offset {offset}")?;
    Ok(())
}

/// `image export NAME FILE`: the image's contents to a raw file.
pub fn export(site: &Site, name: &str, file: &Path, out: &mut dyn Write) -> CliResult<()> {
    let image = site.open_image(name)?;
    let size = image.size();
    let mut f = File::create(file)?;
    let mut pos = 0;
    while pos < size {
        let len = CHUNK.min(size - pos);
        let data = image.read(pos, len)?;
        f.write_all(&data)?;
        pos += len;
    }
    f.sync_all()?;
    writeln!(out, "Exporting image: 100% complete...done.")?;
    Ok(())
}

/// `image import FILE NAME`: a new image holding the file's bytes.
pub fn import(
    site: &Site,
    name: &str,
    journaling: bool,
    file: &Path,
    out: &mut dyn Write,
) -> CliResult<()> {
    let mut f = File::open(file)?;
    let size = f.metadata()?.len();
    site.create_image(name, size, journaling.then(JournalShape::default))?;
    with_writable(site, name, |image| {
        let mut pos = 0u64;
        let mut buf = vec![0u8; CHUNK as usize];
        while pos < size {
            let len = CHUNK.min(size - pos) as usize;
            let slot = buf
                .get_mut(..len)
                .ok_or_else(|| CliError::Invalid("chunk size".into()))?;
            f.read_exact(slot)?;
            if slot.iter().any(|b| *b != 0) {
                image.write(pos, Bytes::copy_from_slice(slot))?;
            }
            pos += len as u64;
        }
        image.flush()?;
        Ok(())
    })?;
    writeln!(out, "Importing image: 100% complete...done.")?;
    Ok(())
}

/// `image snap create`.
pub fn snap_create(site: &Site, name: &str, snap: &str) -> CliResult<()> {
    with_writable(site, name, |image| image.snap_create(snap))
}

/// `image snap rm`.
pub fn snap_remove(site: &Site, name: &str, snap: &str) -> CliResult<()> {
    with_writable(site, name, |image| image.snap_remove(snap))
}

/// `image snap rollback`.
pub fn snap_rollback(site: &Site, name: &str, snap: &str) -> CliResult<()> {
    with_writable(site, name, |image| image.snap_rollback(snap))
}

/// `image snap ls`.
pub fn snap_list(site: &Site, name: &str, out: &mut dyn Write) -> CliResult<()> {
    let image = site.open_image(name)?;
    writeln!(out, "SNAPID  NAME  SIZE  PROTECTED")?;
    for snap in image.snap_list()? {
        writeln!(
            out,
            "{}  {}  {}  {}",
            snap.id,
            snap.name,
            crate::journal_tools::size_text(snap.size),
            snap.protected
        )?;
    }
    Ok(())
}
