//! TCP (RFC 9293) and UDP (RFC 768) header fields the translator touches:
//! ports, checksum, TCP flags. Views are over the transport header onwards.

use super::ipv4::{be16, put16};

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
}
