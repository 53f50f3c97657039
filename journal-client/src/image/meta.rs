//! Image metadata (name, size, features, snapshots, image-meta) and the rules of the
//! maintenance operations on it, shared by every image implementation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ImageError, ImageResult};

/// One snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapInfo {
    /// Snapshot id (ids grow from 1 and are never reused).
    pub id: u64,
    /// Name.
    pub name: String,
    /// Image size when the snapshot was taken.
    pub size: u64,
    /// Whether the snapshot is protected against removal.
    pub protected: bool,
}

/// Everything about an image except its data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// Image name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Feature bits.
    pub features: u64,
    /// Snapshot count limit (`None` = unlimited).
    pub snap_limit: Option<u64>,
    /// The id the next snapshot gets.
    pub next_snap_id: u64,
    /// Snapshots, in id order.
    pub snaps: Vec<SnapInfo>,
    /// Image-meta key/value pairs.
    pub metadata: BTreeMap<String, String>,
}

impl ImageMeta {
    /// A fresh image's metadata.
    pub fn new(name: &str, size: u64) -> Self {
        ImageMeta {
            name: name.to_owned(),
            size,
            features: 0,
            snap_limit: None,
            next_snap_id: 1,
            snaps: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }

    /// Serialises for a side file or omap value.
    pub fn to_json(&self) -> ImageResult<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| ImageError::Corrupt(e.to_string()))
    }

    /// Parses what [`ImageMeta::to_json`] wrote.
    pub fn from_json(bytes: &[u8]) -> ImageResult<Self> {
        serde_json::from_slice(bytes).map_err(|e| ImageError::Corrupt(e.to_string()))
    }

    /// The snapshot called `name`.
    pub fn snap(&self, name: &str) -> ImageResult<&SnapInfo> {
        self.snaps
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ImageError::SnapNotFound {
                name: name.to_owned(),
            })
    }

    fn snap_mut(&mut self, name: &str) -> ImageResult<&mut SnapInfo> {
        self.snaps
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| ImageError::SnapNotFound {
                name: name.to_owned(),
            })
    }

    /// Checks and records a new snapshot; returns it (the caller saves the data under its id).
    pub fn snap_create(&mut self, name: &str) -> ImageResult<SnapInfo> {
        if name.is_empty() {
            return Err(ImageError::InvalidArgument("empty snapshot name".into()));
        }
        if self.snaps.iter().any(|s| s.name == name) {
            return Err(ImageError::SnapExists {
                name: name.to_owned(),
            });
        }
        if let Some(limit) = self.snap_limit {
            if self.snaps.len() as u64 >= limit {
                return Err(ImageError::SnapLimitReached { limit });
            }
        }
        let snap = SnapInfo {
            id: self.next_snap_id,
            name: name.to_owned(),
            size: self.size,
            protected: false,
        };
        self.next_snap_id += 1;
        self.snaps.push(snap.clone());
        Ok(snap)
    }

    /// Checks and forgets a snapshot; returns it (the caller deletes its data).
    pub fn snap_remove(&mut self, name: &str) -> ImageResult<SnapInfo> {
        let snap = self.snap(name)?.clone();
        if snap.protected {
            return Err(ImageError::SnapProtected {
                name: name.to_owned(),
            });
        }
        self.snaps.retain(|s| s.id != snap.id);
        Ok(snap)
    }

    /// Renames a snapshot.
    pub fn snap_rename(&mut self, src: &str, dst: &str) -> ImageResult<()> {
        if dst.is_empty() {
            return Err(ImageError::InvalidArgument("empty snapshot name".into()));
        }
        if self.snaps.iter().any(|s| s.name == dst) {
            return Err(ImageError::SnapExists {
                name: dst.to_owned(),
            });
        }
        self.snap_mut(src)?.name = dst.to_owned();
        Ok(())
    }

    /// Protects a snapshot (`-EBUSY` if it already is).
    pub fn snap_protect(&mut self, name: &str) -> ImageResult<()> {
        let snap = self.snap_mut(name)?;
        if snap.protected {
            return Err(ImageError::SnapProtected {
                name: name.to_owned(),
            });
        }
        snap.protected = true;
        Ok(())
    }

    /// Unprotects a snapshot (`-EINVAL` if it is not protected).
    pub fn snap_unprotect(&mut self, name: &str) -> ImageResult<()> {
        let snap = self.snap_mut(name)?;
        if !snap.protected {
            return Err(ImageError::SnapNotProtected {
                name: name.to_owned(),
            });
        }
        snap.protected = false;
        Ok(())
    }

    /// Sets the snapshot limit (`-ERANGE` if below the current count).
    pub fn snap_set_limit(&mut self, limit: u64) -> ImageResult<()> {
        let count = self.snaps.len() as u64;
        if limit < count {
            return Err(ImageError::SnapLimitTooLow { limit, count });
        }
        self.snap_limit = Some(limit);
        Ok(())
    }

    /// Renames the image (`-EEXIST` if it already has that name).
    pub fn rename(&mut self, name: &str) -> ImageResult<()> {
        if name.is_empty() {
            return Err(ImageError::InvalidArgument("empty image name".into()));
        }
        if self.name == name {
            return Err(ImageError::NameExists {
                name: name.to_owned(),
            });
        }
        self.name = name.to_owned();
        Ok(())
    }

    /// Sets or clears feature bits.
    pub fn update_features(&mut self, features: u64, enabled: bool) -> ImageResult<()> {
        if features == 0 {
            return Err(ImageError::InvalidArgument("no feature bits given".into()));
        }
        if enabled {
            self.features |= features;
        } else {
            self.features &= !features;
        }
        Ok(())
    }

    /// Removes an image-meta key (`-ENOENT` if absent).
    pub fn metadata_remove(&mut self, key: &str) -> ImageResult<()> {
        self.metadata
            .remove(key)
            .map(drop)
            .ok_or_else(|| ImageError::MetadataNotFound {
                key: key.to_owned(),
            })
    }
}
