//! NBD write throughput over loopback TCP: 4 KiB writes with a queue depth of 16, pipelined on
//! one connection, against an in-memory export. Measures the server's own overhead (framing,
//! worker pool, reply writer) and, when compared with a journaled export, the journal's cost.
//!
//! Run: `cargo bench -p rbdj-nbd --bench nbd_write`.
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// NBD is big-endian on the wire.
#![allow(clippy::big_endian_bytes)]

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::MemStore;
use rbdj_nbd::protocol::{
    InfoRequest, OptionHeader, OptionReplyHeader, Request, SimpleReply, CMD_DISC, CMD_WRITE,
    OPT_GO, REP_ACK,
};
use rbdj_nbd::{ExportImage, ListenAddr, NbdServer, RunningServer, ServerOptions};

const IMAGE_SIZE: u64 = 64 << 20;
const BLOCK: u32 = 4096;
const QUEUE_DEPTH: u64 = 16;

struct Client {
    r: BufReader<TcpStream>,
    w: BufWriter<TcpStream>,
}

impl Client {
    fn connect(addr: &ListenAddr, name: &str) -> Client {
        let ListenAddr::Tcp(a) = addr else {
            panic!("tcp only")
        };
        let s = TcpStream::connect(a).unwrap();
        s.set_nodelay(true).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: BufWriter::new(s),
        };
        let mut greeting = [0u8; 18];
        c.r.read_exact(&mut greeting).unwrap();
        c.w.write_all(&3u32.to_be_bytes()).unwrap();
        let payload = InfoRequest {
            name: name.into(),
            requests: vec![],
        }
        .encode();
        c.w.write_all(
            &OptionHeader {
                option: OPT_GO,
                length: payload.len() as u32,
            }
            .encode(),
        )
        .unwrap();
        c.w.write_all(&payload).unwrap();
        c.w.flush().unwrap();
        loop {
            let mut h = [0u8; 20];
            c.r.read_exact(&mut h).unwrap();
            let h = OptionReplyHeader::decode(&h).unwrap();
            let mut data = vec![0u8; h.length as usize];
            c.r.read_exact(&mut data).unwrap();
            if h.reply_type == REP_ACK {
                return c;
            }
        }
    }

    fn send_write(&mut self, handle: u64, data: &[u8]) {
        let offset = (handle * u64::from(BLOCK)) % IMAGE_SIZE;
        let r = Request {
            flags: 0,
            command: CMD_WRITE,
            handle,
            offset,
            length: BLOCK,
        };
        self.w.write_all(&r.encode()).unwrap();
        self.w.write_all(data).unwrap();
    }

    fn wait_reply(&mut self) {
        let mut h = [0u8; 16];
        self.r.read_exact(&mut h).unwrap();
        assert_eq!(SimpleReply::decode(&h).unwrap().error, 0);
    }

    /// `n` writes keeping `QUEUE_DEPTH` in flight.
    fn writes(&mut self, n: u64, data: &[u8]) {
        let mut sent = 0u64;
        let mut done = 0u64;
        while done < n {
            while sent < n && sent - done < QUEUE_DEPTH {
                self.send_write(sent, data);
                sent += 1;
            }
            self.w.flush().unwrap();
            self.wait_reply();
            done += 1;
        }
    }

    fn close(mut self) {
        let r = Request {
            flags: 0,
            command: CMD_DISC,
            handle: 0,
            offset: 0,
            length: 0,
        };
        self.w.write_all(&r.encode()).unwrap();
        self.w.flush().unwrap();
    }
}

fn serve(image: Arc<dyn ExportImage>) -> RunningServer {
    let addr = ListenAddr::Tcp("127.0.0.1:0".parse().unwrap());
    NbdServer::bind_exports(addr, vec![("disk".into(), image)], ServerOptions::default())
        .unwrap()
        .spawn()
        .unwrap()
}

fn bench_export(c: &mut Criterion, label: &str, image: Arc<dyn ExportImage>) {
    let server = serve(image);
    let mut client = Client::connect(server.addr(), "disk");
    let data = vec![0x5au8; BLOCK as usize];
    let mut group = c.benchmark_group("nbd_write_4k_qd16");
    group.throughput(Throughput::Bytes(u64::from(BLOCK)));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function(label, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            client.writes(iters, &data);
            start.elapsed()
        })
    });
    group.finish();
    client.close();
    server.shutdown().unwrap();
}

fn nbd_write(c: &mut Criterion) {
    let mem: Arc<dyn BlockImage> = Arc::new(MemImage::new("disk", IMAGE_SIZE));
    bench_export(c, "mem_image", rbdj_nbd::export_block_image(mem));

    // The same image behind a journal on an in-memory object store: the ratio of the two is the
    // cost of journaling (framing, group commit, ordered apply) seen by an NBD client.
    let store = Arc::new(MemStore::new());
    let base: Arc<dyn BlockImage> = Arc::new(MemImage::new("disk", IMAGE_SIZE));
    let journaled =
        Arc::new(JournaledImage::open(store, "bench", base, JournalSettings::default()).unwrap());
    bench_export(
        c,
        "journaled_mem_image",
        rbdj_nbd::export_journaled_image(journaled.clone()),
    );
    journaled.close().unwrap();
}

criterion_group!(benches, nbd_write);
criterion_main!(benches);
