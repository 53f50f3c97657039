//! Copying an image's metadata and snapshots from the primary site to the replica during an
//! image sync, at the object level of journal-client's `ObjectImage` format (documented there):
//! metadata is the JSON `ImageMeta` under omap key `meta` of `rbd_header.<id>`, and snapshot
//! `s` keeps a copy of data object `n` as `rbd_data.<id>.<n as 16 hex digits>@<s>`.
//!
//! Snapshots never change once taken, so copying them while the primary runs is consistent:
//! the metadata read lists snapshots whose objects were all saved before it was written. Ops
//! after the sync point are replayed afterwards and tolerate finding their effect already
//! there (snapshot create `-EEXIST`, remove `-ENOENT`, …, §12.4). Snapshot ids are kept, so
//! events naming a snapshot by id (rename) find the same snapshot on the replica.

use std::collections::BTreeSet;

use bytes::Bytes;
use journal_client::image::ImageMeta;
use object_store_trait::{ObjectStore, ObjectStoreExt, OmapBatch};

use crate::error::{ReplayError, Result};

const META_KEY: &str = "meta";

fn header_oid(id: &str) -> String {
    format!("rbd_header.{id}")
}

fn data_prefix(id: &str) -> String {
    format!("rbd_data.{id}.")
}

/// Reads an image's metadata.
fn read_meta(store: &dyn ObjectStore, id: &str) -> Result<ImageMeta> {
    let raw = store
        .omap_get_one(&header_oid(id), META_KEY)?
        .ok_or_else(|| ReplayError::ImageNotFound { name: id.into() })?;
    Ok(ImageMeta::from_json(&raw)?)
}

/// `(object number, snapshot id, oid)` of every snapshot object of image `id`.
fn snapshot_objects(store: &dyn ObjectStore, id: &str) -> Result<Vec<(String, u64, String)>> {
    let prefix = data_prefix(id);
    Ok(store
        .list(&prefix)?
        .into_iter()
        .filter_map(|oid| {
            let tail = oid.strip_prefix(&prefix)?;
            let (n, snap) = tail.split_once('@')?;
            let snap = snap.parse().ok()?;
            Some((n.to_owned(), snap, oid))
        })
        .collect())
}

/// Makes the replica `local_id` carry the primary `remote_id`'s metadata (size, features,
/// snapshots, limits, image-meta) and snapshot data. Returns the primary's metadata. The head
/// data is not touched (the caller copies it next).
pub fn copy_meta_and_snapshots(
    remote: &dyn ObjectStore,
    remote_id: &str,
    local: &dyn ObjectStore,
    local_id: &str,
) -> Result<ImageMeta> {
    let meta = read_meta(remote, remote_id)?;
    let wanted: BTreeSet<u64> = meta.snaps.iter().map(|s| s.id).collect();
    // Drop every replica snapshot object (stale ones, or ids the primary reused after a
    // failback); the primary's are copied below.
    for (_, _, oid) in snapshot_objects(local, local_id)? {
        match local.remove(&oid) {
            Err(e) if !e.is_not_found() => return Err(e.into()),
            _ => {}
        }
    }
    for (n, snap, oid) in snapshot_objects(remote, remote_id)? {
        if !wanted.contains(&snap) {
            continue;
        }
        let data = match remote.read_all(&oid) {
            Ok(d) => d,
            // Removed since the metadata was read: its removal is replayed later.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        local.write_full(&format!("{}{n}@{snap}", data_prefix(local_id)), data)?;
    }
    let mut batch = OmapBatch::new();
    batch.set(META_KEY, Bytes::from(meta.to_json()?));
    local.omap_apply(&header_oid(local_id), &batch)?;
    Ok(meta)
}
