//! Shared pieces of the crash-state and soak harnesses: a seeded IO workload and a reference model
//! of an image that keeps its state after every operation, so a recovered image can be checked
//! against "every acknowledged write, plus possibly some of the unacknowledged ones" and a replica
//! against "some prefix of the acknowledged order".

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One IO of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Write `data` at `offset`.
    Write {
        /// Byte offset.
        offset: u64,
        /// Bytes written.
        data: Bytes,
    },
    /// Zero `len` bytes at `offset`.
    Discard {
        /// Byte offset.
        offset: u64,
        /// Length in bytes.
        len: u64,
    },
    /// Fill `len` bytes at `offset` with repetitions of `pattern`.
    WriteSame {
        /// Byte offset.
        offset: u64,
        /// Length in bytes (a multiple of the pattern length).
        len: u64,
        /// The repeated pattern.
        pattern: Bytes,
    },
    /// A flush (changes no data).
    Flush,
}

impl Op {
    /// The same op moved `by` bytes further into the image (for per-thread stripes).
    pub fn shifted(self, by: u64) -> Op {
        match self {
            Op::Write { offset, data } => Op::Write {
                offset: offset.saturating_add(by),
                data,
            },
            Op::Discard { offset, len } => Op::Discard {
                offset: offset.saturating_add(by),
                len,
            },
            Op::WriteSame {
                offset,
                len,
                pattern,
            } => Op::WriteSame {
                offset: offset.saturating_add(by),
                len,
                pattern,
            },
            Op::Flush => Op::Flush,
        }
    }
}

/// Generates `count` seeded operations for an image of `size` bytes (`size` ≥ 1024). Writes are
/// up to `max_write` bytes long, filled with a per-operation byte pattern that is distinct from
/// the pattern of the operations around it, so a block tells which operation wrote it.
pub fn gen_ops(seed: u64, count: usize, size: u64, max_write: u64) -> Vec<Op> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let max_write = max_write.clamp(1, size);
    (0..count)
        .map(|i| {
            let len = rng.gen_range(1..=max_write);
            let offset = rng.gen_range(0..=size - len);
            // Op index in the first byte of each 4-byte group: never zero, so a write is
            // distinguishable from a discard.
            let tag = u8::try_from(i % 250).unwrap_or(0).wrapping_add(1);
            match rng.gen_range(0..20u8) {
                0..=11 => {
                    let salt: u8 = rng.gen();
                    let data: Vec<u8> = (0..len)
                        .map(|b| if b % 4 == 0 { tag } else { salt ^ (b as u8) })
                        .collect();
                    Op::Write {
                        offset,
                        data: Bytes::from(data),
                    }
                }
                12..=14 => Op::Discard { offset, len },
                15..=16 => {
                    let pattern = Bytes::from(vec![tag, rng.gen(), rng.gen(), 0xa5]);
                    let len = (len / 4).max(1) * 4;
                    let offset = offset.min(size - len);
                    Op::WriteSame {
                        offset,
                        len,
                        pattern,
                    }
                }
                _ => Op::Flush,
            }
        })
        .collect()
}

/// Applies `op` to a byte-vector image (out-of-range parts are ignored; generated ops are in
/// range).
pub fn apply(image: &mut [u8], op: &Op) {
    let range = |offset: u64, len: u64| {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        start..end
    };
    match op {
        Op::Write { offset, data } => {
            if let Some(dst) = image.get_mut(range(*offset, data.len() as u64)) {
                dst.copy_from_slice(data);
            }
        }
        Op::Discard { offset, len } => {
            if let Some(dst) = image.get_mut(range(*offset, *len)) {
                dst.fill(0);
            }
        }
        Op::WriteSame {
            offset,
            len,
            pattern,
        } => {
            if let Some(dst) = image.get_mut(range(*offset, *len)) {
                for (d, s) in dst.iter_mut().zip(pattern.iter().cycle()) {
                    *d = *s;
                }
            }
        }
        Op::Flush => {}
    }
}

