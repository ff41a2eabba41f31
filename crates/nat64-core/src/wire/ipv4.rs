//! IPv4 header view (RFC 791).

use super::{checksum, WireError};
use core::net::Ipv4Addr;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Byte offset of the checksum field (for callers patching raw buffers).
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// Option type: end of option list.
pub const OPT_EOL: u8 = 0;
/// Option type: no operation.
pub const OPT_NOP: u8 = 1;
/// Option type: loose source and record route.
pub const OPT_LSRR: u8 = 0x83;
/// Option type: strict source and record route.
pub const OPT_SSRR: u8 = 0x89;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic on short buffers.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps and validates: version 4, IHL ≥ 5, header within the buffer,
    /// total length ≥ header length and ≤ buffer length. Trailing bytes past
    /// the total length (link padding) are allowed and ignored.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Packet { buffer };
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = p.header_len();
        if hl < HEADER_LEN || hl > b.len() {
            return Err(WireError::BadHeaderLength);
        }
        let tl = p.total_len() as usize;
        if tl < hl || tl > b.len() {
            return Err(WireError::BadLength);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    /// Type of Service / DSCP+ECN octet.
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF.start] & 0x40 != 0
    }
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF.start] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x1fff) << 3
    }
    /// True for any fragment (MF set or offset non-zero).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::SRC.start)
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::DST.start)
    }
    /// The options bytes (between byte 20 and the header length).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The payload up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::accumulate(
            0,
            &self.buffer.as_ref()[..self.header_len()],
        )) == 0xffff
    }

    /// True when an unexpired source-route option (LSRR/SSRR with pointer
    /// not past the end) is present (RFC 7915 §4.1).
    pub fn has_unexpired_source_route(&self) -> bool {
        let opts = self.options();
        let mut i = 0;
        while i < opts.len() {
            match opts[i] {
                OPT_EOL => return false,
                OPT_NOP => i += 1,
                t => {
                    if i + 1 >= opts.len() {
                        return false;
                    }
                    let len = opts[i + 1] as usize;
                    if len < 2 || i + len > opts.len() {
                        return false;
                    }
                    if (t == OPT_LSRR || t == OPT_SSRR) && len >= 3 {
                        let ptr = opts[i + 2] as usize;
                        // Pointer is 1-based relative to the option; expired
                        // when it points past the last address.
                        if ptr <= len {
                            return true;
                        }
                    }
                    i += len;
                }
            }
        }
        false
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes version 4 and the IHL for a header of `len` bytes.
    pub fn set_version_and_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, v)
    }
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::IDENT.start, v)
    }
    /// Sets DF, MF and the fragment offset (in bytes, multiple of 8).
    pub fn set_flags_and_offset(&mut self, df: bool, mf: bool, offset: u16) {
        let v = ((df as u16) << 14) | ((mf as u16) << 13) | ((offset >> 3) & 0x1fff);
        put16(self.buffer.as_mut(), field::FLG_OFF.start, v)
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets())
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets())
    }
    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes())
}
#[inline]
fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

#[cfg(test)]
mod test {
    use super::*;

    // An ICMP echo request header from a real capture (192.0.2.1 -> 198.51.100.2).
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc0, 0x00, 0x02,
        0x01, 0xc6, 0x33, 0x64, 0x02,
    ];

    #[test]
    fn fields_and_checksum_round_trip() {
        let mut buf = [0u8; 0x54];
        buf[..20].copy_from_slice(&HDR);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.total_len(), 0x54);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 51, 100, 2));
        p.set_flags_and_offset(false, true, 1480);
        assert!(p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
    }

    #[test]
    fn rejects_short_and_bad_ihl() {
        assert_eq!(
            Packet::new_checked(&HDR[..19]).unwrap_err(),
            WireError::Truncated
        );
        let mut b = HDR;
        b[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
        // total length 0x54 > buffer of 20
        assert_eq!(
            Packet::new_checked(&HDR[..]).unwrap_err(),
            WireError::BadLength
        );
    }

    #[test]
    fn source_route_detection() {
        let mut buf = [0u8; 32];
        buf[..20].copy_from_slice(&HDR);
        buf[0] = 0x48; // IHL 8 = 32 bytes
        buf[2..4].copy_from_slice(&32u16.to_be_bytes());
        // LSRR, len 11, ptr 4 (unexpired), one address; then EOL
        buf[20..31].copy_from_slice(&[0x83, 11, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.has_unexpired_source_route());
        buf[22] = 12; // pointer past the end: expired
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.has_unexpired_source_route());
    }
}
