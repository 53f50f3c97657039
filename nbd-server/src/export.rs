//! [`Export`]: a named image offered to clients, and the server's export table.

use std::sync::Arc;

use crate::error::{NbdError, Result};
use crate::image::ExportImage;
use crate::protocol::{
    MAX_STRING_LEN, TFLAG_CAN_MULTI_CONN, TFLAG_HAS_FLAGS, TFLAG_READ_ONLY, TFLAG_SEND_FLUSH,
    TFLAG_SEND_FUA, TFLAG_SEND_TRIM, TFLAG_SEND_WRITE_ZEROES,
};

/// One export: a name and the image behind it.
#[derive(Debug, Clone)]
pub struct Export {
    /// The name clients ask for.
    pub name: String,
    /// The image.
    pub image: Arc<dyn ExportImage>,
}

/// The exports of a server (non-empty, unique names). The first export is also the default one
/// (what a client asking for the empty name gets).
#[derive(Debug, Clone)]
pub struct Exports {
    list: Vec<Arc<Export>>,
}

impl Exports {
    /// Validates and builds the table.
    pub fn new(exports: Vec<(String, Arc<dyn ExportImage>)>) -> Result<Self> {
        if exports.is_empty() {
            return Err(NbdError::Config("at least one export is required".into()));
        }
        let mut list: Vec<Arc<Export>> = Vec::with_capacity(exports.len());
        for (name, image) in exports {
            if name.is_empty() || name.len() > MAX_STRING_LEN || name.contains('\0') {
                return Err(NbdError::Config(format!(
                    "export name {name:?} must be 1..=4096 bytes without NUL"
                )));
            }
            if list.iter().any(|e| e.name == name) {
                return Err(NbdError::Config(format!("duplicate export name {name:?}")));
            }
            list.push(Arc::new(Export { name, image }));
        }
        Ok(Exports { list })
    }

    /// The export named `name`; the empty name selects the default (first) export.
    pub fn find(&self, name: &str) -> Option<Arc<Export>> {
        if name.is_empty() {
            return self.list.first().cloned();
        }
        self.list.iter().find(|e| e.name == name).cloned()
    }

    /// All exports, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Export>> {
        self.list.iter()
    }
}

/// The transmission flags advertised for every export.
///
/// `CAN_MULTI_CONN` is safe: all connections to an export share one image object whose writes
/// are linearizable and whose flush covers every completed write, whichever connection made it.
pub fn transmission_flags(read_only: bool) -> u16 {
    let base = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA | TFLAG_CAN_MULTI_CONN;
    if read_only {
        base | TFLAG_READ_ONLY
    } else {
        base | TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES
    }
}
