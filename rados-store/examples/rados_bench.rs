//! Journaled-write benchmark on one Ceph cluster: librbd (`rbd bench`, journaling on and off)
//! versus rbdj's `JournaledImage` over an `ObjectImage`, both on RadosStore (journal on and off),
//! with the same random 4 KiB writes, thread count and number of writes.
//!
//! ```text
//! eval "$(scripts/ceph-local.sh start /tmp/rbdj-ceph)"
//! cargo run --release -p rados-store --features rados --example rados_bench -- [WRITES] [THREADS]
//! ```
//! Defaults: 4096 writes, 16 threads, 64 MiB images (a memstore OSD keeps whole 4 MiB objects in
//! memory, so keep images small). Prints ops/s per side and the ratios; removes what it wrote.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use journal_client::image::{BlockImage, ObjectImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::ObjectStore;
use rados_store::{RadosStore, RadosStoreOptions};

const IO: u64 = 4096;
const SIZE: u64 = 64 << 20;

fn rbd(conf: &str, args: &[&str]) -> String {
    let out = Command::new("rbd")
        .args(["-c", conf])
        .args(args)
        .output()
        .expect("run rbd");
    assert!(
        out.status.success(),
        "rbd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rbd bench` of `writes` random 4 KiB writes; returns ops/s from its summary line.
fn librbd(conf: &str, image: &str, journaled: bool, writes: u64, threads: usize) -> f64 {
    let features = if journaled {
        "layering,exclusive-lock,journaling"
    } else {
        "layering,exclusive-lock"
    };
    rbd(
        conf,
        &[
            "create",
            "--size",
            "64M",
            "--image-feature",
            features,
            image,
        ],
    );
    let total = (writes * IO).to_string();
    let threads = threads.to_string();
    let out = rbd(
        conf,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "4096",
            "--io-threads",
            &threads,
            "--io-total",
            &total,
            "--io-pattern",
            "rand",
            image,
        ],
    );
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("ops/sec:"))
        .expect("summary line");
    let after = line.split("ops/sec:").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// `writes` random 4 KiB writes from `threads` threads through `write`; returns ops/s.
fn drive(writes: u64, threads: usize, write: &(dyn Fn(u64, Bytes) + Sync)) -> f64 {
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let next = &next;
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
                while next.fetch_add(1, Ordering::Relaxed) < writes {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let offset = (x % (SIZE / IO)) * IO;
                    write(offset, Bytes::from(vec![(x >> 56) as u8; IO as usize]));
                }
            });
        }
    });
    writes as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let writes: u64 = args.next().map_or(4096, |a| a.parse().unwrap());
    let threads: usize = args.next().map_or(16, |a| a.parse().unwrap());
    let options = RadosStoreOptions::from_env().expect("set CEPH_CONF");
    let conf = options
        .conf_path
        .clone()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let base = RadosStore::connect(options).unwrap();
    let tag = format!("bench{}", std::process::id());

    let librbd_j = librbd(&conf, &format!("{tag}-j"), true, writes, threads);
    let librbd_u = librbd(&conf, &format!("{tag}-u"), false, writes, threads);

    let store: Arc<dyn ObjectStore> = Arc::new(base.with_namespace(&tag).unwrap());
    let plain = ObjectImage::create(Arc::clone(&store), "plain", "plain", SIZE).unwrap();
    let rbdj_u = drive(writes, threads, &|off, data| {
        plain.write(off, data).unwrap()
    });
    let image: Arc<dyn BlockImage> =
        Arc::new(ObjectImage::create(Arc::clone(&store), "jimg", "jimg", SIZE).unwrap());
    let settings = JournalSettings {
        name_pool_id: base.pool_id().unwrap(),
        ..JournalSettings::default()
    };
    let journaled = JournaledImage::open(Arc::clone(&store), "jimg", image, settings).unwrap();
    let rbdj_j = drive(writes, threads, &|off, data| {
        journaled.write(off, data).unwrap()
    });
    journaled.close().unwrap();
    drop(journaled);
    for image in [format!("{tag}-j"), format!("{tag}-u")] {
        rbd(&conf, &["rm", "--no-progress", &image]);
    }
    for oid in store.list("").unwrap() {
        let _ = store.remove(&oid);
    }

    println!("random 4 KiB writes, {writes} writes, {threads} threads, 64 MiB images");
    println!("{:<24} {:>10}", "", "ops/s");
    println!("{:<24} {:>10.0}", "librbd journaled", librbd_j);
    println!("{:<24} {:>10.0}", "librbd unjournaled", librbd_u);
    println!("{:<24} {:>10.0}", "rbdj journaled (RADOS)", rbdj_j);
    println!("{:<24} {:>10.0}", "rbdj unjournaled (RADOS)", rbdj_u);
    println!(
        "rbdj journaled / librbd journaled: {:.2}",
        rbdj_j / librbd_j
    );
    println!(
        "journaled/unjournaled: librbd {:.2}, rbdj {:.2}",
        librbd_j / librbd_u,
        rbdj_j / rbdj_u
    );
}
