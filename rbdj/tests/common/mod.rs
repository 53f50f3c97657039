//! Helpers shared by the CLI tests: run the real `rbdj` binary, and a mirrored pair of
//! directory sites.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Output};

/// Kills a spawned child when dropped, so a failing test never leaves a server or agent running
/// (which would also keep the test harness's output pipes open).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn rbdj(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rbdj"))
        .args(args)
        .output()
        .expect("run rbdj")
}

pub fn ok(args: &[&str]) -> String {
    let out = rbdj(args);
    assert!(
        out.status.success(),
        "rbdj {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Two directory sites `a` (pool mirroring on, journaled 8 MiB image `vol`) and `b`.
pub fn mirrored_pair() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let a = format!("dir:{}", dir.path().join("a").display());
    let b = format!("dir:{}", dir.path().join("b").display());
    ok(&["mirror", "pool", "enable", "--site", &a, "pool"]);
    ok(&[
        "image",
        "create",
        "--site",
        &a,
        "--size",
        "8M",
        "--journaling",
        "vol",
    ]);
    (dir, a, b)
}
