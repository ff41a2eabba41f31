//! ICMP errors the translator itself originates (RFC 7915 §4.1/§5.1, RFC
//! 4443 §3, RFC 792; rate limit RFC 4443 §2.4(f)): Time Exceeded,
//! Packet Too Big / Fragmentation Needed, Parameter Problem, Destination
//! Unreachable. The caller picks the source address (`prefix || gateway-v4`
//! or `icmp-source-v6` for IPv6, `gateway-v4` for IPv4) and rate-limits.

use crate::verdict::{DropReason, IcmpError};
use crate::wire::icmp::{is_v4_error, is_v6_error, v4, v6};
use crate::wire::ipv4::{self, put16};
use crate::wire::ipv6::{self, nh};
use crate::wire::{checksum, proto};
use core::net::{Ipv4Addr, Ipv6Addr};

/// Hop limit / TTL of translator-originated errors.
pub const ERROR_HOP_LIMIT: u8 = 64;

/// Builds the ICMPv6 error `err` about the IPv6 packet `orig` into `out`,
/// from `src`, quoting as much of `orig` as fits in 1280 bytes (RFC 4443
/// §2.4(c)). Returns the length written. Refuses (RFC 4443 §2.4(e)) to
/// answer an ICMPv6 error or a packet from an unspecified/multicast source.
pub fn icmpv6_error(
    orig: &[u8],
    err: IcmpError,
    src: Ipv6Addr,
    out: &mut [u8],
) -> Result<usize, DropReason> {
    let ip = ipv6::Packet::new_checked(orig)?;
    let dst = ip.src_addr();
    if dst.is_unspecified() || dst.is_multicast() {
        return Err(DropReason::NotForTranslation);
    }
    // Bytes past the payload length (link padding) are not part of it.
    let orig = &orig[..ip.total_len()];
    if let Ok(chain) = ipv6::walk_chain(orig) {
        let first = chain.frag.is_none_or(|f| f.is_first());
        if chain.upper == nh::ICMPV6
            && first
            && orig.len() > chain.upper_offset
            && is_v6_error(orig[chain.upper_offset])
        {
            return Err(DropReason::IcmpErrorInError);
        }
    }
    let (t, code, rest): (u8, u8, u32) = match err {
        IcmpError::TimeExceeded => (v6::TIME_EXCEEDED, 0, 0),
        IcmpError::PacketTooBig { mtu } => (v6::PACKET_TOO_BIG, 0, mtu),
        IcmpError::ParameterProblem { code, pointer } => (v6::PARAM_PROBLEM, code, pointer),
        IcmpError::DestUnreachableV6 { code } => (v6::DEST_UNREACH, code, 0),
        IcmpError::FragmentationNeeded { .. } | IcmpError::DestUnreachableV4 { .. } => {
            return Err(DropReason::IcmpUntranslatableType)
        }
    };
    let quote = ip.total_len().min(crate::xlat::icmp::MAX_ICMPV6_ERROR - 48);
    let len = 48 + quote;
    if out.len() < len {
        return Err(DropReason::NoBufferRoom);
    }
    crate::xlat::four_to_six::write_v6_header(
        &mut out[..40],
        0,
        (8 + quote) as u16,
        nh::ICMPV6,
        ERROR_HOP_LIMIT,
        src,
        dst,
    );
    out[40] = t;
    out[41] = code;
    out[42..44].fill(0);
    out[44..48].copy_from_slice(&rest.to_be_bytes());
    out[48..len].copy_from_slice(&orig[..quote]);
    let sum = checksum::pseudo_header_v6(src, dst, nh::ICMPV6, (8 + quote) as u32);
    let c = !checksum::fold(checksum::accumulate(sum, &out[40..len]));
    put16(out, 42, c);
    Ok(len)
}

/// Builds the ICMPv4 error `err` about the IPv4 packet `orig` into `out`,
/// from `src`, quoting as much of `orig` as fits in 576 bytes (RFC 1812
/// §4.3.2.3). Refuses to answer an ICMPv4 error, a non-first fragment, or a
/// packet whose source is out of scope ([`crate::xlat::v4_out_of_scope`]:
/// no IPv4 packet is ever sent to one; RFC 1812 §4.3.2.7).
pub fn icmpv4_error(
    orig: &[u8],
    err: IcmpError,
    src: Ipv4Addr,
    out: &mut [u8],
) -> Result<usize, DropReason> {
    let ip = ipv4::Packet::new_checked(orig)?;
    let dst = ip.src_addr();
    if crate::xlat::v4_out_of_scope(&dst) {
        return Err(DropReason::OutOfScopeV4);
    }
    let hl = ip.header_len();
    let orig = &orig[..ip.total_len() as usize];
    if ip.protocol() == proto::ICMP
        && ip.frag_offset() == 0
        && orig.len() > hl
        && is_v4_error(orig[hl])
    {
        return Err(DropReason::IcmpErrorInError);
    }
    if ip.frag_offset() != 0 {
        // RFC 1812 §4.3.2.7: only about the first fragment.
        return Err(DropReason::IcmpErrorInError);
    }
    let (t, code, rest): (u8, u8, u32) = match err {
        IcmpError::TimeExceeded => (v4::TIME_EXCEEDED, 0, 0),
        IcmpError::FragmentationNeeded { mtu } => {
            (v4::DEST_UNREACH, v4::CODE_FRAG_NEEDED, mtu as u32)
        }
        IcmpError::DestUnreachableV4 { code } => (v4::DEST_UNREACH, code, 0),
        IcmpError::PacketTooBig { .. }
        | IcmpError::ParameterProblem { .. }
        | IcmpError::DestUnreachableV6 { .. } => return Err(DropReason::IcmpUntranslatableType),
    };
    let quote = (ip.total_len() as usize).min(crate::xlat::icmp::MAX_ICMPV4_ERROR - 28);
    let len = 28 + quote;
    if out.len() < len {
        return Err(DropReason::NoBufferRoom);
    }
    crate::xlat::six_to_four::write_v4_header(
        &mut out[..20],
        &crate::xlat::six_to_four::V4Header {
            tos: 0,
            total_len: len as u16,
            ident: 0,
            df: false,
            mf: false,
            frag_offset: 0,
            ttl: ERROR_HOP_LIMIT,
            protocol: proto::ICMP,
            src,
            dst,
        },
    );
    out[20] = t;
    out[21] = code;
    out[22..24].fill(0);
    out[24..28].copy_from_slice(&rest.to_be_bytes());
    out[28..len].copy_from_slice(&orig[..quote]);
    let c = checksum::checksum(&out[20..len]);
    put16(out, 22, c);
    Ok(len)
}

#[cfg(test)]
mod test {
    use super::*;

    /// Found by the fuzzer: link padding after a zero-length payload looked
    /// like an ICMPv6 error to the "no error about an error" check.
    #[test]
    fn padding_past_payload_length_is_ignored() {
        let mut pkt = [0u8; 48];
        pkt[0] = 0x60;
        pkt[6] = nh::ICMPV6;
        pkt[7] = 1;
        pkt[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        pkt[40] = 1; // padding byte that reads like Destination Unreachable
        let mut out = [0u8; 128];
        let n = icmpv6_error(
            &pkt,
            IcmpError::TimeExceeded,
            "2001:db8::ff".parse().unwrap(),
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 48 + 40, "quotes the 40-byte packet, not the padding");
        assert_eq!(out[40], v6::TIME_EXCEEDED);
    }
}
