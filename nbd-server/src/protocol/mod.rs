//! NBD wire format: magic numbers, option and command codes, flags, and the bounded, panic-free
//! codecs of the fixed-size headers and of the option payloads this server understands.
//!
//! Every integer on the NBD wire is big-endian (network byte order); this module is the only place
//! that converts them, hence the module-level allowance of `big_endian_bytes`.
#![allow(clippy::big_endian_bytes)]

/// First 8 bytes the server sends: ASCII `NBDMAGIC`.
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// Newstyle negotiation magic (ASCII `IHAVEOPT`), also the magic of every option request.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// Magic of every option reply.
pub const OPTION_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Magic of a transmission-phase request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Magic of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

/// Handshake flag: fixed newstyle negotiation.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
/// Handshake flag: the 124 zero bytes after `NBD_OPT_EXPORT_NAME` may be omitted.
pub const FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flag: the client speaks fixed newstyle.
pub const CLIENT_FLAG_FIXED_NEWSTYLE: u32 = 1 << 0;
/// Client flag: the client agrees to omit the 124 zero bytes.
pub const CLIENT_FLAG_NO_ZEROES: u32 = 1 << 1;

/// Transmission flag: the other flags are meaningful (always set).
pub const TFLAG_HAS_FLAGS: u16 = 1 << 0;
/// Transmission flag: the export is read-only.
pub const TFLAG_READ_ONLY: u16 = 1 << 1;
/// Transmission flag: `NBD_CMD_FLUSH` is supported.
pub const TFLAG_SEND_FLUSH: u16 = 1 << 2;
/// Transmission flag: `NBD_CMD_FLAG_FUA` is supported.
pub const TFLAG_SEND_FUA: u16 = 1 << 3;
/// Transmission flag: `NBD_CMD_TRIM` is supported.
pub const TFLAG_SEND_TRIM: u16 = 1 << 5;
/// Transmission flag: `NBD_CMD_WRITE_ZEROES` is supported.
pub const TFLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;
/// Transmission flag: several connections to the export see one consistent image and a flush on
/// any connection covers writes completed on every connection.
pub const TFLAG_CAN_MULTI_CONN: u16 = 1 << 8;

/// Option: choose an export and enter transmission (no error reporting possible).
pub const OPT_EXPORT_NAME: u32 = 1;
/// Option: the client gives up negotiation.
pub const OPT_ABORT: u32 = 2;
/// Option: list the exports.
pub const OPT_LIST: u32 = 3;
/// Option: upgrade to TLS (not supported here).
pub const OPT_STARTTLS: u32 = 5;
/// Option: describe an export without entering transmission.
pub const OPT_INFO: u32 = 6;
/// Option: describe an export and enter transmission.
pub const OPT_GO: u32 = 7;
/// Option: structured replies (refused here with `NBD_REP_ERR_UNSUP`).
pub const OPT_STRUCTURED_REPLY: u32 = 8;

/// Option reply: success / end of a reply list.
pub const REP_ACK: u32 = 1;
/// Option reply: one export of a `NBD_OPT_LIST` answer.
pub const REP_SERVER: u32 = 2;
/// Option reply: one information item of `NBD_OPT_INFO`/`NBD_OPT_GO`.
pub const REP_INFO: u32 = 3;
/// Bit set in every option error reply.
pub const REP_FLAG_ERROR: u32 = 1 << 31;
/// Option error: unknown or unsupported option.
pub const REP_ERR_UNSUP: u32 = REP_FLAG_ERROR | 1;
/// Option error: forbidden by server policy.
pub const REP_ERR_POLICY: u32 = REP_FLAG_ERROR | 2;
/// Option error: syntactically or semantically invalid option.
pub const REP_ERR_INVALID: u32 = REP_FLAG_ERROR | 3;
/// Option error: the export does not exist.
pub const REP_ERR_UNKNOWN: u32 = REP_FLAG_ERROR | 6;
/// Option error: the server is shutting down.
pub const REP_ERR_SHUTDOWN: u32 = REP_FLAG_ERROR | 7;
/// Option error: the option payload is too large.
pub const REP_ERR_TOO_BIG: u32 = REP_FLAG_ERROR | 9;

/// Information item: export size and transmission flags.
pub const INFO_EXPORT: u16 = 0;
/// Information item: canonical export name.
pub const INFO_NAME: u16 = 1;
/// Information item: human readable description.
pub const INFO_DESCRIPTION: u16 = 2;
/// Information item: block size constraints.
pub const INFO_BLOCK_SIZE: u16 = 3;

