//! Small helpers for workloads and reports: a seeded PRNG and percentiles.

/// SplitMix64: a tiny, seeded, reproducible generator for workload offsets and payloads.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `len` random bytes: the little-endian bytes of successive [`Rng::next_u64`] words,
    /// the last one cut short. Written in place, word by word (this feeds the demo's and the
    /// bench's writers, gigabytes a second, on the cores the measured code needs).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut words = out.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            let last = self.next_u64().to_le_bytes();
            for (b, r) in rest.iter_mut().zip(last) {
                *b = r;
            }
        }
        out
    }
}

/// The `p`-th percentile (0..=100) of `samples` by nearest rank; sorts in place. 0 when empty.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, samples.len()) - 1;
    samples.get(idx).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(percentile(&mut [], 50.0), 0.0);
        let mut one = [7.0];
        assert_eq!(percentile(&mut one, 1.0), 7.0);
    }

    #[test]
    fn rng_is_reproducible_and_bounded() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_eq!(a.bytes(13).len(), 13);
    }

    /// The bytes are the words' little-endian bytes in order, the last word cut short
    /// (oracle: concatenating `next_u64` words from a generator with the same seed).
    #[test]
    fn bytes_are_the_words_in_order() {
        for len in [0usize, 1, 7, 8, 9, 4096, 4101] {
            let mut words = Rng::new(len as u64);
            let mut want = Vec::new();
            while want.len() < len {
                want.extend_from_slice(&words.next_u64().to_le_bytes());
            }
            want.truncate(len);
            let mut rng = Rng::new(len as u64);
            assert_eq!(rng.bytes(len), want);
            // Both consumed the same number of words.
            assert_eq!(rng.next_u64(), words.next_u64());
        }
    }
}
