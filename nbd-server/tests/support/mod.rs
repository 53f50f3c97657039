//! Shared helpers of the NBD integration tests.
#![allow(dead_code, missing_docs)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Output};
use std::sync::Arc;

use journal_client::image::BlockImage;
use rbdj_nbd::{ListenAddr, NbdServer, RunningServer, ServerOptions};

/// Whether `tool` runs; prints a loud SKIPPED line when it does not.
pub fn have_tool(tool: &str, test: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            println!("SKIPPED {test}: `{tool}` not found (install Debian's qemu-utils)");
            eprintln!("SKIPPED {test}: `{tool}` not found (install Debian's qemu-utils)");
            false
        }
    }
}

/// Starts a server on an ephemeral 127.0.0.1 port.
pub fn start(
    exports: Vec<(&str, Arc<dyn BlockImage>)>,
    options: ServerOptions,
) -> (RunningServer, u16) {
    let exports = exports
        .into_iter()
        .map(|(n, i)| (n.to_string(), i))
        .collect();
    let server = NbdServer::bind(
        ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        exports,
        options,
    )
    .unwrap();
    let port = match server.local_addr().unwrap() {
        ListenAddr::Tcp(a) => a.port(),
        ListenAddr::Unix(_) => unreachable!(),
    };
    (server.spawn().unwrap(), port)
}

/// Runs a command, returning its output; fails the test with stdout/stderr on a non-zero exit.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `qemu-io -f raw URL -c ...` for each command; asserts success and no verification failure.
pub fn qemu_io(url: &str, commands: &[&str]) -> String {
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-f", "raw", url]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = run_ok(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("failed"),
        "qemu-io reported a failure:\n{text}"
    );
    text
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}