/// Command: read.
pub const CMD_READ: u16 = 0;
/// Command: write (payload follows the header).
pub const CMD_WRITE: u16 = 1;
/// Command: orderly disconnect (no reply).
pub const CMD_DISC: u16 = 2;
/// Command: flush.
pub const CMD_FLUSH: u16 = 3;
/// Command: trim (discard).
pub const CMD_TRIM: u16 = 4;
/// Command: write zeroes (no payload).
pub const CMD_WRITE_ZEROES: u16 = 6;

/// Command flag: force unit access (the data is durable before the reply).
pub const CMD_FLAG_FUA: u16 = 1 << 0;
/// Command flag: `NBD_CMD_WRITE_ZEROES` must not punch a hole.
pub const CMD_FLAG_NO_HOLE: u16 = 1 << 1;

/// NBD error: operation not permitted.
pub const NBD_EPERM: u32 = 1;
/// NBD error: input/output error.
pub const NBD_EIO: u32 = 5;
/// NBD error: out of memory.
pub const NBD_ENOMEM: u32 = 12;
/// NBD error: invalid argument.
pub const NBD_EINVAL: u32 = 22;
/// NBD error: no space left (a write past the end of the export).
pub const NBD_ENOSPC: u32 = 28;
/// NBD error: value too large.
pub const NBD_EOVERFLOW: u32 = 75;
/// NBD error: operation not supported.
pub const NBD_ENOTSUP: u32 = 95;
/// NBD error: the server is shutting down.
pub const NBD_ESHUTDOWN: u32 = 108;

/// Size of a transmission request header.
pub const REQUEST_LEN: usize = 28;
/// Size of a simple reply header.
pub const SIMPLE_REPLY_LEN: usize = 16;
/// Size of an option request header.
pub const OPTION_HEADER_LEN: usize = 16;
/// Longest string (export name) the protocol allows.
pub const MAX_STRING_LEN: usize = 4096;

/// A malformed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A header did not start with the expected magic.
    #[error("bad magic {got:#x}, expected {expected:#x}")]
    BadMagic {
        /// What was received.
        got: u64,
        /// What the protocol requires.
        expected: u64,
    },
    /// A message was shorter than its fixed header or than its own length fields say.
    #[error("truncated message: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A message had bytes left after its declared content.
    #[error("{extra} unexpected trailing bytes")]
    Trailing {
        /// How many.
        extra: usize,
    },
    /// A length field exceeds what this server accepts.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The length received.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A transmission request with a command this server does not know.
    #[error("unknown command {0}")]
    UnknownCommand(u16),
    /// The client's handshake flags contain bits this server does not know.
    #[error("unknown client flags {0:#x}")]
    UnknownClientFlags(u32),
    /// A string was longer than [`MAX_STRING_LEN`] or not UTF-8.
    #[error("invalid string: {0}")]
    BadString(&'static str),
}

mod cursor;
mod negotiation;
mod transmission;

pub use negotiation::*;
pub use transmission::*;

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn greeting_bytes_are_the_spec_ascii() {
        let g = encode_greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        assert_eq!(&g[..8], b"NBDMAGIC");
        assert_eq!(&g[8..16], b"IHAVEOPT");
        assert_eq!(&g[16..], &[0, 3]);
    }

    #[test]
    fn request_layout_matches_spec_offsets() {
        // Hand-assembled per the protocol document: magic, flags, type, handle, offset, length.
        let mut raw = vec![0x25, 0x60, 0x95, 0x13, 0x00, 0x01, 0x00, 0x01];
        raw.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0]);
        raw.extend_from_slice(&[0, 0, 0x10, 0]);
        let r = Request::decode(&raw).unwrap();
        assert_eq!(r.flags, CMD_FLAG_FUA);
        assert_eq!(r.command, CMD_WRITE);
        assert_eq!(r.handle, 0x0102_0304_0506_0708);
        assert_eq!(r.offset, 65536);
        assert_eq!(r.length, 4096);
        assert_eq!(r.encode().to_vec(), raw);
    }

    #[test]
    fn info_request_rejects_lying_lengths() {
        let good = InfoRequest {
            name: "disk".into(),
            requests: vec![INFO_BLOCK_SIZE],
        }
        .encode();
        assert_eq!(InfoRequest::decode(&good).unwrap().name, "disk");
        let mut long_name = good.clone();
        long_name[3] = 200;
        assert!(matches!(
            InfoRequest::decode(&long_name),
            Err(ProtocolError::Truncated { .. })
        ));
        let mut many = good.clone();
        many[9] = 0xff;
        assert!(InfoRequest::decode(&many).is_err());
        let mut extra = good;
        extra.push(0);
        assert!(matches!(
            InfoRequest::decode(&extra),
            Err(ProtocolError::Trailing { extra: 1 })
        ));
    }
}
