//! Dispatch of parsed commands to their implementations.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};

use journal_core::header::JournalHeader;
use replay_engine::role::{change_role, RoleChange};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;

use crate::cli::{
    parse_size, Command, ImageCommand, JournalClientCommand, JournalCommand, JournalSpec,
    MirrorCommand, MirrorImageCommand, MirrorPoolCommand, PoolMode, SiteArg, SnapCommand,
};
use crate::error::{CliError, CliResult};
use crate::output::Format;
use crate::{image_cmd, journal_tools};

/// Opens the site behind `arg`.
pub fn open_site(arg: &SiteArg) -> CliResult<Site> {
    let store = arg
        .site
        .open_store(crate::site_spec::site_store_options())?;
    Ok(Site::open(store, arg.pool_id))
}

/// The journal header `spec` names.
pub fn journal_header(spec: &JournalSpec) -> CliResult<(Site, JournalHeader)> {
    let site = open_site(&spec.site)?;
    let id = match (&spec.image, &spec.journal) {
        (_, Some(id)) => id.clone(),
        (Some(name), None) => {
            let info = site.image_info(name)?;
            if !info.journaled() {
                return Err(CliError::Invalid(format!(
                    "image {name:?} does not have the journaling feature"
                )));
            }
            info.id
        }
        (None, None) => return Err(CliError::Invalid("--image or --journal is required".into())),
    };
    let header = site.journal_header(&id);
    Ok((site, header))
}

/// Runs one command, writing its output to `out`.
pub fn run(command: Command, out: &mut dyn Write) -> CliResult<()> {
    match command {
        Command::Demo(args) => crate::demo::run(&args, out),
        Command::Bench(args) => crate::bench::run(&args, out),
        Command::Image(cmd) => image(cmd, out),
        Command::Journal(cmd) => journal(cmd, out),
        Command::Mirror(cmd) => mirror(cmd, out),
        Command::Nbd(cmd) => crate::nbd_cmd::run(cmd, out),
    }
}

fn image(cmd: ImageCommand, out: &mut dyn Write) -> CliResult<()> {
    match cmd {
        ImageCommand::Create {
            site,
            size,
            journaling,
            journal_order,
            journal_splay_width,
            name,
        } => {
            let size = parse_size(&size).map_err(CliError::Invalid)?;
            let shape = journaling.then_some(JournalShape {
                order: journal_order,
                splay_width: journal_splay_width,
            });
            open_site(&site)?.create_image(&name, size, shape)?;
            Ok(())
        }
        ImageCommand::Ls { site, format } => image_cmd::list(&open_site(&site)?, format, out),
        ImageCommand::Info { site, format, name } => {
            image_cmd::info(&open_site(&site)?, &name, format, out)
        }
        ImageCommand::Rm { site, name } => Ok(open_site(&site)?.remove_image(&name)?),
        ImageCommand::Write {
            site,
            offset,
            name,
            file,
        } => image_cmd::write_file(&open_site(&site)?, &name, offset, &file, out),
        ImageCommand::Export { site, name, file } => {
            image_cmd::export(&open_site(&site)?, &name, &file, out)
        }
        ImageCommand::Import {
            site,
            journaling,
            file,
            name,
        } => image_cmd::import(&open_site(&site)?, &name, journaling, &file, out),
        ImageCommand::Snap(cmd) => snap(cmd, out),
    }
}

fn snap(cmd: SnapCommand, out: &mut dyn Write) -> CliResult<()> {
    match cmd {
        SnapCommand::Create { site, name, snap } => {
            image_cmd::snap_create(&open_site(&site)?, &name, &snap)
        }
        SnapCommand::Ls { site, name } => image_cmd::snap_list(&open_site(&site)?, &name, out),
        SnapCommand::Rm { site, name, snap } => {
            image_cmd::snap_remove(&open_site(&site)?, &name, &snap)
        }
        SnapCommand::Rename {
            site,
            name,
            snap,
            new_name,
        } => image_cmd::with_writable(&open_site(&site)?, &name, |image| {
            image.snap_rename(&snap, &new_name)
        }),
        SnapCommand::Protect { site, name, snap } => {
            image_cmd::with_writable(&open_site(&site)?, &name, |image| image.snap_protect(&snap))
        }
        SnapCommand::Unprotect { site, name, snap } => {
            image_cmd::with_writable(&open_site(&site)?, &name, |image| {
                image.snap_unprotect(&snap)
            })
        }
        SnapCommand::Rollback { site, name, snap } => {
            image_cmd::snap_rollback(&open_site(&site)?, &name, &snap)
        }
    }
}

fn with_output_file(
    path: &std::path::Path,
    f: impl FnOnce(&mut dyn Write) -> CliResult<()>,
) -> CliResult<()> {
    if path.as_os_str() == "-" {
        let stdout = io::stdout();
        let mut lock = stdout.lock();
        f(&mut lock)
    } else {
        let mut file = BufWriter::new(File::create(path)?);
        f(&mut file)?;
        file.flush()?;
        file.get_ref().sync_all()?;
        Ok(())
    }
}

