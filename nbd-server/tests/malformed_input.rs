//! Raw-socket tests: malformed handshakes and requests get the NBD error the protocol document
//! prescribes, or a closed connection — never a panic, a hang or a huge allocation — and the
//! server keeps serving other clients afterwards. Expected values come from the NBD protocol
//! document (option/reply codes, errno values), not from the server's code.
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
use rbdj_nbd::protocol::*;
use rbdj_nbd::{RunningServer, ServerOptions};
use support::{start, RawClient};

const SIZE: u64 = 1 << 20;

fn server() -> (RunningServer, u16, Arc<MemImage>) {
    let image = Arc::new(MemImage::new("disk", SIZE));
    image
        .write(0, Bytes::from(vec![0x42; SIZE as usize]))
        .unwrap();
    let (s, p) = start(
        vec![
            ("disk", image.clone()),
            ("other", Arc::new(MemImage::new("o", 4096))),
        ],
        ServerOptions::default(),
    );
    (s, p, image)
}

/// After a bad client, a well-behaved one still gets served and sees the expected data.
fn still_serves(port: u16) {
    let mut c = RawClient::transmission(port, "disk");
    c.request(CMD_READ, 0, 9, 0, 8);
    let r = c.reply();
    assert_eq!((r.error, r.handle), (0, 9));
    assert_eq!(c.read_n(8), vec![0x42; 8]);
    c.request(CMD_DISC, 0, 10, 0, 0);
    assert!(c.closed_by_server());
}

#[test]
fn greeting_advertises_fixed_newstyle_and_no_zeroes() {
    let (server, port, _) = server();
    let (_c, flags) = RawClient::connect(port);
    assert_eq!(flags, 0b11);
    server.shutdown().unwrap();
}

#[test]
fn unknown_client_flags_close_the_connection() {
    let (server, port, _) = server();
    let (mut c, _) = RawClient::connect(port);
    c.send(&0x8000_0001u32.to_be_bytes());
    assert!(c.closed_by_server());
    still_serves(port);
    server.shutdown().unwrap();
}

#[test]
fn bad_option_magic_and_oversized_option_close() {
    let (server, port, _) = server();
    let mut c = RawClient::negotiated(port);
    c.send(&[0xde; 16]);
    assert!(c.closed_by_server());
    // A 4 GiB option length: closed, not allocated.
    let mut c = RawClient::negotiated(port);
    c.send(
        &OptionHeader {
            option: OPT_GO,
            length: u32::MAX,
        }
        .encode(),
    );
    assert!(c.closed_by_server());
    // A truncated option header, then EOF.
    let mut c = RawClient::negotiated(port);
    c.send(&IHAVEOPT.to_be_bytes()[..5]);
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.closed_by_server());
    still_serves(port);
    server.shutdown().unwrap();
}

