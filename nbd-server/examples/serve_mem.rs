//! Serves an in-memory image over NBD until stdin closes (for manual testing and
//! `qemu-img bench`), optionally behind a journal on an in-memory object store.
//! Usage: `cargo run --release -p rbdj-nbd --example serve_mem -- [PORT] [SIZE_MIB] [journaled]`
//! then e.g. `qemu-img bench -f raw -w -s 4k -c 100000 -d 16 nbd://127.0.0.1:PORT/disk`.

use std::error::Error;
use std::io::Read;
use std::sync::Arc;

use journal_client::image::{BlockImage, MemImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::MemStore;
use rbdj_nbd::{export_block_image, export_journaled_image, ListenAddr, NbdServer, ServerOptions};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(10809);
    let size_mib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let journal = args.next().is_some_and(|a| a == "journaled");
    let image: Arc<dyn BlockImage> = Arc::new(MemImage::new("disk", size_mib << 20));
    let (export, journaled) = if journal {
        let store = Arc::new(MemStore::new());
        let ji = Arc::new(JournaledImage::open(
            store,
            "disk",
            image,
            JournalSettings::default(),
        )?);
        (export_journaled_image(ji.clone()), Some(ji))
    } else {
        (export_block_image(image), None)
    };
    let addr = ListenAddr::Tcp(format!("127.0.0.1:{port}").parse()?);
    let server = NbdServer::bind_exports(
        addr,
        vec![("disk".into(), export)],
        ServerOptions::default(),
    )?;
    let running = server.spawn()?;
    println!("serving nbd://{}/disk; close stdin to stop", running.addr());
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    let summary = running.shutdown()?;
    println!("{summary:?}");
    if let Some(ji) = journaled {
        ji.close()?;
    }
    Ok(())
}