fn journal(cmd: JournalCommand, out: &mut dyn Write) -> CliResult<()> {
    match cmd {
        JournalCommand::Info { spec, format } => {
            journal_tools::info(&journal_header(&spec)?.1, format, out)
        }
        JournalCommand::Status { spec, format } => {
            journal_tools::status(&journal_header(&spec)?.1, format, out)
        }
        JournalCommand::Inspect { spec, verbose } => {
            let counts = journal_tools::inspect(&journal_header(&spec)?.1, verbose, out)?;
            if counts.errors > 0 {
                return Err(CliError::Invalid(format!(
                    "journal inspect found {} errors",
                    counts.errors
                )));
            }
            Ok(())
        }
        JournalCommand::Export {
            spec,
            no_error,
            file,
        } => {
            let (_, header) = journal_header(&spec)?;
            let mut counts = journal_tools::Counts::default();
            if file.as_os_str() == "-" {
                // Messages go to stderr so standard output carries only the export.
                let mut stderr = io::stderr();
                with_output_file(&file, |f| {
                    counts = journal_tools::export(&header, f, no_error, &mut stderr)?;
                    Ok(())
                })?;
            } else {
                with_output_file(&file, |f| {
                    counts = journal_tools::export(&header, f, no_error, out)?;
                    Ok(())
                })?;
            }
            if counts.errors > 0 && !no_error {
                return Err(CliError::Invalid("export stopped on an error".into()));
            }
            Ok(())
        }
        JournalCommand::Import {
            spec,
            no_error,
            file,
        } => {
            let (_, header) = journal_header(&spec)?;
            let counts = if file.as_os_str() == "-" {
                let stdin = io::stdin();
                crate::journal_import::import(&header, stdin.lock(), no_error, out)?
            } else {
                crate::journal_import::import(
                    &header,
                    BufReader::new(File::open(&file)?),
                    no_error,
                    out,
                )?
            };
            if counts.errors > 0 && !no_error {
                return Err(CliError::Invalid("import stopped on an error".into()));
            }
            Ok(())
        }
        JournalCommand::Reset { spec } => {
            let (_, header) = journal_header(&spec)?;
            crate::journal_import::reset(&header)
        }
        JournalCommand::Client(JournalClientCommand::Disconnect { spec, client_id }) => {
            journal_tools::client_disconnect(&journal_header(&spec)?.1, client_id.as_deref(), out)
        }
    }
}

fn mirror(cmd: MirrorCommand, out: &mut dyn Write) -> CliResult<()> {
    match cmd {
        MirrorCommand::Pool(MirrorPoolCommand::Enable { site, mode }) => {
            let mode = match mode {
                PoolMode::Image => MirrorMode::Image,
                PoolMode::Pool => MirrorMode::Pool,
            };
            Ok(open_site(&site)?.set_mirror_mode(mode)?)
        }
        MirrorCommand::Pool(MirrorPoolCommand::Disable { site }) => {
            Ok(open_site(&site)?.set_mirror_mode(MirrorMode::Disabled)?)
        }
        MirrorCommand::Image(cmd) => mirror_image(cmd, out),
        MirrorCommand::Run {
            local,
            remote,
            pool_id,
            replay_delay,
            status_interval,
            agent_id,
        } => crate::mirror_cmd::run(
            &crate::mirror_cmd::RunArgs {
                local: &local,
                remote: &remote,
                pool_id,
                replay_delay,
                status_interval,
                agent_id,
            },
            out,
        ),
        MirrorCommand::Status {
            local,
            remote,
            pool_id,
            format,
        } => crate::mirror_cmd::status(&local, &remote, pool_id, format, out),
    }
}

fn mirror_image(cmd: MirrorImageCommand, out: &mut dyn Write) -> CliResult<()> {
    match cmd {
        MirrorImageCommand::Enable { site, name } => {
            let id = open_site(&site)?.mirror_enable(&name)?;
            writeln!(out, "Mirroring enabled for image {name} (global id {id})")?;
            Ok(())
        }
        MirrorImageCommand::Disable { site, name } => {
            open_site(&site)?.mirror_disable(&name)?;
            writeln!(out, "Mirroring disabled")?;
            Ok(())
        }
        MirrorImageCommand::Promote { site, force, name } => {
            let change = if force {
                RoleChange::ForcePromote
            } else {
                RoleChange::Promote
            };
            change_role(&open_site(&site)?, &name, change)?;
            writeln!(out, "Image promoted to primary")?;
            Ok(())
        }
        MirrorImageCommand::Demote { site, name } => {
            change_role(&open_site(&site)?, &name, RoleChange::Demote)?;
            writeln!(out, "Image demoted to non-primary")?;
            Ok(())
        }
        MirrorImageCommand::Resync { site, name } => {
            open_site(&site)?.request_resync(&name)?;
            writeln!(out, "Flagged image for resync from primary")?;
            Ok(())
        }
    }
}

/// Prints `value` as JSON or through `plain`.
pub fn print<T: serde::Serialize>(
    out: &mut dyn Write,
    format: Format,
    value: &T,
    plain: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> CliResult<()> {
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(value)?)?,
        Format::Plain => plain(out)?,
    }
    Ok(())
}
