//! Site specs: `mem:` and `dir:PATH` (and, later, `rados:POOL?conf=...`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use object_store_trait::{DirStore, DirStoreOptions, MemStore, ObjectStore, StoreError};

/// Where a site's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteSpec {
    /// In this process's memory (gone when the process exits; for `demo` and `bench`).
    Mem,
    /// A local directory (`DirStore`).
    Dir(PathBuf),
}

/// A site spec that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid site {0:?}: expected `mem:` or `dir:PATH`")]
pub struct SiteSpecError(String);

impl FromStr for SiteSpec {
    type Err = SiteSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "mem:" || s == "mem" {
            return Ok(SiteSpec::Mem);
        }
        match s.strip_prefix("dir:") {
            Some(path) if !path.is_empty() => Ok(SiteSpec::Dir(PathBuf::from(path))),
            _ => Err(SiteSpecError(s.to_owned())),
        }
    }
}

impl fmt::Display for SiteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteSpec::Mem => write!(f, "mem:"),
            SiteSpec::Dir(p) => write!(f, "dir:{}", p.display()),
        }
    }
}

/// `DirStore` options for a site: durable appends, and reads through `pread` rather than memory
/// maps so image data objects can be written in place (`ObjectStore::write_at`).
pub fn site_store_options() -> DirStoreOptions {
    DirStoreOptions {
        mmap_reads: false,
        ..DirStoreOptions::default()
    }
}

impl SiteSpec {
    /// Opens the store behind the spec (creating the directory for `dir:`).
    pub fn open_store(&self, options: DirStoreOptions) -> Result<Arc<dyn ObjectStore>, StoreError> {
        Ok(match self {
            SiteSpec::Mem => Arc::new(MemStore::new()),
            SiteSpec::Dir(path) => Arc::new(DirStore::open(path, options)?),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("mem:".parse::<SiteSpec>().unwrap(), SiteSpec::Mem);
        assert_eq!(
            "dir:/tmp/x".parse::<SiteSpec>().unwrap(),
            SiteSpec::Dir(PathBuf::from("/tmp/x"))
        );
        assert!("dir:".parse::<SiteSpec>().is_err());
        assert!("rados:rbd".parse::<SiteSpec>().is_err());
        assert!("/tmp/x".parse::<SiteSpec>().is_err());
    }
}
