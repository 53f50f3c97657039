//! Real third-party client (`qemu-io` from qemu-utils) against the server; the image contents are
//! then checked directly against a reference model (a plain byte vector).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// NBD is big-endian on the wire.
#![allow(clippy::big_endian_bytes)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use rbdj_nbd::ServerOptions;
use support::{have_tool, qemu_io, start};

const MIB: usize = 1 << 20;

fn filled(size: usize, byte: u8) -> (Arc<MemImage>, Vec<u8>) {
    let image = Arc::new(MemImage::new("disk", size as u64));
    image.write(0, Bytes::from(vec![byte; size])).unwrap();
    (image, vec![byte; size])
}

#[test]
fn qemu_io_write_discard_flush_read_matches_model() {
    if !have_tool("qemu-io", "qemu_io_write_discard_flush_read_matches_model") {
        return;
    }
    let (image, mut model) = filled(MIB, 0xcd);
    let (server, port) = start(vec![("disk", image.clone())], ServerOptions::default());
    let url = format!("nbd://127.0.0.1:{port}/disk");
    qemu_io(
        &url,
        &[
            "write -P 0xab 0 64k",
            "discard 64k 64k",
            "flush",
            "read -P 0xab 0 64k",
            "read -P 0 64k 64k",
        ],
    );
    model[..64 << 10].fill(0xab);
    model[64 << 10..128 << 10].fill(0);
    assert_eq!(image.read(0, MIB as u64).unwrap().as_ref(), &model[..]);
    let summary = server.shutdown().unwrap();
    assert_eq!(summary.connection_errors, 0);
    assert!(summary.requests_ok >= 4, "{summary:?}");
}

#[test]
fn qemu_io_fua_write_zeroes_and_pipelined_aio() {
    if !have_tool("qemu-io", "qemu_io_fua_write_zeroes_and_pipelined_aio") {
        return;
    }
    let (image, mut model) = filled(MIB, 0x5a);
    let (server, port) = start(vec![("disk", image.clone())], ServerOptions::default());
    let url = format!("nbd://127.0.0.1:{port}/disk");
    let mut cmds: Vec<String> = vec![
        "write -f -P 0x11 0 4k".into(), // FUA
        "write -z 8k 8k".into(),        // WRITE_ZEROES with NO_HOLE -> write-same
        "write -z -u 32k 16k".into(),   // WRITE_ZEROES that may punch a hole -> discard
    ];
    model[..4096].fill(0x11);
    model[8 << 10..16 << 10].fill(0);
    model[32 << 10..48 << 10].fill(0);
    // 64 overlapping-free asynchronous writes: many requests in flight on one connection.
    for i in 0..64usize {
        let off = 256 * 1024 + i * 8192;
        let pat = (i as u8).wrapping_mul(7).wrapping_add(1);
        cmds.push(format!("aio_write -P {pat} {off} 8k"));
        model[off..off + 8192].fill(pat);
    }
    cmds.push("aio_flush".into());
    for i in (0..64usize).step_by(9) {
        let off = 256 * 1024 + i * 8192;
        let pat = (i as u8).wrapping_mul(7).wrapping_add(1);
        cmds.push(format!("read -P {pat} {off} 8k"));
    }
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    qemu_io(&url, &refs);
    assert_eq!(image.read(0, MIB as u64).unwrap().as_ref(), &model[..]);
    server.shutdown().unwrap();
}

#[test]
fn qemu_io_over_unix_socket_and_several_exports() {
    if !have_tool("qemu-io", "qemu_io_over_unix_socket_and_several_exports") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nbd.sock");
    let (a, mut model_a) = filled(MIB, 0x01);
    let (b, model_b) = filled(MIB / 2, 0x02);
    let exports: Vec<(String, Arc<dyn BlockImage>)> =
        vec![("a".into(), a.clone()), ("b".into(), b.clone())];
    let server = rbdj_nbd::NbdServer::bind(
        rbdj_nbd::ListenAddr::Unix(path.clone()),
        exports,
        ServerOptions::default(),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let url = format!("nbd+unix:///a?socket={}", path.display());
    qemu_io(&url, &["write -P 0x77 4k 4k", "read -P 0x01 0 4k"]);
    model_a[4096..8192].fill(0x77);
    // Export b answers with its own size and is untouched.
    let url_b = format!("nbd+unix:///b?socket={}", path.display());
    let text = qemu_io(&url_b, &["read -P 0x02 0 512k"]);
    assert!(text.contains("read 524288/524288"), "{text}");
    assert_eq!(a.read(0, MIB as u64).unwrap().as_ref(), &model_a[..]);
    assert_eq!(b.read(0, (MIB / 2) as u64).unwrap().as_ref(), &model_b[..]);
    server.shutdown().unwrap();
    assert!(!path.exists(), "socket file removed at shutdown");
}

#[test]
fn qemu_io_commands_map_to_the_right_image_operations() {
    use support::{Op, RecordingImage};
    if !have_tool(
        "qemu-io",
        "qemu_io_commands_map_to_the_right_image_operations",
    ) {
        return;
    }
    let image = RecordingImage::new(MIB as u64);
    // No flush at disconnect here, so the log holds exactly what qemu-io asked for once it exits
    // (every request of it has been answered by then).
    let options = ServerOptions {
        flush_on_disconnect: false,
        ..ServerOptions::default()
    };
    let (server, port) = start(vec![("rec", image.clone())], options);
    let url = format!("nbd://127.0.0.1:{port}/rec");
    // Returns the data operations and the number of flushes one qemu-io run caused (qemu adds
    // flushes of its own when it closes a written image).
    let step = |cmd: &str| {
        let before = image.ops().len();
        qemu_io(&url, &[cmd]);
        let ops = image.ops()[before..].to_vec();
        let flushes = ops.iter().filter(|o| **o == Op::Flush).count();
        let data: Vec<Op> = ops.into_iter().filter(|o| *o != Op::Flush).collect();
        (data, flushes)
    };
    assert_eq!(step("write -P 1 4k 8k").0, vec![Op::Write(4096, 8192)]);
    // qemu-io writes through (FUA on every write): the server flushes before replying, so a
    // flush directly follows the write in the log.
    let before = image.ops().len();
    assert_eq!(step("write -f -P 1 0 4k").0, vec![Op::Write(0, 4096)]);
    assert_eq!(image.ops()[before + 1], Op::Flush);
    assert_eq!(step("discard 64k 64k").0, vec![Op::Discard(65536, 65536)]);
    // WRITE_ZEROES with NBD_CMD_FLAG_NO_HOLE: a zero-pattern write-same.
    assert_eq!(
        step("write -z 128k 8k").0,
        vec![Op::WriteSame(131072, 8192, vec![0])]
    );
    // WRITE_ZEROES that may unmap: a discard.
    assert_eq!(
        step("write -z -u 256k 8k").0,
        vec![Op::Discard(262144, 8192)]
    );
    let (data, flushes) = step("flush");
    assert!(data.is_empty() && flushes >= 1, "{data:?} {flushes}");
    server.shutdown().unwrap();
}
