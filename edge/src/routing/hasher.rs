//! A fast hasher for the router's tables: their keys are short path segments and host
//! names, where SipHash dominated lookup time. Seeded per router from std's random keys,
//! so request text cannot be chosen offline to collide.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
const FOLD: u64 = 0xA076_1D64_78BD_642F;

/// Builds [`SegmentHasher`]s sharing one random seed.
#[derive(Debug, Clone)]
pub(super) struct SegmentHash {
    seed: u64,
}

impl Default for SegmentHash {
    fn default() -> Self {
        SegmentHash {
            seed: RandomState::new().hash_one(0x5EED_u64),
        }
    }
}

impl SegmentHash {
    /// Hash of the edge labelled `key` out of node `parent`.
    pub(super) fn hash_edge(&self, parent: u32, key: &[u8]) -> u64 {
        let mut hasher = self.build_hasher();
        hasher.mix(u64::from(parent) | ((key.len() as u64) << 32));
        hasher.write(key);
        hasher.finish()
    }
}

impl BuildHasher for SegmentHash {
    type Hasher = SegmentHasher;

    fn build_hasher(&self) -> SegmentHasher {
        SegmentHasher { state: self.seed }
    }
}

/// Word-at-a-time multiply-rotate hashing with a folded-multiply finish (so that both the
/// high bits, used as tags, and the low bits, used as positions, are well mixed).
#[derive(Debug, Clone)]
pub(super) struct SegmentHasher {
    state: u64,
}

impl SegmentHasher {
    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for SegmentHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(word) ^ ((tail.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte) | 0x100);
    }

    fn finish(&self) -> u64 {
        let wide = u128::from(self.state) * u128::from(FOLD);
        (wide as u64) ^ ((wide >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_text_hashes_equal_and_neighbours_differ() {
        let build = SegmentHash::default();
        assert_eq!(build.hash_one("orders"), build.hash_one("orders"));
        assert_ne!(build.hash_one("orders1"), build.hash_one("orders2"));
        assert_ne!(build.hash_one("a"), build.hash_one("a\0"));
        assert_ne!(build.hash_one("12345678"), build.hash_one("12345678\0"));
        assert_ne!(build.hash_edge(1, b"v1"), build.hash_edge(2, b"v1"));
        assert_eq!(build.hash_edge(1, b"v1"), build.hash_edge(1, b"v1"));
    }
}
