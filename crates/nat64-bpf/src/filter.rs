//! The miss filter (`flow_filter` in `bpf/nat64_xlat.h`): one bit per hash
//! slot of each flow map's keys, set while an installed key hashes there.
//! The program tests the bit before it looks a packet up, so a packet of no
//! installed flow (every new flow's first packets, a scan) costs a read of a
//! 256 KiB bit array that stays in cache instead of a hash-bucket read that
//! misses it in a large table.
//!
//! Only [`crate::FastPath`] writes it, and it sets a slot's bit before the
//! first key of that slot goes into its map and clears it after the last one
//! left: the program may see a bit set for no entry (it then looks up and
//! misses, as before), never an entry without its bit.

use aya::maps::{Array, MapData, MapError};

/// `NAT64_FILTER_BITS_LOG2`: slots per direction, as a power of two.
pub(crate) const BITS_LOG2: u32 = 20;
/// `NAT64_FILTER_WORDS`: 64-bit words per direction.
pub(crate) const WORDS: u32 = 1 << (BITS_LOG2 - 6);
/// `NAT64_FILTER_MUL`.
const MUL: u32 = 0x9e37_79b1;

/// Which flow map a key belongs to: its half of the filter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Half {
    /// `flows_6to4`: words `[0, WORDS)`.
    SixToFour,
    /// `flows_4to6`: words `[WORDS, 2 * WORDS)`.
    FourToSix,
}

/// The slot of a key (its bytes as the map stores them), as the program
/// computes it: `h = (h ^ w) * MUL` over the key's 32-bit words read in host
/// byte order, MurmurHash3's finalizer ([`fmix32`]), then the top
/// [`BITS_LOG2`] bits.
pub(crate) fn slot(key: &[u8]) -> u32 {
    debug_assert_eq!(key.len() % 4, 0, "keys are whole words");
    let h = key.chunks_exact(4).fold(0u32, |h, w| {
        (h ^ u32::from_ne_bytes([w[0], w[1], w[2], w[3]])).wrapping_mul(MUL)
    });
    fmix32(h) >> (32 - BITS_LOG2)
}

/// MurmurHash3's 32-bit finalizer: every input bit reaches the top bits.
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The filter and how many installed keys each slot holds.
pub(crate) struct MissFilter {
    map: Array<MapData, u64>,
    /// The map's words as last written (both halves).
    words: Vec<u64>,
    /// Installed keys per slot (index: the slot's bit number over both
    /// halves), for the slots that have any.
    keys: foldhash::HashMap<u32, u32>,
}

impl MissFilter {
    /// Over a freshly created (all-zero) `flow_filter`.
    pub(crate) fn new(map: Array<MapData, u64>) -> Self {
        MissFilter {
            map,
            words: vec![0; 2 * WORDS as usize],
            keys: foldhash::HashMap::default(),
        }
    }

    fn bit(half: Half, key: &[u8]) -> u32 {
        let base = match half {
            Half::SixToFour => 0,
            Half::FourToSix => WORDS * 64,
        };
        base + slot(key)
    }

    fn write(&mut self, word: u32) -> Result<(), MapError> {
        self.map.set(word, self.words[word as usize], 0)
    }

    /// Counts a key about to be installed; sets its slot's bit in the map
    /// when it is the slot's first. On an error nothing changed.
    pub(crate) fn add(&mut self, half: Half, key: &[u8]) -> Result<(), MapError> {
        let bit = Self::bit(half, key);
        let n = self.keys.entry(bit).or_insert(0);
        *n += 1;
        if *n > 1 {
            return Ok(());
        }
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        self.words[word as usize] |= mask;
        self.write(word).inspect_err(|_| {
            self.words[word as usize] &= !mask;
            self.keys.remove(&bit);
        })
    }

    /// Uncounts a key that left its map (or was never installed after
    /// [`MissFilter::add`]); clears the slot's bit when it was the last.
    /// A failed write leaves the bit set: a false "maybe", which costs the
    /// program one lookup, and the next key of the slot writes it again.
    pub(crate) fn sub(&mut self, half: Half, key: &[u8]) {
        let bit = Self::bit(half, key);
        let Some(n) = self.keys.get_mut(&bit) else {
            debug_assert!(false, "uncounting a key that was not counted");
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        self.keys.remove(&bit);
        let word = bit / 64;
        self.words[word as usize] &= !(1u64 << (bit % 64));
        let _ = self.write(word);
    }

    /// Bits set in the map, per half (6 → 4, 4 → 6): as written, read back.
    pub(crate) fn bits_set(&self) -> Result<(u32, u32), MapError> {
        let mut n = (0, 0);
        for w in 0..2 * WORDS {
            let ones = self.map.get(&w, 0)?.count_ones();
            if w < WORDS {
                n.0 += ones;
            } else {
                n.1 += ones;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// The hash written out by hand for a two-word key (little-endian host
    /// reads, as on x86-64 and arm64 Linux), against [`slot`].
    #[test]
    #[cfg(target_endian = "little")]
    fn slot_is_the_documented_hash() {
        let key = [1u8, 0, 0, 0, 0, 0, 0, 0x80];
        // h = (0 ^ 1) * MUL = 0x9e3779b1
        // h = (0x9e3779b1 ^ 0x80000000) * MUL mod 2^32
        let h1: u32 = 0x9e37_79b1;
        let h2 = ((h1 ^ 0x8000_0000) as u64 * 0x9e37_79b1u64) as u32;
        // fmix32, step by step.
        let mut h = h2 ^ (h2 >> 16);
        h = (h as u64 * 0x85eb_ca6b) as u32;
        h ^= h >> 13;
        h = (h as u64 * 0xc2b2_ae35) as u32;
        h ^= h >> 16;
        assert_eq!(slot(&key), h >> 12);
        assert!(slot(&key) < 1 << BITS_LOG2);
    }

    /// Keys that differ in one byte land in different slots (the spread
    /// the filter's false-positive rate rests on): 10,000 flows of one
    /// client differing in their source port fill close to 10,000 slots.
    #[test]
    fn nearby_keys_spread() {
        let mut slots = std::collections::HashSet::new();
        for port in 0..10_000u16 {
            let mut key = [0u8; 40];
            key[..16]
                .copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            key[16..32]
                .copy_from_slice(&[0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 2]);
            key[32..34].copy_from_slice(&port.to_be_bytes());
            key[34..36].copy_from_slice(&80u16.to_be_bytes());
            key[36] = 6;
            slots.insert(slot(&key));
        }
        // Random placement would give ~9,952 distinct slots of 2^20.
        assert!(slots.len() > 9_900, "{} distinct slots", slots.len());
    }
}
