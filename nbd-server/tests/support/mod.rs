//! Shared helpers of the NBD integration tests.
#![allow(dead_code, missing_docs)]
// NBD is big-endian on the wire.
#![allow(clippy::big_endian_bytes)]
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

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use journal_client::image::{ImageMeta, ImageResult, MemImage, SnapInfo};
use parking_lot::Mutex;
use rbdj_nbd::protocol::{
    InfoRequest, OptionHeader, OptionReplyHeader, Request, SimpleReply, CLIENT_FLAG_FIXED_NEWSTYLE,
    CLIENT_FLAG_NO_ZEROES, IHAVEOPT, NBD_MAGIC, OPT_GO,
};

/// Which data operation reached the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write(u64, u64),
    Discard(u64, u64),
    WriteSame(u64, u64, Vec<u8>),
    Flush,
}

/// A [`MemImage`] that logs the data operations it receives (in completion order).
#[derive(Debug)]
pub struct RecordingImage {
    pub inner: MemImage,
    pub log: Mutex<Vec<Op>>,
}

impl RecordingImage {
    pub fn new(size: u64) -> Arc<Self> {
        Arc::new(RecordingImage {
            inner: MemImage::new("rec", size),
            log: Mutex::new(Vec::new()),
        })
    }
    pub fn ops(&self) -> Vec<Op> {
        self.log.lock().clone()
    }
}

impl BlockImage for RecordingImage {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read(&self, offset: u64, len: u64) -> ImageResult<Bytes> {
        self.inner.read(offset, len)
    }
    fn write(&self, offset: u64, data: Bytes) -> ImageResult<()> {
        let len = data.len() as u64;
        self.inner.write(offset, data)?;
        self.log.lock().push(Op::Write(offset, len));
        Ok(())
    }
    fn discard(&self, offset: u64, len: u64) -> ImageResult<()> {
        self.inner.discard(offset, len)?;
        self.log.lock().push(Op::Discard(offset, len));
        Ok(())
    }
    fn write_same(&self, offset: u64, len: u64, pattern: Bytes) -> ImageResult<()> {
        self.inner.write_same(offset, len, pattern.clone())?;
        self.log
            .lock()
            .push(Op::WriteSame(offset, len, pattern.to_vec()));
        Ok(())
    }
    fn compare_and_write(&self, offset: u64, cmp: Bytes, data: Bytes) -> ImageResult<()> {
        self.inner.compare_and_write(offset, cmp, data)
    }
    fn flush(&self) -> ImageResult<()> {
        self.inner.flush()?;
        self.log.lock().push(Op::Flush);
        Ok(())
    }
    fn resize(&self, size: u64) -> ImageResult<()> {
        self.inner.resize(size)
    }
    fn snap_create(&self, name: &str) -> ImageResult<u64> {
        self.inner.snap_create(name)
    }
    fn snap_remove(&self, name: &str) -> ImageResult<()> {
        self.inner.snap_remove(name)
    }
    fn snap_rename(&self, src: &str, dst: &str) -> ImageResult<()> {
        self.inner.snap_rename(src, dst)
    }
    fn snap_protect(&self, name: &str) -> ImageResult<()> {
        self.inner.snap_protect(name)
    }
    fn snap_unprotect(&self, name: &str) -> ImageResult<()> {
        self.inner.snap_unprotect(name)
    }
    fn snap_rollback(&self, name: &str) -> ImageResult<()> {
        self.inner.snap_rollback(name)
    }
    fn snap_list(&self) -> ImageResult<Vec<SnapInfo>> {
        self.inner.snap_list()
    }
    fn snap_set_limit(&self, limit: u64) -> ImageResult<()> {
        self.inner.snap_set_limit(limit)
    }
    fn rename(&self, name: &str) -> ImageResult<()> {
        self.inner.rename(name)
    }
    fn flatten(&self) -> ImageResult<()> {
        self.inner.flatten()
    }
    fn update_features(&self, features: u64, enabled: bool) -> ImageResult<()> {
        self.inner.update_features(features, enabled)
    }
    fn metadata_set(&self, key: &str, value: &str) -> ImageResult<()> {
        self.inner.metadata_set(key, value)
    }
    fn metadata_remove(&self, key: &str) -> ImageResult<()> {
        self.inner.metadata_remove(key)
    }
    fn metadata_get(&self, key: &str) -> ImageResult<Option<String>> {
        self.inner.metadata_get(key)
    }
    fn metadata_list(&self) -> ImageResult<BTreeMap<String, String>> {
        self.inner.metadata_list()
    }
    fn meta(&self) -> ImageMeta {
        self.inner.meta()
    }
}

/// A minimal hand-rolled NBD client speaking raw bytes, for malformed-input tests. Every read
/// has a timeout so a server that hangs fails the test instead of blocking it.
pub struct RawClient {
    pub s: TcpStream,
}

impl RawClient {
    /// Connects and checks the greeting (`NBDMAGIC`, `IHAVEOPT`, flags).
    pub fn connect(port: u16) -> (Self, u16) {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = RawClient { s };
        let g = c.read_n(18);
        assert_eq!(u64::from_be_bytes(g[..8].try_into().unwrap()), NBD_MAGIC);
        assert_eq!(u64::from_be_bytes(g[8..16].try_into().unwrap()), IHAVEOPT);
        (c, u16::from_be_bytes([g[16], g[17]]))
    }

    /// Connects and sends fixed-newstyle + no-zeroes client flags.
    pub fn negotiated(port: u16) -> Self {
        let (mut c, _) = Self::connect(port);
        c.send(&(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES).to_be_bytes());
        c
    }

    /// Connects, negotiates and enters transmission on `name` with NBD_OPT_GO.
    pub fn transmission(port: u16, name: &str) -> Self {
        let mut c = Self::negotiated(port);
        let payload = InfoRequest {
            name: name.into(),
            requests: vec![],
        }
        .encode();
        c.option(OPT_GO, &payload);
        loop {
            let (h, _) = c.option_reply();
            assert_eq!(h.option, OPT_GO);
            if h.reply_type == rbdj_nbd::protocol::REP_ACK {
                return c;
            }
            assert_eq!(h.reply_type, rbdj_nbd::protocol::REP_INFO, "{h:?}");
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.s.read_exact(&mut v).unwrap();
        v
    }

    pub fn option(&mut self, option: u32, payload: &[u8]) {
        let h = OptionHeader {
            option,
            length: payload.len() as u32,
        }
        .encode();
        self.send(&h);
        self.send(payload);
    }

    pub fn option_reply(&mut self) -> (OptionReplyHeader, Vec<u8>) {
        let h = OptionReplyHeader::decode(&self.read_n(20)).unwrap();
        let data = self.read_n(h.length as usize);
        (h, data)
    }

    pub fn request(&mut self, command: u16, flags: u16, handle: u64, offset: u64, length: u32) {
        let r = Request {
            flags,
            command,
            handle,
            offset,
            length,
        }
        .encode();
        self.send(&r);
    }

    pub fn reply(&mut self) -> SimpleReply {
        SimpleReply::decode(&self.read_n(16)).unwrap()
    }

    /// True when the server closed the connection (EOF or reset), within the read timeout.
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match self.s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}
