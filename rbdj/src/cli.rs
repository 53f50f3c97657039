//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;
use crate::site_spec::SiteSpec;

/// rbdj: Ceph-compatible RBD journaling and journal-based mirroring.
#[derive(Debug, Parser)]
#[command(name = "rbdj", version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive).
    #[arg(long, global = true, default_value = "warn", env = "RBDJ_LOG")]
    pub log: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Two sites, a journaled primary under a multi-threaded workload and a mirror agent; verifies
    /// the replica equals the primary.
    Demo(DemoArgs),
    /// Image management on a site.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Journal tools, with the behaviour and output of `rbd journal`.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Mirroring: pool and image settings, the agent, status.
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// Journaled vs unjournaled write benchmark on one backend.
    Bench(BenchArgs),
    /// NBD front end: serve images to any NBD client (qemu, qemu-img, nbd-client).
    #[command(subcommand)]
    Nbd(NbdCommand),
}

/// `nbd` subcommands.
#[derive(Debug, Subcommand)]
pub enum NbdCommand {
    /// Serves images over NBD until Ctrl-C; journaled images are written through their journal.
    Serve {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// TCP address to listen on.
        #[arg(long, default_value = "127.0.0.1:10809", conflicts_with = "socket")]
        listen: std::net::SocketAddr,
        /// Unix socket path to listen on instead of TCP.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Serve the images read-only.
        #[arg(long)]
        read_only: bool,
        /// Images to export (the export name is the image name).
        #[arg(required = true)]
        images: Vec<String>,
    },
}

/// A site argument.
#[derive(Debug, Args, Clone)]
pub struct SiteArg {
    /// The site: `mem:` or `dir:PATH`.
    #[arg(long)]
    pub site: SiteSpec,
    /// Pool id used in journal object names (`journal_data.<pool>.<id>.<n>`).
    #[arg(long, default_value_t = 1)]
    pub pool_id: i64,
}

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep both sites in this directory (DirStore, fdatasync on); in memory when absent.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How long the write workload runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Writer threads.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
    /// Image size in MiB.
    #[arg(long, default_value_t = 64)]
    pub size_mib: u64,
    /// Pace the writers to this many writes per second in all (an open-loop schedule; 0: as
    /// fast as they go). At full speed on a small machine the mirror agent competes with the
    /// writers for the same cores, so the replication lag then shows how far the replica
    /// falls behind, not how fast it follows a sustainable load.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Plain)]
    pub format: Format,
}

/// `bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The site to benchmark on: `mem:` or `dir:PATH`.
    #[arg(long)]
    pub site: SiteSpec,
    /// I/O size (`4K`, `64K`, `1M`, or bytes).
    #[arg(long, default_value = "4K")]
    pub io_size: String,
    /// Writer threads.
    #[arg(long, default_value_t = 16)]
    pub threads: usize,
    /// Seconds per side (journaled, unjournaled).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Image size in MiB.
    #[arg(long, default_value_t = 256)]
    pub size_mib: u64,
    /// Leave both images sparse, so that writes allocate (a thin image's first writes). By
    /// default each image is written in full first, so that every measured write overwrites.
    #[arg(long)]
    pub thin: bool,
    /// Measure a new journal from its first write. By default three object sets are written
    /// (and trimmed) through the journaled image first, so that the measured appends go to
    /// journal objects as a long-running journal's do (on `dir:`, into reused files).
    #[arg(long)]
    pub fresh_journal: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Plain)]
    pub format: Format,
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Creates an image.
    Create {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Size (`64M`, `1G`, or bytes).
        #[arg(long)]
        size: String,
        /// Enable the journaling feature.
        #[arg(long)]
        journaling: bool,
        /// Journal order (log2 of the data object size).
        #[arg(long, default_value_t = 24)]
        journal_order: u8,
        /// Journal splay width.
        #[arg(long, default_value_t = 4)]
        journal_splay_width: u8,
        /// Image name.
        name: String,
    },
    /// Lists images.
    Ls {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Plain)]
        format: Format,
    },
    /// Shows an image.
    Info {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Plain)]
        format: Format,
        /// Image name.
        name: String,
    },
    /// Removes an image and its journal.
    Rm {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
    },
    /// Writes a local file's bytes (or a pattern) into an image at an offset, through the journal
    /// when the image is journaled.
    Write {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Byte offset.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Image name.
        name: String,
        /// File whose contents are written.
        file: PathBuf,
    },
    /// Exports an image's contents to a raw file.
    Export {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
        /// Output file.
        file: PathBuf,
    },
    /// Imports a raw file into a new image.
    Import {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Enable the journaling feature.
        #[arg(long)]
        journaling: bool,
        /// Input file.
        file: PathBuf,
        /// Image name.
        name: String,
    },
    /// Snapshot operations.
    #[command(subcommand)]
    Snap(SnapCommand),
}

/// `image snap` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapCommand {
    /// Creates a snapshot.
    Create {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
        /// Snapshot name.
        snap: String,
    },
    /// Lists snapshots.
    Ls {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
    },
    /// Removes a snapshot.
    Rm {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
        /// Snapshot name.
        snap: String,
    },
    /// Renames a snapshot.
    Rename {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
        /// Current snapshot name.
        snap: String,
        /// New snapshot name.
        new_name: String,
    },
    /// Protects a snapshot against removal.
    Protect {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
        /// Snapshot name.
        snap: String,
    },
    /// Removes a snapshot's protection.
    Unprotect {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
        /// Snapshot name.
        snap: String,
    },
    /// Rolls the image back to a snapshot.
    Rollback {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
        /// Snapshot name.
        snap: String,
    },
}

