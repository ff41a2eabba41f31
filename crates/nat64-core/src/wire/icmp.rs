//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) headers. Both share the layout
//! type(1) code(1) checksum(2) rest-of-header(4).

use super::checksum;
use super::ipv4::{be16, put16};

pub const HEADER_LEN: usize = 8;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    /// ICMPv4 Fragmentation Needed: next-hop MTU (RFC 1191).
    pub const V4_MTU: usize = 6;
    /// ICMPv4 Parameter Problem pointer.
    pub const V4_POINTER: usize = 4;
    /// RFC 4884 length (ICMPv4 byte 5, ICMPv6 byte 4).
    pub const V4_LENGTH: usize = 5;
    pub const V6_LENGTH: usize = 4;
}

/// ICMPv4 types (RFC 792).
pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    /// Dest Unreachable code: fragmentation needed and DF set.
    pub const CODE_FRAG_NEEDED: u8 = 4;
}

/// ICMPv6 types (RFC 4443).
pub mod v6 {
    pub const DEST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
}

/// True for ICMPv4 error types (those that quote a packet).
pub const fn is_v4_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}
/// True for ICMPv6 error types (0–127, RFC 4443 §2.1).
pub const fn is_v6_error(t: u8) -> bool {
    t < 128
}

/// A view of an ICMP header (either family).
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    pub fn seq(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }
    /// The 4 bytes after the checksum, as one word.
    pub fn rest(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }
    pub fn v4_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::V4_MTU)
    }
    pub fn v4_pointer(&self) -> u8 {
        self.buffer.as_ref()[field::V4_POINTER]
    }
    /// RFC 4884 length attribute of an ICMPv4 error (32-bit words).
    pub fn v4_length(&self) -> u8 {
        self.buffer.as_ref()[field::V4_LENGTH]
    }
    /// RFC 4884 length attribute of an ICMPv6 error (64-bit words).
    pub fn v6_length(&self) -> u8 {
        self.buffer.as_ref()[field::V6_LENGTH]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v
    }
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::IDENT, v)
    }
    pub fn set_rest(&mut self, v: u32) {
        self.buffer.as_mut()[4..8].copy_from_slice(&v.to_be_bytes())
    }

    /// The one echo rewrite of a translation, for the packet itself and
    /// for the one quoted in an ICMP error (RFC 7915 §4.2/§5.2, §4.3/§5.3):
    /// writes type, code and identifier and adjusts the checksum (RFC 1624).
    /// `old_sum`/`new_sum` are the pseudo-header sums before and after:
    /// ICMPv6 covers one (RFC 4443 §2.3), ICMPv4 none, so one side is 0.
    /// With `partial` the field holds only the pseudo-header sum (checksum
    /// offload, ADR 0004) and only that part is adjusted. Returns the new
    /// checksum field.
    #[inline(always)]
    pub fn translate_echo(
        &mut self,
        msg_type: u8,
        code: u8,
        ident: u16,
        old_sum: u32,
        new_sum: u32,
        partial: bool,
    ) -> u16 {
        let old =
            u32::from(u16::from_be_bytes([self.msg_type(), self.code()])) + u32::from(self.ident());
        self.set_msg_type(msg_type);
        self.set_code(code);
        self.set_ident(ident);
        let c = if partial {
            checksum::adjust_partial(self.checksum(), old_sum, new_sum)
        } else {
            let new = u32::from(u16::from_be_bytes([msg_type, code])) + u32::from(ident);
            checksum::adjust(self.checksum(), old_sum + old, new_sum + new)
        };
        self.set_checksum(c);
        c
    }

    /// Computes and writes the checksum over the whole message (this view)
    /// and the pseudo-header sum `pseudo` (0 for ICMPv4).
    pub fn fill_checksum(&mut self, pseudo: u32) -> u16 {
        self.set_checksum(0);
        let c = !checksum::fold(checksum::accumulate(pseudo, self.buffer.as_ref()));
        self.set_checksum(c);
        c
    }
}
