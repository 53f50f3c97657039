//! Object naming and the splay / object-set arithmetic.
//!
//! A journal is one header object, `journal.<id>`, plus data objects named
//! `journal_data.<header pool id>.<id>.<object number>` (plain decimal, no padding). The data
//! objects form *object sets* of `splay_width` (W) consecutive numbers: set `s` holds objects
//! `s*W ..= s*W + W - 1`. An entry with entry tid `e` always goes to splay offset `e mod W` of the
//! writer's current set. The object *number* of an entry cannot be computed from its tids (a set
//! may be closed early and its backlog moved on), only its splay offset can.
//!
//! ```
//! use journal_core::layout::{data_oid, Layout};
//!
//! let layout = Layout::new(24, 4)?;
//! assert_eq!(layout.soft_limit(), 16 << 20);
//! assert_eq!(layout.splay_offset(6), 2);
//! assert_eq!(layout.object_number(3, 2), 14);
//! assert_eq!(layout.object_set(14), 3);
//! assert_eq!(data_oid(1, "101b91743424", 14), "journal_data.1.101b91743424.14");
//! # Ok::<(), journal_core::layout::LayoutError>(())
//! ```

use crate::entry::ENTRY_OVERHEAD;

/// Smallest order Ceph's client library accepts (4 KiB objects).
pub const MIN_ORDER: u8 = 12;
/// Largest order Ceph's client library accepts (64 MiB objects).
pub const MAX_ORDER: u8 = 26;
/// librbd's default order (`rbd_journal_order`, 16 MiB objects).
pub const DEFAULT_ORDER: u8 = 24;
/// librbd's default splay width (`rbd_journal_splay_width`).
pub const DEFAULT_SPLAY_WIDTH: u8 = 4;
/// librbd's default maximum entry payload (`rbd_journal_max_payload_bytes`, 16 KiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 16384;

/// Prefix of the header object name.
pub const HEADER_OID_PREFIX: &str = "journal.";
/// Prefix of every data object name (before the pool id).
pub const DATA_OID_PREFIX: &str = "journal_data.";

// The smallest object must hold at least one entry with a non-empty payload.
const _: () = assert!((1usize << MIN_ORDER) > ENTRY_OVERHEAD);
// The largest soft limit fits the entry's u32 data length and a 32-bit usize.
const _: () = assert!((1u64 << MAX_ORDER) < u32::MAX as u64);
const _: () = assert!(MIN_ORDER <= DEFAULT_ORDER && DEFAULT_ORDER <= MAX_ORDER);
const _: () = assert!(DEFAULT_SPLAY_WIDTH >= 1);
// The default payload bound fits in an object of the default order.
const _: () = assert!(DEFAULT_MAX_PAYLOAD_BYTES + ENTRY_OVERHEAD <= (1usize << DEFAULT_ORDER));

/// Name of the header object of `journal_id`: `journal.<id>`.
pub fn header_oid(journal_id: &str) -> String {
    format!("{HEADER_OID_PREFIX}{journal_id}")
}

/// Common prefix of the data objects: `journal_data.<pool_id>.<id>.`. `pool_id` is the id of the
/// pool holding the **header**, even when the data lives in a separate journal pool.
pub fn data_oid_prefix(pool_id: i64, journal_id: &str) -> String {
    format!("{DATA_OID_PREFIX}{pool_id}.{journal_id}.")
}

/// Name of data object `object_number`: the prefix followed by the decimal number.
pub fn data_oid(pool_id: i64, journal_id: &str, object_number: u64) -> String {
    format!("{}{object_number}", data_oid_prefix(pool_id, journal_id))
}

/// The object number named by `oid` if it is a data object of this journal, `None` otherwise.
///
/// Only the canonical spelling [`data_oid`] produces is accepted: ASCII digits, no sign, no
/// leading zero (except `0` itself), and a value that fits `u64`.
pub fn parse_data_oid(pool_id: i64, journal_id: &str, oid: &str) -> Option<u64> {
    let digits = oid.strip_prefix(&data_oid_prefix(pool_id, journal_id))?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// Why a layout was refused. Mirrors the checks of Ceph's client library (the `journal` object
/// class itself stores whatever it is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// `order` outside `12..=26` (Ceph returns `-EDOM`).
    #[error("journal order {order} outside {MIN_ORDER}..={MAX_ORDER}")]
    OrderOutOfRange {
        /// The order asked for.
        order: u8,
    },
    /// `splay_width` of zero (Ceph returns `-EINVAL`).
    #[error("journal splay width must be at least 1")]
    ZeroSplayWidth,
}

/// The immutable shape of a journal: object size and splay width.
///
/// Arithmetic on object numbers and sets saturates at `u64::MAX`; set numbers in practice are
/// far below `u64::MAX / splay_width`, where every function here is exact and invertible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// log2 of the data-object soft size limit, `12..=26`.
    pub order: u8,
    /// Number of data objects written in parallel (W), at least 1.
    pub splay_width: u8,
}