/// Selects a journal: by image name or by journal id.
#[derive(Debug, Args, Clone)]
pub struct JournalSpec {
    /// Site.
    #[command(flatten)]
    pub site: SiteArg,
    /// Image whose journal to use.
    #[arg(long, conflicts_with = "journal", required_unless_present = "journal")]
    pub image: Option<String>,
    /// Journal id (the image id).
    #[arg(long)]
    pub journal: Option<String>,
}

/// `journal` subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Journal layout (`rbd journal info`).
    Info {
        /// Which journal.
        #[command(flatten)]
        spec: JournalSpec,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Plain)]
        format: Format,
    },
    /// Sets and clients with their commit positions (`rbd journal status`).
    Status {
        /// Which journal.
        #[command(flatten)]
        spec: JournalSpec,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Plain)]
        format: Format,
    },
    /// Structural check of every entry (`rbd journal inspect`).
    Inspect {
        /// Which journal.
        #[command(flatten)]
        spec: JournalSpec,
        /// Print every event.
        #[arg(long)]
        verbose: bool,
    },
    /// Writes the journal's entries in Ceph's export format.
    Export {
        /// Which journal.
        #[command(flatten)]
        spec: JournalSpec,
        /// Carry on past undecodable entries.
        #[arg(long)]
        no_error: bool,
        /// Output file (`-` for standard output).
        file: PathBuf,
    },
    /// Appends the records of a Ceph export file to the journal.
    Import {
        /// Which journal.
        #[command(flatten)]
        spec: JournalSpec,
        /// Carry on past undecodable records.
        #[arg(long)]
        no_error: bool,
        /// Input file (`-` for standard input).
        file: PathBuf,
    },
    /// Deletes the journal and creates a fresh one.
    Reset {
        /// Which journal.
        #[command(flatten)]
        spec: JournalSpec,
    },
    /// Client management.
    #[command(subcommand)]
    Client(JournalClientCommand),
}

/// `journal client` subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalClientCommand {
    /// Flags a client (or every client but the image's own) as disconnected.
    Disconnect {
        /// Which journal.
        #[command(flatten)]
        spec: JournalSpec,
        /// The client to disconnect.
        #[arg(long)]
        client_id: Option<String>,
    },
}

/// `mirror` subcommands.
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Pool-level mirroring settings.
    #[command(subcommand)]
    Pool(MirrorPoolCommand),
    /// Image-level mirroring.
    #[command(subcommand)]
    Image(MirrorImageCommand),
    /// Runs the mirror agent (pulls from REMOTE into LOCAL) until Ctrl-C.
    Run {
        /// The site the agent writes replicas to.
        #[arg(long)]
        local: SiteSpec,
        /// The site whose primaries are mirrored.
        #[arg(long)]
        remote: SiteSpec,
        /// Pool id used in journal object names (both sites).
        #[arg(long, default_value_t = 1)]
        pool_id: i64,
        /// Keep replicas this many seconds behind.
        #[arg(long, default_value_t = 0)]
        replay_delay: u64,
        /// Print status every this many seconds (0 = never).
        #[arg(long, default_value_t = 0)]
        status_interval: u64,
        /// This agent's id in the leader lease (one agent mirrors a pair of sites at a time;
        /// a second one waits as a standby). Give the same id when restarting the same agent
        /// after a crash to take the lease back at once; without it a restarted agent waits
        /// for the old lease (10 s) to run out. Never give two running agents the same id.
        #[arg(long)]
        agent_id: Option<String>,
    },
    /// Mirror status of every image (state, entries and seconds behind, rates).
    Status {
        /// The replica site.
        #[arg(long)]
        local: SiteSpec,
        /// The primary site.
        #[arg(long)]
        remote: SiteSpec,
        /// Pool id used in journal object names (both sites).
        #[arg(long, default_value_t = 1)]
        pool_id: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Plain)]
        format: Format,
    },
}

/// Mirror modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PoolMode {
    /// Only images explicitly enabled.
    Image,
    /// Every journaled image.
    Pool,
}

/// `mirror pool` subcommands.
#[derive(Debug, Subcommand)]
pub enum MirrorPoolCommand {
    /// Enables mirroring in the given mode.
    Enable {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Mode.
        #[arg(value_enum)]
        mode: PoolMode,
    },
    /// Disables mirroring.
    Disable {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
    },
}

/// `mirror image` subcommands.
#[derive(Debug, Subcommand)]
pub enum MirrorImageCommand {
    /// Enables mirroring of an image (journal mode).
    Enable {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
    },
    /// Disables mirroring of an image.
    Disable {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
    },
    /// Promotes an image to primary.
    Promote {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Promote even if the current primary has not been demoted.
        #[arg(long)]
        force: bool,
        /// Image name.
        name: String,
    },
    /// Demotes a primary image.
    Demote {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
    },
    /// Requests a full resync of a non-primary image.
    Resync {
        /// Site.
        #[command(flatten)]
        site: SiteArg,
        /// Image name.
        name: String,
    },
}

/// Parses a size with an optional binary suffix (`4K`, `64M`, `1G`, `512`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size suffix in {text:?}")),
            };
            (t.get(..i).unwrap_or(""), mult)
        }
        _ => (t, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} overflows"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