#[test]
fn unsupported_options_get_err_unsup_and_negotiation_goes_on() {
    let (server, port, _) = server();
    let mut c = RawClient::negotiated(port);
    for opt in [OPT_STRUCTURED_REPLY, OPT_STARTTLS, 9, 10, 0x1234_5678] {
        c.option(opt, b"junk");
        let (h, _) = c.option_reply();
        assert_eq!((h.option, h.reply_type), (opt, 0x8000_0001), "option {opt}");
    }
    // LIST: one NBD_REP_SERVER (type 2) per export, then NBD_REP_ACK (type 1).
    c.option(OPT_LIST, &[]);
    let mut names = Vec::new();
    loop {
        let (h, data) = c.option_reply();
        if h.reply_type == 1 {
            break;
        }
        assert_eq!(h.reply_type, 2);
        let n = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        names.push(String::from_utf8(data[4..4 + n].to_vec()).unwrap());
    }
    assert_eq!(names, ["disk", "other"]);
    // LIST with data is invalid (NBD_REP_ERR_INVALID = 2^31 + 3).
    c.option(OPT_LIST, b"x");
    assert_eq!(c.option_reply().0.reply_type, 0x8000_0003);
    // GO: unknown export -> NBD_REP_ERR_UNKNOWN (2^31 + 6); garbled payload -> ERR_INVALID.
    c.option(
        OPT_GO,
        &InfoRequest {
            name: "nope".into(),
            requests: vec![],
        }
        .encode(),
    );
    assert_eq!(c.option_reply().0.reply_type, 0x8000_0006);
    c.option(OPT_GO, &[0, 0, 1, 0, b'd']);
    assert_eq!(c.option_reply().0.reply_type, 0x8000_0003);
    // INFO: NBD_INFO_EXPORT (size + flags), then the requested block sizes, then ACK.
    c.option(
        OPT_INFO,
        &InfoRequest {
            name: "disk".into(),
            requests: vec![3, 1],
        }
        .encode(),
    );
    let (h, data) = c.option_reply();
    assert_eq!(h.reply_type, 3);
    assert_eq!(&data[..2], &[0, 0]);
    assert_eq!(u64::from_be_bytes(data[2..10].try_into().unwrap()), SIZE);
    let tflags = u16::from_be_bytes([data[10], data[11]]);
    // HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM, SEND_WRITE_ZEROES, CAN_MULTI_CONN; not READ_ONLY.
    assert_eq!(tflags & 0b1_0110_1101, 0b1_0110_1101, "{tflags:#x}");
    assert_eq!(tflags & 0b10, 0);
    let mut infos = Vec::new();
    loop {
        let (h, data) = c.option_reply();
        if h.reply_type == 1 {
            break;
        }
        infos.push(data);
    }
    assert!(infos.iter().any(|d| d[..2] == [0, 1] && &d[2..] == b"disk"));
    let bs = infos.iter().find(|d| d[..2] == [0, 3]).unwrap();
    assert_eq!(u32::from_be_bytes(bs[10..14].try_into().unwrap()), 32 << 20);
    // ABORT: ACK, then closed.
    c.option(OPT_ABORT, &[]);
    assert_eq!(c.option_reply().0.reply_type, 1);
    assert!(c.closed_by_server());
    server.shutdown().unwrap();
}

#[test]
fn export_name_unknown_closes_known_enters_transmission_with_zero_padding() {
    let (server, port, _) = server();
    let mut c = RawClient::negotiated(port);
    c.option(OPT_EXPORT_NAME, b"missing");
    assert!(c.closed_by_server());
    // Without NO_ZEROES the reply carries 124 zero bytes after size and flags.
    let (mut c, _) = RawClient::connect(port);
    c.send(&1u32.to_be_bytes());
    c.option(OPT_EXPORT_NAME, b"other");
    let reply = c.read_n(8 + 2 + 124);
    assert_eq!(u64::from_be_bytes(reply[..8].try_into().unwrap()), 4096);
    assert!(reply[10..].iter().all(|&b| b == 0));
    c.request(CMD_READ, 0, 1, 0, 4096);
    assert_eq!(c.reply().error, 0);
    assert_eq!(c.read_n(4096), vec![0; 4096]);
    server.shutdown().unwrap();
}

#[test]
fn out_of_range_and_oversized_requests_get_errors_and_the_connection_survives() {
    let (server, port, image) = server();
    let mut c = RawClient::transmission(port, "disk");
    // Read past the end: EINVAL (22).
    c.request(CMD_READ, 0, 1, SIZE - 4, 8);
    assert_eq!((c.reply().error, c.reply_pending()), (22, ()));
    // Offset + length overflowing u64: EINVAL, no panic.
    c.request(CMD_READ, 0, 2, u64::MAX - 1, 4096);
    assert_eq!(c.reply().error, 22);
    // Read larger than the 32 MiB maximum: EINVAL.
    c.request(CMD_READ, 0, 3, 0, (32 << 20) + 1);
    assert_eq!(c.reply().error, 22);
    // Write past the end: ENOSPC (28); its payload is consumed, nothing is written.
    c.request(CMD_WRITE, 0, 4, SIZE - 2, 4);
    c.send(&[0xff; 4]);
    assert_eq!(c.reply().error, 28);
    // Trim and write-zeroes past the end: ENOSPC.
    c.request(CMD_TRIM, 0, 5, SIZE, 1);
    assert_eq!(c.reply().error, 28);
    c.request(CMD_WRITE_ZEROES, 0, 6, u64::MAX, 2);
    assert_eq!(c.reply().error, 28);
    // The stream is still in sync.
    c.request(CMD_READ, 0, 7, SIZE - 4, 4);
    let r = c.reply();
    assert_eq!((r.error, r.handle), (0, 7));
    assert_eq!(c.read_n(4), vec![0x42; 4]);
    assert_eq!(
        image.read(0, SIZE).unwrap().as_ref(),
        &vec![0x42; SIZE as usize][..]
    );
    server.shutdown().unwrap();
}

