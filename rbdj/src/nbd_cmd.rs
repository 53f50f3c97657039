//! `rbdj nbd serve`: exports images of a site over NBD.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rbdj_nbd::{
    export_block_image, export_journaled_image, ExportImage, ListenAddr, NbdServer, ServerOptions,
};

use crate::cli::NbdCommand;
use crate::commands::open_site;
use crate::error::{CliError, CliResult};
use crate::writable::Writable;

/// Runs an `nbd` subcommand.
pub fn run(cmd: NbdCommand, out: &mut dyn Write) -> CliResult<()> {
    let NbdCommand::Serve {
        site,
        listen,
        socket,
        read_only,
        images,
    } = cmd;
    let site = open_site(&site)?;
    let mut exports: Vec<(String, Arc<dyn ExportImage>)> = Vec::new();
    let mut journaled = Vec::new();
    for name in images {
        let export = if read_only {
            export_block_image(site.open_image(&name)?)
        } else {
            match Writable::open(&site, &name)? {
                Writable::Plain(image) => export_block_image(image),
                Writable::Journaled(j) => {
                    let j = Arc::new(j);
                    journaled.push(Arc::clone(&j));
                    export_journaled_image(j)
                }
            }
        };
        exports.push((name, export));
    }
    let addr = match socket {
        Some(path) => ListenAddr::Unix(path),
        None => ListenAddr::Tcp(listen),
    };
    let options = ServerOptions {
        read_only,
        ..ServerOptions::default()
    };
    let server = NbdServer::bind_exports(addr, exports, options)
        .map_err(|e| CliError::Invalid(format!("nbd: {e}")))?;
    let bound = server
        .local_addr()
        .map_err(|e| CliError::Invalid(format!("nbd: {e}")))?;
    writeln!(out, "serving NBD on {bound}; Ctrl-C stops")?;
    out.flush()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| CliError::Invalid(format!("cannot install the Ctrl-C handler: {e}")))?;
    let summary = server
        .serve_until(stop)
        .map_err(|e| CliError::Invalid(format!("nbd: {e}")))?;
    for j in journaled {
        j.close()?;
    }
    writeln!(out, "NBD server stopped: {summary:?}")?;
    Ok(())
}
