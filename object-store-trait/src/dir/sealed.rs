//! Fixed-layout little-endian records sealed with a CRC32C of their bytes: the size records of
//! sized data files, and the file and segment headers of log-mode ones.

/// Writes `fields` back to back from the start of `out`, then the CRC32C of those bytes right
/// after them. Bytes that do not fit are dropped (callers size `out` for their layout).
pub(super) fn seal(out: &mut [u8], fields: &[&[u8]]) {
    let mut at = 0;
    for field in fields {
        if let Some(dst) = out.get_mut(at..at + field.len()) {
            dst.copy_from_slice(field);
        }
        at += field.len();
    }
    let crc = crc32c::crc32c(out.get(..at).unwrap_or_default());
    if let Some(dst) = out.get_mut(at..at + 4) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Whether `bytes` starts with `magic` and holds the CRC32C of its first `len` bytes right
/// after them.
pub(super) fn intact(bytes: &[u8], magic: &[u8], len: usize) -> bool {
    bytes.get(..magic.len()) == Some(magic)
        && bytes
            .get(..len)
            .is_some_and(|sealed| Some(crc32c::crc32c(sealed)) == u32_at(bytes, len))
}

/// The little-endian `u64` at `at`, if `bytes` holds it.
pub(super) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The little-endian `u32` at `at`, if `bytes` holds it.
pub(super) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