#[test]
fn oversized_write_unknown_command_and_bad_magic_close_the_connection() {
    let (server, port, image) = server();
    // A 4 GiB write: EINVAL, then closed (the payload is never allocated or read).
    let mut c = RawClient::transmission(port, "disk");
    c.request(CMD_WRITE, 0, 1, 0, u32::MAX);
    assert_eq!(c.reply().error, 22);
    assert!(c.closed_by_server());
    // An unknown command: EINVAL, then closed.
    let mut c = RawClient::transmission(port, "disk");
    c.request(0x77, 0, 2, 0, 16);
    let r = c.reply();
    assert_eq!((r.error, r.handle), (22, 2));
    assert!(c.closed_by_server());
    // A request with a bad magic: closed without a reply.
    let mut c = RawClient::transmission(port, "disk");
    c.send(&[0xab; 28]);
    assert!(c.closed_by_server());
    // A truncated request header, then EOF.
    let mut c = RawClient::transmission(port, "disk");
    c.send(
        &Request {
            flags: 0,
            command: CMD_WRITE,
            handle: 3,
            offset: 0,
            length: 8,
        }
        .encode()[..20],
    );
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.closed_by_server());
    assert_eq!(
        image.read(0, SIZE).unwrap().as_ref(),
        &vec![0x42; SIZE as usize][..]
    );
    still_serves(port);
    let summary = server.shutdown().unwrap();
    assert!(summary.connection_errors >= 3, "{summary:?}");
}

#[test]
fn disconnect_mid_write_keeps_every_acknowledged_write() {
    let (server, port, image) = server();
    let mut model = vec![0x42u8; SIZE as usize];
    let mut c = RawClient::transmission(port, "disk");
    for i in 0..8u64 {
        c.request(CMD_WRITE, 0, i, i * 4096, 4096);
        c.send(&[i as u8 + 1; 4096]);
    }
    let mut acked = Vec::new();
    for _ in 0..8 {
        let r = c.reply();
        assert_eq!(r.error, 0);
        acked.push(r.handle);
    }
    for h in acked {
        model[h as usize * 4096..(h as usize + 1) * 4096].fill(h as u8 + 1);
    }
    // A ninth write whose payload is cut off by the client going away.
    c.request(CMD_WRITE, 0, 99, 64 << 10, 4096);
    c.send(&[0xee; 1000]);
    drop(c);
    let summary = server.shutdown().unwrap();
    assert_eq!(summary.connection_errors, 0, "{summary:?}");
    assert_eq!(image.read(0, SIZE).unwrap().as_ref(), &model[..]);
}

impl RawClient {
    /// No-op marker used to keep assertions on one line.
    fn reply_pending(&self) {}
}

#[test]
fn fua_flushes_before_the_reply_and_disconnect_flushes() {
    use support::{Op, RecordingImage};
    let image = RecordingImage::new(SIZE);
    let (server, port) = start(vec![("rec", image.clone())], ServerOptions::default());
    let mut c = RawClient::transmission(port, "rec");
    c.request(CMD_WRITE, 0, 1, 0, 512);
    c.send(&[1; 512]);
    assert_eq!(c.reply().error, 0);
    assert_eq!(image.ops(), vec![Op::Write(0, 512)]);
    c.request(CMD_WRITE, CMD_FLAG_FUA, 2, 512, 512);
    c.send(&[2; 512]);
    assert_eq!(c.reply().error, 0);
    assert_eq!(
        image.ops(),
        vec![Op::Write(0, 512), Op::Write(512, 512), Op::Flush]
    );
    c.request(CMD_TRIM, CMD_FLAG_FUA, 3, 4096, 4096);
    assert_eq!(c.reply().error, 0);
    assert_eq!(image.ops()[3..], [Op::Discard(4096, 4096), Op::Flush]);
    // Vanishing without NBD_CMD_DISC still flushes the export.
    drop(c);
    server.shutdown().unwrap();
    let ops = image.ops();
    assert_eq!(ops.len(), 7, "{ops:?}"); // + disconnect flush + shutdown flush
    assert!(ops[5..].iter().all(|o| *o == Op::Flush));
}

