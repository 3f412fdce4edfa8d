//! A small deterministic random number generator for procedural layouts.
//!
//! Layouts must come out the same on every machine and in every future version, so the
//! generator is written here (SplitMix64, a public-domain algorithm by Sebastiano Vigna) rather
//! than taken from a crate whose output may change between releases.

/// SplitMix64: fast, tiny, and good enough for placing platforms and buildings.
#[derive(Debug, Clone)]
pub struct LayoutRng {
    state: u64,
}

impl LayoutRng {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one named part of a layout: the same `seed`, `label` and `coords` always
    /// give the same stream, and different labels give unrelated streams.
    pub fn derive(seed: u64, label: &str, coords: &[i64]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("sanctuary layout rng v1");
        hasher.update(&seed.to_le_bytes());
        hasher.update(&(label.len() as u64).to_le_bytes());
        hasher.update(label.as_bytes());
        for coord in coords {
            hasher.update(&coord.to_le_bytes());
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        Self::new(u64::from_le_bytes(first))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`, built from the top 24 bits so that every value is exact.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A float in `[low, high)`.
    pub fn range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit()
    }

    /// An index in `0..len`; `len` must not be zero.
    pub fn index(&mut self, len: usize) -> usize {
        debug_assert!(len > 0, "index() needs a non-empty range");
        // Multiply-shift keeps the bias below 2^-32 for any realistic length.
        (((self.next_u64() >> 32) * len as u64) >> 32) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_first_values() {
        // The reference SplitMix64 output for seed 1234567, from the algorithm's C source.
        let mut rng = LayoutRng::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut rng = LayoutRng::new(9);
        for _ in 0..10_000 {
            let x = rng.range(-3.0, 5.0);
            assert!((-3.0..5.0).contains(&x));
            assert!(rng.index(7) < 7);
        }
    }

    #[test]
    fn derived_streams_differ_by_label_and_coords() {
        let a = LayoutRng::derive(1, "city", &[0, 0]).next_u64();
        let b = LayoutRng::derive(1, "city", &[0, 1]).next_u64();
        let c = LayoutRng::derive(1, "lobby", &[0, 0]).next_u64();
        let again = LayoutRng::derive(1, "city", &[0, 0]).next_u64();
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
