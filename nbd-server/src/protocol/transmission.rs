//! Transmission-phase messages: the request header and the simple reply.
#![allow(clippy::big_endian_bytes)]

use std::fmt;

use super::cursor::Cursor;
use super::{
    ProtocolError, CMD_DISC, CMD_FLAG_FUA, CMD_FLUSH, CMD_READ, CMD_TRIM, CMD_WRITE,
    CMD_WRITE_ZEROES, REQUEST_LEN, REQUEST_MAGIC, SIMPLE_REPLY_LEN, SIMPLE_REPLY_MAGIC,
};

/// A transmission-phase request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Command flags (`NBD_CMD_FLAG_*`).
    pub flags: u16,
    /// Command code (`NBD_CMD_*`), not validated here.
    pub command: u16,
    /// Opaque handle echoed in the reply.
    pub handle: u64,
    /// Byte offset in the export.
    pub offset: u64,
    /// Length in bytes (of the payload for writes, of the data for reads).
    pub length: u32,
}

impl Request {
    /// Decodes a 28-byte request header (magic must be the request magic).
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut c = Cursor::new(bytes);
        let magic = c.u32()?;
        if magic != REQUEST_MAGIC {
            return Err(ProtocolError::BadMagic {
                got: u64::from(magic),
                expected: u64::from(REQUEST_MAGIC),
            });
        }
        let flags = c.u16()?;
        let command = c.u16()?;
        let handle = c.u64()?;
        let offset = c.u64()?;
        let length = c.u32()?;
        c.finish()?;
        Ok(Request {
            flags,
            command,
            handle,
            offset,
            length,
        })
    }

    /// Encodes the header (used by tests and clients).
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut out = Vec::with_capacity(REQUEST_LEN);
        out.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.command.to_be_bytes());
        out.extend_from_slice(&self.handle.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        let mut arr = [0u8; REQUEST_LEN];
        for (dst, src) in arr.iter_mut().zip(out) {
            *dst = src;
        }
        arr
    }

    /// Whether the FUA flag is set.
    pub fn fua(&self) -> bool {
        self.flags & CMD_FLAG_FUA != 0
    }
}

/// A simple reply header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleReply {
    /// NBD error code (0 = success).
    pub error: u32,
    /// The request's handle.
    pub handle: u64,
}

impl SimpleReply {
    /// Encodes the 16-byte header.
    pub fn encode(&self) -> [u8; SIMPLE_REPLY_LEN] {
        let mut arr = [0u8; SIMPLE_REPLY_LEN];
        let parts = SIMPLE_REPLY_MAGIC
            .to_be_bytes()
            .into_iter()
            .chain(self.error.to_be_bytes())
            .chain(self.handle.to_be_bytes());
        for (dst, src) in arr.iter_mut().zip(parts) {
            *dst = src;
        }
        arr
    }

    /// Decodes a 16-byte header (used by tests and clients).
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut c = Cursor::new(bytes);
        let magic = c.u32()?;
        if magic != SIMPLE_REPLY_MAGIC {
            return Err(ProtocolError::BadMagic {
                got: u64::from(magic),
                expected: u64::from(SIMPLE_REPLY_MAGIC),
            });
        }
        let error = c.u32()?;
        let handle = c.u64()?;
        c.finish()?;
        Ok(SimpleReply { error, handle })
    }
}

/// Human-readable name of a command code, for logs.
pub fn command_name(command: u16) -> &'static str {
    match command {
        CMD_READ => "READ",
        CMD_WRITE => "WRITE",
        CMD_DISC => "DISC",
        CMD_FLUSH => "FLUSH",
        CMD_TRIM => "TRIM",
        CMD_WRITE_ZEROES => "WRITE_ZEROES",
        _ => "UNKNOWN",
    }
}

/// Display helper for a request in logs.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}(handle={:#x}, offset={}, length={}, flags={:#x})",
            command_name(self.command),
            self.handle,
            self.offset,
            self.length,
            self.flags
        )
    }
}