#[test]
fn many_pipelined_requests_are_all_answered_once() {
    let (server, port, image) = server();
    let mut model = vec![0x42u8; SIZE as usize];
    let mut c = RawClient::transmission(port, "disk");
    // 200 writes and reads sent back to back without waiting (more than the in-flight limit of
    // 64, so the server must apply back-pressure rather than buffer without bound).
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..200u64 {
        let off = (i % 100) * 8192;
        if i < 100 {
            c.request(CMD_WRITE, 0, 1000 + i, off, 8192);
            c.send(&[i as u8; 8192]);
            model[off as usize..off as usize + 8192].fill(i as u8);
            expected.insert(1000 + i, None);
        } else {
            c.request(CMD_READ, 0, 1000 + i, SIZE - 4096, 4096);
            expected.insert(1000 + i, Some(4096usize));
        }
    }
    for _ in 0..200 {
        let r = c.reply();
        assert_eq!(r.error, 0);
        let want = expected
            .remove(&r.handle)
            .unwrap_or_else(|| panic!("unexpected handle {}", r.handle));
        if let Some(n) = want {
            assert_eq!(c.read_n(n), vec![0x42; n]);
        }
    }
    assert!(expected.is_empty());
    c.request(CMD_FLUSH, 0, 1, 0, 0);
    assert_eq!(c.reply().error, 0);
    assert_eq!(image.read(0, SIZE).unwrap().as_ref(), &model[..]);
    server.shutdown().unwrap();
}

#[test]
fn shutdown_stops_idle_clients_and_negotiating_clients() {
    let (server, port, _) = server();
    let mut idle = RawClient::transmission(port, "disk");
    let mut negotiating = RawClient::negotiated(port);
    let summary = server.shutdown().unwrap();
    assert_eq!(summary.connections, 2);
    assert!(idle.closed_by_server());
    assert!(negotiating.closed_by_server());
}

#[test]
fn read_only_exports_refuse_writes_with_eperm() {
    let image = Arc::new(MemImage::new("ro", SIZE));
    let options = ServerOptions {
        read_only: true,
        ..ServerOptions::default()
    };
    let (server, port) = start(vec![("ro", image.clone())], options);
    let mut c = RawClient::negotiated(port);
    c.option(
        OPT_INFO,
        &InfoRequest {
            name: "ro".into(),
            requests: vec![],
        }
        .encode(),
    );
    let (_, data) = c.option_reply();
    assert_ne!(
        u16::from_be_bytes([data[10], data[11]]) & 0b10,
        0,
        "READ_ONLY flag"
    );
    let _ack = c.option_reply();
    drop(c);
    let mut c = RawClient::transmission(port, "ro");
    c.request(CMD_WRITE, 0, 1, 0, 4);
    c.send(&[1; 4]);
    assert_eq!(c.reply().error, 1);
    c.request(CMD_TRIM, 0, 2, 0, 4);
    assert_eq!(c.reply().error, 1);
    assert_eq!(image.read(0, 4).unwrap().as_ref(), &[0; 4]);
    server.shutdown().unwrap();
}

#[test]
fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let image = Arc::new(MemImage::new("disk", SIZE));
    let options = ServerOptions {
        handshake_timeout: Some(std::time::Duration::from_millis(100)),
        ..ServerOptions::default()
    };
    let (server, port) = start(vec![("disk", image)], options);
    // Sends the client flags, then nothing: the server gives up (the client's own read timeout
    // is 10 s, far longer).
    let mut c = RawClient::negotiated(port);
    assert!(c.closed_by_server());
    let summary = server.shutdown().unwrap();
    assert_eq!(summary.connections, 1);
}

/// An export whose writes at offset 0 panic (a buggy image), to check the server answers EIO.
#[derive(Debug)]
struct PanickyImage(MemImage);

