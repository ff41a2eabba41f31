//! TCP (RFC 9293) and UDP (RFC 768) header fields the translator touches:
//! ports, checksum, TCP flags. Views are over the transport header onwards.

use super::checksum;
use super::ipv4::{be16, put16};
use super::proto;

/// Minimum TCP header length.
pub const TCP_HEADER_LEN: usize = 20;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_CHECKSUM: usize = 16;
    pub const UDP_LENGTH: usize = 4;
    pub const UDP_CHECKSUM: usize = 6;
    /// DCCP (RFC 4340 §5.1): the checksum follows the ports and the data
    /// offset / CCVal / CsCov bytes.
    pub const DCCP_CHECKSUM: usize = 6;
}

/// TCP flag bits (byte 13).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Offset of the checksum field within the transport header, by protocol.
pub const fn checksum_offset(proto: u8) -> Option<usize> {
    match proto {
        super::proto::TCP => Some(field::TCP_CHECKSUM),
        super::proto::UDP => Some(field::UDP_CHECKSUM),
        super::proto::ICMP | super::proto::ICMPV6 => Some(2),
        _ => None,
    }
}

/// Minimum header length the translator needs to read ports/ids and checksum.
pub const fn min_header_len(proto: u8) -> usize {
    match proto {
        super::proto::TCP => TCP_HEADER_LEN,
        super::proto::UDP => UDP_HEADER_LEN,
        _ => 8,
    }
}

/// How much of its datagram a packet's transport bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// The whole datagram / segment.
    Whole,
    /// The first fragment: the start of the datagram.
    FirstFragment,
    /// A GSO super-packet: several segments, whose UDP length may describe
    /// one segment.
    Gso,
}

/// Whether the lengths a transport header claims agree with the bytes it
/// came in (`l4` = the transport header onwards, as far as this packet
/// carries it):
/// * TCP (RFC 9293 §3.1): the data offset is at least 5 words and the
///   header it announces fits in the bytes at hand.
/// * UDP (RFC 768): the UDP length is at least 8; for a whole datagram it
///   equals the IP payload length, for a first fragment it is at least what
///   arrived.
pub fn lengths_agree(proto: u8, l4: &[u8], extent: Extent) -> bool {
    match proto {
        super::proto::TCP => {
            let Some(&b) = l4.get(12) else {
                return false;
            };
            let hl = usize::from(b >> 4) * 4;
            hl >= TCP_HEADER_LEN && hl <= l4.len()
        }
        super::proto::UDP => {
            if l4.len() < UDP_HEADER_LEN {
                return false;
            }
            let ul = usize::from(be16(l4, field::UDP_LENGTH));
            ul >= UDP_HEADER_LEN
                && match extent {
                    Extent::Whole => ul == l4.len(),
                    Extent::FirstFragment => ul >= l4.len(),
                    Extent::Gso => true,
                }
        }
        _ => true,
    }
}

/// A view of a TCP or UDP header (`proto` picks the checksum location).
#[derive(Debug)]
pub struct Ports<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ports<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ports { buffer }
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }
    pub fn tcp_flags(&self) -> u8 {
        self.buffer.as_ref()[field::TCP_FLAGS]
    }
    pub fn udp_length(&self) -> u16 {
        be16(self.buffer.as_ref(), field::UDP_LENGTH)
    }
    /// The UDP checksum field (0: none, RFC 768).
    pub fn udp_checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::UDP_CHECKSUM)
    }
    pub fn checksum_at(&self, off: usize) -> u16 {
        be16(self.buffer.as_ref(), off)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ports<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v)
    }
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v)
    }
    pub fn set_checksum_at(&mut self, off: usize, v: u16) {
        put16(self.buffer.as_mut(), off, v)
    }
    pub fn set_udp_length(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::UDP_LENGTH, v)
    }

    /// The one TCP/UDP rewrite of a translation, for the packet itself and
    /// for the one quoted in an ICMP error (RFC 7915 §4.5/§5.5, §4.3/§5.3):
    /// writes the new ports and adjusts the checksum of the `proto` header
    /// (RFC 1624) from `old_sum` to `new_sum`, the sums of the pseudo-header
    /// words that change (the addresses), plus the port change. With
    /// `partial` the field holds only the pseudo-header sum (checksum
    /// offload, ADR 0004) and only that part is adjusted. A zero UDP
    /// checksum (none, RFC 768) stays zero; a computed zero is sent as
    /// 0xffff. Returns the new field, or None when the header is cut before
    /// it (a quoted packet).
    #[inline(always)]
    pub fn translate(
        &mut self,
        proto_num: u8,
        src_port: u16,
        dst_port: u16,
        old_sum: u32,
        new_sum: u32,
        partial: bool,
    ) -> Option<u16> {
        let udp = proto_num == proto::UDP;
        let at = if udp {
            field::UDP_CHECKSUM
        } else {
            field::TCP_CHECKSUM
        };
        let old_ports = u32::from(self.src_port()) + u32::from(self.dst_port());
        self.set_src_port(src_port);
        self.set_dst_port(dst_port);
        let b = self.buffer.as_mut();
        let c = be16(b.get(..at + 2)?, at);
        let n = if partial {
            checksum::adjust_partial(c, old_sum, new_sum)
        } else if udp && c == 0 {
            return Some(0);
        } else {
            let new_ports = u32::from(src_port) + u32::from(dst_port);
            match checksum::adjust(c, old_sum + old_ports, new_sum + new_ports) {
                0 if udp => 0xffff,
                n => n,
            }
        };
        put16(b, at, n);
        Some(n)
    }

    /// Computes a UDP checksum from scratch over the whole datagram (this
    /// view) and the pseudo-header sum `pseudo` (RFC 768; RFC 7915 §4.5 for
    /// an IPv4 datagram that had none). Zero is sent as 0xffff.
    pub fn fill_udp_checksum(&mut self, pseudo: u32) -> u16 {
        put16(self.buffer.as_mut(), field::UDP_CHECKSUM, 0);
        let c = match !checksum::fold(checksum::accumulate(pseudo, self.buffer.as_ref())) {
            0 => 0xffff,
            c => c,
        };
        put16(self.buffer.as_mut(), field::UDP_CHECKSUM, c);
        c
    }
}

/// The checksum of a protocol without ports that still covers a
/// pseudo-header: DCCP (RFC 4340 §9.1, over an IPv4 or IPv6
/// pseudo-header), adjusted for the address change of a translation when
/// its first 8 bytes are in `l4` (a first fragment, a whole packet, a
/// quote). `old`/`new` are the address sums before and after. Others carry
/// no such checksum (SCTP's CRC32c, GRE/ESP/AH payloads): left alone.
#[inline]
pub fn adjust_portless_checksum(proto_num: u8, l4: &mut [u8], old: u32, new: u32) {
    if proto_num == proto::DCCP && l4.len() >= 8 {
        let c = be16(l4, field::DCCP_CHECKSUM);
        put16(l4, field::DCCP_CHECKSUM, checksum::adjust(c, old, new));
    }
}
