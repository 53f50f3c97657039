//! Negotiation-phase messages: greeting, client flags, option requests and replies, and the
//! `NBD_OPT_INFO`/`NBD_OPT_GO` payload.
#![allow(clippy::big_endian_bytes)]

use super::cursor::Cursor;
use super::{
    ProtocolError, IHAVEOPT, INFO_BLOCK_SIZE, INFO_EXPORT, INFO_NAME, MAX_STRING_LEN, NBD_MAGIC,
    OPTION_HEADER_LEN, OPTION_REPLY_MAGIC,
};

/// Decodes the client's 4-byte flags answer to the server greeting.
pub fn decode_client_flags(bytes: &[u8]) -> Result<u32, ProtocolError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u32()?;
    c.finish()?;
    Ok(flags)
}

/// The server greeting: `NBDMAGIC`, `IHAVEOPT`, handshake flags.
pub fn encode_greeting(handshake_flags: u16) -> [u8; 18] {
    let mut out = [0u8; 18];
    let parts = NBD_MAGIC
        .to_be_bytes()
        .into_iter()
        .chain(IHAVEOPT.to_be_bytes())
        .chain(handshake_flags.to_be_bytes());
    for (dst, src) in out.iter_mut().zip(parts) {
        *dst = src;
    }
    out
}

/// The fixed header of a client option request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionHeader {
    /// Option code (`NBD_OPT_*`).
    pub option: u32,
    /// Length of the payload that follows.
    pub length: u32,
}

impl OptionHeader {
    /// Decodes the 16-byte option header (magic must be `IHAVEOPT`).
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut c = Cursor::new(bytes);
        let magic = c.u64()?;
        if magic != IHAVEOPT {
            return Err(ProtocolError::BadMagic {
                got: magic,
                expected: IHAVEOPT,
            });
        }
        let option = c.u32()?;
        let length = c.u32()?;
        c.finish()?;
        Ok(OptionHeader { option, length })
    }

    /// Encodes the header (used by tests and clients).
    pub fn encode(&self) -> [u8; OPTION_HEADER_LEN] {
        let mut out = Vec::with_capacity(OPTION_HEADER_LEN);
        out.extend_from_slice(&IHAVEOPT.to_be_bytes());
        out.extend_from_slice(&self.option.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        let mut arr = [0u8; OPTION_HEADER_LEN];
        for (dst, src) in arr.iter_mut().zip(out) {
            *dst = src;
        }
        arr
    }
}

/// Encodes an option reply: magic, option, reply type, payload length, payload.
pub fn encode_option_reply(option: u32, reply_type: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(20 + payload.len());
    out.extend_from_slice(&OPTION_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&reply_type.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Payload of a `NBD_REP_SERVER` reply: name length and name.
pub fn encode_rep_server(name: &str) -> Vec<u8> {
    let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + name.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// Payload of an `NBD_INFO_EXPORT` information reply.
pub fn encode_info_export(size: u64, transmission_flags: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&INFO_EXPORT.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&transmission_flags.to_be_bytes());
    out
}

/// Payload of an `NBD_INFO_NAME` information reply.
pub fn encode_info_name(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + name.len());
    out.extend_from_slice(&INFO_NAME.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// Payload of an `NBD_INFO_BLOCK_SIZE` information reply.
pub fn encode_info_block_size(minimum: u32, preferred: u32, maximum: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    out.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    out.extend_from_slice(&minimum.to_be_bytes());
    out.extend_from_slice(&preferred.to_be_bytes());
    out.extend_from_slice(&maximum.to_be_bytes());
    out
}

/// The answer to `NBD_OPT_EXPORT_NAME`: size, transmission flags, then 124 zero bytes unless the
/// client agreed to `NO_ZEROES`.
pub fn encode_export_name_reply(size: u64, transmission_flags: u16, zeroes: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(134);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&transmission_flags.to_be_bytes());
    if zeroes {
        out.resize(out.len() + 124, 0);
    }
    out
}

/// Parses an export name (UTF-8, at most [`MAX_STRING_LEN`] bytes).
pub fn parse_name(bytes: &[u8]) -> Result<String, ProtocolError> {
    if bytes.len() > MAX_STRING_LEN {
        return Err(ProtocolError::BadString("longer than 4096 bytes"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::BadString("not UTF-8"))
}

/// The payload of `NBD_OPT_INFO` / `NBD_OPT_GO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoRequest {
    /// The export asked for (empty = default export).
    pub name: String,
    /// Information items the client asked for.
    pub requests: Vec<u16>,
}

impl InfoRequest {
    /// Decodes `u32 name length, name, u16 count, count × u16`; the lengths must account for every
    /// byte.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut c = Cursor::new(bytes);
        let name_len = usize::try_from(c.u32()?).unwrap_or(usize::MAX);
        let name = parse_name(c.take(name_len)?)?;
        let count = usize::from(c.u16()?);
        // `take` bounds the count by the bytes present before anything is allocated.
        let raw = c.take(count.saturating_mul(2))?;
        let requests = raw
            .chunks_exact(2)
            .map(|pair| {
                let mut arr = [0u8; 2];
                arr.copy_from_slice(pair);
                u16::from_be_bytes(arr)
            })
            .collect();
        c.finish()?;
        Ok(InfoRequest { name, requests })
    }

    /// Encodes the payload (used by tests and clients).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let len = u32::try_from(self.name.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        let count = u16::try_from(self.requests.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for r in self.requests.iter().take(usize::from(count)) {
            out.extend_from_slice(&r.to_be_bytes());
        }
        out
    }
}

/// A decoded option reply header (used by tests and clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionReplyHeader {
    /// The option answered.
    pub option: u32,
    /// `NBD_REP_*`.
    pub reply_type: u32,
    /// Payload length.
    pub length: u32,
}

impl OptionReplyHeader {
    /// Decodes the 20-byte header.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut c = Cursor::new(bytes);
        let magic = c.u64()?;
        if magic != OPTION_REPLY_MAGIC {
            return Err(ProtocolError::BadMagic {
                got: magic,
                expected: OPTION_REPLY_MAGIC,
            });
        }
        let option = c.u32()?;
        let reply_type = c.u32()?;
        let length = c.u32()?;
        c.finish()?;
        Ok(OptionReplyHeader {
            option,
            reply_type,
            length,
        })
    }
}
