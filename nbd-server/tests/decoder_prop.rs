//! Property tests: the decoders never panic on arbitrary bytes, accept exactly the well-formed
//! inputs (checked against an independent field-by-field big-endian parse written here), and a
//! server fed arbitrary bytes after a valid handshake never panics and stays available.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// NBD is big-endian on the wire.
#![allow(clippy::big_endian_bytes)]

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use journal_client::image::MemImage;
use proptest::prelude::*;
use rbdj_nbd::protocol::{InfoRequest, OptionHeader, Request, SimpleReply};
use rbdj_nbd::ServerOptions;
use support::{start, RawClient};

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn request_decoder_agrees_with_a_reference_parse(bytes in proptest::collection::vec(any::<u8>(), 0..40), magic_ok in any::<bool>()) {
        let mut bytes = bytes;
        if magic_ok && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&[0x25, 0x60, 0x95, 0x13]);
        }
        let got = Request::decode(&bytes);
        let well_formed = bytes.len() == 28 && be(&bytes[..4]) == 0x2560_9513;
        prop_assert_eq!(got.is_ok(), well_formed);
        if let Ok(r) = got {
            prop_assert_eq!(u64::from(r.flags), be(&bytes[4..6]));
            prop_assert_eq!(u64::from(r.command), be(&bytes[6..8]));
            prop_assert_eq!(r.handle, be(&bytes[8..16]));
            prop_assert_eq!(r.offset, be(&bytes[16..24]));
            prop_assert_eq!(u64::from(r.length), be(&bytes[24..28]));
        }
    }

    #[test]
    fn option_and_reply_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let opt = OptionHeader::decode(&bytes);
        prop_assert_eq!(opt.is_ok(), bytes.len() == 16 && &bytes[..8] == b"IHAVEOPT");
        let _ = SimpleReply::decode(&bytes);
        let _ = InfoRequest::decode(&bytes);
    }

    #[test]
    fn info_request_decoder_checks_every_length(name in "[a-z]{0,12}", reqs in proptest::collection::vec(any::<u16>(), 0..6), cut in 0usize..64, junk in any::<u8>()) {
        // Reference encoding, built by hand: u32 name length, name, u16 count, count x u16.
        let mut raw = (name.len() as u32).to_be_bytes().to_vec();
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(&(reqs.len() as u16).to_be_bytes());
        for r in &reqs {
            raw.extend_from_slice(&r.to_be_bytes());
        }
        let decoded = InfoRequest::decode(&raw).unwrap();
        prop_assert_eq!(&decoded.name, &name);
        prop_assert_eq!(&decoded.requests, &reqs);
        let cut = cut.min(raw.len());
        if cut < raw.len() {
            prop_assert!(InfoRequest::decode(&raw[..cut]).is_err());
        }
        let mut longer = raw.clone();
        longer.push(junk);
        prop_assert!(InfoRequest::decode(&longer).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn server_survives_arbitrary_transmission_bytes(junk in proptest::collection::vec(any::<u8>(), 0..300)) {
        let image = Arc::new(MemImage::new("disk", 1 << 16));
        let (server, port) = start(vec![("disk", image)], ServerOptions::default());
        let mut c = RawClient::transmission(port, "disk");
        let _ = c.s.write_all(&junk);
        let _ = c.s.shutdown(std::net::Shutdown::Write);
        c.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut sink = Vec::new();
        // The server must end the connection (it never hangs waiting for more than it was sent).
        let _ = c.s.read_to_end(&mut sink);
        // And keep serving.
        let mut ok = RawClient::transmission(port, "disk");
        ok.request(0, 0, 5, 0, 16);
        prop_assert_eq!(ok.reply().error, 0);
        prop_assert_eq!(ok.read_n(16), vec![0u8; 16]);
        drop(ok);
        prop_assert!(server.shutdown().is_ok());
    }
}
