//! Output formats shared by commands that print state.

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text (Ceph's plain output where a Ceph command exists).
    #[default]
    Plain,
    /// One JSON document.
    Json,
}
