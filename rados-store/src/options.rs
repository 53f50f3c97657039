//! Connection options of [`crate::RadosStore`].

use std::path::PathBuf;

/// Where and how a [`crate::RadosStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadosStoreOptions {
    /// Ceph configuration file. Default `None`: librados' own search (`$CEPH_CONF`, then
    /// `/etc/ceph/ceph.conf`, `~/.ceph/config`, `./ceph.conf`).
    pub conf_path: Option<PathBuf>,
    /// Client name to authenticate as. Default `client.admin`.
    pub client_name: String,
    /// Pool holding the objects. Default `rbd`.
    pub pool: String,
    /// RADOS namespace inside the pool. Default `""` (the default namespace, where `rbd` keeps
    /// images that are not in a namespace).
    pub namespace: String,
    /// How long a notify waits for watchers' acks, in milliseconds. Default 5000 (librbd's
    /// journal notify timeout).
    pub notify_timeout_ms: u64,
    /// How many times an append or guarded omap batch is retried when the object changed between
    /// its read and its conditional write, before giving up with an I/O error. Default 10000.
    pub max_cas_attempts: u32,
    /// `client_mount_timeout`: how long connecting may take, in seconds. Default 30.
    pub mount_timeout_secs: u32,
}

impl Default for RadosStoreOptions {
    fn default() -> Self {
        RadosStoreOptions {
            conf_path: None,
            client_name: "client.admin".to_owned(),
            pool: "rbd".to_owned(),
            namespace: String::new(),
            notify_timeout_ms: 5000,
            max_cas_attempts: 10_000,
            mount_timeout_secs: 30,
        }
    }
}

impl RadosStoreOptions {
    /// Defaults, with the configuration file taken from `RBDJ_CEPH_CONF` or else `CEPH_CONF`
    /// when one of them is set; `None` when neither is (so tests can skip).
    pub fn from_env() -> Option<RadosStoreOptions> {
        let conf = std::env::var_os("RBDJ_CEPH_CONF")
            .or_else(|| std::env::var_os("CEPH_CONF"))
            .filter(|v| !v.is_empty())?;
        Some(RadosStoreOptions {
            conf_path: Some(PathBuf::from(conf)),
            ..RadosStoreOptions::default()
        })
    }
}
