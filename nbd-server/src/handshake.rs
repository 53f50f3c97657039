//! The fixed-newstyle negotiation phase: greeting, client flags, then options until the client
//! picks an export (`NBD_OPT_GO` / `NBD_OPT_EXPORT_NAME`) or leaves.
//!
//! Supported options: `EXPORT_NAME`, `GO`, `INFO`, `LIST`, `ABORT`. Every other option (including
//! `STRUCTURED_REPLY`, `STARTTLS` and the meta-context options) gets `NBD_REP_ERR_UNSUP`, so the
//! transmission phase always uses simple replies.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{NbdError, Result};
use crate::export::{transmission_flags, Export, Exports};
use crate::options::ServerOptions;
use crate::protocol::{
    decode_client_flags, encode_export_name_reply, encode_greeting, encode_info_block_size,
    encode_info_export, encode_info_name, encode_option_reply, encode_rep_server, parse_name,
    InfoRequest, OptionHeader, ProtocolError, CLIENT_FLAG_FIXED_NEWSTYLE, CLIENT_FLAG_NO_ZEROES,
    FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, INFO_BLOCK_SIZE, INFO_NAME, OPTION_HEADER_LEN, OPT_ABORT,
    OPT_EXPORT_NAME, OPT_GO, OPT_INFO, OPT_LIST, REP_ACK, REP_ERR_INVALID, REP_ERR_SHUTDOWN,
    REP_ERR_UNKNOWN, REP_ERR_UNSUP, REP_INFO, REP_SERVER,
};

/// Largest option payload read; a larger one closes the connection (a GO/INFO payload is at
/// most 4 + 4096 + 2 + 2 × 65535 bytes, so this leaves room for every valid option).
pub const MAX_OPTION_PAYLOAD: u32 = 256 << 10;

/// Options a client may send before the server gives up on it.
pub const MAX_OPTIONS: usize = 1024;

/// How negotiation ended.
#[derive(Debug)]
pub enum Negotiated {
    /// The client chose an export; transmission starts.
    Transmission(Arc<Export>),
    /// The client aborted or went away; close the connection.
    Closed,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of stream before the first byte.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8], op: &'static str) -> Result<bool> {
    let mut filled = 0usize;
    while filled < buf.len() {
        let Some(dst) = buf.get_mut(filled..) else {
            break;
        };
        match r.read(dst) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(NbdError::Protocol(ProtocolError::Truncated {
                    need: buf.len(),
                    have: filled,
                }))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(NbdError::io(op, e)),
        }
    }
    Ok(true)
}

fn send<W: Write>(w: &mut W, bytes: &[u8]) -> Result<()> {
    w.write_all(bytes)
        .map_err(|e| NbdError::io("send handshake reply", e))
}

fn reply<W: Write>(w: &mut W, option: u32, reply_type: u32, payload: &[u8]) -> Result<()> {
    send(w, &encode_option_reply(option, reply_type, payload))
}

fn error_reply<W: Write>(w: &mut W, option: u32, reply_type: u32, msg: &str) -> Result<()> {
    reply(w, option, reply_type, msg.as_bytes())
}

/// Runs the negotiation phase on `stream`.
pub fn negotiate<S: Read + Write>(
    stream: &mut S,
    exports: &Exports,
    options: &ServerOptions,
    shutting_down: &AtomicBool,
) -> Result<Negotiated> {
    send(
        stream,
        &encode_greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES),
    )?;
    let mut flags = [0u8; 4];
    if !read_full(stream, &mut flags, "read client flags")? {
        return Ok(Negotiated::Closed);
    }
    let client_flags = decode_client_flags(&flags)?;
    if client_flags & !(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES) != 0 {
        return Err(ProtocolError::UnknownClientFlags(client_flags).into());
    }
    let no_zeroes = client_flags & CLIENT_FLAG_NO_ZEROES != 0;
    let tflags = transmission_flags(options.read_only);

    for _ in 0..MAX_OPTIONS {
        let mut header = [0u8; OPTION_HEADER_LEN];
        if !read_full(stream, &mut header, "read option header")? {
            return Ok(Negotiated::Closed);
        }
        let header = OptionHeader::decode(&header)?;
        if header.length > MAX_OPTION_PAYLOAD {
            return Err(ProtocolError::TooLarge {
                what: "option payload",
                len: u64::from(header.length),
                max: u64::from(MAX_OPTION_PAYLOAD),
            }
            .into());
        }
        // Bounded by MAX_OPTION_PAYLOAD just above.
        let mut payload = vec![0u8; usize::try_from(header.length).unwrap_or(0)];
        if !payload.is_empty() && !read_full(stream, &mut payload, "read option payload")? {
            return Ok(Negotiated::Closed);
        }
        let opt = header.option;
        if shutting_down.load(Ordering::Acquire) {
            error_reply(stream, opt, REP_ERR_SHUTDOWN, "server is shutting down")?;
            return Ok(Negotiated::Closed);
        }
        match opt {
            OPT_EXPORT_NAME => {
                // No error reply exists for this option: an unknown name closes the connection.
                let Ok(name) = parse_name(&payload) else {
                    return Ok(Negotiated::Closed);
                };
                let Some(export) = exports.find(&name) else {
                    tracing::info!(export = %name, "client asked for an unknown export");
                    return Ok(Negotiated::Closed);
                };
                let size = export.image.size();
                send(stream, &encode_export_name_reply(size, tflags, !no_zeroes))?;
                return Ok(Negotiated::Transmission(export));
            }
            OPT_ABORT => {
                // The client may already have closed; a failed ACK does not matter.
                let _ = reply(stream, opt, REP_ACK, &[]);
                return Ok(Negotiated::Closed);
            }
            OPT_LIST => {
                if !payload.is_empty() {
                    error_reply(stream, opt, REP_ERR_INVALID, "NBD_OPT_LIST takes no data")?;
                    continue;
                }
                for export in exports.iter() {
                    reply(stream, opt, REP_SERVER, &encode_rep_server(&export.name))?;
                }
                reply(stream, opt, REP_ACK, &[])?;
            }
            OPT_INFO | OPT_GO => {
                let request = match InfoRequest::decode(&payload) {
                    Ok(r) => r,
                    Err(e) => {
                        error_reply(stream, opt, REP_ERR_INVALID, &e.to_string())?;
                        continue;
                    }
                };
                let Some(export) = exports.find(&request.name) else {
                    error_reply(stream, opt, REP_ERR_UNKNOWN, "no such export")?;
                    continue;
                };
                let size = export.image.size();
                reply(stream, opt, REP_INFO, &encode_info_export(size, tflags))?;
                if request.requests.contains(&INFO_NAME) {
                    reply(stream, opt, REP_INFO, &encode_info_name(&export.name))?;
                }
                if request.requests.contains(&INFO_BLOCK_SIZE) {
                    let block = encode_info_block_size(1, 4096, options.max_request_bytes);
                    reply(stream, opt, REP_INFO, &block)?;
                }
                reply(stream, opt, REP_ACK, &[])?;
                if opt == OPT_GO {
                    return Ok(Negotiated::Transmission(export));
                }
            }
            _ => error_reply(stream, opt, REP_ERR_UNSUP, "option not supported")?,
        }
    }
    Err(ProtocolError::TooLarge {
        what: "option count",
        len: MAX_OPTIONS as u64,
        max: MAX_OPTIONS as u64,
    }
    .into())
}
