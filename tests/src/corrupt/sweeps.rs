//! Exhaustive sweeps over the three-entry base object: every single-bit flip and every
//! truncation length.

use super::{
    base, case, delivered, found, Case, EntryFault, Placed, PlayerEnd, PlayerExpect, ScanExpect,
    HEADER, OVERHEAD,
};

/// Every single-bit flip in each of the three base entries. Rules: a flip in the preamble is
/// rule 3 with [`EntryFault::BadPreamble`], in the version byte [`EntryFault::BadVersion`], in
/// the length field either a length running past the object end (rule 2: partial tail, the
/// scan stops there and hides what follows) or a CRC failure, anywhere else a CRC failure. A
/// failed entry is not padding (its first bytes are never all zero), so it becomes a corrupt
/// range up to the next entry (or the object end) and playback stops there with `Corrupt`.
pub fn bit_flips() -> Vec<Case> {
    let b = base();
    let total = b.bytes.len();
    let mut out = Vec::new();
    for (j, target) in b.placed.iter().enumerate() {
        for i in 0..(target.end - target.start) {
            for bit in 0..8u8 {
                let mut bytes = b.bytes.clone();
                if let Some(byte) = bytes.get_mut(target.start + i) {
                    *byte ^= 1 << bit;
                }
                let before: Vec<&Placed> = b.placed.iter().take(j).collect();
                let others: Vec<&Placed> = b
                    .placed
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != j)
                    .map(|(_, p)| p)
                    .collect();
                let old_len = target.payload.len() as u64;
                let new_len = if (HEADER..HEADER + 4).contains(&i) {
                    old_len ^ (1u64 << (8 * (i - HEADER) + usize::from(bit)))
                } else {
                    old_len
                };
                let avail = (total - target.start) as u64;
                let fault = match i {
                    0..=7 => EntryFault::BadPreamble,
                    8 => EntryFault::BadVersion(1 ^ (1 << bit)),
                    _ if OVERHEAD as u64 + new_len > avail => EntryFault::Truncated {
                        needed: OVERHEAD as u64 + new_len,
                    },
                    _ => EntryFault::Checksum,
                };
                let start = target.start as u64;
                let (scan, end) = if let EntryFault::Truncated { .. } = fault {
                    (
                        ScanExpect {
                            entries: found(&before),
                            corrupt: vec![],
                            partial_tail: true,
                            consumed: start,
                        },
                        PlayerEnd::End,
                    )
                } else {
                    let next = b.placed.get(j + 1).map_or(total, |p| p.start) as u64;
                    (
                        ScanExpect {
                            entries: found(&others),
                            corrupt: vec![start..next],
                            partial_tail: false,
                            consumed: total as u64,
                        },
                        PlayerEnd::Corrupt(start),
                    )
                };
                out.push(case(
                    format!("bitflip/e{j}-byte{i}-bit{bit}"),
                    bytes,
                    scan,
                    vec![(target.start, fault)],
                    PlayerExpect {
                        delivered: delivered(&before),
                        end,
                    },
                ));
            }
        }
    }
    out
}

/// The base object cut at every length 0..=end. Rules 1 and 2: the complete entries survive;
/// a cut inside an entry is a partial tail (not an error) and the decode error at its start is
/// `Truncated` needing 25 (fixed header), 29 (length field) or 33 + length bytes.
pub fn truncations() -> Vec<Case> {
    let b = base();
    let mut out = Vec::new();
    for cut in 0..=b.bytes.len() {
        let complete: Vec<&Placed> = b.placed.iter().filter(|p| p.end <= cut).collect();
        let cut_entry = b.placed.iter().find(|p| p.start < cut && cut < p.end);
        let (consumed, partial, faults, class) = match cut_entry {
            None => (cut as u64, false, vec![], "boundary"),
            Some(p) => {
                let have = cut - p.start;
                let (needed, class) = if have < 8 {
                    (HEADER as u64, "preamble")
                } else if have < HEADER {
                    (HEADER as u64, "header")
                } else if have < HEADER + 4 {
                    ((HEADER + 4) as u64, "length")
                } else if have < p.end - p.start - 4 {
                    ((p.end - p.start) as u64, "data")
                } else {
                    ((p.end - p.start) as u64, "crc")
                };
                (
                    p.start as u64,
                    true,
                    vec![(p.start, EntryFault::Truncated { needed })],
                    class,
                )
            }
        };
        out.push(case(
            format!("truncate/{class}-at{cut}"),
            b.bytes.get(..cut).unwrap_or_default().to_vec(),
            ScanExpect {
                entries: found(&complete),
                corrupt: vec![],
                partial_tail: partial,
                consumed,
            },
            faults,
            PlayerExpect {
                delivered: delivered(&complete),
                end: PlayerEnd::End,
            },
        ));
    }
    out
}
