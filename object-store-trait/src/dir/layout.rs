//! Opening a store directory: the `FORMAT` check, the layout, and cleanup of leftovers.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::files::FileCache;
use super::fsutil::{overwrite_file, sync_dir, unique_name};
use super::lock::{stripe_of, StripeLocks, STRIPES};
use super::omap_file::OmapCache;
use super::{DirStoreOptions, Shared, SyncPolicy, FORMAT_FILE, FORMAT_TEXT, FORMAT_TEXT_2};
use crate::{Result, StoreError, WatchRegistry};

/// Creates the directory layout, checks `FORMAT`, opens the lock files and cleans leftovers.
pub(super) fn init_layout(root: PathBuf, opts: &DirStoreOptions) -> Result<Shared> {
    let shown = root.display().to_string();
    let io_err = |op: &'static str| {
        let shown = shown.clone();
        move |e| StoreError::io(op, shown, e)
    };
    let objects = root.join("objects");
    let tmp = root.join("tmp");
    let trash = root.join("trash");
    let spare = root.join("spare");
    let locks_dir = root.join("locks");
    let format_path = root.join(FORMAT_FILE);
    match fs::read(&format_path) {
        Ok(text) if text == FORMAT_TEXT_2.as_bytes() => {
            upgrade_format(&root, &format_path).map_err(io_err("upgrade FORMAT"))?;
        }
        Ok(text) => check_format(&format_path, &text)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            refuse_foreign_directory(&root)?;
            if !write_format(&root, &format_path).map_err(io_err("write FORMAT"))? {
                // Another process initialised the directory since we looked: check its FORMAT.
                let text = fs::read(&format_path).map_err(io_err("read FORMAT"))?;
                check_format(&format_path, &text)?;
            }
        }
        Err(e) => return Err(io_err("read FORMAT")(e)),
    }
    for dir in [&objects, &tmp, &trash, &spare, &locks_dir] {
        fs::create_dir_all(dir).map_err(io_err("create store layout"))?;
    }
    if opts.sync == SyncPolicy::Data {
        sync_dir(&root).map_err(io_err("sync store directory"))?;
    }
    let locks = StripeLocks::open(&locks_dir)?;
    let shared = Shared {
        root,
        objects,
        tmp,
        trash,
        spare,
        locks,
        omap: OmapCache::default(),
        files: FileCache::new(opts.open_files),
        watches: WatchRegistry::new(),
    };
    clean_leftovers(&shared)?;
    Ok(shared)
}

fn check_format(format_path: &Path, text: &[u8]) -> Result<()> {
    if text == FORMAT_TEXT.as_bytes() {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        oid: format_path.display().to_string(),
        detail: format!(
            "not a DirStore of this version (FORMAT holds {:?})",
            String::from_utf8_lossy(text)
        ),
    })
}

/// Creates `FORMAT` if it does not exist yet: writes and syncs a staged copy, then links it into
/// place, which (unlike a rename) fails if another process created `FORMAT` first. Returns
/// `false` in that case; the caller then checks the existing file. On a file system without hard
/// links the staged copy is renamed into place instead (same content, so a lost race is harmless).
pub(super) fn write_format(root: &Path, format_path: &Path) -> io::Result<bool> {
    let staged = root.join(format!("{FORMAT_FILE}.{}.tmp", unique_name()));
    overwrite_file(&staged, FORMAT_TEXT.as_bytes(), true)?;
    let placed = match fs::hard_link(&staged, format_path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => fs::rename(&staged, format_path).map(|()| true),
    };
    // A staged copy left behind is harmless (`FORMAT.*` counts as part of the layout).
    let _ = fs::remove_file(&staged);
    placed
}

/// Upgrades a format-2 store to format 3, whose only addition is log-mode data files (which a
/// format-2 reader would take for damaged ones): replaces `FORMAT` by a synced staged copy. Any
/// process still running a format-2 build on the store must be stopped first; a concurrent
/// upgrade by another process writes the same content.
fn upgrade_format(root: &Path, format_path: &Path) -> io::Result<()> {
    let staged = root.join(format!("{FORMAT_FILE}.{}.tmp", unique_name()));
    overwrite_file(&staged, FORMAT_TEXT.as_bytes(), true)?;
    fs::rename(&staged, format_path)?;
    sync_dir(root)
}

/// A directory without `FORMAT` becomes a store only if it holds nothing but (parts of) a store
/// layout, so that pointing `open` at the wrong directory cannot scatter files into it. `FORMAT`
/// itself counts as part of the layout: another process opening the same new directory may have
/// created it since this one found it missing (its content is checked afterwards).
pub(super) fn refuse_foreign_directory(root: &Path) -> Result<()> {
    let shown = root.display().to_string();
    let entries = fs::read_dir(root).map_err(|e| StoreError::io("open store", &*shown, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("open store", &*shown, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = matches!(
            &*name,
            "FORMAT" | "objects" | "tmp" | "trash" | "spare" | "locks"
        ) || name.starts_with("FORMAT.");
        if !ours {
            return Err(StoreError::InvalidArgument(format!(
                "{shown} is not empty and not a DirStore (found {name:?})"
            )));
        }
    }
    Ok(())
}

/// Deletes removed objects whose deletion was interrupted and half-built objects of crashed
/// creations. Both kinds of entry are named `NN-...` after their object's stripe and are deleted
/// under that stripe's exclusive lock, so a creation or removal in progress in another process
/// (which holds the stripe until its renames are durable) is never disturbed.
fn clean_leftovers(shared: &Shared) -> Result<()> {
    for dir in [&shared.trash, &shared.tmp] {
        let Ok(listing) = fs::read_dir(dir) else {
            continue;
        };
        for entry in listing.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stripe = name
                .split('-')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|s| *s < STRIPES);
            let _guard = match stripe {
                Some(stripe) => Some(shared.locks.exclusive_stripe(stripe)?),
                None => None,
            };
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// A staging or trash entry name for `oid`: `NN-<unique>` with NN its lock stripe.
pub(super) fn leftover_name(oid: &str) -> String {
    format!("{:02}-{}", stripe_of(oid), unique_name())
}
