//! The `rbdj` binary: parses the command line, sets up logging, runs the command, and turns a
//! failure into a one-line message on standard error and exit status 1.

use std::process::ExitCode;

use clap::Parser;
use rbdj::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match rbdj::commands::run(cli.command, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbdj: error: {e}");
            ExitCode::FAILURE
        }
    }
}
