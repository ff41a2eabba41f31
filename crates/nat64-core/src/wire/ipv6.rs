//! IPv6 header view (RFC 8200) and extension-header walking.

use super::ipv4::{be16, put16};
use super::WireError;
use core::net::Ipv6Addr;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Length of the Fragment extension header.
pub const FRAG_HEADER_LEN: usize = 8;

/// Next Header values used by the translator.
pub mod nh {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
}

/// A read/write view of an IPv6 packet's fixed header.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Validates version 6 and that the payload length fits the buffer.
    /// Bytes beyond `40 + payload_len` are ignored. Jumbograms (payload
    /// length 0 with a hop-by-hop jumbo option) are rejected as `BadLength`
    /// only when the buffer holds a payload (a TUN cannot carry them anyway).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Packet { buffer };
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        if HEADER_LEN + p.payload_len() as usize > b.len() {
            return Err(WireError::BadLength);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }
    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// Total packet length (header + payload).
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len() as usize
    }
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), field::SRC.start)
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), field::DST.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes version 6, traffic class and flow label.
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let v = (6u32 << 28) | ((tc as u32) << 20) | (flow & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, v)
    }
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v;
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets())
    }
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets())
    }
}

fn addr(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

/// The Fragment header's fields (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    /// Offset of the Fragment header from the start of the packet.
    pub header_offset: usize,
    /// Fragment offset in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

impl FragInfo {
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// Writes an 8-byte Fragment header into `b`.
pub fn emit_frag_header(b: &mut [u8], next_header: u8, offset: u16, more: bool, ident: u32) {
    b[0] = next_header;
    b[1] = 0;
    put16(b, 2, (offset & !7) | more as u16);
    b[4..8].copy_from_slice(&ident.to_be_bytes());
}

/// What walking the extension-header chain found (RFC 7915 §5.1: skip
/// hop-by-hop, destination options and routing with Segments Left 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderChain {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, ...).
    pub upper: u8,
    /// Offset of the upper-layer header from the start of the packet.
    pub upper_offset: usize,
    /// The Fragment header, if present.
    pub frag: Option<FragInfo>,
    /// Offset of the first routing header with Segments Left != 0, pointing
    /// at its Segments Left byte (for the Parameter Problem pointer).
    pub segments_left_at: Option<usize>,
    /// An extension header (hop-by-hop, routing, destination options)
    /// follows the Fragment header (RFC 7915 §5.1.1 drops such packets).
    pub ext_after_fragment: bool,
}

/// Walks the extension headers of `packet` (a full IPv6 packet, already
/// validated with [`Packet::new_checked`]). Stops at the first header that is
/// not hop-by-hop, routing, fragment or destination options, or at the
/// upper-layer header of a non-first fragment.
///
/// Errors on a chain that runs past the packet, a hop-by-hop header that is
/// not first, or a repeated Fragment header.
pub fn walk_chain(packet: &[u8]) -> Result<HeaderChain, WireError> {
    if packet.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let end = HEADER_LEN + be16(packet, field::LENGTH.start) as usize;
    if end > packet.len() {
        return Err(WireError::BadLength);
    }
    walk_chain_within(packet, end)
}

/// Like [`walk_chain`] but only looks at `packet[..end]`: for the packet
/// quoted in an ICMP error, which is usually truncated below its payload
/// length. `end` must not exceed `packet.len()`.
pub fn walk_chain_within(packet: &[u8], end: usize) -> Result<HeaderChain, WireError> {
    if end > packet.len() || end < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let mut next = packet[field::NXT_HDR];
    let mut off = HEADER_LEN;
    let mut frag = None;
    let mut segments_left_at = None;
    let mut ext_after_fragment = false;
    let mut first = true;
    loop {
        match next {
            nh::HOP_BY_HOP | nh::ROUTING | nh::DEST_OPTS => {
                if next == nh::HOP_BY_HOP && !first {
                    return Err(WireError::BadExtensionHeader);
                }
                if off + 8 > end {
                    return Err(WireError::BadExtensionHeader);
                }
                let len = (packet[off + 1] as usize + 1) * 8;
                if off + len > end {
                    return Err(WireError::BadExtensionHeader);
                }
                if frag.is_some() {
                    ext_after_fragment = true;
                }
                if next == nh::ROUTING && packet[off + 3] != 0 && segments_left_at.is_none() {
                    segments_left_at = Some(off + 3);
                }
                next = packet[off];
                off += len;
            }
            nh::FRAGMENT => {
                if frag.is_some() || off + FRAG_HEADER_LEN > end {
                    return Err(WireError::BadExtensionHeader);
                }
                let fo = be16(packet, off + 2);
                let info = FragInfo {
                    header_offset: off,
                    offset: fo & !7,
                    more: fo & 1 != 0,
                    ident: u32::from_be_bytes([
                        packet[off + 4],
                        packet[off + 5],
                        packet[off + 6],
                        packet[off + 7],
                    ]),
                };
                frag = Some(info);
                next = packet[off];
                off += FRAG_HEADER_LEN;
                if !info.is_first() {
                    // Headers after the fragment header of a non-first
                    // fragment are payload bytes, not headers.
                    break;
                }
            }
            _ => break,
        }
        first = false;
    }
    Ok(HeaderChain {
        upper: next,
        upper_offset: off,
        frag,
        segments_left_at,
        ext_after_fragment,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn base(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 40];
        v[0] = 0x60;
        v[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        v[6] = next;
        v[7] = 64;
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn walks_hbh_dstopt_routing_to_udp() {
        let mut pl = vec![];
        pl.extend_from_slice(&[nh::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]); // HbH -> DO
        pl.extend_from_slice(&[nh::ROUTING, 0, 1, 4, 0, 0, 0, 0]); // DO -> RH
        pl.extend_from_slice(&[nh::UDP, 0, 0, 0, 0, 0, 0, 0]); // RH type 0, SL 0
        pl.extend_from_slice(&[0u8; 8]);
        let p = base(nh::HOP_BY_HOP, &pl);
        let c = walk_chain(&p).unwrap();
        assert_eq!(c.upper, nh::UDP);
        assert_eq!(c.upper_offset, 64);
        assert_eq!(c.segments_left_at, None);
    }

    #[test]
    fn routing_segments_left_pointer() {
        let mut pl = vec![nh::UDP, 0, 0, 2, 0, 0, 0, 0];
        pl.extend_from_slice(&[0u8; 8]);
        let c = walk_chain(&base(nh::ROUTING, &pl)).unwrap();
        assert_eq!(c.segments_left_at, Some(43));
    }

    #[test]
    fn fragment_header_parsed() {
        let mut pl = [0u8; 16];
        emit_frag_header(&mut pl, nh::TCP, 1232, true, 0xdeadbeef);
        let c = walk_chain(&base(nh::FRAGMENT, &pl)).unwrap();
        let f = c.frag.unwrap();
        assert_eq!((f.offset, f.more, f.ident), (1232, true, 0xdeadbeef));
        assert_eq!(c.upper, nh::TCP);
        assert_eq!(c.upper_offset, 48);
    }

    #[test]
    fn truncated_chain_rejected() {
        let pl = [nh::UDP, 3, 0, 0, 0, 0, 0, 0]; // claims 32 bytes
        assert_eq!(
            walk_chain(&base(nh::DEST_OPTS, &pl)).unwrap_err(),
            WireError::BadExtensionHeader
        );
        // hop-by-hop not first
        let pl = [
            nh::HOP_BY_HOP,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            nh::UDP,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        assert_eq!(
            walk_chain(&base(nh::DEST_OPTS, &pl)).unwrap_err(),
            WireError::BadExtensionHeader
        );
    }
}
