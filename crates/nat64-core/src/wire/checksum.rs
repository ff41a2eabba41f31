//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are kept as `u32` accumulators of 16-bit one's-complement words and
//! folded once at the end. [`adjust`] implements RFC 1624 eqn. 3,
//! `HC' = ~(~HC + ~m + m')`, generalised to whole header sums so a translator
//! can swap an IPv6 pseudo-header for an IPv4 one in a single step.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum (big-endian 16-bit words;
/// an odd trailing byte is padded with zero).
#[inline]
pub fn accumulate(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    // Sum in u64 to defer carries, then fold.
    let mut wide: u64 = acc as u64;
    for c in &mut chunks {
        wide += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = chunks.remainder() {
        wide += (*b as u64) << 8;
    }
    while wide >> 32 != 0 {
        wide = (wide & 0xffff_ffff) + (wide >> 32);
    }
    acc = wide as u32;
    acc
}

/// Folds a 32-bit accumulator to 16 bits (one's complement addition).
#[inline]
pub fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum of `data` (one's complement of the one's-complement sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// One's-complement sum of the IPv4 pseudo-header (RFC 768 / RFC 793).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc + proto as u32 + len as u32
}

/// One's-complement sum of the IPv6 pseudo-header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc + (len >> 16) + (len & 0xffff) + next_header as u32
}

/// Sum of the two addresses only (no protocol / length), for address swaps
/// where length and protocol are unchanged.
#[inline]
pub fn addr_sum_v4(src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
    accumulate(accumulate(0, &src.octets()), &dst.octets())
}

/// Sum of two IPv6 addresses.
#[inline]
pub fn addr_sum_v6(src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
    accumulate(accumulate(0, &src.octets()), &dst.octets())
}

/// RFC 1624 eqn. 3: given the checksum field `hc` of data whose words summing
/// to `old` were replaced by words summing to `new`, returns the new checksum
/// field. `old`/`new` are unfolded accumulators.
#[inline]
pub fn adjust(hc: u16, old: u32, new: u32) -> u16 {
    // ~HC + ~m + m'
    let acc = (!hc) as u32 + (!fold(old)) as u32 + fold(new) as u32;
    !fold(acc)
}

/// RFC 1624 for a *partial* checksum field (the folded, not complemented,
/// pseudo-header sum that a TUN with `VIRTIO_NET_HDR_F_NEEDS_CSUM` hands
/// over): `P' = P + ~m + m'`.
#[inline]
pub fn adjust_partial(p: u16, old: u32, new: u32) -> u16 {
    fold(p as u32 + (!fold(old)) as u32 + fold(new) as u32)
}

/// RFC 1624 update for a single 16-bit word change.
#[inline]
pub fn adjust_word(hc: u16, old: u16, new: u16) -> u16 {
    adjust(hc, old as u32, new as u32)
}

#[cfg(test)]
mod test {
    use super::*;

    // RFC 1071 §3 worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
    #[test]
    fn rfc1071_example_sum() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(accumulate(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    // RFC 1624 §4 example: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000.
    #[test]
    fn rfc1624_section4_example() {
        assert_eq!(adjust_word(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn adjust_matches_recompute() {
        let mut data = [0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01];
        let before = checksum(&data);
        let old = u16::from_be_bytes([data[4], data[5]]);
        data[4] = 0xab;
        data[5] = 0xcd;
        let after = adjust_word(before, old, 0xabcd);
        assert_eq!(after, checksum(&data));
    }
}