impl Default for Layout {
    /// librbd's defaults: order 24 (16 MiB objects), splay width 4.
    fn default() -> Self {
        Layout {
            order: DEFAULT_ORDER,
            splay_width: DEFAULT_SPLAY_WIDTH,
        }
    }
}

impl Layout {
    /// A validated layout.
    pub fn new(order: u8, splay_width: u8) -> Result<Layout, LayoutError> {
        if !(MIN_ORDER..=MAX_ORDER).contains(&order) {
            return Err(LayoutError::OrderOutOfRange { order });
        }
        if splay_width == 0 {
            return Err(LayoutError::ZeroSplayWidth);
        }
        Ok(Layout { order, splay_width })
    }

    /// Checks a layout built by hand (for example from header values read off a store).
    pub fn validate(&self) -> Result<(), LayoutError> {
        Layout::new(self.order, self.splay_width).map(drop)
    }

    fn width(&self) -> u64 {
        // A hand-built layout may carry 0; treat it as 1 so nothing divides by zero.
        u64::from(self.splay_width.max(1))
    }

    /// Soft size limit of a data object, `2^order` bytes.
    pub fn soft_limit(&self) -> u64 {
        1u64 << self.order.min(63)
    }

    /// Splay offset of the entry with `entry_tid`: `entry_tid mod W`.
    pub fn splay_offset(&self, entry_tid: u64) -> u8 {
        // The remainder is below W <= 255.
        u8::try_from(entry_tid % self.width()).unwrap_or(u8::MAX)
    }

    /// Object number of splay offset `splay_offset` in object set `set`: `set*W + splay_offset`.
    pub fn object_number(&self, set: u64, splay_offset: u8) -> u64 {
        set.saturating_mul(self.width())
            .saturating_add(u64::from(splay_offset))
    }

    /// Object set holding `object_number`: `object_number div W`.
    pub fn object_set(&self, object_number: u64) -> u64 {
        object_number / self.width()
    }

    /// Splay offset of `object_number`: `object_number mod W`.
    pub fn splay_offset_of_object(&self, object_number: u64) -> u8 {
        u8::try_from(object_number % self.width()).unwrap_or(u8::MAX)
    }

    /// The W object numbers of `set`, in splay-offset order.
    pub fn objects_in_set(&self, set: u64) -> impl Iterator<Item = u64> {
        let layout = *self;
        (0..self.splay_width.max(1)).map(move |o| layout.object_number(set, o))
    }

    /// Largest entry payload a writer may emit: `min(2^order − 33, max_payload_bytes)`, so that
    /// a framed entry never exceeds the soft limit. `max_payload_bytes` is the
    /// `rbd_journal_max_payload_bytes` option ([`DEFAULT_MAX_PAYLOAD_BYTES`] by default).
    pub fn max_payload(&self, max_payload_bytes: usize) -> usize {
        let room = usize::try_from(self.soft_limit())
            .unwrap_or(usize::MAX)
            .saturating_sub(ENTRY_OVERHEAD);
        room.min(max_payload_bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ceph_limits() {
        assert_eq!(
            Layout::new(11, 4),
            Err(LayoutError::OrderOutOfRange { order: 11 })
        );
        assert_eq!(
            Layout::new(27, 4),
            Err(LayoutError::OrderOutOfRange { order: 27 })
        );
        assert_eq!(Layout::new(24, 0), Err(LayoutError::ZeroSplayWidth));
        assert!(Layout::new(12, 1).is_ok());
        assert!(Layout::new(26, 255).is_ok());
        assert_eq!(Layout::default(), Layout::new(24, 4).unwrap());
    }

    #[test]
    fn names_from_the_real_capture() {
        // journal-info.json of the librbd-basic vector.
        assert_eq!(header_oid("101b91743424"), "journal.101b91743424");
        assert_eq!(
            data_oid_prefix(1, "101b91743424"),
            "journal_data.1.101b91743424."
        );
        assert_eq!(
            parse_data_oid(1, "101b91743424", "journal_data.1.101b91743424.17"),
            Some(17)
        );
        for bad in [
            "journal_data.1.101b91743424.",
            "journal_data.1.101b91743424.01",
            "journal_data.1.101b91743424.+1",
            "journal_data.1.101b91743424.1x",
            "journal_data.2.101b91743424.1",
            "journal.101b91743424",
            "journal_data.1.101b91743424.18446744073709551616",
        ] {
            assert_eq!(parse_data_oid(1, "101b91743424", bad), None, "{bad}");
        }
    }

    #[test]
    fn max_payload_is_bounded_by_the_object() {
        let l = Layout::new(12, 4).unwrap();
        assert_eq!(l.max_payload(DEFAULT_MAX_PAYLOAD_BYTES), 4096 - 33);
        let l = Layout::default();
        assert_eq!(l.max_payload(DEFAULT_MAX_PAYLOAD_BYTES), 16384);
    }
}
