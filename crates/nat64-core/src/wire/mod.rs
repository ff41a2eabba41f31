//! Zero-copy packet views over byte buffers, in the style of smoltcp's `wire`.
//!
//! Each view is checked once (`new_checked`) and then reads fields in place.
//! Field offsets live in a private `field` module per header.

pub mod checksum;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod l4;

use crate::verdict::DropReason;

/// Why a buffer is not a valid header of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("buffer shorter than the header")]
    Truncated,
    #[error("wrong IP version")]
    BadVersion,
    #[error("bad header length")]
    BadHeaderLength,
    #[error("length field disagrees with the buffer")]
    BadLength,
    #[error("malformed extension header chain")]
    BadExtensionHeader,
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::BadVersion => DropReason::BadVersion,
            WireError::BadHeaderLength => DropReason::BadIpv4HeaderLength,
            WireError::BadLength => DropReason::BadLength,
            WireError::BadExtensionHeader => DropReason::BadExtensionHeader,
        }
    }
}

/// IANA protocol numbers the translator handles.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    /// DCCP (RFC 4340): ports-free for us, but its checksum covers a
    /// pseudo-header, which translation changes (RFC 7915 §4.5/§5.5).
    pub const DCCP: u8 = 33;
}
