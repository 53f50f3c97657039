//! The end-to-end check: a disk image copied with `qemu-img convert` into the NBD export
//! of a journaled, mirrored primary image, then `qemu-img compare` shows that (a) the primary
//! export, (b) the replica built by the mirror agent (exported read-only by a second NBD server)
//! and (c) the source file are identical.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// NBD is big-endian on the wire.
#![allow(clippy::big_endian_bytes)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use journal_client::image::BlockImage;
use journal_client::JournalSettings;
use object_store_trait::MemStore;
use rbdj_nbd::{export_journaled_image, ListenAddr, NbdServer, ServerOptions};
use replay_engine::agent::{AgentOptions, MirrorAgent};
use replay_engine::site::{JournalShape, Site};
use replay_engine::site_mirror::MirrorMode;
use support::{have_tool, qemu_io, random_bytes, run_ok, start};

const SIZE: usize = 4 << 20;

fn agent_options() -> AgentOptions {
    let mut o = AgentOptions {
        scan_interval: Duration::from_millis(20),
        retry_interval: Duration::from_millis(20),
        agent_id: Some("nbd-test-agent".into()),
        ..AgentOptions::default()
    };
    o.replayer.flush_interval = Duration::from_millis(50);
    o.replayer.commit_interval = Duration::from_millis(20);
    o.replayer.check_interval = Duration::from_millis(20);
    o.bootstrap.sync.chunk_bytes = 64 << 10;
    o
}

/// Waits (bounded) until the replica exists and holds `expected`; convergence, not timing, is
/// what is checked.
fn wait_replica(site: &Site, expected: &[u8]) -> bool {
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Ok(img) = site.open_image("vol") {
            if img.size() == expected.len() as u64
                && img.read(0, img.size()).unwrap().as_ref() == expected
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn compare(a: &str, b: &str) -> String {
    let out = run_ok(Command::new("qemu-img").args(["compare", "-f", "raw", "-F", "raw", a, b]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn qemu_img_copy_into_mirrored_primary_equals_replica_and_source() {
    if !have_tool("qemu-img", "mirrored export") || !have_tool("qemu-io", "mirrored export") {
        return;
    }
    let primary = Site::open(Arc::new(MemStore::new()), 1);
    let secondary = Site::open(Arc::new(MemStore::new()), 1);
    primary.set_mirror_mode(MirrorMode::Pool).unwrap();
    // Small journal objects so object sets roll over during the copy.
    primary
        .create_image(
            "vol",
            SIZE as u64,
            Some(JournalShape {
                order: 18,
                splay_width: 4,
            }),
        )
        .unwrap();
    let agent = MirrorAgent::start(secondary.clone(), primary.clone(), agent_options()).unwrap();
    let settings = JournalSettings {
        commit_age: Duration::from_millis(20),
        ..JournalSettings::default()
    };
    let journaled = Arc::new(primary.open_journaled("vol", settings).unwrap());
    let server = NbdServer::bind_exports(
        ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        vec![("vol".into(), export_journaled_image(journaled.clone()))],
        ServerOptions::default(),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let primary_url = format!("nbd://{}/vol", server.addr());

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("disk.raw");
    let mut model = random_bytes(SIZE, 4242);
    model[512 << 10..1 << 20].fill(0);
    std::fs::write(&src, &model).unwrap();
    run_ok(
        Command::new("qemu-img")
            .args(["convert", "-n", "-f", "raw", "-O", "raw"])
            .arg(&src)
            .arg(&primary_url),
    );
    // (a) primary export == source.
    assert!(compare(src.to_str().unwrap(), &primary_url).contains("Images are identical"));

    // Overwrite a pattern and discard a range, in the source file and through NBD alike.
    qemu_io(
        &primary_url,
        &["write -P 0x3c 1m 128k", "discard 2m 64k", "flush"],
    );
    model[1 << 20..(1 << 20) + (128 << 10)].fill(0x3c);
    model[2 << 20..(2 << 20) + (64 << 10)].fill(0);
    std::fs::write(&src, &model).unwrap();
    assert!(compare(src.to_str().unwrap(), &primary_url).contains("Images are identical"));

    // (b) the replica converges; export it read-only and compare it with qemu-img too.
    assert!(
        wait_replica(&secondary, &model),
        "replica did not converge: {:?}",
        agent.status()
    );
    let replica: Arc<dyn BlockImage> = secondary.open_image("vol").unwrap();
    let read_only = ServerOptions {
        read_only: true,
        ..ServerOptions::default()
    };
    let (replica_server, port) = start(vec![("vol", replica)], read_only);
    let replica_url = format!("nbd://127.0.0.1:{port}/vol");
    // (c) source == replica, and primary == replica.
    assert!(compare(src.to_str().unwrap(), &replica_url).contains("Images are identical"));
    assert!(compare(&primary_url, &replica_url).contains("Images are identical"));

    replica_server.shutdown().unwrap();
    let summary = server.shutdown().unwrap();
    assert_eq!(summary.connection_errors, 0, "{summary:?}");
    journaled.close().unwrap();
    agent.stop();
}
