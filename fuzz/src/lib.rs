//! Shared input shapes for the fuzz targets: a data object described as a list of pieces
//! (valid entries, padding, garbage, damaged entries), so the fuzzer spends most of its time on
//! objects that look like real ones instead of on inputs rejected at the first byte.

use arbitrary::Arbitrary;
use journal_core::entry::Entry;

/// Objects built from pieces are capped at this many bytes (keeps executions fast).
pub const MAX_OBJECT_BYTES: usize = 64 * 1024;

/// An entry as the fuzzer describes it: small tag / entry tids so duplicates, stale tags and
/// sequence gaps are common.
#[derive(Arbitrary, Debug, Clone)]
pub struct EntrySpec {
    /// Tag tid (0..=255).
    pub tag: u8,
    /// Entry tid (0..=255).
    pub tid: u8,
    /// Payload.
    pub data: Vec<u8>,
}

impl EntrySpec {
    /// The framed entry.
    pub fn framed(&self) -> Vec<u8> {
        Entry::new(u64::from(self.tag), u64::from(self.tid), self.data.clone())
            .to_bytes()
            .to_vec()
    }
}

/// One piece of a data object.
#[derive(Arbitrary, Debug, Clone)]
pub enum Piece {
    /// A valid entry.
    Entry(EntrySpec),
    /// `n % 64` zero bytes.
    Zeros(u8),
    /// Zero bytes up to the next 8-byte boundary of the absolute offset.
    AlignPad,
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// An entry with one bit flipped (bit index taken modulo the entry's size in bits).
    Flip(EntrySpec, u16),
    /// The first `keep` bytes of an entry (modulo its size).
    Cut(EntrySpec, u16),
    /// An entry whose data length field is replaced (CRC left as it was).
    Len(EntrySpec, u32),
    /// An entry with its version byte replaced.
    Version(EntrySpec, u8),
}

/// Builds object bytes from `pieces`; `base` is the absolute offset of the first byte (for
/// alignment). Stops adding pieces at [`MAX_OBJECT_BYTES`].
pub fn build_object(pieces: &[Piece], base: u64) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for p in pieces {
        if out.len() >= MAX_OBJECT_BYTES {
            break;
        }
        match p {
            Piece::Entry(e) => out.extend_from_slice(&e.framed()),
            Piece::Zeros(n) => out.resize(out.len() + usize::from(*n % 64), 0),
            Piece::AlignPad => {
                let abs = base.wrapping_add(out.len() as u64);
                let pad = ((8 - abs % 8) % 8) as usize;
                out.resize(out.len() + pad, 0);
            }
            Piece::Raw(b) => out.extend_from_slice(b),
            Piece::Flip(e, bit) => {
                let mut f = e.framed();
                let bits = f.len() * 8;
                let bit = usize::from(*bit) % bits;
                if let Some(byte) = f.get_mut(bit / 8) {
                    *byte ^= 1 << (bit % 8);
                }
                out.extend_from_slice(&f);
            }
            Piece::Cut(e, keep) => {
                let f = e.framed();
                let keep = usize::from(*keep) % f.len();
                out.extend_from_slice(f.get(..keep).unwrap_or_default());
            }
            Piece::Len(e, len) => {
                let mut f = e.framed();
                if let Some(field) = f.get_mut(25..29) {
                    field.copy_from_slice(&len.to_le_bytes());
                }
                out.extend_from_slice(&f);
            }
            Piece::Version(e, v) => {
                let mut f = e.framed();
                if let Some(b) = f.get_mut(8) {
                    *b = *v;
                }
                out.extend_from_slice(&f);
            }
        }
    }
    out.truncate(MAX_OBJECT_BYTES);
    out
}

/// Object bytes either taken raw from the fuzzer or built from pieces.
#[derive(Arbitrary, Debug, Clone)]
pub enum ObjectBytes {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// Built with [`build_object`].
    Pieces(Vec<Piece>),
}

impl ObjectBytes {
    /// The bytes, for an object whose first byte sits at `base`.
    pub fn bytes(&self, base: u64) -> Vec<u8> {
        match self {
            ObjectBytes::Raw(b) => {
                let mut b = b.clone();
                b.truncate(MAX_OBJECT_BYTES);
                b
            }
            ObjectBytes::Pieces(p) => build_object(p, base),
        }
    }
}

/// Small damage applied to a valid encoding: byte XORs and an optional cut.
#[derive(Arbitrary, Debug, Clone)]
pub struct Damage {
    /// (position modulo the length, value XORed into that byte).
    pub xors: Vec<(u16, u8)>,
    /// Keep only this many bytes (modulo the length + 1).
    pub cut: Option<u16>,
}

impl Damage {
    /// Applies the damage to `bytes`.
    pub fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        if !bytes.is_empty() {
            for &(pos, x) in &self.xors {
                let i = usize::from(pos) % bytes.len();
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= x;
                }
            }
        }
        if let Some(cut) = self.cut {
            let keep = usize::from(cut) % (bytes.len() + 1);
            bytes.truncate(keep);
        }
        bytes
    }
}