impl rbdj_nbd::ExportImage for PanickyImage {
    fn size(&self) -> u64 {
        BlockImage::size(&self.0)
    }
    fn read(&self, offset: u64, len: u64) -> Result<Bytes, rbdj_nbd::ExportError> {
        Ok(BlockImage::read(&self.0, offset, len)?)
    }
    fn write(&self, offset: u64, data: Bytes) -> Result<(), rbdj_nbd::ExportError> {
        if offset == 0 {
            panic!("buggy image");
        }
        Ok(BlockImage::write(&self.0, offset, data)?)
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), rbdj_nbd::ExportError> {
        Ok(BlockImage::discard(&self.0, offset, len)?)
    }
    fn write_same(
        &self,
        offset: u64,
        len: u64,
        pattern: Bytes,
    ) -> Result<(), rbdj_nbd::ExportError> {
        Ok(BlockImage::write_same(&self.0, offset, len, pattern)?)
    }
    fn flush(&self) -> Result<(), rbdj_nbd::ExportError> {
        Ok(BlockImage::flush(&self.0)?)
    }
}

#[test]
fn a_panicking_image_gets_eio_and_the_connection_goes_on() {
    let image = Arc::new(PanickyImage(MemImage::new("p", SIZE)));
    let server = rbdj_nbd::NbdServer::bind_exports(
        "127.0.0.1:0".parse().unwrap(),
        vec![("p".into(), image.clone() as Arc<dyn rbdj_nbd::ExportImage>)],
        ServerOptions::default(),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let rbdj_nbd::ListenAddr::Tcp(addr) = server.addr().clone() else {
        panic!()
    };
    let mut c = RawClient::transmission(addr.port(), "p");
    c.request(CMD_WRITE, 0, 1, 0, 4);
    c.send(&[1; 4]);
    assert_eq!(c.reply().error, 5);
    c.request(CMD_WRITE, 0, 2, 4096, 4);
    c.send(&[2; 4]);
    assert_eq!(c.reply().error, 0);
    assert_eq!(
        BlockImage::read(&image.0, 4096, 4).unwrap().as_ref(),
        &[2; 4]
    );
    server.shutdown().unwrap();
}

#[test]
fn listen_addresses_parse() {
    use rbdj_nbd::ListenAddr;
    assert_eq!(
        "127.0.0.1:10809".parse::<ListenAddr>().unwrap(),
        ListenAddr::Tcp("127.0.0.1:10809".parse().unwrap())
    );
    assert_eq!(
        "unix:/run/nbd.sock".parse::<ListenAddr>().unwrap(),
        ListenAddr::Unix("/run/nbd.sock".into())
    );
    assert!("unix:".parse::<ListenAddr>().is_err());
    assert!("localhost".parse::<ListenAddr>().is_err());
}

#[test]
fn several_connections_share_one_image() {
    let (server, port, image) = server();
    let mut a = RawClient::transmission(port, "disk");
    let mut b = RawClient::transmission(port, "disk");
    a.request(CMD_WRITE, 0, 1, 0, 4096);
    a.send(&[0xaa; 4096]);
    assert_eq!(a.reply().error, 0);
    // CAN_MULTI_CONN: a write answered on one connection is visible on another, and a flush
    // there covers it.
    b.request(CMD_READ, 0, 2, 0, 4096);
    assert_eq!(b.reply().error, 0);
    assert_eq!(b.read_n(4096), vec![0xaa; 4096]);
    b.request(CMD_WRITE, 0, 3, 4096, 4096);
    b.send(&[0xbb; 4096]);
    assert_eq!(b.reply().error, 0);
    b.request(CMD_FLUSH, 0, 4, 0, 0);
    assert_eq!(b.reply().error, 0);
    a.request(CMD_READ, 0, 5, 4096, 4096);
    assert_eq!(a.reply().error, 0);
    assert_eq!(a.read_n(4096), vec![0xbb; 4096]);
    let mut model = vec![0x42u8; SIZE as usize];
    model[..4096].fill(0xaa);
    model[4096..8192].fill(0xbb);
    assert_eq!(image.read(0, SIZE).unwrap().as_ref(), &model[..]);
    drop((a, b));
    assert_eq!(server.shutdown().unwrap().connections, 2);
}