/// The reference model: the image state after each of a sequence of operations.
#[derive(Debug, Clone)]
pub struct RefModel {
    states: Vec<Vec<u8>>,
}

impl RefModel {
    /// States of a zero-filled image of `size` bytes after each prefix of `ops`
    /// (`state(0)` is all zeros, `state(i)` follows `ops[..i]`).
    pub fn new(size: usize, ops: &[Op]) -> RefModel {
        let mut states = Vec::with_capacity(ops.len() + 1);
        let mut cur = vec![0u8; size];
        states.push(cur.clone());
        for op in ops {
            apply(&mut cur, op);
            states.push(cur.clone());
        }
        RefModel { states }
    }

    /// The state after the first `n` operations (clamped to the last state).
    pub fn state(&self, n: usize) -> &[u8] {
        let last = self.states.len().saturating_sub(1);
        self.states.get(n.min(last)).map_or(&[], Vec::as_slice)
    }

    /// Number of operations modelled.
    pub fn ops(&self) -> usize {
        self.states.len().saturating_sub(1)
    }

    /// Checks a recovered image: every byte equals its value after the `acked` acknowledged
    /// operations, or its value after one of the later (unacknowledged) operations up to
    /// `attempted` — the per-block "maybe" of an operation whose outcome the caller never
    /// learned. Returns the first offending byte offset and the allowed values there.
    pub fn check_recovered(
        &self,
        got: &[u8],
        acked: usize,
        attempted: usize,
    ) -> Result<(), String> {
        let base = self.state(acked);
        if got.len() != base.len() {
            return Err(format!(
                "image is {} bytes, expected {}",
                got.len(),
                base.len()
            ));
        }
        let later: Vec<&[u8]> = (acked + 1..=attempted.min(self.ops()))
            .map(|i| self.state(i))
            .collect();
        for (i, (g, b)) in got.iter().zip(base.iter()).enumerate() {
            if g == b || later.iter().any(|s| s.get(i) == Some(g)) {
                continue;
            }
            let allowed: Vec<u8> = std::iter::once(*b)
                .chain(later.iter().filter_map(|s| s.get(i).copied()))
                .collect();
            return Err(format!(
                "byte {i} is {g:#04x}, allowed {allowed:02x?} (acked {acked} of {attempted} attempted ops)"
            ));
        }
        Ok(())
    }

    /// The largest `n ≤ upto` such that `got` equals the state after `n` operations (write-order
    /// fidelity: a replica must equal some prefix of the primary's order).
    pub fn prefix_of(&self, got: &[u8], upto: usize) -> Option<usize> {
        (0..=upto.min(self.ops()))
            .rev()
            .find(|&n| self.state(n) == got)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn model_follows_hand_computed_states() {
        let ops = vec![
            Op::Write {
                offset: 2,
                data: Bytes::from_static(&[1, 2, 3]),
            },
            Op::WriteSame {
                offset: 0,
                len: 4,
                pattern: Bytes::from_static(&[9, 8]),
            },
            Op::Discard { offset: 1, len: 2 },
        ];
        let m = RefModel::new(6, &ops);
        assert_eq!(m.state(1), &[0, 0, 1, 2, 3, 0]);
        assert_eq!(m.state(2), &[9, 8, 9, 8, 3, 0]);
        assert_eq!(m.state(3), &[9, 0, 0, 8, 3, 0]);
        assert!(m.check_recovered(&[9, 8, 9, 8, 3, 0], 2, 2).is_ok());
        // Byte 1 zeroed by the unacknowledged discard, byte 2 not: allowed (per-block maybe).
        assert!(m.check_recovered(&[9, 0, 9, 8, 3, 0], 2, 3).is_ok());
        assert!(m.check_recovered(&[9, 0, 9, 8, 3, 0], 2, 2).is_err());
        assert!(m.check_recovered(&[0, 0, 1, 2, 3, 0], 2, 3).is_err());
        assert_eq!(m.prefix_of(&[0, 0, 1, 2, 3, 0], 3), Some(1));
        assert_eq!(m.prefix_of(&[9, 0, 9, 8, 3, 0], 3), None);
    }
}
