//! The journaled image on real files: the journal in a `DirStore` directory, the image in a
//! `SparseFileImage` directory. Writes, an op and a close; then everything is reopened from the
//! directories (new handles) and must read back as a plain byte model, with nothing to replay.
//! The journal's bytes are decoded with journal-core's scanner.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use journal_client::image::{BlockImage, SparseFileImage};
use journal_client::{JournalSettings, JournaledImage};
use object_store_trait::{DirStore, DirStoreOptions, ObjectStore};

#[test]
fn files_survive_close_and_reopen() {
    let journal_dir = tempfile::tempdir().unwrap();
    let image_dir = tempfile::tempdir().unwrap();
    let settings = JournalSettings {
        order: 12,
        splay_width: 2,
        ..JournalSettings::default()
    };
    let mut model = vec![0u8; 1 << 20];
    {
        let store: Arc<dyn ObjectStore> =
            Arc::new(DirStore::open(journal_dir.path(), DirStoreOptions::default()).unwrap());
        let image: Arc<dyn BlockImage> =
            Arc::new(SparseFileImage::create(image_dir.path(), "img", 1 << 20).unwrap());
        let ji = JournaledImage::open(store.clone(), "j", image, settings.clone()).unwrap();
        for i in 0..40u64 {
            let off = (i * 7919 * 13) % ((1 << 20) - 3000);
            let data = vec![(i + 1) as u8; 2000 + i as usize * 20];
            model[off as usize..off as usize + data.len()].copy_from_slice(&data);
            ji.write(off, Bytes::from(data)).unwrap();
        }
        ji.snap_create("s").unwrap();
        ji.discard(0, 4096).unwrap();
        model[..4096].fill(0);
        ji.flush().unwrap();
        ji.close().unwrap();
        // Rollover happened (4 KiB objects) and the journal decodes cleanly.
        let objects = common::journal_objects(store.as_ref(), 0, "j");
        assert!(
            objects.keys().any(|n| *n >= 2),
            "no set rollover: {:?}",
            objects.keys()
        );
    }
    let store: Arc<dyn ObjectStore> =
        Arc::new(DirStore::open(journal_dir.path(), DirStoreOptions::default()).unwrap());
    let image: Arc<dyn BlockImage> = Arc::new(SparseFileImage::open(image_dir.path()).unwrap());
    assert_eq!(image.snap_list().unwrap().len(), 1);
    let ji = JournaledImage::open(store, "j", image, settings).unwrap();
    assert_eq!(ji.replayed_entries(), 0);
    assert!(ji.read(0, 1 << 20).unwrap()[..] == model[..]);
    ji.close().unwrap();
}
