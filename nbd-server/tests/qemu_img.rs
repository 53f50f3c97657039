//! Copy a generated disk image into an export with `qemu-img convert` (a real third-party client),
//! then check the export three ways: `qemu-img compare` against the source file, and byte for
//! byte through the image API against the file's contents.
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

use bytes::Bytes;
use journal_client::image::{BlockImage, MemImage};
use rbdj_nbd::ServerOptions;
use support::{have_tool, random_bytes, run_ok, start};

const SIZE: usize = 4 << 20;

/// A raw disk image with random data, zero runs (which qemu-img turns into WRITE_ZEROES or
/// skips) and an unaligned random tail.
fn source_disk() -> Vec<u8> {
    let mut disk = random_bytes(SIZE, 0x5eed);
    disk[256 << 10..1 << 20].fill(0);
    disk[(2 << 20) + 4096..(2 << 20) + 3 * 4096].fill(0);
    disk[3 << 20..(3 << 20) + (512 << 10)].fill(0);
    disk
}

fn convert_and_compare(image: Arc<dyn BlockImage>, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    let disk = source_disk();
    std::fs::write(&src, &disk).unwrap();
    let (server, port) = start(vec![(name, image.clone())], ServerOptions::default());
    let url = format!("nbd://127.0.0.1:{port}/{name}");
    run_ok(
        Command::new("qemu-img")
            .args(["convert", "-n", "-W", "-m", "16", "-f", "raw", "-O", "raw"])
            .arg(&src)
            .arg(&url),
    );
    let out = run_ok(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "raw"])
            .arg(&src)
            .arg(&url),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Images are identical"), "{text}");
    // Independent of qemu: the image's own bytes equal the file's.
    assert_eq!(image.read(0, SIZE as u64).unwrap().as_ref(), &disk[..]);
    let summary = server.shutdown().unwrap();
    assert_eq!(summary.connection_errors, 0, "{summary:?}");
}

#[test]
fn qemu_img_convert_into_mem_image_then_compare() {
    if !have_tool("qemu-img", "qemu_img_convert_into_mem_image_then_compare") {
        return;
    }
    // Pre-filled with garbage so that zero runs in the source must really be written.
    let image = Arc::new(MemImage::new("disk", SIZE as u64));
    image.write(0, Bytes::from(vec![0xee; SIZE])).unwrap();
    convert_and_compare(image, "disk");
}

#[test]
fn qemu_img_compare_detects_a_difference() {
    if !have_tool("qemu-img", "qemu_img_compare_detects_a_difference") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    let disk = source_disk();
    std::fs::write(&src, &disk).unwrap();
    let image = Arc::new(MemImage::new("disk", SIZE as u64));
    let mut almost = disk.clone();
    almost[12345] ^= 0xff;
    image.write(0, Bytes::from(almost)).unwrap();
    let (server, port) = start(vec![("disk", image)], ServerOptions::default());
    let url = format!("nbd://127.0.0.1:{port}/disk");
    let out = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "raw"])
        .arg(&src)
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "compare must report a mismatch");
    // qemu-img reports the start of the (sector/cluster aligned) chunk holding the difference.
    let text = String::from_utf8_lossy(&out.stdout);
    let at: u64 = text
        .split("Content mismatch at offset ")
        .nth(1)
        .and_then(|rest| rest.split('!').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected qemu-img output: {text}"));
    assert!(
        at <= 12345 && 12345 - at < 65536,
        "mismatch reported at {at}"
    );
    server.shutdown().unwrap();
}
